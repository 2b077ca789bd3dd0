"""Work over many executions, driven in batches of per-execution calls (each declaring its keys).

Listing, timer firing, schedule claims and retention used to be single scripts that built the keys
of every execution they touched; now the store reads an index and makes one call per execution. These
pin what the single scripts guaranteed: each entry once, in order, across slices and racing callers,
and every key of a buffered signal dropped even though the caller learns those keys from the script.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from durable._records import Status
from durable._store._base import Checkpoint, ExecutionQuery, NewExecution, Store
from durable._store._redis import RedisStore

TTL = 30_000


def now() -> int:
    return int(time.time() * 1000)


async def create(store: Store, eid: str, at_ms: int) -> None:
    new = NewExecution(execution_id=eid, workflow_id="wf", input=b"1", now_ms=at_ms)
    assert await store.create_execution(new)


async def finished(store: Store, eid: str, status: Status = Status.COMPLETED, signals: int = 0) -> None:
    """An execution with `signals` payloads buffered under as many names, then finished."""
    if await store.get_execution(eid) is None:
        await create(store, eid, now())
    for i in range(signals):
        assert await store.send_signal(eid, f"sig{i}", b"1", f"{eid}-d{i}", now())
    got = await store.acquire(eid, "w1", TTL, now())
    assert got.outcome == "ok"
    await store.finish(eid, got.token, Checkpoint(), now(), status=status, result=b"1", error=b"{}")


async def test_listing_pages_through_more_equal_creation_times_than_a_slice(store: Store) -> None:
    t = now() - 1000
    ids = [f"e{i:03d}" for i in range(450)]
    await asyncio.gather(*(create(store, eid, t) for eid in ids))
    cancelled = ids[::3]
    for eid in cancelled:
        await store.cancel(eid, "x", None, now())

    async def everything(query: ExecutionQuery) -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(100):
            page, cursor = await store.list_executions(
                ExecutionQuery(statuses=query.statuses, limit=query.limit, cursor=cursor)
            )
            assert len(page) <= query.limit
            seen.extend(r.execution_id for r in page)
            if cursor is None:
                return seen
        raise AssertionError("no end of the listing")

    assert await everything(ExecutionQuery(limit=100)) == sorted(ids, reverse=True)
    only = await everything(ExecutionQuery(statuses=(Status.CANCELLED,), limit=40))
    assert only == sorted(cancelled, reverse=True)


async def test_racing_pollers_claim_every_due_schedule_once(store: Store) -> None:
    t = now()
    for i in range(5):
        await store.put_schedule(f"s{i}", b"{}", next_ms=t - i, paused=False, now_ms=t, create=True)
    claims = await asyncio.gather(*(store.claim_due_schedules(t, 30_000, limit=1) for _ in range(10)))
    claimed = sorted(c.schedule_id for batch in claims for c in batch)
    assert claimed == [f"s{i}" for i in range(5)]
    assert await store.claim_due_schedules(t, 30_000) == []


# ---------------------------------------------------------------------------- Redis keys
@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[tuple[RedisStore, aioredis.Redis]]:
    store = RedisStore.from_url(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield store, client
    finally:
        await client.aclose()
        await store.close()


async def keys_of(client: aioredis.Redis, eid: str) -> list[str]:
    return sorted(k.decode().rsplit(":", 1)[-1] for k in await client.keys(f"dw:{{{eid}}}:*"))


async def test_compaction_and_purge_drop_every_buffered_signal_list(
    redis_store: tuple[RedisStore, aioredis.Redis],
) -> None:
    store, client = redis_store
    await finished(store, "e1", signals=3)
    assert "sig2" in await keys_of(client, "e1")
    assert await store.compact_finished(now() + 1, now()) == 1
    assert await keys_of(client, "e1") == ["exec"]
    await finished(store, "e2", Status.FAILED, signals=2)  # failed: not compacted, purged whole
    assert await store.purge_finished(now() + 1) == 2
    assert await keys_of(client, "e1") == [] and await keys_of(client, "e2") == []
    assert await client.zcard(store.keys.idx_workflow("wf")) == 0
    assert await client.zcard(store.keys.finished()) == 0


async def test_a_replaced_run_loses_every_buffered_signal_list(
    redis_store: tuple[RedisStore, aioredis.Redis],
) -> None:
    store, client = redis_store
    await finished(store, "e1", Status.FAILED, signals=4)
    new = NewExecution(
        execution_id="e1", workflow_id="other", input=b"2", now_ms=now(), id_reuse="allow_if_finished"
    )
    assert await store.create_execution(new)
    assert not [k for k in await keys_of(client, "e1") if k.startswith("sig")]
    assert await client.zcard(store.keys.idx_workflow("wf")) == 0
    assert await client.zcard(store.keys.idx_workflow("other")) == 1
