"""The `durable` command, run as real subprocesses against a real Redis, with a real worker subprocess."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parents[1]  # tests/, where cli_app.py lives
DURABLE = str(Path(sys.executable).with_name("durable"))


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_REDIS_URL=redis_url, DURABLE_APP="cli_app", DURABLE_ACTOR="tester", COLUMNS="250")
    env.update(extra)
    return env


class Cli:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DURABLE, *args],
            cwd=HERE,
            env=env or _env(self.redis_url),
            capture_output=True,
            text=True,
            timeout=30,
            input=stdin,
        )

    def ok(self, *args: str, **kw: Any) -> str:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, f"durable {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
        return proc.stdout

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.ok(*args, "-o", "json", **kw))

    def fails(self, *args: str, needle: str, code: int | None = None, **kw: Any) -> str:
        proc = self.run(*args, **kw)
        assert proc.returncode != 0, f"durable {' '.join(args)} should have failed: {proc.stdout}"
        if code is not None:
            assert proc.returncode == code, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
        assert lines[0].startswith("error: "), lines[0]
        assert needle in lines[0], lines[0]
        assert "Traceback" not in proc.stderr
        return lines[0]

    def fails_all(self, *cases: tuple[tuple[str, ...], dict[str, Any]]) -> None:
        """Several error paths at once (each is its own process)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(self.fails, *args, **kw) for args, kw in cases]
            for future in futures:
                future.result()

    def wait_status(self, execution_id: str, *statuses: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll in-process (cheaper than a `durable get` per poll); the detail has `get -o json`'s shape."""
        from durable import Durable

        async def poll() -> dict[str, Any]:
            d = Durable(self.redis_url)
            try:
                deadline = time.monotonic() + timeout
                while True:
                    record = await d.get_execution(execution_id)
                    if record is not None and record.status.value in statuses:
                        return json.loads(json.dumps(await d.get_execution_detail(execution_id), default=str))
                    if time.monotonic() > deadline:
                        state = None if record is None else record.status.value
                        raise AssertionError(f"{execution_id} is {state}, wanted {statuses}")
                    await asyncio.sleep(0.05)
            finally:
                await d.close()

        return asyncio.run(poll())


def case(*args: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return args, kw


@pytest.fixture
def cli(redis_url: str) -> Cli:
    return Cli(redis_url)


class WorkerProcess:
    def __init__(self, redis_url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [DURABLE, "worker", "--app", "cli_app", "--redis-url", redis_url, "--concurrency", "8", *args],
            cwd=HERE,
            env=_env(redis_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if " ready: " in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 15.0) -> None:
        if not self._ready.wait(timeout):
            raise AssertionError("worker did not start:\n" + "".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def worker(redis_url: str) -> Iterator[WorkerProcess]:
    w = WorkerProcess(redis_url)
    try:
        w.wait_ready()
        yield w
    finally:
        code = w.stop()
    assert code == 0, "".join(w.lines)
    assert any("worker stopped" in line for line in w.lines), "".join(w.lines)


# ---------------------------------------------------------------------------- worker and start


def test_start_get_and_list_with_a_worker(cli: Cli, worker: WorkerProcess, tmp_path: Path) -> None:
    eid = cli.ok("start", "cli.greet", "--input", '{"name": "Ada"}').strip()
    assert eid and "\n" not in eid
    detail = cli.wait_status(eid, "completed")
    assert detail["execution"]["result"] == {"greeting": "hello Ada"}
    assert [s["step_id"] for s in detail["steps"]] == ["compose"]
    assert detail["audit"][0]["kind"] == "created"
    assert detail["audit"][0]["actor"] == "tester"

    text = cli.ok("get", eid)
    for needle in ("completed", "compose", "hello Ada", "Steps", "Audit", "created"):
        assert needle in text

    # Input from a file, an explicit id, and idempotence on that id (for the same input; another
    # input under that id is refused, see test_start_with_a_taken_id).
    (tmp_path / "in.json").write_text('{"name": "Grace"}')
    started = cli.json("start", "cli.greet", "--input", f"@{tmp_path / 'in.json'}", "--id", "greet-grace")
    assert started == {"execution_id": "greet-grace", "workflow_id": "cli.greet"}
    assert (
        cli.ok("start", "cli.greet", "--input", '{"name": "Grace"}', "--id", "greet-grace").strip()
        == "greet-grace"
    )
    assert cli.wait_status("greet-grace", "completed")["execution"]["result"] == {"greeting": "hello Grace"}
    # Input from stdin.
    piped = cli.ok("start", "cli.tick", "--input", "@-", stdin='{"piped": true}').strip()
    assert cli.wait_status(piped, "completed")["execution"]["result"] == {"piped": True}

    table = cli.ok("list")
    assert eid in table and "greet-grace" in table and "cli.greet" in table
    listed = cli.json("list", "--workflow", "cli.greet")
    assert {r["execution_id"] for r in listed["executions"]} == {eid, "greet-grace"}
    assert listed["next_cursor"] is None
    assert cli.json("list", "--status", "failed")["executions"] == []


def test_start_errors(cli: Cli, tmp_path: Path) -> None:
    no_app = _env(cli.redis_url)
    del no_app["DURABLE_APP"]
    valid = '{"name": "x"}'
    cli.fails_all(
        case("start", "cli.nope", needle="unknown workflow 'cli.nope'"),
        case(
            "start", "cli.greet", "--input", '{"name": 5}', needle="input for workflow 'cli.greet' is invalid"
        ),
        case("start", "cli.greet", "--input", "{not json", needle="--input is not valid JSON", code=2),
        case(
            "start",
            "cli.greet",
            "--input",
            f"@{tmp_path / 'missing.json'}",
            needle="cannot read --input file",
        ),
        case("start", "cli.greet", "--id", "bad{id}", "--input", valid, needle="execution id"),
        case("start", needle="Missing argument", code=2),
        case("start", "cli.greet", "--input", valid, "--timeout", "-1", needle="--timeout must be", code=2),
        case("start", "cli.greet", "--input", valid, "--timeout", "nan", needle="--timeout must be", code=2),
        # Without the app module, workflow ids cannot resolve: the error says how to fix it.
        case("start", "cli.greet", needle="pass --app MODULE", env=no_app),
        case(
            "--app",
            "no_such_module",
            "start",
            "cli.greet",
            needle="cannot import app module 'no_such_module'",
        ),
        case(
            "start",
            "cli.greet",
            "--input",
            valid,
            "--redis-url",
            "redis://127.0.0.1:1/0",
            needle="cannot reach Redis at redis://127.0.0.1:1/0",
        ),
    )
    assert cli.json("list")["executions"] == []


def test_start_validates_a_plain_annotated_input(cli: Cli) -> None:
    cli.fails_all(
        case(
            "start", "cli.count", "--input", '"notint"',
            needle="input for workflow 'cli.count' is invalid: (root): Input should be a valid integer",
        ),
        case("start", "cli.count", needle="input for workflow 'cli.count' is invalid"),  # no input: None
    )  # fmt: skip
    assert cli.json("list")["executions"] == []
    eid = cli.ok("start", "cli.count", "--input", "21").strip()
    assert cli.json("get", eid)["execution"]["input"] == 21


def test_start_with_a_taken_id(cli: Cli) -> None:
    assert cli.ok("start", "cli.tick", "--id", "n-1", "--input", '{"a": 1, "b": 2}').strip() == "n-1"
    # The same request again (keys in another order) is idempotent.
    assert cli.ok("start", "cli.tick", "--id", "n-1", "--input", '{"b": 2, "a": 1}').strip() == "n-1"
    cli.fails_all(
        case(
            "start", "cli.tick", "--id", "n-1", "--input", '{"a": 2}',
            needle="execution id 'n-1' is already taken by an execution of 'cli.tick' with a different input",
        ),
        case(
            "start", "cli.greet", "--id", "n-1", "--input", '{"name": "x"}',
            needle="execution id 'n-1' is already taken by an execution of workflow 'cli.tick', not 'cli.greet'",
        ),
        # Not finished: allow_if_finished refuses a different request too.
        case(
            "start", "cli.tick", "--id", "n-1", "--input", '{"a": 2}', "--id-reuse", "allow_if_finished",
            needle="with a different input",
        ),
        case("start", "cli.tick", "--id", "n-1", "--id-reuse", "sometimes", needle="--id-reuse", code=2),
    )  # fmt: skip
    detail = cli.json("get", "n-1")
    assert detail["execution"]["input"] == {"a": 1, "b": 2} and detail["execution"]["run"] == 1
    cli.ok("cancel", "n-1")
    cli.fails("start", "cli.tick", "--id", "n-1", "--input", '{"a": 2}', needle="with a different input")
    out = cli.ok("start", "cli.tick", "--id", "n-1", "--input", '{"a": 2}', "--id-reuse", "allow_if_finished")
    assert out.strip() == "n-1"
    detail = cli.json("get", "n-1")
    assert (detail["execution"]["input"], detail["execution"]["run"], detail["execution"]["status"]) == (
        {"a": 2}, 2, "pending",
    )  # fmt: skip


# ---------------------------------------------------------------------------- signals


def test_signal(cli: Cli, worker: WorkerProcess) -> None:
    eid = cli.ok("start", "cli.approval", "--input", '{"id": 7}').strip()
    detail = cli.wait_status(eid, "waiting")
    assert detail["execution"]["waiting_for"] == "cli.approved"
    cli.fails("signal", eid, "cli.approved", "--payload", '{"approved": "perhaps"}', needle="approved")
    # A signal nobody waits for yet is buffered; a repeated delivery id is a duplicate.
    assert "delivered" in cli.ok("signal", eid, "cli.note", "--payload", '"fyi"', "--delivery-id", "d1")
    again = cli.json("signal", eid, "cli.note", "--payload", '"fyi"', "--delivery-id", "d1")
    assert again == {"execution_id": eid, "signal": "cli.note", "accepted": False}
    assert "delivered" in cli.ok("signal", eid, "cli.approved", "--payload", '{"approved": true}')
    done = cli.wait_status(eid, "completed")
    assert done["execution"]["result"] == {"order": 7, "approved": True}
    cli.fails_all(
        case("signal", eid, "cli.approved", "--payload", '{"approved": true}', needle="already finished"),
        case("signal", "nope", "cli.approved", "--payload", '{"approved": true}', needle="'nope'"),
        case("signal", eid, "cli.approved", "--payload", "[", needle="--payload is not valid JSON"),
    )


# ---------------------------------------------------------------------------- poisoned signals


def _no_app(redis_url: str) -> dict[str, str]:
    env = _env(redis_url)
    del env["DURABLE_APP"]
    return env


def _on_store(redis_url: str, fn: Any) -> Any:
    """Run `fn(store)` on a RedisStore of its own (to build states the CLI cannot)."""
    from durable import RedisStore

    async def go() -> Any:
        store = RedisStore.from_url(redis_url)
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(go())


def _buffered(redis_url: str, eid: str, name: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(f"dw:{{{eid}}}:sig:{name}"))
    finally:
        client.close()


def _audit_kinds(detail: dict[str, Any]) -> list[str]:
    return [a["kind"] for a in detail["audit"]]


def _until_audit(cli: Cli, eid: str, kind: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        detail = cli.wait_status(eid, *statuses)
        if kind in _audit_kinds(detail):
            return detail
        assert time.monotonic() < deadline, f"no {kind} audit entry: {detail['audit']}"
        time.sleep(0.05)


def _consumed_bad_record(redis_url: str, eid: str, *, fail: bool) -> None:
    """Leave what a consuming run leaves when the payload is bad: the wait's record completed with it.

    `fail=False`: the run crashed right after the consume (the record stays, a replay is queued).
    `fail=True`: the old engine's outcome, the execution failed with pydantic's ValidationError."""
    import orjson

    from durable._records import Status
    from durable._store._base import Checkpoint

    async def go(store: Any) -> None:
        got = await store.acquire(eid, "crashed", 30_000, int(time.time() * 1000))
        assert got.outcome == "ok"
        seq = orjson.loads(got.steps["poke"])["seq"]
        record = orjson.dumps(
            {
                "seq": seq,
                "kind": "signal",
                "status": "completed",
                "attempt": 1,
                "at": int(time.time() * 1000),
                "meta": {"signal": "cli.poke"},
                "result": {"kind": "signal", "payload": {"n": "notint"}},
            }
        )
        now = int(time.time() * 1000)
        await store.commit(eid, got.token, Checkpoint(records=[("poke", record)], current_step="poke"), now)
        if fail:
            error = orjson.dumps(
                {"type": "ValidationError", "message": "1 validation error for Poke", "fields": {}}
            )
            await store.finish(eid, got.token, Checkpoint(), now, status=Status.FAILED, error=error)
        else:
            await store.release(eid, "crashed", got.token)
            await store.enqueue(eid, "recover")

    _on_store(redis_url, go)


def test_get_shows_an_execution_waiting_for_a_concurrency_slot(cli: Cli, worker: WorkerProcess) -> None:
    first = cli.ok("start", "cli.limited", "--input", '{"id": 1}').strip()
    cli.wait_status(first, "waiting")
    second = cli.ok("start", "cli.limited", "--input", '{"id": 2}').strip()
    deadline = time.monotonic() + 15
    while cli.json("get", second)["execution"]["waiting_for"] != "concurrency:cli.limited":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    text = cli.ok("get", second)
    assert "pending" in text and "a concurrency slot of cli.limited" in text
    assert "delivered" in cli.ok("signal", first, "cli.approved", "--payload", '{"approved": true}')
    cli.wait_status(second, "waiting")
    assert "delivered" in cli.ok("signal", second, "cli.approved", "--payload", '{"approved": false}')
    assert cli.wait_status(second, "completed")["execution"]["result"] == {"order": 2, "approved": False}


def test_signal_without_the_app_is_validated_against_the_stored_schema(
    cli: Cli, worker: WorkerProcess, redis_url: str
) -> None:
    no_app = _no_app(redis_url)
    eid = cli.ok("start", "cli.poked").strip()
    cli.wait_status(eid, "waiting")
    # Without the workers' registry, the schema the waiting execution recorded decides.
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.delete("dw:signal-schemas") == 1  # the worker published cli_app's typed signals
    client.close()
    before = cli.wait_status(eid, "waiting")
    cli.fails_all(
        case(
            "signal",
            eid,
            "cli.poke",
            "--payload",
            '{"n": "notint"}',
            needle="payload for signal 'cli.poke' is invalid: n: 'notint' is not of type 'integer'",
            env=no_app,
        ),
        case(
            "signal", eid, "cli.poke", "--payload", "{}", needle="is invalid: n: field required", env=no_app
        ),
        case("signal", eid, "cli.poke", needle="(root): None is not of type 'object'", env=no_app),
        # With the app the model itself decides, as before.
        case(
            "signal",
            eid,
            "cli.poke",
            "--payload",
            '{"n": "notint"}',
            needle="n: Input should be a valid integer",
        ),
    )
    after = cli.wait_status(eid, "waiting")
    assert after["audit"] == before["audit"] and _buffered(redis_url, eid, "cli.poke") == 0
    assert after["execution"]["waiting_for"] == "cli.poke"
    assert "delivered" in cli.ok("signal", eid, "cli.poke", "--payload", '{"n": 5}', env=no_app)
    assert cli.wait_status(eid, "completed")["execution"]["result"] == {"n": 5}


def test_signal_sent_before_anyone_waits_is_validated_against_the_workers_registry(
    cli: Cli, worker: WorkerProcess, redis_url: str
) -> None:
    no_app = _no_app(redis_url)
    eid = cli.ok("start", "cli.approval", "--input", '{"id": 1}').strip()
    cli.wait_status(eid, "waiting")  # for cli.approved, not cli.poke
    cli.fails(
        "signal",
        eid,
        "cli.poke",
        "--payload",
        '{"n": "x"}',
        needle="signal 'cli.poke' is invalid",
        env=no_app,
    )
    assert _buffered(redis_url, eid, "cli.poke") == 0
    assert "delivered" in cli.ok("signal", eid, "cli.poke", "--payload", '{"n": 1}', env=no_app)
    assert _buffered(redis_url, eid, "cli.poke") == 1
    # A signal nobody knows a schema for is delivered unchecked, as before.
    assert "delivered" in cli.ok("signal", eid, "cli.unknown", "--payload", '"anything"', env=no_app)


def test_a_bad_payload_that_gets_through_is_rejected_when_consumed(
    cli: Cli, worker: WorkerProcess, redis_url: str
) -> None:
    eid = cli.ok("start", "cli.poked").strip()
    cli.wait_status(eid, "waiting")

    async def deliver(store: Any) -> None:  # an old client: straight to the store, unchecked
        assert await store.send_signal(eid, "cli.poke", b'{"n":"notint"}', "old-1", int(time.time() * 1000))

    _on_store(redis_url, deliver)
    detail = _until_audit(cli, eid, "signal.rejected", "waiting")
    rejected = next(a for a in detail["audit"] if a["kind"] == "signal.rejected")
    assert rejected["message"].startswith("signal cli.poke rejected: n: Input should be a valid integer")
    assert rejected["step_id"] == "poke" and rejected["data"] == {"n": "notint"}
    poke = next(s for s in detail["steps"] if s["step_id"] == "poke")
    assert poke["status"] == "waiting" and detail["execution"]["waiting_for"] == "cli.poke"
    assert "delivered" in cli.ok("signal", eid, "cli.poke", "--payload", '{"n": 2}', env=_no_app(redis_url))
    done = cli.wait_status(eid, "completed")
    assert done["execution"]["result"] == {"n": 2}
    assert _audit_kinds(done).count("signal.rejected") == 1


def test_a_replay_of_a_consumed_bad_payload_rejects_it_the_same_way(
    cli: Cli, worker: WorkerProcess, redis_url: str
) -> None:
    eid = cli.ok("start", "cli.poked").strip()
    cli.wait_status(eid, "waiting")
    _consumed_bad_record(redis_url, eid, fail=False)
    detail = _until_audit(cli, eid, "signal.rejected", "waiting")
    assert next(s for s in detail["steps"] if s["step_id"] == "poke")["status"] == "waiting"
    assert "delivered" in cli.ok("signal", eid, "cli.poke", "--payload", '{"n": 3}')
    assert cli.wait_status(eid, "completed")["execution"]["result"] == {"n": 3}


def test_retry_discard_signal_recovers_an_execution_failed_on_a_bad_payload(
    cli: Cli, worker: WorkerProcess, redis_url: str, tmp_path: Path
) -> None:
    no_app = _no_app(redis_url)
    eid = cli.ok("start", "cli.poked").strip()
    cli.wait_status(eid, "waiting")
    flaky = cli.ok("start", "cli.flaky", "--input", json.dumps({"marker": str(tmp_path / "none")})).strip()
    cli.wait_status(flaky, "failed")
    cli.fails_all(
        case("retry", eid, "--discard-signal", needle="is waiting, not failed"),
        case("retry", "nope", "--discard-signal", needle="'nope' does not exist"),
        case("retry", flaky, "--discard-signal", needle="has no consumed signal at step 'second' to discard"),
    )
    assert cli.wait_status(flaky, "failed")["execution"]["attempt"] == 1  # nothing changed

    _consumed_bad_record(redis_url, eid, fail=True)
    cli.wait_status(eid, "failed")
    assert cli.json("retry", eid, "--discard-signal", env=no_app) == {
        "execution_id": eid,
        "status": "pending",
    }
    detail = _until_audit(cli, eid, "signal.discarded", "waiting")
    discarded = next(a for a in detail["audit"] if a["kind"] == "signal.discarded")
    assert discarded["step_id"] == "poke" and discarded["actor"] == "tester"
    assert discarded["data"]["result"] == {"kind": "signal", "payload": {"n": "notint"}}
    assert next(s for s in detail["steps"] if s["step_id"] == "poke")["status"] == "waiting"
    assert "signal.rejected" not in _audit_kinds(detail)
    assert "delivered" in cli.ok("signal", eid, "cli.poke", "--payload", '{"n": 4}', env=no_app)
    done = cli.wait_status(eid, "completed")
    assert done["execution"]["result"] == {"n": 4} and done["execution"]["attempt"] == 2


def test_skip_step_on_a_signal_wait_validates_the_payload(
    cli: Cli, worker: WorkerProcess, redis_url: str
) -> None:
    no_app = _no_app(redis_url)
    eid = cli.ok("start", "cli.poked").strip()
    before = cli.wait_status(eid, "waiting")
    cli.fails_all(
        case(
            "skip-step",
            eid,
            "poke",
            "--result",
            '{"n": "bad"}',
            needle="n: 'bad' is not of type 'integer'",
            env=no_app,
        ),
        case(
            "skip-step", eid, "poke", "--result", '{"n": "bad"}', needle="n: Input should be a valid integer"
        ),
        case("skip-step", eid, "poke", needle="payload for signal 'cli.poke' is invalid: (root)", env=no_app),
    )
    after = cli.wait_status(eid, "waiting")
    assert after["audit"] == before["audit"] and after["steps"] == before["steps"]
    assert "skipped" in cli.ok("skip-step", eid, "poke", "--result", '{"n": 6}', env=no_app)
    done = cli.wait_status(eid, "completed")
    assert done["execution"]["result"] == {"n": 6}
    poke = next(s for s in done["steps"] if s["step_id"] == "poke")
    assert poke["result"] == {"kind": "signal", "payload": {"n": 6}}
    assert poke["meta"]["signal"] == "cli.poke" and poke["meta"]["skipped_by"] == "tester"


# ---------------------------------------------------------------------------- operator actions


def test_fail_a_sleeping_execution_then_retry_it(cli: Cli, worker: WorkerProcess) -> None:
    napper = cli.ok("start", "cli.sleepy").strip()
    cli.wait_status(napper, "sleeping")
    cli.fails_all(
        case("fail", napper, needle="Missing option '--reason'", code=2),
        case("fail", napper, "--reason", "  ", needle="--reason must not be empty"),
        case("fail", "nope", "--reason", "stuck", needle="'nope'"),
    )
    assert cli.wait_status(napper, "sleeping")["execution"]["error"] is None  # nothing was written
    out = cli.json("fail", napper, "--reason", "stuck on a dead API", "--actor", "alice")
    assert out == {"execution_id": napper, "status": "failed"}
    detail = cli.wait_status(napper, "failed")
    assert detail["execution"]["error"] == {
        "type": "ForcedFailure",
        "message": "stuck on a dead API",
        "fields": {"reason": "stuck on a dead API", "actor": "alice"},
    }
    forced = [a for a in detail["audit"] if a["kind"] == "failed.forced"]
    assert len(forced) == 1 and forced[0]["actor"] == "alice"
    cli.fails("fail", napper, "--reason", "again", needle="already finished")
    # A forced failure is retried like any other: the execution sleeps again.
    assert "retrying" in cli.ok("retry", napper)
    assert cli.wait_status(napper, "sleeping")["execution"]["attempt"] == 2
    second = cli.ok("start", "cli.sleepy").strip()
    cli.wait_status(second, "sleeping")
    assert cli.ok("fail", second, "--reason", "stuck").strip() == f"failed {second}"


def test_cancel_retry_and_skip_step(cli: Cli, worker: WorkerProcess, tmp_path: Path) -> None:
    # cancel, with the actor from --actor in the audit
    napper = cli.ok("start", "cli.sleepy").strip()
    cli.wait_status(napper, "sleeping")
    out = cli.ok("cancel", napper, "--reason", "not needed", "--actor", "alice")
    assert "cancelled" in out
    detail = cli.wait_status(napper, "cancelled")
    assert any(a["actor"] == "alice" and a["kind"].startswith("cancel") for a in detail["audit"])
    cli.fails_all(
        case("cancel", napper, needle="already finished"),
        case("cancel", "nope", needle="'nope'"),
        case("retry", napper, needle="has not failed"),
        case("retry", "nope", needle="'nope'"),
    )

    # skip-step: store a result for the long sleep; the execution goes on
    second = cli.ok("start", "cli.sleepy").strip()
    cli.wait_status(second, "sleeping")
    cli.fails("skip-step", second, "nap", "--result", "{", needle="--result is not valid JSON")
    out = cli.ok("skip-step", second, "nap")
    assert "skipped" in out
    assert cli.wait_status(second, "completed")["execution"]["result"] == "rested"

    # retry: a failed step runs again once its cause is fixed; the completed step is kept
    marker = tmp_path / "marker"
    flaky = cli.ok("start", "cli.flaky", "--input", json.dumps({"marker": str(marker)})).strip()
    failed = cli.wait_status(flaky, "failed")
    assert "marker" in failed["execution"]["error"]["message"]
    marker.write_text("ok")
    assert cli.json("retry", flaky) == {"execution_id": flaky, "status": "pending"}
    done = cli.wait_status(flaky, "completed")
    assert done["execution"]["result"] == {"first": 1, "second": "found"}
    assert done["execution"]["attempt"] == 2
    first = next(s for s in done["steps"] if s["step_id"] == "first")
    assert first["attempt"] == 1

    # list filters and paging
    page = cli.json("list", "--workflow", "cli.sleepy", "--limit", "1")
    assert len(page["executions"]) == 1 and page["next_cursor"]
    rest = cli.json("list", "--workflow", "cli.sleepy", "--limit", "1", "--cursor", page["next_cursor"])
    ids = {page["executions"][0]["execution_id"], rest["executions"][0]["execution_id"]}
    assert ids == {napper, second}
    assert [r["execution_id"] for r in cli.json("list", "-s", "cancelled")["executions"]] == [napper]
    assert "more: --cursor" in cli.ok("list", "--workflow", "cli.sleepy", "--limit", "1")
    cli.fails_all(
        case("list", "--status", "bogus", needle="'bogus' is not one of", code=2),
        case("list", "--since", "yesterday", needle="--since must be an ISO 8601 time", code=2),
        case("skip-step", second, "nap", needle="already finished"),
    )
    assert cli.json("list", "--since", "2999-01-01T00:00:00Z")["executions"] == []


def test_get_errors_and_global_options_anywhere(cli: Cli, redis_url: str) -> None:
    env = _env("redis://127.0.0.1:1/0")
    cli.fails_all(
        case("get", "nope", needle="execution 'nope' does not exist", code=1),
        # Options after the command name win over the environment.
        case("get", "nope", "--redis-url", redis_url, "-o", "json", needle="does not exist", env=env),
        case("get", "x", needle="cannot reach Redis", env=env),
        case("get", "x", "--output", "yaml", needle="'yaml' is not one of", code=2),
        case("bogus", needle="No such command 'bogus'", code=2),
    )
    proc = cli.run()
    assert proc.returncode == 2 and "Usage: durable" in proc.stdout and "schedules" in proc.stdout
    assert "--redis-url" in cli.ok("--help")


# ---------------------------------------------------------------------------- describe


def test_describe(cli: Cli) -> None:
    text = cli.ok("describe", "cli.approval")
    assert "waitForSignal" in text and "approval" in text and "ship" in text
    mermaid = cli.ok("describe", "cli.approval", "--format", "mermaid")
    assert mermaid.startswith("flowchart TD") and "ship" in mermaid
    shape = json.loads(cli.ok("describe", "cli.approval", "--format", "json"))
    assert [n["id"] for n in shape["nodes"]] == ["approval", "ship"]
    assert cli.json("describe", "cli.approval") == shape
    cli.fails_all(
        case("describe", "cli.nope", needle="unknown workflow 'cli.nope'"),
        case("describe", "cli.approval", "--format", "png", needle="'png' is not one of", code=2),
    )


# ---------------------------------------------------------------------------- schedules


async def _ensure_schedules(redis_url: str) -> None:
    sys.path.insert(0, str(HERE))
    import cli_app
    from durable import Durable

    d = Durable(redis_url, workflows=[cli_app.tick], actor="setup")
    try:
        await d.ensure_schedule(cli_app.tick, {"n": 1}, id="every-second", interval=1)
        await d.ensure_schedule(
            cli_app.tick, None, id="nightly", cron="30 2 * * *", timezone="Europe/Paris", overlap="forbid"
        )
    finally:
        await d.close()


async def _fired(redis_url: str, schedule_id: str, at_least: int = 0, timeout: float = 15.0) -> int:
    from durable import Durable

    d = Durable(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            fired = (await d.get_schedule(schedule_id)).fired_count
            if fired >= at_least or time.monotonic() > deadline:
                return fired
            await asyncio.sleep(0.05)
    finally:
        await d.close()


def test_schedules(cli: Cli, redis_url: str, worker: WorkerProcess) -> None:
    asyncio.run(_ensure_schedules(redis_url))
    table = cli.ok("schedules", "list")
    assert "every-second" in table and "nightly" in table and "cron 30 2 * * * (Europe/Paris)" in table

    # The worker fires the every-second schedule; its runs complete.
    assert asyncio.run(_fired(redis_url, "every-second", at_least=2)) >= 2
    info = cli.json("schedules", "get", "every-second")
    last = info["last_execution_id"]
    assert last.startswith("every-second@")
    assert cli.wait_status(last, "completed")["execution"]["result"] == {"n": 1}
    assert [h["kind"] for h in info["history"]][:2] == ["created", "fired"]

    paused = cli.json("schedules", "pause", "every-second", "--actor", "bob")
    assert paused["paused"] is True and paused["next_run_at"] is None
    fired = asyncio.run(_fired(redis_url, "every-second"))
    time.sleep(1.2)
    assert asyncio.run(_fired(redis_url, "every-second")) == fired
    assert "resumed schedule every-second; next run" in cli.ok("schedules", "resume", "every-second")
    detail = cli.ok("schedules", "get", "every-second")
    assert "paused" in detail and "bob" in detail and "resumed" in detail

    triggered = cli.json("schedules", "trigger", "nightly", "--actor", "carol")["execution_id"]
    assert triggered.startswith("nightly@manual-")
    assert cli.wait_status(triggered, "completed")["execution"]["workflow_id"]
    assert "triggered" in cli.ok("schedules", "get", "nightly") and "carol" in cli.ok(
        "schedules", "get", "nightly"
    )

    listed = cli.json("schedules", "list")
    assert [s["schedule_id"] for s in listed] == ["every-second", "nightly"]
    nightly = listed[1]
    assert (nightly["cron"], nightly["timezone"], nightly["overlap"]) == (
        "30 2 * * *",
        "Europe/Paris",
        "forbid",
    )

    assert "removed schedule every-second" in cli.ok("schedules", "remove", "every-second")
    cli.fails_all(
        *(
            case("schedules", action, "every-second", needle="schedule 'every-second' does not exist", code=1)
            for action in ("get", "pause", "resume", "trigger", "remove")
        ),
        case("schedules", "get", needle="Missing argument", code=2),
    )


# ---------------------------------------------------------------------------- worker errors


def test_worker_errors(cli: Cli) -> None:
    env = _env(cli.redis_url)
    del env["DURABLE_APP"]
    cli.fails_all(
        case("worker", needle="pass --app MODULE", env=env, code=2),
        case("worker", "--app", "no_such_module", needle="cannot import app module", code=2),
        case("worker", "--redis-url", "redis://127.0.0.1:1/0", needle="cannot reach Redis", code=1),
        case("worker", "--concurrency", "0", needle="--concurrency", code=2),
    )
    # A bad URL is named in the error without its password.
    for url in ("redis://u:s3cret@db:notaport/0", "redis://u:s3cret@db/0?bogus=1", "ftp://u:s3cret@db/0"):
        out = cli.fails("worker", "--redis-url", url, needle="invalid --redis-url", code=2)
        assert "s3cret" not in out and "u:***@db" in out


def test_worker_stops_gracefully_on_sigint(redis_url: str) -> None:
    w = WorkerProcess(redis_url)
    w.wait_ready()
    w.proc.send_signal(signal.SIGINT)
    assert w.stop() == 0
    assert any("worker stopped" in line for line in w.lines)


def test_several_worker_processes_fire_each_slot_once(redis_url: str) -> None:
    """Three `durable worker` processes poll the same schedules: every slot is claimed and fired once."""
    asyncio.run(_ensure_schedules(redis_url))
    workers = [WorkerProcess(redis_url) for _ in range(3)]
    try:
        for w in workers:
            w.wait_ready()
        asyncio.run(_fired(redis_url, "every-second", at_least=4))
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0, 0]

    async def check() -> None:
        from durable import Durable

        d = Durable(redis_url)
        try:
            info = await d.get_schedule("every-second")
            runs = [
                r for r in await d.list_executions(limit=1000) if r.execution_id.startswith("every-second@")
            ]
            fired = [e for e in await d.list_schedule_audit("every-second") if e.kind == "fired"]
            assert info.fired_count >= 4
            # One commit per slot: as many fired slots as executions and as audit entries.
            assert len(runs) == info.fired_count == len(fired)
            assert len({e.message for e in fired}) == len(fired)
        finally:
            await d.close()

    asyncio.run(check())
