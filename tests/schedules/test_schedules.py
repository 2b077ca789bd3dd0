"""Schedules on both stores: exactly-once firing with several pollers, overlap policies,
starting deadlines and catch-up, pause/resume, idempotent ensure, in-place updates.

Time is injected: `Scheduler.tick(now_ms)` takes the poll time and the `clock` fixture sets
the client's clock, so no test sleeps for slots.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import durable._client._schedules as schedules_mod
from durable import (
    Durable,
    InvalidSchedule,
    MemoryStore,
    RedisStore,
    ScheduleInfo,
    ScheduleNotFound,
    Status,
    Store,
    WorkflowNotFound,
    workflow,
)
from durable._client._schedules import Scheduler, slot_execution_id
from durable._history import StepKind, StepRecord, StepStatus
from durable._records import ExecutionId
from durable._store._base import NewExecution
from durable._store._schedules_base import ScheduleStore
from durable._workflow._context import WorkflowContext


@workflow("sched.echo")
async def echo(ctx: WorkflowContext, value: Any) -> Any:
    return value


T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
MIN = 60_000
HOUR = 3_600_000


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = ms(start)

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(T0)
    monkeypatch.setattr(schedules_mod, "_wall_ms", c)
    return c


@pytest.fixture
def durable(store: Store) -> Durable:
    return Durable(store=store, workflows=[echo], actor="tester")


@pytest.fixture
async def other_stores(store: Store, request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Store]]:
    """More connections to the same data: new RedisStore clients, or the same MemoryStore."""
    made: list[Store] = []

    def make() -> Store:
        if isinstance(store, MemoryStore):
            return store
        s = RedisStore.from_url(request.getfixturevalue("redis_url"))
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()


async def executions(d: Durable) -> dict[str, Status]:
    return {r.execution_id: r.status for r in await d.list_executions(workflow="sched.echo", limit=1000)}


async def audit_kinds(d: Durable, sid: str) -> list[str]:
    return [e.kind for e in await d.list_schedule_audit(sid)]


# ---------------------------------------------------------------------------- exactly once


async def test_each_slot_fires_once_with_several_pollers(
    durable: Durable, clock: Clock, other_stores: Callable[[], Store]
) -> None:
    await durable.ensure_schedule(echo, {"n": 1}, id="every-minute", cron="* * * * *")
    await durable.ensure_schedule(echo, {"n": 2}, id="every-2-min", interval=120)
    pollers = [Scheduler(Durable(store=other_stores(), workflows=[echo])) for _ in range(5)]
    now = ms(T0)
    for _ in range(10):
        now += MIN
        # All pollers race for the same due slots at the same instant.
        results = await asyncio.gather(*(p.tick(now) for p in pollers))
        assert all(r is not None for r in results)
    got = await executions(durable)
    expected_minutes = {slot_execution_id("every-minute", ms(T0) + i * MIN) for i in range(1, 11)}
    expected_pairs = {slot_execution_id("every-2-min", ms(T0) + i * 2 * MIN) for i in range(1, 6)}
    assert set(got) == expected_minutes | expected_pairs
    a = await durable.get_schedule("every-minute")
    b = await durable.get_schedule("every-2-min")
    assert (a.fired_count, a.skipped_count) == (10, 0)
    assert (b.fired_count, b.skipped_count) == (5, 0)
    assert (await audit_kinds(durable, "every-minute")).count("fired") == 10
    assert a.last_execution_id == slot_execution_id("every-minute", now)
    assert a.next_run_at == datetime.fromtimestamp((now + MIN) / 1000, UTC)


async def test_a_poller_that_dies_after_claiming_only_delays_the_slot(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="nightly", cron="0 3 * * *")
    store = durable.store
    assert isinstance(store, ScheduleStore)
    slot = ms(datetime(2024, 5, 2, 3, tzinfo=UTC))
    claims = await store.claim_due_schedules(slot, 30_000)
    assert [c.schedule_id for c in claims] == ["nightly"]
    # ... and the claimer dies. Meanwhile the slot is not due for anybody else:
    assert await store.claim_due_schedules(slot + 1000, 30_000) == []
    scheduler = Scheduler(durable)
    assert await scheduler.tick(slot + 1000) == slot + 30_000
    # After the claim times out, another poller fires it, with the slot's own execution id.
    next_due = await scheduler.tick(slot + 31_000)
    assert next_due == slot + 24 * HOUR
    assert list(await executions(durable)) == ["nightly@2024-05-02T03:00:00Z"]
    # The dead poller's late commit changes nothing.
    assert not await store.commit_schedule_slot(
        "nightly", claims[0].token, next_ms=slot, now_ms=slot, fired=1
    )
    info = await durable.get_schedule("nightly")
    assert info.fired_count == 1
    assert info.next_run_at == datetime(2024, 5, 3, 3, tzinfo=UTC)


async def test_a_slot_retried_after_its_run_started_starts_nothing_new(
    durable: Durable, clock: Clock
) -> None:
    await durable.ensure_schedule(echo, None, id="s", interval=60)
    slot = ms(T0) + MIN
    # A previous poller started the slot's execution and died before committing.
    await durable.start(echo, None, execution_id=slot_execution_id("s", slot))
    await Scheduler(durable).tick(slot + 5)
    assert list(await executions(durable)) == [slot_execution_id("s", slot)]
    assert (await durable.get_schedule("s")).fired_count == 1


async def test_a_slot_started_meanwhile_with_an_older_input_is_kept_not_crashed_on(
    durable: Durable, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await durable.ensure_schedule(echo, {"n": 2}, id="s", interval=60)
    slot = ms(T0) + MIN
    eid = slot_execution_id("s", slot)
    # Another attempt at the slot started it from the schedule's earlier input, after this poller
    # looked for it (the lookup is made to miss) and before it starts it: the start conflicts.
    await durable.start(echo, {"n": 1}, execution_id=eid)
    real_get = durable.store.get_execution

    async def get_missing_slot(execution_id: str) -> Any:
        return None if execution_id == eid else await real_get(execution_id)

    monkeypatch.setattr(durable.store, "get_execution", get_missing_slot)
    assert await Scheduler(durable).tick(slot + 5) == slot + MIN
    monkeypatch.undo()
    record = await durable.get_execution(eid)
    assert record is not None and record.input == {"n": 1}
    info = await durable.get_schedule("s")
    assert (info.fired_count, info.last_execution_id) == (1, eid)
    entries = await durable.list_schedule_audit("s")
    conflict = [e for e in entries if e.kind == "conflict"]
    assert len(conflict) == 1 and "already started with a different input" in conflict[0].message
    assert conflict[0].data == {"reason": "input", "existing_workflow_id": "sched.echo"}


# ---------------------------------------------------------------------------- DST through the scheduler


@pytest.mark.parametrize(
    ("tz", "cron", "start", "days"),
    [
        (
            "Europe/Paris",
            "30 2 * * *",
            datetime(2024, 3, 29, tzinfo=UTC),
            ["03-29", "03-30", "03-31", "04-01"],
        ),
        (
            "Europe/Paris",
            "30 2 * * *",
            datetime(2024, 10, 25, tzinfo=UTC),
            ["10-25", "10-26", "10-27", "10-28"],
        ),
        (
            "America/New_York",
            "30 1 * * *",
            datetime(2024, 11, 1, 12, tzinfo=UTC),
            ["11-02", "11-03", "11-04", "11-05"],
        ),
        (
            "America/New_York",
            "30 2 * * *",
            datetime(2024, 3, 8, 12, tzinfo=UTC),
            ["03-09", "03-10", "03-11", "03-12"],
        ),
    ],
)
async def test_daily_schedule_fires_once_a_day_across_dst(
    durable: Durable, clock: Clock, tz: str, cron: str, start: datetime, days: list[str]
) -> None:
    clock.now = ms(start)
    await durable.ensure_schedule(echo, None, id="daily", cron=cron, timezone=tz)
    scheduler = Scheduler(durable)
    due = await scheduler.tick(clock.now)
    fired_local = []
    while due is not None and len(fired_local) < 4:
        # Poll at the due time and a few more times in the following two hours (the repeated hour).
        for late in (0, 1000, 30 * MIN, HOUR, 2 * HOUR - 1):
            await scheduler.tick(due + late)
        info = await durable.get_schedule("daily")
        assert info.last_run_at is not None
        fired_local.append(info.last_run_at.astimezone(ZoneInfo(tz)))
        assert info.next_run_at is not None
        due = ms(info.next_run_at)
    assert [d.strftime("%m-%d") for d in fired_local] == days
    info = await durable.get_schedule("daily")
    assert info.fired_count == 4
    assert info.skipped_count == 0
    assert len(await executions(durable)) == 4


# ---------------------------------------------------------------------------- overlap


async def test_overlap_forbid_skips_while_the_previous_run_is_active(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="f", interval=60, overlap="forbid")
    s = Scheduler(durable)
    first = ms(T0) + MIN
    await s.tick(first)
    # Nobody runs the first execution: it stays pending, so the next slot is skipped.
    await s.tick(first + MIN)
    assert list(await executions(durable)) == [slot_execution_id("f", first)]
    info = await durable.get_schedule("f")
    assert (info.fired_count, info.skipped_count) == (1, 1)
    entries = await durable.list_schedule_audit("f")
    assert entries[-1].kind == "skipped"
    assert "overlap forbid" in entries[-1].message
    # Once it has finished, the next slot runs.
    await durable.cancel(slot_execution_id("f", first), "done for the test")
    await s.tick(first + 2 * MIN)
    assert slot_execution_id("f", first + 2 * MIN) in await executions(durable)


async def test_overlap_replace_cancels_the_previous_run(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="r", interval=60, overlap="replace")
    s = Scheduler(durable)
    first = ms(T0) + MIN
    await s.tick(first)
    await s.tick(first + MIN)
    got = await executions(durable)
    assert got == {
        slot_execution_id("r", first): Status.CANCELLED,
        slot_execution_id("r", first + MIN): Status.PENDING,
    }
    assert "replaced" in await audit_kinds(durable, "r")
    audit = await durable.list_audit_entries(slot_execution_id("r", first))
    assert any(e.actor == "schedule:r" for e in audit)


async def test_overlap_replace_cancels_the_replaced_runs_children_too(durable: Durable, clock: Clock) -> None:
    # The replaced run had started a child (`ctx.start_child`, policy cancel): it goes with its parent.
    await durable.ensure_schedule(echo, None, id="rc", interval=60, overlap="replace")
    s = Scheduler(durable)
    first = ms(T0) + MIN
    await s.tick(first)
    parent = slot_execution_id("rc", first)
    child = f"{parent}:__child:1"
    store = durable.store
    await store.create_execution(
        NewExecution(
            execution_id=ExecutionId(child), workflow_id="sched.echo", input=b"null", now_ms=first,
            parent=parent, on_parent_cancel="cancel",
        )
    )  # fmt: skip
    started = {"execution_id": child, "workflow": "sched.echo", "on_parent_cancel": "cancel"}
    record = StepRecord("__child:1", 1, StepKind.CHILD, StepStatus.COMPLETED, result=started, at_ms=first)
    await store.skip_step(ExecutionId(parent), "__child:1", record.encode(), "test", first)
    await s.tick(first + MIN)
    got = await executions(durable)
    assert got[parent] == Status.CANCELLED and got[child] == Status.CANCELLED


async def test_overlap_allow_runs_side_by_side(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="a", interval=60)
    s = Scheduler(durable)
    for i in (1, 2, 3):
        await s.tick(ms(T0) + i * MIN)
    got = await executions(durable)
    assert len(got) == 3
    assert set(got.values()) == {Status.PENDING}


# ---------------------------------------------------------------------------- outages


async def test_after_an_outage_only_the_latest_slot_runs(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="q", cron="*/15 * * * *")
    # Workers were down from 10:15 to 12:05: slots 10:15 ... 12:00 (8 of them) were missed.
    await Scheduler(durable).tick(ms(T0) + 2 * HOUR + 5 * MIN)
    assert list(await executions(durable)) == ["q@2024-05-01T12:00:00Z"]
    info = await durable.get_schedule("q")
    assert (info.fired_count, info.skipped_count) == (1, 7)
    assert info.next_run_at == datetime(2024, 5, 1, 12, 15, tzinfo=UTC)
    assert await audit_kinds(durable, "q") == ["created", "skipped", "fired"]


async def test_a_slot_missed_by_more_than_the_deadline_is_skipped_and_recorded(
    durable: Durable, clock: Clock
) -> None:
    await durable.ensure_schedule(echo, None, id="d", cron="*/15 * * * *", starting_deadline_seconds=60)
    s = Scheduler(durable)
    await s.tick(ms(T0) + 2 * HOUR + 5 * MIN)  # the latest slot (12:00) is 5 minutes late
    assert await executions(durable) == {}
    info = await durable.get_schedule("d")
    assert (info.fired_count, info.skipped_count) == (0, 8)
    entries = await durable.list_schedule_audit("d")
    assert [e.kind for e in entries] == ["created", "skipped", "skipped"]
    assert "starting deadline" in entries[-1].message
    # The schedule goes on at the next slot, within the deadline.
    await s.tick(ms(datetime(2024, 5, 1, 12, 15, 30, tzinfo=UTC)))
    assert list(await executions(durable)) == ["d@2024-05-01T12:15:00Z"]


async def test_a_slot_late_within_the_deadline_fires_once_on_recovery(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="w", interval=3600, starting_deadline_seconds=600)
    s = Scheduler(durable)
    slot = ms(T0) + HOUR
    await s.tick(slot + 5 * MIN)
    await s.tick(slot + 6 * MIN)
    await s.tick(slot + 7 * MIN)
    assert list(await executions(durable)) == [slot_execution_id("w", slot)]
    info = await durable.get_schedule("w")
    assert (info.fired_count, info.skipped_count) == (1, 0)


# ---------------------------------------------------------------------------- pause, resume, update, remove


async def test_pause_and_resume(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="p", interval=60)
    s = Scheduler(durable)
    info = await durable.pause_schedule("p", actor="ops")
    assert info.paused and info.next_run_at is None
    assert await s.tick(ms(T0) + 10 * MIN) is None
    assert await executions(durable) == {}
    clock.now = ms(T0) + 10 * MIN + 30_000
    info = await durable.resume_schedule("p", actor="ops")
    assert not info.paused
    # Slots that passed while paused do not run; the next one does.
    assert info.next_run_at == datetime(2024, 5, 1, 10, 11, tzinfo=UTC)
    assert await s.tick(clock.now) == ms(T0) + 11 * MIN
    await s.tick(ms(T0) + 11 * MIN)
    assert list(await executions(durable)) == ["p@2024-05-01T10:11:00Z"]
    entries = await durable.list_schedule_audit("p")
    assert [(e.kind, e.actor) for e in entries][:3] == [
        ("created", "tester"),
        ("paused", "ops"),
        ("resumed", "ops"),
    ]
    # Pausing twice changes nothing.
    before = await durable.pause_schedule("p")
    again = await durable.pause_schedule("p")
    assert before == again


async def test_ensure_is_idempotent_and_updates_in_place(durable: Durable, clock: Clock) -> None:
    first = await durable.ensure_schedule(echo, {"v": 1}, id="e", cron="0 * * * *", timezone="Europe/Paris")
    assert isinstance(first, ScheduleInfo)
    assert first.next_run_at == datetime(2024, 5, 1, 11, tzinfo=UTC)
    clock.now += 5 * MIN
    same = await durable.ensure_schedule(echo, {"v": 1}, id="e", cron="0 * * * *", timezone="Europe/Paris")
    assert same == first
    assert await audit_kinds(durable, "e") == ["created"]
    await Scheduler(durable).tick(ms(T0) + HOUR)
    # New input: updated in place; counters, last run and the next slot stay.
    changed = await durable.ensure_schedule(echo, {"v": 2}, id="e", cron="0 * * * *", timezone="Europe/Paris")
    assert changed.input == {"v": 2}
    assert changed.fired_count == 1
    assert changed.last_execution_id == "e@2024-05-01T11:00:00Z"
    assert changed.next_run_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert changed.created_at == first.created_at
    # New timing: the next slot is recomputed.
    clock.now = ms(T0) + HOUR + MIN
    retimed = await durable.ensure_schedule(echo, {"v": 2}, id="e", interval=600, overlap="forbid")
    assert (retimed.cron, retimed.interval_seconds, retimed.overlap) == (None, 600.0, "forbid")
    assert retimed.next_run_at == datetime(2024, 5, 1, 11, 10, tzinfo=UTC)
    assert await audit_kinds(durable, "e") == ["created", "fired", "updated", "updated"]
    assert len(await durable.list_schedules()) == 1


async def test_ensure_keeps_an_operator_pause(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="k", interval=60)
    await durable.pause_schedule("k")
    info = await durable.ensure_schedule(echo, {"new": True}, id="k", interval=60)
    assert info.paused and info.input == {"new": True}


async def test_update_schedule(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="u", interval=60)
    info = await durable.update_schedule("u", cron="30 * * * *", timezone="Asia/Kolkata", actor="ops")
    assert (info.cron, info.interval_seconds, info.timezone) == ("30 * * * *", None, "Asia/Kolkata")
    # 10:00 UTC is 15:30 in Kolkata: the next hh:30 there is 16:30 = 11:00 UTC.
    assert info.next_run_at == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    info = await durable.update_schedule("u", starting_deadline_seconds=30, input=[1, 2], paused=True)
    assert (info.starting_deadline_seconds, info.input, info.paused) == (30.0, [1, 2], True)
    info = await durable.update_schedule("u", paused=False)
    assert not info.paused
    with pytest.raises(ScheduleNotFound):
        await durable.update_schedule("nope", paused=True)


async def test_remove(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="gone", interval=60)
    await durable.remove_schedule("gone", actor="ops")
    assert await Scheduler(durable).tick(ms(T0) + 5 * MIN) is None
    assert await executions(durable) == {}
    for call in (
        durable.get_schedule("gone"),
        durable.remove_schedule("gone"),
        durable.pause_schedule("gone"),
        durable.resume_schedule("gone"),
    ):
        with pytest.raises(ScheduleNotFound, match="schedule 'gone' does not exist"):
            await call


async def test_one_time_schedules(durable: Durable, clock: Clock) -> None:
    sid = await durable.schedule(echo, {"once": True}, delay=timedelta(minutes=5))
    at_sid = await durable.schedule(echo, None, at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="lunch")
    assert at_sid == "lunch"
    info = await durable.get_schedule(sid)
    assert info.one_time and info.next_run_at == T0 + timedelta(minutes=5)
    s = Scheduler(durable)
    assert await s.tick(ms(T0) + 4 * MIN) == ms(T0) + 5 * MIN
    await s.tick(ms(T0) + 5 * MIN)
    await s.tick(ms(T0) + 6 * MIN)
    done = await durable.get_schedule(sid)
    assert done.fired_count == 1 and done.next_run_at is None
    assert await s.tick(ms(T0) + 3 * HOUR) is None
    assert set(await executions(durable)) == {f"{sid}@2024-05-01T10:05:00Z", "lunch@2024-05-01T12:30:00Z"}
    # A time already past runs as soon as a scheduler polls.
    clock.now = ms(T0) + 4 * HOUR
    late = await durable.schedule(echo, None, at=datetime(2024, 5, 1, 13, tzinfo=UTC))
    await s.tick(clock.now)
    assert (await durable.get_schedule(late)).fired_count == 1


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"id": "x", "cron": "not a cron"}, "invalid cron expression"),
        ({"id": "x", "cron": "0 * * * *", "timezone": "Nowhere/Land"}, "unknown time zone 'Nowhere/Land'"),
        ({"id": "x", "cron": "0 * * * *", "interval": 60}, "exactly one of cron"),
        ({"id": "x"}, "exactly one of cron"),
        ({"id": "x", "interval": 0.01}, "at least 1 second"),
        ({"id": "x", "interval": 60, "overlap": "sometimes"}, "overlap must be one of"),
        ({"id": "has space", "interval": 60}, "invalid schedule id"),
        ({"id": "due", "interval": 60}, "invalid schedule id"),
    ],
)
async def test_invalid_schedules_change_nothing(
    durable: Durable, clock: Clock, kwargs: dict[str, Any], needle: str
) -> None:
    await durable.ensure_schedule(echo, {"keep": 1}, id="x", cron="0 * * * *")
    before = await durable.get_schedule("x")
    with pytest.raises(InvalidSchedule) as info:
        await durable.ensure_schedule(echo, {"keep": 2}, **kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message
    assert await durable.list_schedules() == [before]
    with pytest.raises(InvalidSchedule):
        await durable.update_schedule("x", cron="61 * * * *")
    with pytest.raises(InvalidSchedule):
        await durable.update_schedule("x", cron="0 * * * *", interval=60)
    assert await durable.get_schedule("x") == before


async def test_one_time_validation(durable: Durable, clock: Clock) -> None:
    with pytest.raises(InvalidSchedule, match="exactly one of at="):
        await durable.schedule(echo, None)
    with pytest.raises(InvalidSchedule, match="aware datetime"):
        await durable.schedule(echo, None, at=datetime(2024, 5, 1, 12))
    with pytest.raises(WorkflowNotFound):
        await durable.ensure_schedule("sched.nope", None, id="w", interval=60)
    assert await durable.list_schedules() == []


# ---------------------------------------------------------------------------- store details


async def test_a_definition_write_voids_claims_in_flight(durable: Durable, clock: Clock) -> None:
    await durable.ensure_schedule(echo, None, id="v", interval=60)
    store = durable.store
    assert isinstance(store, ScheduleStore)
    [claim] = await store.claim_due_schedules(ms(T0) + MIN, 30_000)
    await durable.update_schedule("v", interval=120)
    assert not await store.commit_schedule_slot("v", claim.token, next_ms=None, now_ms=ms(T0) + MIN, fired=1)
    info = await durable.get_schedule("v")
    assert info.fired_count == 0 and info.next_run_at == datetime(2024, 5, 1, 10, 2, tzinfo=UTC)


async def test_wait_schedule_change_wakes_on_writes(durable: Durable, clock: Clock) -> None:
    store = durable.store
    assert isinstance(store, ScheduleStore)
    await store.wait_schedule_change(0)  # prime the cursor
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiter = asyncio.create_task(store.wait_schedule_change(5.0))
    await asyncio.sleep(0.05)
    await durable.ensure_schedule(echo, None, id="wake", interval=60)
    await asyncio.wait_for(waiter, 2.0)
    assert loop.time() - started < 2.0


async def test_the_worker_fires_schedules(store: Store) -> None:
    d = Durable(store=store, workflows=[echo])
    sid = await d.schedule(echo, {"hello": "world"}, delay=0.2)
    async with d.worker(concurrency=4, max_idle_poll=0.1):
        info = await d.get_schedule(sid)
        for _ in range(100):
            info = await d.get_schedule(sid)
            if info.last_execution_id:
                break
            await asyncio.sleep(0.05)
        assert info.last_execution_id is not None
        assert await d.wait(info.last_execution_id, timeout=5) == {"hello": "world"}
