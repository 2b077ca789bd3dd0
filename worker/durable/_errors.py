"""One error root with structured fields.

Errors are stored (a failed execution keeps its error in Redis) and travel between
processes, so every `DurableError` turns into a plain dict and back without losing
its fields. Suspension and cancellation are `BaseException`s: user code that says
`except Exception` must not be able to swallow them.
"""

from __future__ import annotations

import traceback
from typing import Any, ClassVar


class DurableError(Exception):
    """Root of every error this package raises on purpose."""

    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "durable error"

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.message = message or self.default_message
        self.fields: dict[str, Any] = fields
        super().__init__(self.message)

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields")
        if fields is not None and name in fields:
            return fields[name]
        raise AttributeError(name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self).__name__, self.message, self.fields))

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "message": self.message, "fields": self.fields}


class RetryableError(DurableError):
    """A transient fault: the same call may succeed later."""

    retryable = True


class PermanentError(DurableError):
    """Retrying the same call cannot help."""


class StoreUnavailable(RetryableError):
    default_message = "the store is unreachable"


class LeaseLost(RetryableError):
    """A newer worker holds the execution: this one must abandon the run and write nothing."""

    default_message = "the execution's lease was taken over by another worker"


class WorkflowNotFound(PermanentError, LookupError):
    default_message = "unknown workflow"


class ExecutionNotFound(PermanentError, LookupError):
    default_message = "unknown execution"


class ExecutionFinished(PermanentError):
    default_message = "the execution has already finished"


class ExecutionNotFailed(PermanentError):
    default_message = "the execution has not failed"


class ExecutionConflict(PermanentError):
    """An execution id already names an execution of another workflow or with another input.

    Fields: `execution_id`, `workflow_id` (requested), `existing_workflow_id`, and `reason`:
    `"workflow"` or `"input"`. Nothing was written.
    """

    default_message = "the execution id is taken by a different request"


class InputValidationError(PermanentError, ValueError):
    default_message = "input failed validation"


class SignalPayloadError(PermanentError, ValueError):
    default_message = "signal payload failed validation"


class SerializationError(PermanentError, TypeError):
    default_message = "value is not JSON-serialisable"


class InvalidStepId(PermanentError, ValueError):
    default_message = "invalid step id"


class NonDeterminismError(PermanentError):
    default_message = "replay diverged from the recorded history"


class NoMatchingBranch(PermanentError):
    default_message = "no branch matched and no default was given"


class StepFailedError(DurableError):
    """A step raised after its retries ran out. User code may catch it; replay raises it again."""

    default_message = "step failed"


class WorkflowFailedError(DurableError):
    """Raised by `Durable.wait` when the execution failed; `error` holds the stored error."""

    default_message = "workflow execution failed"


class ExecutionCancelledError(WorkflowFailedError):
    default_message = "workflow execution was cancelled"


class WaitTimeoutError(DurableError, TimeoutError):
    default_message = "timed out waiting for the execution"


class ScheduleNotFound(PermanentError, LookupError):
    default_message = "unknown schedule"


class InvalidSchedule(PermanentError, ValueError):
    default_message = "invalid schedule"


class Suspend(BaseException):
    """Raised inside workflow code once a suspension is committed; the worker releases the run."""


class Cancelled(BaseException):
    """Raised inside workflow code at its next checkpoint after `Durable.cancel`."""


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


_ALL: dict[str, type[DurableError]] = {}


def _collect(cls: type[DurableError]) -> None:
    _ALL[cls.__name__] = cls
    for sub in cls.__subclasses__():
        _collect(sub)


def _rebuild(type_name: str, message: str, fields: dict[str, Any]) -> DurableError:
    if not _ALL:
        _collect(DurableError)
    cls = _ALL.get(type_name, DurableError)
    return cls(message, **fields)


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
