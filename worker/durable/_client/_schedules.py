"""The schedules client (`Durable.schedules`): one-time and recurring starts of a workflow.

`ScheduleClient` writes and reads schedule definitions; the slots a schedule fires at are
computed by `ScheduleSpec` (`durable._schedule_specs`) and fired by the worker's `Scheduler`
(`durable._worker._schedule_poller`): see those modules for the daylight-saving and catch-up rules.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import _codec
from .._errors import InvalidSchedule, ScheduleNotFound, WorkflowNotFound
from .._records import AuditEntry, ExecutionId
from .._schedule_specs import (
    OVERLAP_POLICIES,
    CronSlots,
    Overlap,
    ScheduleSpec,
    slot_execution_id,
    slot_iso,
    to_ms,
)
from .._store._base import AuditDraft, NewExecution, Store
from .._store._schedules_base import ScheduleRecord, ScheduleStore
from .._worker._schedule_poller import DEFAULT_CLAIM_TIMEOUT, Scheduler, schedule_store
from ._executions import encode_input
from ._schedule_info import ScheduleInfo

if TYPE_CHECKING:
    from .._workflow._definitions import WorkflowDef

__all__ = [
    "DEFAULT_CLAIM_TIMEOUT",
    "OVERLAP_POLICIES",
    "CronSlots",
    "Overlap",
    "ScheduleClient",
    "ScheduleInfo",
    "ScheduleSpec",
    "Scheduler",
    "slot_execution_id",
    "slot_iso",
]

log = logging.getLogger("durable.schedules")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
# Key names next to the schedule records in Redis.
_RESERVED_IDS = frozenset({"due", "index"})


def _wall_ms() -> int:
    """The client's clock (tests replace it)."""
    return int(time.time() * 1000)


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


