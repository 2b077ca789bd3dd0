"""The worker: reads the ready queue, fires timers, reclaims abandoned work, renews leases.

Several executions run at once on one event loop (`concurrency`); sync step bodies run in
a thread pool so a blocking step does not stall the others. The store being unreachable
is never fatal: each loop backs off and tries again, and nothing is acked until the
activation's outcome is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from .._backoff import Backoff
from .._errors import StoreUnavailable
from .._metrics import METRICS
from .._records import ExecutionId, QueueEntry
from .._store._base import WorkerStore
from .._store._schedules_base import ScheduleStore
from .._workflow._context import now_ms
from .._workflow._definitions import (
    HistoryLimit,
    WorkflowDef,
    lookup_workflow,
    registered_workflows,
    signal_schemas,
)
from ._engine import ACKED, Engine
from ._schedule_poller import Scheduler, StoreAndWorkflows
from ._threads import StepThreads

log = logging.getLogger("durable.worker")


class Worker:
    def __init__(
        self,
        store: WorkerStore | StoreAndWorkflows,
        workflows: Mapping[str, WorkflowDef] | None = None,
        *,
        concurrency: int = 64,
        worker_id: str | None = None,
        lease_ttl: float = 30.0,
        visibility_timeout: float = 60.0,
        threads: int | None = None,
        timers: bool = True,
        schedules: bool = True,
        recover: bool = True,
        max_idle_poll: float = 1.0,
        retention: float | None = None,
        version: str | None = None,
        make_current: bool = False,
        history_limit: HistoryLimit | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_ttl <= 0 or visibility_timeout <= 0:
            raise ValueError("lease_ttl and visibility_timeout must be positive")
        if retention is not None and retention < 0:
            raise ValueError("retention must be >= 0 seconds")
        # Seconds a completed or cancelled execution keeps its history before compaction (None: forever).
        self.retention_ms = None if retention is None else int(retention * 1000)
        if not isinstance(store, WorkerStore) and hasattr(store, "registry"):
            # A `Durable`, as before: its store and its workflows.
            workflows, store = store.registry, store.store
        self.store = cast(WorkerStore, store)
        # A versioned worker reads its version's queue only: it runs executions started on its version.
        if version:
            self.store = self.store.versioned(version)
        self.version = self.store.version
        self._make_current = make_current
        # This worker's workflows first, then any `@workflow` registered in the process. The mapping is
        # kept, not copied: workflows registered on the client later are served too.
        self.registry: Mapping[str, WorkflowDef] = workflows if workflows is not None else {}
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.lease_ttl_ms = int(lease_ttl * 1000)
        self.visibility_ms = int(visibility_timeout * 1000)
        self.max_idle_poll = max_idle_poll
        self._executor = StepThreads(threads or min(32, concurrency))
        self.engine = Engine(
            self.store,
            self.lookup,
            worker_id=self.worker_id,
            lease_ttl_ms=self.lease_ttl_ms,
            executor=self._executor,
            history_limit=history_limit,
        )
        self._with_timers = timers
        self._with_schedules = schedules
        self._with_recover = recover
        self._inflight: set[asyncio.Task[None]] = set()
        # Queue entries being run here now (by entry id).
        self._running_entries: set[str] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self.processed = 0

    def lookup(self, workflow_id: str) -> WorkflowDef | None:
        return lookup_workflow(self.registry, workflow_id)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.version:
            await self._retrying("announce version", self._announce_version)
        if self._with_recover:
            await self._retrying("recover", lambda: self.store.recover(now_ms()))
        # Senders without the app validate payloads of signals sent before anyone waits against these.
        schemas = signal_schemas()
        if schemas:
            await self._retrying("publish signal schemas", lambda: self.store.publish_signal_schemas(schemas))
        self._loops.append(asyncio.create_task(self._consume(), name="durable-consume"))
        self._loops.append(asyncio.create_task(self._reclaim(), name="durable-reclaim"))
        self._loops.append(asyncio.create_task(self._renew(), name="durable-renew"))
        if self._with_timers:
            self._loops.append(asyncio.create_task(self._timers(), name="durable-timers"))
        if self._with_schedules:
            self._loops.append(asyncio.create_task(self._schedules(), name="durable-schedules"))
        if self.retention_ms is not None:
            self._loops.append(asyncio.create_task(self._retention(), name="durable-retention"))
        log.info(
            "worker %s started (concurrency %d%s)",
            self.worker_id,
            self.concurrency,
            f", version {self.version}" if self.version else "",
        )

    def served_workflows(self) -> list[str]:
        """Ids of the workflows this worker runs: its own and those `@workflow` registered in the process."""
        return sorted(set(self.registry) | {wf.workflow_id for wf in registered_workflows()})

    async def _announce_version(self) -> None:
        """Make this version known, and current for the workflows it serves that have none (every one
        with `make_current`): the first workers of a version start its workflows' executions."""
        await self.store.add_known_version(self.version)
        for workflow_id in self.served_workflows():
            changed = await self.store.set_current_version(
                workflow_id, self.version, if_unset=not self._make_current
            )
            if changed:
                log.info("worker version %s is now current for workflow %s", self.version, workflow_id)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking work, let running activations finish for `grace` seconds, then hand back the rest."""
        self._stopping.set()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("worker %s stopped after %d activations", self.worker_id, self.processed)

    # ------------------------------------------------------------------ loops
    async def _retrying(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                return await fn()
            except StoreUnavailable as exc:
                log.warning("%s: store unreachable (%s); retrying in %.2f s", what, exc, backoff.delay)
                await backoff.sleep()
        return None

    async def _consume(self) -> None:
        backoff = Backoff()
        # A read that failed may have taken entries whose answer never came: they are delivered to this
        # worker and would wait for the visibility time-out; look for them once the store answers again.
        lost_read = False
        while not self._stopping.is_set():
            free = self.concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                if lost_read:
                    entries = await self.store.delivered_to(self.worker_id, free)
                else:
                    entries = await self.store.dequeue(self.worker_id, free, int(self.max_idle_poll * 1000))
                backoff = Backoff()
            except StoreUnavailable as exc:
                lost_read = True
                log.warning("queue read failed: %s; retrying in %.2f s", exc, backoff.delay)
                await backoff.sleep()
                continue
            taken_up = sum(self._spawn(entry) for entry in entries)
            if lost_read and taken_up:
                log.info("took up %d entries delivered by a read whose answer was lost", taken_up)
            lost_read = False

    def _spawn(self, entry: QueueEntry) -> bool:
        """Run `entry` unless it already runs here (read again, or taken over from ourselves)."""
        if entry.entry_id in self._running_entries:
            return False
        task = asyncio.create_task(self._handle(entry), name=f"durable-run-{entry.execution_id}")
        self._inflight.add(task)
        self._running_entries.add(entry.entry_id)

        def done(t: asyncio.Task[None]) -> None:
            self._inflight.discard(t)
            self._running_entries.discard(entry.entry_id)

        task.add_done_callback(done)
        return True

    async def _handle(self, entry: QueueEntry) -> None:
        backoff = Backoff()
        while True:
            try:
                outcome = await self.engine.run(entry.execution_id, entry.entry_id)
                if outcome not in ACKED:  # a final write or suspension acked it in the same step
                    await self.store.ack([entry.entry_id])
                break
            except StoreUnavailable as exc:
                if self._stopping.is_set():
                    return  # unacked: another worker reclaims it
                log.warning(
                    "execution %s: store unreachable (%s); retrying in %.2f s",
                    entry.execution_id,
                    exc,
                    backoff.delay,
                )
                await backoff.sleep()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug in the engine must not kill the worker; the entry stays unacked and is reclaimed.
                log.exception("execution %s: unexpected error in activation", entry.execution_id)
                return
        self.processed += 1
        METRICS.activations.labels(outcome=outcome).inc()

    async def _timers(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                now = now_ms()
                fired = await self.store.fire_due_timers(now)
                if fired:
                    continue
                due = await self.store.next_timer_due()
                wait = (
                    self.max_idle_poll
                    if due is None
                    else max(0.0, min(self.max_idle_poll, (due - now_ms()) / 1000))
                )
                if wait > 0:
                    await self.store.wait_timer_change(wait)
                backoff = Backoff()
            except StoreUnavailable as exc:
                log.warning("timer poll failed: %s; retrying in %.2f s", exc, backoff.delay)
                await backoff.sleep()

    async def _reclaim(self) -> None:
        period = max(0.05, self.visibility_ms / 4000)
        while not self._stopping.is_set():
            await asyncio.sleep(period)
            free = self.concurrency - len(self._inflight)
            if free <= 0:
                continue
            try:
                for entry in await self.store.reclaim(self.worker_id, self.visibility_ms, free):
                    log.info(
                        "reclaimed execution %s (%s) from a silent worker", entry.execution_id, entry.reason
                    )
                    self._spawn(entry)
                METRICS.queue_depth.set(await self.store.queue_depth())
                METRICS.due_timers.set(await self.store.due_timer_count(now_ms()))
            except StoreUnavailable as exc:
                log.warning("reclaim failed: %s", exc)

    async def _renew(self) -> None:
        period = max(0.05, self.lease_ttl_ms / 3000)
        while not self._stopping.is_set():
            await asyncio.sleep(period)
            for execution_id, token in list(self.engine.active.items()):
                with contextlib.suppress(StoreUnavailable):
                    if not await self.store.renew(
                        ExecutionId(execution_id), self.worker_id, token, self.lease_ttl_ms
                    ):
                        log.warning("execution %s: lease could not be renewed (taken over?)", execution_id)

    async def _retention(self) -> None:
        """Compact finished executions older than the retention; any number of workers may run this."""
        assert self.retention_ms is not None
        period = min(60.0, max(0.05, self.retention_ms / 4000))
        while not self._stopping.is_set():
            try:
                now = now_ms()
                # A full batch means more are due: go on at once instead of waiting a period.
                if await self.store.compact_finished(now - self.retention_ms, now, limit=500) >= 500:
                    continue
            except StoreUnavailable as exc:
                log.warning("retention pass failed: %s", exc)
            await asyncio.sleep(period)

    async def _schedules(self) -> None:
        if not isinstance(self.store, ScheduleStore):
            return
        scheduler = Scheduler(self)
        waiter: Callable[[float], Awaitable[Any]] = (
            getattr(scheduler, "wait_change", None)
            or getattr(self.store, "wait_schedule_change", None)
            or asyncio.sleep
        )
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                due = await scheduler.tick(now_ms())
                wait = (
                    self.max_idle_poll
                    if due is None
                    else max(0.0, min(self.max_idle_poll, (due - now_ms()) / 1000))
                )
                if wait > 0:
                    await waiter(wait)
                backoff = Backoff()
            except StoreUnavailable as exc:
                log.warning("schedule poll failed: %s; retrying in %.2f s", exc, backoff.delay)
                await backoff.sleep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("schedule poll failed")
                await asyncio.sleep(1.0)
