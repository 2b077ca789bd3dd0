"""Child workflows (`ctx.child`, `ctx.start_child`) on both stores: results, failures, handles, ids,
replay after a crash between creating the child and recording it, cancel cascades, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durable import (
    ChildWorkflowCancelled,
    ChildWorkflowError,
    Durable,
    Status,
    Store,
    workflow,
)
from durable._history import StepKind, StepRecord
from durable._records import ExecutionId, now_ms
from durable._store._base import NewExecution
from durable._worker._children import settle_final
from durable._workflow._children import derived_child_id
from durable._workflow._context import WorkflowContext
from polling import until


@workflow("children.double")
async def double(ctx: WorkflowContext, n: int) -> int:
    return int(await ctx.step("double", lambda: n * 2))


@workflow("children.boom")
async def boom(ctx: WorkflowContext, message: str) -> None:
    await ctx.step("boom", _raise, message)


def _raise(message: str) -> None:
    raise RuntimeError(message)


@workflow("children.waits")
async def waits(ctx: WorkflowContext, _: Any) -> Any:
    return await ctx.wait_for_signal("go")


@workflow("children.parent")
async def parent(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    a = await ctx.child(double, n)
    b = await ctx.child("children.double", a, step_id="again")
    return {"a": a, "b": b}


@workflow("children.catches")
async def catches(ctx: WorkflowContext, message: str) -> dict[str, Any]:
    try:
        await ctx.child(boom, message)
    except ChildWorkflowError as exc:
        return {
            "child": exc.child_execution_id,
            "workflow": exc.workflow_id,
            "type": exc.error and exc.error["type"],
        }
    return {}


@workflow("children.propagates")
async def propagates(ctx: WorkflowContext, message: str) -> None:
    await ctx.child(boom, message)


@workflow("children.handle")
async def handle_parent(ctx: WorkflowContext, _: Any) -> dict[str, Any]:
    handle = await ctx.start_child(waits, None, execution_id="explicit-child")
    await ctx.step("between", lambda: "x")
    await handle.signal("go", {"ok": 1})
    return {"id": handle.execution_id, "result": await handle.result()}


@workflow("children.hangs")
async def hangs(ctx: WorkflowContext, policy: str) -> Any:
    handle = await ctx.start_child(waits, None, on_parent_cancel=policy)  # type: ignore[arg-type]
    return await handle.result()


@workflow("children.cancelled_child")
async def cancelled_child(ctx: WorkflowContext, _: Any) -> str:
    try:
        await ctx.child(waits, None, execution_id="to-cancel")
    except ChildWorkflowCancelled as exc:
        return f"cancelled {exc.child_execution_id} {exc.status}"
    return "no"


@workflow("children.bad")
async def bad(ctx: WorkflowContext, what: str) -> Any:
    if what == "unknown":
        return await ctx.child("children.nope", 1)
    if what == "policy":
        return await ctx.child(double, 1, on_parent_cancel="orphan")  # type: ignore[arg-type]
    if what == "id":
        return await ctx.child(double, 1, execution_id="a{b}")
    return await ctx.child(len, 1)


@pytest.fixture
async def durable(store: Store) -> AsyncIterator[Durable]:
    d = Durable(store=store)
    async with d.worker(concurrency=8, lease_ttl=2.0, visibility_timeout=2.0, max_idle_poll=0.2):
        yield d


async def _kinds(durable: Durable, eid: str) -> list[tuple[str, str, str]]:
    return [(s.step_id, s.kind.value, s.status.value) for s in await durable.list_step_results(eid)]


async def test_child_result_and_links(durable: Durable) -> None:
    eid = await durable.start(parent, 3, execution_id="p1")
    assert await durable.wait(eid, timeout=10) == {"a": 6, "b": 12}
    first = derived_child_id("p1", "__child:1")
    assert first == "p1:__child:1"
    record = await durable.get_execution(first)
    assert record is not None and record.parent == "p1" and record.on_parent_cancel == "cancel"
    assert record.result == 6
    assert (await durable.get_execution("p1:again")) is not None
    kinds = await _kinds(durable, eid)
    assert [k for _, k, _ in kinds] == ["child", "child_result", "child", "child_result"]
    assert all(status == "completed" for _, _, status in kinds)
    top = await durable.get_execution(eid)
    assert top is not None and top.parent is None


async def test_child_failure_propagates(durable: Durable) -> None:
    assert await durable.start_and_wait(catches, "bad thing", execution_id="p2", timeout=10) == {
        "child": "p2:__child:1",
        "workflow": "children.boom",
        "type": "StepFailedError",
    }
    eid = await durable.start(propagates, "worse", execution_id="p3")
    await until(durable.store, eid, Status.FAILED)
    record = await durable.get_execution(eid)
    assert record is not None and record.error is not None
    assert record.error["type"] == "ChildWorkflowError"
    assert record.error["fields"]["child_execution_id"] == "p3:__child:1"
    assert record.error["fields"]["status"] == "failed"


async def test_start_child_handle_signal_and_result(durable: Durable) -> None:
    result = await durable.start_and_wait(handle_parent, None, execution_id="p4", timeout=10)
    assert result == {"id": "explicit-child", "result": {"ok": 1}}
    child = await durable.get_execution("explicit-child")
    assert child is not None and child.parent == "p4"
    kinds = [k for _, k, _ in await _kinds(durable, "p4")]
    assert kinds == ["child", "step", "child_signal", "child_result"]


async def test_cancelled_child_raises_distinguishably(durable: Durable) -> None:
    eid = await durable.start(cancelled_child, None, execution_id="p5")
    await until(durable.store, "to-cancel", Status.WAITING)
    await until(durable.store, eid, Status.WAITING)
    assert await durable.cancel("to-cancel") == Status.CANCELLED
    assert await durable.wait(eid, timeout=10) == "cancelled to-cancel cancelled"


@pytest.mark.parametrize("policy", ["cancel", "abandon"])
async def test_cancel_cascades_by_policy(durable: Durable, policy: str) -> None:
    eid = await durable.start(hangs, policy, execution_id=f"p6-{policy}")
    child = derived_child_id(eid, "__child:1")
    await until(durable.store, child, Status.WAITING)
    await until(durable.store, eid, Status.WAITING)
    assert await durable.cancel(eid) == Status.CANCELLED
    if policy == "cancel":
        await until(durable.store, child, Status.CANCELLED)
        record = await durable.get_execution(child)
        assert record is not None and record.error is not None and eid in record.error["message"]
    else:
        record = await durable.get_execution(child)
        assert record is not None and record.status == Status.WAITING
        await durable.signal(child, "go", "done")
        await until(durable.store, child, Status.COMPLETED)


async def test_child_of_a_parent_that_ended_is_cancelled_at_its_next_activation(durable: Durable) -> None:
    # The cascade was lost (a crash right after the parent's final write): the child's own next
    # activation finds its parent final and cancels itself before running anything.
    eid = await durable.start(hangs, "cancel", execution_id="p7")
    child = derived_child_id(eid, "__child:1")
    await until(durable.store, child, Status.WAITING)
    await until(durable.store, eid, Status.WAITING)
    assert await durable.store.cancel(ExecutionId(eid), "gone", None, now_ms()) == Status.CANCELLED
    record = await durable.get_execution(child)
    assert record is not None and record.status == Status.WAITING
    await durable.signal(child, "go", 1)  # wakes the child
    await until(durable.store, child, Status.CANCELLED)


async def test_lost_notification_is_caught_by_the_parents_recheck(durable: Durable) -> None:
    # The child finished but its notification was lost: any activation of the parent reads the child.
    eid = await durable.start(hangs, "cancel", execution_id="p8")
    child = derived_child_id(eid, "__child:1")
    await until(durable.store, eid, Status.WAITING)
    await until(durable.store, child, Status.WAITING)
    # Finish the child without settling (as if the worker died right after the final write).
    store = durable.store
    assert await store.cancel(ExecutionId(child), "quietly", None, now_ms()) == Status.CANCELLED
    record = await durable.get_execution(eid)
    assert record is not None and record.status == Status.WAITING
    assert record.wake_at is not None  # the re-check timer is armed
    await store.enqueue(ExecutionId(eid), "timer")  # what the re-check timer does
    await until(store, eid, Status.FAILED)
    record = await durable.get_execution(eid)
    assert record is not None and record.error is not None
    assert record.error["type"] == "ChildWorkflowCancelled"


async def test_settle_is_idempotent(durable: Durable) -> None:
    eid = await durable.start(parent, 1, execution_id="p9")
    await durable.wait(eid, timeout=10)
    await settle_final(durable.store, "p9:__child:1")
    await settle_final(durable.store, eid)
    record = await durable.get_execution(eid)
    assert record is not None and record.status == Status.COMPLETED and record.result == {"a": 2, "b": 4}


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("unknown", "unknown workflow 'children.nope'"),
        ("policy", "on_parent_cancel must be one of cancel, abandon"),
        ("id", "must be 1-256 characters"),
        ("notwf", "is not a workflow"),
    ],
)
async def test_bad_child_input_writes_nothing(durable: Durable, what: str, message: str) -> None:
    eid = await durable.start(bad, what, execution_id=f"bad-{what}")
    await until(durable.store, eid, Status.FAILED)
    record = await durable.get_execution(eid)
    assert record is not None and record.error is not None
    assert message in record.error["message"] and "\n" not in record.error["message"]
    assert await durable.list_step_results(eid) == []
    listed = await durable.list_executions()
    assert [r.execution_id for r in listed] == [eid]


async def test_replay_after_crash_between_create_and_record(store: Store) -> None:
    # The child was created but the parent's record of it never written (the worker died in between):
    # the replay creates it again, which changes nothing, and records it.
    d = Durable(store=store)
    await d.start(parent, 5, execution_id="p10")
    child = "p10:__child:1"
    await store.create_execution(
        NewExecution(
            execution_id=ExecutionId(child),
            workflow_id="children.double",
            input=b"5",
            now_ms=now_ms(),
            parent="p10",
            on_parent_cancel="cancel",
        )
    )
    async with d.worker(concurrency=4, lease_ttl=2.0, visibility_timeout=2.0, max_idle_poll=0.2):
        assert await d.wait("p10", timeout=10) == {"a": 10, "b": 20}
    audit = [a.kind for a in await d.list_audit_entries(child)]
    assert audit.count("created") == 1
    raw = (await store.load_steps(ExecutionId("p10")))["__child:1"]
    assert StepRecord.decode("__child:1", raw).kind == StepKind.CHILD


def test_derived_ids_are_valid_and_deterministic() -> None:
    assert derived_child_id("p", "s") == derived_child_id("p", "s") == "p:s"
    long = derived_child_id("x" * 250, "step")
    assert len(long) <= 256 and long == derived_child_id("x" * 250, "step")
    odd = derived_child_id("p", "a{b}")
    assert "{" not in odd and odd.startswith("p:child-")


RELEASE: dict[str, asyncio.Event] = {}


@workflow("children.busy_parent")
async def busy_parent(ctx: WorkflowContext, key: str) -> Any:
    await ctx.start_child(waits, None)

    async def hold() -> str:
        await RELEASE[key].wait()
        return "held"

    await ctx.step("hold", hold)
    return await ctx.step("never", lambda: "reached")


async def test_cancel_applied_later_still_cascades(durable: Durable, store: Store) -> None:
    # The parent runs a step when the cancel comes: it is flagged, applied when the worker lets go,
    # and the child is cancelled then.
    key = type(store).__name__
    RELEASE[key] = asyncio.Event()
    eid = await durable.start(busy_parent, key, execution_id=f"busy-{key}")
    child = derived_child_id(eid, "__child:1")
    await until(durable.store, child, Status.WAITING)
    assert await durable.cancel(eid) == Status.RUNNING
    record = await durable.get_execution(child)
    assert record is not None and record.status == Status.WAITING
    RELEASE[key].set()
    await until(durable.store, eid, Status.CANCELLED)
    await until(durable.store, child, Status.CANCELLED)


async def test_store_keeps_the_parent_link(store: Store) -> None:
    for eid, parent_id, policy in (("c1", "p", "abandon"), ("c2", None, None)):
        assert await store.create_execution(
            NewExecution(
                execution_id=ExecutionId(eid),
                workflow_id="children.double",
                input=b"1",
                now_ms=now_ms(),
                parent=parent_id,
                on_parent_cancel=policy,
            )
        )
    one, two = await store.get_execution(ExecutionId("c1")), await store.get_execution(ExecutionId("c2"))
    assert one is not None and (one.parent, one.on_parent_cancel) == ("p", "abandon")
    assert two is not None and (two.parent, two.on_parent_cancel) == (None, None)
    assert one.to_dict()["on_parent_cancel"] == "abandon"


def test_describe_shows_children() -> None:
    shape = Durable().describe(handle_parent)
    assert [n["kind"] for n in shape.nodes] == ["child", "step", "childSignal", "childResult"]
    assert shape.nodes[0]["workflow"] == "children.waits"


async def test_force_failed_child_fails_the_waiting_parent(durable: Durable) -> None:
    eid = await durable.start(hangs, "cancel", execution_id="p11")
    child = derived_child_id(eid, "__child:1")
    await until(durable.store, child, Status.WAITING)
    await until(durable.store, eid, Status.WAITING)
    assert await durable.force_fail(child, "stuck") == Status.FAILED
    await until(durable.store, eid, Status.FAILED)
    record = await durable.get_execution(eid)
    assert record is not None and record.error is not None
    assert record.error["type"] == "ChildWorkflowError"
    assert record.error["fields"]["error"]["type"] == "ForcedFailure"


@workflow("children.continues")
async def continues(ctx: WorkflowContext, run: int) -> str:
    if run == 1:
        await ctx.start_child(waits, None, execution_id="cont-closed")
        await ctx.start_child(waits, None, execution_id="cont-kept", on_parent_cancel="abandon")
        ctx.continue_as_new(2)
    return await ctx.wait_for_signal("finish")


async def test_continue_as_new_closes_the_runs_children_by_policy(durable: Durable) -> None:
    # The next run's history no longer names them, so the parent's end could not find them later.
    eid = await durable.start(continues, 1, execution_id="p-cont")
    await until(durable.store, eid, Status.WAITING)
    await until(durable.store, "cont-closed", Status.CANCELLED)
    kept = await durable.get_execution("cont-kept")
    assert kept is not None and kept.status == Status.WAITING
    record = await durable.get_execution(eid)
    assert record is not None and record.run == 2
    await durable.signal(eid, "finish", "ok")
    assert await durable.wait(eid, timeout=30) == "ok"
    kept = await durable.get_execution("cont-kept")
    assert kept is not None and kept.status == Status.WAITING  # abandoned: it runs on
