"""In-process store for development and tests.

Same semantics as the Redis store (one conformance suite runs on both). Every method
body runs without an `await` between its reads and writes, which is what makes it
atomic on one event loop. Lease time-to-lives follow the monotonic-free wall clock in
milliseconds that callers pass or `time.time()`, like Redis' PX.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .._errors import (
    ExecutionConflict,
    ExecutionFinished,
    ExecutionNotFailed,
    ExecutionNotFound,
    InvalidStepId,
    LeaseLost,
    WaitTimeoutError,
)
from .._history import consumed_signal_name, is_failed
from .._records import (
    FINAL_STATUSES,
    AuditEntry,
    ExecutionId,
    ExecutionRecord,
    QueueEntry,
    Status,
    StatusConsumer,
    StatusEvent,
    ms_to_dt,
)
from ._base import (
    CHECKED_BY_MODEL,
    Acquired,
    AuditDraft,
    Checkpoint,
    ExecutionQuery,
    NewExecution,
    SchemaCheckNeeded,
    SignalWait,
    Store,
    SuspendOutcome,
    conflict_error,
    schema_digest,
)
from ._memory_schedules import MemoryScheduleStore

_STATUS_CAP = 100_000
_EVENTS_CAP = 10_000
_AUDIT_CAP = 1_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _conflict(new: NewExecution, existing_workflow_id: str, reason: str) -> ExecutionConflict:
    return conflict_error(new.execution_id, new.workflow_id, existing_workflow_id, reason)


@dataclass
class _Exec:
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
    cancel: str | None = None
    cancel_actor: str | None = None
    rewake: bool = False
    category: str | None = None
    parent: str | None = None
    lease: tuple[str, int, int] | None = None  # (worker, token, expires_ms)
    steps: dict[str, bytes] = field(default_factory=dict)
    signals: dict[str, deque[bytes]] = field(default_factory=dict)
    sigids: set[str] = field(default_factory=set)
    audit: deque[AuditEntry] = field(default_factory=lambda: deque(maxlen=_AUDIT_CAP))
    compacted_ms: int | None = None
    input_hash: str = ""
    run: int = 1

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
        )


class MemoryStore(MemoryScheduleStore, Store):
    """All state in one process. Not shared between processes; lost on exit."""

    url_schemes = ("memory",)

    @classmethod
    def open_url(cls, url: str, **options: Any) -> MemoryStore:
        return cls()

    def __init__(self) -> None:
        self._execs: dict[str, _Exec] = {}
        self._entry_seq = itertools.count(1)
        self._ready: deque[QueueEntry] = deque()
        self._pending: OrderedDict[str, tuple[QueueEntry, str, int]] = (
            OrderedDict()
        )  # id -> (entry, consumer, ms)
        self._queue_changed = asyncio.Event()
        self._timers: dict[str, int] = {}  # member -> due ms
        self._timer_changed = asyncio.Event()
        self._finished_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._status: deque[StatusEvent] = deque(maxlen=_STATUS_CAP)
        self._status_seq = itertools.count(1)
        self._status_changed = asyncio.Event()
        self._groups: dict[str, tuple[int, dict[str, StatusEvent]]] = {}  # group -> (last seq read, pending)
        self._emitted: deque[tuple[str, str, Any]] = deque(maxlen=_EVENTS_CAP)
        self._audit_seq = itertools.count(1)
        self._signal_schemas: dict[str, bytes] = {}

    # ---------------------------------------------------------------- helpers
    def _get(self, execution_id: str) -> _Exec:
        ex = self._execs.get(execution_id)
        if ex is None:
            raise ExecutionNotFound(f"execution {execution_id!r} does not exist", execution_id=execution_id)
        return ex

    def _entry_id(self) -> str:
        return f"{_now_ms()}-{next(self._entry_seq)}"

    def _enqueue(self, execution_id: str, reason: str) -> None:
        self._ready.append(QueueEntry(self._entry_id(), ExecutionId(execution_id), reason))
        self._queue_changed.set()

    def _audit(self, ex: _Exec, drafts: Sequence[AuditDraft], now_ms: int) -> None:
        for d in drafts:
            ex.audit.append(d.to_entry(f"{now_ms}-{next(self._audit_seq)}", now_ms))

    def _status_event(self, ex: _Exec, now_ms: int) -> None:
        seq = next(self._status_seq)
        self._status.append(
            StatusEvent(
                event_id=f"{now_ms}-{seq}",
                execution_id=ExecutionId(ex.execution_id),
                workflow_id=ex.workflow_id,
                status=ex.status,
                current_step=ex.current_step,
                at=ms_to_dt(now_ms),  # type: ignore[arg-type]
            )
        )
        self._status_changed.set()

    def _set_status(self, ex: _Exec, status: Status, now_ms: int) -> None:
        ex.status = status
        ex.updated_ms = now_ms
        self._status_event(ex, now_ms)

    def _drop_timer(self, ex: _Exec) -> None:
        if ex.timer:
            self._timers.pop(ex.timer, None)
            ex.timer = ""

    def _check_fence(self, ex: _Exec, token: int, now_ms: int) -> None:
        holder = ex.lease_holder(now_ms)
        if ex.fence != token or holder is None or holder[1] != token:
            raise LeaseLost(
                f"execution {ex.execution_id!r}: lease token {token} is stale",
                execution_id=ex.execution_id,
                token=token,
            )

    def _write(self, ex: _Exec, cp: Checkpoint, now_ms: int) -> None:
        for step_id, rec in cp.records:
            ex.steps[step_id] = rec
        self._audit(ex, cp.audit, now_ms)
        for name, payload in cp.events:
            self._emitted.append((ex.execution_id, name, orjson.loads(payload) if payload else None))
        ex.updated_ms = now_ms
        if cp.current_step is not None and cp.current_step != ex.current_step:
            ex.current_step = cp.current_step
            self._status_event(ex, now_ms)

    def _wake_finished(self, execution_id: str) -> None:
        for fut in self._finished_waiters.pop(execution_id, []):
            if not fut.done():
                fut.set_result(None)

    def _finalize(
        self,
        ex: _Exec,
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
        ex.lease = None
        ex.waiting_for = ""
        ex.wait_signal, ex.wait_schema = "", None
        ex.wake_ms = None
        self._drop_timer(ex)
        self._set_status(ex, status, now_ms)
        self._audit(ex, [audit or AuditDraft(kind=status.value, message=f"execution {status.value}")], now_ms)
        self._wake_finished(ex.execution_id)

    def _cancel_now(self, ex: _Exec, reason: str, actor: str | None, now_ms: int) -> None:
        error = orjson.dumps(
            {"type": "Cancelled", "message": reason, "fields": {"reason": reason, "actor": actor}}
        )
        ex.cancel = None
        self._finalize(
            ex,
            Status.CANCELLED,
            now_ms,
            error=error,
            audit=AuditDraft(kind="cancelled", message=f"cancelled: {reason}", actor=actor),
        )

    def _after_release(self, ex: _Exec) -> None:
        if ex.rewake:
            ex.rewake = False
            self._enqueue(ex.execution_id, "rewake")

    # ---------------------------------------------------------------- executions
    async def create_execution(self, new: NewExecution) -> bool:
        old = self._execs.get(new.execution_id)
        if old is not None:
            replace = new.id_reuse == "allow_if_finished" and old.status in FINAL_STATUSES
            if not replace:
                if old.workflow_id != new.workflow_id:
                    raise _conflict(new, old.workflow_id, "workflow")
                if old.input_hash and old.input_hash != new.input_hash:
                    raise _conflict(new, old.workflow_id, "input")
                return False
        ex = _Exec(
            execution_id=new.execution_id,
            workflow_id=new.workflow_id,
            input=new.input,
            created_ms=new.now_ms,
            updated_ms=new.now_ms,
            category=new.category,
            parent=new.parent,
            input_hash=new.input_hash,
        )
        if old is not None:
            # A fresh run: the old one's history (steps, signals, delivery ids, lease) goes, its audit stays.
            self._drop_timer(old)
            ex.run = old.run + 1
            ex.fence = old.fence  # tokens never repeat under one id: a stale worker stays fenced out
            ex.audit = old.audit
            message = f"run {old.run} ({old.status.value}, {old.workflow_id}) replaced by run {ex.run}"
            self._audit(ex, [AuditDraft(kind="replaced", message=message, actor=new.actor)], new.now_ms)
        self._execs[new.execution_id] = ex
        self._status_event(ex, new.now_ms)
        self._audit(
            ex,
            [AuditDraft(kind="created", message=f"execution of {new.workflow_id} created", actor=new.actor)],
            new.now_ms,
        )
        if new.start_at_ms is not None and new.start_at_ms > new.now_ms:
            ex.wake_ms = new.start_at_ms
            ex.timer = f"{new.execution_id}|start"
            self._timers[ex.timer] = new.start_at_ms
            self._timer_changed.set()
        else:
            self._enqueue(new.execution_id, new.reason)
        return True

    def import_history(self, execution_id: str, steps: dict[str, bytes]) -> None:
        """Replace an execution's step records (replay tests load recorded histories this way)."""
        self._get(execution_id).steps = dict(steps)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        ex = self._execs.get(execution_id)
        return ex.record() if ex else None

    async def load_steps(self, execution_id: str) -> dict[str, bytes]:
        ex = self._execs.get(execution_id)
        return dict(ex.steps) if ex else {}

    async def list_audit(self, execution_id: str, limit: int = 1000) -> list[AuditEntry]:
        ex = self._execs.get(execution_id)
        return list(ex.audit)[:limit] if ex else []

    async def append_audit(self, execution_id: str, drafts: Sequence[AuditDraft]) -> None:
        self._audit(self._get(execution_id), drafts, _now_ms())

    async def list_executions(self, query: ExecutionQuery) -> tuple[list[ExecutionRecord], str | None]:
        candidates = sorted(self._execs.values(), key=lambda e: (e.created_ms, e.execution_id), reverse=True)
        start = 0
        if query.cursor:
            start = int(query.cursor)
        out: list[ExecutionRecord] = []
        index = start
        for index in range(start, len(candidates)):
            ex = candidates[index]
            if query.workflow_id is not None and ex.workflow_id != query.workflow_id:
                continue
            if query.statuses and ex.status not in query.statuses:
                continue
            if query.created_after_ms is not None and ex.created_ms < query.created_after_ms:
                continue
            if query.created_before_ms is not None and ex.created_ms >= query.created_before_ms:
                continue
            out.append(ex.record())
            if len(out) >= query.limit:
                nxt = index + 1
                return out, (str(nxt) if nxt < len(candidates) else None)
        return out, None

    async def list_active(self, limit: int = 10_000) -> list[ExecutionId]:
        ids = [ExecutionId(e.execution_id) for e in self._execs.values() if e.status not in FINAL_STATUSES]
        return ids[:limit]

    # ---------------------------------------------------------------- worker side
    async def acquire(self, execution_id: str, worker_id: str, ttl_ms: int, now_ms: int) -> Acquired:
        ex = self._execs.get(execution_id)
        if ex is None:
            return Acquired("missing")
        if ex.status in FINAL_STATUSES:
            return Acquired("finished")
        holder = ex.lease_holder(now_ms)
        if holder is not None:
            ex.rewake = True
            return Acquired("busy", retry_after_ms=max(1, holder[2] - now_ms))
        if ex.cancel is not None:
            self._cancel_now(ex, ex.cancel, ex.cancel_actor, now_ms)
            return Acquired("finished")
        ex.fence += 1
        ex.lease = (worker_id, ex.fence, now_ms + ttl_ms)
        self._drop_timer(ex)
        ex.rewake = False
        ex.activations += 1
        if ex.started_ms is None:
            ex.started_ms = now_ms
        if ex.status != Status.RUNNING:
            ex.waiting_for = ""
            ex.wake_ms = None
            self._set_status(ex, Status.RUNNING, now_ms)
        ex.updated_ms = now_ms
        return Acquired("ok", token=ex.fence, record=ex.record(), steps=dict(ex.steps))

    async def renew(self, execution_id: str, worker_id: str, token: int, ttl_ms: int) -> bool:
        ex = self._execs.get(execution_id)
        if ex is None:
            return False
        now_ms = _now_ms()
        holder = ex.lease_holder(now_ms)
        if holder is None or holder[1] != token or ex.fence != token:
            return False
        ex.lease = (worker_id, token, now_ms + ttl_ms)
        return True

    async def commit(self, execution_id: str, token: int, checkpoint: Checkpoint, now_ms: int) -> bool:
        ex = self._get(execution_id)
        self._check_fence(ex, token, now_ms)
        if ex.cancel is not None:
            return True
        self._write(ex, checkpoint, now_ms)
        return False

    async def suspend(
        self,
        execution_id: str,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        wake_at_ms: int | None = None,
        timer_id: str | None = None,
        wait: SignalWait | None = None,
        ack: str | None = None,
    ) -> SuspendOutcome:
        ex = self._get(execution_id)
        self._check_fence(ex, token, now_ms)
        if ex.cancel is not None:
            return SuspendOutcome("cancelled")
        self._write(ex, checkpoint, now_ms)
        if wait is not None:
            ex.wait_signal, ex.wait_schema = wait.name, wait.schema
            buffered = ex.signals.get(wait.name)
            if buffered:
                payload = buffered.popleft()
                ex.steps[wait.step_id] = wait.record_prefix + payload + wait.record_suffix
                self._audit(
                    ex,
                    [
                        AuditDraft(
                            kind="signal.consumed",
                            message=f"signal {wait.name} consumed",
                            step_id=wait.step_id,
                        )
                    ],
                    now_ms,
                )
                return SuspendOutcome("signal", payload)
            if (
                wait.deadline_ms is not None
                and now_ms >= wait.deadline_ms
                and wait.timeout_record is not None
            ):
                ex.steps[wait.step_id] = wait.timeout_record
                return SuspendOutcome("timeout")
        ex.waiting_for = wait.name if wait is not None else ""
        ex.wake_ms = wake_at_ms
        due_now = wake_at_ms is not None and wake_at_ms <= now_ms
        if wake_at_ms is not None:
            self._drop_timer(ex)
            if not due_now:
                ex.timer = f"{execution_id}|{timer_id or 'wake'}"
                self._timers[ex.timer] = wake_at_ms
                self._timer_changed.set()
        ex.lease = None
        self._set_status(ex, status, now_ms)
        if due_now:
            # Already due (a 0 s sleep, a passed retry time): straight to the queue, no timer round.
            ex.rewake = False
            self._enqueue(execution_id, "timer")
        self._after_release(ex)
        if ack:
            self._pending.pop(ack, None)
        return SuspendOutcome("suspended")

    async def finish(
        self,
        execution_id: str,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        result: bytes | None = None,
        error: bytes | None = None,
        ack: str | None = None,
    ) -> None:
        ex = self._get(execution_id)
        self._check_fence(ex, token, now_ms)
        self._write(ex, checkpoint, now_ms)
        ex.cancel = None
        self._finalize(ex, status, now_ms, result=result, error=error)
        if ack:
            self._pending.pop(ack, None)

    async def release(self, execution_id: str, worker_id: str, token: int) -> None:
        ex = self._execs.get(execution_id)
        if ex is None:
            return
        now_ms = _now_ms()
        holder = ex.lease_holder(now_ms)
        if holder is not None and holder[1] == token:
            ex.lease = None
        elif holder is not None or ex.fence != token:
            return
        if ex.status in FINAL_STATUSES:
            return
        # A cancel requested while we ran takes effect the moment we let go.
        if ex.cancel is not None:
            self._cancel_now(ex, ex.cancel, ex.cancel_actor, now_ms)
            return
        self._after_release(ex)

    # ---------------------------------------------------------------- signals, cancel, actions
    async def send_signal(
        self,
        execution_id: str,
        name: str,
        payload: bytes,
        delivery_id: str,
        now_ms: int,
        actor: str | None = None,
        *,
        checked: str = CHECKED_BY_MODEL,
    ) -> bool:
        ex = self._get(execution_id)
        if ex.status in FINAL_STATUSES:
            raise ExecutionFinished(
                f"execution {execution_id!r} is {ex.status.value}; signal {name!r} not delivered",
                execution_id=execution_id,
                status=ex.status.value,
            )
        if (
            checked != CHECKED_BY_MODEL
            and ex.wait_signal == name
            and ex.wait_schema
            and schema_digest(ex.wait_schema) != checked
        ):
            raise SchemaCheckNeeded(ex.wait_schema)
        if delivery_id in ex.sigids:
            return False
        ex.sigids.add(delivery_id)
        ex.signals.setdefault(name, deque()).append(payload)
        self._audit(
            ex,
            [
                AuditDraft(
                    kind="signal.received", message=f"signal {name} received", actor=actor, data=payload
                )
            ],
            now_ms,
        )
        if ex.status == Status.WAITING and ex.waiting_for == name:
            ex.waiting_for = ""
            self._enqueue(execution_id, "signal")
        return True

    async def signal_schema(self, execution_id: str, name: str) -> bytes | None:
        ex = self._execs.get(execution_id)
        if ex is not None and ex.wait_signal == name and ex.wait_schema:
            return ex.wait_schema
        return self._signal_schemas.get(name)

    async def published_signal_schemas(self) -> dict[str, bytes]:
        return dict(self._signal_schemas)

    async def publish_signal_schemas(self, schemas: Mapping[str, bytes]) -> None:
        self._signal_schemas.update(schemas)

    async def cancel(self, execution_id: str, reason: str, actor: str | None, now_ms: int) -> Status:
        ex = self._get(execution_id)
        if ex.status in FINAL_STATUSES:
            raise ExecutionFinished(
                f"execution {execution_id!r} is already {ex.status.value}",
                execution_id=execution_id,
                status=ex.status.value,
            )
        if ex.lease_holder(now_ms) is not None:
            ex.cancel = reason
            ex.cancel_actor = actor
            self._audit(
                ex,
                [AuditDraft(kind="cancel.requested", message=f"cancel requested: {reason}", actor=actor)],
                now_ms,
            )
            return Status.RUNNING
        self._cancel_now(ex, reason, actor, now_ms)
        return Status.CANCELLED

    async def retry_execution(
        self, execution_id: str, actor: str | None, now_ms: int, *, discard_signal_step: str | None = None
    ) -> None:
        ex = self._get(execution_id)
        if ex.status != Status.FAILED:
            raise ExecutionNotFailed(
                f"execution {execution_id!r} is {ex.status.value}, not failed",
                execution_id=execution_id,
                status=ex.status.value,
            )
        if discard_signal_step:
            raw = ex.steps.get(discard_signal_step)
            name = consumed_signal_name(raw)
            if raw is None or name is None:
                raise InvalidStepId(
                    f"execution {execution_id!r} has no consumed signal at step {discard_signal_step!r} to discard",
                    execution_id=execution_id,
                    step_id=discard_signal_step,
                )
            del ex.steps[discard_signal_step]
            self._audit(
                ex,
                [
                    AuditDraft(
                        kind="signal.discarded",
                        message=f"consumed signal {name} discarded at step {discard_signal_step}",
                        step_id=discard_signal_step,
                        actor=actor,
                        data=raw,
                    )
                ],
                now_ms,
            )
        for step_id, rec in list(ex.steps.items()):
            if is_failed(rec):
                del ex.steps[step_id]
        ex.attempt += 1
        ex.result = None
        ex.error = None
        ex.finished_ms = None
        self._set_status(ex, Status.PENDING, now_ms)
        self._audit(
            ex,
            [AuditDraft(kind="retry", message=f"retry requested (attempt {ex.attempt})", actor=actor)],
            now_ms,
        )
        self._enqueue(execution_id, "retry")

    async def skip_step(
        self, execution_id: str, step_id: str, record: bytes, actor: str | None, now_ms: int
    ) -> None:
        ex = self._get(execution_id)
        if ex.status in FINAL_STATUSES:
            raise ExecutionFinished(
                f"execution {execution_id!r} is already {ex.status.value}",
                execution_id=execution_id,
                status=ex.status.value,
            )
        ex.steps[step_id] = record
        self._audit(
            ex,
            [
                AuditDraft(
                    kind="step.skipped", message=f"step {step_id} skipped", step_id=step_id, actor=actor
                )
            ],
            now_ms,
        )
        if ex.lease_holder(now_ms) is None:
            self._drop_timer(ex)
        self._enqueue(execution_id, "skip")

    # ---------------------------------------------------------------- queue
    async def enqueue(self, execution_id: str, reason: str) -> None:
        self._enqueue(execution_id, reason)

    async def dequeue(self, consumer: str, count: int, block_ms: int) -> list[QueueEntry]:
        if not self._ready and block_ms > 0:
            self._queue_changed.clear()
            try:
                await asyncio.wait_for(self._queue_changed.wait(), block_ms / 1000)
            except TimeoutError:
                return []
        out: list[QueueEntry] = []
        now_ms = _now_ms()
        while self._ready and len(out) < count:
            entry = self._ready.popleft()
            self._pending[entry.entry_id] = (entry, consumer, now_ms)
            out.append(entry)
        return out

    async def ack(self, entry_ids: Sequence[str]) -> None:
        for entry_id in entry_ids:
            self._pending.pop(entry_id, None)

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[QueueEntry]:
        now_ms = _now_ms()
        out: list[QueueEntry] = []
        for entry_id, (entry, _owner, since) in list(self._pending.items()):
            if len(out) >= count:
                break
            if now_ms - since >= min_idle_ms:
                self._pending[entry_id] = (entry, consumer, now_ms)
                out.append(entry)
        return out

    async def queue_depth(self) -> int:
        return len(self._ready) + len(self._pending)

    # ---------------------------------------------------------------- timers
    async def add_timer(self, execution_id: str, timer_id: str, due_ms: int) -> None:
        self._timers[f"{execution_id}|{timer_id}"] = due_ms
        self._timer_changed.set()

    async def fire_due_timers(self, now_ms: int, limit: int = 500) -> int:
        due = sorted((ms, member) for member, ms in self._timers.items() if ms <= now_ms)[:limit]
        for _ms, member in due:
            del self._timers[member]
            execution_id = member.rsplit("|", 1)[0]
            ex = self._execs.get(execution_id)
            if ex is not None and ex.timer == member:
                ex.timer = ""
            self._enqueue(execution_id, "timer")
        return len(due)

    async def next_timer_due(self) -> int | None:
        return min(self._timers.values(), default=None)

    async def due_timer_count(self, now_ms: int) -> int:
        return sum(1 for ms in self._timers.values() if ms <= now_ms)

    async def wait_timer_change(self, timeout_s: float) -> None:
        self._timer_changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._timer_changed.wait(), max(0.0, timeout_s))

    # ---------------------------------------------------------------- observers
    async def wait_finished(self, execution_id: str, timeout_s: float | None) -> ExecutionRecord:
        ex = self._get(execution_id)
        if ex.status not in FINAL_STATUSES:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._finished_waiters.setdefault(execution_id, []).append(fut)
            try:
                await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                raise WaitTimeoutError(
                    f"execution {execution_id!r} did not finish within {timeout_s} s",
                    execution_id=execution_id,
                ) from None
        return ex.record()

    async def read_status_events(
        self, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StatusEvent]:
        last, pending = self._groups.setdefault(group, (0, {}))
        fresh = [ev for ev in self._status if int(ev.event_id.rsplit("-", 1)[1]) > last]
        if not fresh and block_ms > 0:
            self._status_changed.clear()
            try:
                await asyncio.wait_for(self._status_changed.wait(), block_ms / 1000)
            except TimeoutError:
                return []
            fresh = [ev for ev in self._status if int(ev.event_id.rsplit("-", 1)[1]) > last]
        fresh = fresh[:count]
        if fresh:
            last = int(fresh[-1].event_id.rsplit("-", 1)[1])
            pending.update({ev.event_id: ev for ev in fresh})
            self._groups[group] = (last, pending)
        return fresh

    async def ack_status_events(self, group: str, event_ids: Sequence[str]) -> None:
        if group in self._groups:
            pending = self._groups[group][1]
            for event_id in event_ids:
                pending.pop(event_id, None)

    # One process holds every reader of a MemoryStore: there is no other replica to take over from,
    # and its group keeps no per-reader lists.
    async def claim_status_events(self, group: str, consumer: str, min_idle_ms: int) -> int:
        return 0

    async def status_consumers(self, group: str) -> list[StatusConsumer]:
        return []

    async def drop_status_consumer(self, group: str, consumer: str) -> None:
        return None

    async def list_emitted(self, limit: int = 100) -> list[tuple[str, str, Any]]:
        return list(self._emitted)[-limit:]

    # ---------------------------------------------------------------- maintenance
    async def recover(self, now_ms: int) -> int:
        queued = {e.execution_id for e in self._ready} | {
            e.execution_id for e, _c, _t in self._pending.values()
        }
        count = 0
        for ex in self._execs.values():
            if (
                ex.status in FINAL_STATUSES
                or ex.execution_id in queued
                or ex.lease_holder(now_ms) is not None
            ):
                continue
            armed = bool(ex.timer) and ex.timer in self._timers
            action: str | None = None
            if ex.status in (Status.PENDING, Status.RUNNING):
                action = None if armed else "enqueue"
            elif ex.status == Status.SLEEPING:
                action = None if armed else "rearm"
            elif ex.status == Status.WAITING:
                # waiting_for was cleared by the signal that enqueued it: that entry was lost.
                if not ex.waiting_for or ex.signals.get(ex.waiting_for):
                    action = "enqueue"
                elif ex.wake_ms is not None and not armed:
                    action = "rearm"
            if action == "rearm" and ex.wake_ms is None:
                action = "enqueue"
            if action == "enqueue":
                self._enqueue(ex.execution_id, "recover")
                count += 1
            elif action == "rearm" and ex.wake_ms is not None:
                ex.timer = ex.timer or f"{ex.execution_id}|recover"
                self._timers[ex.timer] = ex.wake_ms
                self._timer_changed.set()
        return count

    async def compact_finished(self, finished_before_ms: int, now_ms: int, limit: int = 1000) -> int:
        due = sorted(
            (e.finished_ms, e.execution_id)
            for e in self._execs.values()
            if e.status in (Status.COMPLETED, Status.CANCELLED)
            and e.compacted_ms is None
            and e.finished_ms is not None
            and e.finished_ms < finished_before_ms
        )[:limit]
        for _, execution_id in due:
            ex = self._execs[execution_id]
            ex.steps.clear()
            ex.signals.clear()
            ex.sigids.clear()
            ex.audit.clear()
            ex.lease = None
            ex.compacted_ms = now_ms
        return len(due)

    async def purge_finished(self, finished_before_ms: int, limit: int = 1000) -> int:
        doomed = [
            e.execution_id
            for e in self._execs.values()
            if e.status in FINAL_STATUSES and e.finished_ms is not None and e.finished_ms < finished_before_ms
        ][:limit]
        for execution_id in doomed:
            del self._execs[execution_id]
        return len(doomed)
