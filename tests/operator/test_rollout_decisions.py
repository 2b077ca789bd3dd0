"""Rollout decisions on fakes, for the orders the emulator cannot time: Redis unreachable, and an
execution that starts on the old version while the operator promotes the new one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from durable import StoreUnavailable, VersionLoad
from durable_operator._models import DurableWorkflowSpec
from durable_operator._rollout import reconcile_versions
from durable_operator._runtime import OperatorConfig, Runtime
from durable_operator._workers import worker_deployment

WORKFLOW = {
    "apiVersion": "durable.dev/v1alpha1",
    "kind": "DurableWorkflow",
    "metadata": {"name": "orders", "namespace": "default", "uid": "u-1"},
}


class FakeVersions:
    def __init__(self, current: str | None, loads: list[dict[str, VersionLoad]], down: bool = False) -> None:
        self._current, self.loads, self.down = current, loads, down
        self.promoted: list[str] = []

    async def current(self, workflow_id: str) -> str | None:
        if self.down:
            raise StoreUnavailable("connection refused")
        return self._current

    async def load(self, workflow_id: str) -> dict[str, VersionLoad]:
        return self.loads.pop(0) if len(self.loads) > 1 else self.loads[0]

    async def promote(self, workflow_id: str, version: str, *, actor: str | None = None) -> bool:
        changed = version != self._current
        self._current = version
        self.promoted.append(version)
        return changed


class FakeDurable:
    def __init__(self, versions: FakeVersions) -> None:
        self.versions = versions


class FakeKube:
    """Deployments by name; every write recorded."""

    def __init__(self, deployments: list[dict[str, Any]]) -> None:
        self.deployments = {d["metadata"]["name"]: d for d in deployments}
        self.calls: list[tuple[str, str]] = []

    async def list(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", path))
        return list(self.deployments.values()) if path.endswith("/deployments") else []

    async def get(self, path: str) -> dict[str, Any] | None:
        return None

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", body["metadata"]["name"]))
        self.deployments[body["metadata"]["name"]] = body
        return body

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = path.rsplit("/", 1)[-1]
        self.calls.append(("patch", name))
        merged = copy.deepcopy(self.deployments[name])
        merged["spec"].update(body.get("spec") or {})
        self.deployments[name] = merged
        return merged

    async def delete(self, path: str, **params: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        self.calls.append(("delete", name))
        return self.deployments.pop(name, None) is not None

    async def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.calls.append(("event", reason))


def _spec(tag: str) -> DurableWorkflowSpec:
    return DurableWorkflowSpec.model_validate(
        {"workflowId": "app.wf", "worker": {"image": f"orders:{tag}", "module": "app"}}
    )


def _runtime(versions: FakeVersions, kube: FakeKube) -> Runtime:
    return Runtime(config=OperatorConfig(), durable=FakeDurable(versions), kube=kube)  # type: ignore[arg-type]


async def test_redis_unreachable_changes_nothing() -> None:
    rt0 = _runtime(FakeVersions(None, [{}]), FakeKube([]))
    v1 = worker_deployment(rt0, WORKFLOW, _spec("v1"), "v1", 1)
    kube = FakeKube([v1])
    rt = _runtime(FakeVersions("v1", [{}], down=True), kube)
    with pytest.raises(StoreUnavailable):
        await reconcile_versions(rt, WORKFLOW, _spec("v2"), {})
    assert kube.calls == [] and set(kube.deployments) == {"orders-worker-v1"}


async def test_an_execution_started_during_the_promotion_keeps_its_workers() -> None:
    rt0 = _runtime(FakeVersions(None, [{}]), FakeKube([]))
    v1 = worker_deployment(rt0, WORKFLOW, _spec("v1"), "v1", 1)
    kube = FakeKube([v1])
    # Nothing in flight on v1 when first counted; one started on v1 before v2 became current.
    versions = FakeVersions("v1", [{}, {"v1": VersionLoad("v1", 1, 1)}])
    rollout = await reconcile_versions(_runtime(versions, kube), WORKFLOW, _spec("v2"), {})
    assert versions.promoted == ["v2"]
    assert ("delete", "orders-worker-v1") not in kube.calls
    states = {v["version"]: v["state"] for v in rollout.status["versions"]}
    assert states == {"v2": "current", "v1": "draining"}
    assert rollout.replay is not None and rollout.replay[1] == "NothingToVerify"
