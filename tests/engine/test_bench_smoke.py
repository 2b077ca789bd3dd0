"""Smoke test of the benchmark harness: a tiny SCALE, every workload prints one JSON line (about 5 s).

No timing is asserted: the figures live in bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {"W1", "W2", "W3", "W4", "W5", "memory.redis", "memory.worker"}


def test_bench_prints_one_json_line_per_workload() -> None:
    env = {**os.environ, "SCALE": "0.01", "BENCH_WORKERS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert {line["workload"] for line in lines} == WORKLOADS
    assert len(lines) == len(WORKLOADS)
    for line in lines:
        assert line["system"] == "durable"
        assert isinstance(line["params"], dict)
