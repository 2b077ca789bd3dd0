"""`ScheduleInfo`: what a client reads about a schedule, its definition and its status."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._records import ms_to_dt
from .._schedule_specs import Overlap, ScheduleSpec
from .._store._schedules_base import ScheduleRecord


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule's definition and status."""

    schedule_id: str
    workflow_id: str
    input: Any
    cron: str | None
    interval_seconds: float | None
    timezone: str
    overlap: Overlap
    starting_deadline_seconds: float | None
    paused: bool
    one_time: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_execution_id: str | None
    fired_count: int
    skipped_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, rec: ScheduleRecord) -> ScheduleInfo:
        spec = ScheduleSpec.from_json(rec.spec)
        return cls(
            schedule_id=rec.schedule_id,
            workflow_id=spec.workflow_id,
            input=spec.input,
            cron=spec.cron,
            interval_seconds=None if spec.interval_ms is None else spec.interval_ms / 1000,
            timezone=spec.timezone,
            overlap=spec.overlap,
            starting_deadline_seconds=None if spec.deadline_ms is None else spec.deadline_ms / 1000,
            paused=rec.paused,
            one_time=spec.one_time,
            next_run_at=None if rec.paused else ms_to_dt(rec.next_ms),
            last_run_at=ms_to_dt(rec.last_ms),
            last_execution_id=rec.last_execution_id,
            fired_count=rec.fired,
            skipped_count=rec.skipped,
            created_at=ms_to_dt(rec.created_ms),  # type: ignore[arg-type]
            updated_at=ms_to_dt(rec.updated_ms),  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out
