"""Engine conformance: the SDK's semantics, run against both stores through the `store` fixture."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from durable import (
    Branch,
    Durable,
    ExecutionCancelledError,
    ExecutionConflict,
    ExecutionFinished,
    ExecutionNotFound,
    InputValidationError,
    MemoryStore,
    RetryPolicy,
    Signal,
    SignalPayloadError,
    Status,
    StepId,
    Store,
    WorkflowFailedError,
    WorkflowNotFound,
    workflow,
)
from durable._workflow._context import WorkflowContext

CALLS: collections.Counter[str] = collections.Counter()


class Order(BaseModel):
    order_id: str
    amount: float


class Approval(BaseModel):
    approved: bool


class Charge(BaseModel):
    charge_id: str
    amount: float


APPROVED = Signal("test.approved", Approval)


def counted(name: str, value: Any = None) -> Any:
    CALLS[name] += 1
    return value if value is not None else {"step": name}


@workflow("test.three_steps")
async def three_steps(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    a = await ctx.step("a", counted, "three.a", {"v": n})
    b = await ctx.step("b", counted, "three.b", {"v": a["v"] + 1})

    async def c_async() -> dict[str, int]:
        CALLS["three.c"] += 1
        return {"v": b["v"] + 1}

    c = await ctx.step("c", c_async)
    return {"a": a["v"], "b": b["v"], "c": c["v"]}


@workflow("test.typed")
async def typed(ctx: WorkflowContext, order: Order) -> dict[str, Any]:
    charge = await ctx.step(
        StepId("charge", Charge), lambda: {"charge_id": f"ch-{order.order_id}", "amount": order.amount}
    )
    assert isinstance(charge, Charge)
    return {"charge": charge.charge_id, "amount": charge.amount}


@workflow("test.sleep_signal")
async def sleep_signal(ctx: WorkflowContext, _: Any) -> dict[str, Any]:
    await ctx.step("before", counted, "ss.before")
    await ctx.sleep(0.05)
    approval = await ctx.wait_for_signal(APPROVED)
    await ctx.step("after", counted, "ss.after")
    return {"approved": approval.approved}


@workflow("test.timeout")
async def with_timeout(ctx: WorkflowContext, seconds: float) -> dict[str, Any]:
    res = await ctx.wait_for_signal("test.ping", timeout=seconds, step_id="ping")
    return {"kind": res.kind, "payload": res.payload}


@workflow("test.buffered")
async def buffered(ctx: WorkflowContext, _: Any) -> list[Any]:
    await ctx.sleep(0.05)
    first = await ctx.wait_for_signal("test.item", step_id="first")
    second = await ctx.wait_for_signal("test.item", step_id="second")
    return [first, second]


@workflow("test.bad_result")
async def bad_result(ctx: WorkflowContext, _: Any) -> Any:
    return await ctx.step("make-object", lambda: object())


@workflow("test.reserved")
async def reserved(ctx: WorkflowContext, prefix: str) -> Any:
    return await ctx.step(f"{prefix}x", lambda: 1)


@workflow("test.duplicate")
async def duplicate(ctx: WorkflowContext, _: Any) -> Any:
    await ctx.step("same", lambda: 1)
    return await ctx.step("same", lambda: 2)


@workflow("test.retry")
async def retrying(ctx: WorkflowContext, fail_times: int) -> Any:
    def flaky() -> str:
        CALLS["retry.flaky"] += 1
        if CALLS["retry.flaky"] <= fail_times:
            raise ConnectionError(f"boom {CALLS['retry.flaky']}")
        return "ok"

    return await ctx.step("flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0.01))


@workflow("test.switch")
async def switching(ctx: WorkflowContext, value: Any) -> Any:
    def big() -> str:
        CALLS["switch.big"] += 1
        return "big"

    return await ctx.switch(
        "route",
        value,
        [
            {"id": "small", "match": lambda v: v < 10, "run": lambda: "small"},
            Branch(id="big", match=lambda v: v >= 10, run=big),
        ],
    )


@workflow("test.switch_nodefault")
async def switch_nodefault(ctx: WorkflowContext, value: Any) -> Any:
    return await ctx.switch("route", value, [{"id": "one", "match": 1, "run": lambda: "one"}])


@workflow("test.saga")
async def saga(ctx: WorkflowContext, _: Any) -> Any:
    await ctx.step(
        "reserve", counted, "saga.reserve", {"r": 1}, compensate=lambda r: counted("saga.undo-reserve", r)
    )
    await ctx.step("charge", counted, "saga.charge", {"c": 1}, compensate=lambda: counted("saga.undo-charge"))
    try:
        await ctx.step("ship", _fail)
    except Exception:
        await ctx.rollback()
        return "rolled back"
    return "shipped"


def _fail() -> None:
    raise RuntimeError("no truck")


@workflow("test.helpers")
async def helpers(ctx: WorkflowContext, _: Any) -> dict[str, Any]:
    t = ctx.now()
    u = ctx.uuid4()
    r = ctx.random()
    await ctx.emit("test.event", {"u": str(u)})
    await ctx.note("a note", {"r": r})
    await ctx.sleep(0.02)
    return {"t": t.isoformat(), "u": str(u), "r": r}


@workflow("test.catch_all")
async def catch_all(ctx: WorkflowContext, _: Any) -> str:
    try:
        await ctx.sleep(0.05)
    except Exception:  # must not swallow the suspension
        return "swallowed"
    return "slept"


@workflow("test.long_wait")
async def long_wait(ctx: WorkflowContext, _: Any) -> Any:
    await ctx.step("one", counted, "long.one")
    return await ctx.wait_for_signal("test.never")


@workflow("test.fails")
async def fails(ctx: WorkflowContext, _: Any) -> Any:
    await ctx.step("ok", counted, "fails.ok")
    await ctx.step("broken", _fail)


@dataclass
class Point:
    x: int
    y: int


class Span(TypedDict):
    start: int
    end: int


def _typed_result(value: Any) -> dict[str, Any]:
    return {"type": type(value).__name__, "repr": repr(value)}


@workflow("test.input.int")
async def input_int(ctx: WorkflowContext, n: int) -> Any:
    return _typed_result(n)


@workflow("test.input.dataclass")
async def input_dataclass(ctx: WorkflowContext, p: Point) -> Any:
    return _typed_result(p)


@workflow("test.input.typeddict")
async def input_typeddict(ctx: WorkflowContext, span: Span) -> Any:
    return _typed_result(span)


@workflow("test.input.list")
async def input_list(ctx: WorkflowContext, ns: list[int]) -> Any:
    return _typed_result(ns)


@workflow("test.input.optional")
async def input_optional(ctx: WorkflowContext, n: int | None) -> Any:
    return _typed_result(n)


@workflow("test.input.unannotated")
async def input_unannotated(ctx, value):  # type: ignore[no-untyped-def]
    return _typed_result(value)


@pytest.fixture
async def durable(store: Store) -> AsyncIterator[Durable]:
    CALLS.clear()
    d = Durable(store=store)
    async with d.worker(concurrency=8, lease_ttl=2.0, visibility_timeout=2.0, max_idle_poll=0.2):
        yield d


async def test_three_steps_complete_and_memoize(durable: Durable) -> None:
    result = await durable.start_and_wait(three_steps, 1, timeout=10)
    assert result == {"a": 1, "b": 2, "c": 3}
    assert CALLS["three.a"] == CALLS["three.b"] == CALLS["three.c"] == 1
    eid = (await durable.list_executions(workflow="test.three_steps"))[0].execution_id
    steps = await durable.list_step_results(eid)
    assert [(s.step_id, s.result) for s in steps] == [("a", {"v": 1}), ("b", {"v": 2}), ("c", {"v": 3})]
    record = await durable.get_execution(eid)
    assert record is not None and record.status == Status.COMPLETED and record.result == result
    assert record.started_at is not None and record.finished_at is not None


async def test_start_is_idempotent_on_execution_id(durable: Durable) -> None:
    first = await durable.start(three_steps, 5, execution_id="fixed-id")
    second = await durable.start(three_steps, 5, execution_id="fixed-id")
    assert first == second == "fixed-id"
    await durable.wait(first, timeout=10)
    assert CALLS["three.a"] == 1


async def test_start_under_a_taken_id_conflicts_or_replaces_a_finished_run(durable: Durable) -> None:
    eid = await durable.start(three_steps, 5, execution_id="taken")
    assert await durable.wait(eid, timeout=10) == {"a": 5, "b": 6, "c": 7}
    with pytest.raises(ExecutionConflict) as caught:
        await durable.start(three_steps, 6, execution_id="taken")
    assert (caught.value.reason, caught.value.workflow_id, caught.value.existing_workflow_id) == (
        "input", "test.three_steps", "test.three_steps",
    )  # fmt: skip
    with pytest.raises(ExecutionConflict, match=r"'test\.typed'") as caught:
        await durable.start(typed, {"order_id": "o1", "amount": 1}, execution_id="taken")
    assert caught.value.reason == "workflow" and isinstance(caught.value, ExecutionConflict)
    record = await durable.get_execution("taken")
    assert record is not None and record.input == 5 and record.run == 1 and record.status == Status.COMPLETED
    # Same request: idempotent, even once finished; nothing re-runs.
    assert await durable.start(three_steps, 5, execution_id="taken") == "taken"
    assert CALLS["three.a"] == 1
    # allow_if_finished: a fresh run with the new input, from scratch.
    result = await durable.start_and_wait(
        three_steps, 10, execution_id="taken", id_reuse="allow_if_finished", timeout=10
    )
    assert result == {"a": 10, "b": 11, "c": 12} and CALLS["three.a"] == 2
    record = await durable.get_execution("taken")
    assert record is not None and record.input == 10 and record.run == 2
    kinds = [a.kind for a in await durable.list_audit_entries("taken")]
    assert "replaced" in kinds and kinds.count("created") == 2
    with pytest.raises(ValueError, match="id_reuse"):
        await durable.start(three_steps, 1, execution_id="taken", id_reuse="sometimes")  # type: ignore[arg-type]


async def test_typed_input_and_step_model(durable: Durable) -> None:
    assert await durable.start_and_wait(typed, {"order_id": "o1", "amount": 3}, timeout=10) == {
        "charge": "ch-o1",
        "amount": 3.0,
    }


async def test_invalid_input_is_refused_and_nothing_stored(durable: Durable) -> None:
    with pytest.raises(InputValidationError, match="amount"):
        await durable.start(typed, {"order_id": "o1", "amount": "lots"})
    assert await durable.list_executions(workflow="test.typed") == []


@pytest.mark.parametrize(
    ("wf", "good", "parsed", "bad", "why"),
    [
        (input_int, "7", ("int", "7"), "notint", "(root): Input should be a valid integer"),
        (input_dataclass, {"x": 1, "y": "2"}, ("Point", "Point(x=1, y=2)"), {"x": 1}, "y: Field required"),
        (input_typeddict, {"start": 1, "end": 2}, ("dict", "{'start': 1, 'end': 2}"), {"start": "a", "end": 2},
         "start: Input should be a valid integer"),
        (input_list, [1, "2"], ("list", "[1, 2]"), [1, "x"], "1: Input should be a valid integer"),
        (input_optional, None, ("NoneType", "None"), "x", "Input should be a valid integer"),
        (input_unannotated, "notint", ("str", "'notint'"), None, ""),
    ],
)  # fmt: skip
async def test_any_annotated_input_is_validated_at_start_and_parsed_on_replay(
    durable: Durable, wf: Any, good: Any, parsed: tuple[str, str], bad: Any, why: str
) -> None:
    definition = wf.__durable_workflow__
    if why:
        with pytest.raises(InputValidationError) as caught:
            await durable.start(wf, bad, execution_id="bad-input")
        message = caught.value.message
        assert message.startswith(f"input for workflow {definition.workflow_id!r} is invalid: ")
        assert why in message and "\n" not in message
        assert await durable.get_execution("bad-input") is None
        assert await durable.list_executions(workflow=definition.workflow_id) == []
    else:
        assert definition.input_adapter is None
    result = await durable.start_and_wait(wf, good, timeout=10)
    assert (result["type"], result["repr"]) == parsed


async def test_unknown_workflow_is_refused(durable: Durable) -> None:
    with pytest.raises(WorkflowNotFound, match="nope"):
        await durable.start("nope", {})
    assert await durable.list_executions() == []


async def test_sleep_then_signal(durable: Durable) -> None:
    eid = await durable.start(sleep_signal, None)
    await _until(durable, eid, Status.WAITING)
    assert await durable.signal(eid, APPROVED, {"approved": True})
    assert await durable.wait(eid, timeout=10) == {"approved": True}
    assert CALLS["ss.before"] == 1 and CALLS["ss.after"] == 1


async def test_signal_payload_model_is_enforced(durable: Durable) -> None:
    eid = await durable.start(sleep_signal, None)
    with pytest.raises(SignalPayloadError, match="approved"):
        await durable.signal(eid, "test.approved", {"approved": "maybe?"})
    entries = [e.kind for e in await durable.list_audit_entries(eid)]
    assert "signal.received" not in entries


async def test_signal_to_unknown_or_finished_execution(durable: Durable) -> None:
    with pytest.raises(ExecutionNotFound):
        await durable.signal("missing-execution", "x", 1)
    eid = await durable.start(three_steps, 1)
    await durable.wait(eid, timeout=10)
    with pytest.raises(ExecutionFinished):
        await durable.signal(eid, "x", 1)


async def test_signals_sent_before_waiting_are_buffered_in_order(durable: Durable) -> None:
    eid = await durable.start(buffered, None)
    await durable.signal(eid, "test.item", "one")
    await durable.signal(eid, "test.item", "two")
    assert await durable.wait(eid, timeout=10) == ["one", "two"]


async def test_duplicate_delivery_id_is_delivered_once(durable: Durable) -> None:
    eid = await durable.start(buffered, None)
    assert await durable.signal(eid, "test.item", "one", delivery_id="d1")
    assert not await durable.signal(eid, "test.item", "one-again", delivery_id="d1")
    await durable.signal(eid, "test.item", "two", delivery_id="d2")
    assert await durable.wait(eid, timeout=10) == ["one", "two"]


async def test_signal_timeout_and_signal_result(durable: Durable) -> None:
    timed_out = await durable.start(with_timeout, 0.05)
    assert await durable.wait(timed_out, timeout=10) == {"kind": "timeout", "payload": None}
    answered = await durable.start(with_timeout, 30)
    await _until(durable, answered, Status.WAITING)
    await durable.signal(answered, "test.ping", {"pong": 1})
    assert await durable.wait(answered, timeout=10) == {"kind": "signal", "payload": {"pong": 1}}


async def test_non_serialisable_step_result_names_the_step(durable: Durable) -> None:
    eid = await durable.start(bad_result, None)
    with pytest.raises(WorkflowFailedError) as info:
        await durable.wait(eid, timeout=10)
    assert "make-object" in str(info.value)
    assert await durable.list_step_results(eid) == []


@pytest.mark.parametrize("prefix", ["__", "rollback:"])
async def test_reserved_step_prefixes_are_refused(durable: Durable, prefix: str) -> None:
    with pytest.raises(WorkflowFailedError, match="reserved prefix"):
        await durable.start_and_wait(reserved, prefix, timeout=10)


async def test_step_id_used_twice_is_an_error(durable: Durable) -> None:
    with pytest.raises(WorkflowFailedError, match="used twice"):
        await durable.start_and_wait(duplicate, None, timeout=10)


async def test_step_retry_with_durable_backoff(durable: Durable) -> None:
    assert await durable.start_and_wait(retrying, 2, timeout=10) == "ok"
    assert CALLS["retry.flaky"] == 3
    eid = (await durable.list_executions(workflow="test.retry"))[0].execution_id
    kinds = [e.kind for e in await durable.list_audit_entries(eid)]
    assert kinds.count("step.retry") == 2


async def test_step_retries_exhausted_fail_the_execution(durable: Durable) -> None:
    eid = await durable.start(retrying, 5)
    with pytest.raises(WorkflowFailedError, match="flaky") as info:
        await durable.wait(eid, timeout=10)
    assert info.value.error["type"] == "StepFailedError"
    assert CALLS["retry.flaky"] == 3


async def test_switch_runs_one_branch_once(durable: Durable) -> None:
    assert await durable.start_and_wait(switching, 3, timeout=10) == "small"
    eid = await durable.start(switching, 42)
    assert await durable.wait(eid, timeout=10) == "big"
    steps = await durable.list_step_results(eid)
    assert steps[0].meta["branch"] == "big" and CALLS["switch.big"] == 1


async def test_switch_without_match_or_default_fails(durable: Durable) -> None:
    with pytest.raises(WorkflowFailedError, match="no branch matched"):
        await durable.start_and_wait(switch_nodefault, 7, timeout=10)


async def test_rollback_runs_compensations_in_reverse_once(durable: Durable) -> None:
    eid = await durable.start(saga, None)
    assert await durable.wait(eid, timeout=10) == "rolled back"
    assert CALLS["saga.undo-reserve"] == 1 and CALLS["saga.undo-charge"] == 1
    ids = [s.step_id for s in await durable.list_step_results(eid)]
    assert ids == ["reserve", "charge", "ship", "rollback:charge", "rollback:reserve"]


async def test_replay_safe_helpers_emit_and_note(durable: Durable) -> None:
    eid = await durable.start(helpers, None)
    result = await durable.wait(eid, timeout=10)
    # The sleep forced a replay: the values returned are the recorded ones.
    assert datetime.fromisoformat(result["t"])
    emitted = [(n, p) for e, n, p in await durable.list_emitted() if e == eid]
    assert emitted == [("test.event", {"u": result["u"]})]
    notes = [a for a in await durable.list_audit_entries(eid) if a.kind == "note"]
    assert len(notes) == 1 and notes[0].data == {"r": result["r"]}


async def test_suspension_cannot_be_swallowed(durable: Durable) -> None:
    assert await durable.start_and_wait(catch_all, None, timeout=10) == "slept"


async def test_cancel_waiting_execution(durable: Durable) -> None:
    eid = await durable.start(long_wait, None)
    await _until(durable, eid, Status.WAITING)
    assert await durable.cancel(eid, "no longer needed") == Status.CANCELLED
    with pytest.raises(ExecutionCancelledError, match="no longer needed"):
        await durable.wait(eid, timeout=5)
    with pytest.raises(ExecutionFinished):
        await durable.cancel(eid, "again")


RUNNING_GATE: dict[str, asyncio.Event] = {}


@workflow("test.cancel_running")
async def cancel_running(ctx: WorkflowContext, _: Any) -> Any:
    async def blocks() -> str:
        CALLS["cancel.blocks"] += 1
        await RUNNING_GATE["gate"].wait()
        return "done"

    await ctx.step("blocks", blocks)
    await ctx.step("never", counted, "cancel.never")
    return "finished"


async def test_cancel_running_execution_stops_at_next_checkpoint(durable: Durable) -> None:
    RUNNING_GATE["gate"] = asyncio.Event()
    eid = await durable.start(cancel_running, None)
    while CALLS["cancel.blocks"] == 0:
        await asyncio.sleep(0.01)
    assert await durable.cancel(eid, "operator said stop", actor="ops") == Status.RUNNING
    RUNNING_GATE["gate"].set()
    with pytest.raises(ExecutionCancelledError, match="operator said stop"):
        await durable.wait(eid, timeout=10)
    assert CALLS["cancel.never"] == 0
    # The step that was running when the cancel came is not committed.
    assert await durable.list_step_results(eid) == []
    kinds = [a.kind for a in await durable.list_audit_entries(eid)]
    assert kinds[-2:] == ["cancel.requested", "cancelled"]


@workflow("test.force_fail_saga")
async def force_fail_saga(ctx: WorkflowContext, _: Any) -> Any:
    async def stuck() -> str:
        CALLS["ff.stuck"] += 1
        await RUNNING_GATE["gate"].wait()
        return "unstuck"

    await ctx.step("reserve", counted, "ff.reserve", {"r": 1}, compensate=lambda r: counted("ff.undo", r))
    try:
        await ctx.step("stuck", stuck)
        await ctx.step("after", counted, "ff.after")
    except Exception:
        await ctx.rollback()
        raise
    return "done"


async def test_force_fail_a_running_execution_skips_compensations(durable: Durable) -> None:
    RUNNING_GATE["gate"] = asyncio.Event()
    eid = await durable.start(force_fail_saga, None)
    while CALLS["ff.stuck"] == 0:
        await asyncio.sleep(0.01)
    with pytest.raises(ValueError, match="reason"):
        await durable.force_fail(eid, " ")
    assert await durable.force_fail(eid, "stuck on a dead API", actor="ops") == Status.RUNNING
    RUNNING_GATE["gate"].set()  # the long step ends; its commit finds the request
    with pytest.raises(WorkflowFailedError, match="stuck on a dead API"):
        await durable.wait(eid, timeout=10)
    record = await durable.get_execution(eid)
    assert record is not None and record.status == Status.FAILED
    assert record.error == {
        "type": "ForcedFailure",
        "message": "stuck on a dead API",
        "fields": {"reason": "stuck on a dead API", "actor": "ops"},
    }
    assert CALLS["ff.undo"] == 0 and CALLS["ff.after"] == 0
    assert [s.step_id for s in await durable.list_step_results(eid)] == ["reserve"]
    kinds = [a.kind for a in await durable.list_audit_entries(eid)]
    assert kinds[-2:] == ["fail.requested", "failed.forced"]
    with pytest.raises(ExecutionFinished):
        await durable.force_fail(eid, "again")
    # Retried like any failure: the kept step is memoized, the rest runs.
    await durable.retry(eid)
    assert await durable.wait(eid, timeout=10) == "done"
    assert CALLS["ff.reserve"] == 1 and CALLS["ff.after"] == 1 and CALLS["ff.undo"] == 0


async def test_force_fail_an_idle_execution(durable: Durable) -> None:
    eid = await durable.start(long_wait, None)
    await _until(durable, eid, Status.WAITING)
    assert await durable.force_fail(eid, "gave up") == Status.FAILED
    with pytest.raises(WorkflowFailedError, match="gave up"):
        await durable.wait(eid, timeout=5)
    with pytest.raises(ExecutionNotFound):
        await durable.force_fail("nope", "gave up")


async def test_failed_execution_then_retry_reuses_completed_steps(durable: Durable) -> None:
    eid = await durable.start(fails, None)
    with pytest.raises(WorkflowFailedError, match="no truck"):
        await durable.wait(eid, timeout=10)
    await durable.retry(eid, actor="ops")
    with pytest.raises(WorkflowFailedError):
        await durable.wait(eid, timeout=10)
    assert CALLS["fails.ok"] == 1
    record = await durable.get_execution(eid)
    assert record is not None and record.attempt == 2
    assert any(a.kind == "retry" and a.actor == "ops" for a in await durable.list_audit_entries(eid))


async def test_skip_step_unblocks_a_wait(durable: Durable) -> None:
    eid = await durable.start(long_wait, None)
    await _until(durable, eid, Status.WAITING)
    waiting = next(s for s in await durable.list_step_results(eid) if s.kind == "signal")
    await durable.skip_step(eid, waiting.step_id, {"forced": True}, actor="ops")
    assert await durable.wait(eid, timeout=10) == {"forced": True}


async def test_wait_timeout_raises(durable: Durable) -> None:
    eid = await durable.start(long_wait, None)
    with pytest.raises(TimeoutError):
        await durable.wait(eid, timeout=0.2)


async def test_execution_detail_and_listing(durable: Durable) -> None:
    ids = [await durable.start(three_steps, i) for i in range(3)]
    for eid in ids:
        await durable.wait(eid, timeout=10)
    detail = await durable.get_execution_detail(ids[0])
    assert detail["execution"]["status"] == "completed"
    assert [s["step_id"] for s in detail["steps"]] == ["a", "b", "c"]
    assert detail["audit"][0]["kind"] == "created" and detail["audit"][-1]["kind"] == "completed"
    listed = await durable.list_executions(workflow="test.three_steps", status="completed")
    assert {r.execution_id for r in listed} == set(ids)
    page, cursor = await durable.list_executions_page(workflow="test.three_steps", limit=2)
    assert len(page) == 2 and cursor is not None
    rest, _ = await durable.list_executions_page(workflow="test.three_steps", limit=2, cursor=cursor)
    assert {r.execution_id for r in page + rest} == set(ids)


async def test_describe_records_the_flow_shape(durable: Durable) -> None:
    shape = durable.describe(sleep_signal)
    assert [(n["kind"], n["id"]) for n in shape.nodes] == [
        ("step", "before"),
        ("sleep", "__sleep:2"),
        ("waitForSignal", "__signal:test.approved:3"),
        ("step", "after"),
    ]
    assert CALLS["ss.before"] == 0  # no step body ran
    assert "flowchart" in shape.to_mermaid()
    switch_shape = durable.describe("test.switch", 1)
    assert switch_shape.nodes[0]["branches"] == ["small", "big"]


async def _until(durable: Durable, eid: str, status: Status, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        record = await durable.get_execution(eid)
        if record is not None and record.status == status:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{eid} never reached {status}; it is {record.status if record else None}")
        await asyncio.sleep(0.01)


async def test_a_sender_without_the_model_is_checked_by_the_waiter_schema_first() -> None:
    """`Durable.signal` by name: the published schema (cached) first, the waiter's own wins."""
    from durable._store._base import Checkpoint, NewExecution, SignalWait

    store = MemoryStore()
    sender = Durable(store=store)
    await store.create_execution(NewExecution(execution_id="e", workflow_id="wf", input=b"null", now_ms=1))
    got = await store.acquire("e", "w", 30_000, 2)
    own = b'{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}'
    wait = SignalWait("poke.raw", "w1", b'{"result":', b"}", schema=own)
    await store.suspend("e", got.token, Checkpoint(), 3, status=Status.WAITING, wait=wait)
    with pytest.raises(SignalPayloadError, match="n: field required"):
        await sender.signal("e", "poke.raw", {"m": 1})
    record = await store.get_execution("e")
    assert record is not None and record.status == Status.WAITING and not store._state.execs["e"].signals
    # Published by a newer worker: a string. The waiter's own schema still decides for its wait.
    await store.publish_signal_schemas({"poke.raw": b'{"type":"string"}'})
    late = Durable(store=store)
    assert await late.signal("e", "poke.raw", {"n": 1})
    with pytest.raises(SignalPayloadError):
        await late.signal("e", "poke.raw", {"n": "x"})
    assert [list(q) for q in store._state.execs["e"].signals.values()] == [[b'{"n":1}']]
