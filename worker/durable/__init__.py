"""Durable workflows in Python: replay-safe checkpoints in Redis, durable sleeps, signals, compensation."""

from ._backoff import Backoff
from ._client._durable import Durable
from ._client._histories import load_histories
from ._client._schedules import ScheduleInfo
from ._client._versions import VersionClient
from ._errors import (
    ActivationAbandoned,
    Cancelled,
    DurableError,
    ExecutionCancelledError,
    ExecutionConflict,
    ExecutionFinished,
    ExecutionNotFailed,
    ExecutionNotFound,
    ExecutionTimeout,
    InputValidationError,
    InvalidSchedule,
    InvalidStepId,
    LeaseLost,
    NoMatchingBranch,
    NonDeterminismError,
    PermanentError,
    RetryableError,
    ScheduleNotFound,
    SerializationError,
    SignalPayloadError,
    StepAbandoned,
    StepFailedError,
    StepTimeout,
    StoreUnavailable,
    Suspend,
    WaitTimeoutError,
    WorkflowFailedError,
    WorkflowNotFound,
)
from ._records import AuditEntry, ExecutionId, ExecutionRecord, Status, StatusEvent, StepRecord, VersionLoad
from ._store._base import StatusFeed, Store
from ._store._memory import MemoryStore
from ._store._redis import RedisStore
from ._worker._replayer import ExecutionHistory, ReplayCheckResult, check_replay
from ._worker._worker import Worker
from ._workflow._context import SignalResult, WorkflowContext, now, random, uuid4
from ._workflow._definitions import (
    Branch,
    RetryPolicy,
    Signal,
    StepId,
    WorkflowDef,
    registered_workflows,
    workflow,
)
from ._workflow._shapes import FlowShape
from ._workflow._timeouts import heartbeat, heartbeat_details

__all__ = [
    "ActivationAbandoned",
    "AuditEntry",
    "Backoff",
    "Branch",
    "Cancelled",
    "Durable",
    "DurableError",
    "ExecutionCancelledError",
    "ExecutionConflict",
    "ExecutionFinished",
    "ExecutionHistory",
    "ExecutionId",
    "ExecutionNotFailed",
    "ExecutionNotFound",
    "ExecutionRecord",
    # Time-outs and heartbeats.
    "ExecutionTimeout",
    "FlowShape",
    "InputValidationError",
    "InvalidSchedule",
    "InvalidStepId",
    "LeaseLost",
    "MemoryStore",
    "NoMatchingBranch",
    "NonDeterminismError",
    "PermanentError",
    "RedisStore",
    "ReplayCheckResult",
    "RetryPolicy",
    "RetryableError",
    "ScheduleInfo",
    "ScheduleNotFound",
    "SerializationError",
    "Signal",
    "SignalPayloadError",
    "SignalResult",
    "Status",
    "StatusEvent",
    "StatusFeed",
    "StepAbandoned",
    "StepFailedError",
    "StepId",
    "StepRecord",
    "StepTimeout",
    "Store",
    "StoreUnavailable",
    "Suspend",
    "VersionClient",
    "VersionLoad",
    "WaitTimeoutError",
    "Worker",
    "WorkflowContext",
    "WorkflowDef",
    "WorkflowFailedError",
    "WorkflowNotFound",
    "check_replay",
    "heartbeat",
    "heartbeat_details",
    "load_histories",
    "now",
    "random",
    "registered_workflows",
    "uuid4",
    "workflow",
]
