"""`Durable.schedules`, the schedules client, and the `Durable` methods of earlier versions that alias it.

The schedules' behaviour (firing, overlap, deadlines, daylight saving) is in `test_schedules.py`, which
goes through the aliases; here the new surface itself, and that every alias is exactly its method.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import durable._client._schedules as schedules_mod
from durable import Durable, MemoryStore, ScheduleNotFound, Store, workflow
from durable._client._schedules import ScheduleClient
from durable._workflow._context import WorkflowContext

# Old `Durable` method -> the `Durable.schedules` method it stands for.
ALIASES = {
    "schedule": "once",
    "ensure_schedule": "ensure",
    "update_schedule": "update",
    "pause_schedule": "pause",
    "resume_schedule": "resume",
    "get_schedule": "get",
    "list_schedules": "list",
    "list_schedule_audit": "audit",
    "remove_schedule": "remove",
}

T0 = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


@workflow("sched.client.echo")
async def echo(ctx: WorkflowContext, value: Any) -> Any:
    return value


@workflow("sched.client.other")
async def other(ctx: WorkflowContext, value: Any) -> Any:
    return value


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedules_mod, "_wall_ms", lambda: int(T0.timestamp() * 1000))


async def test_the_schedules_client(store: Store) -> None:
    d = Durable(store=store, workflows=[echo], actor="tester")
    schedules = d.schedules
    assert isinstance(schedules, ScheduleClient)

    hourly = await schedules.ensure(echo, {"n": 1}, id="hourly", cron="0 * * * *")
    assert (hourly.workflow_id, hourly.input, hourly.cron) == ("sched.client.echo", {"n": 1}, "0 * * * *")
    assert hourly.next_run_at == datetime(2024, 5, 1, 11, tzinfo=UTC)
    assert await schedules.ensure(echo, {"n": 1}, id="hourly", cron="0 * * * *") == hourly
    once = await schedules.once("sched.client.echo", None, delay=timedelta(minutes=5))
    assert (await schedules.get(once)).one_time
    assert [i.schedule_id for i in await schedules.list()] == sorted(["hourly", once])

    updated = await schedules.update("hourly", interval=600, actor="ops")
    assert (updated.cron, updated.interval_seconds) == (None, 600)
    paused = await schedules.pause("hourly", actor="ops")
    assert paused.paused and paused.next_run_at is None
    assert not (await schedules.resume("hourly")).paused
    assert [(e.kind, e.actor) for e in await schedules.audit("hourly")] == [
        ("created", "tester"),
        ("updated", "ops"),
        ("paused", "ops"),
        ("resumed", "tester"),
    ]

    await schedules.remove("hourly")
    with pytest.raises(ScheduleNotFound):
        await schedules.get("hourly")
    assert [i.schedule_id for i in await schedules.list()] == [once]


async def test_trigger_starts_one_run_now_and_audits_it(store: Store) -> None:
    d = Durable(store=store, workflows=[echo], actor="tester")
    before = await d.schedules.ensure(echo, {"n": 2}, id="nightly", cron="0 3 * * *", overlap="forbid")
    await d.schedules.pause("nightly")
    eid = await d.schedules.trigger("nightly", actor="ops")
    assert eid == f"nightly@manual-{int(T0.timestamp() * 1000)}"
    async with d.worker(concurrency=2):
        assert await d.wait(eid, timeout=10) == {"n": 2}
    after = await d.schedules.get("nightly")
    # Outside its slots: paused stays paused, counters, last run and timing unchanged.
    assert after.paused and (after.fired_count, after.last_execution_id) == (0, None)
    assert after.cron == before.cron and after.overlap == "forbid"
    kinds = [(e.kind, e.actor) for e in await d.schedules.audit("nightly")]
    assert kinds[-1] == ("triggered", "ops") and eid in (await d.schedules.audit("nightly"))[-1].message
    # A client without the workflow's code triggers it too; an unknown schedule raises.
    bare = Durable(store=store, allow_unregistered=True)
    assert (await d.get_execution(await bare.schedules.trigger("nightly"))) is not None
    with pytest.raises(ScheduleNotFound):
        await d.schedules.trigger("missing")


async def test_schedules_resolve_workflows_as_their_client_does() -> None:
    d = Durable(workflows=[echo])
    await d.schedules.ensure(other, None, id="by-function", interval=60)
    # A workflow given by function joins the client's registry, so its worker serves it.
    assert d.lookup("sched.client.other") is not None and "sched.client.other" in d.registry


@pytest.mark.parametrize(("old", "new"), ALIASES.items())
async def test_each_old_method_forwards_to_schedules(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = Durable(workflows=[echo])
    assert inspect.signature(getattr(d, old)) == inspect.signature(getattr(d.schedules, new))
    assert getattr(Durable, old).__doc__.startswith(f"Alias of `schedules.{new}`")
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def recording(*args: Any, **kwargs: Any) -> str:
        calls.append((args, kwargs))
        return "answer"

    monkeypatch.setattr(d.schedules, new, recording)
    assert await getattr(d, old)("a", key="b") == "answer"
    assert calls == [(("a",), {"key": "b"})]


def test_every_old_schedule_method_is_kept() -> None:
    assert {name for name in dir(Durable) if "schedule" in name} == set(ALIASES)


async def test_a_store_without_schedules_still_serves_executions() -> None:
    class NoSchedules:
        """Every store call but none of the schedule part (a test double, say)."""

        def __init__(self, inner: Store) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    d = Durable(store=NoSchedules(MemoryStore()), workflows=[echo])  # type: ignore[arg-type]
    eid = await d.start(echo, 1)
    assert await d.get_execution(eid) is not None
    with pytest.raises(TypeError, match="does not support schedules"):
        await d.schedules.list()
