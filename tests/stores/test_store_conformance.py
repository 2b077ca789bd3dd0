"""Store conformance: the `Store` contract, exercised directly on both stores through the `store` fixture.

Times are wall-clock milliseconds because Redis leases and idle times follow the real clock.
The last tests are Redis-only: a killed redis-server must surface as `StoreUnavailable`, fast.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from _redis_server import RedisServer
from durable._errors import (
    ExecutionConflict,
    ExecutionFinished,
    ExecutionNotFailed,
    ExecutionNotFound,
    InvalidStepId,
    LeaseLost,
    StoreUnavailable,
    WaitTimeoutError,
)
from durable._records import QueueEntry, Status
from durable._store._base import (
    AuditDraft,
    Checkpoint,
    ExecutionQuery,
    NewExecution,
    SchemaCheckNeeded,
    SignalWait,
    Store,
    schema_digest,
)
from durable._store._redis import RedisStore

TTL = 30_000


def redis_client(store: RedisStore) -> aioredis.Redis:
    """A redis-py client of the test's own on the store's database, to look at keys directly."""
    s = store.settings
    return aioredis.Redis(host=s.host, port=s.port, db=s.db, password=s.password)


def now() -> int:
    return int(time.time() * 1000)


def step(step_id: str, status: str = "completed", result: Any = None) -> tuple[str, bytes]:
    return step_id, orjson.dumps(
        {"step_id": step_id, "seq": 0, "kind": "step", "status": status, "result": result}
    )


async def create(
    store: Store, eid: str = "e1", workflow: str = "wf", at_ms: int | None = None, **kw: Any
) -> None:
    new = NewExecution(execution_id=eid, workflow_id=workflow, input=b'{"n":1}', now_ms=at_ms or now(), **kw)
    assert await store.create_execution(new)


async def drain(store: Store) -> list[QueueEntry]:
    """Take and ack everything queued now."""
    out: list[QueueEntry] = []
    while True:
        got = await store.dequeue("drainer", 100, 0)
        if not got:
            return out
        await store.ack([e.entry_id for e in got])
        out.extend(got)


async def running(store: Store, eid: str = "e1", worker: str = "w1", ttl_ms: int = TTL) -> int:
    """Create (if needed) and lease an execution, its start entry drained; returns the token."""
    if await store.get_execution(eid) is None:
        await create(store, eid)
    await drain(store)
    got = await store.acquire(eid, worker, ttl_ms, now())
    assert got.outcome == "ok"
    return got.token


def reasons(entries: Sequence[QueueEntry]) -> list[tuple[str, str]]:
    return [(e.execution_id, e.reason) for e in entries]


PREFIX = b'{"step_id":"w","seq":1,"kind":"signal","status":"completed","result":'
SUFFIX = b"}"
TIMEOUT_RECORD = b'{"step_id":"w","seq":1,"kind":"signal","status":"timeout","result":null}'


def wait_for(name: str = "go", deadline_ms: int | None = None) -> SignalWait:
    return SignalWait(name, "w", PREFIX, SUFFIX, deadline_ms=deadline_ms, timeout_record=TIMEOUT_RECORD)


# ---------------------------------------------------------------------------- executions
async def test_create_is_idempotent_and_enqueues_the_start(store: Store) -> None:
    t = now()
    new = NewExecution(
        execution_id="e1", workflow_id="wf", input=b'{"n":1}', now_ms=t, category="c", actor="me"
    )
    assert await store.create_execution(new) is True
    assert await store.create_execution(new) is False
    rec = await store.get_execution("e1")
    assert rec is not None
    assert (rec.status, rec.workflow_id, rec.input, rec.attempt, rec.activations) == (
        Status.PENDING,
        "wf",
        {"n": 1},
        1,
        0,
    )
    assert rec.category == "c" and rec.parent is None and rec.started_at is None and rec.finished_at is None
    assert int(rec.created_at.timestamp() * 1000) == t
    assert reasons(await drain(store)) == [("e1", "start")]
    audit = await store.list_audit("e1")
    assert [(a.kind, a.actor) for a in audit] == [("created", "me")]
    assert await store.list_active() == ["e1"]
    assert await store.get_execution("nope") is None
    assert await store.load_steps("nope") == {}


async def test_create_with_start_time_registers_a_timer_instead(store: Store) -> None:
    t = now()
    await create(store, "e1", at_ms=t, start_at_ms=t + 60_000)
    assert await store.queue_depth() == 0
    assert await store.next_timer_due() == t + 60_000
    assert await store.fire_due_timers(t + 60_000) == 1
    assert reasons(await drain(store)) == [("e1", "timer")]
    await create(store, "e2", at_ms=t, start_at_ms=t)  # already due: queued at once
    assert reasons(await drain(store)) == [("e2", "start")]


# ---------------------------------------------------------------------------- reusing an execution id
def new_exec(
    eid: str = "e1", workflow: str = "wf", input: bytes = b'{"n":1,"m":2}', **kw: Any
) -> NewExecution:
    return NewExecution(execution_id=eid, workflow_id=workflow, input=input, now_ms=now(), **kw)


async def snapshot(store: Store, eid: str = "e1") -> tuple[Any, ...]:
    rec = await store.get_execution(eid)
    audit = [(a.kind, a.message) for a in await store.list_audit(eid)]
    return rec, await store.load_steps(eid), audit, await store.queue_depth(), await store.list_active()


async def test_create_again_with_the_same_request_is_idempotent(store: Store) -> None:
    assert await store.create_execution(new_exec()) is True
    rec = await store.get_execution("e1")
    assert rec is not None and rec.run == 1 and rec.input_hash and len(rec.input_hash) == 64
    before = await snapshot(store)
    # Equal input in another key order is the same request.
    assert await store.create_execution(new_exec(input=b'{"m":2,"n":1}')) is False
    assert await store.create_execution(new_exec(id_reuse="allow_if_finished")) is False  # not final yet
    assert await snapshot(store) == before
    # Also once it finished.
    token = await running(store)
    await store.finish("e1", token, Checkpoint(), now(), status=Status.COMPLETED, result=b"7")
    done = await snapshot(store)
    assert await store.create_execution(new_exec()) is False
    assert await snapshot(store) == done


@pytest.mark.parametrize(
    ("workflow", "input", "reason"),
    [
        ("other", b'{"n":1,"m":2}', "workflow"),
        ("wf", b'{"n":2,"m":2}', "input"),
        ("other", b"null", "workflow"),
    ],
)
async def test_create_with_a_different_request_conflicts_and_changes_nothing(
    store: Store, workflow: str, input: bytes, reason: str
) -> None:
    await store.create_execution(new_exec())
    token = await running(store)
    await store.commit("e1", token, Checkpoint(records=[step("a", result=1)]), now())
    before = await snapshot(store)
    for policy in ("reject", "allow_if_finished"):  # the execution runs: neither may replace it
        with pytest.raises(ExecutionConflict) as caught:
            await store.create_execution(new_exec(workflow=workflow, input=input, id_reuse=policy))  # type: ignore[arg-type]
        err = caught.value
        assert err.fields == {
            "execution_id": "e1",
            "workflow_id": workflow,
            "existing_workflow_id": "wf",
            "reason": reason,
        }
        assert "'e1'" in err.message and "\n" not in err.message
        assert await snapshot(store) == before
    # A finished execution still refuses a different request under `reject`.
    await store.finish("e1", token, Checkpoint(), now(), status=Status.COMPLETED)
    before = await snapshot(store)
    with pytest.raises(ExecutionConflict):
        await store.create_execution(new_exec(workflow=workflow, input=input))
    assert await snapshot(store) == before


@pytest.mark.parametrize("final", [Status.COMPLETED, Status.FAILED, Status.CANCELLED])
async def test_allow_if_finished_replaces_a_finished_execution(store: Store, final: Status) -> None:
    await store.create_execution(new_exec())
    token = await running(store)
    await store.commit("e1", token, Checkpoint(records=[step("a", result=1)]), now())
    await store.send_signal("e1", "go", b"1", "d1", now())
    await store.finish("e1", token, Checkpoint(), now(), status=final, result=b"1", error=b'{"type":"X"}')
    replacement = new_exec(workflow="other", input=b"[3]", id_reuse="allow_if_finished", actor="me")
    assert await store.create_execution(replacement) is True
    rec = await store.get_execution("e1")
    assert rec is not None
    assert (rec.status, rec.workflow_id, rec.input, rec.run, rec.result, rec.error, rec.finished_at) == (
        Status.PENDING, "other", [3], 2, None, None, None,
    )  # fmt: skip
    assert rec.input_hash == replacement.input_hash
    assert await store.load_steps("e1") == {}
    assert reasons(await drain(store)) == [("e1", "start")]
    assert await store.list_active() == ["e1"]
    kinds = [(a.kind, a.actor) for a in await store.list_audit("e1")]
    assert kinds[-2:] == [("replaced", "me"), ("created", "me")]
    replaced = [a.message for a in await store.list_audit("e1") if a.kind == "replaced"]
    assert replaced == [f"run 1 ({final.value}, wf) replaced by run 2"]
    # The old run's delivery ids are gone (the same delivery id is accepted again), its buffered payload too.
    assert await store.send_signal("e1", "go", b"2", "d1", now()) is True
    # The listing indexes follow the new workflow.
    page, _ = await store.list_executions(ExecutionQuery(workflow_id="wf"))
    assert page == []
    page, _ = await store.list_executions(ExecutionQuery(workflow_id="other"))
    assert [r.execution_id for r in page] == ["e1"]
    # Fence tokens go on from the old run's: a stale worker of run 1 cannot write into run 2.
    got = await store.acquire("e1", "w2", TTL, now())
    assert got.outcome == "ok" and got.token > token
    assert got.steps == {}
    with pytest.raises(LeaseLost):
        await store.commit("e1", token, Checkpoint(records=[step("late")]), now())
    # Run 2 is now running: the same policy is idempotent for its request and refuses another one.
    assert await store.create_execution(replacement) is False
    with pytest.raises(ExecutionConflict):
        await store.create_execution(new_exec(id_reuse="allow_if_finished"))


async def test_a_record_without_an_input_hash_matches_on_the_workflow_only(store: Store) -> None:
    await store.create_execution(new_exec())
    if isinstance(store, RedisStore):
        async with redis_client(store) as client:
            await client.hdel(store.keys.exec("e1"), "input_hash")
    else:
        store._state.execs["e1"].input_hash = ""  # type: ignore[attr-defined]
    rec = await store.get_execution("e1")
    assert rec is not None and rec.input_hash is None and rec.run == 1
    assert await store.create_execution(new_exec(input=b'{"n":99}')) is False
    with pytest.raises(ExecutionConflict) as caught:
        await store.create_execution(new_exec(workflow="other"))
    assert caught.value.reason == "workflow"


# ---------------------------------------------------------------------------- acquire and fencing
async def test_acquire_outcomes(store: Store) -> None:
    assert (await store.acquire("nope", "w1", TTL, now())).outcome == "missing"
    await create(store, "e1")
    got = await store.acquire("e1", "w1", TTL, now())
    assert got.outcome == "ok" and got.token > 0 and got.steps == {}
    assert got.record is not None and got.record.status == Status.RUNNING and got.record.activations == 1
    assert got.record.started_at is not None
    busy = await store.acquire("e1", "w2", TTL, now())
    assert busy.outcome == "busy" and 0 < busy.retry_after_ms <= TTL
    await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED, result=b"42")
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "finished"
    rec = await store.get_execution("e1")
    assert (
        rec is not None
        and rec.status == Status.COMPLETED
        and rec.result == 42
        and rec.finished_at is not None
    )
    assert await store.list_active() == []


async def test_acquire_takes_over_its_own_orphaned_lease_only_when_told(store: Store) -> None:
    lost = await running(store, worker="w1")  # as if this answer never reached w1
    assert (await store.acquire("e1", "w1", TTL, now())).outcome == "busy"
    assert (await store.acquire("e1", "w2", TTL, now(), own_orphan=True)).outcome == "busy"
    again = await store.acquire("e1", "w1", TTL, now(), own_orphan=True)
    assert again.outcome == "ok" and again.token > lost
    with pytest.raises(LeaseLost):
        await store.commit("e1", lost, Checkpoint(records=[step("a")]), now())
    assert await store.commit("e1", again.token, Checkpoint(records=[step("a")]), now()) is False


async def test_acquire_returns_the_whole_history(store: Store) -> None:
    token = await running(store)
    records = [step("a", result=1), step("b", result=[2])]
    assert await store.commit("e1", token, Checkpoint(records=records, current_step="b"), now()) is False
    await store.release("e1", "w1", token)
    assert await store.load_steps("e1") == dict(records)
    got = await store.acquire("e1", "w2", TTL, now())
    assert got.outcome == "ok" and got.token > token and got.steps == dict(records)
    assert got.record is not None and got.record.current_step == "b" and got.record.activations == 2


async def test_a_stale_token_writes_nothing(store: Store) -> None:
    old = await running(store, ttl_ms=50)
    await asyncio.sleep(0.12)
    new = await store.acquire("e1", "w2", TTL, now())
    assert new.outcome == "ok" and new.token > old
    cp = Checkpoint(
        records=[step("s1")], audit=[AuditDraft("x", "y")], events=[("ev", b"1")], current_step="s1"
    )
    with pytest.raises(LeaseLost) as info:
        await store.commit("e1", old, cp, now())
    assert info.value.fields == {"execution_id": "e1", "token": old}
    with pytest.raises(LeaseLost):
        await store.suspend(
            "e1", old, cp, now(), status=Status.SLEEPING, wake_at_ms=now() + 1000, timer_id="t"
        )
    with pytest.raises(LeaseLost):
        await store.finish("e1", old, cp, now(), status=Status.COMPLETED, result=b"1")
    assert await store.load_steps("e1") == {}
    assert await store.list_emitted() == []
    assert await store.next_timer_due() is None
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.RUNNING and rec.current_step is None
    assert await store.commit("e1", new.token, cp, now()) is False
    assert await store.load_steps("e1") == dict([step("s1")])


async def test_an_expired_lease_is_lost_even_if_nobody_took_it(store: Store) -> None:
    token = await running(store, ttl_ms=50)
    await asyncio.sleep(0.12)
    with pytest.raises(LeaseLost):
        await store.commit("e1", token, Checkpoint(records=[step("s1")]), now())
    assert await store.load_steps("e1") == {}


async def test_renew_extends_only_our_lease(store: Store) -> None:
    token = await running(store, ttl_ms=200)
    assert await store.renew("e1", "w1", token, 5_000) is True
    await asyncio.sleep(0.3)
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "busy"
    assert await store.renew("e1", "w1", token + 1, 5_000) is False


async def test_busy_acquire_then_release_rewakes(store: Store) -> None:
    token = await running(store)
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "busy"
    await store.release("e1", "w1", token)
    assert reasons(await drain(store)) == [("e1", "rewake")]
    # A release without a wake-up meanwhile enqueues nothing.
    got = await store.acquire("e1", "w2", TTL, now())
    await store.release("e1", "w2", got.token)
    assert await drain(store) == []


async def test_busy_acquire_then_suspend_rewakes(store: Store) -> None:
    token = await running(store)
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "busy"
    wake = now() + 60_000
    outcome = await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=wake, timer_id="s"
    )
    assert outcome.kind == "suspended"
    assert reasons(await drain(store)) == [("e1", "rewake")]
    # The next run supersedes the sleep's timer.
    assert await store.next_timer_due() == wake
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "ok"
    assert await store.next_timer_due() is None


# ---------------------------------------------------------------------------- suspend and signals
async def test_suspend_consumes_a_buffered_signal(store: Store) -> None:
    await create(store)
    assert await store.send_signal("e1", "go", b'{"ok":true}', "d1", now(), actor="ops")
    token = await running(store)
    outcome = await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for())
    assert outcome.kind == "signal" and outcome.payload == b'{"ok":true}'
    assert (await store.load_steps("e1"))["w"] == PREFIX + b'{"ok":true}' + SUFFIX
    # The lease stays ours and the run goes on.
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.RUNNING
    assert await store.commit("e1", token, Checkpoint(records=[step("after")]), now()) is False
    # Consumed once: the next wait suspends.
    outcome = await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for())
    assert outcome.kind == "suspended"
    kinds = [a.kind for a in await store.list_audit("e1")]
    assert kinds == ["created", "signal.received", "signal.consumed"]


async def test_suspend_records_a_passed_deadline(store: Store) -> None:
    token = await running(store)
    outcome = await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for(deadline_ms=now() - 1)
    )
    assert outcome.kind == "timeout"
    assert (await store.load_steps("e1"))["w"] == TIMEOUT_RECORD
    assert await store.commit("e1", token, Checkpoint(), now()) is False


async def test_suspend_waits_with_a_timer(store: Store) -> None:
    token = await running(store)
    deadline = now() + 60_000
    cp = Checkpoint(records=[step("s1")], current_step="w")
    outcome = await store.suspend(
        "e1",
        token,
        cp,
        now(),
        status=Status.WAITING,
        wake_at_ms=deadline,
        timer_id="w",
        wait=wait_for(deadline_ms=deadline),
    )
    assert outcome.kind == "suspended"
    rec = await store.get_execution("e1")
    assert (
        rec is not None
        and rec.status == Status.WAITING
        and rec.waiting_for == "go"
        and rec.current_step == "w"
    )
    assert rec.wake_at is not None and int(rec.wake_at.timestamp() * 1000) == deadline
    assert await store.next_timer_due() == deadline
    assert await store.due_timer_count(deadline) == 1 and await store.due_timer_count(deadline - 1) == 0
    assert await store.load_steps("e1") == dict([step("s1")])
    assert await drain(store) == []
    # The lease was released.
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "ok"


async def test_send_signal_dedupes_and_checks_the_execution(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.send_signal("nope", "go", b"1", "d1", now())
    await create(store)
    assert await store.send_signal("e1", "go", b"1", "d1", now()) is True
    assert await store.send_signal("e1", "go", b"2", "d1", now()) is False
    token = await running(store)
    outcome = await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for())
    assert outcome.payload == b"1"
    outcome = await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for())
    assert outcome.kind == "suspended"  # the duplicate was not buffered
    got = await store.acquire("e1", "w1", TTL, now())
    await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED)
    with pytest.raises(ExecutionFinished):
        await store.send_signal("e1", "go", b"3", "d3", now())


async def test_a_retried_delivery_is_a_duplicate_even_after_the_execution_finished(store: Store) -> None:
    # The sender's first try landed (its answer was lost); the signal woke the execution, which
    # finished; the retry must read as the duplicate it is, not as a signal to a finished execution.
    token = await running(store)
    await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go"))
    assert await store.send_signal("e1", "go", b"1", "d1", now()) is True
    got = await store.acquire("e1", "w1", TTL, now())
    outcome = await store.suspend(
        "e1", got.token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go")
    )
    assert outcome.payload == b"1"
    await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED)
    before = await store.list_audit("e1")
    assert await store.send_signal("e1", "go", b"1", "d1", now()) is False
    assert await store.list_audit("e1") == before
    with pytest.raises(ExecutionFinished):
        await store.send_signal("e1", "go", b"1", "d2", now())


async def test_a_signal_wakes_its_waiter_exactly_once(store: Store) -> None:
    token = await running(store)
    await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go"))
    assert await store.send_signal("e1", "other", b"0", "d0", now())
    assert await drain(store) == []
    assert await store.send_signal("e1", "go", b"1", "d1", now())
    assert await store.send_signal("e1", "go", b"2", "d2", now())
    assert reasons(await drain(store)) == [("e1", "signal")]
    got = await store.acquire("e1", "w1", TTL, now())
    outcome = await store.suspend(
        "e1", got.token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go")
    )
    assert (outcome.kind, outcome.payload) == ("signal", b"1")


async def test_a_signal_during_a_run_is_not_lost(store: Store) -> None:
    token = await running(store)
    assert await store.send_signal("e1", "go", b"1", "d1", now())
    assert await drain(store) == []  # running: buffered, no wake-up needed
    outcome = await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go")
    )
    assert (outcome.kind, outcome.payload) == ("signal", b"1")


# ---------------------------------------------------------------------------- cancel
async def test_cancel_an_idle_execution(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.cancel("nope", "why", None, now())
    await create(store)
    assert await store.cancel("e1", "no longer needed", "ops", now()) == Status.CANCELLED
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.CANCELLED and rec.finished_at is not None
    assert rec.error == {
        "type": "Cancelled",
        "message": "no longer needed",
        "fields": {"reason": "no longer needed", "actor": "ops"},
    }
    assert (await store.acquire("e1", "w1", TTL, now())).outcome == "finished"
    with pytest.raises(ExecutionFinished):
        await store.cancel("e1", "again", None, now())
    assert (await store.list_audit("e1"))[-1].kind == "cancelled"
    assert await store.list_active() == []


async def test_cancel_a_sleeping_execution_drops_its_timer(store: Store) -> None:
    token = await running(store)
    await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 60_000, timer_id="s"
    )
    assert await store.next_timer_due() is not None
    assert await store.cancel("e1", "stop", None, now()) == Status.CANCELLED
    assert await store.next_timer_due() is None


async def test_cancel_a_leased_execution_flags_it(store: Store) -> None:
    token = await running(store, ttl_ms=300)
    assert await store.cancel("e1", "stop", "ops", now()) == Status.RUNNING
    assert await store.commit("e1", token, Checkpoint(records=[step("s1")], current_step="s1"), now()) is True
    assert await store.load_steps("e1") == {}
    outcome = await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 1000
    )
    assert outcome.kind == "cancelled"
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.RUNNING and rec.current_step is None
    await asyncio.sleep(0.4)
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "finished"
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.CANCELLED
    assert rec.error is not None and rec.error["fields"] == {"reason": "stop", "actor": "ops"}


async def test_finish_is_fenced_but_ignores_a_cancel_request(store: Store) -> None:
    token = await running(store)
    assert await store.cancel("e1", "stop", None, now()) == Status.RUNNING
    await store.finish(
        "e1", token, Checkpoint(), now(), status=Status.CANCELLED, error=b'{"type":"Cancelled"}'
    )
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.CANCELLED and rec.error == {"type": "Cancelled"}


# ---------------------------------------------------------------------------- force_fail
FORCED = {"type": "ForcedFailure", "message": "stuck", "fields": {"reason": "stuck", "actor": "ops"}}


async def test_force_fail_an_idle_execution(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.force_fail("nope", "why", None, now())
    token = await running(store)
    await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 60_000, timer_id="s"
    )
    assert await store.next_timer_due() is not None
    assert await store.force_fail("e1", "stuck", "ops", now()) == Status.FAILED
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.FAILED and rec.finished_at is not None
    assert rec.error == FORCED
    audit = (await store.list_audit("e1"))[-1]
    assert (audit.kind, audit.actor, audit.message) == ("failed.forced", "ops", "failed (forced): stuck")
    assert await store.next_timer_due() is None
    assert await store.list_active() == []
    page, _ = await store.list_executions(ExecutionQuery(statuses=(Status.FAILED,)))
    assert [r.execution_id for r in page] == ["e1"]
    events = await store.read_status_events("ops", "c1", 100, 0)
    assert [e.status for e in events][-1] == Status.FAILED
    # Indexed as any failure: kept whole by retention's compaction (unlike a cancel).
    assert await store.compact_finished(now() + 1_000, now()) == 0
    assert (await store.acquire("e1", "w1", TTL, now())).outcome == "finished"
    with pytest.raises(ExecutionFinished):
        await store.force_fail("e1", "again", None, now())
    with pytest.raises(ExecutionFinished):
        await store.cancel("e1", "again", None, now())


async def test_force_fail_refuses_a_blank_reason(store: Store) -> None:
    await create(store)
    for reason in ("", "  \t"):
        with pytest.raises(ValueError, match="reason"):
            await store.force_fail("e1", reason, "ops", now())
    with pytest.raises(ValueError):
        await store.force_fail("nope", " ", None, now())
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.PENDING and rec.error is None
    assert [a.kind for a in await store.list_audit("e1")] == ["created"]


async def test_force_fail_a_leased_execution_applies_at_release(store: Store) -> None:
    token = await running(store)
    assert await store.force_fail("e1", "stuck", "ops", now()) == Status.RUNNING
    assert (await store.list_audit("e1"))[-1].kind == "fail.requested"
    assert await store.commit("e1", token, Checkpoint(records=[step("s1")], current_step="s1"), now()) is True
    outcome = await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 1000
    )
    assert outcome.kind == "cancelled"
    assert await store.load_steps("e1") == {}
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.RUNNING
    assert await store.release("e1", "w1", token) == Status.FAILED
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.FAILED and rec.error == FORCED
    assert (await store.list_audit("e1"))[-1].kind == "failed.forced"
    assert await store.list_active() == []


async def test_force_fail_a_leased_execution_applies_at_the_next_acquire(store: Store) -> None:
    await running(store, ttl_ms=300)
    assert await store.force_fail("e1", "stuck", "ops", now()) == Status.RUNNING
    await asyncio.sleep(0.4)  # the worker died: its lease runs out
    assert (await store.acquire("e1", "w2", TTL, now())).outcome == "finished"
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.FAILED and rec.error == FORCED


async def test_a_later_request_replaces_a_pending_one(store: Store) -> None:
    token = await running(store)
    assert await store.cancel("e1", "stop", None, now()) == Status.RUNNING
    assert await store.force_fail("e1", "stuck", "ops", now()) == Status.RUNNING
    assert await store.release("e1", "w1", token) == Status.FAILED
    token = await running(store, "e2")
    assert await store.force_fail("e2", "stuck", "ops", now()) == Status.RUNNING
    assert await store.cancel("e2", "stop", None, now()) == Status.RUNNING
    assert await store.release("e2", "w1", token) == Status.CANCELLED


async def test_release_without_a_request_answers_none(store: Store) -> None:
    token = await running(store)
    assert await store.release("e1", "w1", token) is None


async def test_finish_ignores_a_force_fail_request(store: Store) -> None:
    token = await running(store)
    assert await store.force_fail("e1", "stuck", None, now()) == Status.RUNNING
    await store.finish("e1", token, Checkpoint(), now(), status=Status.COMPLETED, result=b"1")
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.COMPLETED and rec.error is None


async def test_retry_after_force_fail(store: Store) -> None:
    token = await running(store)
    await store.commit("e1", token, Checkpoint(records=[step("ok", result=1)]), now())
    assert await store.force_fail("e1", "stuck", "ops", now()) == Status.RUNNING
    assert await store.release("e1", "w1", token) == Status.FAILED
    await store.retry_execution("e1", "ops", now())
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.PENDING and rec.attempt == 2 and rec.error is None
    assert reasons(await drain(store)) == [("e1", "retry")]
    got = await store.acquire("e1", "w1", TTL, now())
    assert got.outcome == "ok" and got.steps == dict([step("ok", result=1)])
    # The request is gone with the failure: this run checkpoints and finishes normally.
    assert await store.commit("e1", got.token, Checkpoint(records=[step("s2")]), now()) is False
    await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED, result=b"2")
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.COMPLETED


# ---------------------------------------------------------------------------- timers and queue
async def test_timers_fire_once_with_many_pollers(store: Store) -> None:
    t = now()
    for i in range(30):
        await store.add_timer(f"e{i}", "sleep", t - i)
    await store.add_timer("later", "sleep", t + 60_000)
    fired = await asyncio.gather(*(store.fire_due_timers(t, limit=7) for _ in range(12)))
    assert sum(fired) == 30
    entries = await drain(store)
    assert sorted(reasons(entries)) == sorted((f"e{i}", "timer") for i in range(30))
    assert await store.fire_due_timers(t) == 0
    assert await store.next_timer_due() == t + 60_000


async def test_next_timer_due_and_due_count(store: Store) -> None:
    assert await store.next_timer_due() is None
    assert await store.due_timer_count(now()) == 0
    await store.add_timer("a", "x", 5_000)
    await store.add_timer("b", "x", 3_000)
    await store.add_timer("b", "lease", 4_000)
    assert await store.next_timer_due() == 3_000
    assert await store.due_timer_count(4_000) == 2


async def test_wait_timer_change_returns_early(store: Store) -> None:
    waiter = asyncio.create_task(store.wait_timer_change(5.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await store.add_timer("a", "x", now() + 10_000)
    await asyncio.wait_for(waiter, 2.0)
    assert time.monotonic() - started < 1.0
    await store.wait_timer_change(0.05)  # times out quietly


async def test_queue_depth_counts_waiting_and_unacked(store: Store) -> None:
    assert await store.queue_depth() == 0
    for i in range(3):
        await store.enqueue(f"e{i}", "start")
    assert await store.queue_depth() == 3
    got = await store.dequeue("c1", 2, 0)
    assert [e.execution_id for e in got] == ["e0", "e1"]
    assert await store.queue_depth() == 3
    await store.ack([e.entry_id for e in got])
    assert await store.queue_depth() == 1


async def test_dequeue_blocks_until_an_entry_arrives(store: Store) -> None:
    reader = asyncio.create_task(store.dequeue("c1", 10, 2_000))
    await asyncio.sleep(0.1)
    await store.enqueue("e1", "start")
    got = await asyncio.wait_for(reader, 3.0)
    assert reasons(got) == [("e1", "start")]
    assert await store.dequeue("c1", 10, 50) == []


async def test_reclaim_takes_over_unacked_entries(store: Store) -> None:
    await store.enqueue("e1", "start")
    (entry,) = await store.dequeue("c1", 10, 0)
    assert await store.reclaim("c2", 10_000, 10) == []
    await asyncio.sleep(0.15)
    again = await store.reclaim("c2", 100, 10)
    assert reasons(again) == [("e1", "start")] and again[0].entry_id == entry.entry_id
    await store.ack([entry.entry_id])
    assert await store.reclaim("c3", 0, 10) == []
    assert await store.queue_depth() == 0


async def test_delivered_to_answers_a_consumers_unacked_entries(store: Store) -> None:
    for i in range(3):
        await store.enqueue(f"e{i}", "start")
    taken = await store.dequeue("c1", 2, 0)  # as if this answer were lost on the way back
    again = await store.delivered_to("c1", 10)
    assert [(e.entry_id, e.execution_id) for e in again] == [(e.entry_id, e.execution_id) for e in taken]
    assert await store.delivered_to("c2", 10) == []
    assert len(await store.delivered_to("c1", 1)) == 1
    await store.ack([taken[0].entry_id])
    assert [e.execution_id for e in await store.delivered_to("c1", 10)] == ["e1"]
    # Nothing new is delivered by looking: e2 still waits for a reader.
    assert [e.execution_id for e in await store.dequeue("c2", 10, 0)] == ["e2"]


# ---------------------------------------------------------------------------- observers
async def test_wait_finished(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.wait_finished("nope", 1.0)
    token = await running(store)
    waiter = asyncio.create_task(store.wait_finished("e1", 10.0))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    started = time.monotonic()
    await store.finish("e1", token, Checkpoint(), now(), status=Status.COMPLETED, result=b'"ok"')
    rec = await asyncio.wait_for(waiter, 5.0)
    assert rec.status == Status.COMPLETED and rec.result == "ok"
    assert time.monotonic() - started < 0.5  # woken, not polled
    assert (await store.wait_finished("e1", 0.1)).status == Status.COMPLETED


async def test_wait_finished_times_out(store: Store) -> None:
    await create(store)
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        await store.wait_finished("e1", 0.3)
    assert info.value.fields["execution_id"] == "e1"
    assert 0.25 < time.monotonic() - started < 2.0


async def test_status_events_through_a_group(store: Store) -> None:
    token = await running(store)
    events = await store.read_status_events("ops", "c1", 100, 0)
    assert [(e.execution_id, e.workflow_id, e.status) for e in events] == [
        ("e1", "wf", Status.PENDING),
        ("e1", "wf", Status.RUNNING),
    ]
    await store.ack_status_events("ops", [e.event_id for e in events])
    await store.commit("e1", token, Checkpoint(current_step="s1"), now())
    await store.finish("e1", token, Checkpoint(), now(), status=Status.COMPLETED)
    events = await store.read_status_events("ops", "c1", 100, 100)
    assert [(e.status, e.current_step) for e in events] == [(Status.RUNNING, "s1"), (Status.COMPLETED, "s1")]
    await store.ack_status_events("ops", [e.event_id for e in events])
    assert await store.read_status_events("ops", "c1", 100, 50) == []
    # Another group starts from the beginning.
    assert len(await store.read_status_events("other", "c1", 100, 0)) == 4


async def test_status_events_tailed_without_a_group(store: Store) -> None:
    # Nothing yet: from now on, on an empty stream too.
    assert await store.tail_status_events(None, 100, 0) == ([], "0-0")
    await create(store, "e1")
    events, cursor = await store.tail_status_events("0-0", 100, 0)
    assert [(e.execution_id, e.status) for e in events] == [("e1", Status.PENDING)]
    assert cursor == events[-1].event_id
    # None starts after the newest event; a blocked read wakes on the next one.
    _, now_cursor = await store.tail_status_events(None, 100, 0)
    assert now_cursor == cursor
    waiting = asyncio.ensure_future(store.tail_status_events(now_cursor, 100, 2000))
    await asyncio.sleep(0.05)
    await create(store, "e2")
    events, later = await asyncio.wait_for(waiting, 3)
    assert [e.execution_id for e in events] == ["e2"] and later != cursor
    assert await store.tail_status_events(later, 100, 50) == ([], later)
    # Tailing leaves no group behind: a group still reads everything.
    assert len(await store.read_status_events("ops", "c1", 100, 0)) == 2


async def test_status_events_survive_a_new_store_object(store: Store, redis_url: str) -> None:
    if not isinstance(store, RedisStore):
        pytest.skip("state shared between store objects needs Redis")
    await create(store, "e1")
    await create(store, "e2")
    first = await store.read_status_events("ops", "c1", 1, 0)
    assert [e.execution_id for e in first] == ["e1"]  # read, then the reader "crashes" before acking
    second = RedisStore.from_url(redis_url)
    try:
        again = await second.read_status_events("ops", "c1", 10, 0)
        assert [e.event_id for e in again] == [first[0].event_id]
        rest = await second.read_status_events("ops", "c1", 10, 0)
        assert [e.execution_id for e in rest] == ["e2"]
        await second.ack_status_events("ops", [e.event_id for e in again + rest])
    finally:
        await second.close()
    third = RedisStore.from_url(redis_url)
    try:
        assert await third.read_status_events("ops", "c1", 10, 50) == []
    finally:
        await third.close()


async def test_list_executions_filters_and_pages(store: Store) -> None:
    base = now() - 100_000
    for i in range(7):
        await create(store, f"a{i}", "alpha", at_ms=base + i * 10)
    for i in range(3):
        await create(store, f"b{i}", "beta", at_ms=base + 5 + i * 10)
    await store.cancel("a1", "x", None, now())
    await store.cancel("a4", "x", None, now())

    page, cursor = await store.list_executions(ExecutionQuery(workflow_id="alpha", limit=100))
    assert [r.execution_id for r in page] == [f"a{i}" for i in reversed(range(7))] and cursor is None

    page, _ = await store.list_executions(ExecutionQuery(statuses=(Status.CANCELLED,)))
    assert [r.execution_id for r in page] == ["a4", "a1"]

    query = ExecutionQuery(created_after_ms=base + 12, created_before_ms=base + 33)
    page, _ = await store.list_executions(query)
    assert [r.execution_id for r in page] == ["a3", "b2", "a2", "b1"]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = await store.list_executions(ExecutionQuery(limit=3, cursor=cursor))
        pages += 1
        assert len(page) <= 3
        seen.extend(r.execution_id for r in page)
        if cursor is None:
            break
        assert pages < 10
    everything = sorted(
        [(base + i * 10, f"a{i}") for i in range(7)] + [(base + 5 + i * 10, f"b{i}") for i in range(3)]
    )
    assert seen == [eid for _, eid in reversed(everything)]

    page, cursor = await store.list_executions(
        ExecutionQuery(workflow_id="beta", statuses=(Status.PENDING,), limit=2)
    )
    assert [r.execution_id for r in page] == ["b2", "b1"] and cursor is not None
    page, cursor = await store.list_executions(
        ExecutionQuery(workflow_id="beta", statuses=(Status.PENDING,), limit=2, cursor=cursor)
    )
    assert [r.execution_id for r in page] == ["b0"] and cursor is None


async def test_list_executions_pages_through_equal_creation_times(store: Store) -> None:
    t = now()
    for i in range(5):
        await create(store, f"e{i}", at_ms=t)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page, cursor = await store.list_executions(ExecutionQuery(limit=2, cursor=cursor))
        seen.extend(r.execution_id for r in page)
        if cursor is None:
            break
    assert sorted(seen) == [f"e{i}" for i in range(5)] and len(seen) == 5


# ---------------------------------------------------------------------------- operator actions
async def test_retry_drops_failed_step_records_only(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.retry_execution("nope", None, now())
    token = await running(store)
    await store.commit("e1", token, Checkpoint(records=[step("ok", result=1), step("bad", "failed")]), now())
    with pytest.raises(ExecutionNotFailed):
        await store.retry_execution("e1", None, now())
    await store.finish("e1", token, Checkpoint(), now(), status=Status.FAILED, error=b'{"type":"Boom"}')
    assert await store.list_active() == []
    await store.retry_execution("e1", "ops", now())
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.PENDING and rec.attempt == 2
    assert rec.error is None and rec.finished_at is None
    assert await store.load_steps("e1") == dict([step("ok", result=1)])
    assert reasons(await drain(store)) == [("e1", "retry")]
    assert await store.list_active() == ["e1"]
    audit = (await store.list_audit("e1"))[-1]
    assert (audit.kind, audit.actor) == ("retry", "ops")
    got = await store.acquire("e1", "w1", TTL, now())
    assert got.outcome == "ok" and got.steps == dict([step("ok", result=1)])


async def test_skip_step(store: Store) -> None:
    token = await running(store)
    await store.suspend(
        "e1", token, Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 60_000, timer_id="s"
    )
    record = step("stuck", "skipped")[1]
    await store.skip_step("e1", "stuck", record, "ops", now())
    assert (await store.load_steps("e1"))["stuck"] == record
    assert reasons(await drain(store)) == [("e1", "skip")]
    assert await store.next_timer_due() is None
    audit = (await store.list_audit("e1"))[-1]
    assert (audit.kind, audit.step_id, audit.actor) == ("step.skipped", "stuck", "ops")
    await store.cancel("e1", "x", None, now())
    with pytest.raises(ExecutionFinished):
        await store.skip_step("e1", "stuck", record, None, now())
    with pytest.raises(ExecutionNotFound):
        await store.skip_step("nope", "stuck", record, None, now())


# ---------------------------------------------------------------------------- signal schemas
SCHEMA = b'{"type":"object","required":["n"]}'
CONSUMED_PREFIX = b'{"seq":1,"kind":"signal","status":"completed","meta":{"signal":"go"},"result":{"kind":"signal","payload":'


async def test_signal_schema_comes_from_the_wait_then_the_registry(store: Store) -> None:
    assert await store.signal_schema("nope", "go") is None
    token = await running(store)
    assert await store.signal_schema("e1", "go") is None
    wait = SignalWait("go", "w", PREFIX, SUFFIX, schema=SCHEMA)
    outcome = await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait)
    assert outcome.kind == "suspended"
    assert await store.signal_schema("e1", "go") == SCHEMA
    assert await store.signal_schema("e1", "other") is None
    await store.publish_signal_schemas({"go": b'{"type":"string"}', "other": b'{"type":"integer"}'})
    await store.publish_signal_schemas({})
    # The execution's own wait wins over the registry; the registry covers the rest.
    assert await store.signal_schema("e1", "go") == SCHEMA
    assert await store.signal_schema("e1", "other") == b'{"type":"integer"}'
    assert await store.signal_schema("nope", "go") == b'{"type":"string"}'
    # Kept while a signal wakes the execution; a wait without a schema falls back to the registry.
    assert await store.send_signal("e1", "go", b'{"n":1}', "d1", now())
    assert await store.signal_schema("e1", "go") == SCHEMA
    got = await store.acquire("e1", "w1", TTL, now())
    assert await store.signal_schema("e1", "go") == SCHEMA
    outcome = await store.suspend(
        "e1", got.token, Checkpoint(), now(), status=Status.WAITING, wait=wait_for()
    )
    assert outcome.kind == "signal"
    assert await store.signal_schema("e1", "go") == b'{"type":"string"}'
    await store.suspend("e1", got.token, Checkpoint(), now(), status=Status.WAITING, wait=wait)
    assert await store.signal_schema("e1", "go") == SCHEMA
    # The end drops it.
    got = await store.acquire("e1", "w1", TTL, now())
    await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED)
    assert await store.signal_schema("e1", "go") == b'{"type":"string"}'


async def test_an_unchecked_signal_is_refused_only_where_the_waiter_recorded_a_schema(store: Store) -> None:
    # No waiter schema: an unchecked send goes through in one step.
    await create(store, "e2")
    assert await store.send_signal("e2", "go", b'{"n":1}', "d0", now(), checked="")
    token = await running(store)
    wait = SignalWait("go", "w", PREFIX, SUFFIX, schema=SCHEMA)
    await store.suspend("e1", token, Checkpoint(), now(), status=Status.WAITING, wait=wait)
    before = await store.list_audit("e1")
    for checked in ("", schema_digest(b'{"type":"string"}')):
        with pytest.raises(SchemaCheckNeeded) as refused:
            await store.send_signal("e1", "go", b'{"n":"bad"}', "d1", now(), checked=checked)
        assert refused.value.schema == SCHEMA
    assert await store.list_audit("e1") == before  # nothing changed, not even the delivery id
    record = await store.get_execution("e1")
    assert record is not None and record.status == Status.WAITING
    # Checked against that very schema, or by the model, or for another signal: accepted.
    assert await store.send_signal("e1", "other", b"1", "d2", now(), checked="")
    assert await store.send_signal("e1", "go", b'{"n":1}', "d1", now(), checked=schema_digest(SCHEMA))
    assert await store.send_signal("e1", "go", b'{"n":2}', "d3", now())
    assert not await store.send_signal("e1", "go", b'{"n":1}', "d1", now(), checked=schema_digest(SCHEMA))
    await store.publish_signal_schemas({"go": b'{"type":"string"}'})
    assert await store.published_signal_schemas() == {"go": b'{"type":"string"}'}


async def test_retry_can_discard_a_consumed_signal(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.retry_execution("nope", None, now(), discard_signal_step="w")
    await create(store)
    assert await store.send_signal("e1", "go", b'{"n":"bad"}', "d1", now())
    assert await store.send_signal("e1", "go", b'{"n":2}', "d2", now())
    token = await running(store)
    wait = SignalWait("go", "w", CONSUMED_PREFIX, b"}}")
    outcome = await store.suspend(
        "e1", token, Checkpoint(records=[step("ok", result=1)]), now(), status=Status.WAITING, wait=wait
    )
    assert outcome.kind == "signal"
    consumed = CONSUMED_PREFIX + b'{"n":"bad"}}}'
    with pytest.raises(ExecutionNotFailed):
        await store.retry_execution("e1", None, now(), discard_signal_step="w")
    timeout_record = orjson.dumps(
        {"seq": 2, "kind": "signal", "status": "completed", "result": {"kind": "timeout", "payload": None}}
    )
    await store.commit("e1", token, Checkpoint(records=[("t", timeout_record)]), now())
    await store.finish(
        "e1", token, Checkpoint(), now(), status=Status.FAILED, error=b'{"type":"ValidationError"}'
    )
    await drain(store)
    # Only a consumed signal can be discarded: a plain step, a timeout, a missing step change nothing.
    for bad in ("ok", "t", "missing"):
        with pytest.raises(InvalidStepId):
            await store.retry_execution("e1", "ops", now(), discard_signal_step=bad)
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.FAILED and rec.attempt == 1
    assert (await store.load_steps("e1"))["w"] == consumed
    assert await drain(store) == []

    await store.retry_execution("e1", "ops", now(), discard_signal_step="w")
    rec = await store.get_execution("e1")
    assert rec is not None and rec.status == Status.PENDING and rec.attempt == 2
    assert set(await store.load_steps("e1")) == {"ok", "t"}
    assert reasons(await drain(store)) == [("e1", "retry")]
    discarded = next(a for a in await store.list_audit("e1") if a.kind == "signal.discarded")
    assert (discarded.step_id, discarded.actor) == ("w", "ops")
    assert discarded.data == orjson.loads(consumed)
    # The next buffered payload is still there for the wait.
    got = await store.acquire("e1", "w1", TTL, now())
    outcome = await store.suspend("e1", got.token, Checkpoint(), now(), status=Status.WAITING, wait=wait)
    assert (outcome.kind, outcome.payload) == ("signal", b'{"n":2}')


async def test_recover_enqueues_only_what_nothing_else_will_wake(store: Store) -> None:
    await create(store, "queued")  # its start entry is still queued
    await create(store, "lost")
    await create(store, "leased")
    await create(store, "sleeper")
    await create(store, "waiter")
    await create(store, "rearm")
    await create(store, "signalled")
    await create(store, "done")
    entries = await store.dequeue("c", 100, 0)
    await store.ack([e.entry_id for e in entries if e.execution_id != "queued"])
    tokens = {}
    for eid in ("leased", "sleeper", "waiter", "rearm", "signalled", "done"):
        got = await store.acquire(eid, "w1", TTL, now())
        assert got.outcome == "ok"
        tokens[eid] = got.token
    await store.suspend(
        "sleeper", tokens["sleeper"], Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=now() + 60_000
    )
    await store.suspend(
        "waiter", tokens["waiter"], Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go")
    )
    past = now() - 10
    await store.suspend(
        "rearm", tokens["rearm"], Checkpoint(), now(), status=Status.SLEEPING, wake_at_ms=past
    )
    await store.suspend(
        "signalled", tokens["signalled"], Checkpoint(), now(), status=Status.WAITING, wait=wait_for("go")
    )
    await store.finish("done", tokens["done"], Checkpoint(), now(), status=Status.COMPLETED)
    await store.send_signal("signalled", "go", b"1", "d1", now())
    assert await store.fire_due_timers(now()) == 0  # a wake-up already due is queued at suspend
    lost = await drain(store)  # the timer's and the signal's entries get lost (acked, never run)
    assert sorted(reasons(lost)) == [("rearm", "timer"), ("signalled", "signal")]

    assert await store.recover(now()) == 2
    # "queued" keeps its start entry (delivered, not acked: a reclaim will hand it out again).
    assert sorted(reasons(await store.dequeue("c", 100, 0))) == [
        ("lost", "recover"),
        ("signalled", "recover"),
    ]
    assert await store.fire_due_timers(now()) == 1  # the sleeper whose timer was lost has it again
    assert await store.next_timer_due() is not None


async def test_purge_finished(store: Store) -> None:
    t = now()
    for eid, finished_at in (("old", t - 10_000), ("new", t)):
        await create(store, eid, at_ms=t - 20_000)
        got = await store.acquire(eid, "w", TTL, now())
        await store.finish(
            eid, got.token, Checkpoint(records=[step("s")]), finished_at, status=Status.COMPLETED
        )
    await create(store, "live")
    assert await store.purge_finished(t - 5_000) == 1
    assert await store.get_execution("old") is None
    assert await store.load_steps("old") == {}
    assert await store.list_audit("old") == []
    assert await store.get_execution("new") is not None
    page, _ = await store.list_executions(ExecutionQuery())
    assert sorted(r.execution_id for r in page) == ["live", "new"]
    assert await store.purge_finished(t + 1) == 1
    assert await store.list_active() == ["live"]


async def test_list_emitted(store: Store) -> None:
    token = await running(store)
    for i in range(3):
        await store.commit("e1", token, Checkpoint(events=[(f"ev{i}", orjson.dumps({"i": i}))]), now())
    assert await store.list_emitted() == [("e1", f"ev{i}", {"i": i}) for i in range(3)]
    assert await store.list_emitted(limit=2) == [("e1", "ev1", {"i": 1}), ("e1", "ev2", {"i": 2})]


async def test_append_audit_and_list_audit_keep_order(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.append_audit("nope", [AuditDraft("k", "m")])
    await create(store)
    drafts = [
        AuditDraft(f"k{i}", f"m{i}", step_id="s" if i else None, actor="ops", data=b'{"i":%d}' % i)
        for i in range(3)
    ]
    await store.append_audit("e1", drafts[:2])
    await store.append_audit("e1", drafts[2:])
    audit = await store.list_audit("e1")
    assert [a.kind for a in audit] == ["created", "k0", "k1", "k2"]
    assert [(a.message, a.step_id, a.actor, a.data) for a in audit[1:]] == [
        ("m0", None, "ops", {"i": 0}),
        ("m1", "s", "ops", {"i": 1}),
        ("m2", "s", "ops", {"i": 2}),
    ]
    assert len({a.entry_id for a in audit}) == 4
    assert [a.kind for a in await store.list_audit("e1", limit=2)] == ["created", "k0"]


async def test_commit_writes_audit_and_current_step(store: Store) -> None:
    token = await running(store)
    cp = Checkpoint(
        records=[step("s1")], audit=[AuditDraft("step.done", "s1 done", step_id="s1")], current_step="s1"
    )
    assert await store.commit("e1", token, cp, now()) is False
    rec = await store.get_execution("e1")
    assert rec is not None and rec.current_step == "s1"
    assert [(a.kind, a.step_id) for a in await store.list_audit("e1")][-1] == ("step.done", "s1")


# ---------------------------------------------------------------------------- Redis faults
async def _unavailable(call: Any) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as info:
        await asyncio.wait_for(call, 8.0)  # raise, do not hang
    return info.value


async def test_redis_down_raises_store_unavailable_and_recovers(fresh_redis_server: RedisServer) -> None:
    store = RedisStore.from_url(fresh_redis_server.url)
    try:
        await create(store, "e1")
        fresh_redis_server.kill()
        started = time.monotonic()
        err = await _unavailable(store.get_execution("e1"))
        assert isinstance(err.__cause__, (ConnectionError, TimeoutError))
        await _unavailable(store.create_execution(NewExecution("e2", "wf", b"1", now())))
        await _unavailable(store.dequeue("c", 10, 100))
        await _unavailable(store.ping())
        assert time.monotonic() - started < 15
        fresh_redis_server.restart()
        await store.ping()
        # No persistence: the data is gone, the scripts are reloaded on demand.
        assert await store.get_execution("e1") is None
        await create(store, "e1")
        got = await store.acquire("e1", "w1", TTL, now())
        assert got.outcome == "ok"
        await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED)
        assert (await store.wait_finished("e1", 1.0)).status == Status.COMPLETED
    finally:
        await store.close()


async def test_wait_finished_survives_a_redis_restart(fresh_redis_server: RedisServer) -> None:
    store = RedisStore.from_url(fresh_redis_server.url)
    try:
        await create(store, "e1")
        assert (await store.acquire("e1", "w1", TTL, now())).outcome == "ok"
        with pytest.raises(WaitTimeoutError):
            await store.wait_finished("e1", 0.2)  # the notifier is subscribed now
        fresh_redis_server.restart()
        await create(store, "e1")
        got = await store.acquire("e1", "w1", TTL, now())
        waiter = asyncio.create_task(store.wait_finished("e1", 10.0))
        await asyncio.sleep(0.3)
        await store.finish("e1", got.token, Checkpoint(), now(), status=Status.COMPLETED)
        assert (await asyncio.wait_for(waiter, 5.0)).status == Status.COMPLETED
    finally:
        await store.close()


async def test_redis_keys_carry_the_execution_hash_tag(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url)
    try:
        token = await running(store, "ex-1")
        await store.send_signal("ex-1", "go", b"1", "d1", now())
        await store.commit("ex-1", token, Checkpoint(records=[step("s")]), now())
        async with redis_client(store) as client:
            keys = sorted(k.decode() for k in await client.keys("dw:{ex-1}:*"))
        suffixes = ["audit", "exec", "lease", "sig:go", "signames", "sigids", "steps"]
        assert keys == sorted(f"dw:{{ex-1}}:{suffix}" for suffix in suffixes)
    finally:
        await store.close()


async def test_a_hung_redis_raises_store_unavailable_after_the_deadline(
    fresh_redis_server: RedisServer,
) -> None:
    store = RedisStore.from_url(fresh_redis_server.url, op_timeout_s=0.5)
    proc = fresh_redis_server.proc
    assert proc is not None
    try:
        await create(store, "e1")
        proc.send_signal(signal.SIGSTOP)  # connected, silent: only a deadline can help
        started = time.monotonic()
        err = await _unavailable(store.get_execution("e1"))
        assert isinstance(err.__cause__, TimeoutError)
        assert time.monotonic() - started < 3
        proc.send_signal(signal.SIGCONT)
        rec = await store.get_execution("e1")
        assert rec is not None and rec.status == Status.PENDING
    finally:
        proc.send_signal(signal.SIGCONT)
        await store.close()
