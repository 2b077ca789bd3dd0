"""`durable dashboard` as a real subprocess: its options, the token file, and refusing a short token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from _redis_server import free_port
from dashboard.conftest import TOKEN

DURABLE = str(Path(sys.executable).with_name("durable"))
TESTS = Path(__file__).resolve().parents[1]


def _env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_REDIS_URL=redis_url, DURABLE_APP="apps.dashboard_app")
    return env


def test_the_dashboard_command_serves_with_a_token_file(redis_url: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [DURABLE, "dashboard", "--port", str(port), "--token-file", str(token_file), "--read-token"],
        cwd=TESTS,
        env=_env(redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{url}/healthz").status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.1)
        assert httpx.get(f"{url}/api/workflows").status_code == 401  # --read-token
        workflows = httpx.get(f"{url}/api/workflows", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert "dash.greet" in [w["workflow_id"] for w in workflows["workflows"]]  # --app took
        refused = httpx.post(
            f"{url}/api/schedules/x/pause", headers={"Authorization": "Bearer wrong-wrong-wrong"}
        )
        assert refused.status_code == 401
    finally:
        proc.terminate()
        out, _err = proc.communicate(timeout=20)
    assert f"dashboard on http://127.0.0.1:{port}/" in out


def test_the_dashboard_command_refuses_bad_settings(redis_url: str, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abc")
    proc = subprocess.run(
        [DURABLE, "dashboard", "--token-file", str(short)],
        env=_env(redis_url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "at least 16 characters" in proc.stderr
    proc = subprocess.run(
        [DURABLE, "dashboard", "--read-token"],
        env=_env(redis_url),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=TESTS,
    )
    assert proc.returncode == 2 and "protecting reads needs a token" in proc.stderr
    proc = subprocess.run(
        [DURABLE, "dashboard", "--token-file", str(tmp_path / "missing")],
        env=_env(redis_url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "missing" in proc.stderr
