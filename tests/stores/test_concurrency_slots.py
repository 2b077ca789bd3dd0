"""The store's `Concurrency` part (slots and waiting lines of `max_concurrency` groups), on both stores."""

from __future__ import annotations

import time

import pytest

from durable._errors import LeaseLost
from durable._records import Status
from durable._store._base import Checkpoint, NewExecution, Store

TTL = 30_000
GROUP = "wf:k"


def now() -> int:
    return int(time.time() * 1000)


async def drain(store: Store) -> list[tuple[str, str]]:
    """Take and ack everything queued now: (execution id, reason)."""
    out: list[tuple[str, str]] = []
    while got := await store.dequeue("drainer", 100, 0):
        await store.ack([e.entry_id for e in got])
        out.extend((e.execution_id, e.reason) for e in got)
    return out


async def leased(store: Store, eid: str, at_ms: int) -> int:
    """Create `eid` (created at `at_ms`) and take its lease; the token."""
    new = NewExecution(execution_id=eid, workflow_id="wf", input=b"1", now_ms=at_ms)
    assert await store.create_execution(new)
    await drain(store)
    got = await store.acquire(eid, "w1", TTL, now())
    assert got.outcome == "ok"
    return got.token


async def finish(store: Store, eid: str, token: int) -> None:
    await store.finish(eid, token, Checkpoint(), now(), status=Status.COMPLETED, result=b"1")


async def test_admits_up_to_the_limit_and_parks_the_rest(store: Store) -> None:
    t1 = await leased(store, "e1", 1000)
    assert await store.admit("e1", t1, GROUP, 1, now()) == "admitted"
    assert await store.admit("e1", t1, GROUP, 1, now()) == "admitted"  # holding it already
    t2 = await leased(store, "e2", 2000)
    assert await store.admit("e2", t2, GROUP, 1, now()) == "parked"
    record = await store.get_execution("e2")
    assert record is not None
    assert (record.status, record.waiting_for) == (Status.PENDING, f"concurrency:{GROUP}")
    # The recheck timer is set and the lease is gone.
    due = await store.next_timer_due()
    assert due is not None and due > now()
    assert (await store.acquire("e2", "w2", TTL, now())).outcome == "ok"
    assert await store.concurrency_state(GROUP) == (["e1"], ["e2"])


async def test_freeing_a_slot_enqueues_the_oldest_waiter(store: Store) -> None:
    t1 = await leased(store, "e1", 1000)
    assert await store.admit("e1", t1, GROUP, 1, now()) == "admitted"
    # Created in the order e3 (older) then e2, parked in the order e2 then e3: the line follows creation.
    t2 = await leased(store, "e2", 3000)
    assert await store.admit("e2", t2, GROUP, 1, now()) == "parked"
    t3 = await leased(store, "e3", 2000)
    assert await store.admit("e3", t3, GROUP, 1, now()) == "parked"
    assert await store.concurrency_state(GROUP) == (["e1"], ["e3", "e2"])
    assert await store.free_slot("e1", now()) == 0  # not final: nothing happens
    await finish(store, "e1", t1)
    assert await store.free_slot("e1", now()) == 1
    assert await drain(store) == [("e3", "concurrency")]
    # The younger waiter may not jump the line even if it is activated first.
    t2 = (await store.acquire("e2", "w1", TTL, now())).token
    assert await store.admit("e2", t2, GROUP, 1, now()) == "parked"
    t3 = (await store.acquire("e3", "w1", TTL, now())).token
    assert await store.admit("e3", t3, GROUP, 1, now()) == "admitted"
    assert await store.concurrency_state(GROUP) == (["e3"], ["e2"])


async def test_a_final_holder_that_never_gave_back_its_slot_is_found(store: Store) -> None:
    # The holder's worker died between its final write and free_slot: the next admission finds it.
    t1 = await leased(store, "e1", 1000)
    assert await store.admit("e1", t1, GROUP, 1, now()) == "admitted"
    await finish(store, "e1", t1)
    t2 = await leased(store, "e2", 2000)
    assert await store.admit("e2", t2, GROUP, 1, now()) == "admitted"
    assert await store.concurrency_state(GROUP) == (["e2"], [])


async def test_cancelling_a_waiter_takes_it_out_of_the_line(store: Store) -> None:
    t1 = await leased(store, "e1", 1000)
    assert await store.admit("e1", t1, GROUP, 1, now()) == "admitted"
    t2 = await leased(store, "e2", 2000)
    assert await store.admit("e2", t2, GROUP, 1, now()) == "parked"
    assert await store.cancel("e2", "no", None, now()) == Status.CANCELLED
    assert await store.concurrency_state(GROUP) == (["e1"], [])


async def test_cancelling_an_idle_holder_frees_its_slot(store: Store) -> None:
    t1 = await leased(store, "e1", 1000)
    assert await store.admit("e1", t1, GROUP, 1, now()) == "admitted"
    t2 = await leased(store, "e2", 2000)
    assert await store.admit("e2", t2, GROUP, 1, now()) == "parked"
    await store.release("e1", "w1", t1)
    await drain(store)
    assert await store.force_fail("e1", "stop", None, now()) == Status.FAILED
    assert await store.concurrency_state(GROUP) == ([], ["e2"])
    assert await drain(store) == [("e2", "concurrency")]


async def test_a_requested_cancel_refuses_the_admission(store: Store) -> None:
    t1 = await leased(store, "e1", 1000)
    assert await store.cancel("e1", "no", None, now()) == Status.RUNNING
    assert await store.admit("e1", t1, GROUP, 1, now()) == "cancelled"
    assert await store.concurrency_state(GROUP) == ([], [])


async def test_a_stale_token_is_refused(store: Store) -> None:
    t1 = await leased(store, "e1", 1000)
    with pytest.raises(LeaseLost):
        await store.admit("e1", t1 + 1, GROUP, 1, now())
    assert await store.concurrency_state(GROUP) == ([], [])


async def test_an_enrolled_execution_keeps_its_place_before_its_first_activation(store: Store) -> None:
    # Started first, but its first activation comes after a younger one's: it is admitted first anyway.
    old = NewExecution(execution_id="old", workflow_id="wf", input=b"1", now_ms=1000)
    assert await store.create_execution(old)
    assert await store.enroll("old", GROUP, now())
    assert await store.enroll("old", GROUP, now())  # in line already
    young = await leased(store, "young", 2000)
    assert await store.admit("young", young, GROUP, 1, now()) == "parked"
    token = (await store.acquire("old", "w1", TTL, now())).token
    assert not await store.enroll("old", GROUP, now())  # activated: its admission decides
    assert await store.admit("old", token, GROUP, 1, now()) == "admitted"
    assert await store.concurrency_state(GROUP) == (["old"], ["young"])


async def test_cancelling_an_enrolled_execution_takes_it_out_of_the_line(store: Store) -> None:
    new = NewExecution(execution_id="e1", workflow_id="wf", input=b"1", now_ms=1000)
    assert await store.create_execution(new)
    assert await store.enroll("e1", GROUP, now())
    assert await store.concurrency_state(GROUP) == ([], ["e1"])
    assert await store.cancel("e1", "no", None, now()) == Status.CANCELLED
    assert await store.concurrency_state(GROUP) == ([], [])
    assert not await store.enroll("e1", GROUP, now())  # final
    assert not await store.enroll("nope", GROUP, now())
    assert await store.concurrency_state(GROUP) == ([], [])
