"""DurableSchedule: executions of a workflow started on a cron expression or an interval."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ._wire import (
    CRON,
    DNS_SUBDOMAIN,
    DURATION,
    MAX_INPUT_BYTES,
    TIME_ZONE,
    Condition,
    WireModel,
    cel,
    check_freeform,
    conditions_field,
    freeform,
    parse_duration,
)


class ConcurrencyPolicy(enum.StrEnum):
    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class DurableScheduleSpec(WireModel):
    """Starts executions of a workflow on a cron expression or a fixed interval."""

    workflow_ref: str = Field(
        max_length=253, pattern=DNS_SUBDOMAIN, description="Name of a DurableWorkflow here."
    )
    cron: str | None = Field(default=None, max_length=128, pattern=CRON)
    interval: str | None = Field(
        default=None, max_length=32, pattern=DURATION, description="e.g. 30s, 5m, 1h30m"
    )
    time_zone: str = Field(default="UTC", max_length=64, pattern=TIME_ZONE)
    input: dict[str, Any] | None = freeform("Input of every started execution (JSON object).")
    suspend: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    successful_executions_history_limit: int = Field(default=3, ge=0, le=100)
    failed_executions_history_limit: int = Field(default=1, ge=0, le=100)

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.cron) != has(self.interval)", "exactly one of cron or interval must be set"),
                cel(
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


class DurableScheduleStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = conditions_field()
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
