"""A workflow for the heartbeat fault test: its step heartbeats until its worker is stopped."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

import durable
from durable import RetryPolicy, WorkflowContext, workflow

_client: redis.Redis | None = None


def r() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["FAULT_REDIS_URL"])
    return _client


def beating(eid: str) -> dict[str, Any]:
    """The first attempt heartbeats for a long while (its worker is SIGSTOPped meanwhile); later ones
    return at once with the details they resumed from."""
    attempt = int(r().hincrby("timeout:runs", eid, 1))
    if attempt == 1:
        r().set(f"timeout:started:{eid}", str(os.getpid()))
        try:
            for i in range(600):
                durable.heartbeat({"done": i})
                time.sleep(0.05)
        except durable.StepAbandoned:
            r().set(f"timeout:abandoned:{eid}", str(os.getpid()))
            raise
    return {"pid": os.getpid(), "attempt": attempt, "resumed": durable.heartbeat_details()}


@workflow("timeout.heartbeat")
async def heartbeat_flow(ctx: WorkflowContext, _: Any) -> dict[str, Any]:
    result: dict[str, Any] = await ctx.step(
        "beat",
        beating,
        ctx.execution_id,
        heartbeat_timeout=1.0,
        retry=RetryPolicy(max_attempts=3, initial_interval=0),
    )
    return result
