"""Schedules for the Redis store (mixed into `RedisStore`).

Every schedule key carries the hash tag `{s0}` (see `Keys`), so the claim script may
touch any schedule's record on a single Redis or in one Cluster slot. Each write is one
Lua script (`lua/schedule_*.lua`); reads are plain commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc

from ..._errors import StoreUnavailable
from ..._records import AuditEntry, ms_to_dt
from .._base import AuditDraft
from .._keys import AUDIT_MAXLEN, Keys
from .._schedules_base import ScheduleClaim, ScheduleRecord, ScheduleStore

_SCRIPTS = ("schedule_put", "schedule_claim", "schedule_commit", "schedule_delete")
_UNAVAILABLE = (rexc.ConnectionError, rexc.TimeoutError, ConnectionError)


@contextlib.asynccontextmanager
async def _guard(timeout_s: float | None) -> AsyncIterator[None]:
    """Connection failures become `StoreUnavailable`; a call past its deadline too (a hung server)."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError as exc:
        raise StoreUnavailable("redis did not answer in time") from exc
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"redis is unreachable: {exc}") from exc


def _int(value: bytes | None, default: int = 0) -> int:
    return int(value) if value else default


def _decode(schedule_id: str, raw: dict[bytes, bytes]) -> ScheduleRecord:
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


def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _audit_args(drafts: Sequence[AuditDraft]) -> list[Any]:
    args: list[Any] = [len(drafts)]
    for d in drafts:
        args.extend((d.kind, d.message, d.step_id or "", d.actor or "", d.data or b""))
    return args


class RedisScheduleStore(ScheduleStore):
    redis: aioredis.Redis
    keys: Keys
    _max_block_ms: int | None
    _op_timeout: float | None

    def _sched_guard(self, extra_s: float = 0.0) -> contextlib.AbstractAsyncContextManager[None]:
        timeout: float | None = getattr(self, "_op_timeout", 10.0)
        return _guard(None if timeout is None else timeout + extra_s)

    def _sched_script(self, name: str) -> Any:
        scripts: dict[str, Any] | None = getattr(self, "_sched_scripts", None)
        if scripts is None:
            folder = resources.files("durable._store").joinpath("lua")
            scripts = {
                n: self.redis.register_script(folder.joinpath(f"{n}.lua").read_text(encoding="utf-8"))
                for n in _SCRIPTS
            }
            self._sched_scripts = scripts
        return scripts[name]

    async def _sched_run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        async with self._sched_guard():
            return await self._sched_script(name)(keys=keys, args=args)

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
            *_audit_args(audit),
        ]
        flat = await self._sched_run("schedule_put", keys, args)
        if not flat:
            return None
        return _decode(schedule_id, _pairs(flat))

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        async with self._sched_guard():
            raw: Any = await self.redis.hgetall(self.keys.schedule(schedule_id))
        return _decode(schedule_id, raw) if raw else None

    async def list_schedules(self) -> list[ScheduleRecord]:
        async with self._sched_guard():
            members: Any = await self.redis.smembers(self.keys.schedule_index())
            ids = sorted(m.decode() for m in members)
            if not ids:
                return []
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.hgetall(self.keys.schedule(sid))
                raws = await pipe.execute()
        return [_decode(sid, raw) for sid, raw in zip(ids, raws, strict=True) if raw]

    async def delete_schedule(self, schedule_id: str) -> bool:
        keys = self.keys.schedule_write_keys(schedule_id)
        return bool(await self._sched_run("schedule_delete", keys, [schedule_id]))

    async def claim_due_schedules(self, now_ms: int, claim_ms: int, limit: int = 100) -> list[ScheduleClaim]:
        if limit <= 0:
            return []
        flat = await self._sched_run(
            "schedule_claim", [self.keys.schedule_due()], [now_ms, claim_ms, limit, self.keys.schedule("")]
        )
        return [
            ScheduleClaim(
                schedule_id=flat[i].decode(), token=int(flat[i + 1]), due_ms=int(float(flat[i + 2]))
            )
            for i in range(0, len(flat), 3)
        ]

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
            *_audit_args(audit),
        ]
        return bool(await self._sched_run("schedule_commit", keys, args))

    async def next_schedule_due(self) -> int | None:
        async with self._sched_guard():
            first: Any = await self.redis.zrange(self.keys.schedule_due(), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def list_schedule_audit(self, schedule_id: str, limit: int = 1000) -> list[AuditEntry]:
        if limit <= 0:
            return []
        async with self._sched_guard():
            entries: Any = await self.redis.xrevrange(self.keys.schedule_audit(schedule_id), count=limit)
        out: list[AuditEntry] = []
        for entry_id, f in reversed(entries):
            at = ms_to_dt(_int(f.get(b"t")))
            assert at is not None
            data = f.get(b"d")
            out.append(
                AuditEntry(
                    entry_id=entry_id.decode(),
                    at=at,
                    kind=f.get(b"k", b"").decode(),
                    message=f.get(b"m", b"").decode(),
                    step_id=f[b"s"].decode() if f.get(b"s") else None,
                    actor=f[b"a"].decode() if f.get(b"a") else None,
                    data=orjson.loads(data) if data else None,
                )
            )
        return out

    async def wait_schedule_change(self, timeout_s: float) -> None:
        block_ms = int(timeout_s * 1000)
        cap = getattr(self, "_max_block_ms", None)
        if cap is not None:
            block_ms = min(block_ms, cap)
        key = self.keys.schedule_changes()
        async with self._sched_guard(max(0, block_ms) / 1000):
            last: str | None = getattr(self, "_sched_change_id", None)
            if last is None:
                newest: Any = await self.redis.xrevrange(key, count=1)
                last = newest[0][0].decode() if newest else "0-0"
                self._sched_change_id = last
            if block_ms <= 0:
                return
            got: Any = await self.redis.xread({key: last}, count=100, block=block_ms) or []
        for _stream, entries in got:
            if entries:
                self._sched_change_id = entries[-1][0].decode()
