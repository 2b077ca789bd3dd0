"""The worker Deployments a DurableWorkflow owns when it has a `worker` template: one per worker version.

The Deployment of the version the template describes gets the whole template (image, module, env,
resources); the Deployments of older versions keep the pod template they were made with and are only
scaled (and deleted once they have nothing left in flight, see `_rollout`). A Deployment made by an
operator before worker versions (`<workflow>-worker`, without a version label) counts as the
unversioned one ("").
"""

from __future__ import annotations

from typing import Any

from ._kube import KubeError, resource_path
from ._models import DurableWorkflowSpec
from ._runtime import LABEL_WORKFLOW, Runtime, owner_reference
from ._versions import (
    ANNOTATION_VERSION,
    LABEL_VERSION,
    deployment_name,
    legacy_deployment_name,
    version_slug,
)

DEPLOYMENTS = ("apps/v1", "deployments")


def worker_container(rt: Runtime, spec: DurableWorkflowSpec, name: str, args: list[str]) -> dict[str, Any]:
    """A container of the template's image with the worker's environment and security context."""
    assert spec.worker is not None
    tpl = spec.worker
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
        "name": name,
        "image": tpl.image,
        "args": args + (["--redis-url", "$(DURABLE_REDIS_URL)"] if cfg.worker_redis_secret else []),
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
    return container


def worker_pod_spec(spec: DurableWorkflowSpec, container: dict[str, Any]) -> dict[str, Any]:
    assert spec.worker is not None
    tpl = spec.worker
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
    return pod_spec


def worker_args(spec: DurableWorkflowSpec, version: str) -> list[str]:
    assert spec.worker is not None
    tpl = spec.worker
    args = ["worker", "--app", tpl.module, "--concurrency", str(tpl.concurrency), "--version", version]
    retention = spec.retention.history_seconds_after_finished if spec.retention else None
    if retention is not None:
        args += ["--retention", str(retention)]
    return args


def version_labels(workflow_name: str, version: str, component: str = "worker") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "durable-worker",
        "app.kubernetes.io/instance": workflow_name,
        "app.kubernetes.io/managed-by": "durable-operator",
        "app.kubernetes.io/component": component,
        LABEL_WORKFLOW: workflow_name,
        LABEL_VERSION: version_slug(version),
    }


def worker_deployment(
    rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec, version: str, replicas: int
) -> dict[str, Any]:
    meta = workflow["metadata"]
    labels = version_labels(meta["name"], version)
    container = worker_container(rt, spec, "worker", worker_args(spec, version))
    container["env"].append({"name": "DURABLE_WORKER_VERSION", "value": version})
    selector = {
        "app.kubernetes.io/instance": meta["name"],
        "app.kubernetes.io/component": "worker",
        LABEL_VERSION: version_slug(version),
    }
    annotations = {ANNOTATION_VERSION: version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(meta["name"], version),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(workflow)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": worker_pod_spec(spec, container),
            },
        },
    }


def deployment_version(workflow_name: str, dep: dict[str, Any]) -> str | None:
    """The worker version a Deployment of this workflow runs; None for one that is not a worker's."""
    meta = dep.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(ANNOTATION_VERSION)
    if raw is not None:
        return str(raw)
    if meta.get("name") == legacy_deployment_name(workflow_name):
        return ""
    return None


async def version_deployments(rt: Runtime, workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workflow's worker Deployments by version (the legacy unversioned one as "")."""
    meta = workflow["metadata"]
    found = await rt.kube.list(
        resource_path(*DEPLOYMENTS, meta["namespace"]), label_selector=f"{LABEL_WORKFLOW}={meta['name']}"
    )
    out: dict[str, dict[str, Any]] = {}
    for dep in found:
        if (dep.get("metadata") or {}).get("deletionTimestamp"):
            continue
        version = deployment_version(meta["name"], dep)
        if version is not None:
            out[version] = dep
    return out


async def ensure_version_deployment(
    rt: Runtime,
    workflow: dict[str, Any],
    spec: DurableWorkflowSpec,
    version: str,
    replicas: int,
    existing: dict[str, Any] | None,
) -> dict[str, Any]:
    """Create the Deployment of the template's version, or bring it to the template."""
    body = worker_deployment(rt, workflow, spec, version, replicas)
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if existing is None:
        try:
            made = await rt.kube.create(resource_path(*DEPLOYMENTS, ns), body)
            await rt.kube.event(
                workflow,
                "Normal",
                "WorkersCreated",
                f"created worker Deployment {name} for version {version}",
            )
            return made
        except KubeError as exc:
            if exc.status != 409:
                raise
    meta = body["metadata"]
    return await rt.kube.merge_patch(
        resource_path(*DEPLOYMENTS, ns, name),
        {"metadata": {"labels": meta["labels"], "annotations": meta["annotations"]}, "spec": body["spec"]},
    )


async def scale_deployment(rt: Runtime, dep: dict[str, Any], replicas: int) -> dict[str, Any]:
    """Only the replicas: an old version's Deployment keeps the pod template it was made with."""
    if (dep.get("spec") or {}).get("replicas") == replicas:
        return dep
    meta = dep["metadata"]
    return await rt.kube.merge_patch(
        resource_path(*DEPLOYMENTS, meta["namespace"], meta["name"]), {"spec": {"replicas": replicas}}
    )


async def delete_deployment(rt: Runtime, dep: dict[str, Any]) -> bool:
    meta = dep["metadata"]
    return await rt.kube.delete(
        resource_path(*DEPLOYMENTS, meta["namespace"], meta["name"]), propagationPolicy="Background"
    )


def replicas_of(dep: dict[str, Any] | None) -> tuple[int, int]:
    """(desired, ready) replicas of a Deployment (0, 0 when there is none)."""
    if dep is None:
        return 0, 0
    desired = int((dep.get("spec") or {}).get("replicas") or 0)
    ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
    return desired, ready


def ready_condition(
    spec: DurableWorkflowSpec, current: str | None, dep: dict[str, Any] | None
) -> tuple[bool, str, str, int | None, int | None]:
    """(ready, reason, message, desired replicas, ready replicas) for the Ready condition: the
    Deployment of the version new executions go to."""
    if spec.worker is None:
        return True, "ExternalWorkers", "no worker template: workers run outside this operator", None, None
    desired = spec.worker.replicas
    if dep is None:
        what = f"of version {current}" if current else "of the current version"
        return False, "DeploymentMissing", f"no worker Deployment {what} yet", desired, 0
    desired, ready = replicas_of(dep)
    if desired == 0:
        return True, "ScaledToZero", "worker replicas are 0", desired, ready
    if ready >= 1:
        return True, "WorkersReady", f"{ready}/{desired} worker replicas ready", desired, ready
    return False, "WorkersNotReady", f"0/{desired} worker replicas ready", desired, ready
