"""DurableSignal: one signal delivered exactly once to one execution."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from ._wire import (
    DNS_SUBDOMAIN,
    MAX_PAYLOAD_BYTES,
    SIGNAL_NAME,
    Condition,
    WireModel,
    cel,
    check_freeform,
    conditions_field,
    freeform,
)


class DurableSignalSpec(WireModel):
    """Delivers one signal to one execution, exactly once."""

    execution_ref: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of a DurableExecution here."
    )
    execution_id: str | None = Field(default=None, max_length=512, min_length=1)
    signal: str = Field(max_length=256, pattern=SIGNAL_NAME)
    payload: dict[str, Any] | None = freeform("Signal payload (JSON object).")

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.executionRef) != has(self.executionId)",
                    "exactly one of executionRef or executionId must be set",
                ),
                cel("self == oldSelf", "a signal is immutable; create a new DurableSignal instead"),
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


class DurableSignalStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = conditions_field()
    phase: SignalPhase | None = None
    reason: str | None = Field(default=None, max_length=128)
    message: str | None = Field(default=None, max_length=1024)
    execution_id: str | None = Field(default=None, max_length=512)
    delivered_time: str | None = None
    duplicate: bool | None = Field(
        default=None, description="The engine had already accepted this delivery id."
    )
    attempts: int | None = None
