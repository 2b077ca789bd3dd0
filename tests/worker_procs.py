"""Real `durable worker` processes for the fault tests: start one on a test app, wait for the marks its
steps leave in Redis, and stop whatever is left (a SIGSTOPped one included) when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
DURABLE_BIN = str(Path(sys.executable).parent / "durable")


def spawn_worker(
    redis_url: str,
    app: str = "apps.fault_app",
    *,
    url_env: str = "FAULT_REDIS_URL",
    concurrency: int = 16,
    lease_ttl: float = 1.0,
    visibility: float = 1.5,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """A worker on `app` (a module under tests/), which finds Redis in `url_env` for its own marks."""
    env = {**os.environ, url_env: redis_url, "PYTHONPATH": str(ROOT / "tests")}
    cmd = [DURABLE_BIN, "worker", "--app", app, "--redis-url", redis_url, "--concurrency", str(concurrency),
           "--lease-ttl", str(lease_ttl), "--visibility-timeout", str(visibility)]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def wait_for_key(redis_url: str, key: str, timeout: float = 20) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while not client.exists(key):
            if time.monotonic() > deadline:
                raise AssertionError(f"{key} never appeared")
            time.sleep(0.02)
    finally:
        client.close()


def runs(redis_url: str) -> dict[str, int]:
    """How often each marked step body started (the apps' `fault:runs` hash)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {k: int(v) for k, v in client.hgetall("fault:runs").items()}
    finally:
        client.close()
