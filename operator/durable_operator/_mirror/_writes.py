"""The one guarded writer of DurableExecution status (never backwards) and the Events it posts."""

from __future__ import annotations

import logging
from typing import Any

from .._kube import KubeError
from .._metrics import metrics
from .._models import Phase
from .._runtime import Runtime, path
from .._status import execution_status, failed_status, is_older
from ._batching import RateLimiter

log = logging.getLogger("durable_operator.mirror")

#: How often one status write re-reads and retries when another writer got in between.
_CONFLICT_RETRIES = 5


async def write_execution_status(
    rt: Runtime,
    namespace: str,
    name: str,
    execution_id: str,
    limiter: RateLimiter | None = None,
    *,
    mark_lost: bool = False,
    obj: dict[str, Any] | None = None,
) -> bool:
    """Bring one DurableExecution's status in step with Redis, never backwards. True when it patched.

    Every writer of execution status goes through here. The status is re-read from Redis and
    patched only when it is not older than the one the CR holds (`observedVersion`), and the
    patch carries the resourceVersion it was compared with: a writer that got in between makes
    it a 409, and the comparison runs again. With `mark_lost`, a CR whose execution is gone
    from the store fails as ExecutionLost, unless it already shows a final phase. `obj`, when
    given, is the CR as just listed (it saves the first read).
    """
    for _ in range(_CONFLICT_RETRIES):
        record = await rt.durable.get_execution(execution_id)
        if obj is None:
            obj = await rt.kube.get(path("DurableExecution", namespace, name))
        if obj is None:
            rt.forget_execution(namespace, name)
            return False
        meta = obj.get("metadata") or {}
        old = obj.get("status") or {}
        generation = meta.get("generation")
        if record is None:
            if not mark_lost or Phase.shows_final(old.get("phase")):
                return False
            message = f"execution {execution_id!r} is gone from the store"
            status = failed_status("ExecutionLost", message, generation, old)
        else:
            status = execution_status(record, old, generation, rt.config.result_cap)
            if is_older(status["observedVersion"], old.get("observedVersion")):
                metrics().status_patches.labels(outcome="stale").inc()
                log.debug(
                    "%s/%s: not replacing status %s with the older %s",
                    namespace,
                    name,
                    old.get("observedVersion"),
                    status["observedVersion"],
                )
                return False
        if _same(old, status):
            return False
        if limiter is not None:
            await limiter.take()
        body: dict[str, Any] = {"status": status}
        if meta.get("resourceVersion"):
            body["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        try:
            await rt.kube.merge_patch(path("DurableExecution", namespace, name, "status"), body)
        except KubeError as exc:
            if exc.status == 409:
                metrics().status_patches.labels(outcome="conflict").inc()
                obj = None
                continue
            metrics().status_patches.labels(outcome="error").inc()
            if exc.status == 404:
                rt.forget_execution(namespace, name)
                return False
            raise
        metrics().status_patches.labels(outcome="ok").inc()
        if record is not None:
            await announce(rt.kube, obj, old.get("phase"), status, record.workflow_id)
        return True
    raise KubeError(409, f"DurableExecution {namespace}/{name}: status kept changing under the mirror")


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    for key, value in new.items():
        if key == "conditions":
            strip = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in value]
            old_strip = [
                {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in old.get(key) or []
            ]
            if strip != old_strip:
                return False
        elif old.get(key) != value:
            return False
    return True


async def announce(
    kube: Any, obj: dict[str, Any], before: str | None, status: dict[str, Any], workflow: str
) -> None:
    """Kubernetes Events on notable phase transitions.

    Both writers of execution status call this (the mirror, and the start handler, which may
    write a running phase first): an event follows whichever patch made the transition.
    """
    after = status.get("phase")
    if after == before:
        return
    if before in (None, Phase.PENDING.value) and after not in (None, Phase.PENDING.value):
        await kube.event(obj, "Normal", "Started", f"execution {status['executionId']} started")
    if after == Phase.FAILED.value:
        metrics().executions_finished.labels(workflow=workflow, phase=after).inc()
        await kube.event(obj, "Warning", "Failed", status.get("message") or "the execution failed")
    elif after == Phase.SUCCEEDED.value:
        metrics().executions_finished.labels(workflow=workflow, phase=after).inc()
        await kube.event(obj, "Normal", "Succeeded", "the execution completed")
    elif after == Phase.CANCELLED.value:
        metrics().executions_finished.labels(workflow=workflow, phase=after).inc()
        await kube.event(obj, "Normal", "Cancelled", status.get("message") or "the execution was cancelled")
