"""`versioned.order` as version v1's image brings it (tests/cli/test_versions_cli.py)."""

from __future__ import annotations

from typing import Any

from durable import WorkflowContext, workflow

CODE = "v1"


def _ran_on(step: str) -> str:
    return f"{step}@{CODE}"


@workflow("versioned.order")
async def order(ctx: WorkflowContext, order: Any) -> Any:
    reserved = await ctx.step("reserve", _ran_on, "reserve")
    await ctx.sleep(0.2)
    await ctx.wait_for_signal("go", step_id="approve")
    return [reserved, await ctx.step("ship", _ran_on, "ship")]
