"""Schedules: one-time and recurring starts of a workflow, fired exactly once per slot.

A slot is one instant a schedule is due. Cron expressions are read in the schedule's
time zone the way Vixie cron reads them, so daylight-saving changes behave as people
who run cron expect:

- a wall-clock time that does not exist (the hour skipped in spring) fires at the
  first instant after the gap, once, rather than silently losing that day's run;
- a wall-clock time that happens twice (the hour repeated in autumn) fires once, at its
  first occurrence, for expressions with a fixed hour; expressions that run every hour
  (hour field `*`) follow real time and so also run in the repeated hour.

Intervals are plain UTC arithmetic, aligned to the Unix epoch (every 1 h fires on the
hour), so a slot does not depend on when the schedule was written.

Firing follows Kubernetes CronJob semantics: after an outage only the latest missed
slot runs (earlier ones are counted and audited as skipped), and not even that one if it
is later than `starting_deadline_seconds`; the overlap policy (`allow`, `forbid`,
`replace`) decides what happens while the previous run is still going. Each slot's
execution id is `<schedule id>@<slot time, UTC ISO>`, so firing a slot twice starts
one execution.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from croniter import CroniterBadDateError, croniter

from . import _codec
from ._errors import ExecutionFinished, ExecutionNotFound, InvalidSchedule, ScheduleNotFound
from ._records import AuditEntry, ExecutionId, ms_to_dt
from ._store._base import AuditDraft, NewExecution, Store
from ._store._schedules_base import ScheduleClaim, ScheduleRecord, ScheduleStore

if TYPE_CHECKING:
    from ._workflow import WorkflowDef

log = logging.getLogger("durable.schedules")

Overlap = Literal["allow", "forbid", "replace"]
OVERLAP_POLICIES: tuple[Overlap, ...] = ("allow", "forbid", "replace")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Daylight-saving and other offset changes are assumed smaller than this (true of every zone today).
_SHIFT = timedelta(hours=3)
_SHIFT_MS = 3 * 3600 * 1000
_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
_RESERVED_IDS = frozenset({"due", "index"})
# Past this many missed slots the catch-up count is extrapolated instead of walked.
_CATCH_UP_WALK = 2_000
# How long a claimed slot stays with its poller before another may take it over.
DEFAULT_CLAIM_TIMEOUT = 30.0


def _wall_ms() -> int:
    """The client's clock (tests replace it)."""
    return int(time.time() * 1000)


def slot_iso(ms: int) -> str:
    """A slot time as UTC ISO 8601 (`2024-03-31T01:30:00Z`), milliseconds only when non-zero."""
    dt = _EPOCH + ms * _MS
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def slot_execution_id(schedule_id: str, slot_ms: int) -> str:
    return f"{schedule_id}@{slot_iso(slot_ms)}"


def _to_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // _MS


# ---------------------------------------------------------------------------- slot computation


