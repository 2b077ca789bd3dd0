"""Pins the public surface: a refactor must not silently drop or add public names."""

from __future__ import annotations

import pickle

import durable
from durable import DurableError, ExecutionNotFound, NonDeterminismError, WorkflowFailedError
from durable._errors import ActivationAbandoned, Cancelled, Suspend, describe_exception, error_from_dict

EXPECTED = {
    "ActivationAbandoned", "AuditEntry", "Backoff", "Branch", "Cancelled", "Durable", "DurableError",
    "ExecutionCancelledError", "ExecutionConflict", "ExecutionFinished", "ExecutionId", "ExecutionNotFailed",
    "ExecutionHistory", "ExecutionNotFound", "ExecutionRecord",
    "FlowShape", "InputValidationError", "InvalidSchedule", "InvalidStepId", "LeaseLost", "MemoryStore",
    "NoMatchingBranch", "NonDeterminismError", "PermanentError", "RedisStore", "RetryPolicy",
    "RetryableError", "ScheduleInfo", "ScheduleNotFound", "SerializationError", "Signal",
    "ReplayCheckResult", "SignalPayloadError", "SignalResult", "Status", "StatusEvent", "StatusFeed", "StepFailedError", "ChildHandle", "ChildWorkflowCancelled", "ChildWorkflowError", "StepId",
    "StepRecord", "Store", "StoreUnavailable", "Suspend", "VersionClient", "VersionLoad", "WaitTimeoutError", "Worker",
    "WorkflowContext", "WorkflowDef", "WorkflowFailedError", "WorkflowNotFound", "check_replay",
    "load_histories", "now", "random",
    "registered_workflows", "uuid4", "workflow",
    # continue-as-new and the history-size guard
    "ContinueAsNew", "HistoryLimit", "HistoryLimitExceeded",
    # Time-outs and heartbeats.
    "ExecutionTimeout", "StepAbandoned", "StepTimeout", "heartbeat", "heartbeat_details",
}  # fmt: skip


def test_all_is_pinned_and_importable() -> None:
    assert set(durable.__all__) == EXPECTED
    for name in durable.__all__:
        assert getattr(durable, name) is not None


def test_suspension_and_cancellation_escape_except_exception() -> None:
    assert not issubclass(Suspend, Exception) and issubclass(Suspend, BaseException)
    assert not issubclass(Cancelled, Exception) and issubclass(Cancelled, BaseException)
    assert not issubclass(ActivationAbandoned, Exception) and issubclass(ActivationAbandoned, BaseException)


def test_errors_keep_their_fields_through_storage_and_pickling() -> None:
    err = NonDeterminismError("diverged", execution_id="e1", expected="a", actual="b", seq=3)
    stored = describe_exception(err)
    back = error_from_dict(stored)
    assert isinstance(back, NonDeterminismError) and isinstance(back, DurableError)
    assert back.fields == {"execution_id": "e1", "expected": "a", "actual": "b", "seq": 3}
    assert back.expected == "a"
    unpickled = pickle.loads(pickle.dumps(ExecutionNotFound("gone", execution_id="x")))
    assert isinstance(unpickled, ExecutionNotFound) and unpickled.execution_id == "x"
    unknown = error_from_dict({"type": "ValueError", "message": "bad", "fields": {}})
    assert type(unknown) is DurableError and unknown.fields["type"] == "ValueError"


def test_wait_error_carries_the_stored_error() -> None:
    err = WorkflowFailedError("failed", execution_id="e", error={"type": "KeyError", "message": "k"})
    assert err.error["type"] == "KeyError" and not err.retryable


def test_deterministic_helpers_refuse_outside_a_workflow() -> None:
    for helper in (durable.now, durable.uuid4, durable.random):
        try:
            helper()
        except DurableError as exc:
            assert "inside a workflow" in str(exc)
        else:  # pragma: no cover
            raise AssertionError(f"{helper.__name__} worked outside a workflow")
