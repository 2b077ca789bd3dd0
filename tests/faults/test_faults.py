"""Fault tests: crashes, races, restarts, outages. Subprocess workers are real `durable worker` processes."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from _redis_server import RedisServer
from durable import Durable, RedisStore, Status, Store, WorkflowContext, workflow
from durable._worker._engine import Engine
from worker_procs import runs, spawn_worker, wait_for_key


@pytest.fixture
def fault_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAULT_REDIS_URL", redis_url)
    from apps import fault_app

    fault_app._client = None
    return redis_url


# --------------------------------------------------------------------------- subprocess crashes
async def crash_inside_step(
    client: Durable, redis_url: str, workers: list[Any], workflow_id: str, step: str
) -> str:
    """Start `workflow_id` on a worker process, SIGKILL it inside `step`'s body, start a replacement."""
    workers.append(spawn_worker(redis_url))
    eid = await client.start(workflow_id, 60)
    wait_for_key(redis_url, f"fault:started:{eid}:{step}")
    workers[-1].send_signal(signal.SIGKILL)
    workers[-1].wait(timeout=10)
    workers.append(spawn_worker(redis_url))
    return eid


@pytest.mark.slow
async def test_worker_killed_mid_step_completes_elsewhere(fault_env: str, workers: list[Any]) -> None:
    client = Durable(store=RedisStore.from_url(fault_env), allow_unregistered=True)
    eid = await crash_inside_step(client, fault_env, workers, "fault.slow", "two")
    result = await client.wait(eid, timeout=60)
    # "one" committed before the crash and never ran again; "two" was cut mid-body and ran once more.
    assert result == {"one": 1, "two": 2, "three": 1}
    assert runs(fault_env) == {f"{eid}:one": 1, f"{eid}:two": 2, f"{eid}:three": 1}
    await client.close()


@pytest.mark.slow
async def test_rollback_resumes_after_crash(fault_env: str, workers: list[Any]) -> None:
    client = Durable(store=RedisStore.from_url(fault_env), allow_unregistered=True)
    eid = await crash_inside_step(client, fault_env, workers, "fault.saga", "undo-reserve")
    assert await client.wait(eid, timeout=60) == "rolled back"
    counts = runs(fault_env)
    # Compensations run newest first; the committed one never runs again after the crash.
    assert counts[f"{eid}:undo-charge"] == 1
    assert counts[f"{eid}:undo-reserve"] == 2
    assert counts[f"{eid}:reserve"] == 1 and counts[f"{eid}:charge"] == 1
    steps = [s.step_id for s in await client.list_step_results(eid)]
    assert steps == ["reserve", "charge", "ship", "rollback:charge", "rollback:reserve"]
    await client.close()


@pytest.mark.slow
async def test_thousand_executions_across_two_worker_processes(fault_env: str, workers: list[Any]) -> None:
    client = Durable(store=RedisStore.from_url(fault_env), allow_unregistered=True)
    workers.append(spawn_worker(fault_env, concurrency=64))
    workers.append(spawn_worker(fault_env, concurrency=64))
    ids = await asyncio.gather(*(client.start("fault.quick", i) for i in range(1000)))
    results = await asyncio.gather(*(client.wait(eid, timeout=120) for eid in ids))
    assert [r["n"] for r in results] == list(range(1000))
    counts = runs(fault_env)
    assert len(counts) == 3000 and set(counts.values()) == {1}
    for eid in ids[:50]:
        record = await client.get_execution(eid)
        assert record is not None and record.status == Status.COMPLETED
    await client.close()


# --------------------------------------------------------------------------- restarts and outages
async def test_new_service_on_same_redis_finishes_the_execution(fault_env: str) -> None:
    first = Durable(store=RedisStore.from_url(fault_env), allow_unregistered=True)
    from apps import fault_app

    async with first.worker(concurrency=4, lease_ttl=1.0, max_idle_poll=0.1):
        eid = await first.start(fault_app.sleepy, 30)
        await _until(first, eid, Status.SLEEPING)
    await first.close()
    second = Durable(store=RedisStore.from_url(fault_env), workflows=[fault_app.sleepy])
    record = await second.get_execution(eid)
    assert record is not None and record.status == Status.SLEEPING
    await second.skip_step(eid, "__sleep:1", None, actor="ops")
    async with second.worker(concurrency=4, lease_ttl=1.0, max_idle_poll=0.1):
        await _until(second, eid, Status.WAITING)
        await second.signal(eid, "fault.poke", {"hi": 1})
        assert await second.wait(eid, timeout=20) == ["signal", 1]
    await second.close()


