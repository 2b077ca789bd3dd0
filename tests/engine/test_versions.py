"""Worker versions on both stores: executions pinned to the version that started them, per-version
queues, promotion, migration, and the load per version the operator drains by.

Two in-process workers of one workflow id, each with its own code (as two images would bring it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from durable import (
    Durable,
    ExecutionFinished,
    ExecutionNotFound,
    Status,
    Store,
    VersionLoad,
    Worker,
    WorkflowContext,
    WorkflowDef,
)
from polling import until

WID = "versioned.order"


def code(tag: str) -> WorkflowDef:
    async def fn(ctx: WorkflowContext, order: Any) -> Any:
        first = await ctx.step("first", lambda: tag)
        await ctx.wait_for_signal("go", step_id="approve")
        second = await ctx.step("second", lambda: tag)
        return [first, second]

    return WorkflowDef(workflow_id=WID, fn=fn)


def worker(store: Store, tag: str, version: str, **options: Any) -> Worker:
    return Worker(store, {WID: code(tag)}, version=version, concurrency=4, max_idle_poll=0.05, **options)


async def with_workers(store: Store, workers: list[Worker], action: Callable[[], Awaitable[Any]]) -> Any:
    for w in workers:
        await w.start()
    try:
        return await action()
    finally:
        for w in workers:
            await w.stop()


async def test_executions_stay_on_the_version_that_started_them(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    v1 = worker(store, "v1", "v1")

    async def start_two_on_v1() -> list[str]:
        ids = [await d.start(WID, {"n": n}, execution_id=f"old-{n}") for n in range(2)]
        for eid in ids:
            await until(store, eid, Status.WAITING)
        return ids

    # The first worker of a version makes it current for its workflows that have none.
    old = await with_workers(store, [v1], start_two_on_v1)
    assert await d.versions.current(WID) == "v1"
    assert await d.versions.known() == {"v1"}
    assert {(await d.get_execution(e)).version for e in old} == {"v1"}  # type: ignore[union-attr]

    # v2's workers start; v1 stays current until someone promotes v2.
    v1, v2 = worker(store, "v1", "v1"), worker(store, "v2", "v2")

    async def bump_and_finish() -> tuple[list[Any], Any]:
        assert await d.versions.current(WID) == "v1"
        assert await d.versions.promote(WID, "v2", actor="test") is True
        assert await d.versions.promote(WID, "v2") is False  # already current: nothing changes
        new = await d.start(WID, {"n": 9}, execution_id="new")
        await until(store, new, Status.WAITING)
        for eid in [*old, new]:
            await d.signal(eid, "go", True)
        return [await d.wait(e, timeout=10) for e in old], await d.wait(new, timeout=10)

    old_results, new_result = await with_workers(store, [v1, v2], bump_and_finish)
    assert old_results == [["v1", "v1"], ["v1", "v1"]]  # begun and finished on v1's code
    assert new_result == ["v2", "v2"]
    assert (await d.get_execution("new")).version == "v2"  # type: ignore[union-attr]
    assert await d.versions.known() == {"v1", "v2"}


async def test_a_version_without_workers_keeps_its_executions_waiting(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    await d.versions.promote(WID, "v1")
    eid = await d.start(WID, None, execution_id="pinned")

    async def look() -> None:
        await asyncio.sleep(0.5)  # v2's worker polls many times meanwhile

    # Only a v2 worker runs: the v1 execution is not touched, not even acquired.
    await with_workers(store, [worker(store, "v2", "v2")], look)
    record = await d.get_execution(eid)
    assert record is not None and record.status == Status.PENDING and record.activations == 0
    assert await d.versions.load(WID) == {"v1": VersionLoad("v1", 1, 1)}

    # An unversioned worker does not take it either; a v1 worker does.
    unversioned = Worker(store, {WID: code("none")}, concurrency=2, max_idle_poll=0.05)
    await with_workers(store, [unversioned], look)
    assert (await d.get_execution(eid)).activations == 0  # type: ignore[union-attr]
    await with_workers(store, [worker(store, "v1", "v1")], lambda: until(store, eid, Status.WAITING))
    assert await d.versions.load(WID) == {"v1": VersionLoad("v1", 1, 0)}  # asleep: not runnable


async def test_signals_timers_and_retries_route_to_the_execution_version(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    await d.versions.promote(WID, "v1")
    eid = await d.start(WID, None, execution_id="routed")
    await with_workers(store, [worker(store, "v1", "v1")], lambda: until(store, eid, Status.WAITING))
    # An unversioned client wakes it: the run goes on v1's queue, not on the client's.
    await d.signal(eid, "go", 1)
    assert await store.queue_depth() == 0
    assert await store.versioned("v1").queue_depth() == 1
    await with_workers(store, [worker(store, "v1", "v1")], lambda: d.wait(eid, timeout=10))


async def test_migrate_moves_an_execution_to_another_version(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    await d.versions.promote(WID, "v1")
    eid = await d.start(WID, None, execution_id="moving")
    await with_workers(store, [worker(store, "v1", "v1")], lambda: until(store, eid, Status.WAITING))

    assert await d.versions.migrate(eid, "v2", actor="ops") is True
    assert await d.versions.migrate(eid, "v2") is False  # already there
    record = await d.get_execution(eid)
    assert record is not None and record.version == "v2"
    entry = [a for a in await d.list_audit_entries(eid) if a.kind == "migrated"]
    assert [(a.message, a.actor) for a in entry] == [("moved from worker version v1 to v2", "ops")]

    # The signal wakes it on v2's queue; a v1 worker would not run it, v2's code finishes it.
    await d.signal(eid, "go", 1)
    result = await with_workers(
        store, [worker(store, "v1", "v1"), worker(store, "v2", "v2")], lambda: d.wait(eid, timeout=10)
    )
    assert result == ["v1", "v2"]  # the first step stayed memoized from v1

    with pytest.raises(ExecutionFinished):
        await d.versions.migrate(eid, "v1")
    with pytest.raises(ExecutionNotFound):
        await d.versions.migrate("nope", "v1")


async def test_a_runnable_execution_migrated_runs_on_its_new_version(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    await d.versions.promote(WID, "v1")
    eid = await d.start(WID, None, execution_id="queued")  # pending on v1's queue
    assert await d.versions.migrate(eid, "", actor="ops") is True  # to unversioned workers
    unversioned = Worker(store, {WID: code("none")}, concurrency=2, max_idle_poll=0.05)
    await with_workers(
        store, [worker(store, "v1", "v1"), unversioned], lambda: until(store, eid, Status.WAITING)
    )
    record = await d.get_execution(eid)
    assert record is not None and record.version is None
    steps = {s.step_id: s.result for s in await d.list_step_results(eid)}
    assert steps["first"] == "none"


async def test_bad_versions_are_refused_and_change_nothing(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    for bad in ("-x", "a b", "x@y", "v" * 64, "ü"):
        with pytest.raises(ValueError, match=r"worker version .* is not valid"):
            await d.versions.promote(WID, bad)
        with pytest.raises(ValueError, match=r"worker version .* is not valid"):
            store.versioned(bad)
    with pytest.raises(ValueError, match="workflow id must be a non-empty string"):
        await d.versions.promote("", "v1")
    assert await d.versions.all_current() == {}
    eid = await d.start(WID, None, execution_id="stays")
    with pytest.raises(ValueError, match="is not valid"):
        await d.versions.migrate(eid, "bad version")
    assert (await d.get_execution(eid)).version is None  # type: ignore[union-attr]


async def test_make_current_and_unpromoting(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    await with_workers(store, [worker(store, "v1", "v1")], lambda: asyncio.sleep(0))
    assert await d.versions.current(WID) == "v1"
    await with_workers(store, [worker(store, "v2", "v2")], lambda: asyncio.sleep(0))
    assert await d.versions.current(WID) == "v1"  # a second version does not take over by itself
    await with_workers(store, [worker(store, "v3", "v3", make_current=True)], lambda: asyncio.sleep(0))
    assert await d.versions.current(WID) == "v3"
    assert await d.versions.promote(WID, "") is True  # back to unversioned workers
    assert await d.versions.current(WID) is None
    eid = await d.start(WID, None, execution_id="plain")
    assert (await d.get_execution(eid)).version is None  # type: ignore[union-attr]


async def test_an_execution_woken_on_the_old_queue_runs_after_it_moves(store: Store) -> None:
    d = Durable(store=store, workflows=[], allow_unregistered=True)
    await d.versions.promote(WID, "v1")
    eid = await d.start(WID, None, execution_id="woken")
    await with_workers(store, [worker(store, "v1", "v1")], lambda: until(store, eid, Status.WAITING))
    await d.signal(eid, "go", 1)  # its run is queued on v1's queue, which nobody reads any more
    assert await d.versions.migrate(eid, "v2") is True
    result = await with_workers(store, [worker(store, "v2", "v2")], lambda: d.wait(eid, timeout=10))
    assert result == ["v1", "v2"]