class ScheduleClient:
    """A client's schedules (`Durable.schedules`): write, pause, read and remove them.

    `once` and `ensure` write one (a one-time and a recurring schedule), `update`, `pause`, `resume`
    change it, `trigger` starts a run now, `get`, `list`, `audit` read, `remove` deletes. It takes what it needs of its client:
    the store (its schedule part), how the client resolves a workflow given by function or id, and
    the actor audit entries name when a call names none.
    """

    def __init__(
        self, store: Store, resolve_workflow: Callable[[Any], WorkflowDef], *, actor: str | None = None
    ) -> None:
        self._store = store
        self._resolve_workflow = resolve_workflow
        self._default_actor = actor

    @property
    def _records(self) -> ScheduleStore:
        # Checked per call, not at construction: a store without schedules still serves executions.
        return schedule_store(self._store)

    def _actor(self, actor: str | None) -> str | None:
        return actor or self._default_actor

    def _workflow_input(self, workflow: Any, input: Any) -> tuple[str, Any]:
        """The workflow's id and `input` validated against its annotation, in stored form."""
        wf = self._resolve_workflow(workflow)
        return wf.workflow_id, _codec.loads(encode_input(wf, input))

    async def _schedule_record(self, schedule_id: str) -> tuple[ScheduleRecord, ScheduleSpec]:
        rec = await self._records.get_schedule(schedule_id)
        if rec is None:
            raise ScheduleNotFound(f"schedule {schedule_id!r} does not exist", schedule_id=schedule_id)
        return rec, ScheduleSpec.from_json(rec.spec)

    async def once(
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
            at_ms = to_ms(at.astimezone(UTC))
        else:
            delay_ms = _seconds_to_ms(delay, "delay")
            if delay_ms < 0:
                raise InvalidSchedule("delay must not be negative")
            at_ms = now + delay_ms
        schedule_id = _check_id(id) if id is not None else f"once-{uuid.uuid4().hex[:16]}"
        workflow_id, stored_input = self._workflow_input(workflow, input)
        spec = ScheduleSpec(
            workflow_id=workflow_id,
            input=stored_input,
            at_ms=at_ms,
            overlap=overlap,
            deadline_ms=None
            if starting_deadline_seconds is None
            else _seconds_to_ms(starting_deadline_seconds, "starting_deadline_seconds"),
        )
        await self._ensure_spec(schedule_id, spec, paused=False, actor=actor, now=now)
        return schedule_id

    async def ensure(
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
        workflow_id, stored_input = self._workflow_input(workflow, input)
        spec = dataclasses.replace(spec, workflow_id=workflow_id, input=stored_input)
        return await self._ensure_spec(schedule_id, spec, paused=paused, actor=actor, now=_wall_ms())

    async def _ensure_spec(
        self, schedule_id: str, spec: ScheduleSpec, *, paused: bool, actor: str | None, now: int
    ) -> ScheduleInfo:
        store = self._records
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
        audit = AuditDraft(kind, message, actor=self._actor(actor))
        return await self._put(rec, spec, next_ms=next_ms, paused=paused, now=now, audit=audit)

    async def _put(
        self,
        rec: ScheduleRecord,
        spec: ScheduleSpec,
        *,
        next_ms: int | None,
        paused: bool,
        now: int,
        audit: AuditDraft,
    ) -> ScheduleInfo:
        """Write an existing schedule's definition; `ScheduleNotFound` if it was removed meanwhile."""
        written = await self._records.put_schedule(
            rec.schedule_id,
            spec.to_json(),
            next_ms=next_ms,
            paused=paused,
            now_ms=now,
            create=False,
            audit=[audit],
        )
        if written is None:
            raise ScheduleNotFound(
                f"schedule {rec.schedule_id!r} does not exist", schedule_id=rec.schedule_id
            )
        return ScheduleInfo.from_record(written)

    async def update(
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
            changes["input"] = self._workflow_input(old.workflow_id, input)[1]
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
        audit = AuditDraft("paused" if paused else "resumed", message, actor=self._actor(actor))
        return await self._put(rec, spec, next_ms=next_ms, paused=paused, now=now, audit=audit)

    async def pause(self, id: str, actor: str | None = None) -> ScheduleInfo:
        """Stop firing (runs already started go on). Pausing a paused schedule changes nothing."""
        rec, spec = await self._schedule_record(id)
        if rec.paused:
            return ScheduleInfo.from_record(rec)
        return await self._set_paused(rec, spec, spec, True, actor=actor, now=_wall_ms())

    async def resume(self, id: str, actor: str | None = None) -> ScheduleInfo:
        """Fire again from the next slot; slots that passed while paused do not run."""
        rec, spec = await self._schedule_record(id)
        if not rec.paused:
            return ScheduleInfo.from_record(rec)
        return await self._set_paused(rec, spec, spec, False, actor=actor, now=_wall_ms())

    async def trigger(self, id: str, actor: str | None = None) -> str:
        """Start one run of the schedule's workflow with its input now, outside its slots; returns the
        execution id, `<schedule id>@manual-<ms since the epoch>`.

        Audited on the schedule as `triggered` with the actor. The overlap policy is not applied (a run
        of a `forbid` schedule may still be going; `replace` cancels nothing) and the schedule's slots,
        counters and last run do not change; a paused schedule can be triggered. Writing the audit entry
        voids a claim another poller may hold on a due slot at that moment: that slot fires when the
        claim times out instead. Raises `ScheduleNotFound`.
        """
        rec, spec = await self._schedule_record(id)
        now = _wall_ms()
        execution_id = f"{id}@manual-{now}"
        try:
            category = self._resolve_workflow(spec.workflow_id).category
        except WorkflowNotFound:
            category = None  # a client without the workflow's code (the dashboard without --app)
        await self._store.create_execution(
            NewExecution(
                execution_id=ExecutionId(execution_id),
                workflow_id=spec.workflow_id,
                input=_codec.dumps(spec.input, what="schedule input"),
                now_ms=now,
                category=category,
                actor=self._actor(actor),
                reason="schedule",
            )
        )
        written = await self._records.put_schedule(
            id,
            rec.spec,
            next_ms=rec.next_ms,
            paused=rec.paused,
            now_ms=now,
            create=False,
            audit=[
                AuditDraft("triggered", f"triggered now: started {execution_id}", actor=self._actor(actor))
            ],
        )
        if written is None:
            raise ScheduleNotFound(f"schedule {id!r} does not exist", schedule_id=id)
        log.info("schedule %s triggered by %s: %s", id, self._actor(actor) or "unknown", execution_id)
        return execution_id

    async def get(self, id: str) -> ScheduleInfo:
        rec, _spec = await self._schedule_record(id)
        return ScheduleInfo.from_record(rec)

    async def list(self) -> builtins.list[ScheduleInfo]:
        return [ScheduleInfo.from_record(rec) for rec in await self._records.list_schedules()]

    async def audit(self, id: str, limit: int = 1000) -> builtins.list[AuditEntry]:
        """What happened to a schedule: writes, pauses, fired and skipped slots, oldest first."""
        await self._schedule_record(id)
        return await self._records.list_schedule_audit(id, limit)

    async def remove(self, id: str, actor: str | None = None) -> None:
        """Delete the schedule (runs already started go on). Raises `ScheduleNotFound`."""
        if not await self._records.delete_schedule(id):
            raise ScheduleNotFound(f"schedule {id!r} does not exist", schedule_id=id)
        log.info("schedule %s removed by %s", id, self._actor(actor) or "unknown")
