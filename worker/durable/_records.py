"""Records the stores return: executions, steps, audit entries, queue entries."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NewType

# One checkpoint of a history; it lives with its encoding, and is re-exported here with the other records.
from ._history import StepRecord as StepRecord

ExecutionId = NewType("ExecutionId", str)
WorkflowId = NewType("WorkflowId", str)


class Status(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SLEEPING = "sleeping"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


def now_ms() -> int:
    """The wall clock in ms since the epoch, the unit of every stored time (like Redis' PX)."""
    return int(time.time() * 1000)


def ms_to_dt(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def dt_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"datetime {dt.isoformat()} has no time zone; pass an aware datetime")
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    execution_id: ExecutionId
    workflow_id: str
    status: Status
    input: Any
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    attempt: int = 1
    activations: int = 0
    current_step: str | None = None
    waiting_for: str | None = None
    wake_at: datetime | None = None
    category: str | None = None
    parent: str | None = None
    # sha256 of the canonical input (None on records written before inputs were hashed).
    input_hash: str | None = None
    # 1 for the first run under this id; `allow_if_finished` starts count up.
    run: int = 1
    # The worker version that started the execution and the only one that resumes it (None: unversioned).
    version: str | None = None
    # A child execution (`ctx.child`): `parent` is its parent's execution id, and this what becomes of it
    # when the parent ends first: "cancel" (it is cancelled) or "abandon" (it runs on). None: not a child.
    on_parent_cancel: str | None = None
    # When the execution times out (`Durable.start(..., timeout=)`; None: never).
    deadline: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Status):
                value = value.value
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entry_id: str
    at: datetime
    kind: str
    message: str
    step_id: str | None = None
    actor: str | None = None
    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "message": self.message,
            "step_id": self.step_id,
            "actor": self.actor,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class VersionLoad:
    """The executions of one workflow on one worker version ("" for unversioned workers) that are not
    final: `in_flight` in all, `runnable` of them pending or running (the rest sleep or wait for a
    signal, and need a worker of their version only when they wake)."""

    version: str
    in_flight: int
    runnable: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    entry_id: str
    execution_id: ExecutionId
    reason: str


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One entry of the status-event stream the operator mirrors into CR status."""

    event_id: str
    execution_id: ExecutionId
    workflow_id: str
    status: Status
    current_step: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StatusConsumer:
    """A reader of the status-event stream's consumer group (the operator's replicas)."""

    name: str
    pending: int
    idle_ms: int
