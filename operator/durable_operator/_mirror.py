"""The status mirror: engine status events -> DurableExecution status.

The engine XADDs every status change to a stream in the same Lua script that makes the
change. The mirror reads it through its own consumer group (the engine hands a consumer
its unacknowledged entries first, so a restart resumes where the last run stopped),
coalesces events per execution (only the latest state matters: it is re-read from
Redis), and patches CR status in batches at a bounded rate. Entries are acknowledged only
after their batch is applied. Executions without a CR get a mirror CR when their
DurableWorkflow asks for it (`mirror: all | failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ._kube import KubeError
from ._metrics import metrics
from ._models import API_VERSION, PHASES, Phase
from ._runtime import (
    ANNOTATION_EXECUTION,
    LABEL_MIRROR,
    LABEL_SCHEDULE,
    LABEL_WORKFLOW,
    Runtime,
    WorkflowRef,
    is_user_execution_id,
    mirror_name,
    owner_reference,
    path,
)
from ._status import execution_status, one_line

log = logging.getLogger("durable_operator.mirror")

#: How long a user execution's events wait for its CR to show up in the watch stream.
_DEFER_SECONDS = 30.0


class RateLimiter:
    """A token bucket: `rate` operations per second, bursts up to `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = max(rate, 0.1)
        self.tokens = self.rate
        self.stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class StatusMirror:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.limiter = RateLimiter(runtime.config.max_patches_per_second)
        self._task: asyncio.Task[None] | None = None
        self._deferred: dict[str, float] = {}
        self.batches = 0
        self.healthy = True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="durable-status-mirror")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        cfg = self.runtime.config
        store = self.runtime.durable.store
        backoff = 0.5
        while True:
            try:
                events = await store.read_status_events(cfg.group, cfg.consumer, cfg.batch_size, 1000)
                deadline = time.monotonic() + cfg.batch_window
                # Gather a little more to coalesce bursts (a step commit is often followed by the next one).
                while events and len(events) < cfg.batch_size and time.monotonic() < deadline:
                    more = await store.read_status_events(
                        cfg.group, cfg.consumer, cfg.batch_size - len(events), 0
                    )
                    if not more:
                        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                        continue
                    events.extend(more)
                if events:
                    metrics().status_events.inc(len(events))
                latest: dict[str, Any] = {}
                for event in events:
                    latest[event.execution_id] = event
                for eid in [e for e, since in self._deferred.items() if e not in latest]:
                    if time.monotonic() - self._deferred[eid] > _DEFER_SECONDS:
                        del self._deferred[eid]
                    else:
                        latest[eid] = None
                metrics().pending_patches.set(len(latest))
                if latest:
                    with metrics().batch_seconds.time():
                        for eid, event in latest.items():
                            await self.apply(eid, event.workflow_id if event is not None else None)
                if events:
                    await store.ack_status_events(cfg.group, [e.event_id for e in events])
                self.batches += 1
                self.healthy = True
                backoff = 0.5
                if not events and not self._deferred:
                    await asyncio.sleep(0)
                elif not events:
                    await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store or API outage: keep the entries unacked, retry
                self.healthy = False
                log.warning("status mirror: %s: %s; retrying in %.1fs", type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def apply(self, execution_id: str, workflow_id: str | None) -> None:
        """Bring the CR of one execution in step with Redis (creating a mirror when asked)."""
        rt = self.runtime
        key = rt.executions.get(execution_id)
        if key is None:
            if is_user_execution_id(execution_id):
                # A user's CR the watch stream has not shown us yet (start-up): try again shortly.
                self._deferred.setdefault(execution_id, time.monotonic())
                return
            key = await self._ensure_mirror(execution_id, workflow_id)
            if key is None:
                return
        self._deferred.pop(execution_id, None)
        await self.refresh(key[0], key[1], execution_id)

    async def refresh(
        self, namespace: str, name: str, execution_id: str, obj: dict[str, Any] | None = None
    ) -> None:
        rt = self.runtime
        record = await rt.durable.get_execution(execution_id)
        if record is None:
            return
        if obj is None:
            obj = await rt.kube.get(path("DurableExecution", namespace, name))
            if obj is None:
                rt.forget_execution(namespace, name)
                return
        old = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        status = execution_status(record, old, generation, rt.config.result_cap)
        if _same(old, status):
            return
        await self.limiter.take()
        try:
            await rt.kube.merge_patch(path("DurableExecution", namespace, name, "status"), {"status": status})
        except KubeError as exc:
            metrics().status_patches.labels(outcome="error").inc()
            if exc.status == 404:
                rt.forget_execution(namespace, name)
                return
            raise
        metrics().status_patches.labels(outcome="ok").inc()
        await self._announce(obj, old.get("phase"), status, record.workflow_id)

    async def _announce(
        self, obj: dict[str, Any], before: str | None, status: dict[str, Any], workflow: str
    ) -> None:
        """Kubernetes Events on notable transitions."""
        after = status.get("phase")
        if after == before:
            return
        kube = self.runtime.kube
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
            await kube.event(
                obj, "Normal", "Cancelled", status.get("message") or "the execution was cancelled"
            )

    async def _ensure_mirror(self, execution_id: str, workflow_id: str | None) -> tuple[str, str] | None:
        rt = self.runtime
        record = await rt.durable.get_execution(execution_id)
        if record is None:
            return None
        phase = PHASES.get(str(record.status), Phase.PENDING)
        refs = [r for r in rt.workflows_by_id(record.workflow_id) if _wants(r, phase)]
        if not refs:
            return None
        # One mirror per execution: in the first namespace (by name) that declares the workflow.
        ref = min(refs, key=lambda r: (r.namespace, r.name))
        name = mirror_name(execution_id)
        labels = {LABEL_MIRROR: "true", LABEL_WORKFLOW: ref.name}
        schedule = rt.schedules.get(execution_id.split("@", 1)[0]) if "@" in execution_id else None
        if schedule is not None and schedule[0] == ref.namespace:
            labels[LABEL_SCHEDULE] = schedule[1]
        owner = {
            "apiVersion": API_VERSION,
            "kind": "DurableWorkflow",
            "metadata": {"name": ref.name, "uid": ref.uid},
        }
        body = {
            "apiVersion": API_VERSION,
            "kind": "DurableExecution",
            "metadata": {
                "name": name,
                "namespace": ref.namespace,
                "labels": labels,
                "annotations": {ANNOTATION_EXECUTION: execution_id},
                "ownerReferences": [owner_reference(owner, controller=False)],
            },
            "spec": {"workflowRef": ref.name, "executionId": execution_id, "cancelOnDelete": False},
        }
        try:
            await rt.kube.create(path("DurableExecution", ref.namespace), body)
            metrics().mirrors_created.labels(workflow=record.workflow_id).inc()
            log.info("mirrored execution %s as %s/%s", execution_id, ref.namespace, name)
        except KubeError as exc:
            if exc.status != 409:
                raise
        rt.executions[execution_id] = (ref.namespace, name)
        return ref.namespace, name


def _wants(ref: WorkflowRef, phase: Phase) -> bool:
    if ref.mirror == "all":
        return True
    return ref.mirror == "failed" and phase == Phase.FAILED


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


__all__ = ["RateLimiter", "StatusMirror", "one_line"]
