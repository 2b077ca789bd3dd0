"""Workflows the operator tests serve: the samples' order flow and one that always fails."""

from __future__ import annotations

from typing import Any

from durable import workflow


def _reserve(order: dict[str, Any]) -> dict[str, Any]:
    return {"reserved": order.get("id")}


def _ship(order: dict[str, Any]) -> str:
    return f"shipped-{order.get('id')}"


@workflow("app.workflows.processOrder")
async def process_order(ctx: Any, order: dict[str, Any]) -> dict[str, Any]:
    await ctx.step("reserve-stock", _reserve, order)
    approval = await ctx.wait_for_signal("orders.approved", step_id="await-approval")
    shipped = await ctx.step("ship", _ship, order)
    return {"shipped": shipped, "approver": (approval or {}).get("approver")}


def _boom(order: dict[str, Any]) -> None:
    raise RuntimeError(f"card declined for order {order.get('id')}")


@workflow("test.failing")
async def failing(ctx: Any, order: dict[str, Any]) -> None:
    await ctx.step("charge-card", _boom, order)
