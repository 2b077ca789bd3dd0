"""Worker-version rollouts on the emulated API with a real Redis: one Deployment per version, a
replay-check Job before a new version gets work, old versions drained and then deleted.

The emulator runs no controllers: a test plays the Job controller and the kubelet by writing what
they would (the Job's Complete/Failed condition, its pod's termination message). Executions are
started through the `durable` client; those of a version without an in-process worker stay pending,
which is all a rollout needs to see (in flight, runnable).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durable import Durable, RedisStore, Status
from durable_operator._versions import deployment_name, job_name
from operator_harness import Cluster, doc, fast_config, load_crd, operator

pytestmark = pytest.mark.timeout(90)

WF = "app.workflows.processOrder"
IMAGE = "registry.local:5000/orders"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Durable]:
    """A client only: executions it starts wait for a worker of their version."""
    from apps.operator_app import process_order

    d = Durable(store=RedisStore.from_url(redis_url), workflows=[process_order])
    yield d
    await d.close()


def spec(tag: str, **worker: Any) -> dict[str, Any]:
    return {
        "workflowId": WF,
        "mirror": "none",
        "worker": {"image": f"{IMAGE}:{tag}", "module": "apps.operator_app", "replicas": 2, **worker},
    }


async def apply(cluster: Cluster, tag: str, **worker: Any) -> None:
    await cluster.apply(doc("DurableWorkflow", "orders", spec(tag, **worker)))


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def versions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["version"]: v for v in status.get("versions") or []}


async def wf_status(cluster: Cluster, check: Any, timeout: float = 15.0) -> dict[str, Any]:
    return await cluster.status("durableworkflows", "orders", check, timeout)


def finish_job(cluster: Cluster, version: str, outcome: str, message: str | None, reason: str = "") -> None:
    """What the Job controller and the kubelet write when the check's pod ends."""
    name = job_name("orders", version)
    job = cluster.get("jobs", name)
    assert job is not None, f"no Job {name}"
    job["status"] = {
        "conditions": [{"type": outcome, "status": "True", "reason": reason or outcome}],
        ("succeeded" if outcome == "Complete" else "failed"): 1,
    }
    cluster.emulator.objects["batch/v1/jobs", "default", name] = job
    terminated: dict[str, Any] = {"exitCode": 0 if outcome == "Complete" else 1, "reason": "Completed"}
    if message is not None:
        terminated["message"] = message
    cluster.emulator.objects["v1/pods", "default", f"{name}-x7k2p"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-x7k2p", "namespace": "default", "labels": {"job-name": name}},
        "status": {"containerStatuses": [{"name": "replay-check", "state": {"terminated": terminated}}]},
    }


def events(cluster: Cluster, reason: str) -> list[str]:
    return [e["message"] for e in cluster.events() if e["reason"] == reason]


async def start_v1(cluster: Cluster, client: Durable, n: int) -> list[str]:
    await apply(cluster, "v1")
    await wf_status(cluster, lambda s: s.get("currentVersion") == "v1")
    eids = [await client.start(WF, {"id": i}) for i in range(n)]
    for eid in eids:
        record = await client.get_execution(eid)
        assert record is not None and record.version == "v1"
    return eids


async def test_first_version_is_current_at_once(cluster: Cluster, redis_url: str, client: Durable) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await apply(cluster, "v1")
        status = await wf_status(cluster, lambda s: s.get("currentVersion") == "v1")
        assert cond(status, "ReplayVerified")["reason"] == "NothingToVerify"
        assert [(v["version"], v["state"]) for v in status["versions"]] == [("v1", "current")]
        dep = cluster.get("deployments", "orders-worker-v1")
        assert dep is not None and dep["spec"]["replicas"] == 2
        assert dep["metadata"]["annotations"]["durable.dev/worker-version"] == "v1"
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{IMAGE}:v1"
        assert {"name": "DURABLE_WORKER_VERSION", "value": "v1"} in container["env"]
        assert container["args"][:7] == [
            "worker", "--app", "apps.operator_app", "--concurrency", "64", "--version", "v1",
        ]  # fmt: skip
        assert await client.versions.current(WF) == "v1"
        assert cluster.get("jobs", job_name("orders", "v1")) is None
        assert events(cluster, "VersionPromoted") and events(cluster, "WorkersCreated")


