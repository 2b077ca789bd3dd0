"""Workflow definitions: the `@workflow` decorator, typed signal and step ids, retry policies."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, PydanticUserError, TypeAdapter, ValidationError

from .._errors import InputValidationError, SignalPayloadError

T = TypeVar("T")

WorkflowFn = Callable[..., Awaitable[Any]]

_WORKFLOWS: dict[str, WorkflowDef] = {}
_SIGNALS: dict[str, Signal[Any]] = {}


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = "" if exc.error_count() <= 5 else f" (+{exc.error_count() - 5} more)"
    return "; ".join(parts) + more


@dataclass(frozen=True)
class WorkflowDef:
    workflow_id: str
    fn: WorkflowFn
    category: str | None = None
    input_model: type[BaseModel] | None = None
    description: str | None = None
    # The input's annotation, whatever it is (None: unannotated or `Any`, so not validated).
    input_type: Any = None
    input_adapter: TypeAdapter[Any] | None = field(default=None, compare=False, repr=False)
    # The history-size guard of this workflow's executions (None: `DEFAULT_HISTORY_LIMIT`).
    history_limit: HistoryLimit | None = None
    # At most this many executions hold a slot at once (per concurrency key); None: no limit.
    max_concurrency: int | None = None
    concurrency_key: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def concurrency_group(self, value: Any) -> str:
        """The store's name of the slot set `value` (the parsed input) competes for: `<workflow id>` or
        `<workflow id>:<key>`. Raises `TypeError` (one line) if the key function returns no string."""
        if self.concurrency_key is None:
            return self.workflow_id
        key = self.concurrency_key(value)
        if not isinstance(key, str):
            raise TypeError(
                f"concurrency_key of workflow {self.workflow_id!r} must return a str, got {type(key).__name__}"
            )
        return f"{self.workflow_id}:{key}"

    def validate_input(self, value: Any) -> Any:
        """The input in the form it is stored: validated against the declared input type, if any.

        Raises `InputValidationError` with a one-line reason.
        """
        adapter = self.input_adapter
        if adapter is None:
            return value
        try:
            parsed = adapter.validate_python(value)
        except ValidationError as exc:
            raise InputValidationError(
                f"input for workflow {self.workflow_id!r} is invalid: {_one_line(exc)}",
                workflow_id=self.workflow_id,
                errors=_one_line(exc),
            ) from None
        return adapter.dump_python(parsed, mode="json")

    def parse_input(self, stored: Any) -> Any:
        """The stored input as the declared type (a model, a dataclass, `list[int]`, ...)."""
        if self.input_adapter is None:
            return stored
        return self.input_adapter.validate_python(stored)


def _input_type(fn: WorkflowFn) -> Any:
    """The annotation of the workflow's input parameter; None if it has none (or it is `Any`)."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < 2:
        return None
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    hint = hints.get(params[1].name)
    return None if hint is Any else hint


def _input_adapter(hint: Any) -> TypeAdapter[Any] | None:
    if hint is None:
        return None
    try:
        return TypeAdapter(hint)
    except (PydanticUserError, TypeError, NameError):
        # A type pydantic cannot validate (an arbitrary class, typing.TypedDict before 3.12): the
        # input passes through unvalidated, as it did before inputs other than models were validated.
        return None


def workflow(
    workflow_id: str,
    *,
    category: str | None = None,
    description: str | None = None,
    history_limit: HistoryLimit | None = None,
    max_concurrency: int | None = None,
    concurrency_key: Callable[[Any], str] | None = None,
) -> Callable[[WorkflowFn], WorkflowFn]:
    """Register an async function `(ctx, input) -> result` under `workflow_id`.

    `history_limit`: the history-size guard of its executions (default `DEFAULT_HISTORY_LIMIT`).

    The function itself is returned unchanged (so it stays callable in unit tests); its
    definition hangs off `fn.__durable_workflow__`.

    `max_concurrency`: at most this many executions of the workflow run at once across all workers
    (per value of `concurrency_key(input)` if given); the others wait in the order they started.
    """
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        raise ValueError("workflow id must be a non-empty string")
    if history_limit is not None and not isinstance(history_limit, HistoryLimit):
        raise TypeError(f"history_limit must be a durable.HistoryLimit, not {type(history_limit).__name__}")
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        raise ValueError(
            f"max_concurrency of workflow {workflow_id!r} must be a positive int, got {max_concurrency!r}"
        )
    if concurrency_key is not None and max_concurrency is None:
        raise ValueError(f"concurrency_key of workflow {workflow_id!r} needs max_concurrency")
    if concurrency_key is not None and not callable(concurrency_key):
        raise TypeError(f"concurrency_key of workflow {workflow_id!r} must be callable")

    def decorate(fn: WorkflowFn) -> WorkflowFn:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"workflow {workflow_id!r} must be an async function (async def)")
        existing = _WORKFLOWS.get(workflow_id)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(
                f"workflow id {workflow_id!r} is already registered by {existing.fn.__module__}.{existing.fn.__qualname__}"
            )
        hint = _input_type(fn)
        adapter = _input_adapter(hint)
        definition = WorkflowDef(
            workflow_id=workflow_id,
            fn=fn,
            category=category,
            input_model=hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None,
            description=description or (inspect.getdoc(fn) or None),
            input_type=hint if adapter is not None else None,
            input_adapter=adapter,
            history_limit=history_limit,
            max_concurrency=max_concurrency,
            concurrency_key=concurrency_key,
        )
        _WORKFLOWS[workflow_id] = definition
        fn.__durable_workflow__ = definition  # type: ignore[attr-defined]
        return fn

    return decorate


