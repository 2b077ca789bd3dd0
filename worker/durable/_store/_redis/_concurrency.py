"""`RedisStore`'s `Concurrency`: a group's slots and waiting line are two sorted sets next to the queue
(`Keys.concurrency_slots`, `Keys.concurrency_waiting`); admission and freeing are one script each
(`conc_admit`, `conc_free`)."""

from __future__ import annotations

from typing import Any

from ..._errors import LeaseLost
from ..._records import ExecutionId
from .._concurrency import RECHECK_MS, Admission, Concurrency, waiting_for_concurrency
from .._keys import Keys
from ._connection import Declared, RedisConnection, RedisPart
from ._decode import text
from ._encode import timer_member

__all__ = ["RedisConcurrency", "give_back"]

_FINAL = {"completed", "failed", "cancelled"}


async def give_back(
    redis: RedisConnection, keys: Keys, execution_id: ExecutionId, now_ms: int, group: str | None = None
) -> int:
    """`Concurrency.free_slot` (shared with the controls, which free a slot after a cancel)."""
    if group is None:
        group = text(await redis.call("HGET", keys.exec(execution_id), "conc_group") or b"")
    if not group:
        return 0
    chosen = group

    def call(version: str, _: Declared) -> tuple[list[str], list[Any]]:
        return keys.concurrency_keys(execution_id, chosen, version), [execution_id, now_ms, chosen]

    res = await redis.script_on_queue("conc_free", execution_id, execution_id, keys.version, call)
    return max(0, int(res))


class RedisConcurrency(RedisPart, Concurrency):
    async def admit(
        self,
        execution_id: ExecutionId,
        token: int,
        group: str,
        limit: int,
        now_ms: int,
        *,
        recheck_ms: int = RECHECK_MS,
        ack: str | None = None,
    ) -> Admission:
        keys = self.keys.concurrency_keys(execution_id, group)
        member = timer_member(execution_id, "concurrency")

        async def ask(mode: str) -> str:
            args = [execution_id, now_ms, token, group, limit, mode, now_ms + recheck_ms, member]
            args += [waiting_for_concurrency(group), ack or ""]
            return text(await self._redis.script("conc_admit", keys, args))

        answer = await ask("try")
        if answer == "full":
            # Free the slots of holders that are final or gone (a worker died between its final
            # write and its free_slot), then ask again, parking if still full.
            holders = await self._redis.call("ZRANGE", self.keys.concurrency_slots(group), 0, -1)
            for raw in holders:
                holder = ExecutionId(text(raw))
                status = await self._redis.call("HGET", self.keys.exec(holder), "status")
                if status is None or text(status) in _FINAL:
                    await give_back(self._redis, self.keys, holder, now_ms, group)
            answer = await ask("park")
        if answer == "lost":
            raise LeaseLost(
                f"execution {execution_id!r}: lease token {token} is stale",
                execution_id=execution_id,
                token=token,
            )
        assert answer in ("admitted", "parked", "cancelled"), answer
        return answer  # type: ignore[return-value]

    async def enroll(self, execution_id: ExecutionId, group: str, now_ms: int) -> bool:
        keys = self.keys.concurrency_keys(execution_id, group)
        return bool(await self._redis.script("conc_enroll", keys, [execution_id, now_ms, group]))

    async def free_slot(self, execution_id: ExecutionId, now_ms: int, *, group: str | None = None) -> int:
        return await give_back(self._redis, self.keys, execution_id, now_ms, group)

    async def concurrency_state(self, group: str) -> tuple[list[ExecutionId], list[ExecutionId]]:
        holders = await self._redis.call("ZRANGE", self.keys.concurrency_slots(group), 0, -1)
        waiters = await self._redis.call("ZRANGE", self.keys.concurrency_waiting(group), 0, -1)
        return [ExecutionId(text(h)) for h in holders], [ExecutionId(text(w)) for w in waiters]
