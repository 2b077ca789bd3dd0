"""The timer poller's protocol on both stores: a pass that finds nothing due, then the next due time,
then a wait; a timer added (earlier) meanwhile is never slept past (no lost wake-up)."""

from __future__ import annotations

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
