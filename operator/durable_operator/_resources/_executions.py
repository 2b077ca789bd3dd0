"""DurableExecution: one execution started from Kubernetes, or the mirror of one started elsewhere."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from ._wire import (
    DNS_SUBDOMAIN,
    FREEFORM,
    IMMUTABLE,
    MAX_INPUT_BYTES,
    MAX_RESULT_BYTES,
    Condition,
    WireModel,
    cel,
    check_freeform,
    conditions_field,
    freeform,
)


class DurableExecutionSpec(WireModel):
    """Starts an execution (workflowRef + input), or mirrors an existing one (workflowRef + executionId)."""

    workflow_ref: str = Field(
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Name of a DurableWorkflow in this namespace.",
        json_schema_extra=IMMUTABLE,
    )
    input: dict[str, Any] | None = freeform("Workflow input (JSON object).")
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
                cel("!(has(self.executionId) && has(self.input))", "input cannot be given with executionId"),
                cel(
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

    @staticmethod
    def shows_final(phase: object) -> bool:
        """Whether a CR status's `phase` (any value, an absent one included) is a final phase."""
        return phase in (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value)


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


class ExecutionError(WireModel):
    type: str = Field(max_length=256)
    message: str = Field(max_length=4096)


class DurableExecutionStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = conditions_field()
    execution_id: str | None = Field(default=None, max_length=512)
    workflow_id: str | None = Field(default=None, max_length=200)
    worker_version: str | None = Field(
        default=None, max_length=63, description='The worker version running it ("" for unversioned).'
    )
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
    parent_execution_id: str | None = Field(
        default=None,
        max_length=512,
        description="The parent execution's id when this execution is a child workflow (ctx.child).",
    )
