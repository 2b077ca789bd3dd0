"""Durable workflows in Python: replay-safe checkpoints in Redis, durable sleeps, signals, compensation."""

from ._context import SignalResult, WorkflowContext, now, random, uuid4
from ._describe import FlowShape
from ._errors import (
    Cancelled,
    DurableError,
    ExecutionCancelledError,
    ExecutionFinished,
    ExecutionNotFailed,
    ExecutionNotFound,
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
    StepFailedError,
    StoreUnavailable,
    Suspend,
    WaitTimeoutError,
    WorkflowFailedError,
    WorkflowNotFound,
)
from ._records import AuditEntry, ExecutionId, ExecutionRecord, Status, StatusEvent, StepRecord
from ._schedules import ScheduleInfo
from ._service import Durable
from ._store._base import Store
from ._store._memory import MemoryStore
from ._store._redis import RedisStore
from ._worker import Worker
from ._workflow import Branch, RetryPolicy, Signal, StepId, WorkflowDef, registered_workflows, workflow

__all__ = [
    "AuditEntry",
    "Branch",
    "Cancelled",
    "Durable",
    "DurableError",
    "ExecutionCancelledError",
    "ExecutionFinished",
    "ExecutionId",
    "ExecutionNotFailed",
    "ExecutionNotFound",
    "ExecutionRecord",
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
    "StepFailedError",
    "StepId",
    "StepRecord",
    "Store",
    "StoreUnavailable",
    "Suspend",
    "WaitTimeoutError",
    "Worker",
    "WorkflowContext",
    "WorkflowDef",
    "WorkflowFailedError",
    "WorkflowNotFound",
    "now",
    "random",
    "registered_workflows",
    "uuid4",
    "workflow",
]
