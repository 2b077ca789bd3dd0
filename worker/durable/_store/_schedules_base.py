"""The storage contract for schedules, mixed into every `Store`.

A schedule is a record (an encoded definition the store never reads, plus the few
fields the store does decide on: paused, next slot, counters) and, while it is
active, its next due time in one sorted set. Claiming does not remove a due
schedule: it pushes its due time forward by a claim time-out and hands out a
claim token. The poller holding the newest token fires the slot and commits the
next slot; a poller that dies mid-way only delays the slot until its claim times
out, and a commit with a stale token changes nothing. Any write to the
definition (`put_schedule`) also voids outstanding claims.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from .._records import AuditEntry
from ._base import AuditDraft


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    schedule_id: str
    # The encoded definition (JSON bytes); only the client reads it.
    spec: bytes
    paused: bool
    # The slot the schedule waits for (ms since the epoch); None once a one-time schedule fired.
    next_ms: int | None
    last_ms: int | None
    last_execution_id: str | None
    fired: int
    skipped: int
    created_ms: int
    updated_ms: int
    # Grows on every claim and every definition write; commits must present the newest.
    token: int


@dataclass(frozen=True, slots=True)
class ScheduleClaim:
    schedule_id: str
    token: int
    # The due time the claim took over (the score before it was pushed forward).
    due_ms: int


class ScheduleStore(abc.ABC):
    """Schedule records, their due set, and the atomic claim of due slots."""

    @abc.abstractmethod
    async def put_schedule(
        self,
        schedule_id: str,
        spec: bytes,
        *,
        next_ms: int | None,
        paused: bool,
        now_ms: int,
        create: bool,
        audit: Sequence[AuditDraft] = (),
    ) -> ScheduleRecord | None:
        """Create or overwrite a schedule's definition, keeping its counters and last run.

        With `create=False` a missing schedule stays missing and the result is None.
        Sets the due entry (`next_ms`, unless paused or None), bumps the token (voiding
        claims in flight), appends `audit`, and wakes `wait_schedule_change` waiters.
        """

    @abc.abstractmethod
    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None: ...

    @abc.abstractmethod
    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, ordered by id."""

    @abc.abstractmethod
    async def delete_schedule(self, schedule_id: str) -> bool:
        """Drop the record, its due entry and its audit; False if there was none."""

    @abc.abstractmethod
    async def claim_due_schedules(self, now_ms: int, claim_ms: int, limit: int = 100) -> list[ScheduleClaim]:
        """Claim up to `limit` schedules due at `now_ms`, earliest first.

        Each claimed schedule's due time moves to `now_ms + claim_ms` and its token grows;
        however many pollers call this at once, a due slot is handed to one of them.
        """

    @abc.abstractmethod
    async def commit_schedule_slot(
        self,
        schedule_id: str,
        token: int,
        *,
        next_ms: int | None,
        now_ms: int,
        fired: int = 0,
        skipped: int = 0,
        last_ms: int | None = None,
        last_execution_id: str | None = None,
        audit: Sequence[AuditDraft] = (),
    ) -> bool:
        """Settle a claimed slot: add to the counters, record the last run (when given),
        set the next slot and its due entry (none if `next_ms` is None), append `audit`.

        False, changing nothing, if `token` is no longer the schedule's newest.
        """

    @abc.abstractmethod
    async def next_schedule_due(self) -> int | None:
        """The earliest due time over all active schedules."""

    @abc.abstractmethod
    async def list_schedule_audit(self, schedule_id: str, limit: int = 1000) -> list[AuditEntry]:
        """The schedule's audit entries, oldest first (capped; the oldest fall off)."""

    @abc.abstractmethod
    async def wait_schedule_change(self, timeout_s: float) -> None:
        """Return when a schedule is written anywhere, or after `timeout_s`."""
