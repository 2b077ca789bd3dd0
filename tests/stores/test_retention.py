"""Retention on both stores: `compact_finished` keeps a finished execution's record and drops its history."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from durable._records import Status
from durable._store._base import AuditDraft, Checkpoint, NewExecution, Store

TTL = 30_000


def now() -> int:
    return int(time.time() * 1000)


async def finished(store: Store, eid: str, status: Status) -> None:
    await store.create_execution(NewExecution(eid, "wf", b'{"n":1}', now()))  # type: ignore[arg-type]
    got = await store.acquire(eid, "w1", TTL, now())
    assert got.outcome == "ok"
    await store.send_signal(eid, "go", b"1", f"d-{eid}", now())
    cp = Checkpoint(
        records=[("s1", b'{"seq":1,"kind":"step","status":"completed","result":1}')],
        audit=[AuditDraft("step.completed", "step s1 completed", step_id="s1")],
        current_step="s1",
    )
    assert await store.commit(eid, got.token, cp, now()) is False
    if status == Status.COMPLETED:
        await store.finish(eid, got.token, Checkpoint(), now(), status=status, result=b'{"ok":true}')
    else:
        await store.finish(eid, got.token, Checkpoint(), now(), status=status, error=b'{"message":"boom"}')


async def test_compaction_keeps_the_record_and_drops_the_history(store: Store) -> None:
    await finished(store, "done", Status.COMPLETED)
    await finished(store, "broken", Status.FAILED)
    assert await store.compact_finished(now() - 60_000, now()) == 0  # not old enough
    assert await store.compact_finished(now() + 1, now()) == 1  # the failed one keeps its history
    assert await store.compact_finished(now() + 1, now()) == 0  # once only

    rec = await store.get_execution("done")
    assert rec is not None and rec.status == Status.COMPLETED
    assert rec.result == {"ok": True} and rec.input == {"n": 1} and rec.current_step == "s1"
    assert await store.load_steps("done") == {}
    assert await store.list_audit("done") == []

    assert set(await store.load_steps("broken")) == {"s1"}
    assert [a.kind for a in await store.list_audit("broken")][-1] == "failed"

    assert await store.purge_finished(now() + 1) == 2
    assert await store.get_execution("done") is None


async def test_a_retried_execution_compacts_after_it_completes(store: Store) -> None:
    await finished(store, "again", Status.FAILED)
    await store.retry_execution("again", "ops", now())
    got = await store.acquire("again", "w1", TTL, now())
    assert got.outcome == "ok" and set(got.steps) == {"s1"}
    await store.finish("again", got.token, Checkpoint(), now(), status=Status.COMPLETED, result=b"2")
    assert await store.compact_finished(now() + 1, now()) == 1
    assert await store.load_steps("again") == {}


async def test_a_worker_with_retention_compacts_finished_executions(store: Store) -> None:
    from durable import Durable, WorkflowContext, workflow

    @workflow("retention.short")
    async def short(ctx: WorkflowContext, _: Any) -> str:
        return str(await ctx.step("only", lambda: "done"))

    durable = Durable(store=store, workflows=[short])
    async with durable.worker(concurrency=2, retention=0.05, max_idle_poll=0.05):
        eid = await durable.start(short, None)
        assert await durable.wait(eid, timeout=10) == "done"
        deadline = asyncio.get_running_loop().time() + 10
        while await durable.list_step_results(eid):
            assert asyncio.get_running_loop().time() < deadline, "history was never compacted"
            await asyncio.sleep(0.05)
    record = await durable.get_execution(eid)
    assert record is not None and record.result == "done"  # the record stays
