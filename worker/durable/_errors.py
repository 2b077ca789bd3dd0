"""One error root with typed structured fields.

Errors are stored (a failed execution keeps its error in Redis) and travel between
processes, so every `DurableError` turns into a plain dict and back without losing
its fields. Suspension and cancellation are `BaseException`s: user code that says
`except Exception` must not be able to swallow them.
"""

from __future__ import annotations

import inspect
import traceback
from typing import Any, ClassVar


class DurableError(Exception):
    """Root of every error this package raises on purpose.

    Each subclass declares its structured fields as keyword-only parameters of its `__init__`,
    kept as typed attributes. `fields` is their plain-dict view, the one stored and pickled:
    a required field always appears in it, an optional one (default `None`) only when set.
    The root itself takes any fields: it stands in for stored errors of an unknown type.
    """

    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "durable error"
    _required_fields: ClassVar[tuple[str, ...]] = ()
    _optional_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            params = [
                p for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY
            ]
            cls._required_fields = tuple(p.name for p in params if p.default is p.empty)
            cls._optional_fields = tuple(p.name for p in params if p.default is not p.empty)

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.message = message or self.default_message
        self._extra_fields: dict[str, Any] = fields
        super().__init__(self.message)

    @property
    def fields(self) -> dict[str, Any]:
        """The structured fields as a plain dict (a fresh copy)."""
        out = {name: getattr(self, name) for name in self._required_fields}
        for name in self._optional_fields:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self._extra_fields)
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self).__name__, self.message, self.fields))

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "message": self.message, "fields": self.fields}


class RetryableError(DurableError):
    """A transient fault: the same call may succeed later."""

    retryable = True

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)


