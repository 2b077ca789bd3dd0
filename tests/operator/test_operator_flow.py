"""The real operator against kmock and a real Redis: CRs in, engine state and CR status out."""

from __future__ import annotations

import pytest

from durable import Durable
from durable_operator._versions import deployment_name
from operator_harness import EXAMPLES, Cluster, fast_config, operator

pytestmark = pytest.mark.timeout(60)


async def test_samples_drive_the_engine_and_status_comes_back(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await cluster.apply(EXAMPLES / "workflow.yaml")
        await cluster.status("durableworkflows", "process-order", lambda s: bool(s.get("conditions")))
        # Conditions can come from the periodic refresh before the Deployment exists: wait for it.
        # One Deployment per worker version: 0.1.0, from the image's tag, current at once.
        name = deployment_name("process-order", "0.1.0")
        await cluster.wait_for(lambda: cluster.get("deployments", name) is not None, what="worker Deployment")
        dep = cluster.get("deployments", name)
        assert dep is not None and dep["spec"]["replicas"] == 2
        assert dep["metadata"]["ownerReferences"][0]["kind"] == "DurableWorkflow"
        assert dep["spec"]["template"]["spec"]["containers"][0]["args"][-4:-2] == ["--version", "0.1.0"]
        wf = await cluster.status(
            "durableworkflows", "process-order", lambda s: s.get("currentVersion") == "0.1.0"
        )
        assert [v["state"] for v in wf["versions"]] == ["current"]
        assert await engine.versions.current("app.workflows.processOrder") == "0.1.0"

        await cluster.apply(EXAMPLES / "execution.yaml")
        status = await cluster.status(
            "durableexecutions", "order-1001", lambda s: s.get("phase") == "Waiting"
        )
        uid = cluster.get("durableexecutions", "order-1001")["metadata"]["uid"]  # type: ignore[index]
        assert status["executionId"] == f"k8s-{uid}"
        assert status["currentStep"] == "await-approval"
        assert status["workerVersion"] == "0.1.0"  # the version current when it started
        record = await engine.get_execution(status["executionId"])
        assert record is not None and record.workflow_id == "app.workflows.processOrder"
        assert record.input == {"id": 1001, "items": [{"sku": "book", "qty": 2}]}

        await cluster.apply(EXAMPLES / "signal.yaml")
        sig = await cluster.status(
            "durablesignals", "order-1001-approved", lambda s: s.get("phase") == "Delivered"
        )
        assert sig["executionId"] == status["executionId"] and sig["duplicate"] is False
        done = await cluster.status(
            "durableexecutions", "order-1001", lambda s: s.get("phase") == "Succeeded"
        )
        assert done["result"] == {"shipped": "shipped-1001", "approver": "alice"}
        assert done["finishTime"] and done["startTime"]
        # Events follow the status patches.
        wanted = {"Created", "SignalDelivered", "Started", "Succeeded"}
        await cluster.wait_for(
            lambda: wanted <= {e["reason"] for e in cluster.events()}, what=f"events {wanted}"
        )
