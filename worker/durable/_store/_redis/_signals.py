"""Signals into executions on Redis, and the JSON Schemas senders without the model check payloads against."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..._records import ExecutionId
from .._base import CHECKED_BY_MODEL, SchemaCheckNeeded, Signals
from ._connection import Declared, RedisPart
from ._decode import finished, not_found, pairs, string

__all__ = ["RedisSignals"]


class RedisSignals(RedisPart, Signals):
    async def send_signal(
        self,
        execution_id: ExecutionId,
        name: str,
        payload: bytes,
        delivery_id: str,
        now_ms: int,
        actor: str | None = None,
        *,
        checked: str = CHECKED_BY_MODEL,
    ) -> bool:
        args = [execution_id, now_ms, name, payload, delivery_id, actor or "", checked]

        def call(version: str, _: Declared) -> tuple[list[str], list[Any]]:
            keys = self.keys.execution_keys(execution_id, version)
            keys.append(self.keys.sig(execution_id, name))
            return keys, args

        res = await self._redis.script_on_queue(
            "send_signal", execution_id, execution_id, self.keys.version, call
        )
        if isinstance(res, list):  # [-5, schema]: the waiter recorded a schema the sender did not check
            raise SchemaCheckNeeded(bytes(res[1]))
        if res == -2:
            raise not_found(execution_id)
        if res == -3:
            raise finished(execution_id)
        return bool(res == 1)

    async def signal_schema(self, execution_id: ExecutionId, name: str) -> bytes | None:
        exec_key, registry = self.keys.exec(execution_id), self.keys.signal_schemas()
        # Both reads go out together (the connection pipelines them): one round trip.
        own, published = await asyncio.gather(
            self._redis.call("HMGET", exec_key, "wait_signal", "wait_schema"),
            self._redis.call("HGET", registry, name),
        )
        if own and own[0] is not None and string(own[0]) == name and own[1]:
            return bytes(own[1])
        return bytes(published) if published else None

    async def published_signal_schemas(self) -> dict[str, bytes]:
        flat = await self._redis.call("HGETALL", self.keys.signal_schemas())
        return {string(k): bytes(v) for k, v in pairs(flat).items()}

    async def publish_signal_schemas(self, schemas: Mapping[str, bytes]) -> None:
        if schemas:
            fields = [item for name_schema in schemas.items() for item in name_schema]
            await self._redis.call("HSET", self.keys.signal_schemas(), *fields)
