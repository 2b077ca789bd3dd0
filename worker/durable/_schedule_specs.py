"""Slots: the instants a schedule is due, and the definition they are computed from.

Cron expressions are read in the schedule's time zone the way Vixie cron reads them, so
daylight-saving changes behave as people who run cron expect:

- a wall-clock time that does not exist (the hour skipped in spring) fires at the
  first instant after the gap, once, rather than silently losing that day's run;
- a wall-clock time that happens twice (the hour repeated in autumn) fires once, at its
  first occurrence, for expressions with a fixed hour; expressions that run every hour
  (hour field `*`) follow real time and so also run in the repeated hour.

Intervals are plain UTC arithmetic, aligned to the Unix epoch (every 1 h fires on the
hour), so a slot does not depend on when the schedule was written.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from croniter import CroniterBadDateError, croniter

from . import _codec
from ._errors import InvalidSchedule

Overlap = Literal["allow", "forbid", "replace"]
OVERLAP_POLICIES: tuple[Overlap, ...] = ("allow", "forbid", "replace")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Daylight-saving and other offset changes are assumed smaller than this (true of every zone today).
_SHIFT = timedelta(hours=3)
_SHIFT_MS = 3 * 3600 * 1000
_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
# Past this many missed slots the catch-up count is extrapolated instead of walked.
_CATCH_UP_WALK = 2_000


def slot_iso(ms: int) -> str:
    """A slot time as UTC ISO 8601 (`2024-03-31T01:30:00Z`), milliseconds only when non-zero."""
    dt = _EPOCH + ms * _MS
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def slot_execution_id(schedule_id: str, slot_ms: int) -> str:
    return f"{schedule_id}@{slot_iso(slot_ms)}"


def to_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // _MS


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
        ms = to_ms(first)
        if self.every_hour and first.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) == wall:
            second = to_ms(wall.replace(tzinfo=self.tz, fold=1))
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
