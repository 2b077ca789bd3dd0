"""The status mirror: engine status events -> DurableExecution status.

The engine XADDs every status change to a stream in the same Lua script that makes the
change. The mirror reads it through its own consumer group (the engine hands a consumer
its unacknowledged entries first, so a restart resumes where the last run stopped),
coalesces events per execution (only the latest state matters: it is re-read from
Redis), and patches CR status in batches at a bounded rate. Entries are acknowledged only
after their batch is applied. Executions without a CR get a mirror CR when their
DurableWorkflow asks for it (`mirror: all | failed`).

The mirror runs only in the active replica (see `_activity`). Each replica reads under a
consumer name of its own, and each term (a start, a restart after an error) under a fresh
one: a term begins by claiming every entry left unacknowledged in the group (a replica
that died or was paused mid-batch, or our own previous term) into the new name, whose
first reads return its pending entries. So a takeover loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

import pydantic

from durable import Store

from ._kube import KubeError
from ._metrics import metrics
from ._models import API_VERSION, PHASES, DurableWorkflowSpec, Phase
from ._runtime import (
    ANNOTATION_EXECUTION,
    LABEL_MIRROR,
    LABEL_SCHEDULE,
    LABEL_WORKFLOW,
    Runtime,
    WorkflowRef,
    execution_id_of,
    is_user_execution_id,
    mirror_name,
    owner_reference,
    path,
    workflow_ref,
)
from ._status import execution_status, failed_status, is_older, one_line

log = logging.getLogger("durable_operator.mirror")

#: How long a user execution's events wait for its CR to show up in the watch stream.
_DEFER_SECONDS = 30.0
#: How often one status write re-reads and retries when another writer got in between.
_CONFLICT_RETRIES = 5
_FINAL_PHASES = frozenset(p.value for p in Phase if p.is_final)


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
    def __init__(self, runtime: Runtime, *, replica: str = "", namespaces: tuple[str, ...] = ()) -> None:
        self.runtime = runtime
        self.replica = replica
        self.namespaces = namespaces
        self.limiter = RateLimiter(runtime.config.max_patches_per_second)
        self._task: asyncio.Task[None] | None = None
        self._deferred: dict[str, float] = {}
        self._terms = itertools.count(1)
        #: The consumer name of the current term (None while stopped).
        self.consumer: str | None = None
        self.batches = 0
        self.claimed = 0
        self.reconciles = 0
        self.healthy = True
        #: The next term reconciles every CR (set at start and after every failure).
        self._reconcile = True

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._reconcile = True
            self._task = asyncio.create_task(self.run(), name="durable-status-mirror")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.consumer = None

    def _next_consumer(self) -> str:
        base = self.runtime.config.consumer
        return f"{base}/{self.replica}/{next(self._terms)}" if self.replica else f"{base}/{next(self._terms)}"

    async def _begin_term(self, min_idle_ms: int, reconcile: bool = False) -> None:
        """A fresh consumer name that holds whatever the group left unacknowledged; fresh views.

        With `reconcile`, every CR is then brought in step with Redis: what a term that starts
        after an outage does (a Redis that restarted empty lost its stream and its group, and so
        the events of whatever changed), and the first term of a newly active replica.
        """
        consumer = self._next_consumer()
        cfg = self.runtime.config
        store = self.runtime.durable.store
        claimed = await claim_status_entries(store, cfg.group, consumer, min_idle_ms)
        await prune_status_consumers(store, cfg.group, consumer, int(cfg.claim_idle_seconds * 1000))
        if claimed:
            log.info("status mirror: claimed %d unacknowledged status events as %s", claimed, consumer)
            self.claimed += claimed
        self.consumer = consumer
        listed = await self.prime()
        if reconcile:
            await self.reconcile(listed)

    async def reconcile(self, listed: list[dict[str, Any]]) -> None:
        """Every started DurableExecution against Redis (as the start-up reconcile does)."""
        for body in listed:
            meta = body.get("metadata") or {}
            eid = (body.get("status") or {}).get("executionId")
            if eid and meta.get("name") and not meta.get("deletionTimestamp"):
                await write_execution_status(
                    self.runtime,
                    meta.get("namespace", ""),
                    meta["name"],
                    str(eid),
                    self.limiter,
                    mark_lost=True,
                    obj=body,
                )
        self.reconciles += 1

    async def prime(self) -> list[dict[str, Any]]:
        """Fill the views kopf's watch streams keep (they lag, or were paused, when a term begins).

        Returns the DurableExecutions it listed.
        """
        rt = self.runtime
        listed: list[dict[str, Any]] = []
        for ns in self.namespaces or (None,):
            for body in await rt.kube.list(path("DurableWorkflow", ns)):
                try:
                    spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
                except pydantic.ValidationError:
                    continue
                if not (body.get("metadata") or {}).get("deletionTimestamp"):
                    ref = workflow_ref(body, spec)
                    rt.workflows.setdefault((ref.namespace, ref.name), ref)
            for body in await rt.kube.list(path("DurableExecution", ns)):
                listed.append(body)
                eid = execution_id_of(body)
                meta = body.get("metadata") or {}
                if eid and meta.get("name"):
                    rt.executions.setdefault(eid, (meta.get("namespace", ns or ""), meta["name"]))
        return listed

    async def run(self) -> None:
        cfg = self.runtime.config
        store = self.runtime.durable.store
        backoff = 0.5
        claim_every = max(cfg.claim_idle_seconds / 2, 0.1)
        next_claim = next_resync = 0.0
        while True:
            try:
                if self.consumer is None:
                    # Term start: claim everything (a replica that stopped mid-batch, our own last term).
                    await self._begin_term(0, reconcile=self._reconcile)
                    self._reconcile = False
                    next_claim = time.monotonic() + claim_every
                    next_resync = time.monotonic() + cfg.resync_seconds
                elif cfg.resync_seconds > 0 and time.monotonic() >= next_resync:
                    next_resync = time.monotonic() + cfg.resync_seconds
                    await self.reconcile(await self.prime())
                elif time.monotonic() >= next_claim:
                    # Between batches: entries a deposed replica read and never acknowledged.
                    next_claim = time.monotonic() + claim_every
                    if await pending_elsewhere(
                        store, cfg.group, self.consumer, int(cfg.claim_idle_seconds * 1000)
                    ):
                        await self._begin_term(int(cfg.claim_idle_seconds * 1000))
                consumer = self.consumer
                assert consumer is not None
                events = await store.read_status_events(cfg.group, consumer, cfg.batch_size, 1000)
                deadline = time.monotonic() + cfg.batch_window
                # Gather a little more to coalesce bursts (a step commit is often followed by the next one).
                while events and len(events) < cfg.batch_size and time.monotonic() < deadline:
                    more = await store.read_status_events(
                        cfg.group, consumer, cfg.batch_size - len(events), 0
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
                # The store reads a consumer's pending entries only on its first reads: a new term
                # (which claims them) makes the entries of the failed batch come round again.
                self.consumer = None
                self._reconcile = True
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

    async def refresh(self, namespace: str, name: str, execution_id: str) -> None:
        await write_execution_status(self.runtime, namespace, name, execution_id, self.limiter)

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
            if not mark_lost or old.get("phase") in _FINAL_PHASES:
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


# ---------------------------------------------------------------- claiming


async def claim_status_entries(store: Store, group: str, consumer: str, min_idle_ms: int) -> int:
    """Move every entry of the group idle for `min_idle_ms` into `consumer`'s pending list."""
    return await store.claim_status_events(group, consumer, min_idle_ms)


async def pending_elsewhere(store: Store, group: str, consumer: str, min_idle_ms: int) -> bool:
    """Does another consumer hold entries it has not touched for `min_idle_ms`?"""
    return any(
        c.name != consumer and c.pending > 0 and c.idle_ms >= min_idle_ms
        for c in await store.status_consumers(group)
    )


async def prune_status_consumers(store: Store, group: str, keep: str, min_idle_ms: int) -> None:
    """Forget consumers with nothing pending that have been quiet for a while (old terms, gone replicas)."""
    for c in await store.status_consumers(group):
        if c.name != keep and c.pending == 0 and c.idle_ms >= min_idle_ms:
            await store.drop_status_consumer(group, c.name)


__all__ = [
    "RateLimiter",
    "StatusMirror",
    "claim_status_entries",
    "one_line",
    "pending_elsewhere",
    "prune_status_consumers",
    "write_execution_status",
]


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
