"""The timer poller's protocol on both stores: a pass that finds nothing due, then the next due time,
then a wait; a timer added (earlier) meanwhile is never slept past (no lost wake-up)."""

from __future__ import annotations

import asyncio
import time

from durable._records import ExecutionId
from durable._store._base import Store


def now() -> int:
    return int(time.time() * 1000)


async def test_a_timer_added_after_an_idle_pass_is_seen_by_the_next_due_or_the_wait(store: Store) -> None:
    t = now()
    await store.wait_timer_change(0)  # the poller's first wait: subscribes where the store notifies
    await store.add_timer(ExecutionId("late"), "t", t + 60_000)
    await store.wait_timer_change(0)
    assert await store.fire_due_timers(t) == 0
    assert await store.next_timer_due() == t + 60_000

    await store.add_timer(ExecutionId("early"), "t", t + 30_000)
    seen = []
    for _ in range(5):
        assert await store.fire_due_timers(t) == 0
        due = await store.next_timer_due()
        seen.append(due)
        if due == t + 30_000:
            break
        await store.wait_timer_change(10)  # a missed change would sleep the whole 10 s here
    assert seen[-1] == t + 30_000, seen


async def test_next_due_after_a_pass_that_fired_reads_the_timers_again(store: Store) -> None:
    t = now()
    await store.wait_timer_change(0)
    await store.add_timer(ExecutionId("x"), "t", t + 60_000)
    await store.wait_timer_change(0)
    assert await store.fire_due_timers(t) == 0
    assert await store.fire_due_timers(t + 60_000) == 1
    assert await store.next_timer_due() is None


async def test_only_a_timer_due_before_every_other_wakes_the_pollers(store: Store) -> None:
    t = now()
    await store.wait_timer_change(0)
    await store.add_timer(ExecutionId("first"), "t", t + 60_000)
    await store.wait_timer_change(0)
    assert await store.fire_due_timers(t) == 0
    assert await store.next_timer_due() == t + 60_000

    waiter = asyncio.create_task(store.wait_timer_change(10))
    await asyncio.sleep(0)
    await store.add_timer(ExecutionId("later"), "t", t + 90_000)  # the poller wakes by t + 60 s anyway
    done, _ = await asyncio.wait([waiter], timeout=0.2)
    assert not done, "a timer due after the earliest one woke the pollers"
    await store.add_timer(ExecutionId("earlier"), "t", t + 30_000)
    await asyncio.wait_for(waiter, 10)  # due before the earliest: the sleeping poller must wake
    assert await store.next_timer_due() == t + 30_000
