"""The one state every part of `MemoryStore` works on, and the plumbing the parts share.

Nothing here awaits: a part's operation reads and writes the state in one uninterrupted
section, which is what makes it atomic on one event loop (see the package's docstring).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..._errors import ExecutionNotFound, LeaseLost
from ..._records import AuditEntry, ExecutionId, ExecutionRecord, QueueEntry, Status, StatusEvent, ms_to_dt
from ..._records import now_ms as _now_ms
from .._data import AuditDraft, Checkpoint, cancelled_error, forced_failure_error
from .._schedules_base import ScheduleRecord

_STATUS_CAP = 100_000
_EVENTS_CAP = 10_000
_AUDIT_CAP = 1_000


def audit_log() -> deque[AuditEntry]:
    """An execution's or a schedule's audit entries, the oldest dropped past the cap (like Redis' MAXLEN)."""
    return deque(maxlen=_AUDIT_CAP)


def append_audit(
    log: deque[AuditEntry], drafts: Sequence[AuditDraft], now_ms: int, seq: itertools.count[int]
) -> None:
    for d in drafts:
        log.append(d.to_entry(f"{now_ms}-{next(seq)}", now_ms))


async def changed(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait up to `timeout_s` for `event` to be set from now on; False on the time-out."""
    event.clear()
    try:
        await asyncio.wait_for(event.wait(), max(0.0, timeout_s))
    except TimeoutError:
        return False
    return True


@dataclass
class Exec:
    """One execution: its record's fields, its history, buffered signals, audit, lease."""

    execution_id: str
    workflow_id: str
    input: bytes
    created_ms: int
    status: Status = Status.PENDING
    updated_ms: int = 0
    started_ms: int | None = None
    finished_ms: int | None = None
    result: bytes | None = None
    error: bytes | None = None
    attempt: int = 1
    activations: int = 0
    current_step: str | None = None
    waiting_for: str = ""
    # The latest signal wait's name and payload schema (Store.signal_schema), dropped at the end.
    wait_signal: str = ""
    wait_schema: bytes | None = None
    wake_ms: int | None = None
    timer: str = ""
    fence: int = 0
    # A pending stop request: its reason, who asked, and the final status it asks for (`cancel`
    # asks for cancelled, `force_fail` for failed).
    cancel: str | None = None
    cancel_actor: str | None = None
    cancel_status: Status = Status.CANCELLED
    rewake: bool = False
    category: str | None = None
    parent: str | None = None
    lease: tuple[str, int, int] | None = None  # (worker, token, expires_ms)
    steps: dict[str, bytes] = field(default_factory=dict)
    signals: dict[str, deque[bytes]] = field(default_factory=dict)
    sigids: set[str] = field(default_factory=set)
    audit: deque[AuditEntry] = field(default_factory=audit_log)
    compacted_ms: int | None = None
    input_hash: str = ""
    run: int = 1
    version: str = ""
    on_parent_cancel: str | None = None
    # The concurrency group this execution asked a slot of ("": none; see `_concurrency.py`).
    conc_group: str = ""
    deadline_ms: int | None = None

    def lease_holder(self, now_ms: int) -> tuple[str, int, int] | None:
        if self.lease is not None and self.lease[2] <= now_ms:
            self.lease = None
        return self.lease

    def record(self) -> ExecutionRecord:
        return ExecutionRecord(
            execution_id=ExecutionId(self.execution_id),
            workflow_id=self.workflow_id,
            status=self.status,
            input=orjson.loads(self.input) if self.input else None,
            created_at=ms_to_dt(self.created_ms),  # type: ignore[arg-type]
            updated_at=ms_to_dt(self.updated_ms or self.created_ms),  # type: ignore[arg-type]
            started_at=ms_to_dt(self.started_ms),
            finished_at=ms_to_dt(self.finished_ms),
            result=orjson.loads(self.result) if self.result else None,
            error=orjson.loads(self.error) if self.error else None,
            attempt=self.attempt,
            activations=self.activations,
            current_step=self.current_step or None,
            waiting_for=self.waiting_for or None,
            wake_at=ms_to_dt(self.wake_ms),
            category=self.category,
            parent=self.parent,
            input_hash=self.input_hash or None,
            run=self.run,
            version=self.version or None,
            on_parent_cancel=self.on_parent_cancel,
            deadline=ms_to_dt(self.deadline_ms),
        )


@dataclass
class Schedules:
    records: dict[str, ScheduleRecord] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)  # schedule id -> due ms
    audit: dict[str, deque[AuditEntry]] = field(default_factory=dict)
    audit_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class MemoryState:
    """Everything one `MemoryStore` holds; each part of the store reads and writes some of it."""

    execs: dict[str, Exec] = field(default_factory=dict)
    # The ready queues, one per worker version ("" unversioned): entries not yet delivered, then
    # delivered ones until acked (id -> entry, consumer, ms delivered, version).
    ready: defaultdict[str, deque[QueueEntry]] = field(default_factory=lambda: defaultdict(deque))
    pending: OrderedDict[str, tuple[QueueEntry, str, int, str]] = field(default_factory=OrderedDict)
    # Workflow id -> the version its new executions go to; every version a worker announced.
    current_versions: dict[str, str] = field(default_factory=dict)
    known_versions: set[str] = field(default_factory=set)
    entry_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    queue_changed: asyncio.Event = field(default_factory=asyncio.Event)
    timers: dict[str, int] = field(default_factory=dict)  # member -> due ms
    timer_changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_waiters: dict[str, list[asyncio.Future[None]]] = field(default_factory=dict)
    status: deque[StatusEvent] = field(default_factory=lambda: deque(maxlen=_STATUS_CAP))
    status_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    status_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Status-feed consumer groups: group -> (seq of the last event read, unacknowledged events).
    groups: dict[str, tuple[int, dict[str, StatusEvent]]] = field(default_factory=dict)
    emitted: deque[tuple[str, str, Any]] = field(default_factory=lambda: deque(maxlen=_EVENTS_CAP))
    audit_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    signal_schemas: dict[str, bytes] = field(default_factory=dict)
    schedules: Schedules = field(default_factory=Schedules)
    # Concurrency groups: holders (id -> ms admitted), waiters (id -> ms created), limits.
    conc_slots: defaultdict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    conc_waiting: defaultdict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    conc_limits: dict[str, int] = field(default_factory=dict)

    def get(self, execution_id: str) -> Exec:
        ex = self.execs.get(execution_id)
        if ex is None:
            raise ExecutionNotFound(f"execution {execution_id!r} does not exist", execution_id=execution_id)
        return ex

    def enqueue(self, execution_id: str, reason: str, version: str | None = None) -> None:
        """Queue a run on the queue of the execution's version (or `version` for one that does not exist)."""
        ex = self.execs.get(execution_id)
        if ex is not None:
            version = ex.version
        entry_id = f"{_now_ms()}-{next(self.entry_seq)}"
        self.ready[version or ""].append(QueueEntry(entry_id, ExecutionId(execution_id), reason))
        self.queue_changed.set()

    def audit(self, ex: Exec, drafts: Sequence[AuditDraft], now_ms: int) -> None:
        append_audit(ex.audit, drafts, now_ms, self.audit_seq)

    def status_event(self, ex: Exec, now_ms: int) -> None:
        seq = next(self.status_seq)
        self.status.append(
            StatusEvent(
                event_id=f"{now_ms}-{seq}",
                execution_id=ExecutionId(ex.execution_id),
                workflow_id=ex.workflow_id,
                status=ex.status,
                current_step=ex.current_step,
                at=ms_to_dt(now_ms),  # type: ignore[arg-type]
            )
        )
        self.status_changed.set()

    def set_status(self, ex: Exec, status: Status, now_ms: int) -> None:
        ex.status = status
        ex.updated_ms = now_ms
        self.status_event(ex, now_ms)

    def set_timer(self, member: str, due_ms: int) -> None:
        # Wake the pollers only for a timer due before every one already set (as RedisStore's scripts
        # do): a poller sleeps until the earliest due time, which no later timer can move earlier.
        earliest = min(self.timers.values(), default=None)
        self.timers[member] = due_ms
        if earliest is None or due_ms < earliest:
            self.timer_changed.set()

    def drop_timer(self, ex: Exec) -> None:
        if ex.timer:
            self.timers.pop(ex.timer, None)
            ex.timer = ""

    def check_fence(self, ex: Exec, token: int, now_ms: int) -> None:
        holder = ex.lease_holder(now_ms)
        if ex.fence != token or holder is None or holder[1] != token:
            raise LeaseLost(
                f"execution {ex.execution_id!r}: lease token {token} is stale",
                execution_id=ex.execution_id,
                token=token,
            )

    def write(self, ex: Exec, cp: Checkpoint, now_ms: int) -> None:
        for step_id, rec in cp.records:
            ex.steps[step_id] = rec
        self.audit(ex, cp.audit, now_ms)
        for name, payload in cp.events:
            self.emitted.append((ex.execution_id, name, orjson.loads(payload) if payload else None))
        ex.updated_ms = now_ms
        if cp.current_step is not None and cp.current_step != ex.current_step:
            ex.current_step = cp.current_step
            self.status_event(ex, now_ms)

    def finalize(
        self,
        ex: Exec,
        status: Status,
        now_ms: int,
        *,
        result: bytes | None = None,
        error: bytes | None = None,
        audit: AuditDraft | None = None,
    ) -> None:
        ex.result = result
        ex.error = error
        ex.finished_ms = now_ms
        ex.cancel, ex.cancel_actor, ex.cancel_status = None, None, Status.CANCELLED
        ex.lease = None
        ex.waiting_for = ""
        ex.wait_signal, ex.wait_schema = "", None
        ex.wake_ms = None
        self.drop_timer(ex)
        self.set_status(ex, status, now_ms)
        self.audit(ex, [audit or AuditDraft(kind=status.value, message=f"execution {status.value}")], now_ms)
        for fut in self.finished_waiters.pop(ex.execution_id, []):
            if not fut.done():
                fut.set_result(None)

    def apply_stop_request(self, ex: Exec, now_ms: int) -> Status | None:
        """Apply a pending cancel or forced-failure request, if any; the final status it set."""
        if ex.cancel is None:
            return None
        status = ex.cancel_status
        self.stop_now(ex, status, ex.cancel, ex.cancel_actor, now_ms)
        return status

    def stop_now(self, ex: Exec, status: Status, reason: str, actor: str | None, now_ms: int) -> None:
        """Cancel (`status` cancelled) or force a failure (failed) now, each with its own error and audit."""
        if status == Status.FAILED:
            error = forced_failure_error(reason, actor)
            audit = AuditDraft(kind="failed.forced", message=f"failed (forced): {reason}", actor=actor)
        else:
            error = cancelled_error(reason, actor)
            audit = AuditDraft(kind="cancelled", message=f"cancelled: {reason}", actor=actor)
        self.finalize(ex, status, now_ms, error=error, audit=audit)

    def after_release(self, ex: Exec) -> None:
        """A wake-up that came while the lease was held runs now."""
        if ex.rewake:
            ex.rewake = False
            self.enqueue(ex.execution_id, "rewake")


class MemoryPart:
    """A part of `MemoryStore`: it works on the one state the store shares among its parts."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state
        # The worker version whose queue this store reads (see `Versions.versioned`).
        self._version = ""
