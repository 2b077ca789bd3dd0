"""Worker versions with real worker processes: `durable worker --version`, `durable versions`,
`durable migrate` and `durable get`, against one real Redis.

Two images' worth of code (tests/apps/versioned_v1.py and versioned_v2.py) record in every step
result which code ran it, so a run resumed by the wrong version shows in the results.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from durable import Durable, RedisStore, Status

HERE = Path(__file__).resolve().parents[1]  # tests/, where apps/ lives
DURABLE = str(Path(sys.executable).with_name("durable"))
WID = "versioned.order"
T = TypeVar("T")

pytestmark = pytest.mark.slow


def _env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_REDIS_URL=redis_url, COLUMNS="250", PYTHONPATH=str(HERE))
    return env


def durable_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DURABLE, *args], cwd=HERE, env=_env(redis_url), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def spawn(redis_url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(app: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        cmd = [DURABLE, "worker", "--app", app, "--lease-ttl", "1", "--visibility-timeout", "1.5", *args]
        proc = subprocess.Popen(
            cmd, cwd=HERE, env={**_env(redis_url), **(env or {})}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def with_client(redis_url: str, fn: Callable[[Durable], Awaitable[T]]) -> T:
    async def go() -> T:
        store = RedisStore.from_url(redis_url)
        try:
            return await fn(Durable(store=store, workflows=[], allow_unregistered=True))
        finally:
            await store.close()

    return asyncio.run(go())


def eventually(
    redis_url: str, check: Callable[[Durable], Awaitable[bool]], what: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if with_client(redis_url, check):
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(redis_url: str, ids: list[str]) -> dict[str, Status]:
    async def go(d: Durable) -> dict[str, Status]:
        return {eid: (await d.get_execution(eid)).status for eid in ids}  # type: ignore[union-attr]

    return with_client(redis_url, go)


def all_in(redis_url: str, ids: list[str], *wanted: Status) -> Callable[[Durable], Awaitable[bool]]:
    async def check(d: Durable) -> bool:
        records = [await d.get_execution(e) for e in ids]
        return all(r is not None and r.status in wanted for r in records)

    return check


def start(redis_url: str, ids: list[str]) -> None:
    async def go(d: Durable) -> None:
        for eid in ids:
            await d.start(WID, {"id": eid}, execution_id=eid)

    with_client(redis_url, go)


def signal_all(redis_url: str, ids: list[str]) -> None:
    async def go(d: Durable) -> None:
        for eid in ids:
            await d.signal(eid, "go", True)

    with_client(redis_url, go)


def results(redis_url: str, ids: list[str]) -> dict[str, Any]:
    async def go(d: Durable) -> dict[str, Any]:
        return {eid: await d.wait(eid, timeout=30) for eid in ids}

    return with_client(redis_url, go)


def test_executions_finish_on_the_version_that_started_them(
    redis_url: str, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    v1 = spawn("apps.versioned_v1", "--version", "v1")
    eventually(redis_url, _current_is("v1"), "v1 to become current")
    old = [f"old-{n}" for n in range(3)]
    start(redis_url, old)
    eventually(redis_url, all_in(redis_url, old, Status.WAITING), "v1's executions to wait for their signal")

    # v2's workers come up (version from the environment, as the chart sets it); v1 stays current until
    # v2 is promoted.
    spawn("apps.versioned_v2", env={"DURABLE_WORKER_VERSION": "v2"})
    eventually(redis_url, lambda d: _known(d, {"v1", "v2"}), "v2 to announce itself")
    promoted = durable_cli(redis_url, "versions", "promote", WID, "v2")
    assert promoted.returncode == 0, promoted.stderr
    assert f"workflow {WID}: new executions go to v2 (was v1)" in promoted.stdout
    new = ["new-0", "new-1"]
    start(redis_url, new)
    eventually(redis_url, all_in(redis_url, new, Status.WAITING), "v2's executions to wait for their signal")

    listed = durable_cli(redis_url, "--output", "json", "versions", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {r["version"]: r for r in json.loads(listed.stdout)["versions"]}
    assert rows["v2"] | {"runnable": 0} == {"workflow_id": WID, "version": "v2", "state": "current",
                                            "in_flight": 2, "runnable": 0}  # fmt: skip
    assert rows["v1"]["state"] == "draining" and rows["v1"]["in_flight"] == 3
    shown = durable_cli(redis_url, "get", "old-0")
    assert shown.returncode == 0 and "worker version" in shown.stdout and "v1" in shown.stdout

    # v1's worker dies; its executions are woken but wait for a v1 worker: v2 does not touch them.
    v1.kill()
    v1.wait()
    signal_all(redis_url, old + new)
    assert results(redis_url, new) == {eid: ["reserve@v2", "ship@v2"] for eid in new}
    time.sleep(2.0)  # past the visibility time-out: v2 would have taken v1's entries by now if it could
    assert set(statuses(redis_url, old).values()) <= {Status.PENDING, Status.WAITING, Status.SLEEPING}

    spawn("apps.versioned_v1", "--version", "v1")
    assert results(redis_url, old) == {eid: ["reserve@v1", "ship@v1"] for eid in old}

    async def nothing_in_flight(d: Durable) -> bool:
        return await d.versions.load(WID) == {}

    eventually(redis_url, nothing_in_flight, "every execution to finish")


def _current_is(version: str) -> Callable[[Durable], Awaitable[bool]]:
    async def check(d: Durable) -> bool:
        return await d.versions.current(WID) == version

    return check


async def _known(d: Durable, versions: set[str]) -> bool:
    return await d.versions.known() >= versions


def test_migrate_checks_the_replay_first_and_moves_runs_to_the_new_version(
    redis_url: str, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    v1 = spawn("apps.versioned_v1", "--version", "v1")
    eventually(redis_url, _current_is("v1"), "v1 to become current")
    ids = ["m-0", "m-1"]
    start(redis_url, ids)
    eventually(redis_url, all_in(redis_url, ids, Status.WAITING), "the executions to wait")
    v1.send_signal(signal.SIGTERM)
    v1.wait()

    # Code that would not replay them: nothing moves.
    refused = durable_cli(
        redis_url,
        "migrate",
        "--workflow",
        WID,
        "--from",
        "v1",
        "--to",
        "v2",
        "--app",
        "apps.versioned_broken",
    )
    assert refused.returncode == 1
    assert "2 of 2 executions would not replay on the --app code: nothing moved" in refused.stderr
    assert "expected 'approve'" in refused.stdout or "expected" in refused.stdout
    assert with_client(redis_url, lambda d: d.versions.load(WID)) == {"v1": _load("v1", 2, 0)}

    moved = durable_cli(redis_url, "migrate", "m-0", "--to", "v2", "--app", "apps.versioned_v2")
    assert moved.returncode == 0, moved.stderr
    assert "moved 1 execution(s) to v2" in moved.stdout
    again = durable_cli(redis_url, "migrate", "m-0", "--to", "v2", "--app", "apps.versioned_v2")
    assert again.returncode == 1 and "already on v2: nothing to move" in again.stderr

    spawn("apps.versioned_v2", "--version", "v2")
    signal_all(redis_url, ids)
    # m-0 resumes on v2's code (its reserve stays memoized from v1); m-1 waits for a v1 worker.
    assert results(redis_url, ["m-0"]) == {"m-0": ["reserve@v1", "ship@v2"]}
    assert statuses(redis_url, ["m-1"])["m-1"] != Status.COMPLETED
    rest = durable_cli(redis_url, "migrate", "--workflow", WID, "--to", "v2", "--app", "apps.versioned_v2")
    assert rest.returncode == 0 and "moved 1 execution(s) to v2" in rest.stdout
    assert results(redis_url, ["m-1"]) == {"m-1": ["reserve@v1", "ship@v2"]}


def _load(version: str, in_flight: int, runnable: int) -> Any:
    from durable import VersionLoad

    return VersionLoad(version, in_flight, runnable)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["worker", "--app", "apps.versioned_v1", "--version", "bad version"], "--version: worker version"),
        (["worker", "--app", "apps.versioned_v1", "--make-current"], "--make-current needs --version"),
        (["versions", "promote", WID, "x@y"], "VERSION: worker version 'x@y' is not valid"),
        (["versions", "promote", " ", "v1"], "WORKFLOW must not be empty"),
        (["migrate", "--to", "v2", "--skip-check"], "give one EXECUTION or --workflow (not both)"),
        (["migrate", "e1", "--workflow", WID, "--to", "v2"], "give one EXECUTION or --workflow (not both)"),
        (["migrate", "e1", "--skip-check"], "--to VERSION is required"),
        (["migrate", "e1", "--to", "v2", "--from", "v1", "--skip-check"], "--from needs --workflow"),
        (["migrate", "e1", "--to", "-v2", "--skip-check"], "--to: worker version '-v2' is not valid"),
        (["migrate", "missing", "--to", "v2", "--skip-check"], "execution 'missing' does not exist"),
        (["migrate", "e1", "--to", "v2"], "no workflows to serve: pass --app MODULE"),
    ],
)
def test_bad_version_arguments_are_one_line_errors_that_change_nothing(
    redis_url: str, args: list[str], error: str
) -> None:
    done = durable_cli(redis_url, *args)
    assert done.returncode in (1, 2), done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and error in lines[0], done.stderr
    assert with_client(redis_url, lambda d: d.versions.all_current()) == {}
