"""The custom resources' specs and statuses: the one source of the CRD schemas.

`crdgen` turns these models into structural OpenAPI schemas; the handlers parse every
CR through them, so a CR that the API server would have rejected (an old CRD, a server
without CEL) still fails here with a one-line reason. Field names are camelCase on the
wire (aliases) and snake_case in Python.

CEL rules are attached with `x-kubernetes-validations` in `json_schema_extra`; each of
them is mirrored by a pydantic validator, so both the API server and the operator say
the same thing in the same words.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

GROUP = "durable.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Byte caps (compact JSON) for the free-form fields; etcd objects stay far below their 1.5 MiB limit.
MAX_INPUT_BYTES = 32 * 1024
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_RESULT_BYTES = 4 * 1024
#: Top-level key caps the schema itself can enforce on free-form objects.
MAX_FREEFORM_PROPERTIES = 128

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
WORKFLOW_ID = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"
PY_MODULE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
SIGNAL_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$"
# Five or six cron fields of the usual characters, or one of the @-macros.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([0-9A-Za-z*?/,#LW-]+\s+){4,5}[0-9A-Za-z*?/,#LW-]+)$"
)
# A Go-style duration of whole units: 90s, 5m, 1h30m.
DURATION = r"^([0-9]+(ms|s|m|h))+$"
TIME_ZONE = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration string (`1h30m` -> 5400.0)."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def json_size(value: Any) -> int:
    """Bytes of the compact JSON form of `value`."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def check_freeform(name: str, value: dict[str, Any] | None, limit: int) -> dict[str, Any] | None:
    """The caps of a free-form object: top-level keys (as the schema says) and JSON bytes."""
    if value is None:
        return None
    if len(value) > MAX_FREEFORM_PROPERTIES:
        raise ValueError(f"{name} has {len(value)} top-level keys; the limit is {MAX_FREEFORM_PROPERTIES}")
    if (size := json_size(value)) > limit:
        raise ValueError(f"{name} is {size} bytes; the limit is {limit}")
    return value


def _cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "message": message, **extra}


FREEFORM: Any = {"x-kubernetes-preserve-unknown-fields": True}
IMMUTABLE: Any = {"x-kubernetes-validations": [_cel("self == oldSelf", "is immutable")]}


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The wire form: camelCase keys, no `None`s."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _freeform(description: str) -> Any:
    return Field(
        default=None,
        description=description,
        json_schema_extra={"type": "object", "maxProperties": MAX_FREEFORM_PROPERTIES, **FREEFORM},
    )


# ---------------------------------------------------------------- shared status parts


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    """The latest observation of one aspect of the object's state (metav1.Condition)."""

    type: str = Field(max_length=316, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
    status: ConditionStatus
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str = Field(description="When the condition last changed status (RFC 3339).")
    observed_generation: int | None = Field(default=None, ge=0)


_CONDITIONS_SCHEMA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def _conditions() -> Any:
    return Field(default_factory=list, max_length=16, json_schema_extra=_CONDITIONS_SCHEMA)


# ---------------------------------------------------------------- DurableWorkflow


class KeyRef(_Model):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    optional: bool | None = None


class EnvVarSource(_Model):
    """A key of a Secret or ConfigMap in the workflow's namespace."""

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "exactly one of secretKeyRef or configMapKeyRef must be set",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("exactly one of secretKeyRef or configMapKeyRef must be set")
        return self


class EnvVar(_Model):
    name: str = Field(max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = Field(default=None, max_length=32768)
    value_from: EnvVarSource | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.value) && has(self.valueFrom))", "value and valueFrom are mutually exclusive"
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("value and valueFrom are mutually exclusive")
        return self


Quantity = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


