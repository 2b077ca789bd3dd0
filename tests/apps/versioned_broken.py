"""`versioned.order` with the fraud check added without `ctx.patched`: v1's histories diverge."""

from __future__ import annotations

from typing import Any

from durable import WorkflowContext, workflow


def _ran_on(step: str) -> str:
    return f"{step}@broken"


@workflow("versioned.order")
async def order(ctx: WorkflowContext, order: Any) -> Any:
    reserved = await ctx.step("reserve", _ran_on, "reserve")
    await ctx.step("fraud", _ran_on, "fraud")
    await ctx.sleep(0.2)
    await ctx.wait_for_signal("go", step_id="approve")
    return [reserved, await ctx.step("ship", _ran_on, "ship")]
