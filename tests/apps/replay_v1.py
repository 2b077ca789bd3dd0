"""`replay.order` as first deployed (tests/cli/test_replay_cli.py keeps executions of it in flight)."""

from __future__ import annotations

from typing import Any

from durable import WorkflowContext, workflow


def _done(name: str) -> str:
    return name


@workflow("replay.order")
async def order(ctx: WorkflowContext, order: Any) -> Any:
    await ctx.step("reserve", _done, "reserve")
    await ctx.wait_for_signal("go", step_id="approve")
    return await ctx.step("ship", _done, "ship")
