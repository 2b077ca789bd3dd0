"""Both stores: a suspension or final write acknowledges the run's queue entry in the same step."""

from __future__ import annotations

import time

from durable._records import Status
from durable._store._base import Checkpoint, NewExecution, SignalWait, Store

TTL = 30_000


def now() -> int:
    return int(time.time() * 1000)


async def started(store: Store, eid: str) -> tuple[str, int]:
    await store.create_execution(NewExecution(eid, "wf", b"1", now()))  # type: ignore[arg-type]
    entries = [e for e in await store.dequeue("c", 100, 0) if e.execution_id == eid]
    assert len(entries) == 1
    got = await store.acquire(eid, "w1", TTL, now())
    assert got.outcome == "ok"
    return entries[0].entry_id, got.token


async def test_finish_and_suspend_ack_the_entry(store: Store) -> None:
    entry, token = await started(store, "fin")
    assert await store.queue_depth() == 1
    await store.finish("fin", token, Checkpoint(), now(), status=Status.COMPLETED, result=b"1", ack=entry)
    assert await store.queue_depth() == 0

    entry, token = await started(store, "nap")
    await store.suspend(
        "nap", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 60_000, ack=entry
    )
    assert await store.queue_depth() == 0
    assert await store.reclaim("c2", 0, 10) == []


async def test_a_wait_settled_at_once_does_not_ack(store: Store) -> None:
    entry, token = await started(store, "sig")
    await store.send_signal("sig", "go", b"7", "d1", now())
    wait = SignalWait(name="go", step_id="w", record_prefix=b'{"result":', record_suffix=b"}")
    outcome = await store.suspend(
        "sig", token, Checkpoint(), now(), status=Status.WAITING, wait=wait, ack=entry
    )
    assert outcome.kind == "signal"
    assert [e.entry_id for e in await store.reclaim("c2", 0, 10)] == [entry]  # still ours to ack
