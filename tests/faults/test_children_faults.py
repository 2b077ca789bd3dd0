"""A child workflow whose parent's worker process is SIGKILLed while the child runs: the parent still
completes with the child's result (real `durable worker` processes on Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from durable import Durable, RedisStore, Status

ROOT = Path(__file__).resolve().parents[2]
DURABLE_BIN = str(Path(sys.executable).parent / "durable")


def spawn_worker(redis_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FAULT_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT / "tests")}
    cmd = [DURABLE_BIN, "worker", "--app", "apps.children_app", "--redis-url", redis_url,
           "--concurrency", "8", "--lease-ttl", "1.0", "--visibility-timeout", "1.5"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def runs(redis_url: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {k: int(v) for k, v in client.hgetall("fault:runs").items()}
    finally:
        client.close()


def wait_for_key(redis_url: str, key: str, timeout: float = 20) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while not client.exists(key):
            assert time.monotonic() < deadline, f"{key} never appeared"
            time.sleep(0.02)
    finally:
        client.close()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
async def test_parent_worker_killed_while_child_runs(
    redis_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    client = Durable(store=RedisStore.from_url(redis_url), allow_unregistered=True)
    try:
        procs.append(spawn_worker(redis_url))
        eid = await client.start("children_app.parent", 60, execution_id="kp")
        child = "kp:__child:2"
        # The child's step runs (and holds) on the only worker, which also ran the parent up to its wait.
        wait_for_key(redis_url, f"fault:started:{child}:held")
        record = await client.get_execution(eid)
        assert record is not None and record.status == Status.WAITING
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(timeout=10)
        procs.append(spawn_worker(redis_url))
        result = await client.wait(eid, timeout=60)
        assert result == {"before": 1, "child": {"held": 2}, "after": 1}
        counts = runs(redis_url)
        assert counts[f"{child}:held"] == 2 and counts[f"{eid}:before"] == 1 and counts[f"{eid}:after"] == 1
        child_record = await client.get_execution(child)
        assert child_record is not None and child_record.parent == eid
    finally:
        await client.close()
