"""DurableWorkflow handlers: the in-memory view of workflows, the worker Deployment, the Ready condition."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pydantic

from durable import RetryableError, Status

from .._kube import KubeError
from .._models import DurableWorkflowSpec
from .._runtime import Runtime, workflow_ref
from .._status import condition
from .._workers import ensure_worker_deployment, worker_status
from ._common import as_dict, condition_status, runtime_of
from ._errors import count, refuse, retry_later, spec_error

log = logging.getLogger("durable_operator")


async def workflow_seen(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Keep the in-memory view of DurableWorkflows (the mirror and the references read it)."""
    rt = runtime_of(memo)
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        rt.workflows.pop(key, None)
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
        patch.status["conditions"] = condition(
            conditions, "Ready", False, "DeploymentError", str(exc), generation
        )

    with refuse("DurableWorkflow", (pydantic.ValidationError,), invalid_spec, spec_error):
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    rt.workflows[(meta["namespace"], meta["name"])] = workflow_ref(body, spec)
    with retry_later(
        "worker Deployment", 10, errors=(KubeError,), kind="DurableWorkflow", report=deployment_error
    ):
        if spec.worker is not None:
            await ensure_worker_deployment(rt, as_dict(body), spec)
        ready, reason, message, desired, ready_n = await worker_status(rt, as_dict(body), spec)
    patch.status["observedGeneration"] = generation
    patch.status["workers"] = desired
    patch.status["readyWorkers"] = ready_n
    patch.status["conditions"] = condition(conditions, "Ready", ready, reason, message, generation)
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
    try:
        ready, reason, message, desired, ready_n = await worker_status(rt, as_dict(body), spec)
        running = await _count_executions(
            rt, spec.workflow_id, (Status.PENDING, Status.RUNNING, Status.SLEEPING, Status.WAITING)
        )
        failed = await _count_executions(rt, spec.workflow_id, (Status.FAILED,))
    except (KubeError, RetryableError) as exc:
        log.warning("workflow %s/%s status refresh: %s", meta["namespace"], meta["name"], exc)
        return
    new = {"workers": desired, "readyWorkers": ready_n, "running": running, "failed": failed}
    if any(status.get(k) != v for k, v in new.items()) or condition_status(status, "Ready") != (
        "True" if ready else "False"
    ):
        patch.status.update(new)
        patch.status["conditions"] = condition(
            list(status.get("conditions") or []), "Ready", ready, reason, message, generation
        )


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
