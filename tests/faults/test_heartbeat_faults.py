"""A worker SIGSTOPped inside a heartbeating step: the step is retried elsewhere long before the queue's
visibility time-out, and the stopped worker, once continued, cannot commit."""

from __future__ import annotations

import signal
import subprocess

import pytest
import redis

from durable import Durable, RedisStore
from worker_procs import spawn_worker, wait_for_key


@pytest.mark.slow
async def test_sigstopped_worker_loses_its_heartbeating_step(
    redis_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    client = Durable(store=RedisStore.from_url(redis_url), allow_unregistered=True)
    first = spawn_worker(redis_url, "apps.timeout_app", lease_ttl=30, visibility=120)
    workers.append(first)
    eid = await client.start("timeout.heartbeat", None)
    wait_for_key(redis_url, f"timeout:started:{eid}", timeout=30)
    first.send_signal(signal.SIGSTOP)
    workers.append(spawn_worker(redis_url, "apps.timeout_app", lease_ttl=30, visibility=120))
    # Lease time-to-live 30 s, visibility time-out 120 s: only the heartbeat time-out (1 s) lets the
    # second worker in within this wait.
    result = await client.wait(eid, timeout=25)
    assert result["pid"] == workers[1].pid and result["attempt"] == 2
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
