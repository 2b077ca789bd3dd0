"""Answers the connection lost on the way back: the store did the work, the worker never heard.

An acquire whose answer is lost leaves a lease under the worker's own id that no activation holds; the
worker takes it over on its next try instead of waiting out its time-to-live (on both stores).
"""

from __future__ import annotations

import asyncio
from typing import Any

from durable import Durable, Store, Worker, WorkflowContext, WorkflowDef
from durable._records import now_ms

WID = "lost.answers"


async def steps(ctx: WorkflowContext, _: Any) -> Any:
    return [await ctx.step(f"s{i}", lambda i=i: i) for i in range(3)]


async def test_an_orphaned_lease_of_the_worker_itself_is_taken_over(store: Store) -> None:
    d = Durable(store=store, workflows=[WorkflowDef(workflow_id=WID, fn=steps)])
    eid = await d.start(WID, None, execution_id="orphan")
    # The worker's acquire went through, its answer did not: the lease lives 10 minutes.
    lost = await store.acquire(eid, "worker-a", 600_000, now_ms())  # type: ignore[arg-type]
    assert lost.outcome == "ok"
    worker = Worker(store, d.registry, worker_id="worker-a", lease_ttl=600, max_idle_poll=0.05)
    async with worker:
        assert await d.wait(eid, timeout=15) == [0, 1, 2]
    record = await d.get_execution(eid)
    assert record is not None and record.activations == 2


async def test_another_workers_lease_is_not_taken_over(store: Store) -> None:
    d = Durable(store=store, workflows=[WorkflowDef(workflow_id=WID, fn=steps)])
    eid = await d.start(WID, None, execution_id="held")
    held = await store.acquire(eid, "worker-b", 600_000, now_ms())  # type: ignore[arg-type]
    assert held.outcome == "ok"
    async with Worker(store, d.registry, worker_id="worker-a", max_idle_poll=0.05) as worker:
        while worker.processed == 0:
            await asyncio.sleep(0.02)
    record = await d.get_execution(eid)
    assert record is not None and record.activations == 1 and not record.is_final