class PermanentError(DurableError):
    """Retrying the same call cannot help."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)


class StoreUnavailable(RetryableError):
    default_message = "the store is unreachable"


class LeaseLost(RetryableError):
    """A newer worker holds the execution: this one must abandon the run and write nothing."""

    default_message = "the execution's lease was taken over by another worker"

    def __init__(self, message: str | None = None, *, execution_id: str, token: int) -> None:
        self.execution_id = execution_id
        self.token = token
        super().__init__(message)


class WorkflowNotFound(PermanentError, LookupError):
    default_message = "unknown workflow"

    def __init__(self, message: str | None = None, *, workflow_id: str | None = None) -> None:
        self.workflow_id = workflow_id
        super().__init__(message)


class ExecutionNotFound(PermanentError, LookupError):
    default_message = "unknown execution"

    def __init__(self, message: str | None = None, *, execution_id: str) -> None:
        self.execution_id = execution_id
        super().__init__(message)


class ExecutionFinished(PermanentError):
    default_message = "the execution has already finished"

    def __init__(self, message: str | None = None, *, execution_id: str, status: str | None = None) -> None:
        self.execution_id = execution_id
        self.status = status
        super().__init__(message)


class ExecutionNotFailed(PermanentError):
    default_message = "the execution has not failed"

    def __init__(self, message: str | None = None, *, execution_id: str, status: str | None = None) -> None:
        self.execution_id = execution_id
        self.status = status
        super().__init__(message)


class ExecutionConflict(PermanentError):
    """An execution id already names an execution of another workflow or with another input.

    Fields: `execution_id`, `workflow_id` (requested), `existing_workflow_id`, and `reason`:
    `"workflow"` or `"input"`. Nothing was written.
    """

    default_message = "the execution id is taken by a different request"

    def __init__(
        self,
        message: str | None = None,
        *,
        execution_id: str,
        workflow_id: str,
        existing_workflow_id: str,
        reason: str,
    ) -> None:
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self.existing_workflow_id = existing_workflow_id
        self.reason = reason
        super().__init__(message)


class InputValidationError(PermanentError, ValueError):
    default_message = "input failed validation"

    def __init__(self, message: str | None = None, *, workflow_id: str, errors: str) -> None:
        self.workflow_id = workflow_id
        self.errors = errors
        super().__init__(message)


class SignalPayloadError(PermanentError, ValueError):
    default_message = "signal payload failed validation"

    def __init__(self, message: str | None = None, *, signal: str, errors: str) -> None:
        self.signal = signal
        self.errors = errors
        super().__init__(message)


class SerializationError(PermanentError, TypeError):
    default_message = "value is not JSON-serialisable"

    def __init__(self, message: str | None = None, *, step_id: str | None = None) -> None:
        self.step_id = step_id
        super().__init__(message)


class InvalidStepId(PermanentError, ValueError):
    default_message = "invalid step id"

    def __init__(
        self, message: str | None = None, *, step_id: str | None = None, execution_id: str | None = None
    ) -> None:
        self.step_id = step_id
        self.execution_id = execution_id
        super().__init__(message)


class NonDeterminismError(PermanentError):
    """`expected` is the step id history recorded at call number `seq` (`None`: none), `actual` the one called."""

    default_message = "replay diverged from the recorded history"

    def __init__(
        self, message: str | None = None, *, execution_id: str, seq: int, expected: str | None, actual: str
    ) -> None:
        self.execution_id = execution_id
        self.seq = seq
        self.expected = expected
        self.actual = actual
        super().__init__(message)


class NoMatchingBranch(PermanentError):
    """`value` is the `repr` of the value no branch matched (cut to 200 characters)."""

    default_message = "no branch matched and no default was given"

    def __init__(self, message: str | None = None, *, step_id: str, value: str) -> None:
        self.step_id = step_id
        self.value = value
        super().__init__(message)


class StepFailedError(PermanentError):
    """A step raised after its retries ran out. User code may catch it; replay raises it again.

    `error` is the stored form of the step's last exception (see `describe_exception`).
    """

    default_message = "step failed"

    def __init__(
        self, message: str | None = None, *, step_id: str, attempts: int, error: dict[str, Any] | None
    ) -> None:
        self.step_id = step_id
        self.attempts = attempts
        self.error = error
        super().__init__(message)


class WorkflowFailedError(PermanentError):
    """Raised by `Durable.wait` when the execution failed; `error` holds the stored error."""

    default_message = "workflow execution failed"

    def __init__(self, message: str | None = None, *, execution_id: str, error: dict[str, Any]) -> None:
        self.execution_id = execution_id
        self.error = error
        super().__init__(message)


class ExecutionCancelledError(WorkflowFailedError):
    default_message = "workflow execution was cancelled"


class WaitTimeoutError(PermanentError, TimeoutError):
    default_message = "timed out waiting for the execution"

    def __init__(self, message: str | None = None, *, execution_id: str) -> None:
        self.execution_id = execution_id
        super().__init__(message)


class ScheduleNotFound(PermanentError, LookupError):
    default_message = "unknown schedule"

    def __init__(self, message: str | None = None, *, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(message)


class InvalidSchedule(PermanentError, ValueError):
    """The fields hold the rejected values as they were given, so they may be of any type."""

    default_message = "invalid schedule"

    def __init__(
        self,
        message: str | None = None,
        *,
        schedule_id: object = None,
        cron: object = None,
        timezone: object = None,
    ) -> None:
        self.schedule_id = schedule_id
        self.cron = cron
        self.timezone = timezone
        super().__init__(message)


class StepTimeout(RetryableError, TimeoutError):
    """A step attempt ran past its time-out: `kind` is `"timeout"` (start-to-close, `ctx.step(...,
    timeout=)`) or `"heartbeat"` (no heartbeat for `heartbeat_timeout`); `timeout` is that limit in
    seconds. The attempt counts as failed: the step's `RetryPolicy` retries it like any failure."""

    default_message = "step timed out"

    def __init__(
        self, message: str | None = None, *, step_id: str, timeout: float, kind: str = "timeout"
    ) -> None:
        self.step_id = step_id
        self.timeout = timeout
        self.kind = kind
        super().__init__(message)


class ExecutionTimeout(PermanentError, TimeoutError):
    """The execution ran past its deadline (`Durable.start(..., timeout=)`): raised by the first new
    `ctx.*` call at or after `deadline` (ms since the epoch). Uncaught, the execution fails with it."""

    default_message = "execution timed out"

    def __init__(self, message: str | None = None, *, execution_id: str, deadline: int) -> None:
        self.execution_id = execution_id
        self.deadline = deadline
        super().__init__(message)


class Suspend(BaseException):
    """Raised inside workflow code once a suspension is committed; the worker releases the run."""


class Cancelled(BaseException):
    """Raised inside workflow code at its next checkpoint after `Durable.cancel` or `Durable.force_fail`.

    A `BaseException`, so `except Exception` around `ctx.rollback()` does not run compensations for
    it: neither a cancel nor a forced failure compensates."""


