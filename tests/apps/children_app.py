"""Workflows for the child-workflow fault test: a parent waiting on a child whose step holds its worker."""

from __future__ import annotations

from typing import Any

from apps.fault_app import count, hold_if_first
from durable import WorkflowContext, workflow


@workflow("children_app.child")
async def child(ctx: WorkflowContext, hold: float) -> dict[str, Any]:
    held = await ctx.step("held", hold_if_first, ctx.execution_id, "held", hold)
    return {"held": held}


@workflow("children_app.parent")
async def parent(ctx: WorkflowContext, hold: float) -> dict[str, Any]:
    before = await ctx.step("before", count, ctx.execution_id, "before")
    result = await ctx.child(child, hold)
    after = await ctx.step("after", count, ctx.execution_id, "after")
    return {"before": before, "child": result, "after": after}
