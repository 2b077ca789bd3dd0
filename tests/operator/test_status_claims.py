"""Status-event readers taking over from each other (what an operator replica does after a failover)."""

from __future__ import annotations

import time

from durable import RedisStore
from durable._records import ExecutionId
from durable._store._base import NewExecution


async def _created(store: RedisStore, n: int) -> None:
    for i in range(n):
        await store.create_execution(
            NewExecution(ExecutionId(f"e{i}"), "wf", b"null", int(time.time() * 1000))
        )


async def test_a_new_reader_claims_what_a_dead_one_left_unacknowledged(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url)
    try:
        await _created(store, 3)
        first = await store.read_status_events("ops", "replica-a", 10, 0)
        assert len(first) == 3  # read, never acknowledged: replica-a dies here
        assert await store.read_status_events("ops", "replica-b", 10, 0) == []
        consumers = {c.name: c for c in await store.status_consumers("ops")}
        assert consumers["replica-a"].pending == 3 and consumers["replica-b"].pending == 0

        assert await store.claim_status_events("ops", "replica-b", min_idle_ms=0) == 3
        again = await store.read_status_events("ops", "replica-b", 10, 0)
        assert [e.event_id for e in again] == [e.event_id for e in first]
        await store.ack_status_events("ops", [e.event_id for e in again])

        await store.drop_status_consumer("ops", "replica-a")
        remaining = {c.name: c.pending for c in await store.status_consumers("ops")}
        assert remaining == {"replica-b": 0}
        # Before the group exists, nothing to claim and no readers.
        assert await store.claim_status_events("nobody", "x", 0) == 0
        assert await store.status_consumers("nobody") == []
    finally:
        await store.close()
