"""`@workflow(max_concurrency=N, concurrency_key=...)` through the engine, on both stores.

Executions hold a slot from their first activation until they are final; the others wait, parked and
pending, in the order they were created. Each workflow here records which executions are inside (between
its first and last step) so the tests can check the limit; executions wait for a signal while inside, so
the test decides when a slot frees.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from durable import Durable, InputValidationError, Signal, Status, Store, WorkflowFailedError, workflow
from durable._records import now_ms
from durable._store._base import NewExecution
from durable._workflow._context import WorkflowContext
from durable._workflow._definitions import _WORKFLOWS
from polling import until

INSIDE: set[str] = set()
ENTERED: list[str] = []
MAX_INSIDE = [0]
BOOMED: set[str] = set()


class Go(BaseModel):
    fail: bool = False


GO = Signal("test.conc.go", Go)


def _enter(eid: str) -> None:
    INSIDE.add(eid)
    ENTERED.append(eid)
    MAX_INSIDE[0] = max(MAX_INSIDE[0], len(INSIDE))


def _leave(eid: str) -> None:
    INSIDE.discard(eid)


def _boom(eid: str) -> None:
    """Fails the first time per execution (a retry then gets past it)."""
    if eid not in BOOMED:
        BOOMED.add(eid)
        INSIDE.discard(eid)
        raise RuntimeError("told to fail")


async def _body(ctx: WorkflowContext, n: Any) -> Any:
    eid = ctx.execution_id
    await ctx.step("enter", _enter, eid)
    go = await ctx.wait_for_signal(GO)
    if go.fail:
        await ctx.step("boom", _boom, eid)
    await ctx.step("leave", _leave, eid)
    return n


@workflow("test.conc.two", max_concurrency=2)
async def two(ctx: WorkflowContext, n: int) -> int:
    result: int = await _body(ctx, n)
    return result


@workflow("test.conc.one", max_concurrency=1)
async def one(ctx: WorkflowContext, n: int) -> int:
    result: int = await _body(ctx, n)
    return result


@workflow("test.conc.per_customer", max_concurrency=1, concurrency_key=lambda order: order["customer"])
async def per_customer(ctx: WorkflowContext, order: dict[str, Any]) -> Any:
    return await _body(ctx, order)


RELEASE: list[asyncio.Event] = []  # one per test: an event belongs to one loop


async def _blocked() -> str:
    await RELEASE[-1].wait()
    return "released"


@workflow("test.conc.busy", max_concurrency=1)
async def busy(ctx: WorkflowContext, n: int) -> int:
    await ctx.step("enter", _enter, ctx.execution_id)
    await ctx.step("blocked", _blocked)
    return n


@workflow("test.conc.bad_key", max_concurrency=1, concurrency_key=lambda order: order["n"])
async def bad_key(ctx: WorkflowContext, order: dict[str, Any]) -> Any:
    return order


@pytest.fixture
async def durable(store: Store) -> AsyncIterator[Durable]:
    INSIDE.clear()
    ENTERED.clear()
    BOOMED.clear()
    MAX_INSIDE[0] = 0
    d = Durable(store=store)
    async with d.worker(concurrency=8, lease_ttl=2.0, visibility_timeout=2.0, max_idle_poll=0.2):
        yield d


async def line(d: Durable, group: str, holders: list[str], waiters: list[str]) -> None:
    """Wait until `group` has these holders and waiters (a slot is given back just after the final write)."""
    deadline = asyncio.get_running_loop().time() + 10
    while (state := await d.store.concurrency_state(group)) != (holders, waiters):
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.02)


async def inside(d: Durable, *eids: str) -> None:
    """Wait until each of `eids` is inside (it entered and waits for its signal)."""
    for eid in eids:
        await until(d.store, eid, Status.WAITING)
        assert eid in INSIDE


async def parked(d: Durable, eid: str, group: str) -> None:
    """Wait until `eid` is parked in `group`'s line."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        record = await d.get_execution(eid)
        assert record is not None
        if record.status == Status.PENDING and record.waiting_for == f"concurrency:{group}":
            return
        assert asyncio.get_running_loop().time() < deadline, record
        await asyncio.sleep(0.02)


async def test_limit_two_of_six_never_exceeds_two_and_admits_in_start_order(durable: Durable) -> None:
    eids = [await durable.start(two, i, execution_id=f"two-{i}") for i in range(6)]
    await inside(durable, "two-0", "two-1")
    for eid in eids[2:]:
        await parked(durable, eid, "test.conc.two")
    holders, waiters = await durable.store.concurrency_state("test.conc.two")
    assert sorted(holders) == ["two-0", "two-1"] and waiters == eids[2:]
    # Let them go one at a time, oldest first: each freed slot goes to the oldest waiter.
    for i, eid in enumerate(eids):
        await inside(durable, eid)
        await durable.signal(eid, GO, Go())
        assert await durable.wait(eid, timeout=10) == i
    assert MAX_INSIDE[0] == 2
    assert eids == ENTERED
    await line(durable, "test.conc.two", [], [])


async def test_per_key_limits_are_independent(durable: Durable) -> None:
    a1 = await durable.start(per_customer, {"customer": "a", "n": 1}, execution_id="a1")
    b1 = await durable.start(per_customer, {"customer": "b", "n": 1}, execution_id="b1")
    a2 = await durable.start(per_customer, {"customer": "a", "n": 2}, execution_id="a2")
    await inside(durable, a1, b1)
    await parked(durable, a2, "test.conc.per_customer:a")
    await durable.signal(a1, GO, Go())
    await inside(durable, a2)
    for eid in (a2, b1):
        await durable.signal(eid, GO, Go())
        await durable.wait(eid, timeout=10)
    assert MAX_INSIDE[0] == 2