def as_definition(obj: Any) -> WorkflowDef:
    if isinstance(obj, WorkflowDef):
        return obj
    definition = getattr(obj, "__durable_workflow__", None)
    if isinstance(definition, WorkflowDef):
        return definition
    raise TypeError(f"{obj!r} is not a workflow: decorate it with @workflow('<id>')")


def registered_workflow(workflow_id: str) -> WorkflowDef | None:
    return _WORKFLOWS.get(workflow_id)


def registered_workflows() -> list[WorkflowDef]:
    """Every workflow registered in this process with `@workflow`."""
    return list(_WORKFLOWS.values())


class Signal(Generic[T]):
    """A signal id, optionally typed: payloads are validated by `model` on send and parsed on receipt."""

    __slots__ = ("_schema", "model", "name")

    def __init__(self, name: str, model: type[T] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("signal name must be a non-empty string")
        self.name = name
        self.model = model
        self._schema: bytes | None = None
        if model is not None:
            _SIGNALS[name] = self

    def __repr__(self) -> str:
        return f"Signal({self.name!r}, {getattr(self.model, '__name__', None)})"

    def validate(self, payload: Any) -> Any:
        """Payload in its stored form; raises `SignalPayloadError` with a one-line reason."""
        model = self._pydantic_model()
        if model is None:
            return payload
        parsed = payload if isinstance(payload, model) else self._validated(model, payload)
        return parsed.model_dump(mode="json")

    def parse(self, stored: Any) -> Any:
        return _parse_model(self.model, stored)

    def parse_payload(self, stored: Any) -> Any:
        """A received payload as the workflow sees it; raises `SignalPayloadError` if it fails the model
        (a typed signal's payload may not be null)."""
        model = self._pydantic_model()
        return stored if model is None else self._validated(model, stored)

    def _pydantic_model(self) -> type[BaseModel] | None:
        model = self.model
        return model if isinstance(model, type) and issubclass(model, BaseModel) else None

    def _validated(self, model: type[BaseModel], payload: Any) -> BaseModel:
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise SignalPayloadError(
                f"payload for signal {self.name!r} is invalid: {_one_line(exc)}",
                signal=self.name,
                errors=_one_line(exc),
            ) from None

    @property
    def schema(self) -> bytes | None:
        """The JSON Schema of a pydantic model's payloads (encoded), for senders without the model."""
        model = self._pydantic_model()
        if self._schema is None and model is not None:
            self._schema = orjson.dumps(model.model_json_schema())
        return self._schema


def signal_schemas() -> dict[str, bytes]:
    """The JSON Schemas of every typed signal this process knows, by name (workers publish them)."""
    return {name: schema for name, sig in _SIGNALS.items() if (schema := sig.schema) is not None}


def _schema_path(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def _schema_error(error: Any) -> str:
    """`field.path: message`, naming the missing field itself for a `required` error."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance and repr(p) in error.message]
        if missing:
            return f"{_schema_path([*path, missing[0]])}: field required"
    return f"{_schema_path(path)}: {error.message[:200]}"


def check_payload_schema(name: str, schema: bytes, payload: Any) -> None:
    """Validate a plain payload against a signal's JSON Schema; raises `SignalPayloadError` in one line.

    For senders that do not have the signal's model. JSON Schema is stricter than pydantic's lax mode
    (`"5"` is not an integer here), so a sender without the model must send canonical JSON."""
    import jsonschema  # imported here: only senders without the model need it

    try:
        spec = orjson.loads(schema)
        validator_cls = jsonschema.validators.validator_for(spec)
        errors = sorted(
            validator_cls(spec).iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]
        )
    except (orjson.JSONDecodeError, jsonschema.exceptions.SchemaError):
        return  # a broken stored schema cannot judge the payload; the consumer still validates it
    if not errors:
        return
    parts = [_schema_error(e) for e in errors[:5]]
    more = "" if len(errors) <= 5 else f" (+{len(errors) - 5} more)"
    reason = "; ".join(parts) + more
    raise SignalPayloadError(f"payload for signal {name!r} is invalid: {reason}", signal=name, errors=reason)


def _parse_model(model: Any, stored: Any) -> Any:
    """Stored plain data back into the declared pydantic model, if there is one."""
    if stored is not None and isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(stored)
    return stored


def resolve_signal(signal: str | Signal[Any]) -> Signal[Any]:
    if isinstance(signal, Signal):
        return signal
    if not isinstance(signal, str) or not signal:
        raise ValueError(f"signal must be a name or a Signal, got {signal!r}")
    return _SIGNALS.get(signal) or Signal(signal)


@dataclass(frozen=True)
class StepId(Generic[T]):
    """A step id with the model of its result: `ctx.step(StepId("charge", Charge), fn)` returns a `Charge`."""

    id: str
    model: type[T] | None = None

    def parse(self, stored: Any) -> Any:
        return _parse_model(self.model, stored)


@dataclass(frozen=True)
class Branch:
    """One branch of `ctx.switch`: `match` is a value compared with == or a predicate."""

    id: str
    match: Any
    run: Callable[..., Any]

    @staticmethod
    def of(spec: Branch | Mapping[str, Any]) -> Branch:
        if isinstance(spec, Branch):
            return spec
        try:
            return Branch(id=str(spec["id"]), match=spec.get("match"), run=spec["run"])
        except (KeyError, TypeError):
            raise ValueError(f"a branch needs 'id', 'match' and 'run', got {spec!r}") from None

    def matches(self, value: Any) -> bool:
        if callable(self.match):
            return bool(self.match(value))
        return bool(self.match == value)


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing step is retried; back-off waits are durable timers, not worker sleeps."""

    max_attempts: int = 1
    initial_interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 60.0
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_interval < 0 or self.max_interval < 0 or self.backoff < 1:
            raise ValueError("RetryPolicy intervals must be >= 0 and backoff >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.max_interval, self.initial_interval * (self.backoff ** (attempt - 1))))

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        if self.non_retryable and isinstance(exc, self.non_retryable):
            return False
        retryable = getattr(exc, "retryable", None)
        return retryable is not False or not hasattr(type(exc), "retryable")


NO_RETRY = RetryPolicy()


def seconds(value: float | timedelta) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected seconds or a timedelta, got {value!r}")
    return float(value)


def lookup_workflow(registry: Mapping[str, WorkflowDef], workflow_id: str) -> WorkflowDef | None:
    """A client's or worker's own workflow under this id first, then any `@workflow` in the process."""
    return registry.get(workflow_id) or registered_workflow(workflow_id)


@dataclass(frozen=True, slots=True)
class HistoryLimit:
    """The history-size guard of an execution's run: step records and their encoded bytes.

    Past `warn_records` or `warn_bytes` the run gets one `history.warning` audit entry; past
    `max_records` or `max_bytes` the execution fails with `HistoryLimitExceeded`. Both point to
    `ctx.continue_as_new`, which starts a fresh history. The defaults follow Temporal's: a warning at
    10,000 records or 10 MB, the limit at 50,000 records or 50 MB.
    """

    max_records: int = 50_000
    max_bytes: int = 50 * 1024 * 1024
    warn_records: int = 10_000
    warn_bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_records", "max_bytes", "warn_records", "warn_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"HistoryLimit.{name} must be a positive integer, got {value!r}")
        if self.warn_records > self.max_records or self.warn_bytes > self.max_bytes:
            raise ValueError(
                f"HistoryLimit warnings ({self.warn_records} records, {self.warn_bytes} bytes) must not "
                f"exceed the limits ({self.max_records} records, {self.max_bytes} bytes)"
            )


DEFAULT_HISTORY_LIMIT = HistoryLimit()