class ActivationAbandoned(BaseException):
    """Raised inside workflow code when a checkpoint could not be committed.

    The store was unreachable or slow (`StoreUnavailable`), a newer worker holds the execution
    (`LeaseLost`), or the store failed in some other way: an infrastructure fault, never the
    workflow's. Like `Suspend`, it is a `BaseException` so that `except Exception` in workflow
    code cannot catch it and act on it (run compensations, record a failure). The engine abandons
    the activation (nothing more is written) and the execution runs again from its last commit.
    A workflow that catches `BaseException` must re-raise it; if it does not, the engine still
    abandons the activation, and every later `ctx.*` call raises it again.
    """

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"activation abandoned: {type(cause).__name__}: {cause}")


class HistoryLimitExceeded(PermanentError):
    """An execution's history passed its limit (`HistoryLimit`): the execution fails with this error.

    A workflow that loops for long should call `ctx.continue_as_new(input)` before it gets there."""

    default_message = "the execution's history passed its limit; use ctx.continue_as_new"

    def __init__(
        self,
        message: str | None = None,
        *,
        execution_id: str,
        records: int,
        bytes: int,
        limit_records: int,
        limit_bytes: int,
    ) -> None:
        self.execution_id = execution_id
        self.records = records
        self.bytes = bytes
        self.limit_records = limit_records
        self.limit_bytes = limit_bytes
        super().__init__(message)


class ContinueAsNew(BaseException):
    """Raised by `ctx.continue_as_new(input)`: the engine ends this run and starts a fresh history
    under the same execution id. A `BaseException`, so `except Exception` cannot swallow it."""

    def __init__(self, encoded_input: bytes) -> None:
        self.encoded_input = encoded_input
        super().__init__("continue as new")


class StepAbandoned(BaseException):
    """Raised by `durable.heartbeat()` in a step body whose attempt was given up: its time-out passed
    (a sync body cannot be interrupted, so it goes on running until it returns or calls `heartbeat`),
    or its worker lost the execution's lease. A `BaseException`, so `except Exception` in the body does
    not swallow it: the body should let it propagate and stop. Whatever the body returns or raises
    afterwards is ignored."""


_ALL: dict[str, type[DurableError]] = {}


def _collect(cls: type[DurableError]) -> None:
    _ALL[cls.__name__] = cls
    for sub in cls.__subclasses__():
        _collect(sub)


def _rebuild(type_name: str, message: str, fields: dict[str, Any]) -> DurableError:
    if not _ALL:
        _collect(DurableError)
    cls = _ALL.get(type_name, DurableError)
    if cls is DurableError:
        return DurableError(message, **fields)
    declared = (*cls._required_fields, *cls._optional_fields)
    # A stored dict missing a required field gets None; keys the class does not declare are kept.
    kwargs = {name: fields.get(name) for name in declared}
    err = cls(message, **kwargs)
    err._extra_fields.update((k, v) for k, v in fields.items() if k not in declared)
    return err


def error_from_dict(data: dict[str, Any]) -> DurableError:
    """Rebuild a stored error. Unknown types come back as a plain `DurableError` keeping the type name."""
    type_name = str(data.get("type", "DurableError"))
    fields = dict(data.get("fields") or {})
    if not _ALL:
        _collect(DurableError)
    if type_name not in _ALL:
        fields.setdefault("type", type_name)
    return _rebuild(type_name, str(data.get("message", "")), fields)


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """The stored form of any exception: our own keep their fields, others their type and text."""
    if isinstance(exc, DurableError):
        data = exc.to_dict()
    else:
        data = {"type": type(exc).__name__, "message": str(exc), "fields": {}}
        data["fields"]["module"] = type(exc).__module__
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
    data["traceback"] = tb[-4000:]
    return data


class ChildWorkflowError(PermanentError):
    """A child execution (`ctx.child`, `handle.result()`) ended failed; `error` holds its stored error.

    Replay raises it again; workflow code may catch it like any failed step."""

    default_message = "child workflow failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        child_execution_id: str,
        workflow_id: str,
        status: str,
        error: dict[str, Any] | None,
    ) -> None:
        self.child_execution_id = child_execution_id
        self.workflow_id = workflow_id
        self.status = status
        self.error = error
        super().__init__(message)


class ChildWorkflowCancelled(ChildWorkflowError):
    """A child execution ended cancelled (status `cancelled`)."""

    default_message = "child workflow was cancelled"