async def test_a_failing_replay_check_blocks_the_rollout(
    cluster: Cluster, redis_url: str, client: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        eids = await start_v1(cluster, client, 2)
        await apply(cluster, "v2")
        status = await wf_status(cluster, lambda s: versions(s).get("v2", {}).get("state") == "verifying")
        assert status["currentVersion"] == "v1" and cond(status, "ReplayVerified")["status"] == "Unknown"
        assert cluster.get("deployments", "orders-worker-v2") is not None
        assert cluster.get("deployments", "orders-worker-v1") is not None
        job = await cluster.wait_for(lambda: cluster.get("jobs", "orders-verify-v2"), what="the Job")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{IMAGE}:v2"
        assert container["args"][:7] == [
            "replay-check",
            "--app",
            "apps.operator_app",
            "--workflow",
            WF,
            "--version",
            "v1",
        ]
        assert "/dev/termination-log" in container["args"]
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 600
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job["metadata"]["ownerReferences"][0]["name"] == "orders"
        assert await client.versions.current(WF) == "v1"

        summary = {
            "checked": 2,
            "ok": 1,
            "diverged": [
                {
                    "execution_id": eids[0],
                    "workflow_id": WF,
                    "position": 1,
                    "expected": "await-approval",
                    "actual": "fraud-check",
                    "error": None,
                }
            ],
        }
        finish_job(cluster, "v2", "Failed", json.dumps(summary), "BackoffLimitExceeded")
        status = await wf_status(cluster, lambda s: cond(s, "ReplayVerified").get("status") == "False")
        verified = cond(status, "ReplayVerified")
        assert verified["reason"] == "ReplayCheckFailed"
        assert f"{eids[0]} at position 1: expected 'await-approval', got 'fraud-check'" in verified["message"]
        assert status["currentVersion"] == "v1" and await client.versions.current(WF) == "v1"
        assert versions(status)["v2"]["state"] == "blocked" and versions(status)["v1"]["state"] == "current"
        await cluster.wait_for(lambda: events(cluster, "VerificationFailed"), what="the Event")
        assert eids[0] in events(cluster, "VerificationFailed")[0]
        # The blocked version gets no replicas; the current one keeps serving at full strength.
        await cluster.wait_for(
            lambda: cluster.get("deployments", "orders-worker-v2")["spec"]["replicas"] == 0,  # type: ignore[index]
            what="v2 scaled to 0",
        )
        assert cluster.get("deployments", "orders-worker-v1")["spec"]["replicas"] == 2  # type: ignore[index]
        # It stays blocked, without a new Job, on every refresh...
        await asyncio.sleep(1.5)  # three refreshes
        status = await wf_status(cluster, lambda s: versions(s).get("v2", {}).get("state") == "blocked")
        assert len(events(cluster, "VerificationFailed")) == 1

        # ...until the code is fixed and the version bumped: a new check, the blocked one goes.
        await apply(cluster, "v3")
        await cluster.wait_for(lambda: cluster.get("jobs", "orders-verify-v3"), what="the v3 Job")
        await cluster.wait_for(lambda: cluster.get("deployments", "orders-worker-v2") is None, what="v2 gone")
        status = await wf_status(cluster, lambda s: versions(s).get("v3", {}).get("state") == "verifying")
        assert "v2" not in versions(status) and status["currentVersion"] == "v1"


async def test_a_passing_check_promotes_and_the_old_version_drains(
    cluster: Cluster, redis_url: str, client: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        eids = await start_v1(cluster, client, 2)
        await apply(cluster, "v2")
        await cluster.wait_for(lambda: cluster.get("jobs", "orders-verify-v2"), what="the Job")
        await cluster.wait_for(lambda: events(cluster, "VerificationStarted"), what="the Event")
        finish_job(cluster, "v2", "Complete", json.dumps({"checked": 2, "ok": 2, "diverged": []}))
        status = await wf_status(cluster, lambda s: s.get("currentVersion") == "v2")
        assert cond(status, "ReplayVerified")["status"] == "True"
        assert cond(status, "ReplayVerified")["reason"] == "ReplayCheckPassed"
        assert versions(status)["v1"]["state"] == "draining" and versions(status)["v1"]["inFlight"] == 2
        assert status["draining"] == 1
        assert await client.versions.current(WF) == "v2"
        assert events(cluster, "VerificationPassed")
        # New executions go to v2; the v1 ones stay with v1's workers, which stay while they run.
        new = await client.start(WF, {"id": 99})
        assert (await client.get_execution(new)).version == "v2"  # type: ignore[union-attr]
        assert cluster.get("deployments", "orders-worker-v1")["spec"]["replicas"] == 2  # type: ignore[index]
        columns = load_crd("durableworkflows")["spec"]["versions"][0]["additionalPrinterColumns"]
        paths = {c["name"]: c["jsonPath"] for c in columns}
        assert paths["Current"] == ".status.currentVersion" and paths["Draining"] == ".status.draining"

        await client.cancel(eids[0], reason="test")
        await wf_status(cluster, lambda s: versions(s).get("v1", {}).get("inFlight") == 1)
        assert cluster.get("deployments", "orders-worker-v1") is not None
        await client.cancel(eids[1], reason="test")
        await cluster.wait_for(
            lambda: cluster.get("deployments", "orders-worker-v1") is None, what="v1 deleted"
        )
        status = await wf_status(cluster, lambda s: "v1" not in versions(s))
        assert status["draining"] == 0
        await cluster.wait_for(lambda: events(cluster, "WorkersDeleted"), what="the Event")
        assert "orders-worker-v1" in events(cluster, "WorkersDeleted")[0]
        assert (await client.get_execution(eids[1])).status == Status.CANCELLED  # type: ignore[union-attr]


async def test_force_skips_the_check(cluster: Cluster, redis_url: str, client: Durable) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await start_v1(cluster, client, 1)
        await apply(cluster, "v2", rollout="force")
        status = await wf_status(cluster, lambda s: s.get("currentVersion") == "v2")
        assert cond(status, "ReplayVerified")["reason"] == "Forced"
        assert versions(status)["v1"]["state"] == "draining"
        assert cluster.get("jobs", "orders-verify-v2") is None
        await cluster.wait_for(lambda: events(cluster, "RolloutForced"), what="the Event")


async def test_old_version_keeps_few_replicas_while_its_executions_wait(
    cluster: Cluster, redis_url: str, client: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await apply(cluster, "v1", drainingReplicas=1)
        await wf_status(cluster, lambda s: s.get("currentVersion") == "v1")
        async with client.worker(concurrency=4, version="v1"):
            eid = await client.start(WF, {"id": 1})
            await _wait_status(client, eid, Status.WAITING)
            await apply(cluster, "v2", rollout="force", drainingReplicas=1)
            await cluster.wait_for(
                lambda: (
                    (cluster.get("deployments", "orders-worker-v1") or {}).get("spec", {}).get("replicas")
                    == 1
                ),
                what="v1 scaled down to drainingReplicas",
            )
            status = await wf_status(cluster, lambda s: versions(s).get("v1", {}).get("replicas") == 1)
            assert versions(status)["v1"]["message"] == "1 in flight, 0 runnable"
            await client.signal(eid, "orders.approved", {"approver": "dora"})
            await client.wait(eid, timeout=10)
        await cluster.wait_for(
            lambda: cluster.get("deployments", "orders-worker-v1") is None, what="v1 deleted"
        )


async def test_legacy_deployment_drains_as_unversioned(
    cluster: Cluster, redis_url: str, client: Durable
) -> None:
    # What an operator before worker versions left: `<workflow>-worker`, no version label.
    cluster.emulator.objects["apps/v1/deployments", "default", "orders-worker"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "orders-worker",
            "namespace": "default",
            "labels": {"durable.dev/workflow": "orders", "app.kubernetes.io/component": "worker"},
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "worker", "image": "old:1"}]}}},
    }
    async with client.worker(concurrency=4):  # unversioned, like the legacy pods
        eid = await client.start(WF, {"id": 1})
        await _wait_status(client, eid, Status.WAITING)
        async with operator(fast_config(cluster, redis_url)):
            await apply(cluster, "v1")
            status = await wf_status(cluster, lambda s: versions(s).get("", {}).get("state") == "draining")
            assert status["currentVersion"] == "v1" and versions(status)[""]["inFlight"] == 1
            await cluster.wait_for(
                lambda: cluster.get("deployments", "orders-worker")["spec"]["replicas"] == 1,  # type: ignore[index]
                what="legacy scaled to drainingReplicas",
            )
            await client.signal(eid, "orders.approved", {"approver": "eve"})
            await client.wait(eid, timeout=10)
            await cluster.wait_for(
                lambda: cluster.get("deployments", "orders-worker") is None, what="legacy gone"
            )
            assert cluster.get("deployments", deployment_name("orders", "v1")) is not None