@pytest.mark.parametrize("how", ["failure", "cancel", "force_fail"])
async def test_a_final_holder_frees_its_slot(durable: Durable, how: str) -> None:
    holder = await durable.start(one, 1, execution_id=f"holder-{how}")
    await inside(durable, holder)
    waiter = await durable.start(one, 2, execution_id=f"waiter-{how}")
    await parked(durable, waiter, "test.conc.one")
    if how == "failure":
        await durable.signal(holder, GO, Go(fail=True))
    elif how == "cancel":
        await durable.cancel(holder, "enough")
    else:
        await durable.force_fail(holder, "enough")
    await until(durable.store, holder, Status.FAILED, Status.CANCELLED)
    await inside(durable, waiter)
    await durable.signal(waiter, GO, Go())
    assert await durable.wait(waiter, timeout=10) == 2


async def test_cancelling_a_running_holder_frees_its_slot_when_its_run_stops(durable: Durable) -> None:
    RELEASE.append(asyncio.Event())
    holder = await durable.start(busy, 1, execution_id="busy-1")
    waiter = await durable.start(busy, 2, execution_id="busy-2")
    await parked(durable, waiter, "test.conc.busy")
    assert [holder] == ENTERED
    # The holder runs a step: the cancel is flagged and applied when its worker lets go.
    assert await durable.cancel(holder, "enough") == Status.RUNNING
    RELEASE[-1].set()
    await until(durable.store, holder, Status.CANCELLED)
    assert await durable.wait(waiter, timeout=10) == 2
    assert [holder, waiter] == ENTERED
    await line(durable, "test.conc.busy", [], [])


async def test_a_cancelled_waiter_leaves_the_line(durable: Durable) -> None:
    holder = await durable.start(one, 1, execution_id="h")
    await inside(durable, holder)
    w1 = await durable.start(one, 2, execution_id="w1")
    w2 = await durable.start(one, 3, execution_id="w2")
    await parked(durable, w1, "test.conc.one")
    await parked(durable, w2, "test.conc.one")
    assert "w1" not in ENTERED and "w2" not in ENTERED
    assert await durable.cancel(w1, "not needed") == Status.CANCELLED
    await line(durable, "test.conc.one", ["h"], ["w2"])
    await durable.signal(holder, GO, Go())
    await inside(durable, w2)
    assert "w1" not in ENTERED
    await durable.signal(w2, GO, Go())
    assert await durable.wait(w2, timeout=10) == 3


async def test_a_retried_execution_takes_a_slot_again(durable: Durable) -> None:
    first = await durable.start(one, 1, execution_id="first")
    await inside(durable, first)
    await durable.signal(first, GO, Go(fail=True))
    with pytest.raises(WorkflowFailedError):
        await durable.wait(first, timeout=10)
    second = await durable.start(one, 2, execution_id="second")
    await inside(durable, second)
    await durable.retry(first)
    await parked(durable, first, "test.conc.one")
    await line(durable, "test.conc.one", ["second"], ["first"])
    await durable.signal(second, GO, Go())
    assert await durable.wait(second, timeout=10) == 2
    assert await durable.wait(first, timeout=10) == 1
    assert MAX_INSIDE[0] == 1


async def test_start_refuses_a_concurrency_key_that_is_not_a_string(durable: Durable) -> None:
    with pytest.raises(InputValidationError) as refused:
        await durable.start(bad_key, {"n": 7}, execution_id="bad")
    message = str(refused.value)
    assert "\n" not in message
    assert message == (
        "input for workflow 'test.conc.bad_key': TypeError: concurrency_key of workflow "
        "'test.conc.bad_key' must return a str, got int"
    )
    assert await durable.get_execution("bad") is None
    assert await durable.store.concurrency_state("test.conc.bad_key") == ([], [])


async def test_a_worker_fails_an_execution_whose_concurrency_key_is_not_a_string(durable: Durable) -> None:
    # Started by a client without the definition (the CLI without the app): the worker finds out.
    new = NewExecution(execution_id="bad", workflow_id="test.conc.bad_key", input=b'{"n":7}', now_ms=now_ms())
    assert await durable.store.create_execution(new)
    eid = "bad"
    with pytest.raises(WorkflowFailedError) as failed:
        await durable.wait(eid, timeout=10)
    assert "concurrency_key of workflow 'test.conc.bad_key' must return a str, got int" in str(failed.value)
    await line(durable, "test.conc.bad_key", [], [])


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "2"])
def test_max_concurrency_must_be_a_positive_int(limit: Any) -> None:
    with pytest.raises(
        ValueError, match=r"^max_concurrency of workflow 'test.conc.invalid' must be a positive int"
    ):
        workflow("test.conc.invalid", max_concurrency=limit)
    assert "test.conc.invalid" not in _WORKFLOWS


def test_a_concurrency_key_needs_a_limit() -> None:
    with pytest.raises(
        ValueError, match=r"^concurrency_key of workflow 'test\.conc\.invalid' needs max_concurrency$"
    ):
        workflow("test.conc.invalid", concurrency_key=lambda x: str(x))
    assert "test.conc.invalid" not in _WORKFLOWS
