"""Step time-outs, heartbeats and execution deadlines, on both stores."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import durable
from durable import (
    Durable,
    ExecutionTimeout,
    RetryPolicy,
    StepFailedError,
    Store,
    WorkflowContext,
    WorkflowFailedError,
    workflow,
)
from durable._records import ExecutionId, now_ms
from durable._store._data import step_timer_id

CALLS: dict[str, int] = {}
SEEN_DETAILS: list[Any] = []
QUICK = RetryPolicy(max_attempts=3, initial_interval=0.01)


def _count(key: str) -> int:
    CALLS[key] = CALLS.get(key, 0) + 1
    return CALLS[key]


async def _hangs_first(eid: str) -> str:
    if _count(f"{eid}:async") == 1:
        await asyncio.sleep(60)
    return "ok"


@workflow("to.async")
async def async_timeout(ctx: WorkflowContext, _: Any) -> str:
    result: str = await ctx.step("hang", _hangs_first, ctx.execution_id, timeout=0.2, retry=QUICK)
    return result


_release = threading.Event()


def _blocks_first(eid: str) -> str:
    if _count(f"{eid}:sync") == 1:
        _release.wait(30)  # abandoned: the thread goes on until released
    return "ok"


@workflow("to.sync")
async def sync_timeout(ctx: WorkflowContext, _: Any) -> str:
    result: str = await ctx.step("block", _blocks_first, ctx.execution_id, timeout=0.2, retry=QUICK)
    return result


@workflow("to.sync.noretry")
async def sync_timeout_no_retry(ctx: WorkflowContext, _: Any) -> str:
    try:
        await ctx.step("block", _blocks_first, ctx.execution_id, timeout=0.2)
    except StepFailedError as exc:
        assert exc.error is not None
        return str(exc.error["type"])
    return "no time-out"


def _beats_then_stalls(eid: str) -> str:
    SEEN_DETAILS.append(durable.heartbeat_details())
    if _count(f"{eid}:hb") == 1:
        durable.heartbeat({"done": 3})
        time.sleep(0.8)  # no heartbeat for longer than heartbeat_timeout
        try:
            durable.heartbeat({"done": 4})
        except durable.StepAbandoned:
            return "abandoned"
    return "resumed"


@workflow("to.heartbeat")
async def heartbeat_flow(ctx: WorkflowContext, _: Any) -> str:
    result: str = await ctx.step(
        "beat", _beats_then_stalls, ctx.execution_id, heartbeat_timeout=0.3, retry=QUICK
    )
    return result


@workflow("to.sleeper")
async def sleeper(ctx: WorkflowContext, _: Any) -> str:
    await ctx.sleep(60)
    return "woke"


@workflow("to.busy")
async def busy(ctx: WorkflowContext, _: Any) -> int:
    n = 0
    while True:
        n += 1
        await ctx.step(f"s{n}", asyncio.sleep, 0.05)


def _undo(eid: str) -> None:
    _count(f"{eid}:undo")


@workflow("to.saga")
async def saga(ctx: WorkflowContext, _: Any) -> str:
    eid = ctx.execution_id
    await ctx.step("reserve", _count, f"{eid}:reserve", compensate=lambda: _undo(eid))
    try:
        await ctx.sleep(60)
    except ExecutionTimeout:
        await ctx.rollback()
        return "rolled back"
    return "slept"


@pytest.fixture
async def client(store: Store) -> AsyncIterator[Durable]:
    CALLS.clear()
    SEEN_DETAILS.clear()
    _release.clear()
    d = Durable(store=store)
    async with d.worker(concurrency=8, lease_ttl=2.0, visibility_timeout=30.0, max_idle_poll=0.1):
        yield d
    _release.set()


async def _audit_kinds(d: Durable, eid: str) -> list[str]:
    return [a.kind for a in await d.list_audit_entries(eid)]


async def test_async_step_timeout_is_retried(client: Durable) -> None:
    eid = await client.start(async_timeout)
    assert await client.wait(eid, timeout=20) == "ok"
    assert CALLS[f"{eid}:async"] == 2
    steps = {s.step_id: s for s in await client.list_step_results(eid)}
    assert steps["hang"].attempt == 2 and steps["hang"].meta["timeout"] == 0.2
    assert "step.timeout" in await _audit_kinds(client, eid)


async def test_sync_step_timeout_abandons_the_thread_and_retries(client: Durable) -> None:
    eid = await client.start(sync_timeout)
    assert await client.wait(eid, timeout=20) == "ok"
    assert CALLS[f"{eid}:sync"] == 2
    _release.set()


async def test_sync_step_timeout_without_retry_fails_the_step(client: Durable) -> None:
    eid = await client.start(sync_timeout_no_retry)
    assert await client.wait(eid, timeout=20) == "StepTimeout"
    _release.set()


async def test_heartbeat_timeout_retries_with_the_last_details(client: Durable) -> None:
    eid = await client.start(heartbeat_flow)
    assert await client.wait(eid, timeout=20) == "resumed"
    assert SEEN_DETAILS[:2] == [None, {"done": 3}]
    assert "heartbeat.timeout" in await _audit_kinds(client, eid)


async def test_deadline_wakes_a_sleeping_execution(client: Durable) -> None:
    eid = await client.start(sleeper, timeout=0.5)
    record = await client.get_execution(eid)
    assert record is not None and record.deadline is not None
    with pytest.raises(WorkflowFailedError) as info:
        await client.wait(eid, timeout=20)
    assert info.value.error["type"] == "ExecutionTimeout"
    assert "execution.timeout" in await _audit_kinds(client, eid)


async def test_deadline_stops_a_running_execution(store: Store) -> None:
    d = Durable(store=store, default_timeout=0.5)
    async with d.worker(concurrency=4, lease_ttl=2.0, visibility_timeout=30.0, max_idle_poll=0.1):
        eid = await d.start(busy)
        with pytest.raises(WorkflowFailedError) as info:
            await d.wait(eid, timeout=20)
    assert info.value.error["type"] == "ExecutionTimeout"
    steps = await d.list_step_results(eid)
    assert any(s.step_id == "__deadline" for s in steps)


async def test_caught_execution_timeout_can_roll_back(client: Durable) -> None:
    eid = await client.start(saga, timeout=0.5)
    assert await client.wait(eid, timeout=20) == "rolled back"
    assert CALLS[f"{eid}:undo"] == 1


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "5", True])
async def test_bad_step_timeouts_are_refused_and_nothing_is_written(client: Durable, bad: Any) -> None:
    @workflow(f"to.bad.{bad!r}")
    async def bad_step(ctx: WorkflowContext, which: str) -> str:
        try:
            if which == "timeout":
                await ctx.step("s", _count, "bad", timeout=bad)
            else:
                await ctx.step("s", _count, "bad", heartbeat_timeout=bad)
        except ValueError as exc:
            return str(exc)
        return "accepted"

    for which in ("timeout", "heartbeat_timeout"):
        eid = await client.start(bad_step, which)
        message = await client.wait(eid, timeout=20)
        assert message.startswith(which) and "\n" not in message
        assert await client.list_step_results(eid) == []
        assert "bad" not in CALLS


@pytest.mark.parametrize("bad", [0, -0.5, math.nan, "10"])
async def test_bad_execution_timeouts_are_refused_and_nothing_is_written(store: Store, bad: Any) -> None:
    d = Durable(store=store)
    with pytest.raises(ValueError, match=r"^timeout must be"):
        await d.start(sleeper, execution_id="bad-timeout", timeout=bad)
    assert await store.get_execution(ExecutionId("bad-timeout")) is None
    with pytest.raises(ValueError, match=r"^default_timeout must be"):
        Durable(store=store, default_timeout=bad)


async def test_step_timer_revokes_the_lease_of_a_stalled_run(store: Store) -> None:
    """The store side alone: a running record past its due time loses its lease when the timer fires."""
    d = Durable(store=store)
    eid = await d.start(sleeper)
    acquired = await store.acquire(eid, "w1", 60_000, now_ms())
    assert acquired.outcome == "ok"
    raw = b'{"seq":1,"kind":"step","status":"running","attempt":1,"at":1,"meta":{"due_kind":"heartbeat"}}'
    await store.put_running_step(eid, acquired.token, "s|1", raw, now_ms() - 1, now_ms())
    assert await store.fire_due_timers(now_ms()) >= 1
    from durable import LeaseLost
    from durable._store._base import Checkpoint

    with pytest.raises(LeaseLost):
        await store.commit(eid, acquired.token, Checkpoint(records=[("x", b"{}")]), now_ms())
    again = await store.acquire(eid, "w2", 60_000, now_ms())
    assert again.outcome == "ok" and again.token > acquired.token
    assert "heartbeat.timeout" in [a.kind for a in await store.list_audit(eid)]
    assert step_timer_id("s|1").startswith("hb:")
