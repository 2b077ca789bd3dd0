"""`ctx.continue_as_new` and the history-size guard, on both stores.

The hand-off test sends many signals concurrently while an execution loops through continue-as-new:
each must be consumed exactly once across the runs (buffered signals survive the hand-off, delivery
ids stay deduplicated).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from durable import (
    ContinueAsNew,
    Durable,
    HistoryLimit,
    HistoryLimitExceeded,
    InputValidationError,
    LeaseLost,
    Status,
    Store,
    StoreUnavailable,
    WorkflowContext,
    WorkflowDef,
    workflow,
)
from durable._history import StepKind, StepRecord, StepStatus
from durable._store._base import AuditDraft, Checkpoint
from durable._workflow._definitions import _input_adapter, _input_type


def defn(workflow_id: str, fn: Any, **options: Any) -> WorkflowDef:
    """A definition as `@workflow` makes it (its input type checked), outside the global registry."""
    hint = _input_type(fn)
    return WorkflowDef(
        workflow_id=workflow_id, fn=fn, input_type=hint, input_adapter=_input_adapter(hint), **options
    )


def _same(value: Any) -> Any:
    return value


async def counter(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    seen = await ctx.step("work", _same, n)
    if n < 4:
        ctx.continue_as_new(n + 1)
    return {"n": seen, "run_steps": sorted(ctx._stored)}


async def test_continue_as_new_loops_under_one_id_with_a_fresh_history(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.count", counter)])
    async with d.worker(concurrency=2, max_idle_poll=0.05):
        eid = await d.start("can.count", 0, execution_id="count-1")
        record = await store.wait_finished(eid, 20)
    assert record.status == Status.COMPLETED, record.error
    assert record.result["n"] == 4
    assert record.run == 5  # runs 1..5 under one id
    assert record.attempt == 1
    assert record.input == 4  # the last run's input
    assert record.to_dict()["run"] == 5
    # Only the last run's history is kept.
    steps = await store.load_steps(eid)
    assert set(steps) == {"work"}
    audit = [a for a in await store.list_audit(eid) if a.kind == "continued_as_new"]
    assert [a.data for a in audit] == [{"run": r} for r in (2, 3, 4, 5)]


class Batch(BaseModel):
    got: list[int]
    total: int


async def collector(ctx: WorkflowContext, batch: Batch) -> list[int]:
    got = list(batch.got)
    for i in range(3):  # a few signals per run, then a fresh history
        if len(got) == batch.total:
            return got
        got.append(await ctx.wait_for_signal("item", step_id=f"item-{i}"))
    await ctx.step("tick", _same, len(got))
    ctx.continue_as_new(Batch(got=got, total=batch.total))


@pytest.mark.parametrize("workers", [1, 3])
async def test_signals_sent_during_the_hand_off_are_consumed_exactly_once(store: Store, workers: int) -> None:
    total = 90
    d = Durable(store=store, workflows=[defn("can.collect", collector)])
    eid = await d.start("can.collect", {"got": [], "total": total}, execution_id=f"collect-{workers}")
    async with contextlib_workers(d, workers):

        async def sender(first: int) -> None:
            # Three senders interleave with the runs (a few signals per run, then a hand-off), so
            # signals arrive while the execution waits, runs, and moves to its next run.
            for k in range(first, total, 3):
                await d.signal(eid, "item", k, delivery_id=f"d-{k}")
                # A sender that retries after losing its answer: deduplicated, even across runs.
                await d.signal(eid, "item", k, delivery_id=f"d-{k}")
                await asyncio.sleep(0.001 * (k % 4))

        await asyncio.gather(*(sender(first) for first in range(3)))
        record = await store.wait_finished(eid, 60)
    assert record.status == Status.COMPLETED, record.error
    assert sorted(record.result) == list(range(total))
    assert record.run >= total // 3
    audit = await store.list_audit(eid, limit=10_000)
    assert sum(1 for a in audit if a.kind == "signal.consumed") == total


class contextlib_workers:
    """`n` in-process workers serving one store (they compete for the queue like separate pods)."""

    def __init__(self, d: Durable, n: int) -> None:
        self._workers = [d.worker(concurrency=4, max_idle_poll=0.05) for _ in range(n)]

    async def __aenter__(self) -> None:
        for w in self._workers:
            await w.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        for w in reversed(self._workers):
            await w.__aexit__(None, None, None)


class Count(BaseModel):
    n: int


async def typed(ctx: WorkflowContext, c: Count) -> int:
    if c.n == 0:
        try:
            ctx.continue_as_new({"n": "not a number"})
        except InputValidationError as exc:
            await ctx.step("caught", _same, exc.errors)
        ctx.continue_as_new({"n": 1})
    if c.n == 1:
        ctx.continue_as_new({"bad": True})  # not caught: the execution fails, nothing continues
    return c.n


async def test_a_bad_continue_as_new_input_is_a_clear_error_in_the_workflow(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.typed", typed)])
    async with d.worker(concurrency=1, max_idle_poll=0.05):
        eid = await d.start("can.typed", {"n": 0}, execution_id="typed-1")
        record = await store.wait_finished(eid, 20)
    assert record.status == Status.FAILED
    assert record.error is not None and record.error["type"] == "InputValidationError"
    assert "input for workflow 'can.typed' is invalid" in record.error["message"]
    assert record.run == 2 and record.input == {"n": 1}


async def test_continue_as_new_cannot_be_swallowed_by_except_exception() -> None:
    assert not issubclass(ContinueAsNew, Exception)


async def test_a_stale_token_writes_nothing_and_a_cancel_wins(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.count", counter)])
    eid = await d.start("can.count", 0, execution_id="fence-1")
    acquired = await store.acquire(eid, "w1", 30_000, _now())
    assert acquired.outcome == "ok"
    cp = Checkpoint(audit=[AuditDraft(kind="x", message="x")])
    with pytest.raises(LeaseLost):
        await store.continue_as_new(eid, acquired.token + 1, cp, _now(), input=b"1")
    record = await store.get_execution(eid)
    assert record is not None and record.run == 1 and record.input == 0
    await store.cancel(eid, "stop", None, _now())
    assert await store.continue_as_new(eid, acquired.token, Checkpoint(), _now(), input=b"1") is True
    record = await store.get_execution(eid)
    assert record is not None and record.run == 1 and record.input == 0
    assert await store.release(eid, "w1", acquired.token) == Status.CANCELLED


async def test_the_store_keeps_signals_and_delivery_ids_and_resets_the_run(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.count", counter)])
    eid = await d.start("can.count", 0, execution_id="keep-1")
    acquired = await store.acquire(eid, "w1", 30_000, _now())
    assert await store.send_signal(eid, "s", b"1", "dup", _now())
    cp = Checkpoint(records=[("gone", b'{"x":1}')], audit=[AuditDraft(kind="note", message="last words")])
    assert await store.continue_as_new(eid, acquired.token, cp, _now(), input=b"7") is False
    record = await store.get_execution(eid)
    assert record is not None
    assert (record.status, record.run, record.input, record.current_step) == (Status.PENDING, 2, 7, None)
    assert await store.load_steps(eid) == {}
    kinds = [a.kind for a in await store.list_audit(eid)]
    assert kinds[-2:] == ["note", "continued_as_new"]
    assert not await store.send_signal(eid, "s", b"1", "dup", _now())  # still deduplicated
    again = await store.acquire(eid, "w2", 30_000, _now())
    assert again.outcome == "ok" and again.token > acquired.token and again.record is not None
    assert again.record.run == 2
    with pytest.raises(LeaseLost):  # the old run's worker stays fenced out
        await store.commit(eid, acquired.token, Checkpoint(audit=[AuditDraft(kind="x", message="x")]), _now())


def _now() -> int:
    from durable._records import now_ms

    return now_ms()


# ---------------------------------------------------------------- the history-size guard
SMALL = HistoryLimit(max_records=12, max_bytes=1_000_000, warn_records=5, warn_bytes=500_000)


async def long_loop(ctx: WorkflowContext, steps: int) -> int:
    for i in range(steps):
        await ctx.step(f"s{i}", _same, i)
        if i % 3 == 2:
            await ctx.sleep(0)  # several activations: the count goes on from the loaded history
    return steps


async def test_a_history_past_the_limit_fails_with_a_clear_error_after_one_warning(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.long", long_loop, history_limit=SMALL)])
    async with d.worker(concurrency=1, max_idle_poll=0.05):
        eid = await d.start("can.long", 40, execution_id="long-1")
        record = await store.wait_finished(eid, 20)
    assert record.status == Status.FAILED
    assert record.error is not None and record.error["type"] == "HistoryLimitExceeded"
    assert "continue_as_new" in record.error["message"]
    fields = record.error["fields"]
    assert fields["records"] == 13 and fields["limit_records"] == 12 and fields["bytes"] > 0
    warnings = [a for a in await store.list_audit(eid) if a.kind == "history.warning"]
    assert len(warnings) == 1
    assert "continue_as_new" in warnings[0].message and warnings[0].data["records"] == 6


async def test_a_worker_wide_limit_applies_and_small_histories_pass(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.long", long_loop)])
    async with d.worker(concurrency=1, max_idle_poll=0.05, history_limit=SMALL):
        ok = await d.start("can.long", 4, execution_id="short-1")
        bad = await d.start("can.long", 30, execution_id="long-2")
        assert (await store.wait_finished(ok, 20)).status == Status.COMPLETED
        record = await store.wait_finished(bad, 20)
    assert record.status == Status.FAILED and record.error is not None
    assert record.error["type"] == "HistoryLimitExceeded"
    assert not [a for a in await store.list_audit(ok) if a.kind == "history.warning"]


async def test_the_byte_limit_counts_too(store: Store) -> None:
    limit = HistoryLimit(max_records=1000, max_bytes=2_000, warn_records=1000, warn_bytes=1_000)

    async def big(ctx: WorkflowContext, n: int) -> int:
        for i in range(n):
            await ctx.step(f"b{i}", _same, "x" * 300)
        return n

    d = Durable(store=store, workflows=[defn("can.big", big, history_limit=limit)])
    async with d.worker(concurrency=1, max_idle_poll=0.05):
        eid = await d.start("can.big", 20, execution_id="big-1")
        record = await store.wait_finished(eid, 20)
    assert record.error is not None and record.error["type"] == "HistoryLimitExceeded"
    assert record.error["fields"]["bytes"] > 2_000
    assert len([a for a in await store.list_audit(eid) if a.kind == "history.warning"]) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"max_records": -1},
        {"max_bytes": 0},
        {"warn_records": 10, "max_records": 5},
        {"warn_bytes": 1.5},
    ],
)
def test_bad_history_limits_are_a_one_line_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        HistoryLimit(**bad)
    assert "\n" not in str(info.value) and "HistoryLimit" in str(info.value)


def test_workflow_takes_a_history_limit_and_refuses_anything_else() -> None:
    with pytest.raises(TypeError, match="history_limit"):
        workflow("can.bad", history_limit=10)  # type: ignore[arg-type]

    @workflow("can.limited", history_limit=SMALL)
    async def limited(ctx: WorkflowContext, n: int) -> int:
        return n

    assert limited.__durable_workflow__.history_limit == SMALL  # type: ignore[attr-defined]


def test_the_limit_error_keeps_its_fields_through_storage() -> None:
    from durable._errors import error_from_dict

    err = HistoryLimitExceeded(
        "too long", execution_id="e", records=3, bytes=10, limit_records=2, limit_bytes=100
    )
    back = error_from_dict(orjson.loads(orjson.dumps(err.to_dict())))
    assert isinstance(back, HistoryLimitExceeded) and back.fields == err.fields


# ---------------------------------------------------------------- a continue-as-new write that fails
@pytest.mark.parametrize("lost", ["before", "after"])
async def test_a_failed_continue_as_new_write_loses_nothing_and_repeats_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """The store is unreachable for the write (`before`), or the write went through and its answer was
    lost (`after`): the worker retries, and every round's step body still runs exactly once."""
    bodies: list[int] = []

    def body(n: int) -> int:
        bodies.append(n)
        return n

    async def rounds(ctx: WorkflowContext, n: int) -> int:
        await ctx.step("work", body, n)
        if n < 3:
            ctx.continue_as_new(n + 1)
        return n

    real = store.continue_as_new
    failed: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> bool:
        if not failed:
            failed.append(1)
            if lost == "after":
                await real(*args, **kwargs)
            raise StoreUnavailable("connection reset")
        return await real(*args, **kwargs)

    monkeypatch.setattr(store, "continue_as_new", flaky)
    d = Durable(store=store, workflows=[defn("can.flaky", rounds)])
    async with d.worker(concurrency=2, max_idle_poll=0.05):
        eid = await d.start("can.flaky", 1, execution_id=f"flaky-{lost}")
        assert await d.wait(eid, timeout=20) == 3
    record = await store.get_execution(eid)
    assert failed and record is not None and record.run == 3
    assert sorted(bodies) == [1, 2, 3]


