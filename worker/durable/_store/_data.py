"""What store calls take and return: drafts, checkpoints, new executions, waits, outcomes, queries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import orjson

from .._codec import input_hash
from .._errors import ExecutionConflict
from .._records import (
    AuditEntry,
    ExecutionId,
    ExecutionRecord,
    Status,
    ms_to_dt,
)


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """An audit entry before the store gives it an id and a time."""

    kind: str
    message: str
    step_id: str | None = None
    actor: str | None = None
    data: bytes | None = None

    def to_entry(self, entry_id: str, now_ms: int) -> AuditEntry:
        """The stored entry (what the in-memory stores keep; Redis builds the same from stream fields)."""
        at = ms_to_dt(now_ms)
        assert at is not None
        return AuditEntry(
            entry_id=entry_id,
            at=at,
            kind=self.kind,
            message=self.message,
            step_id=self.step_id,
            actor=self.actor,
            data=orjson.loads(self.data) if self.data else None,
        )


@dataclass(slots=True)
class Checkpoint:
    """What a worker writes in one atomic, fenced step.

    `records` are (step id, encoded record) pairs that land in the execution's step hash;
    `events` are (event name, encoded payload) pairs for the emitted-events stream.
    """

    records: list[tuple[str, bytes]] = field(default_factory=list)
    audit: list[AuditDraft] = field(default_factory=list)
    events: list[tuple[str, bytes]] = field(default_factory=list)
    current_step: str | None = None

    def __bool__(self) -> bool:
        return bool(self.records or self.audit or self.events or self.current_step)


IdReuse = Literal["reject", "allow_if_finished"]
ID_REUSE_POLICIES: tuple[IdReuse, ...] = ("reject", "allow_if_finished")


@dataclass(frozen=True, slots=True)
class NewExecution:
    execution_id: ExecutionId
    workflow_id: str
    input: bytes
    now_ms: int
    category: str | None = None
    parent: str | None = None
    actor: str | None = None
    reason: str = "start"
    # When set, the execution's first wake-up is a timer at this time instead of the queue.
    start_at_ms: int | None = None
    # What an existing execution under this id allows (see `Store.create_execution`).
    id_reuse: IdReuse = "reject"
    # sha256 of the canonical input (`_codec.input_hash`); filled from `input` when left empty.
    input_hash: str = ""
    # A child execution's policy when its parent ends first ("cancel" | "abandon"); `parent` names the parent.
    on_parent_cancel: str | None = None
    # The execution's deadline (ms since the epoch; `Durable.start(..., timeout=)`): kept on the record,
    # with a timer (`DEADLINE_TIMER`) that wakes a sleeping or waiting execution then.
    deadline_ms: int | None = None

    def __post_init__(self) -> None:
        if self.id_reuse not in ID_REUSE_POLICIES:
            raise ValueError(f"id_reuse must be one of {', '.join(ID_REUSE_POLICIES)}, got {self.id_reuse!r}")
        if not self.input_hash:
            object.__setattr__(self, "input_hash", input_hash(self.input))


def conflict_error(
    execution_id: str, workflow_id: str, existing_workflow_id: str, reason: str
) -> ExecutionConflict:
    """The error both stores raise when `create_execution` meets a different request under its id."""
    if reason == "workflow":
        what = f"an execution of workflow {existing_workflow_id!r}, not {workflow_id!r}"
    else:
        what = f"an execution of {existing_workflow_id!r} with a different input"
    return ExecutionConflict(
        f"execution id {execution_id!r} is already taken by {what}",
        execution_id=execution_id,
        workflow_id=workflow_id,
        existing_workflow_id=existing_workflow_id,
        reason=reason,
    )


#: The timer id of an execution's deadline (`NewExecution.deadline_ms`); `acquire` leaves it alone.
DEADLINE_TIMER = "deadline"
# Timer ids of running steps' time-outs: this prefix and the step id in hex (a step id may hold '|').
STEP_TIMER_PREFIX = "hb:"


def step_timer_id(step_id: str) -> str:
    """The timer id of a running step's time-out (`Runs.put_running_step`)."""
    return STEP_TIMER_PREFIX + step_id.encode().hex()


