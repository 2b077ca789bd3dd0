"""`make demo` runs the example order workflow end to end, on the embedded store and on Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_demo_runs_to_completion(backend: str, request: pytest.FixtureRequest) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_REDIS_URL"}
    if backend == "redis":
        env["DURABLE_REDIS_URL"] = request.getfixturevalue("redis_url")
    proc = subprocess.run(
        [sys.executable, "-m", "durable.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "'status': 'shipped'" in out and "'approver': 'grace'" in out
    for kind in ("created", "step.retry", "sleep", "signal.consumed", "emit", "completed"):
        assert f"  {kind}" in out, f"{kind} missing from the timeline:\n{out}"
    assert "order.shipped: {'order_id': 1001" in out
    # Not a terminal: it says how to run the dashboard and exits (so `make demo` ends in CI).
    assert "durable dashboard --redis-url" in out and out.rstrip().endswith(("8080", "8080/"))


def test_demo_in_a_terminal_serves_the_dashboard_until_interrupted(redis_url: str) -> None:
    """On a terminal the demo serves the dashboard over the same store, and Ctrl-C ends it."""
    import pty
    import re
    import signal
    import time
    import urllib.request

    from _redis_server import free_port

    port = free_port()
    env = {**os.environ, "DURABLE_DASHBOARD_PORT": str(port)}
    env.pop("DURABLE_REDIS_URL", None)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable.demo"],
        stdin=follower,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    try:
        out = b""
        deadline = time.monotonic() + 60
        while b"Ctrl-C" not in out and time.monotonic() < deadline:
            out += os.read(leader, 4096)
        text = out.decode()
        match = re.search(rf"http://127\.0\.0\.1:{port}/executions/(\w+)", text)
        assert match, text
        page = None
        while page is None and time.monotonic() < deadline:
            try:
                page = urllib.request.urlopen(match.group(0), timeout=5).read().decode()
            except OSError:
                time.sleep(0.1)
        assert page is not None and "completed" in page and "reserve-stock" in page
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
        assert proc.stderr is not None
        proc.stderr.close()
