"""`MemoryStore`'s `ScheduleStore`: schedule records, their due times, and the atomic claim of due slots."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..._records import AuditEntry
from .._data import AuditDraft
from .._schedules_base import ScheduleClaim, ScheduleRecord, ScheduleStore
from ._state import MemoryPart, Schedules, append_audit, audit_log, changed


def _audit(state: Schedules, schedule_id: str, drafts: Sequence[AuditDraft], now_ms: int) -> None:
    append_audit(state.audit.setdefault(schedule_id, audit_log()), drafts, now_ms, state.audit_seq)


def _set_due(state: Schedules, rec: ScheduleRecord) -> None:
    if rec.paused or rec.next_ms is None:
        state.due.pop(rec.schedule_id, None)
    else:
        state.due[rec.schedule_id] = rec.next_ms


class MemorySchedules(MemoryPart, ScheduleStore):
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
        state = self._state.schedules
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
        _set_due(state, rec)
        _audit(state, schedule_id, audit, now_ms)
        state.changed.set()
        return rec

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return self._state.schedules.records.get(schedule_id)

    async def list_schedules(self) -> list[ScheduleRecord]:
        records = self._state.schedules.records
        return [records[k] for k in sorted(records)]

    async def delete_schedule(self, schedule_id: str) -> bool:
        state = self._state.schedules
        state.due.pop(schedule_id, None)
        state.audit.pop(schedule_id, None)
        found = state.records.pop(schedule_id, None) is not None
        if found:
            state.changed.set()
        return found

    async def claim_due_schedules(self, now_ms: int, claim_ms: int, limit: int = 100) -> list[ScheduleClaim]:
        state = self._state.schedules
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
        state = self._state.schedules
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
        _set_due(state, rec)
        _audit(state, schedule_id, audit, now_ms)
        return True

    async def next_schedule_due(self) -> int | None:
        return min(self._state.schedules.due.values(), default=None)

    async def list_schedule_audit(self, schedule_id: str, limit: int = 1000) -> list[AuditEntry]:
        log = self._state.schedules.audit.get(schedule_id)
        if not log:
            return []
        return list(log)[-limit:] if limit > 0 else []

    async def wait_schedule_change(self, timeout_s: float) -> None:
        await changed(self._state.schedules.changed, timeout_s)
