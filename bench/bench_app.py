"""Workflows of the standard benchmark (bench/run.py). Workers load them with `--app bench_app`.

Step bodies are plain (sync) functions returning small dicts, as most user code is written.
"""

from __future__ import annotations

from typing import Any

from durable import WorkflowContext, workflow


def small(n: int, name: str) -> dict[str, Any]:
    return {"n": n, "step": name, "ok": True}


@workflow("bench.three_steps")
async def three_steps(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    """W1, W2 and the Redis-bytes measurement: 3 sequential steps."""
    a = await ctx.step("a", small, n, "a")
    b = await ctx.step("b", small, a["n"] + 1, "b")
    c = await ctx.step("c", small, b["n"] + 1, "c")
    return {"n": c["n"]}


@workflow("bench.sleep_then_step")
async def sleep_then_step(ctx: WorkflowContext, seconds: float) -> dict[str, Any]:
    """W3: one durable sleep, then one step."""
    await ctx.sleep(seconds)
    return await ctx.step("after", small, 1, "after")


@workflow("bench.signal_then_step")
async def signal_then_step(ctx: WorkflowContext, _: Any = None) -> dict[str, Any]:
    """W4: wait for one signal, then one step."""
    payload = await ctx.wait_for_signal("go")
    return await ctx.step("after", small, int(payload or 0), "after")


@workflow("bench.many_steps")
async def many_steps(ctx: WorkflowContext, count: int) -> int:
    """W5a: `count` sequential steps in one execution."""
    total = 0
    for i in range(count):
        total += (await ctx.step(f"s{i}", small, i, "s"))["n"]
    return total


async def small_async(n: int, name: str) -> dict[str, Any]:
    return {"n": n, "step": name, "ok": True}


@workflow("bench.many_async_steps")
async def many_async_steps(ctx: WorkflowContext, count: int) -> int:
    """W5a's supplementary figure: the same steps with async bodies, which run on the event loop (no
    thread hand-off): the difference is what the thread pool costs sync bodies."""
    total = 0
    for i in range(count):
        total += (await ctx.step(f"s{i}", small_async, i, "s"))["n"]
    return total


@workflow("bench.many_sleeps")
async def many_sleeps(ctx: WorkflowContext, count: int) -> int:
    """W5b: `count` durable sleeps of 0 s, each a real suspend and wake-up."""
    for _ in range(count):
        await ctx.sleep(0)
    return count


@workflow("bench.sleeper")
async def sleeper(ctx: WorkflowContext, seconds: float) -> str:
    """Memory: an execution that sleeps for a long time."""
    await ctx.sleep(seconds)
    return "woke"
