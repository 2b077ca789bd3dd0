"""`ctx.patched` / `ctx.deprecate_patch`, and the replay check, on both stores.

One workflow id served by three generations of code (v1, v2 with a patch, v3 with the patch
deprecated), each a `WorkflowDef` of its own, as a new image would bring it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from durable import (
    Durable,
    ExecutionHistory,
    Status,
    Store,
    WorkflowContext,
    WorkflowDef,
    check_replay,
    load_histories,
)
from durable._workflow._shapes import describe_workflow
from polling import until

WID = "patch.order"
GOLDEN = Path(__file__).parent / "golden" / "patch_order_v1_waiting.jsonl"


def _step(name: str) -> Callable[[], str]:
    return lambda: name


def defn(fn: Callable[[WorkflowContext, Any], Awaitable[Any]]) -> WorkflowDef:
    return WorkflowDef(workflow_id=WID, fn=fn)


async def v1(ctx: WorkflowContext, order: Any) -> Any:
    await ctx.step("reserve", _step("reserve"))
    await ctx.sleep(0)
    await ctx.wait_for_signal("go", step_id="approve")
    return [await ctx.step("ship", _step("ship"))]


async def v2(ctx: WorkflowContext, order: Any) -> Any:
    taken = []
    await ctx.step("reserve", _step("reserve"))
    if ctx.patched("fraud-check"):  # new: a check before the sleep
        taken.append(await ctx.step("fraud", _step("fraud")))
    await ctx.sleep(0)
    await ctx.wait_for_signal("go", step_id="approve")
    if ctx.patched("gift-wrap"):  # new: a step after the signal
        taken.append(await ctx.step("wrap", _step("wrap")))
    assert ctx.patched("fraud-check") == ("fraud" in taken)  # one answer per run
    taken.append(await ctx.step("ship", _step("ship")))
    return taken


async def v3(ctx: WorkflowContext, order: Any) -> Any:
    # Every execution from before fraud-check is gone: the check is unconditional now.
    await ctx.step("reserve", _step("reserve"))
    ctx.deprecate_patch("fraud-check")
    taken = [await ctx.step("fraud", _step("fraud"))]
    await ctx.sleep(0)
    await ctx.wait_for_signal("go", step_id="approve")
    if ctx.patched("gift-wrap"):
        taken.append(await ctx.step("wrap", _step("wrap")))
    taken.append(await ctx.step("ship", _step("ship")))
    return taken


# Ways a deploy breaks v1's in-flight executions.
async def reordered(ctx: WorkflowContext, order: Any) -> Any:
    await ctx.sleep(0)
    await ctx.step("reserve", _step("reserve"))


async def renamed(ctx: WorkflowContext, order: Any) -> Any:
    await ctx.step("reserve-stock", _step("reserve"))


async def no_sleep(ctx: WorkflowContext, order: Any) -> Any:
    await ctx.step("reserve", _step("reserve"))
    await ctx.wait_for_signal("go", step_id="approve")


async def unpatched(ctx: WorkflowContext, order: Any) -> Any:
    # v2 without the patch guard: the new step sits where v1 recorded its sleep.
    await ctx.step("reserve", _step("reserve"))
    await ctx.step("fraud", _step("fraud"))
    await ctx.sleep(0)


async def run_on(store: Store, code: Any, action: Callable[[Durable], Awaitable[Any]]) -> Any:
    """Run `action` while a worker serves `code` (one image's worth of workflow code)."""
    d = Durable(store=store, workflows=[defn(code)])
    async with d.worker(concurrency=4, max_idle_poll=0.05):
        return await action(d)


async def history(store: Store, eid: str) -> ExecutionHistory:
    d = Durable(store=store, workflows=[])
    (found,) = [h for h in await load_histories(d, workflow_id=WID, limit=100) if h.execution_id == eid]
    return found


async def test_patched_takes_the_old_branch_on_old_histories_and_the_new_one_on_new_code(
    store: Store,
) -> None:
    async def start_waiting(d: Durable) -> str:
        eid = await d.start(WID, {"id": 1}, execution_id="old")
        await until(store, eid, Status.WAITING)
        return eid

    old = await run_on(store, v1, start_waiting)

    async def finish_old_and_run_new(d: Durable) -> tuple[Any, Any]:
        await d.signal(old, "go", True)
        new = await d.start(WID, {"id": 2}, execution_id="new")
        await until(store, new, Status.WAITING)
        await d.signal(new, "go", True)
        return await d.wait(old, timeout=10), await d.wait(new, timeout=10)

    old_result, new_result = await run_on(store, v2, finish_old_and_run_new)
    # The old execution recorded reserve and the sleep before fraud-check existed: old branch there;
    # it reached gift-wrap on the new code: new branch.
    assert old_result == ["wrap", "ship"]
    assert new_result == ["fraud", "wrap", "ship"]

    new = "new"
    old_steps = (await history(store, old)).steps
    new_steps = (await history(store, new)).steps
    assert "__patch:fraud-check" not in old_steps and "__patch:gift-wrap" in old_steps
    assert {"__patch:fraud-check", "__patch:gift-wrap"} <= set(new_steps)
    assert json.loads(new_steps["__patch:fraud-check"])["kind"] == "patch"

    # The markers make later replays answer the same: both histories replay on v2.
    for eid in (old, new):
        result = await check_replay(await history(store, eid), {WID: defn(v2)})
        assert result.ok, result.summary()
    # v3 deprecated fraud-check: histories with the marker (new) replay; old ones, without the check,
    # diverge where v3 calls it unconditionally (which is why deprecation waits for them to finish).
    assert (await check_replay(await history(store, new), {WID: defn(v3)})).ok
    diverged = await check_replay(await history(store, old), {WID: defn(v3)})
    assert (diverged.ok, diverged.position, diverged.expected, diverged.actual) == (
        False,
        2,
        "__sleep:2",
        "fraud",
    )

    async def run_v3(d: Durable) -> Any:
        eid = await d.start(WID, {"id": 3}, execution_id="v3")
        await until(store, eid, Status.WAITING)
        await d.signal(eid, "go", True)
        return await d.wait(eid, timeout=10)

    assert await run_on(store, v3, run_v3) == ["fraud", "wrap", "ship"]
    v3_steps = (await history(store, "v3")).steps
    assert "__patch:fraud-check" not in v3_steps  # deprecate_patch records nothing
    assert (await check_replay(await history(store, "v3"), {WID: defn(v3)})).ok


async def test_replay_check_finds_what_breaks_in_flight_executions(store: Store) -> None:
    async def start_waiting(d: Durable) -> str:
        eid = await d.start(WID, {"id": 1}, execution_id="inflight")
        await until(store, eid, Status.WAITING)
        return eid

    eid = await run_on(store, v1, start_waiting)
    recorded = await history(store, eid)
    assert recorded.status == "waiting" and set(recorded.steps) == {"reserve", "__sleep:2", "approve"}

    cases: dict[Any, tuple[int, str, str]] = {
        reordered: (1, "reserve", "__sleep:1"),
        renamed: (1, "reserve", "reserve-stock"),
        no_sleep: (2, "__sleep:2", "approve"),
        unpatched: (2, "__sleep:2", "fraud"),
    }
    for code, (position, expected, actual) in cases.items():
        result = await check_replay(recorded, {WID: defn(code)})
        assert (result.ok, result.position, result.expected, result.actual) == (
            False,
            position,
            expected,
            actual,
        )
        assert result.summary() == f"diverged at position {position}: expected {expected!r}, got {actual!r}"
    for code in (v1, v2):
        result = await check_replay(recorded, {WID: defn(code)})
        assert result.ok and result.summary() == "ok", result.summary()
    missing = await check_replay(recorded, {})
    assert not missing.ok and missing.error == f"workflow {WID!r} is not registered by the loaded code"
    # A replay runs no step body and writes nothing.
    assert (await history(store, eid)).steps == recorded.steps


async def test_a_call_removed_from_the_end_of_a_finished_history_is_a_divergence() -> None:
    from durable import MemoryStore

    store = MemoryStore()

    async def finish(d: Durable) -> str:
        eid = await d.start(WID, None, execution_id="done")
        await until(store, eid, Status.WAITING)
        await d.signal(eid, "go", True)
        await d.wait(eid, timeout=10)
        return eid

    await run_on(store, v1, finish)
    done = await history(store, "done")
    assert done.status == "completed"

    async def shorter(ctx: WorkflowContext, order: Any) -> Any:
        await ctx.step("reserve", _step("reserve"))
        await ctx.sleep(0)
        await ctx.wait_for_signal("go", step_id="approve")

    result = await check_replay(done, {WID: defn(shorter)})
    assert (result.ok, result.position, result.expected, result.actual) == (False, 4, "ship", None)
    assert result.summary() == "diverged at position 4: expected 'ship', got the workflow returned"
    assert (await check_replay(done, {WID: defn(v1)})).ok


async def test_golden_v1_history_replays_on_v2_with_the_patch_and_not_without() -> None:
    if os.environ.get("UPDATE_GOLDEN") or not GOLDEN.exists():
        from durable import MemoryStore

        store = MemoryStore()

        async def start_waiting(d: Durable) -> str:
            eid = await d.start(WID, {"id": 7}, execution_id="golden")
            await until(store, eid, Status.WAITING)
            return eid

        await run_on(store, v1, start_waiting)
        GOLDEN.write_text((await history(store, "golden")).to_json() + "\n")
    golden = ExecutionHistory.from_json(GOLDEN.read_text())
    assert golden.status == "waiting" and golden.input == {"id": 7}
    assert (await check_replay(golden, {WID: defn(v2)})).ok
    broken = await check_replay(golden, {WID: defn(unpatched)})
    assert (broken.position, broken.expected, broken.actual) == (2, "__sleep:2", "fraud")
    assert ExecutionHistory.from_json(golden.to_json()) == golden


@pytest.mark.parametrize("bad", ["", "has space", "x" * 201, "semi;colon", 7])
async def test_a_bad_change_id_is_a_one_line_error(bad: Any) -> None:
    from durable import MemoryStore

    async def code(ctx: WorkflowContext, order: Any) -> Any:
        return ctx.patched(bad)

    store = MemoryStore()
    d = Durable(store=store, workflows=[defn(code)])
    async with d.worker(concurrency=1, max_idle_poll=0.05):
        eid = await d.start(WID, None)
        with pytest.raises(Exception) as raised:
            await d.wait(eid, timeout=10)
    record = await store.get_execution(eid)
    assert record is not None and record.error is not None
    assert record.error["message"] == (
        f"patch change id must be 1 to 200 characters of letters, digits and _ . : -, got {bad!r}"
    )
    assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match="patch change id"):
        await code_deprecating(bad)


async def code_deprecating(bad: Any) -> None:
    from durable._workflow._context import WorkflowContext as Ctx

    Ctx(None, execution_id="e", workflow_id=WID, history={}).deprecate_patch(bad)


def test_describe_shows_the_patch_and_the_patched_branch() -> None:
    shape = describe_workflow(defn(v2), {"id": 1})
    kinds = [(n["kind"], n["id"]) for n in shape.nodes]
    assert kinds[:3] == [("step", "reserve"), ("patch", "__patch:fraud-check"), ("step", "fraud")]


def test_history_lines_reject_what_is_not_a_history() -> None:
    for line, message in [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"execution_id": "e", "workflow_id": "w"}', "'status' must be a non-empty string"),
        ('{"execution_id": "e", "workflow_id": "w", "status": "waiting", "steps": []}', "'steps' must be"),
        (
            '{"execution_id": "e", "workflow_id": "w", "status": "waiting", "steps": {}, "version": 3}',
            "'version' must be a string or null",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            ExecutionHistory.from_json(line)
