"""`make demo`: an order workflow with a step, a durable sleep, a signal and an emit.

Runs an in-process worker on the embedded MemoryStore (or on Redis when
DURABLE_REDIS_URL is set) and prints the execution's audit timeline.
"""

from __future__ import annotations

import asyncio
import os
import sys

from pydantic import BaseModel

from durable import Durable, RetryPolicy, Signal, Store, workflow


class Order(BaseModel):
    order_id: str
    amount: float
    customer: str


class Approval(BaseModel):
    approved: bool
    by: str


APPROVED = Signal("orders.approved", Approval)

_attempts: dict[str, int] = {}


def reserve_stock(order_id: str) -> dict[str, object]:
    return {"order_id": order_id, "reserved": True}


def release_stock(reservation: dict[str, object]) -> None:
    print(f"    compensation: released stock for {reservation['order_id']}")


def charge_card(order_id: str, amount: float) -> dict[str, object]:
    # Fails once, to show a durable retry with back-off.
    _attempts[order_id] = _attempts.get(order_id, 0) + 1
    if _attempts[order_id] == 1:
        raise ConnectionError("payment gateway timed out")
    return {"charge_id": f"ch_{order_id}", "amount": amount}


@workflow("app.workflows.processOrder", category="orders")
async def process_order(ctx, order: Order) -> dict[str, object]:  # type: ignore[no-untyped-def]
    reservation = await ctx.step("reserve-stock", reserve_stock, order.order_id, compensate=release_stock)
    charge = await ctx.step(
        "charge-card",
        charge_card,
        order.order_id,
        order.amount,
        retry=RetryPolicy(max_attempts=3, initial_interval=0.2),
    )
    await ctx.sleep(0.5, step_id="cool-off")
    approval = await ctx.wait_for_signal(APPROVED, step_id="await-approval")
    if not approval.approved:
        await ctx.rollback()
        return {"status": "rejected", "by": approval.by}
    await ctx.emit("order.shipped", {"order_id": order.order_id, "charge": charge["charge_id"]})
    ctx.note("order shipped", {"reservation": reservation})
    return {"status": "shipped", "charge": charge, "approved_by": approval.by}


async def main() -> int:
    url = os.environ.get("DURABLE_REDIS_URL")
    store = Store.from_url(url) if url else None
    durable = Durable(store=store, workflows=[process_order])
    print(f"store: {'Redis at ' + url if url else 'embedded MemoryStore'}")
    async with durable.worker(concurrency=8, lease_ttl=5):
        eid = await durable.start(process_order, {"order_id": "A-1001", "amount": 42.5, "customer": "ada"})
        print(f"started execution {eid}")
        while (rec := await durable.get_execution(eid)) is not None and rec.status.value != "waiting":
            await asyncio.sleep(0.05)
        print("execution is waiting for orders.approved; sending it")
        await durable.signal(eid, APPROVED, {"approved": True, "by": "grace"})
        result = await durable.wait(eid, timeout=30)
        print(f"result: {result}")
        print("\naudit timeline:")
        entries = await durable.list_audit_entries(eid)
        start = entries[0].at if entries else None
        for entry in entries:
            offset = (entry.at - start).total_seconds() * 1000 if start else 0.0
            step = f" [{entry.step_id}]" if entry.step_id and not entry.step_id.startswith("__") else ""
            print(f"  +{offset:7.1f} ms  {entry.kind:<16}{entry.message}{step}")
        print("\nemitted events:")
        for execution_id, name, payload in await durable.list_emitted():
            if execution_id == eid:
                print(f"  {name}: {payload}")
    await durable.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
