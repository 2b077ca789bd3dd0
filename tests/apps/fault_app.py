"""Workflows for the fault tests: every step body counts its runs in Redis (FAULT_REDIS_URL)."""

from __future__ import annotations

import os
import signal
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


def _kill_self_once(execution_id: str, point: str) -> int:
    """SIGKILL this worker process the first time `point` is reached (a crash hook); count the runs."""
    runs = count(execution_id, point)
    if r().set(f"fault:crashed:{execution_id}:{point}", "1", nx=True):
        r().set(f"fault:started:{execution_id}:{point}", "1")
        os.kill(os.getpid(), signal.SIGKILL)
    return runs


@workflow("fault.continue")
async def continuing(ctx: WorkflowContext, state: dict[str, Any]) -> dict[str, Any]:
    """Three runs under one id; the worker dies between a step's commit and the continue-as-new write
    (round 1), and inside a step body just before continue-as-new (round 2). Each round also consumes
    one signal, sent while the hand-offs (and crashes) happen."""
    eid, rnd = ctx.execution_id, int(state["round"])
    done = await ctx.step("work", count, eid, f"work-{rnd}")
    got = await ctx.wait_for_signal("fault.item", step_id="item")
    if rnd == 1:
        _kill_self_once(eid, "after-commit")  # workflow code, not a step: runs on every replay
    if rnd == 2:
        await ctx.step("last", _kill_self_once, eid, "in-step")
    seen = [*state["seen"], [done, got]]
    if rnd < 3:
        ctx.continue_as_new({"round": rnd + 1, "seen": seen})
    return {"round": rnd, "seen": seen, "run_input": state}
