"""Schedules on Redis.

Every schedule key carries the hash tag `{s0}` (see `Keys`), so the claim script may touch any
schedule's record on a single Redis or in one Cluster slot. Each write is one Lua script
(`lua/schedule_*.lua`); reads are plain commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..._records import AuditEntry
from .._base import AuditDraft
from .._due import take_due
from .._keys import AUDIT_MAXLEN, Keys
from .._schedules_base import ScheduleClaim, ScheduleRecord, ScheduleStore
from ._connection import RedisConnection, RedisPart
from ._decode import audit_entry, entries, pairs, text
from ._encode import pack_audit

__all__ = ["RedisSchedules"]


def _int(value: bytes | None, default: int = 0) -> int:
    return int(value) if value else default


def _schedule(schedule_id: str, raw: dict[bytes, bytes]) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=schedule_id,
        spec=raw.get(b"spec", b""),
        paused=raw.get(b"paused") == b"1",
        next_ms=int(raw[b"next"]) if raw.get(b"next") else None,
        last_ms=int(raw[b"last"]) if raw.get(b"last") else None,
        last_execution_id=raw[b"leid"].decode() if raw.get(b"leid") else None,
        fired=_int(raw.get(b"fired")),
        skipped=_int(raw.get(b"skipped")),
        created_ms=_int(raw.get(b"created")),
        updated_ms=_int(raw.get(b"updated")),
        token=_int(raw.get(b"token")),
    )


class RedisSchedules(RedisPart, ScheduleStore):
    def __init__(self, redis: RedisConnection, keys: Keys) -> None:
        super().__init__(redis, keys)
        # The newest entry of the change stream this store has seen (None: not looked yet).
        self._sched_change_id: str | None = None

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
        keys = self.keys.schedule_write_keys(schedule_id)
        args: list[Any] = [
            schedule_id,
            spec,
            "" if next_ms is None else next_ms,
            "1" if paused else "0",
            now_ms,
            "1" if create else "0",
            AUDIT_MAXLEN,
        ]
        flat = await self._redis.script("schedule_put", keys, pack_audit(audit, args))
        if not flat:
            return None
        return _schedule(schedule_id, pairs(flat))

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        flat = await self._redis.call("HGETALL", self.keys.schedule(schedule_id))
        return _schedule(schedule_id, pairs(flat)) if flat else None

    async def list_schedules(self) -> list[ScheduleRecord]:
        members = await self._redis.call("SMEMBERS", self.keys.schedule_index())
        ids = sorted(m.decode() for m in members)
        if not ids:
            return []
        # Sent together (the connection pipelines them): one round trip.
        flats = await asyncio.gather(*(self._redis.call("HGETALL", self.keys.schedule(sid)) for sid in ids))
        return [_schedule(sid, pairs(flat)) for sid, flat in zip(ids, flats, strict=True) if flat]

    async def delete_schedule(self, schedule_id: str) -> bool:
        keys = self.keys.schedule_write_keys(schedule_id)
        return bool(await self._redis.script("schedule_delete", keys, [schedule_id]))

    async def claim_due_schedules(self, now_ms: int, claim_ms: int, limit: int = 100) -> list[ScheduleClaim]:
        async def due(n: int) -> list[str]:
            found = await self._redis.call(
                "ZRANGEBYSCORE", self.keys.schedule_due(), "-inf", now_ms, "LIMIT", 0, n
            )
            return [text(sid) for sid in found]

        async def claim(sid: str) -> ScheduleClaim | None:
            # One script per schedule, declaring its record; of pollers racing for a slot only one
            # finds it still due.
            keys = [self.keys.schedule_due(), self.keys.schedule(sid)]
            got = await self._redis.script("schedule_claim", keys, [sid, now_ms, claim_ms])
            return ScheduleClaim(sid, token=int(got[0]), due_ms=int(float(got[1]))) if got else None

        return await take_due(due, claim, limit)

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
        k = self.keys
        keys = [k.schedule(schedule_id), k.schedule_due(), k.schedule_audit(schedule_id)]
        args: list[Any] = [
            schedule_id,
            token,
            "" if next_ms is None else next_ms,
            now_ms,
            fired,
            skipped,
            "" if last_ms is None else last_ms,
            last_execution_id or "",
            AUDIT_MAXLEN,
        ]
        return bool(await self._redis.script("schedule_commit", keys, pack_audit(audit, args)))

    async def next_schedule_due(self) -> int | None:
        first = await self._redis.call("ZRANGE", self.keys.schedule_due(), 0, 0, "WITHSCORES")
        return int(float(first[1])) if first else None

    async def list_schedule_audit(self, schedule_id: str, limit: int = 1000) -> list[AuditEntry]:
        if limit <= 0:
            return []
        raw = await self._redis.call(
            "XREVRANGE", self.keys.schedule_audit(schedule_id), "+", "-", "COUNT", limit
        )
        return [audit_entry(entry_id, f) for entry_id, f in reversed(entries(raw))]

    async def wait_schedule_change(self, timeout_s: float) -> None:
        block_ms = int(timeout_s * 1000)
        key = self.keys.schedule_changes()
        last = self._sched_change_id
        if last is None:
            newest = await self._redis.call("XREVRANGE", key, "+", "-", "COUNT", 1)
            last = self._sched_change_id = text(newest[0][0]) if newest else "0-0"
        if block_ms <= 0:
            return
        got = await self._redis.blocking_call(
            block_ms, "XREAD", "COUNT", 100, "BLOCK", block_ms, "STREAMS", key, last
        )
        for _stream, raw in got or ():
            if raw:
                self._sched_change_id = text(raw[-1][0])