class CronSlots:
    """The instants a cron expression names in one time zone."""

    def __init__(self, expr: str, timezone: str) -> None:
        self.expr = validate_cron(expr)
        self.tz = load_timezone(timezone)
        fields = croniter(self.expr, datetime(2000, 1, 1)).expanded
        # Vixie cron: jobs that run every hour follow real time across offset changes.
        self.every_hour = fields[1] == ["*"] or len(set(fields[1])) == 24

    def _offset_ms(self, ms: int) -> int:
        offset = (_EPOCH + ms * _MS).astimezone(self.tz).utcoffset()
        return 0 if offset is None else offset // _MS

    def _near_change(self, ms: int) -> bool:
        return self._offset_ms(ms - _SHIFT_MS) != self._offset_ms(ms + _SHIFT_MS)

    def _wall(self, ms: int) -> datetime:
        return (_EPOCH + ms * _MS).astimezone(self.tz).replace(tzinfo=None)

    def instants(self, wall: datetime) -> list[int]:
        """The instants (ms) that fire for one wall-clock match."""
        first = wall.replace(tzinfo=self.tz, fold=0)
        ms = _to_ms(first)
        if self.every_hour and first.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) == wall:
            second = _to_ms(wall.replace(tzinfo=self.tz, fold=1))
            if second != ms:
                return [ms, second]
        # A time inside a gap maps (fold=0, the offset before the change) to just after the gap.
        return [ms]

    def next_after(self, after_ms: int) -> int:
        """The first slot strictly after `after_ms`. Raises `InvalidSchedule` if there is none."""
        wall = self._wall(after_ms)
        try:
            it = croniter(self.expr, wall)
            candidate = it.get_next(datetime)
            first = self.instants(candidate)
            if (
                len(first) == 1
                and first[0] > after_ms
                and not (self._near_change(after_ms) or self._near_change(first[0]))
            ):
                return first[0]
            # Near an offset change: look at every match within a few hours either side.
            it = croniter(self.expr, wall - _SHIFT)
            best: int | None = None
            for _ in range(100_000):
                candidate = it.get_next(datetime)
                for ms in self.instants(candidate):
                    if ms > after_ms and (best is None or ms < best):
                        best = ms
                if best is not None and candidate > self._wall(best) + _SHIFT:
                    return best
        except CroniterBadDateError:
            pass
        raise InvalidSchedule(f"cron expression {self.expr!r} never fires", cron=self.expr)

    def iter_after(self, after_ms: int) -> Iterator[int]:
        """The slots after `after_ms`, in order (one croniter walk away from offset changes)."""
        current = after_ms
        it: Any = None
        while True:
            if it is not None:
                candidate = it.get_next(datetime)
                found = self.instants(candidate)
                if len(found) == 1 and found[0] > current and not self._near_change(found[0]):
                    current = found[0]
                    yield current
                    continue
            current = self.next_after(current)
            yield current
            it = croniter(self.expr, self._wall(current))


@functools.lru_cache(maxsize=256)
def cron_slots(expr: str, timezone: str) -> CronSlots:
    return CronSlots(expr, timezone)


def validate_cron(expr: Any) -> str:
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidSchedule("cron must be a non-empty string such as '*/5 * * * *'", cron=expr)
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() not in _MACROS:
            raise InvalidSchedule(
                f"cron macro {text!r} is not supported (use one of {', '.join(sorted(_MACROS))})", cron=expr
            )
        return text.lower()
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidSchedule(
            f"invalid cron expression {expr!r}: expected 5 fields (minute hour day-of-month month day-of-week)",
            cron=expr,
        )
    return text


def load_timezone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise InvalidSchedule(
            f"invalid time zone {name!r}: use an IANA name such as 'Europe/Paris'", timezone=name
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'", timezone=name
        ) from None