async def test_worker_rides_out_a_redis_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="durable.worker")
    server = RedisServer(persistent=True)
    server.start()
    try:
        monkeypatch.setenv("FAULT_REDIS_URL", server.url)
        from apps import fault_app

        fault_app._client = None
        durable = Durable(store=RedisStore.from_url(server.url), workflows=[fault_app.sleepy])
        async with durable.worker(
            concurrency=4, lease_ttl=1.0, visibility_timeout=1.0, max_idle_poll=0.1
        ) as w:
            eid = await durable.start(fault_app.sleepy, 0.3)
            await _until(durable, eid, Status.SLEEPING)
            server.kill()
            await asyncio.sleep(1.0)  # every loop hits a dead Redis and must back off, not crash
            assert all(not t.done() for t in w._loops)
            server.start()
            fault_app._client = None
            assert await durable.wait(eid, timeout=30) == ["timeout", 1]
        await durable.close()
        outage_logs = [
            r for r in caplog.records if "unreachable" in r.getMessage() or "failed" in r.getMessage()
        ]
        assert outage_logs, "the worker did not log the outage"
        # Backed off, not a hot loop: a handful of warnings per loop for a one-second outage.
        assert len(outage_logs) < 100
    finally:
        server.stop()


# --------------------------------------------------------------------------- races and fencing
COUNTS: dict[str, int] = {}
GATE: dict[str, asyncio.Event] = {}


def _bump(name: str) -> int:
    COUNTS[name] = COUNTS.get(name, 0) + 1
    return COUNTS[name]


@workflow("fault.five")
async def five(ctx: WorkflowContext, _: Any) -> list[int]:
    return [await ctx.step(f"s{i}", _bump, f"{ctx.execution_id}:s{i}") for i in range(5)]


@workflow("fault.pausable")
async def pausable(ctx: WorkflowContext, _: Any) -> int:
    async def first_blocks() -> int:
        n = _bump("pausable")
        if n == 1:
            await GATE["pausable"].wait()
        return n

    return int(await ctx.step("one", first_blocks))


async def test_two_workers_race_for_one_execution(store: Store) -> None:
    COUNTS.clear()
    other: Store = store
    if isinstance(store, RedisStore):
        other = RedisStore(store.settings)
    a, b = Durable(store=store), Durable(store=other)
    async with a.worker(concurrency=8, lease_ttl=2.0), b.worker(concurrency=8, lease_ttl=2.0):
        eid = await a.start(five, None)
        for _ in range(20):
            await store.enqueue(eid, "duplicate")
        assert await a.wait(eid, timeout=20) == [1, 1, 1, 1, 1]
    assert len(await a.list_step_results(eid)) == 5
    if other is not store:
        await other.close()


async def test_stale_worker_cannot_overwrite_newer_progress(store: Store) -> None:
    COUNTS.clear()
    GATE["pausable"] = asyncio.Event()
    durable = Durable(store=store, workflows=[pausable])
    eid = await durable.start(pausable, None)
    slow = Engine(store, durable.lookup, worker_id="paused", lease_ttl_ms=150)
    fast = Engine(store, durable.lookup, worker_id="fresh", lease_ttl_ms=5_000)
    paused_run = asyncio.create_task(slow.run(eid))
    while COUNTS.get("pausable") != 1:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the paused worker's lease expires; it does not know
    assert await fast.run(eid) == "completed"
    GATE["pausable"].set()
    assert await paused_run == "lease_lost"
    record = await durable.get_execution(eid)
    assert record is not None and record.result == 2
    steps = await durable.list_step_results(eid)
    assert [(s.step_id, s.result) for s in steps] == [("one", 2)]


async def _until(durable: Durable, eid: str, status: Status, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        record = await durable.get_execution(eid)
        if record is not None and record.status == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{eid} never reached {status}; it is {record.status if record else None}")
        await asyncio.sleep(0.01)


async def test_sleeps_and_timeouts_fire_once_with_several_pollers(fault_env: str) -> None:
    from apps import fault_app

    services = [Durable(store=RedisStore.from_url(fault_env), workflows=[fault_app.sleepy]) for _ in range(3)]
    workers = [s.worker(concurrency=16, lease_ttl=2.0, max_idle_poll=0.1) for s in services]
    for w in workers:
        await w.start()
    try:
        ids = [await services[0].start(fault_app.sleepy, 0.2) for _ in range(30)]
        assert [await services[0].wait(eid, timeout=30) for eid in ids] == [["timeout", 1]] * 30
        for eid in ids:
            record = await services[0].get_execution(eid)
            # start, the sleep's timer, the signal timeout's timer: a timer that fired twice would add a run.
            assert record is not None and record.activations == 3, record
    finally:
        for w in workers:
            await w.stop()
        for s in services:
            await s.close()
