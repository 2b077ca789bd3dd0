"""Golden replay tests: recorded histories (tests/engine/golden/*.json) must replay, or fail with NonDeterminismError.

Regenerate a history after an intended change with `UPDATE_GOLDEN=1 pytest tests/engine/test_golden_replay.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from durable import NonDeterminismError, WorkflowContext, workflow
from durable.testing import record_history, replay_history

GOLDEN = Path(__file__).parent / "golden"


def reserve(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "reserved": True}


def finish(order_id: str, route: str) -> str:
    return f"{order_id} via {route}"


@workflow("golden.order")
async def order_v1(ctx: WorkflowContext, order_id: str) -> dict[str, Any]:
    reservation = await ctx.step("reserve", reserve, order_id)
    await ctx.sleep(0)
    approval = await ctx.wait_for_signal("golden.approve", step_id="approve")
    route = await ctx.switch(
        "route",
        approval["express"],
        [
            {"id": "express", "match": True, "run": lambda: "air"},
            {"id": "standard", "match": False, "run": lambda: "road"},
        ],
    )
    ctx.emit("golden.shipped", {"order_id": order_id})
    stamp = ctx.uuid4()
    done = await ctx.step("finish", finish, order_id, route)
    return {"reservation": reservation, "route": route, "done": done, "stamp": str(stamp)}


@workflow("golden.order.reordered")
async def order_reordered(ctx: WorkflowContext, order_id: str) -> Any:
    # The same steps in a different order: a deploy that changed the workflow under running executions.
    await ctx.wait_for_signal("golden.approve", step_id="approve")
    return await ctx.step("reserve", reserve, order_id)


@workflow("golden.order.inserted")
async def order_inserted(ctx: WorkflowContext, order_id: str) -> Any:
    await ctx.step("fraud-check", lambda: True)
    return await ctx.step("reserve", reserve, order_id)


@workflow("golden.order.no_sleep")
async def order_no_sleep(ctx: WorkflowContext, order_id: str) -> Any:
    await ctx.step("reserve", reserve, order_id)
    return await ctx.wait_for_signal("golden.approve", step_id="approve")


async def _golden(name: str) -> dict[str, Any]:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        history = await record_history(order_v1, "o-7", signals={"golden.approve": [{"express": True}]})
        replayed = await replay_history(order_v1, history, "o-7")
        data = {"workflow": "golden.order", "input": "o-7", "result": replayed.result, "history": history}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def test_recorded_history_replays_without_running_any_step() -> None:
    golden = await _golden("order_v1")
    replayed = await replay_history(order_v1, golden["history"], golden["input"])
    replayed.raise_error()
    assert replayed.outcome == "completed"
    assert replayed.result == golden["result"]
    assert replayed.result["route"] == "air"


@pytest.mark.parametrize(
    ("variant", "expected", "actual"),
    [
        (order_reordered, "reserve", "approve"),
        (order_inserted, "reserve", "fraud-check"),
        (order_no_sleep, "__sleep:2", "approve"),
    ],
)
async def test_changed_workflow_raises_non_determinism(variant: Any, expected: str, actual: str) -> None:
    golden = await _golden("order_v1")
    replayed = await replay_history(variant, golden["history"], golden["input"])
    assert replayed.outcome == "failed"
    with pytest.raises(NonDeterminismError) as info:
        replayed.raise_error()
    assert info.value.fields["expected"] == expected
    assert info.value.fields["actual"] == actual
    # Nothing was written for the diverged run: the history is the recorded one.
    assert replayed.history.keys() == golden["history"].keys()


async def test_incomplete_history_would_run_a_step_body() -> None:
    golden = await _golden("order_v1")
    partial = {k: v for k, v in golden["history"].items() if k != "finish"}
    replayed = await replay_history(order_v1, partial, golden["input"])
    assert replayed.outcome == "failed"
    assert "step body" in (replayed.error or {}).get("message", "")
