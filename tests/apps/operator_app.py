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


def _work(order: dict[str, Any], index: int) -> int:
    return int(order.get("id", 0)) * 10 + index


@workflow("test.multistep")
async def multistep(ctx: Any, order: dict[str, Any]) -> dict[str, Any]:
    """Steps with durable sleeps between them: many status changes, several activations."""
    done = []
    for index in range(int(order.get("steps", 3))):
        done.append(await ctx.step(f"work-{index}", _work, order, index))
        await ctx.sleep(float(order.get("sleep", 0.1)), step_id=f"pause-{index}")
    return {"id": order.get("id"), "done": done}
