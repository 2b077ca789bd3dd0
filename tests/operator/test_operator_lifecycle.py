"""Mirrors of executions started elsewhere, deletion, TTL, schedules, and an operator restart."""

from __future__ import annotations

import json

import pytest

from durable import Durable, ScheduleNotFound, Status
from durable_operator._runtime import mirror_name
from operator_harness import EXAMPLES, Cluster, doc, fast_config, operator

pytestmark = pytest.mark.timeout(90)


async def _workflow(cluster: Cluster, name: str, workflow_id: str, mirror: str) -> None:
    await cluster.apply(doc("DurableWorkflow", name, {"workflowId": workflow_id, "mirror": mirror}))
    await cluster.status("durableworkflows", name, lambda s: bool(s.get("conditions")))


async def test_sdk_executions_are_mirrored_by_policy(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await _workflow(cluster, "orders", "app.workflows.processOrder", "all")
        await _workflow(cluster, "failing", "test.failing", "failed")
        eid = await engine.start("app.workflows.processOrder", {"id": 5}, execution_id="sdk-order-5")
        name = mirror_name(eid)
        status = await cluster.status(
            name_plural := "durableexecutions", name, lambda s: s.get("phase") == "Waiting"
        )
        mirror = cluster.get(name_plural, name)
        assert mirror is not None
        assert mirror["spec"] == {"workflowRef": "orders", "executionId": eid, "cancelOnDelete": False}
        assert mirror["metadata"]["labels"]["durable.dev/mirror"] == "true"
        assert mirror["metadata"]["ownerReferences"][0]["name"] == "orders"
        assert status["executionId"] == eid and status["currentStep"] == "await-approval"
        await engine.signal(eid, "orders.approved", {"approver": "bob"})
        done = await cluster.status(name_plural, name, lambda s: s.get("phase") == "Succeeded")
        assert done["result"]["approver"] == "bob"

        # mirror: failed -> only the failed one shows up.
        bad = await engine.start("test.failing", {"id": 1}, execution_id="sdk-fail-1")
        failed = await cluster.status(name_plural, mirror_name(bad), lambda s: s.get("phase") == "Failed")
        assert "card declined" in failed["message"]
        # The workflow's counts follow.
        await cluster.status("durableworkflows", "failing", lambda s: s.get("failed") == 1)


async def test_deleting_a_running_execution_cancels_it(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await _workflow(cluster, "process-order", "app.workflows.processOrder", "none")
        await cluster.apply(EXAMPLES / "execution.yaml")
        status = await cluster.status(
            "durableexecutions", "order-1001", lambda s: s.get("phase") == "Waiting"
        )
        obj = cluster.get("durableexecutions", "order-1001")
        assert obj is not None and "durable.dev/finalizer" in obj["metadata"]["finalizers"]
        await cluster.delete("durableexecutions", "order-1001")
        await cluster.wait_for(
            lambda: cluster.get("durableexecutions", "order-1001") is None, what="deletion"
        )
        record = await engine.get_execution(status["executionId"])
        assert record is not None and record.status == Status.CANCELLED

        # cancelOnDelete: false leaves the execution running.
        await cluster.apply(
            doc(
                "DurableExecution",
                "keep",
                {"workflowRef": "process-order", "input": {"id": 2}, "cancelOnDelete": False},
            )
        )
        kept = await cluster.status("durableexecutions", "keep", lambda s: s.get("phase") == "Waiting")
        await cluster.delete("durableexecutions", "keep")
        await cluster.wait_for(lambda: cluster.get("durableexecutions", "keep") is None, what="deletion")
        record = await engine.get_execution(kept["executionId"])
        assert record is not None and record.status == Status.WAITING


async def test_finished_executions_expire_after_their_ttl(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await _workflow(cluster, "failing", "test.failing", "none")
        spec = {"workflowRef": "failing", "input": {"id": 3}, "ttlSecondsAfterFinished": 0}
        await cluster.apply(doc("DurableExecution", "short-lived", spec))
        await cluster.wait_for(
            lambda: cluster.get("durableexecutions", "short-lived") is None, 15, "TTL deletion"
        )


async def test_schedule_follows_its_cr(cluster: Cluster, redis_url: str, engine: Durable) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await _workflow(cluster, "process-order", "app.workflows.processOrder", "none")
        await cluster.apply(EXAMPLES / "schedule.yaml")
        status = await cluster.status(
            "durableschedules", "nightly-sweep", lambda s: s.get("reason") == "Scheduled"
        )
        sid = status["scheduleId"]
        assert sid == "k8s/default/nightly-sweep" and status["nextScheduleTime"]
        info = await engine.get_schedule(sid)
        assert (info.cron, info.timezone, info.overlap, info.paused) == (
            "30 2 * * *",
            "Europe/Berlin",
            "forbid",
            False,
        )
        assert info.input == {"id": 0, "sweep": True} and info.starting_deadline_seconds == 600

        # Suspend and change the cron: the engine's schedule follows in place.
        await cluster.kubectl(
            "patch",
            "durableschedules",
            "nightly-sweep",
            "-n",
            "default",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"suspend": True, "cron": "0 3 * * *"}}),
        )
        await cluster.status("durableschedules", "nightly-sweep", lambda s: s.get("reason") == "Suspended")
        info = await engine.get_schedule(sid)
        assert info.paused and info.cron == "0 3 * * *"

        await cluster.delete("durableschedules", "nightly-sweep")
        await cluster.wait_for(
            lambda: cluster.get("durableschedules", "nightly-sweep") is None, what="deletion"
        )
        with pytest.raises(ScheduleNotFound):
            await engine.get_schedule(sid)


async def test_operator_restart_loses_nothing(cluster: Cluster, redis_url: str, engine: Durable) -> None:
    config = fast_config(cluster, redis_url)
    async with operator(config):
        await _workflow(cluster, "process-order", "app.workflows.processOrder", "all")
        await cluster.apply(EXAMPLES / "execution.yaml")
        first = await cluster.status("durableexecutions", "order-1001", lambda s: s.get("phase") == "Waiting")
    eid = first["executionId"]

    # While no operator runs: the engine moves on, users apply CRs, the SDK starts executions.
    await engine.signal(eid, "orders.approved", {"approver": "carol"})
    await engine.wait(eid, timeout=10)
    sdk = await engine.start("app.workflows.processOrder", {"id": 77}, execution_id="while-down")
    await cluster.apply(doc("DurableSignal", "approve-77", {"executionId": sdk, "signal": "orders.approved"}))
    await cluster.apply(
        doc("DurableExecution", "order-2002", {"workflowRef": "process-order", "input": {"id": 2002}})
    )

    async with operator(config):
        done = await cluster.status(
            "durableexecutions", "order-1001", lambda s: s.get("phase") == "Succeeded"
        )
        assert done["executionId"] == eid and done["result"]["approver"] == "carol"
        await cluster.status("durablesignals", "approve-77", lambda s: s.get("phase") == "Delivered")
        await cluster.status("durableexecutions", mirror_name(sdk), lambda s: s.get("phase") == "Succeeded")
        second = await cluster.status(
            "durableexecutions", "order-2002", lambda s: s.get("phase") == "Waiting"
        )
    # Nothing started twice: one execution per CR uid, and the first start kept its id.
    uid = cluster.get("durableexecutions", "order-2002")["metadata"]["uid"]  # type: ignore[index]
    assert second["executionId"] == f"k8s-{uid}"
    ours = await engine.list_executions(workflow="app.workflows.processOrder", limit=100)
    assert sorted(r.execution_id for r in ours) == sorted([eid, sdk, second["executionId"]])
