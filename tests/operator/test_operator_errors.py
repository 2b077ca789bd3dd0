"""Every bad-input path ends with a clear one-line reason in status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from durable import Durable
from operator_harness import EXAMPLES, Cluster, doc, fast_config, operator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def running(cluster: Cluster, redis_url: str, engine: Durable) -> AsyncIterator[Cluster]:
    async with operator(fast_config(cluster, redis_url, ref_grace_seconds=0.5)):
        await cluster.apply(EXAMPLES / "workflow.yaml")
        await cluster.status("durableworkflows", "process-order", lambda s: bool(s.get("conditions")))
        yield cluster


def _one_line(status: dict[str, Any]) -> str:
    message = str(status.get("message", ""))
    assert message and "\n" not in message and len(message) <= 300, message
    return message


async def test_unknown_workflow_ref(running: Cluster) -> None:
    await running.apply(
        doc("DurableExecution", "lost", {"workflowRef": "no-such-workflow", "input": {"id": 1}})
    )
    pending = await running.status(
        "durableexecutions", "lost", lambda s: s.get("reason") == "WorkflowNotFound"
    )
    assert pending["phase"] in ("Pending", "Failed")
    status = await running.status("durableexecutions", "lost", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "WorkflowNotFound"
    assert _one_line(status) == "DurableWorkflow 'no-such-workflow' not found in namespace 'default'"
    assert "executionId" not in status


async def test_bad_execution_spec_is_refused_by_the_operator(running: Cluster) -> None:
    # The emulator does not run the CRD schema: the operator's own model check must catch it.
    spec = {"workflowRef": "process-order", "executionId": "abc", "input": {"id": 1}}
    await running.apply(doc("DurableExecution", "both", spec))
    status = await running.status("durableexecutions", "both", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "InvalidSpec"
    assert "input cannot be given with executionId" in _one_line(status)


async def test_attach_to_unknown_execution(running: Cluster) -> None:
    await running.apply(
        doc("DurableExecution", "attach", {"workflowRef": "process-order", "executionId": "nope"})
    )
    status = await running.status("durableexecutions", "attach", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "ExecutionNotFound"
    assert _one_line(status) == "execution 'nope' does not exist in the store"


async def test_signal_to_unknown_execution_id(running: Cluster) -> None:
    await running.apply(doc("DurableSignal", "s1", {"executionId": "ghost", "signal": "orders.approved"}))
    status = await running.status("durablesignals", "s1", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "ExecutionNotFound"
    assert _one_line(status) == "execution 'ghost' does not exist"


async def test_signal_to_unknown_execution_ref(running: Cluster) -> None:
    await running.apply(doc("DurableSignal", "s2", {"executionRef": "ghost", "signal": "orders.approved"}))
    status = await running.status("durablesignals", "s2", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "ExecutionNotFound"
    assert _one_line(status) == "DurableExecution 'ghost' not found in namespace 'default'"


async def test_signal_to_finished_execution(running: Cluster, engine: Durable) -> None:
    eid = await engine.start("test.failing", {"id": 7}, execution_id="finished-one")
    with pytest.raises(Exception, match="card declined"):
        await engine.wait(eid, timeout=10)
    await running.apply(doc("DurableSignal", "late", {"executionId": eid, "signal": "orders.approved"}))
    status = await running.status("durablesignals", "late", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "ExecutionFinished"
    assert _one_line(status) == "execution 'finished-one' has already finished"


async def test_signal_with_oversized_payload(running: Cluster) -> None:
    payload = {"blob": "x" * 40000}
    await running.apply(doc("DurableSignal", "big", {"executionId": "x", "signal": "s", "payload": payload}))
    status = await running.status("durablesignals", "big", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "InvalidSpec"
    assert "payload is" in _one_line(status) and "the limit is 32768" in status["message"]


async def test_schedule_with_unknown_workflow_and_bad_spec(running: Cluster) -> None:
    await running.apply(doc("DurableSchedule", "orphan", {"workflowRef": "nope", "interval": "5m"}))
    status = await running.status(
        "durableschedules", "orphan", lambda s: s.get("reason") == "WorkflowNotFound"
    )
    assert _one_line(status) == "DurableWorkflow 'nope' not found in namespace 'default'"
    assert status["conditions"][0]["status"] == "False"
    spec = {"workflowRef": "process-order", "interval": "5m", "cron": "* * * * *"}
    await running.apply(doc("DurableSchedule", "both", spec))
    status = await running.status("durableschedules", "both", lambda s: s.get("reason") == "InvalidSpec")
    assert "exactly one of cron or interval must be set" in _one_line(status)


async def test_failed_execution_reports_its_error(running: Cluster) -> None:
    wf = {"workflowId": "test.failing", "mirror": "none"}
    await running.apply(doc("DurableWorkflow", "failing", wf))
    await running.status("durableworkflows", "failing", lambda s: bool(s.get("conditions")))
    await running.apply(doc("DurableExecution", "charge", {"workflowRef": "failing", "input": {"id": 9}}))
    status = await running.status("durableexecutions", "charge", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "WorkflowFailed"
    assert "card declined for order 9" in _one_line(status)
    assert status["error"]["message"]
    # The Event follows the status patch.
    events = await running.wait_for(
        lambda: [e for e in running.events() if e["reason"] == "Failed"], what="event"
    )
    assert events[0]["type"] == "Warning"


async def test_editing_the_input_of_a_started_execution_is_reported_not_applied(
    running: Cluster, engine: Durable
) -> None:
    # The CRD's CEL rule forbids this edit; the emulator (like an old CRD) lets it through.
    await running.apply(
        doc("DurableExecution", "edited", {"workflowRef": "process-order", "input": {"id": 1}})
    )
    started = await running.status("durableexecutions", "edited", lambda s: s.get("phase") == "Waiting")
    eid = started["executionId"]
    await running.apply(
        doc("DurableExecution", "edited", {"workflowRef": "process-order", "input": {"id": 2}})
    )
    status = await running.status(
        "durableexecutions", "edited", lambda s: s.get("reason") == "ExecutionConflict"
    )
    assert _one_line(status).startswith(f"spec.input changed after execution {eid} started")
    assert status["executionId"] == eid and status["phase"] == "Waiting"
    conflict = [c for c in status["conditions"] if c["type"] == "InputConflict"]
    assert [(c["status"], c["reason"]) for c in conflict] == [("True", "ExecutionConflict")]
    record = await engine.get_execution(eid)
    assert record is not None and record.input == {"id": 1} and record.run == 1
    assert any(e.get("reason") == "ExecutionConflict" for e in running.events())
    # Editing it back clears the condition; the execution never changed.
    await running.apply(
        doc("DurableExecution", "edited", {"workflowRef": "process-order", "input": {"id": 1}})
    )
    await running.status(
        "durableexecutions",
        "edited",
        lambda s: [c["status"] for c in s.get("conditions", []) if c["type"] == "InputConflict"] == ["False"],
    )
