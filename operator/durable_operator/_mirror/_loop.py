"""The mirror's loop: terms, batches of status events, and the mirror CRs of executions started elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

import pydantic

from durable import Backoff, StatusEvent, StatusFeed

from .._kube import KubeError
from .._metrics import metrics
from .._models import API_VERSION, PHASES, DurableWorkflowSpec, Phase
from .._runtime import (
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
from ._batching import RateLimiter, read_batch
from ._consumers import claim_status_entries, pending_elsewhere, prune_status_consumers
from ._writes import write_execution_status

log = logging.getLogger("durable_operator.mirror")

#: How long a user execution's events wait for its CR to show up in the watch stream.
_DEFER_SECONDS = 30.0


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
    def feed(self) -> StatusFeed:
        """The part of the store the mirror reads (executions it reads through the client)."""
        return self.runtime.durable.store

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
        feed = self.feed
        claimed = await claim_status_entries(feed, cfg.group, consumer, min_idle_ms)
        await prune_status_consumers(feed, cfg.group, consumer, int(cfg.claim_idle_seconds * 1000))
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
        feed = self.feed
        # After a failure: 0.5 s, doubling up to 10 s; back to 0.5 s after a batch goes through.
        backoff = Backoff(0.5, 10.0)
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
                        feed, cfg.group, self.consumer, int(cfg.claim_idle_seconds * 1000)
                    ):
                        await self._begin_term(int(cfg.claim_idle_seconds * 1000))
                consumer = self.consumer
                assert consumer is not None
                events = await read_batch(feed, cfg.group, consumer, cfg.batch_size, cfg.batch_window)
                if events:
                    metrics().status_events.inc(len(events))
                latest: dict[str, StatusEvent | None] = {event.execution_id: event for event in events}
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
                    await feed.ack_status_events(cfg.group, [e.event_id for e in events])
                self.batches += 1
                self.healthy = True
                backoff.reset()
                if not events and not self._deferred:
                    await asyncio.sleep(0)
                elif not events:
                    await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store or API outage: keep the entries unacked, retry
                self.healthy = False
                log.warning(
                    "status mirror: %s: %s; retrying in %.1fs", type(exc).__name__, exc, backoff.delay
                )
                # The store reads a consumer's pending entries only on its first reads: a new term
                # (which claims them) makes the entries of the failed batch come round again.
                self.consumer = None
                self._reconcile = True
                await backoff.sleep()

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


def _wants(ref: WorkflowRef, phase: Phase) -> bool:
    if ref.mirror == "all":
        return True
    return ref.mirror == "failed" and phase == Phase.FAILED
