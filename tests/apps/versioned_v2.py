"""`versioned.order` as version v2's image brings it: a fraud check added behind `ctx.patched`, so v1's
histories still replay on it."""

from __future__ import annotations

from typing import Any

from durable import WorkflowContext, workflow

CODE = "v2"


def _ran_on(step: str) -> str:
    return f"{step}@{CODE}"


@workflow("versioned.order")
async def order(ctx: WorkflowContext, order: Any) -> Any:
    reserved = await ctx.step("reserve", _ran_on, "reserve")
    if ctx.patched("fraud-check"):
        await ctx.step("fraud", _ran_on, "fraud")
    await ctx.sleep(0.2)
    await ctx.wait_for_signal("go", step_id="approve")
    return [reserved, await ctx.step("ship", _ran_on, "ship")]
