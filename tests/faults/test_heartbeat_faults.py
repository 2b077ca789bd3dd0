"""A worker SIGSTOPped inside a heartbeating step: the step is retried elsewhere long before the queue's
visibility time-out, and the stopped worker, once continued, cannot commit."""

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

from durable import Durable, RedisStore

ROOT = Path(__file__).resolve().parents[2]
DURABLE_BIN = str(Path(sys.executable).parent / "durable")


def spawn(redis_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FAULT_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT / "tests")}
    cmd = [DURABLE_BIN, "worker", "--app", "apps.timeout_app", "--redis-url", redis_url,
           "--lease-ttl", "30", "--visibility-timeout", "120"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_key(redis_url: str, key: str, timeout: float) -> None:
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
    out: list[subprocess.Popen[bytes]] = []
    yield out
    for proc in out:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
    for proc in out:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
async def test_sigstopped_worker_loses_its_heartbeating_step(
    redis_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    client = Durable(store=RedisStore.from_url(redis_url), allow_unregistered=True)
    first = spawn(redis_url)
    procs.append(first)
    eid = await client.start("timeout.heartbeat", None)
    wait_for_key(redis_url, f"timeout:started:{eid}", timeout=30)
    first.send_signal(signal.SIGSTOP)
    procs.append(spawn(redis_url))
    # Lease time-to-live 30 s, visibility time-out 120 s: only the heartbeat time-out (1 s) lets the
    # second worker in within this wait.
    result = await client.wait(eid, timeout=25)
    assert result["pid"] == procs[1].pid and result["attempt"] == 2
    assert isinstance(result["resumed"], dict) and result["resumed"]["done"] >= 0
    kinds = [a.kind for a in await client.list_audit_entries(eid)]
    assert "heartbeat.timeout" in kinds
    # The stopped worker, continued, finds its lease gone at its next heartbeat and stops; nothing it
    # does changes the completed step.
    first.send_signal(signal.SIGCONT)
    wait_for_key(redis_url, f"timeout:abandoned:{eid}", timeout=20)
    r = redis.Redis.from_url(redis_url)
    try:
        assert int(r.hget("timeout:runs", eid) or 0) == 2
    finally:
        r.close()
    steps = {s.step_id: s for s in await client.list_step_results(eid)}
    assert steps["beat"].result == result and steps["beat"].attempt == 2
    await client.close()
