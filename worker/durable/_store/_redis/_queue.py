"""The ready queue on Redis: one stream, read by the workers' consumer group (at least once).

A worker that goes silent leaves its entries pending; others take them over (`reclaim`) after the
visibility time-out. An entry without an execution id (trimmed, or written by hand) is acknowledged
and dropped wherever it turns up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..._records import ExecutionId, QueueEntry
from .._base import ReadyQueue
from .._keys import QUEUE_GROUP
from ._connection import Declared, RedisPart
from ._decode import StreamEntry, entries, string, text
from ._mux import RedisReplyError

__all__ = ["RedisQueue"]

# Longest blocking queue read: a worker looks at its other duties (timers, reclaiming) at least this often.
_MAX_BLOCK_MS = 5_000
_RECOVER_BATCH = 500


def _queue_entries(raw: list[StreamEntry], broken: list[bytes]) -> list[QueueEntry]:
    out: list[QueueEntry] = []
    for entry_id, f in raw:
        eid = f.get(b"e")
        if not eid:
            broken.append(entry_id)
            continue
        out.append(QueueEntry(text(entry_id), ExecutionId(eid.decode()), string(f.get(b"r"))))
    return out


class RedisQueue(RedisPart, ReadyQueue):
    async def enqueue(self, execution_id: ExecutionId, reason: str) -> None:
        await self._redis.call("XADD", self.keys.queue(), "*", "e", execution_id, "r", reason)

    async def dequeue(self, consumer: str, count: int, block_ms: int) -> list[QueueEntry]:
        block = min(block_ms, _MAX_BLOCK_MS) if block_ms > 0 else None
        return await self._read(consumer, ">", count, block)

    async def delivered_to(self, consumer: str, count: int) -> list[QueueEntry]:
        # Reading from id 0 answers this consumer's pending entries instead of new ones.
        return await self._read(consumer, "0", count, None)

    async def _read(self, consumer: str, last_id: str, count: int, block: int | None) -> list[QueueEntry]:
        raw = await self._redis.read_group(self.keys.queue(), QUEUE_GROUP, consumer, last_id, count, block)
        broken: list[bytes] = []
        out = _queue_entries(raw, broken)
        if broken:
            await self.ack([text(b) for b in broken])
        return out

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        await self._redis.script("ack", [self.keys.queue()], [QUEUE_GROUP, *entry_ids])

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[QueueEntry]:
        q = self.keys.queue()
        out: list[QueueEntry] = []
        start: bytes | str = "0-0"
        broken: list[bytes] = []
        for _ in range(16):
            try:
                res = await self._redis.call(
                    "XAUTOCLAIM", q, QUEUE_GROUP, consumer, min_idle_ms, start, "COUNT", count - len(out)
                )
            except RedisReplyError as exc:
                if "NOGROUP" in str(exc):
                    return []
                raise
            start = res[0]
            out.extend(_queue_entries(entries(res[1]), broken))
            if len(res) > 2:  # entries deleted from the stream while pending (Redis 7)
                broken.extend(res[2])
            if text(start) == "0-0" or len(out) >= count:
                break
        if broken:
            await self.ack([text(b) for b in broken])
        return out

    async def queue_depth(self) -> int:
        return int(await self._redis.call("XLEN", self.keys.queue()))

    async def recover(self, now_ms: int) -> int:
        queued: set[bytes] = set()
        known = {text(v) for v in await self._redis.call("SMEMBERS", self.keys.known_versions())}
        for version in sorted(known | {"", self.keys.version}):
            q = self.keys.queue(version)
            start = "-"
            while True:
                raw = entries(await self._redis.call("XRANGE", q, start, "+", "COUNT", 1000))
                queued.update(f[b"e"] for _, f in raw if b"e" in f)
                if len(raw) < 1000:
                    break
                start = "(" + text(raw[-1][0])
        total = 0
        async for batch in self._redis.scan_set(self.keys.active(), _RECOVER_BATCH):
            done = await asyncio.gather(*(self._recover_one(text(m), m in queued, now_ms) for m in batch))
            total += sum(done)
        return total

    async def _recover_one(self, eid: str, queued: bool, now_ms: int) -> int:
        # A waiting execution's signal list is declared once the script names it.
        def call(version: str, declared: Declared) -> tuple[list[str], list[Any]]:
            keys = self.keys.execution_keys(eid, version)
            waiting_for = declared.signals[-1] if declared.signals else ""
            keys.append(self.keys.sig(eid, waiting_for) if waiting_for else keys[0])
            return keys, [eid, now_ms, "1" if queued else "0", waiting_for]

        return int(await self._redis.script_on_queue("recover", eid, eid, self.keys.version, call))
