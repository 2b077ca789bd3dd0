"""Schedules for the in-process store (mixed into `MemoryStore`).

The state lives in one attribute created on first use, so the store's own
`__init__` need not know about it. As in the rest of `MemoryStore`, no method
awaits between its reads and writes, which makes each one atomic on one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._records import AuditEntry
from ._base import AuditDraft
from ._schedules_base import ScheduleClaim, ScheduleRecord, ScheduleStore

_AUDIT_CAP = 1_000


@dataclass
class _SchedState:
    records: dict[str, ScheduleRecord] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)  # schedule id -> due ms
    audit: dict[str, deque[AuditEntry]] = field(default_factory=dict)
    audit_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryScheduleStore(ScheduleStore):
    _sched: _SchedState

    def _sched_state(self) -> _SchedState:
        try:
            return self._sched
        except AttributeError:
            self._sched = _SchedState()
            return self._sched

    def _sched_audit(
        self, state: _SchedState, schedule_id: str, drafts: Sequence[AuditDraft], now_ms: int
    ) -> None:
        log = state.audit.setdefault(schedule_id, deque(maxlen=_AUDIT_CAP))
        for d in drafts:
            log.append(d.to_entry(f"{now_ms}-{next(state.audit_seq)}", now_ms))

    @staticmethod
    def _sched_set_due(state: _SchedState, rec: ScheduleRecord) -> None:
        if rec.paused or rec.next_ms is None:
            state.due.pop(rec.schedule_id, None)
        else:
            state.due[rec.schedule_id] = rec.next_ms

    async def put_schedule(
        self,
        schedule_id: str,
        spec: bytes,
        *,
        next_ms: int | None,
        paused: bool,
        now_ms: int,
        create: bool,
        audit: Sequence[AuditDraft] = (),
    ) -> ScheduleRecord | None:
        state = self._sched_state()
        old = state.records.get(schedule_id)
        if old is None:
            if not create:
                return None
            rec = ScheduleRecord(
                schedule_id=schedule_id,
                spec=spec,
                paused=paused,
                next_ms=next_ms,
                last_ms=None,
                last_execution_id=None,
                fired=0,
                skipped=0,
                created_ms=now_ms,
                updated_ms=now_ms,
                token=1,
            )
        else:
            rec = dataclasses.replace(
                old, spec=spec, paused=paused, next_ms=next_ms, updated_ms=now_ms, token=old.token + 1
            )
        state.records[schedule_id] = rec
        self._sched_set_due(state, rec)
        self._sched_audit(state, schedule_id, audit, now_ms)
        state.changed.set()
        return rec

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return self._sched_state().records.get(schedule_id)

    async def list_schedules(self) -> list[ScheduleRecord]:
        records = self._sched_state().records
        return [records[k] for k in sorted(records)]

    async def delete_schedule(self, schedule_id: str) -> bool:
        state = self._sched_state()
        state.due.pop(schedule_id, None)
        state.audit.pop(schedule_id, None)
        found = state.records.pop(schedule_id, None) is not None
        if found:
            state.changed.set()
        return found

    async def claim_due_schedules(self, now_ms: int, claim_ms: int, limit: int = 100) -> list[ScheduleClaim]:
        state = self._sched_state()
        due = sorted((ms, sid) for sid, ms in state.due.items() if ms <= now_ms)[: max(0, limit)]
        claims = []
        for ms, sid in due:
            rec = state.records[sid]
            rec = dataclasses.replace(rec, token=rec.token + 1)
            state.records[sid] = rec
            state.due[sid] = now_ms + claim_ms
            claims.append(ScheduleClaim(schedule_id=sid, token=rec.token, due_ms=ms))
        return claims

    async def commit_schedule_slot(
        self,
        schedule_id: str,
        token: int,
        *,
        next_ms: int | None,
        now_ms: int,
        fired: int = 0,
        skipped: int = 0,
        last_ms: int | None = None,
        last_execution_id: str | None = None,
        audit: Sequence[AuditDraft] = (),
    ) -> bool:
        state = self._sched_state()
        rec = state.records.get(schedule_id)
        if rec is None or rec.token != token:
            return False
        rec = dataclasses.replace(
            rec,
            next_ms=next_ms,
            fired=rec.fired + fired,
            skipped=rec.skipped + skipped,
            last_ms=rec.last_ms if last_ms is None else last_ms,
            last_execution_id=rec.last_execution_id if last_execution_id is None else last_execution_id,
        )
        state.records[schedule_id] = rec
        self._sched_set_due(state, rec)
        self._sched_audit(state, schedule_id, audit, now_ms)
        return True

    async def next_schedule_due(self) -> int | None:
        return min(self._sched_state().due.values(), default=None)

    async def list_schedule_audit(self, schedule_id: str, limit: int = 1000) -> list[AuditEntry]:
        log = self._sched_state().audit.get(schedule_id)
        if not log:
            return []
        return list(log)[-limit:] if limit > 0 else []

    async def wait_schedule_change(self, timeout_s: float) -> None:
        state = self._sched_state()
        state.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.changed.wait(), max(0.0, timeout_s))
