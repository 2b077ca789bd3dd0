"""The status feed on Redis: a capped stream of status changes, read through consumer groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._records import ExecutionId, Status, StatusConsumer, StatusEvent, ms_to_dt
from .._base import StatusFeed
from .._keys import Keys
from ._connection import RedisConnection, RedisPart
from ._decode import opt, pairs, stream_entries, string, text
from ._mux import RedisReplyError

__all__ = ["RedisStatusFeed"]


def _missing(exc: RedisReplyError) -> bool:
    """The group or the stream does not exist (yet)."""
    return "NOGROUP" in str(exc) or "no such key" in str(exc).lower()


def _event(event_id: str, f: dict[bytes, bytes]) -> StatusEvent:
    at = ms_to_dt(int(f.get(b"t") or 0))
    assert at is not None
    return StatusEvent(
        event_id=event_id,
        execution_id=ExecutionId(string(f.get(b"e"))),
        workflow_id=string(f.get(b"w")),
        status=Status(string(f.get(b"s"))),
        current_step=opt(f.get(b"c")),
        at=at,
    )


class RedisStatusFeed(RedisPart, StatusFeed):
    def __init__(self, redis: RedisConnection, keys: Keys) -> None:
        super().__init__(redis, keys)
        # Per (group, consumer): "0" while its unacknowledged events are still to be read again, then ">".
        self._status_cursors: dict[tuple[str, str], str] = {}

    async def read_status_events(
        self, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StatusEvent]:
        stream = self.keys.status()
        key = (group, consumer)
        while True:
            # First what this consumer was given and never acked (a restart resumes there), then new events.
            last_id = self._status_cursors.get(key, "0")
            block = block_ms if last_id == ">" and block_ms > 0 else None
            raw = await self._redis.read_group(stream, group, consumer, last_id, count, block)
            if last_id != ">":
                if not raw:
                    self._status_cursors[key] = ">"
                    continue
                self._status_cursors[key] = text(raw[-1][0])
            events: list[StatusEvent] = []
            trimmed: list[str] = []
            for entry_id, f in raw:
                if not f.get(b"e"):
                    trimmed.append(text(entry_id))
                    continue
                events.append(_event(text(entry_id), f))
            if trimmed:
                await self.ack_status_events(group, trimmed)
            if events or last_id == ">":
                return events

    async def claim_status_events(self, group: str, consumer: str, min_idle_ms: int) -> int:
        stream = self.keys.status()
        start: bytes | str = "0-0"
        claimed = 0
        while True:
            try:
                reply = await self._redis.call(
                    "XAUTOCLAIM", stream, group, consumer, min_idle_ms, start, "COUNT", 500
                )
            except RedisReplyError as exc:
                if "NOGROUP" in str(exc):
                    return 0  # no group yet: the first read creates it from the stream's start
                raise
            start = reply[0]
            claimed += len(reply[1])
            if text(start) == "0-0":
                break
        # The claimed entries are now this consumer's unacknowledged ones: read those first.
        self._status_cursors[(group, consumer)] = "0"
        return claimed

    async def status_consumers(self, group: str) -> list[StatusConsumer]:
        try:
            raw = await self._redis.call("XINFO", "CONSUMERS", self.keys.status(), group)
        except RedisReplyError as exc:
            if _missing(exc):
                return []
            raise
        out = []
        for flat in raw:
            fields = pairs(flat)
            out.append(
                StatusConsumer(
                    name=string(fields.get(b"name")),
                    pending=int(fields.get(b"pending", 0)),
                    idle_ms=int(fields.get(b"idle", 0)),
                )
            )
        return out

    async def drop_status_consumer(self, group: str, consumer: str) -> None:
        try:
            await self._redis.call("XGROUP", "DELCONSUMER", self.keys.status(), group, consumer)
        except RedisReplyError as exc:
            if not _missing(exc):
                raise
        self._status_cursors.pop((group, consumer), None)

    async def tail_status_events(
        self, after: str | None, count: int, block_ms: int
    ) -> tuple[list[StatusEvent], str]:
        stream = self.keys.status()
        if after is None:
            # The newest entry's id ("0-0" for an empty stream): "$" cannot be carried to the next read.
            last = await self._redis.call("XREVRANGE", stream, "+", "-", "COUNT", 1)
            after = text(last[0][0]) if last else "0-0"
        args: list[Any] = ["XREAD", "COUNT", count]
        if block_ms > 0:
            args += ["BLOCK", block_ms]
        args += ["STREAMS", stream, after]
        reply = await (
            self._redis.blocking_call(block_ms, *args) if block_ms > 0 else self._redis.call(*args)
        )
        events: list[StatusEvent] = []
        for entry_id, f in stream_entries(reply):
            after = text(entry_id)
            if f.get(b"e"):
                events.append(_event(after, f))
        return events, after

    async def ack_status_events(self, group: str, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self._redis.call("XACK", self.keys.status(), group, *event_ids)
