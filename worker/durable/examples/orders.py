"""An order workflow: a step with compensation, a retried step, a durable sleep, a signal, an emit.

The Kubernetes samples (examples/k8s/) serve it: `durable worker --app durable.examples.orders`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from durable import RetryPolicy, Signal, WorkflowContext, workflow


class Item(BaseModel):
    sku: str
    qty: int = Field(default=1, ge=1)


class Order(BaseModel):
    id: int
    items: list[Item] = Field(default_factory=list)


class Approval(BaseModel):
    approver: str
    approved: bool = True


APPROVED = Signal("orders.approved", Approval)

# Attempts per order in this process: the gateway "times out" once, to show a durable retry.
_charge_attempts: dict[int, int] = {}


def reserve_stock(order_id: int, items: list[dict[str, object]]) -> dict[str, object]:
    return {"order_id": order_id, "reserved": len(items)}


def release_stock(reservation: dict[str, object]) -> dict[str, object]:
    return {"released": reservation["order_id"]}


def charge_card(order_id: int, quantity: int) -> dict[str, object]:
    _charge_attempts[order_id] = _charge_attempts.get(order_id, 0) + 1
    if _charge_attempts[order_id] == 1:
        raise ConnectionError("payment gateway timed out")
    return {"charge_id": f"ch_{order_id}", "amount": 9.5 * quantity}


@workflow("app.workflows.processOrder", category="orders")
async def process_order(ctx: WorkflowContext, order: Order) -> dict[str, object]:
    """Reserve, charge, cool off, wait for approval, then ship or roll back."""
    items = [item.model_dump() for item in order.items]
    reservation = await ctx.step("reserve-stock", reserve_stock, order.id, items, compensate=release_stock)
    quantity = sum(item.qty for item in order.items)
    charge = await ctx.step(
        "charge-card",
        charge_card,
        order.id,
        quantity,
        retry=RetryPolicy(max_attempts=3, initial_interval=0.2),
    )
    await ctx.sleep(0.5, step_id="cool-off")
    approval = await ctx.wait_for_signal(APPROVED, step_id="await-approval")
    if not approval.approved:
        await ctx.rollback()
        return {"status": "rejected", "approver": approval.approver}
    await ctx.emit("order.shipped", {"order_id": order.id, "charge": charge["charge_id"]})
    await ctx.note("order shipped", {"reserved": reservation["reserved"]})
    return {"status": "shipped", "charge": charge, "approver": approval.approver}