def step_of_timer(timer_id: str) -> str | None:
    """The step id of a step time-out's timer id, or None if `timer_id` is not one."""
    if not timer_id.startswith(STEP_TIMER_PREFIX):
        return None
    try:
        return bytes.fromhex(timer_id[len(STEP_TIMER_PREFIX) :]).decode()
    except ValueError:
        return None


#: `Store.send_signal(checked=...)`: the sender validated the payload with the signal's model.
CHECKED_BY_MODEL = "*"


def cancelled_error(reason: str, actor: str | None) -> bytes:
    """The stored error of a cancelled execution (`Controls.cancel`)."""
    return orjson.dumps(
        {"type": "Cancelled", "message": reason, "fields": {"reason": reason, "actor": actor}}
    )


def forced_failure_error(reason: str, actor: str | None) -> bytes:
    """The stored error of a forced failure (`Controls.force_fail`); `ValueError` for a blank reason."""
    if not reason.strip():
        raise ValueError("force_fail needs a reason (it is kept as the execution's error)")
    return orjson.dumps(
        {"type": "ForcedFailure", "message": reason, "fields": {"reason": reason, "actor": actor}}
    )


def schema_digest(schema: bytes) -> str:
    """How `send_signal(checked=...)` names the JSON Schema a payload was validated against."""
    return hashlib.sha1(schema).hexdigest()


class SchemaCheckNeeded(Exception):
    """`send_signal` refused an unchecked payload: validate it against `schema`, then send again.

    Control flow between `Durable.signal` and the store; it never reaches a caller of `Durable`."""

    def __init__(self, schema: bytes) -> None:
        super().__init__("the waiting execution recorded a schema for this signal")
        self.schema = schema


@dataclass(frozen=True, slots=True)
class SignalWait:
    """A wait for signal `name` whose outcome the store decides atomically.

    If a payload is buffered, the store pops it and stores `record_prefix + payload +
    record_suffix` under `step_id` (so replay returns the same payload). Else, if
    `deadline_ms` has passed, it stores `timeout_record` under `step_id`. Else it suspends.
    The store joins bytes and parses nothing: the halves are a consumed signal's step record cut
    where its payload goes (`StepRecord.split_at_slot`; `durable._history` lists the few record
    fields a store may read).
    `schema` is the encoded JSON Schema of the signal's payload (None if untyped): the store keeps
    it with the execution, so that a sender without the signal's model can validate against it
    (`Store.signal_schema`).
    """

    name: str
    step_id: str
    record_prefix: bytes
    record_suffix: bytes
    deadline_ms: int | None = None
    timeout_record: bytes | None = None
    schema: bytes | None = None


@dataclass(frozen=True, slots=True)
class Acquired:
    """Outcome of `acquire`.

    ok: the lease is ours (`token`), `record` and `steps` are the whole history.
    busy: another worker holds the lease for `retry_after_ms` more; the store noted that
    the execution wants another run when that worker lets go.
    finished: nothing to run (final, or a cancel request was just applied).
    missing: no such execution.
    moved: the execution belongs to another worker version than the queue asked for (it was migrated
    after this entry was queued): nothing to run here, its run is on its version's queue.
    """

    outcome: Literal["ok", "busy", "finished", "missing", "moved"]
    token: int = 0
    record: ExecutionRecord | None = None
    steps: dict[str, bytes] = field(default_factory=dict)
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class SuspendOutcome:
    kind: Literal["suspended", "signal", "timeout", "cancelled"]
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    workflow_id: str | None = None
    statuses: tuple[Status, ...] = ()
    created_after_ms: int | None = None
    created_before_ms: int | None = None
    limit: int = 100
    # Opaque: the `next_cursor` a previous page returned.
    cursor: str | None = None
