"""`durable export-history` and `durable replay-check` as real subprocesses against a real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable import Durable, RedisStore, Status

HERE = Path(__file__).resolve().parents[1]  # tests/, where apps/ lives
DURABLE = str(Path(sys.executable).with_name("durable"))


def durable_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_REDIS_URL=redis_url, COLUMNS="250")
    return subprocess.run([DURABLE, *args], cwd=HERE, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def in_flight(redis_url: str) -> Iterator[list[str]]:
    """Three executions of replay.order waiting for their signal, recorded by the v1 code."""
    sys.path.insert(0, str(HERE))
    try:
        from apps import replay_v1
    finally:
        sys.path.remove(str(HERE))

    async def start() -> list[str]:
        store = RedisStore.from_url(redis_url)
        d = Durable(store=store, workflows=[replay_v1.order])
        try:
            async with d.worker(concurrency=4, max_idle_poll=0.05):
                ids = [await d.start("replay.order", {"n": n}, execution_id=f"order-{n}") for n in range(3)]
                for eid in ids:
                    for _ in range(500):
                        record = await d.get_execution(eid)
                        if record.status == Status.WAITING:
                            break
                        await asyncio.sleep(0.02)
                    else:
                        raise AssertionError(f"{eid} did not reach its signal wait")
            return ids
        finally:
            await store.close()

    yield asyncio.run(start())


def test_replay_check_passes_patched_code_and_blocks_a_breaking_change(
    redis_url: str, in_flight: list[str], tmp_path: Path
) -> None:
    log = tmp_path / "termination-log"
    ok = durable_cli(redis_url, "replay-check", "--app", "apps.replay_v2", "--termination-log", str(log))
    assert ok.returncode == 0, ok.stderr
    assert "checked 3: 3 ok, 0 would not replay" in ok.stdout
    for eid in in_flight:
        assert eid in ok.stdout
    assert json.loads(log.read_text()) == {"checked": 3, "ok": 3, "diverged": []}

    bad = durable_cli(redis_url, "replay-check", "--app", "apps.replay_broken", "--termination-log", str(log))
    assert bad.returncode == 1, bad.stderr
    assert "diverged at position 2: expected 'approve', got 'fraud'" in bad.stdout
    assert "checked 3: 0 ok, 3 would not replay" in bad.stdout
    summary = json.loads(log.read_text())
    assert summary["checked"] == 3 and summary["ok"] == 0
    assert sorted(d["execution_id"] for d in summary["diverged"]) == sorted(in_flight)
    assert summary["diverged"][0] | {"execution_id": "x"} == {
        "execution_id": "x",
        "workflow_id": "replay.order",
        "position": 2,
        "expected": "approve",
        "actual": "fraud",
        "error": None,
    }

    as_json = durable_cli(
        redis_url, "replay-check", "--app", "apps.replay_broken", "--limit", "1", "-o", "json"
    )
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["checked"] == 1 and data["results"][0]["position"] == 2
    # Only executions of another workflow, or of a version none has: nothing to check is a pass.
    none = durable_cli(redis_url, "replay-check", "--app", "apps.replay_broken", "--workflow", "other.flow")
    assert none.returncode == 0 and "checked 0" in none.stdout
    versioned = durable_cli(redis_url, "replay-check", "--app", "apps.replay_broken", "--version", "v9")
    assert versioned.returncode == 0 and "checked 0" in versioned.stdout


def test_export_history_then_replay_check_from_the_file(
    redis_url: str, in_flight: list[str], tmp_path: Path
) -> None:
    exported = tmp_path / "histories.jsonl"
    done = durable_cli(redis_url, "export-history", "--workflow", "replay.order", "--out", str(exported))
    assert done.returncode == 0, done.stderr
    assert "exported 3 execution histories" in done.stdout
    lines = exported.read_text().splitlines()
    assert sorted(json.loads(line)["execution_id"] for line in lines) == sorted(in_flight)
    assert set(json.loads(lines[0])["steps"]) == {"reserve", "approve"}
    stdout = durable_cli(redis_url, "export-history", "--limit", "2")
    assert len(stdout.stdout.splitlines()) == 2

    # No Redis needed with --from-file: the URL points nowhere.
    nowhere = "redis://127.0.0.1:1/0"
    ok = durable_cli(nowhere, "replay-check", "--app", "apps.replay_v2", "--from-file", str(exported))
    assert ok.returncode == 0, ok.stderr
    assert "checked 3: 3 ok" in ok.stdout
    bad = durable_cli(nowhere, "replay-check", "--app", "apps.replay_broken", "--from-file", str(exported))
    assert bad.returncode == 1 and "would not replay" in bad.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json\n", "histories.jsonl:1: not an execution history: not JSON"),
        ('\n{"execution_id": "e"}\n', "histories.jsonl:2: not an execution history: 'workflow_id' must be"),
    ],
)
def test_replay_check_bad_input_is_one_line(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "histories.jsonl"
    path.write_text(content)
    url = "redis://127.0.0.1:1/0"
    for args, code, message in [
        (["replay-check", "--app", "apps.replay_v2", "--from-file", str(path)], 2, needle),
        (
            ["replay-check", "--app", "apps.replay_v2", "--from-file", str(tmp_path / "none")],
            2,
            "cannot read --from-file",
        ),
        (["replay-check", "--from-file", str(path)], 2, "pass --app MODULE"),
        (["replay-check", "--app", "apps.replay_v2", "--limit", "0"], 2, "--limit"),
        (["export-history", "--out", str(tmp_path / "no" / "dir" / "f")], 1, "cannot reach Redis"),
    ]:
        proc = durable_cli(url, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == code, proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
