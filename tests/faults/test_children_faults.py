"""A child workflow whose parent's worker process is SIGKILLed while the child runs: the parent still
completes with the child's result (real `durable worker` processes on Redis)."""

from __future__ import annotations

import signal
import subprocess

import pytest

from durable import Durable, RedisStore, Status
from worker_procs import runs, spawn_worker, wait_for_key


@pytest.mark.slow
async def test_parent_worker_killed_while_child_runs(
    redis_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    client = Durable(store=RedisStore.from_url(redis_url), allow_unregistered=True)
    try:
        workers.append(spawn_worker(redis_url, "apps.children_app", concurrency=8))
        eid = await client.start("children_app.parent", 60, execution_id="kp")
        child = "kp:__child:2"
        # The child's step runs (and holds) on the only worker, which also ran the parent up to its wait.
        wait_for_key(redis_url, f"fault:started:{child}:held")
        record = await client.get_execution(eid)
        assert record is not None and record.status == Status.WAITING
        workers[-1].send_signal(signal.SIGKILL)
        workers[-1].wait(timeout=10)
        workers.append(spawn_worker(redis_url, "apps.children_app", concurrency=8))
        result = await client.wait(eid, timeout=60)
        assert result == {"before": 1, "child": {"held": 2}, "after": 1}
        counts = runs(redis_url)
        assert counts[f"{child}:held"] == 2 and counts[f"{eid}:before"] == 1 and counts[f"{eid}:after"] == 1
        child_record = await client.get_execution(child)
        assert child_record is not None and child_record.parent == eid
    finally:
        await client.close()
