"""Store faults never reach workflow code (issue 8, defects 1 and 2).

A checkpoint that cannot be committed (the store unreachable, slow, restarting, the lease lost)
abandons the activation: user code's `except Exception` never sees it, no compensation runs
behind the workflow's back, the execution is never marked failed, and it carries on from its
last commit. The first test injects a fault at every store call of the activation path, before
the call (nothing written) and after it (written, answer lost), and checks the history
afterwards instead of trusting the code.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from _redis_server import RedisServer
from durable import (
    ActivationAbandoned,
    Durable,
    MemoryStore,
    RedisStore,
    Status,
    Store,
    StoreUnavailable,
    WorkflowContext,
    workflow,
)
from durable._store._redis import RedisSettings
from durable._store._redis._mux import Mux

RUNS: collections.Counter[tuple[str, str]] = collections.Counter()
CAUGHT: collections.Counter[str] = collections.Counter()


def body(execution_id: str, step: str) -> str:
    RUNS[(execution_id, step)] += 1
    return step


def ship(execution_id: str, n: int) -> str:
    RUNS[(execution_id, "ship")] += 1
    if n % 2:
        raise RuntimeError("no truck")
    return "shipped"


@workflow("faults.every_point")
async def every_point(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    eid = ctx.execution_id
    await ctx.step("reserve", body, eid, "reserve", compensate=lambda: body(eid, "undo-reserve"))
    ctx.emit("reserved", {"n": n})
    await ctx.sleep(0, step_id="pause")
    await ctx.step("charge", body, eid, "charge", compensate=lambda: body(eid, "undo-charge"))
    go = await ctx.wait_for_signal("faults.go", timeout=60, step_id="go")
    try:
        shipped = await ctx.step("ship", ship, eid, n)
    except Exception:  # the saga pattern of the defect: only a real step failure may land here
        CAUGHT[eid] += 1
        await ctx.rollback()
        return {"status": "rolled back", "go": go.payload}
    return {"status": shipped, "go": go.payload}


# The store calls an activation makes, in the order the engine makes them.
ACTIVATION_CALLS = frozenset({"acquire", "commit", "suspend", "finish", "release", "ack", "add_timer"})


class FaultyStore:
    """Delegates to a real store; the `target`-th activation call fails once.

    `before`: the call is not made (nothing written). `after`: the call is made and its answer is
    lost, as when a connection drops between a script's run and its reply.
    """

    def __init__(self, inner: Store, target: int, mode: str) -> None:
        self._inner = inner
        self._target = target
        self._mode = mode
        self.calls = 0
        self.faulted: tuple[str, tuple[Any, ...]] | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ACTIVATION_CALLS:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            index = self.calls
            self.calls += 1
            if index != self._target:
                return await attr(*args, **kwargs)
            self.faulted = (name, args)
            if self._mode == "after":
                await attr(*args, **kwargs)
            raise StoreUnavailable(f"injected fault {self._mode} {name}")

        return call


def _committed_steps(faulted: tuple[str, tuple[Any, ...]] | None, mode: str) -> set[str]:
    """Steps whose outcome the faulted call would have written but (mode before) did not."""
    if faulted is None or mode != "before" or faulted[0] not in {"commit", "suspend", "finish"}:
        return set()
    checkpoint = faulted[1][2]
    return {sid for sid, _record in checkpoint.records}


@pytest.fixture(params=["memory", "redis"])
async def base_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    made: Store = (
        MemoryStore()
        if request.param == "memory"
        else RedisStore.from_url(request.getfixturevalue("redis_url"))
    )
    yield made
    await made.close()


async def _run_once(base: Store, target: int, mode: str, n: int) -> tuple[FaultyStore, str]:
    faulty = FaultyStore(base, target, mode)
    durable = Durable(store=faulty, workflows=[every_point])  # type: ignore[arg-type]
    eid = f"{type(base).__name__}-{target}-{mode}-{n}"
    async with durable.worker(concurrency=2, lease_ttl=0.5, visibility_timeout=1.0, max_idle_poll=0.05):
        await durable.start(every_point, n, execution_id=eid)
        await durable.signal(eid, "faults.go", {"k": target})
        result = await durable.wait(eid, timeout=30)
    expected = {"status": "rolled back" if n % 2 else "shipped", "go": {"k": target}}
    assert result == expected, (target, mode, n, faulted_name(faulty))
    return faulty, eid


def faulted_name(faulty: FaultyStore) -> str | None:
    return faulty.faulted[0] if faulty.faulted else None


async def test_a_fault_at_every_store_call_of_an_activation(base_store: Store) -> None:
    for n in (2, 3):  # 2 ships, 3 fails at ship and rolls back as the workflow asks
        target = 0
        while True:
            for mode in ("before", "after"):
                faulty, eid = await _run_once(base_store, target, mode, n)
                where = (target, mode, n, faulted_name(faulty))
                rerun = _committed_steps(faulty.faulted, mode)
                steps = ["reserve", "charge", "ship"] + (["undo-reserve", "undo-charge"] if n % 2 else [])
                for step in steps:
                    sid = f"rollback:{step[5:]}" if step.startswith("undo-") else step
                    # A body runs twice only if the fault dropped the very commit of its result.
                    assert RUNS[(eid, step)] == 1 + (sid in rerun), (where, step, dict(RUNS))
                for step in ("undo-reserve", "undo-charge"):
                    if not n % 2:
                        assert RUNS[(eid, step)] == 0, where
                # The except clause ran only where ship really failed (once per activation after it).
                assert bool(CAUGHT[eid]) == bool(n % 2), where
                record = await base_store.get_execution(eid)
                assert record is not None and record.status == Status.COMPLETED, where
                emitted = [e for e in await base_store.list_emitted(1000) if e[0] == eid]
                assert [name for _, name, _ in emitted] == ["reserved"], where
                audit = [a.kind for a in await base_store.list_audit(eid)]
                assert "step.failed" not in audit or n % 2, (where, audit)
                completed = [
                    a.step_id for a in await base_store.list_audit(eid) if a.kind == "step.completed"
                ]
                assert len(completed) == len(set(completed)), (where, completed)
            if faulty.faulted is None:  # the target is past the last call: every point was hit
                break
            target += 1
        assert target > 8, "the workflow made fewer store calls than expected"


SWALLOWED: collections.Counter[str] = collections.Counter()


@workflow("faults.swallow")
async def swallow(ctx: WorkflowContext, _: Any) -> str:
    eid = ctx.execution_id
    try:
        await ctx.step("one", body, eid, "one")
    except BaseException:  # wrong, but it must not let the workflow act on a store fault
        SWALLOWED[eid] += 1
        try:
            await ctx.step("compensate", body, eid, "compensate")
        except ActivationAbandoned:
            SWALLOWED[eid] += 10
        return "swallowed"
    await ctx.step("two", body, eid, "two")
    return "done"


async def test_workflow_that_swallows_the_abandonment_is_still_abandoned(base_store: Store) -> None:
    # Call 0 is acquire, 1 commits step one's result.
    faulty = FaultyStore(base_store, 1, "before")
    durable = Durable(store=faulty, workflows=[swallow])  # type: ignore[arg-type]
    async with durable.worker(concurrency=2, lease_ttl=0.5, max_idle_poll=0.05):
        eid = await durable.start(swallow, None)
        assert await durable.wait(eid, timeout=20) == "done"
    assert faulty.faulted is not None and faulty.faulted[0] == "commit"
    assert SWALLOWED[eid] == 11  # caught once; the next ctx call raised it again
    assert RUNS[(eid, "one")] == 2 and RUNS[(eid, "two")] == 1
    assert RUNS[(eid, "compensate")] == 0


# ---------------------------------------------------------------- the reproductions on a real Redis
def _pause_once(url: str, execution_id: str, step: str, ms: int) -> str:
    RUNS[(execution_id, step)] += 1
    if RUNS[(execution_id, step)] == 1:
        client = redis.Redis.from_url(url)
        try:
            client.execute_command("CLIENT", "PAUSE", ms, "ALL")
        finally:
            client.close()
    return step


@workflow("faults.paused")
async def paused(ctx: WorkflowContext, url: str) -> dict[str, Any]:
    eid = ctx.execution_id
    one = await ctx.step("one", body, eid, "one", compensate=lambda: body(eid, "undo-one"))
    try:
        two = await ctx.step("two", _pause_once, url, eid, "two", 700)
    except Exception as exc:
        CAUGHT[eid] += 1
        await ctx.rollback()
        return {"status": "rolled back", "error": str(exc)}
    return {"one": one, "two": two}


async def test_client_pause_past_the_op_timeout_during_a_commit(fresh_redis_server: RedisServer) -> None:
    url = fresh_redis_server.url
    durable = Durable(store=RedisStore.from_url(url, op_timeout_s=0.5), workflows=[paused])
    async with durable.worker(concurrency=2, lease_ttl=5.0, max_idle_poll=0.1):
        eid = await durable.start(paused, url)
        result = await durable.wait(eid, timeout=30)
        audit = [a.kind for a in await durable.list_audit_entries(eid)]
    await durable.close()
    assert result == {"one": "one", "two": "two"}
    assert CAUGHT[eid] == 0 and RUNS[(eid, "undo-one")] == 0
    assert RUNS[(eid, "one")] == 1
    assert RUNS[(eid, "two")] == 2  # the first result's commit timed out: a live worker ran it again
    assert "step.failed" not in audit and not any("rollback" in k for k in audit)


def _kill_redis(server: RedisServer, execution_id: str, down_s: float) -> str:
    RUNS[(execution_id, "ship")] += 1
    if RUNS[(execution_id, "ship")] == 1:
        server.kill()
        threading.Timer(down_s, server.start).start()
    return "shipped"


@workflow("faults.restart")
async def restart_saga(ctx: WorkflowContext, _: Any) -> str:
    eid = ctx.execution_id
    server = SERVERS[eid]
    await ctx.step("reserve", body, eid, "reserve", compensate=lambda: body(eid, "undo-reserve"))
    try:
        return str(await ctx.step("ship", _kill_redis, server, eid, 1.0))
    except Exception:
        CAUGHT[eid] += 1
        await ctx.rollback()
        return "rolled back"


SERVERS: dict[str, RedisServer] = {}


async def _wait_through_outage(durable: Durable, execution_id: str) -> Any:
    """The client's own wait fails while Redis is down; a caller that wants the result retries."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await durable.wait(execution_id, timeout=max(0.1, deadline - time.monotonic()))
        except StoreUnavailable:
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_redis_restart_right_after_a_step_body() -> None:
    server = RedisServer(persistent=True)
    server.start()
    try:
        durable = Durable(store=RedisStore.from_url(server.url, op_timeout_s=1.0), workflows=[restart_saga])
        eid = "restart-1"
        SERVERS[eid] = server
        async with durable.worker(concurrency=2, lease_ttl=2.0, max_idle_poll=0.1):
            await durable.start(restart_saga, None, execution_id=eid)
            result = await _wait_through_outage(durable, eid)
            audit = [a.kind for a in await durable.list_audit_entries(eid)]
        await durable.close()
    finally:
        server.stop()
    assert result == "shipped"
    assert CAUGHT[eid] == 0 and RUNS[(eid, "undo-reserve")] == 0
    assert RUNS[(eid, "reserve")] == 1 and RUNS[(eid, "ship")] == 2
    assert not any("rollback" in k or k == "step.failed" for k in audit), audit


