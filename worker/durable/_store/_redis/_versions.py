"""Worker versions on Redis: a hash of current versions, a set of known ones, per-version queues."""

from __future__ import annotations

import asyncio
import copy
from typing import Self

from ..._records import FINAL_STATUSES, ExecutionId, Status, VersionLoad
from .._keys import check_version
from .._versions import Versions
from ._connection import RedisPart
from ._decode import finished, not_found, pairs, string, text

__all__ = ["RedisVersions"]

_SCAN_BATCH = 500
_RUNNABLE = {Status.PENDING.value, Status.RUNNING.value}
_FINAL = {s.value for s in FINAL_STATUSES}


class RedisVersions(RedisPart, Versions):
    @property
    def version(self) -> str:
        return self.keys.version

    def versioned(self, version: str) -> Self:
        view = copy.copy(self)
        view.keys = self.keys.versioned(check_version(version))
        return view

    async def current_versions(self) -> dict[str, str]:
        flat = await self._redis.call("HGETALL", self.keys.current_versions())
        return {string(k): string(v) for k, v in pairs(flat).items()}

    async def set_current_version(self, workflow_id: str, version: str, *, if_unset: bool = False) -> bool:
        key = self.keys.current_versions()
        if not check_version(version):
            return bool(await self._redis.call("HDEL", key, workflow_id))
        if if_unset:
            return bool(await self._redis.call("HSETNX", key, workflow_id, version))
        old = await self._redis.call("HGET", key, workflow_id)
        if old is not None and text(old) == version:
            return False
        await self._redis.call("HSET", key, workflow_id, version)
        return True

    async def known_versions(self) -> set[str]:
        return {text(v) for v in await self._redis.call("SMEMBERS", self.keys.known_versions())}

    async def add_known_version(self, version: str) -> None:
        if check_version(version):
            await self._redis.call("SADD", self.keys.known_versions(), version)

    async def version_load(self, workflow_id: str) -> dict[str, VersionLoad]:
        counts: dict[str, list[int]] = {}
        async for members in self._redis.scan_set(self.keys.active(), _SCAN_BATCH):
            found = await asyncio.gather(
                *(
                    self._redis.call("HMGET", self.keys.exec(text(m)), "workflow_id", "version", "status")
                    for m in members
                )
            )
            for wf, version, status in found:
                if wf is None or text(wf) != workflow_id or status is None or text(status) in _FINAL:
                    continue
                n = counts.setdefault(text(version) if version else "", [0, 0])
                n[0] += 1
                n[1] += text(status) in _RUNNABLE
        return {v: VersionLoad(v, n[0], n[1]) for v, n in sorted(counts.items())}

    async def migrate(
        self, execution_id: ExecutionId, to_version: str, actor: str | None, now_ms: int
    ) -> str | None:
        keys = self.keys.execution_keys(execution_id, check_version(to_version))
        res = await self._redis.script("migrate", keys, [execution_id, now_ms, actor or ""])
        if res == -2:
            raise not_found(execution_id)
        if res == -3:
            raise finished(execution_id)
        return text(res[1]) if int(res[0]) == 1 else None