class Resources(_Model):
    """Compute resources of one worker container (as in a Pod spec)."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=8)
    limits: dict[str, Quantity] | None = Field(default=None, max_length=8)


class WorkerTemplate(_Model):
    """A worker Deployment the operator owns for this workflow."""

    image: str = Field(min_length=1, max_length=512, description="Worker image with the workflow code.")
    module: str = Field(
        max_length=256,
        pattern=PY_MODULE,
        description="Python module to import; it registers the workflows with @workflow.",
    )
    replicas: int = Field(default=1, ge=0, le=1000)
    concurrency: int = Field(default=64, ge=1, le=10000, description="Executions one worker runs at once.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    resources: Resources | None = None
    env: list[EnvVar] | None = Field(default=None, max_length=64)
    service_account_name: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN)
    node_selector: dict[str, Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=32
    )


class Retention(_Model):
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=365 * 24 * 3600,
        description="Delete finished DurableExecution objects of this workflow after this many seconds "
        "(an execution's own ttlSecondsAfterFinished wins).",
    )


MirrorPolicy = Literal["all", "failed", "none"]


class DurableWorkflowSpec(_Model):
    """Declares a workflow type served in this namespace."""

    workflow_id: str = Field(max_length=200, pattern=WORKFLOW_ID, description="The id given to @workflow.")
    worker: WorkerTemplate | None = Field(
        default=None, description="When set, the operator owns a worker Deployment serving this workflow."
    )
    retention: Retention | None = None
    mirror: MirrorPolicy = Field(
        default="failed",
        description="Which executions started outside Kubernetes (SDK, schedules) get a DurableExecution mirror.",
    )


class DurableWorkflowStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = _conditions()
    workers: int | None = Field(default=None, description="Desired worker replicas.")
    ready_workers: int | None = Field(default=None, description="Ready worker replicas.")
    running: int | None = Field(default=None, description="Executions not finished yet.")
    failed: int | None = Field(default=None, description="Failed executions.")


# ---------------------------------------------------------------- DurableExecution


class DurableExecutionSpec(_Model):
    """Starts an execution (workflowRef + input), or mirrors an existing one (workflowRef + executionId)."""

    workflow_ref: str = Field(
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Name of a DurableWorkflow in this namespace.",
        json_schema_extra=IMMUTABLE,
    )
    input: dict[str, Any] | None = _freeform("Workflow input (JSON object).")
    execution_id: str | None = Field(
        default=None,
        max_length=512,
        description="Attach to this existing execution instead of starting one.",
        json_schema_extra=IMMUTABLE,
    )
    cancel_on_delete: bool = Field(default=True, description="Deleting a running execution cancels it.")
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=365 * 24 * 3600)

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("!(has(self.executionId) && has(self.input))", "input cannot be given with executionId"),
                _cel(
                    "has(self.input) == has(oldSelf.input) && (!has(self.input) || self.input == oldSelf.input)",
                    "input is immutable",
                ),
            ]
        }
    )

    @field_validator("input")
    @classmethod
    def _input_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_freeform("input", value, MAX_INPUT_BYTES)

    @model_validator(mode="after")
    def _attach_or_start(self) -> DurableExecutionSpec:
        if self.execution_id is not None and self.input is not None:
            raise ValueError("input cannot be given with executionId")
        return self


class Phase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SLEEPING = "Sleeping"
    WAITING = "Waiting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


#: Engine status (durable.Status values) -> CR phase.
PHASES: dict[str, Phase] = {
    "pending": Phase.PENDING,
    "running": Phase.RUNNING,
    "sleeping": Phase.SLEEPING,
    "waiting": Phase.WAITING,
    "completed": Phase.SUCCEEDED,
    "failed": Phase.FAILED,
    "cancelled": Phase.CANCELLED,
}


class ExecutionError(_Model):
    type: str = Field(max_length=256)
    message: str = Field(max_length=4096)


class DurableExecutionStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = _conditions()
    execution_id: str | None = Field(default=None, max_length=512)
    workflow_id: str | None = Field(default=None, max_length=200)
    phase: Phase | None = None
    reason: str | None = Field(
        default=None, max_length=128, description="Why the phase is what it is (CamelCase)."
    )
    message: str | None = Field(default=None, max_length=1024, description="One line for humans.")
    current_step: str | None = Field(default=None, max_length=512)
    waiting_for: str | None = Field(default=None, max_length=512)
    attempts: int | None = None
    start_time: str | None = None
    finish_time: str | None = None
    result: Any = Field(
        default=None,
        description=f"The result when its JSON is at most {MAX_RESULT_BYTES} bytes.",
        json_schema_extra=FREEFORM,
    )
    result_truncated: bool | None = None
    error: ExecutionError | None = None
    observed_version: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[0-9]+(\.[0-9]+){3}$",
        description=(
            "Order of the engine record this status was taken from (attempt.activation.stage.updatedMs);"
            " the operator never replaces it with an older one, so a phase never goes backwards."
        ),
    )


# ---------------------------------------------------------------- DurableSignal


class DurableSignalSpec(_Model):
    """Delivers one signal to one execution, exactly once."""

    execution_ref: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of a DurableExecution here."
    )
    execution_id: str | None = Field(default=None, max_length=512, min_length=1)
    signal: str = Field(max_length=256, pattern=SIGNAL_NAME)
    payload: dict[str, Any] | None = _freeform("Signal payload (JSON object).")

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.executionRef) != has(self.executionId)",
                    "exactly one of executionRef or executionId must be set",
                ),
                _cel("self == oldSelf", "a signal is immutable; create a new DurableSignal instead"),
            ]
        }
    )

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_freeform("payload", value, MAX_PAYLOAD_BYTES)

    @model_validator(mode="after")
    def _one_target(self) -> DurableSignalSpec:
        if (self.execution_ref is None) == (self.execution_id is None):
            raise ValueError("exactly one of executionRef or executionId must be set")
        return self


class SignalPhase(enum.StrEnum):
    PENDING = "Pending"
    DELIVERED = "Delivered"
    FAILED = "Failed"


class DurableSignalStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = _conditions()
    phase: SignalPhase | None = None
    reason: str | None = Field(default=None, max_length=128)
    message: str | None = Field(default=None, max_length=1024)
    execution_id: str | None = Field(default=None, max_length=512)
    delivered_time: str | None = None
    duplicate: bool | None = Field(
        default=None, description="The engine had already accepted this delivery id."
    )
    attempts: int | None = None


# ---------------------------------------------------------------- DurableSchedule


class ConcurrencyPolicy(enum.StrEnum):
    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class DurableScheduleSpec(_Model):
    """Starts executions of a workflow on a cron expression or a fixed interval."""

    workflow_ref: str = Field(
        max_length=253, pattern=DNS_SUBDOMAIN, description="Name of a DurableWorkflow here."
    )
    cron: str | None = Field(default=None, max_length=128, pattern=CRON)
    interval: str | None = Field(
        default=None, max_length=32, pattern=DURATION, description="e.g. 30s, 5m, 1h30m"
    )
    time_zone: str = Field(default="UTC", max_length=64, pattern=TIME_ZONE)
    input: dict[str, Any] | None = _freeform("Input of every started execution (JSON object).")
    suspend: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    successful_executions_history_limit: int = Field(default=3, ge=0, le=100)
    failed_executions_history_limit: int = Field(default=1, ge=0, le=100)

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.cron) != has(self.interval)", "exactly one of cron or interval must be set"),
                _cel(
                    "!has(self.interval) || duration(self.interval) >= duration('1s')",
                    "interval must be at least 1s",
                ),
            ]
        }
    )

    @field_validator("input")
    @classmethod
    def _input_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_freeform("input", value, MAX_INPUT_BYTES)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError(f"cron {value!r} is not a valid cron expression")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timeZone {value!r} is not a known IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _cron_xor_interval(self) -> DurableScheduleSpec:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("exactly one of cron or interval must be set")
        if self.interval is not None and parse_duration(self.interval) < 1:
            raise ValueError("interval must be at least 1s")
        return self

    @property
    def interval_seconds(self) -> float | None:
        return None if self.interval is None else parse_duration(self.interval)

    @property
    def overlap(self) -> Literal["allow", "forbid", "replace"]:
        policy = ConcurrencyPolicy(self.concurrency_policy)
        return {"Allow": "allow", "Forbid": "forbid", "Replace": "replace"}[policy.value]  # type: ignore[return-value]


class DurableScheduleStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = _conditions()
    schedule_id: str | None = Field(default=None, max_length=600)
    workflow_id: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=128)
    message: str | None = Field(default=None, max_length=1024)
    last_schedule_time: str | None = None
    next_schedule_time: str | None = None
    last_execution_id: str | None = Field(default=None, max_length=600)
    active: list[str] | None = Field(default=None, max_length=100, description="Executions not finished yet.")
    fired: int | None = None
    skipped: int | None = None


# ---------------------------------------------------------------- kinds


class Kind(BaseModel):
    """What crdgen needs to know about one kind."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[_Model]
    status: type[_Model]
    printer_columns: tuple[dict[str, Any], ...]
    description: str

    categories: ClassVar[tuple[str, ...]] = ("durable",)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _column(
    name: str, path: str, type_: str = "string", priority: int = 0, description: str = ""
) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


