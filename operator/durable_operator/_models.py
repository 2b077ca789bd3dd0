"""The custom resources' specs and statuses: the one source of the CRD schemas.

`crdgen` turns these models into structural OpenAPI schemas; the handlers parse every
CR through them, so a CR that the API server would have rejected (an old CRD, a server
without CEL) still fails here with a one-line reason. Field names are camelCase on the
wire (aliases) and snake_case in Python.

CEL rules are attached with `x-kubernetes-validations` in `json_schema_extra`; each of
them is mirrored by a pydantic validator, so both the API server and the operator say
the same thing in the same words.

The models live in `_resources`, one module per kind over the shared wire conventions
(`_resources._wire`); this module makes them the kinds crdgen reads, and is where the rest
of the operator imports them from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ._resources._executions import (
    PHASES,
    DurableExecutionSpec,
    DurableExecutionStatus,
    ExecutionError,
    Phase,
)
from ._resources._schedules import ConcurrencyPolicy, DurableScheduleSpec, DurableScheduleStatus
from ._resources._signals import DurableSignalSpec, DurableSignalStatus, SignalPhase
from ._resources._wire import (
    API_VERSION,
    GROUP,
    MAX_FREEFORM_PROPERTIES,
    MAX_INPUT_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_RESULT_BYTES,
    VERSION,
    WORKER_VERSION,
    Condition,
    ConditionStatus,
    WireModel,
    iso,
    json_size,
    now_iso,
    parse_duration,
)
from ._resources._workflows import (
    DurableWorkflowSpec,
    DurableWorkflowStatus,
    WorkerTemplate,
    WorkerVersionStatus,
)


class Kind(BaseModel):
    """What crdgen needs to know about one kind."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[WireModel]
    status: type[WireModel]
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
        _column("Current", ".status.currentVersion"),
        _column("Draining", ".status.draining", "integer"),
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
        _column("Version", ".status.workerVersion", priority=1),
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


__all__ = [
    "API_VERSION",
    "EXECUTION",
    "GROUP",
    "KINDS",
    "MAX_FREEFORM_PROPERTIES",
    "MAX_INPUT_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_RESULT_BYTES",
    "PHASES",
    "SCHEDULE",
    "SIGNAL",
    "VERSION",
    "WORKER_VERSION",
    "WORKFLOW",
    "ConcurrencyPolicy",
    "Condition",
    "ConditionStatus",
    "DurableExecutionSpec",
    "DurableExecutionStatus",
    "DurableScheduleSpec",
    "DurableScheduleStatus",
    "DurableSignalSpec",
    "DurableSignalStatus",
    "DurableWorkflowSpec",
    "DurableWorkflowStatus",
    "ExecutionError",
    "Kind",
    "Phase",
    "SignalPhase",
    "WorkerTemplate",
    "WorkerVersionStatus",
    "iso",
    "json_size",
    "now_iso",
    "parse_duration",
]
