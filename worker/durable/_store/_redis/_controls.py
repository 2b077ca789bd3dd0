"""What an operator does to one execution on Redis: cancel, force a failure, retry after a failure, skip a
stuck step."""

from __future__ import annotations

from typing import Any

from ..._errors import ExecutionNotFailed
from ..._records import ExecutionId, Status
from .._base import Controls
from .._data import cancelled_error, forced_failure_error
from ._concurrency import give_back
from ._connection import Declared, RedisPart
from ._decode import finished, no_consumed_signal, not_found, text

__all__ = ["RedisControls"]


class RedisControls(RedisPart, Controls):
    async def _on_queue(self, name: str, execution_id: ExecutionId, args: list[Any]) -> Any:
        def call(version: str, _: Declared) -> tuple[list[str], list[Any]]:
            return self.keys.execution_keys(execution_id, version), args

        return await self._redis.script_on_queue(name, execution_id, execution_id, self.keys.version, call)

    async def cancel(self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int) -> Status:
        return await self._stop(
            execution_id, reason, actor, now_ms, Status.CANCELLED, cancelled_error(reason, actor)
        )

    async def force_fail(
        self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int
    ) -> Status:
        error = forced_failure_error(reason, actor)
        return await self._stop(execution_id, reason, actor, now_ms, Status.FAILED, error)

    async def _stop(
        self,
        execution_id: ExecutionId,
        reason: str,
        actor: str | None,
        now_ms: int,
        status: Status,
        error: bytes,
    ) -> Status:
        keys = self.keys.execution_keys(execution_id)
        res = await self._redis.script(
            "stop", keys, [execution_id, now_ms, reason, actor or "", error, status.value]
        )
        if res == -2:
            raise not_found(execution_id)
        if res == -3:
            raise finished(execution_id)
        stopped = Status(text(res))
        if stopped != Status.RUNNING:
            # Not atomic with the stop: a parked waiter's recheck timer covers a crash in between.
            await give_back(self._redis, self.keys, execution_id, now_ms)
        return stopped

    async def retry_execution(
        self,
        execution_id: ExecutionId,
        actor: str | None,
        now_ms: int,
        *,
        discard_signal_step: str | None = None,
    ) -> None:
        args = [execution_id, now_ms, actor or "", discard_signal_step or ""]
        res = await self._on_queue("retry", execution_id, args)
        if res == -2:
            raise not_found(execution_id)
        if res == -4:
            raise ExecutionNotFailed(f"execution {execution_id!r} has not failed", execution_id=execution_id)
        if res == -5:
            raise no_consumed_signal(execution_id, discard_signal_step or "")

    async def skip_step(
        self, execution_id: ExecutionId, step_id: str, record: bytes, actor: str | None, now_ms: int
    ) -> None:
        args = [execution_id, now_ms, step_id, record, actor or ""]
        res = await self._on_queue("skip_step", execution_id, args)
        if res == -2:
            raise not_found(execution_id)
        if res == -3:
            raise finished(execution_id)