async def test_bad_version_is_refused_and_changes_nothing(
    cluster: Cluster, redis_url: str, client: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await start_v1(cluster, client, 1)
        await apply(cluster, "v2", version="-bad version")
        status = await wf_status(cluster, lambda s: cond(s, "Ready").get("reason") == "InvalidSpec")
        message = cond(status, "Ready")["message"]
        assert message.startswith("spec.worker.version: ") and "\n" not in message
        assert status["currentVersion"] == "v1" and set(versions(status)) == {"v1"}
        assert cluster.get("jobs", "orders-verify-v2") is None
        assert [d for d in _deployments(cluster) if d != "orders-worker-v1"] == []


def _deployments(cluster: Cluster) -> list[str]:
    return [
        name
        for (resource, _ns, name), obj in cluster.emulator.objects.items()
        if resource.plural == "deployments" and not obj.deleted
    ]


async def _wait_status(client: Durable, eid: str, status: Status) -> None:
    for _ in range(200):
        record = await client.get_execution(eid)
        if record is not None and record.status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{eid} never reached {status}")


async def test_a_check_that_crashed_or_timed_out_blocks_with_its_reason(
    cluster: Cluster, redis_url: str, client: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)):
        await start_v1(cluster, client, 1)
        await apply(cluster, "v2", verifyTimeoutSeconds=60)
        job = await cluster.wait_for(lambda: cluster.get("jobs", "orders-verify-v2"), what="the Job")
        assert job["spec"]["activeDeadlineSeconds"] == 60
        # FallbackToLogsOnError: a check that crashed leaves the end of its log, not the JSON summary.
        finish_job(cluster, "v2", "Failed", "error: cannot import app module 'apps.operator_app'")
        status = await wf_status(cluster, lambda s: cond(s, "ReplayVerified").get("status") == "False")
        message = cond(status, "ReplayVerified")["message"]
        assert message.startswith("verification Job orders-verify-v2 failed: ")
        assert "cannot import app module" in message and versions(status)["v2"]["state"] == "blocked"

        # The image changes under the same version: checked again; this time it runs out of time.
        await apply(cluster, "v2", version="v2", verifyTimeoutSeconds=60)  # same image: still blocked
        await asyncio.sleep(1.0)
        assert versions(await wf_status(cluster, lambda s: True))["v2"]["state"] == "blocked"
        await cluster.apply(
            doc(
                "DurableWorkflow",
                "orders",
                spec("v2-rebuilt", version="v2", verifyTimeoutSeconds=60),
            )
        )
        await wf_status(cluster, lambda s: versions(s).get("v2", {}).get("state") == "verifying")
        job = await cluster.wait_for(
            lambda: (
                (j := cluster.get("jobs", "orders-verify-v2"))
                and j["metadata"]["annotations"]["durable.dev/image"].endswith(":v2-rebuilt")
                and j
            ),
            what="a Job for the rebuilt image",
        )
        finish_job(cluster, "v2", "Failed", None, "DeadlineExceeded")
        status = await wf_status(cluster, lambda s: cond(s, "ReplayVerified").get("status") == "False")
        assert "deadline exceeded" in cond(status, "ReplayVerified")["message"]
        assert status["currentVersion"] == "v1"
