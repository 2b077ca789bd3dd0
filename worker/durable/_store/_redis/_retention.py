"""Retention on Redis: compacting, then purging, executions finished long ago, one script per execution
(each declaring the keys it drops), a batch of them per round trip."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .._base import Retention
from ._connection import Declared, RedisPart
from ._decode import text

__all__ = ["RedisRetention"]


class RedisRetention(RedisPart, Retention):
    async def compact_finished(self, finished_before_ms: int, now_ms: int, limit: int = 1000) -> int:
        ids = await self._finished_before(self.keys.compactable(), finished_before_ms, limit)
        names = await asyncio.gather(*(self._redis.call("SMEMBERS", self.keys.signames(eid)) for eid in ids))

        async def compact(eid: str, signals: list[bytes]) -> int:
            def call(declared: Declared) -> tuple[list[str], list[Any]]:
                keys = self.keys.execution_keys(eid)
                keys.extend(self.keys.sig(eid, name) for name in declared.signals)
                return keys, [eid, now_ms, finished_before_ms, len(declared.signals), *declared.signals]

            known = Declared(signals=tuple(text(n) for n in signals))
            return int(await self._redis.script_declaring("compact", eid, call, known))

        return sum(await asyncio.gather(*(compact(eid, n) for eid, n in zip(ids, names, strict=True))))

    async def purge_finished(self, finished_before_ms: int, limit: int = 1000) -> int:
        ids = await self._finished_before(self.keys.finished(), finished_before_ms, limit)
        known = await asyncio.gather(*(self._known(eid) for eid in ids))

        async def purge(eid: str, known: Declared) -> int:
            def call(declared: Declared) -> tuple[list[str], list[Any]]:
                keys = self.keys.execution_keys(eid)
                keys.append(self.keys.idx_all())
                keys.append(self.keys.idx_workflow(declared.workflow) if declared.workflow else keys[0])
                keys.extend(self.keys.sig(eid, name) for name in declared.signals)
                args = [
                    eid,
                    int(time.time() * 1000),
                    finished_before_ms,
                    declared.workflow,
                    len(declared.signals),
                    *declared.signals,
                ]
                return keys, args

            return int(await self._redis.script_declaring("purge", eid, call, known))

        return sum(await asyncio.gather(*(purge(eid, k) for eid, k in zip(ids, known, strict=True))))

    async def _known(self, eid: str) -> Declared:
        """What a purge of `eid` will touch, read ahead (the script checks it): its workflow's index and
        its buffered signals' lists."""
        workflow, names = await asyncio.gather(
            self._redis.call("HGET", self.keys.exec(eid), "workflow_id"),
            self._redis.call("SMEMBERS", self.keys.signames(eid)),
        )
        return Declared(text(workflow or b""), tuple(text(n) for n in names))

    async def _finished_before(self, index: str, before_ms: int, limit: int) -> list[str]:
        """Oldest first: the ids in a finished-time index that became final before `before_ms`."""
        found = await self._redis.call("ZRANGEBYSCORE", index, "-inf", f"({before_ms}", "LIMIT", 0, limit)
        return [text(member) for member in found]
