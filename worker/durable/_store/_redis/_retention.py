"""Retention on Redis: compacting, then purging, executions finished long ago (one script each)."""

from __future__ import annotations

from .._base import Retention
from ._connection import RedisPart

__all__ = ["RedisRetention"]


class RedisRetention(RedisPart, Retention):
    async def compact_finished(self, finished_before_ms: int, now_ms: int, limit: int = 1000) -> int:
        keys = [self.keys.compactable()]
        return int(await self._redis.script("compact", keys, ["", now_ms, finished_before_ms, limit]))

    async def purge_finished(self, finished_before_ms: int, limit: int = 1000) -> int:
        keys = [self.keys.finished(), self.keys.idx_all(), self.keys.active()]
        return int(await self._redis.script("purge", keys, ["", finished_before_ms, limit]))
