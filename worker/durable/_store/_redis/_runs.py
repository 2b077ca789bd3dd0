"""A worker's side of one activation on Redis: the fenced lease, checkpoints, suspension, the final write.

Every write here is one Lua script that first compares the caller's token with the execution's fence
counter and lease, and answers "lease lost" without writing when they differ.
"""

from __future__ import annotations

import time
from typing import Any

from ..._errors import LeaseLost
from ..._records import ExecutionId, Status
from .._base import Acquired, Checkpoint, Runs, SignalWait, SuspendOutcome
from .._data import step_timer_id
from ._connection import Declared, RedisPart
from ._decode import record, steps, text
from ._encode import pack_checkpoint, timer_member

__all__ = ["RedisRuns"]


class RedisRuns(RedisPart, Runs):
    async def acquire(
        self, execution_id: ExecutionId, worker_id: str, ttl_ms: int, now_ms: int, *, own_orphan: bool = False
    ) -> Acquired:
        keys = self.keys.execution_keys(execution_id)
        args = [execution_id, now_ms, worker_id, ttl_ms, "1" if own_orphan else "0"]
        res = await self._redis.script("acquire", keys, args)
        outcome = text(res[0])
        if outcome == "ok":
            return Acquired("ok", token=int(res[1]), record=record(execution_id, res[2]), steps=steps(res[3]))
        if outcome == "busy":
            return Acquired("busy", retry_after_ms=int(res[1]))
        if outcome == "finished":
            return Acquired("finished")
        if outcome == "moved":
            return Acquired("moved")
        return Acquired("missing")

    async def renew(self, execution_id: ExecutionId, worker_id: str, token: int, ttl_ms: int) -> bool:
        keys = self.keys.execution_keys(execution_id)
        return bool(await self._redis.script("renew", keys, [execution_id, "", worker_id, token, ttl_ms]))

    async def commit(
        self, execution_id: ExecutionId, token: int, checkpoint: Checkpoint, now_ms: int
    ) -> bool:
        keys = self.keys.execution_keys(execution_id)
        res = await self._redis.script(
            "commit", keys, pack_checkpoint(checkpoint, [execution_id, now_ms, token])
        )
        if res == -1:
            raise LeaseLost(execution_id=execution_id, token=token)
        return bool(res == 1)

    async def suspend(
        self,
        execution_id: ExecutionId,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        wake_at_ms: int | None = None,
        timer_id: str | None = None,
        wait: SignalWait | None = None,
        ack: str | None = None,
    ) -> SuspendOutcome:
        keys = self.keys.execution_keys(execution_id)
        member = "" if wake_at_ms is None else timer_member(execution_id, timer_id or "wake")
        args: list[Any] = [
            execution_id,
            now_ms,
            token,
            Status(status).value,
            "" if wake_at_ms is None else wake_at_ms,
        ]
        args.append(member)
        if wait is None:
            keys.append(keys[0])
            args.extend(("0", "", "", b"", b"", "", b"", b""))
        else:
            keys.append(self.keys.sig(execution_id, wait.name))
            # Without a timeout record a passed deadline cannot be recorded: the wait just suspends.
            deadline = "" if wait.deadline_ms is None or wait.timeout_record is None else wait.deadline_ms
            timeout_record = wait.timeout_record or b""
            args.extend(
                (
                    "1",
                    wait.name,
                    wait.step_id,
                    wait.record_prefix,
                    wait.record_suffix,
                    deadline,
                    timeout_record,
                    wait.schema or b"",
                )
            )
        pack_checkpoint(checkpoint, args).append(ack or "")
        res = await self._redis.script("suspend", keys, args)
        kind = text(res[0])
        if kind == "lost":
            raise LeaseLost(execution_id=execution_id, token=token)
        if kind == "signal":
            return SuspendOutcome("signal", payload=res[1])
        if kind == "timeout":
            return SuspendOutcome("timeout")
        if kind == "cancelled":
            return SuspendOutcome("cancelled")
        return SuspendOutcome("suspended")

    async def finish(
        self,
        execution_id: ExecutionId,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        result: bytes | None = None,
        error: bytes | None = None,
        ack: str | None = None,
    ) -> None:
        status = Status(status)
        if not status.is_final:
            raise ValueError(f"finish needs a final status, not {status.value!r}")
        args: list[Any] = [execution_id, now_ms, token, status.value]
        args.extend(("0", b"") if result is None else ("1", result))
        args.extend(("0", b"") if error is None else ("1", error))
        pack_checkpoint(checkpoint, args).append(ack or "")
        res = await self._redis.script("finish", self.keys.execution_keys(execution_id), args)
        if res == -1:
            raise LeaseLost(execution_id=execution_id, token=token)

    async def continue_as_new(
        self,
        execution_id: ExecutionId,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        input: bytes,
        ack: str | None = None,
    ) -> bool:
        args = pack_checkpoint(checkpoint, [execution_id, now_ms, token, input])
        args.append(ack or "")

        def call(version: str, _declared: Declared) -> tuple[list[str], list[Any]]:
            return self.keys.execution_keys(execution_id, version), args

        res = await self._redis.script_on_queue(
            "continue_as_new", execution_id, execution_id, self.keys.version, call
        )
        if res == -1:
            raise LeaseLost(execution_id=execution_id, token=token)
        return bool(res == 1)

    async def release(self, execution_id: ExecutionId, worker_id: str, token: int) -> Status | None:
        keys = self.keys.execution_keys(execution_id)
        res = await self._redis.script(
            "release", keys, [execution_id, int(time.time() * 1000), worker_id, token]
        )
        # An integer (0, or 1 for a rewake), or the final status of a stop request it applied.
        return Status(text(res)) if isinstance(res, (bytes, str)) else None

    async def put_running_step(
        self, execution_id: ExecutionId, token: int, step_id: str, record: bytes, due_ms: int, now_ms: int
    ) -> None:
        member = timer_member(execution_id, step_timer_id(step_id))
        args = [execution_id, now_ms, token, step_id, record, member, due_ms]
        if await self._redis.script("put_running_step", self.keys.execution_keys(execution_id), args) == -1:
            raise LeaseLost(execution_id=execution_id, token=token)
