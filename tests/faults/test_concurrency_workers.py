"""`max_concurrency` across real `durable worker` processes: the store enforces the limit for all of
them, and a worker killed while its execution holds a slot does not leak the slot."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import pytest
import redis

from durable import Durable, RedisStore, Status
from worker_procs import spawn_worker, wait_for_key


def high_water(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.get("conc:max") or 0)
    finally:
        client.close()


def entries(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return list(client.lrange("conc:entered", 0, -1))
    finally:
        client.close()


async def settled(client: Durable, group: str) -> None:
    """Wait until nobody holds or waits for a slot of `group` (slots go back just after the final write)."""
    deadline = time.monotonic() + 30
    while (state := await client.store.concurrency_state(group)) != ([], []):
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_three_worker_processes_never_run_more_than_the_limit(
    redis_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    from apps.concurrency_app import two

    # This client knows the workflow, so each start joins the line at once: slots go in start order.
    client = Durable(store=RedisStore.from_url(redis_url))
    eids = [await client.start(two, 0.1, execution_id=f"c-{i}") for i in range(8)]
    workers.extend(
        spawn_worker(redis_url, "apps.concurrency_app", url_env="CONC_REDIS_URL", concurrency=8)
        for _ in range(3)
    )
    overtaken: list[tuple[list[str], list[str]]] = []

    async def watch() -> None:
        # At every look, the holders are all older than the waiters: nobody was let past an older one.
        while True:
            holders, waiters = await client.store.concurrency_state("conc.two")
            if holders and waiters and max(map(eids.index, holders)) > min(map(eids.index, waiters)):
                overtaken.append((holders, waiters))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    for eid in eids:
        assert await client.wait(eid, timeout=90) == eid
    watcher.cancel()
    assert overtaken == []
    assert 1 <= high_water(redis_url) <= 2
    assert sorted(entries(redis_url)) == eids
    await settled(client, "conc.two")
    await client.close()


@pytest.mark.slow
async def test_a_worker_killed_while_holding_a_slot_does_not_leak_it(
    redis_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    client = Durable(store=RedisStore.from_url(redis_url), allow_unregistered=True)
    workers.append(spawn_worker(redis_url, "apps.concurrency_app", url_env="CONC_REDIS_URL", concurrency=8))
    first = await client.start("conc.one", 60, execution_id="first")
    wait_for_key(redis_url, "conc:started:first")
    second = await client.start("conc.one", 0, execution_id="second")
    deadline = time.monotonic() + 30
    while (
        record := await client.get_execution(second)
    ) is None or record.waiting_for != "concurrency:conc.one":
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.02)
    assert record.status == Status.PENDING
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    workers.append(spawn_worker(redis_url, "apps.concurrency_app", url_env="CONC_REDIS_URL", concurrency=8))
    # The first execution goes on on the new worker (its step re-runs without holding), frees its slot
    # at the end, and only then the second one runs.
    assert await client.wait(first, timeout=60) == first
    assert await client.wait(second, timeout=60) == second
    assert high_water(redis_url) == 1
    await settled(client, "conc.one")
    await client.close()
