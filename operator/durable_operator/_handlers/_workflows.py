"""DurableWorkflow handlers: the in-memory view of workflows, the worker Deployments per version
(`_rollout`), the Ready and ReplayVerified conditions."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pydantic

from durable import RetryableError, Status

from .._kube import KubeError
from .._models import DurableWorkflowSpec
from .._rollout import Rollout, reconcile_versions
from .._runtime import Runtime, workflow_ref
from .._status import condition
from .._workers import ready_condition
from ._common import as_dict, runtime_of
from ._errors import count, refuse, retry_later, spec_error

log = logging.getLogger("durable_operator")


async def workflow_seen(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Keep the in-memory view of DurableWorkflows (the mirror and the references read it)."""
    rt = runtime_of(memo)
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        rt.workflows.pop(key, None)
        rt.locks.pop(key, None)
        return
    try:
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        rt.workflows.pop(key, None)
        return
    rt.workflows[key] = workflow_ref(body, spec)


async def workflow_reconcile(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    rt = runtime_of(memo)
    generation = meta.get("generation")
    conditions = list(status.get("conditions") or [])

    def invalid_spec(exc: pydantic.ValidationError) -> None:
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = condition(
            conditions, "Ready", False, "InvalidSpec", spec_error(exc), generation
        )

    def deployment_error(exc: Exception) -> None:
        if isinstance(exc, KubeError):  # Redis unreachable: nothing decided, nothing to say yet
            patch.status["conditions"] = condition(
                conditions, "Ready", False, "DeploymentError", str(exc), generation
            )

    with refuse("DurableWorkflow", (pydantic.ValidationError,), invalid_spec, spec_error):
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    rt.workflows[(meta["namespace"], meta["name"])] = workflow_ref(body, spec)
    rollout: Rollout | None = None
    with retry_later(
        "worker Deployments",
        10,
        errors=(KubeError, RetryableError),
        kind="DurableWorkflow",
        report=deployment_error,
    ):
        if spec.worker is not None:
            async with rt.lock(meta["namespace"], meta["name"]):
                rollout = await reconcile_versions(rt, as_dict(body), spec, dict(status))
    patch.status["observedGeneration"] = generation
    patch.status.update(_worker_status(status, rollout, spec, generation))
    count("DurableWorkflow", "ok")


async def workflow_refresh(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    """Periodic: ready workers and execution counts."""
    rt = runtime_of(memo)
    try:
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        return
    generation = meta.get("generation")
    rollout: Rollout | None = None
    try:
        if spec.worker is not None:
            async with rt.lock(meta["namespace"], meta["name"]):
                rollout = await reconcile_versions(rt, as_dict(body), spec, dict(status))
        running = await _count_executions(
            rt, spec.workflow_id, (Status.PENDING, Status.RUNNING, Status.SLEEPING, Status.WAITING)
        )
        failed = await _count_executions(rt, spec.workflow_id, (Status.FAILED,))
    except (KubeError, RetryableError) as exc:
        log.warning("workflow %s/%s status refresh: %s", meta["namespace"], meta["name"], exc)
        return
    new = {"running": running, "failed": failed, **_worker_status(status, rollout, spec, generation)}
    if any(_differs(status.get(k), v) for k, v in new.items()):
        patch.status.update(new)


def _worker_status(
    status: kopf.Status, rollout: Rollout | None, spec: DurableWorkflowSpec, generation: Any
) -> dict[str, Any]:
    """The worker part of the status: versions, replicas, the Ready and ReplayVerified conditions."""
    conditions = list(status.get("conditions") or [])
    out: dict[str, Any] = {}
    if rollout is None:
        ready, reason, message, desired, ready_n = ready_condition(spec, None, None)
        out["workers"], out["readyWorkers"] = desired, ready_n
    else:
        ready, reason, message = rollout.ready
        out.update(rollout.status)
        if rollout.replay is not None:
            conditions = condition(conditions, "ReplayVerified", *rollout.replay, generation)
    out["conditions"] = condition(conditions, "Ready", ready, reason, message, generation)
    return out


def _differs(old: Any, new: Any) -> bool:
    """Whether a status value changed, ignoring conditions' transition times (kept when unchanged)."""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return any(_differs(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, dict) and isinstance(new, dict):
        keys = (set(old) | set(new)) - {"lastTransitionTime"}
        return any(_differs(old.get(k), new.get(k)) for k in keys)
    return bool(old != new)


async def _count_executions(
    rt: Runtime, workflow_id: str, statuses: tuple[Status, ...], cap: int = 10000
) -> int:
    total, cursor = 0, None
    while total < cap:
        page, cursor = await rt.durable.list_executions_page(
            workflow_id, list(statuses), limit=500, cursor=cursor
        )
        total += len(page)
        if not cursor:
            break
    return total
