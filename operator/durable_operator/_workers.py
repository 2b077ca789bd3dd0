"""The worker Deployment a DurableWorkflow owns when it has a `worker` template."""

from __future__ import annotations

from typing import Any

from ._kube import KubeError, resource_path
from ._models import DurableWorkflowSpec
from ._runtime import LABEL_WORKFLOW, Runtime, owner_reference

DEPLOYMENTS = ("apps/v1", "deployments")


def deployment_name(workflow_name: str) -> str:
    return f"{workflow_name}-worker"[:253]


def worker_deployment(rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec) -> dict[str, Any]:
    assert spec.worker is not None
    tpl = spec.worker
    meta = workflow["metadata"]
    labels = {
        "app.kubernetes.io/name": "durable-worker",
        "app.kubernetes.io/instance": meta["name"],
        "app.kubernetes.io/managed-by": "durable-operator",
        "app.kubernetes.io/component": "worker",
        LABEL_WORKFLOW: meta["name"],
    }
    env: list[dict[str, Any]] = []
    cfg = rt.config
    if cfg.worker_redis_secret:
        env.append(
            {
                "name": "DURABLE_REDIS_URL",
                "valueFrom": {
                    "secretKeyRef": {"name": cfg.worker_redis_secret, "key": cfg.worker_redis_secret_key}
                },
            }
        )
    env.append({"name": "DURABLE_WORKFLOW_ID", "value": spec.workflow_id})
    env += [e.to_k8s() for e in tpl.env or []]
    container: dict[str, Any] = {
        "name": "worker",
        "image": tpl.image,
        "args": ["worker", "--app", tpl.module, "--concurrency", str(tpl.concurrency)]
        + (["--redis-url", "$(DURABLE_REDIS_URL)"] if cfg.worker_redis_secret else []),
        "env": env,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if tpl.image_pull_policy:
        container["imagePullPolicy"] = tpl.image_pull_policy
    if tpl.resources is not None:
        container["resources"] = tpl.resources.to_k8s()
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 60,
    }
    if tpl.service_account_name:
        pod_spec["serviceAccountName"] = tpl.service_account_name
    if tpl.node_selector:
        pod_spec["nodeSelector"] = dict(tpl.node_selector)
    selector = {"app.kubernetes.io/instance": meta["name"], "app.kubernetes.io/component": "worker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(workflow)],
        },
        "spec": {
            "replicas": tpl.replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


async def ensure_worker_deployment(rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec) -> None:
    body = worker_deployment(rt, workflow, spec)
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    existing = await rt.kube.get(resource_path(DEPLOYMENTS[0], DEPLOYMENTS[1], ns, name))
    if existing is None:
        try:
            await rt.kube.create(resource_path(DEPLOYMENTS[0], DEPLOYMENTS[1], ns), body)
            await rt.kube.event(workflow, "Normal", "WorkersCreated", f"created worker Deployment {name}")
            return
        except KubeError as exc:
            if exc.status != 409:
                raise
    await rt.kube.merge_patch(
        resource_path(DEPLOYMENTS[0], DEPLOYMENTS[1], ns, name),
        {"metadata": {"labels": body["metadata"]["labels"]}, "spec": body["spec"]},
    )


async def worker_status(
    rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec
) -> tuple[bool, str, str, int | None, int | None]:
    """(ready, reason, message, desired replicas, ready replicas) for the Ready condition."""
    if spec.worker is None:
        return True, "ExternalWorkers", "no worker template: workers run outside this operator", None, None
    ns, name = workflow["metadata"]["namespace"], deployment_name(workflow["metadata"]["name"])
    dep = await rt.kube.get(resource_path(DEPLOYMENTS[0], DEPLOYMENTS[1], ns, name))
    desired = spec.worker.replicas
    if dep is None:
        return False, "DeploymentMissing", f"worker Deployment {name} does not exist yet", desired, 0
    ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
    if desired == 0:
        return True, "ScaledToZero", "worker replicas are 0", desired, ready
    if ready >= 1:
        return True, "WorkersReady", f"{ready}/{desired} worker replicas ready", desired, ready
    return False, "WorkersNotReady", f"0/{desired} worker replicas ready", desired, ready