# ---------------------------------------------------------------------------- definitions


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule does and when: the part `ensure_schedule` compares."""

    workflow_id: str
    input: Any
    cron: str | None = None
    interval_ms: int | None = None
    at_ms: int | None = None
    timezone: str = "UTC"
    overlap: Overlap = "allow"
    deadline_ms: int | None = None

    def __post_init__(self) -> None:
        kinds = sum(x is not None for x in (self.cron, self.interval_ms, self.at_ms))
        if kinds != 1:
            raise InvalidSchedule(
                "give exactly one of cron=... or interval=..."
                if self.at_ms is None
                else "a schedule has one timing"
            )
        load_timezone(self.timezone)
        if self.cron is not None:
            object.__setattr__(self, "cron", validate_cron(self.cron))
        if self.interval_ms is not None and self.interval_ms < 1000:
            raise InvalidSchedule(f"interval must be at least 1 second, got {self.interval_ms / 1000:g} s")
        if self.overlap not in OVERLAP_POLICIES:
            raise InvalidSchedule(
                f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {self.overlap!r}"
            )
        if self.deadline_ms is not None and self.deadline_ms < 0:
            raise InvalidSchedule("starting_deadline_seconds must not be negative")

    @property
    def one_time(self) -> bool:
        return self.at_ms is not None

    def same_timing(self, other: ScheduleSpec) -> bool:
        return (self.cron, self.interval_ms, self.at_ms, self.timezone) == (
            other.cron,
            other.interval_ms,
            other.at_ms,
            other.timezone,
        )

    def next_after(self, after_ms: int) -> int | None:
        """The first slot strictly after `after_ms` (None: a one-time schedule that is done)."""
        if self.at_ms is not None:
            return self.at_ms if after_ms < self.at_ms else None
        if self.interval_ms is not None:
            return (after_ms // self.interval_ms + 1) * self.interval_ms
        assert self.cron is not None
        return cron_slots(self.cron, self.timezone).next_after(after_ms)

    def iter_after(self, after_ms: int) -> Iterator[int]:
        if self.cron is not None:
            yield from cron_slots(self.cron, self.timezone).iter_after(after_ms)
            return
        current = self.next_after(after_ms)
        while current is not None:
            yield current
            current = self.next_after(current)

    def first_slot(self, now_ms: int) -> int | None:
        """The slot a new (or retimed, or resumed) schedule waits for."""
        return self.at_ms if self.at_ms is not None else self.next_after(now_ms)

    def latest_due(self, slot_ms: int, now_ms: int) -> tuple[int, int]:
        """The latest slot in [slot_ms, now_ms] and how many earlier slots it supersedes."""
        if self.interval_ms is not None:
            latest = max(slot_ms, now_ms // self.interval_ms * self.interval_ms)
            return latest, (latest - slot_ms) // self.interval_ms
        latest, skipped = slot_ms, 0
        for ms in self.iter_after(slot_ms):
            if ms > now_ms:
                return latest, skipped
            latest, skipped = ms, skipped + 1
            if skipped >= _CATCH_UP_WALK:
                break
        else:
            return latest, skipped
        # A very long outage: find the latest slot near `now` and extrapolate the count.
        period = max(1, (latest - slot_ms) // skipped)
        for days in (1, 40, 400, 4000):
            found = None
            for ms in self.iter_after(now_ms - days * 86_400_000):
                if ms > now_ms:
                    break
                found = ms
            if found is not None and found > latest:
                return found, skipped + (found - latest) // period
        return latest, skipped

    def to_json(self) -> bytes:
        return _codec.dumps(
            {
                "v": 1,
                "workflow_id": self.workflow_id,
                "input": self.input,
                "cron": self.cron,
                "interval_ms": self.interval_ms,
                "at_ms": self.at_ms,
                "timezone": self.timezone,
                "overlap": self.overlap,
                "deadline_ms": self.deadline_ms,
            },
            what="schedule",
        )

    @classmethod
    def from_json(cls, data: bytes) -> ScheduleSpec:
        raw = orjson.loads(data)
        return cls(
            workflow_id=raw["workflow_id"],
            input=raw.get("input"),
            cron=raw.get("cron"),
            interval_ms=raw.get("interval_ms"),
            at_ms=raw.get("at_ms"),
            timezone=raw.get("timezone") or "UTC",
            overlap=raw.get("overlap") or "allow",
            deadline_ms=raw.get("deadline_ms"),
        )

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron!r} ({self.timezone})"
        if self.interval_ms is not None:
            return f"every {self.interval_ms / 1000:g} s"
        assert self.at_ms is not None
        return f"once at {slot_iso(self.at_ms)}"


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule's definition and status."""

    schedule_id: str
    workflow_id: str
    input: Any
    cron: str | None
    interval_seconds: float | None
    timezone: str
    overlap: Overlap
    starting_deadline_seconds: float | None
    paused: bool
    one_time: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_execution_id: str | None
    fired_count: int
    skipped_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, rec: ScheduleRecord) -> ScheduleInfo:
        spec = ScheduleSpec.from_json(rec.spec)
        return cls(
            schedule_id=rec.schedule_id,
            workflow_id=spec.workflow_id,
            input=spec.input,
            cron=spec.cron,
            interval_seconds=None if spec.interval_ms is None else spec.interval_ms / 1000,
            timezone=spec.timezone,
            overlap=spec.overlap,
            starting_deadline_seconds=None if spec.deadline_ms is None else spec.deadline_ms / 1000,
            paused=rec.paused,
            one_time=spec.one_time,
            next_run_at=None if rec.paused else ms_to_dt(rec.next_ms),
            last_run_at=ms_to_dt(rec.last_ms),
            last_execution_id=rec.last_execution_id,
            fired_count=rec.fired,
            skipped_count=rec.skipped,
            created_at=ms_to_dt(rec.created_ms),  # type: ignore[arg-type]
            updated_at=ms_to_dt(rec.updated_ms),  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


# ---------------------------------------------------------------------------- the client side


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET


def _seconds_to_ms(value: Any, what: str) -> int:
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSchedule(f"{what} must be a number of seconds or a timedelta, got {value!r}")
    return round(value * 1000)


def _check_id(schedule_id: Any) -> str:
    if not isinstance(schedule_id, str) or not _ID.match(schedule_id) or schedule_id in _RESERVED_IDS:
        raise InvalidSchedule(
            f"invalid schedule id {schedule_id!r}: use up to 200 letters, digits and . _ : / - "
            "(starting with a letter or digit)",
            schedule_id=schedule_id,
        )
    return schedule_id


def schedule_store(store: Store) -> ScheduleStore:
    if not isinstance(store, ScheduleStore):
        raise TypeError(f"{type(store).__name__} does not support schedules")
    return store


class ScheduleClient:
    """The schedule methods of `Durable` (mixed in)."""

    if TYPE_CHECKING:
        store: Store
        registry: Mapping[str, WorkflowDef]

        def _resolve_workflow(self, workflow_or_id: Any) -> WorkflowDef: ...
        def _validate_input(self, wf: WorkflowDef, input: Any) -> bytes: ...

    def _schedules_store(self) -> ScheduleStore:
        return schedule_store(self.store)

    def _actor(self, actor: str | None) -> str | None:
        default: str | None = getattr(self, "actor", None)
        return actor or default

    async def _schedule_record(self, schedule_id: str) -> tuple[ScheduleRecord, ScheduleSpec]:
        rec = await self._schedules_store().get_schedule(schedule_id)
        if rec is None:
            raise ScheduleNotFound(f"schedule {schedule_id!r} does not exist", schedule_id=schedule_id)
        return rec, ScheduleSpec.from_json(rec.spec)

    def _make_scheduler(self) -> Scheduler | None:
        """The poller the worker runs (None if the store cannot hold schedules)."""
        if not isinstance(self.store, ScheduleStore):
            return None
        return Scheduler(self)

    async def schedule(
        self,
        workflow: Any,
        input: Any = None,
        *,
        at: datetime | None = None,
        delay: float | timedelta | None = None,
        id: str | None = None,
        overlap: Overlap = "allow",
        starting_deadline_seconds: float | None = None,
        actor: str | None = None,
    ) -> str:
        """Start `workflow` once, at `at` (an aware datetime) or after `delay`; returns the schedule id.

        The run's execution id is `<schedule id>@<time>`. With `id`, calling again with
        the same arguments changes nothing.
        """
        if (at is None) == (delay is None):
            raise InvalidSchedule("give exactly one of at=<aware datetime> or delay=<seconds|timedelta>")
        now = _wall_ms()
        if at is not None:
            if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
                raise InvalidSchedule(f"at must be an aware datetime (with a time zone), got {at!r}")
            at_ms = _to_ms(at.astimezone(UTC))
        else:
            delay_ms = _seconds_to_ms(delay, "delay")
            if delay_ms < 0:
                raise InvalidSchedule("delay must not be negative")
            at_ms = now + delay_ms
        schedule_id = _check_id(id) if id is not None else f"once-{uuid.uuid4().hex[:16]}"
        wf = self._resolve_workflow(workflow)
        spec = ScheduleSpec(
            workflow_id=wf.workflow_id,
            input=_codec.loads(self._validate_input(wf, input)),
            at_ms=at_ms,
            overlap=overlap,
            deadline_ms=None
            if starting_deadline_seconds is None
            else _seconds_to_ms(starting_deadline_seconds, "starting_deadline_seconds"),
        )
        await self._ensure(schedule_id, spec, paused=False, actor=actor, now=now)
        return schedule_id

    async def ensure_schedule(
        self,
        workflow: Any,
        input: Any = None,
        *,
        id: str,
        cron: str | None = None,
        interval: float | timedelta | None = None,
        timezone: str = "UTC",
        overlap: Overlap = "allow",
        starting_deadline_seconds: float | None = None,
        paused: bool = False,
        actor: str | None = None,
    ) -> ScheduleInfo:
        """Create the recurring schedule `id`, or bring it in line with these arguments.

        Same arguments: nothing changes. New arguments: the schedule is updated in place,
        keeping its counters and last run; its next slot is recomputed only if its timing
        changed. `paused` is the state of a new schedule: an existing one keeps the state
        an operator gave it (redeploying the code that calls this does not resume a
        schedule someone paused).
        """
        schedule_id = _check_id(id)
        if (cron is None) == (interval is None):
            raise InvalidSchedule(
                f"schedule {schedule_id!r}: give exactly one of cron=... or interval=...",
                schedule_id=schedule_id,
            )
        spec = ScheduleSpec(
            workflow_id="?",
            input=None,
            cron=cron,
            interval_ms=None if interval is None else _seconds_to_ms(interval, "interval"),
            timezone=timezone,
            overlap=overlap,
            deadline_ms=None
            if starting_deadline_seconds is None
            else _seconds_to_ms(starting_deadline_seconds, "starting_deadline_seconds"),
        )
        wf = self._resolve_workflow(workflow)
        spec = dataclasses.replace(
            spec, workflow_id=wf.workflow_id, input=_codec.loads(self._validate_input(wf, input))
        )
        return await self._ensure(schedule_id, spec, paused=paused, actor=actor, now=_wall_ms())

    async def _ensure(
        self, schedule_id: str, spec: ScheduleSpec, *, paused: bool, actor: str | None, now: int
    ) -> ScheduleInfo:
        store = self._schedules_store()
        existing = await store.get_schedule(schedule_id)
        if existing is None:
            next_ms = spec.first_slot(now)
            rec = await store.put_schedule(
                schedule_id,
                spec.to_json(),
                next_ms=next_ms,
                paused=paused,
                now_ms=now,
                create=True,
                audit=[
                    AuditDraft(
                        "created",
                        f"schedule created: {spec.describe()} → {spec.workflow_id}",
                        actor=self._actor(actor),
                    )
                ],
            )
            assert rec is not None
            return ScheduleInfo.from_record(rec)
        old = ScheduleSpec.from_json(existing.spec)
        if old == spec:
            return ScheduleInfo.from_record(existing)
        return await self._rewrite(existing, old, spec, paused=existing.paused, actor=actor, now=now)

    async def _rewrite(
        self,
        rec: ScheduleRecord,
        old: ScheduleSpec,
        spec: ScheduleSpec,
        *,
        paused: bool,
        actor: str | None,
        now: int,
        kind: str = "updated",
    ) -> ScheduleInfo:
        next_ms = rec.next_ms
        if not spec.same_timing(old):
            next_ms = spec.first_slot(now)
        changes = [
            f.name for f in dataclasses.fields(ScheduleSpec) if getattr(old, f.name) != getattr(spec, f.name)
        ]
        message = f"schedule {kind}"
        if changes:
            message += f": {', '.join(changes)} changed; {spec.describe()}"
        rec2 = await self._schedules_store().put_schedule(
            rec.schedule_id,
            spec.to_json(),
            next_ms=next_ms,
            paused=paused,
            now_ms=now,
            create=False,
            audit=[AuditDraft(kind, message, actor=self._actor(actor))],
        )
        if rec2 is None:
            raise ScheduleNotFound(
                f"schedule {rec.schedule_id!r} does not exist", schedule_id=rec.schedule_id
            )
        return ScheduleInfo.from_record(rec2)

    async def update_schedule(
        self,
        id: str,
        *,
        cron: str | _Unset | None = UNSET,
        interval: float | timedelta | _Unset | None = UNSET,
        timezone: str | _Unset = UNSET,
        input: Any = UNSET,
        overlap: Overlap | _Unset = UNSET,
        starting_deadline_seconds: float | _Unset | None = UNSET,
        paused: bool | _Unset = UNSET,
        actor: str | None = None,
    ) -> ScheduleInfo:
        """Change some of a schedule's settings in place (arguments left out stay as they are).

        Giving `cron` drops the interval and vice versa. Raises `ScheduleNotFound`, `InvalidSchedule`.
        """
        rec, old = await self._schedule_record(id)
        changes: dict[str, Any] = {}
        new_cron = None if isinstance(cron, _Unset) else cron
        new_interval = None if isinstance(interval, _Unset) else interval
        if new_cron is not None and new_interval is not None:
            raise InvalidSchedule(f"schedule {id!r}: give cron=... or interval=..., not both", schedule_id=id)
        if new_cron is not None:
            changes.update(cron=new_cron, interval_ms=None, at_ms=None)
        elif new_interval is not None:
            changes.update(cron=None, interval_ms=_seconds_to_ms(new_interval, "interval"), at_ms=None)
        elif not isinstance(cron, _Unset) or not isinstance(interval, _Unset):
            raise InvalidSchedule(
                f"schedule {id!r}: cron and interval cannot both be cleared", schedule_id=id
            )
        if not isinstance(timezone, _Unset):
            changes["timezone"] = timezone
        if not isinstance(overlap, _Unset):
            changes["overlap"] = overlap
        if not isinstance(starting_deadline_seconds, _Unset):
            changes["deadline_ms"] = (
                None
                if starting_deadline_seconds is None
                else _seconds_to_ms(starting_deadline_seconds, "starting_deadline_seconds")
            )
        if not isinstance(input, _Unset):
            wf = self._resolve_workflow(old.workflow_id)
            changes["input"] = _codec.loads(self._validate_input(wf, input))
        spec = dataclasses.replace(old, **changes)
        new_paused = rec.paused if isinstance(paused, _Unset) else bool(paused)
        if spec == old and new_paused == rec.paused:
            return ScheduleInfo.from_record(rec)
        now = _wall_ms()
        if new_paused != rec.paused:
            return await self._set_paused(rec, old, spec, new_paused, actor=actor, now=now)
        return await self._rewrite(rec, old, spec, paused=rec.paused, actor=actor, now=now)

    async def _set_paused(
        self,
        rec: ScheduleRecord,
        old: ScheduleSpec,
        spec: ScheduleSpec,
        paused: bool,
        *,
        actor: str | None,
        now: int,
    ) -> ScheduleInfo:
        next_ms = rec.next_ms
        if not paused and not spec.one_time:
            # Slots that passed while paused are not caught up: resume from the next one.
            next_ms = spec.next_after(now)
        elif not spec.same_timing(old):
            next_ms = spec.first_slot(now)
        message = "schedule paused" if paused else "schedule resumed"
        if not paused and next_ms is not None:
            message += f"; next run {slot_iso(next_ms)}"
        rec2 = await self._schedules_store().put_schedule(
            rec.schedule_id,
            spec.to_json(),
            next_ms=next_ms,
            paused=paused,
            now_ms=now,
            create=False,
            audit=[AuditDraft("paused" if paused else "resumed", message, actor=self._actor(actor))],
        )
        if rec2 is None:
            raise ScheduleNotFound(
                f"schedule {rec.schedule_id!r} does not exist", schedule_id=rec.schedule_id
            )
        return ScheduleInfo.from_record(rec2)

    async def pause_schedule(self, id: str, actor: str | None = None) -> ScheduleInfo:
        """Stop firing (runs already started go on). Pausing a paused schedule changes nothing."""
        rec, spec = await self._schedule_record(id)
        if rec.paused:
            return ScheduleInfo.from_record(rec)
        return await self._set_paused(rec, spec, spec, True, actor=actor, now=_wall_ms())

    async def resume_schedule(self, id: str, actor: str | None = None) -> ScheduleInfo:
        """Fire again from the next slot; slots that passed while paused do not run."""
        rec, spec = await self._schedule_record(id)
        if not rec.paused:
            return ScheduleInfo.from_record(rec)
        return await self._set_paused(rec, spec, spec, False, actor=actor, now=_wall_ms())

    async def get_schedule(self, id: str) -> ScheduleInfo:
        rec, _spec = await self._schedule_record(id)
        return ScheduleInfo.from_record(rec)

    async def list_schedules(self) -> list[ScheduleInfo]:
        return [ScheduleInfo.from_record(rec) for rec in await self._schedules_store().list_schedules()]

    async def list_schedule_audit(self, id: str, limit: int = 1000) -> list[AuditEntry]:
        """What happened to a schedule: writes, pauses, fired and skipped slots, oldest first."""
        await self._schedule_record(id)
        return await self._schedules_store().list_schedule_audit(id, limit)

    async def remove_schedule(self, id: str, actor: str | None = None) -> None:
        """Delete the schedule (runs already started go on). Raises `ScheduleNotFound`."""
        if not await self._schedules_store().delete_schedule(id):
            raise ScheduleNotFound(f"schedule {id!r} does not exist", schedule_id=id)
        log.info("schedule %s removed by %s", id, self._actor(actor) or "unknown")


# ---------------------------------------------------------------------------- the poller


class _HasStore(Protocol):
    @property
    def store(self) -> Store: ...

    @property
    def registry(self) -> Mapping[str, WorkflowDef]: ...


class Scheduler:
    """Fires due slots. Any number may poll one store: each slot fires once.

    `tick(now_ms)` claims every due schedule, fires or skips its slot, stores the next
    slot, and returns the earliest due time over all schedules (None if there is none).
    """

    def __init__(
        self, durable: _HasStore, *, claim_timeout: float = DEFAULT_CLAIM_TIMEOUT, batch: int = 100
    ) -> None:
        self.durable = durable
        self.claim_ms = int(claim_timeout * 1000)
        self.batch = batch

    @property
    def store(self) -> ScheduleStore:
        return schedule_store(self.durable.store)

    async def wait_change(self, timeout_s: float) -> None:
        await self.store.wait_schedule_change(timeout_s)

    async def tick(self, now_ms: int) -> int | None:
        store = self.store
        while True:
            claims = await store.claim_due_schedules(now_ms, self.claim_ms, self.batch)
            for claim in claims:
                try:
                    await self._fire(claim, now_ms)
                except Exception:
                    # The claim times out and another poll retries the slot (idempotently).
                    log.exception(
                        "schedule %s: firing the slot failed; it will be retried", claim.schedule_id
                    )
            if len(claims) < self.batch:
                break
        return await store.next_schedule_due()

    async def _fire(self, claim: ScheduleClaim, now_ms: int) -> None:
        sched = self.store
        exec_store = self.durable.store
        sid = claim.schedule_id
        rec = await sched.get_schedule(sid)
        if rec is None or rec.token != claim.token:
            return  # removed or rewritten since the claim: the rewrite set its own due time
        spec = ScheduleSpec.from_json(rec.spec)
        slot = rec.next_ms
        if rec.paused or slot is None or slot > now_ms:
            await sched.commit_schedule_slot(sid, claim.token, next_ms=slot, now_ms=now_ms)
            return
        latest, superseded = spec.latest_due(slot, now_ms)
        next_ms = spec.next_after(latest)
        actor = f"schedule:{sid}"
        audit: list[AuditDraft] = []
        skipped = superseded
        if superseded:
            audit.append(
                AuditDraft(
                    "skipped",
                    f"{superseded} slot(s) from {slot_iso(slot)} missed while no scheduler ran; "
                    f"only the latest ({slot_iso(latest)}) may run",
                    actor=actor,
                    data=_codec.dumps({"reason": "superseded", "first": slot_iso(slot), "count": superseded}),
                )
            )
        execution_id = slot_execution_id(sid, latest)
        late_ms = now_ms - latest
        if spec.deadline_ms is not None and late_ms > spec.deadline_ms:
            audit.append(
                AuditDraft(
                    "skipped",
                    f"slot {slot_iso(latest)} missed its starting deadline "
                    f"({late_ms / 1000:g} s late, deadline {spec.deadline_ms / 1000:g} s)",
                    actor=actor,
                    data=_codec.dumps({"reason": "deadline", "slot": slot_iso(latest), "late_ms": late_ms}),
                )
            )
            await sched.commit_schedule_slot(
                sid, claim.token, next_ms=next_ms, now_ms=now_ms, skipped=skipped + 1, audit=audit
            )
            return
        already = await exec_store.get_execution(execution_id)
        if already is None:
            previous = rec.last_execution_id
            prev = await exec_store.get_execution(previous) if previous and spec.overlap != "allow" else None
            if prev is not None and not prev.is_final:
                if spec.overlap == "forbid":
                    audit.append(
                        AuditDraft(
                            "skipped",
                            f"slot {slot_iso(latest)} skipped: {previous} is still {prev.status.value} (overlap forbid)",
                            actor=actor,
                            data=_codec.dumps(
                                {"reason": "overlap", "slot": slot_iso(latest), "running": previous}
                            ),
                        )
                    )
                    await sched.commit_schedule_slot(
                        sid, claim.token, next_ms=next_ms, now_ms=now_ms, skipped=skipped + 1, audit=audit
                    )
                    return
                try:
                    await exec_store.cancel(
                        prev.execution_id, f"replaced by schedule slot {slot_iso(latest)}", actor, now_ms
                    )
                    audit.append(
                        AuditDraft("replaced", f"cancelled {previous} (overlap replace)", actor=actor)
                    )
                except (ExecutionFinished, ExecutionNotFound):
                    pass
            wf = self.durable.registry.get(spec.workflow_id)
            await exec_store.create_execution(
                NewExecution(
                    execution_id=ExecutionId(execution_id),
                    workflow_id=spec.workflow_id,
                    input=_codec.dumps(spec.input, what="schedule input"),
                    now_ms=now_ms,
                    category=None if wf is None else wf.category,
                    actor=actor,
                    reason="schedule",
                )
            )
        audit.append(
            AuditDraft(
                "fired",
                f"slot {slot_iso(latest)} started {execution_id}"
                + (f" ({late_ms / 1000:g} s late)" if late_ms >= 1000 else ""),
                actor=actor,
            )
        )
        committed = await sched.commit_schedule_slot(
            sid,
            claim.token,
            next_ms=next_ms,
            now_ms=now_ms,
            fired=1,
            skipped=skipped,
            last_ms=latest,
            last_execution_id=execution_id,
            audit=audit,
        )
        if not committed:
            log.info("schedule %s: claim on slot %s was taken over", sid, slot_iso(latest))
