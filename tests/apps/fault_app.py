"""Workflows for the fault tests: every step body counts its runs in Redis (FAULT_REDIS_URL)."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from durable import RetryPolicy, WorkflowContext, workflow

_client: redis.Redis | None = None


def r() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["FAULT_REDIS_URL"])
    return _client


def count(execution_id: str, step: str) -> int:
    return int(r().hincrby("fault:runs", f"{execution_id}:{step}", 1))


@workflow("fault.quick")
async def quick(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    out = {}
    for step in ("a", "b", "c"):
        out[step] = await ctx.step(step, count, ctx.execution_id, step)
    return {"n": n, **out}


def hold_if_first(execution_id: str, step: str, hold: float) -> int:
    runs = count(execution_id, step)
    if runs == 1:
        r().set(f"fault:started:{execution_id}:{step}", "1")
        time.sleep(hold)
    return runs


@workflow("fault.slow")
async def slow(ctx: WorkflowContext, hold: float) -> dict[str, Any]:
    one = await ctx.step("one", count, ctx.execution_id, "one")
    two = await ctx.step("two", hold_if_first, ctx.execution_id, "two", hold)
    three = await ctx.step("three", count, ctx.execution_id, "three")
    return {"one": one, "two": two, "three": three}


@workflow("fault.saga")
async def saga(ctx: WorkflowContext, hold: float) -> str:
    eid = ctx.execution_id
    await ctx.step(
        "reserve", count, eid, "reserve", compensate=lambda: hold_if_first(eid, "undo-reserve", hold)
    )
    await ctx.step("charge", count, eid, "charge", compensate=lambda: count(eid, "undo-charge"))
    try:
        await ctx.step("ship", _no_truck, retry=RetryPolicy(max_attempts=1))
    except Exception:
        await ctx.rollback()
        return "rolled back"
    return "shipped"


def _no_truck() -> None:
    raise RuntimeError("no truck")


@workflow("fault.sleepy")
async def sleepy(ctx: WorkflowContext, seconds: float) -> list[Any]:
    await ctx.sleep(seconds)
    timed = await ctx.wait_for_signal("fault.poke", timeout=seconds, step_id="wait")
    return [timed.kind, await ctx.step("after", count, ctx.execution_id, "after")]