# ---------------------------------------------------------------- the connection under the store
class _FakeRedis:
    """A loopback server that reads each command and answers with `reply` (None: hangs up)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.commands = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if conn.recv(65536):
                    self.commands += 1
                    if self.reply is not None:
                        conn.sendall(self.reply)
                        conn.recv(65536)

    def close(self) -> None:
        self.sock.close()


async def test_a_command_that_may_have_run_is_not_sent_again() -> None:
    fake = _FakeRedis(None)
    mux = Mux(RedisSettings(host="127.0.0.1", port=fake.port), op_timeout_s=2.0)
    try:
        with pytest.raises(StoreUnavailable):
            await mux.call("SET", "k", "v")
        await asyncio.sleep(0.2)
        assert fake.commands == 1  # written once, the answer lost: not repeated on a new connection
    finally:
        mux.close()
        fake.close()


async def test_server_states_are_unavailable_not_command_errors() -> None:
    fake = _FakeRedis(b"-LOADING Redis is loading the dataset in memory\r\n")
    mux = Mux(RedisSettings(host="127.0.0.1", port=fake.port), op_timeout_s=2.0)
    try:
        with pytest.raises(StoreUnavailable, match="LOADING"):
            await mux.call("GET", "k")
    finally:
        mux.close()
        fake.close()