_AGE = _column("Age", ".metadata.creationTimestamp", "date")

WORKFLOW = Kind(
    kind="DurableWorkflow",
    plural="durableworkflows",
    singular="durableworkflow",
    short_names=("dwf",),
    spec=DurableWorkflowSpec,
    status=DurableWorkflowStatus,
    description="A workflow type served in this namespace, optionally with a worker Deployment.",
    printer_columns=(
        _column("Workflow-ID", ".spec.workflowId"),
        _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        _column("Workers", ".status.readyWorkers", "integer"),
        _column("Running", ".status.running", "integer"),
        _column("Failed", ".status.failed", "integer"),
        _AGE,
    ),
)
EXECUTION = Kind(
    kind="DurableExecution",
    plural="durableexecutions",
    singular="durableexecution",
    short_names=("dex",),
    spec=DurableExecutionSpec,
    status=DurableExecutionStatus,
    description="One execution of a workflow: started from Kubernetes, or mirrored from the engine.",
    printer_columns=(
        _column("Workflow", ".spec.workflowRef"),
        _column("Phase", ".status.phase"),
        _column("Step", ".status.currentStep"),
        _AGE,
        _column("Execution", ".status.executionId", priority=1),
        _column("Reason", ".status.reason", priority=1),
    ),
)
SIGNAL = Kind(
    kind="DurableSignal",
    plural="durablesignals",
    singular="durablesignal",
    short_names=("dsig",),
    spec=DurableSignalSpec,
    status=DurableSignalStatus,
    description="One signal delivered exactly once to one execution.",
    printer_columns=(
        _column("Signal", ".spec.signal"),
        _column("Execution", ".status.executionId"),
        _column("Phase", ".status.phase"),
        _AGE,
        _column("Reason", ".status.reason", priority=1),
    ),
)
SCHEDULE = Kind(
    kind="DurableSchedule",
    plural="durableschedules",
    singular="durableschedule",
    short_names=("dsch",),
    spec=DurableScheduleSpec,
    status=DurableScheduleStatus,
    description="Starts executions of a workflow on a cron expression or an interval.",
    printer_columns=(
        _column("Workflow", ".spec.workflowRef"),
        _column("Cron", ".spec.cron"),
        _column("Interval", ".spec.interval"),
        _column("Suspend", ".spec.suspend", "boolean"),
        _column("Last", ".status.lastScheduleTime", "date"),
        _column("Next", ".status.nextScheduleTime", "date"),
        _AGE,
    ),
)

KINDS: tuple[Kind, ...] = (WORKFLOW, EXECUTION, SIGNAL, SCHEDULE)


def now_iso() -> str:
    from datetime import UTC

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 with a Z, as Kubernetes writes times."""
    if dt is None:
        return None
    from datetime import UTC

    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
