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