async def test_the_replay_check_passes_a_run_that_continues_as_new(store: Store) -> None:
    from durable import check_replay, load_histories

    d = Durable(store=store, workflows=[defn("can.count", counter)])
    eid = await d.start("can.count", 0, execution_id="replayed")
    # A run recorded its step and was cut before its continue-as-new write.
    acquired = await store.acquire(eid, "w1", 30_000, _now())
    record = StepRecord("work", 1, StepKind.STEP, StepStatus.COMPLETED, result=0, at_ms=_now())
    await store.commit(eid, acquired.token, Checkpoint(records=[("work", record.encode())]), _now())
    (found,) = [
        h for h in await load_histories(d, workflow_id="can.count", limit=10) if h.execution_id == eid
    ]
    assert (await check_replay(found, {"can.count": defn("can.count", counter)})).ok

    async def skips(ctx: WorkflowContext, n: int) -> int:
        ctx.continue_as_new(n + 1)  # no longer makes the recorded step

    broken = await check_replay(found, {"can.count": defn("can.count", skips)})
    assert not broken.ok and broken.expected == "work"


def test_durable_get_shows_the_run_number(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from datetime import UTC, datetime

    from durable import ExecutionId, ExecutionRecord
    from durable._cli._output import execution_detail

    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = ExecutionRecord(ExecutionId("e"), "can.count", Status.PENDING, 3, at, at, run=7)
    execution_detail(record, [], [])
    assert re.search(r"\brun\b\s+7\b", capsys.readouterr().out)


async def test_the_next_run_goes_on_the_execution_version_queue(store: Store) -> None:
    d = Durable(store=store, workflows=[defn("can.count", counter)])
    await d.versions.promote("can.count", "v1")
    eid = await d.start("can.count", 0, execution_id="versioned")
    v1 = store.versioned("v1")
    acquired = await v1.acquire(eid, "w1", 30_000, _now())
    assert acquired.outcome == "ok"
    # A store handle on another queue (the unversioned one) still queues the next run on v1's.
    assert await store.continue_as_new(eid, acquired.token, Checkpoint(), _now(), input=b"1") is False
    assert await store.queue_depth() == 0
    assert await v1.queue_depth() == 2  # the start's entry (never acknowledged here) and the next run
    record = await store.get_execution(eid)
    assert record is not None and record.run == 2 and record.version == "v1"


@pytest.mark.parametrize("stop", ["cancel", "force_fail"])
async def test_a_stop_requested_during_the_run_wins_over_continue_as_new(store: Store, stop: str) -> None:
    async def stopped(ctx: WorkflowContext, n: int) -> int:
        await ctx.step("work", _same, n)
        # Requested after the last commit, before the continue-as-new write (the lease is held: flagged).
        await getattr(store, stop)(ctx.execution_id, "enough", "ops", _now())
        ctx.continue_as_new(n + 1)

    d = Durable(store=store, workflows=[defn("can.stopped", stopped)])
    async with d.worker(concurrency=1, max_idle_poll=0.05):
        eid = await d.start("can.stopped", 1, execution_id=f"stopped-{stop}")
        record = await store.wait_finished(eid, 20)
    expected = Status.CANCELLED if stop == "cancel" else Status.FAILED
    assert record.status == expected and record.run == 1 and record.input == 1
    assert not [a for a in await store.list_audit(eid) if a.kind == "continued_as_new"]
