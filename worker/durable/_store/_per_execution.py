"""The store's parts that act on one execution: its records, a worker's run of it, signals into it,
and what an operator does to it. On Redis each call is one script over that execution's keys (hash
tag `{<execution id>}`) and the shared ones it names (see `_keys.py`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from .._records import (
    AuditEntry,
    ExecutionId,
    ExecutionRecord,
    Status,
)
from ._data import (
    CHECKED_BY_MODEL,
    Acquired,
    AuditDraft,
    Checkpoint,
    ExecutionQuery,
    NewExecution,
    SignalWait,
    SuspendOutcome,
)

__all__ = ["Controls", "Executions", "Runs", "Signals"]


class Executions(abc.ABC):
    """Reading and creating executions: records, step histories, audit, listings, waiting for the end."""

    @abc.abstractmethod
    async def create_execution(self, new: NewExecution) -> bool:
        """Create a pending execution and enqueue its start (or its start timer); True if it did.

        Stores `workflow_id`, `input` and `input_hash` in the record (run 1). Writes an audit entry
        `created` and a status event. One atomic step, which decides by `id_reuse` when the id exists:

        - the same request (same workflow id and input hash; a record from before input hashes
          matches on the workflow id alone): change nothing and return False. With `reject`
          always, with `allow_if_finished` only while the existing execution is not final.
        - a different request that may not replace it (`reject`, or the existing execution is
          not final): change nothing and raise `ExecutionConflict` (fields execution_id,
          workflow_id, existing_workflow_id, reason `"workflow"` or `"input"`).
        - `allow_if_finished` and the existing execution is final (completed, failed or
          cancelled), whatever the request: drop the old run (its record, step records,
          buffered signals, delivery ids, lease, timer, finished and compactable index
          entries) and create the new run with `run` one higher. The audit stream is kept and
          gets a `replaced` entry before the new run's `created`.
        """

    @abc.abstractmethod
    async def get_execution(self, execution_id: ExecutionId) -> ExecutionRecord | None: ...

    @abc.abstractmethod
    async def load_steps(self, execution_id: ExecutionId) -> dict[str, bytes]:
        """Every step record of the execution, step id → encoded record."""

    @abc.abstractmethod
    async def list_audit(self, execution_id: ExecutionId, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries, oldest first."""

    @abc.abstractmethod
    async def append_audit(self, execution_id: ExecutionId, drafts: Sequence[AuditDraft]) -> None:
        """Raises `ExecutionNotFound`."""

    @abc.abstractmethod
    async def list_executions(self, query: ExecutionQuery) -> tuple[list[ExecutionRecord], str | None]:
        """Newest first; returns the page and the cursor of the next page (None at the end)."""

    @abc.abstractmethod
    async def list_active(self, limit: int = 10_000) -> list[ExecutionId]:
        """Ids of executions not yet final."""

    @abc.abstractmethod
    async def wait_finished(self, execution_id: ExecutionId, timeout_s: float | None) -> ExecutionRecord:
        """Block until the execution is final. Raises `ExecutionNotFound`, `WaitTimeoutError`."""

    @abc.abstractmethod
    async def list_emitted(self, limit: int = 100) -> list[tuple[str, str, Any]]:
        """Recently emitted events as (execution id, event name, payload), oldest first."""


class Runs(abc.ABC):
    """A worker's side of one activation: the fenced lease, checkpoints, suspension, the final write."""

    @abc.abstractmethod
    async def acquire(
        self, execution_id: ExecutionId, worker_id: str, ttl_ms: int, now_ms: int, *, own_orphan: bool = False
    ) -> Acquired:
        """Take the lease and load the whole history in one step.

        `own_orphan`: a lease held under `worker_id` is taken over instead of answering busy. The
        caller says so when it runs nothing of this execution: such a lease is left by one of its
        own acquires whose answer was lost (the connection dropped), which nobody would release.

        On `ok`: increments the fence counter (the returned token), sets the lease with a
        time-to-live, moves a non-final status to running (status event if it changed),
        counts the activation, sets `started_at` once, and drops the execution's pending
        wake-up timer (this run supersedes it). If a cancel (or forced failure) was requested and
        nobody holds the lease, the execution becomes cancelled (or failed) here and the outcome is
        `finished`.
        """

    @abc.abstractmethod
    async def renew(self, execution_id: ExecutionId, worker_id: str, token: int, ttl_ms: int) -> bool:
        """Extend our lease; False if it is no longer ours."""

    @abc.abstractmethod
    async def commit(
        self, execution_id: ExecutionId, token: int, checkpoint: Checkpoint, now_ms: int
    ) -> bool:
        """Write a checkpoint. Returns True, writing nothing, if a cancel (or forced failure) was requested.

        Raises `LeaseLost` if `token` is stale.
        """

    @abc.abstractmethod
    async def suspend(
        self,
        execution_id: ExecutionId,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        wake_at_ms: int | None = None,
        timer_id: str | None = None,
        wait: SignalWait | None = None,
        ack: str | None = None,
    ) -> SuspendOutcome:
        """Write `checkpoint`, then settle a wait, or suspend.

        With `wait`: its signal name and schema are recorded on the execution (kept until the next
        signal wait or the end), then a buffered signal is consumed (`signal`), or a passed deadline
        is recorded (`timeout`); the lease stays ours and the run goes on. Otherwise the
        execution moves to `status` (sleeping or waiting), records what it waits for,
        registers its wake-up timer (`timer_id` at `wake_at_ms`; a `wake_at_ms` already due at
        `now_ms` enqueues the run at once instead, reason `timer`), releases the lease, and,
        if a wake-up arrived while we held the lease, enqueues another run.
        Returns `cancelled`, writing nothing, if a cancel (or forced failure) was requested.
        Raises `LeaseLost`.
        `ack`: the queue entry that started this run, acknowledged in the same atomic step if (and
        only if) the execution suspends.
        """

    @abc.abstractmethod
    async def finish(
        self,
        execution_id: ExecutionId,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        result: bytes | None = None,
        error: bytes | None = None,
        ack: str | None = None,
    ) -> None:
        """Write the final status (completed, failed or cancelled), release the lease, wake waiters.

        `ack`: the queue entry that started this run, acknowledged in the same atomic step."""

    @abc.abstractmethod
    async def continue_as_new(
        self,
        execution_id: ExecutionId,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        input: bytes,
        ack: str | None = None,
    ) -> bool:
        """End this run and start the next one under the same id (`ctx.continue_as_new`), in one step.

        Fenced by `token` (raises `LeaseLost`, writing nothing). Returns True, writing nothing, if a
        cancel (or forced failure) was requested. Otherwise: writes the checkpoint's audit entries and
        events, drops every step record (the buffered ones too), stores `input` (already validated and
        encoded; `input_hash` stays the start request's, so a retried start stays idempotent), counts
        `run` up, resets `attempt` to 1, the current step, what it waits for and its wake-up timer,
        moves the execution to pending (status event), releases the lease, enqueues a run (reason
        `continued`) on its version's queue, acknowledges `ack` and audits `continued_as_new` (data:
        the new run number). Buffered signals, delivery ids, the audit trail and counters stay.
        """

    @abc.abstractmethod
    async def release(self, execution_id: ExecutionId, worker_id: str, token: int) -> Status | None:
        """Let go of the lease without writing.

        A cancel or forced failure requested meanwhile is applied now (the execution becomes
        cancelled or failed) and that final status is returned; otherwise, if a wake-up arrived
        while we held the lease, another run is enqueued, and the answer is None.
        """

    @abc.abstractmethod
    async def put_running_step(
        self, execution_id: ExecutionId, token: int, step_id: str, record: bytes, due_ms: int, now_ms: int
    ) -> None:
        """Store `record` (a step attempt with status `running`) under `step_id` and arm the step's
        time-out timer (`step_timer_id(step_id)`) at `due_ms`, in one fenced step: a step with a
        time-out calls this before its body runs and at each heartbeat.

        The timer is separate from the execution's wake-up timer: `acquire` leaves it alone. When it
        fires and the step's record is still `running` (and the execution is not final), the store
        revokes the lease (the next `acquire` gets a new token, the stuck worker's writes raise
        `LeaseLost`), audits `heartbeat.timeout` or `step.timeout` (the record's `meta.due_kind`)
        and enqueues a run (reason `step-timeout`). Raises `LeaseLost` (nothing written).
        """


class Signals(abc.ABC):
    """Signals into executions and the JSON Schemas senders without the model check payloads against."""

    @abc.abstractmethod
    async def send_signal(
        self,
        execution_id: ExecutionId,
        name: str,
        payload: bytes,
        delivery_id: str,
        now_ms: int,
        actor: str | None = None,
        *,
        checked: str = CHECKED_BY_MODEL,
    ) -> bool:
        """Buffer a payload; enqueue the execution if it waits for `name`.

        False (and nothing changes) if `delivery_id` was already accepted, even if the execution has
        finished since (a sender that retries after losing the answer may find it finished by the very
        signal it sent). Raises `ExecutionNotFound` or `ExecutionFinished`.

        `checked` says what the sender validated the payload against: `CHECKED_BY_MODEL` (the
        signal's model), `schema_digest(schema)` of a JSON Schema, or "" (nothing). Unless it is the
        model, a payload for an execution whose signal wait for `name` recorded another schema is
        refused with `SchemaCheckNeeded` carrying that schema, and nothing changes: the sender
        validates against it and sends again. So a sender without the model costs no extra round
        trip unless the waiter has a schema it did not check.
        """

    @abc.abstractmethod
    async def signal_schema(self, execution_id: ExecutionId, name: str) -> bytes | None:
        """The JSON Schema a sender without the model validates a `name` payload against.

        The schema the execution's latest signal wait recorded if that wait was for `name` (see
        `SignalWait.schema`), else the one published for `name` (`publish_signal_schemas`), else None.
        A read, not a promise: the consumer validates the payload again.
        """

    @abc.abstractmethod
    async def published_signal_schemas(self) -> dict[str, bytes]:
        """The store-wide registry `publish_signal_schemas` fills: signal name → JSON Schema."""

    @abc.abstractmethod
    async def publish_signal_schemas(self, schemas: Mapping[str, bytes]) -> None:
        """Record (replace) the JSON Schemas of typed signals by name in a store-wide registry; workers
        publish the signals their process knows at start. Last writer wins per name."""


class Controls(abc.ABC):
    """What an operator does to one execution: cancel, force a failure, retry after a failure, skip a
    stuck step."""

    @abc.abstractmethod
    async def cancel(self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int) -> Status:
        """Cancel now if no worker runs it (returns cancelled), else flag it (returns running).

        Raises `ExecutionNotFound` or `ExecutionFinished`.
        """

    @abc.abstractmethod
    async def force_fail(
        self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int
    ) -> Status:
        """Mark a non-final execution failed, like `cancel` but ending `failed`.

        If no worker holds the lease, the execution fails at once (returns failed): error
        `{"type": "ForcedFailure", "message": reason, "fields": {"reason", "actor"}}`, audit
        `failed.forced`, timers and indexes as for any failure. Otherwise the request is flagged
        (audit `fail.requested`, returns running) where a cancel's would be, and is applied the same
        way: the next checkpoint or suspension writes nothing, the release (or the next acquire)
        makes the execution failed. A later cancel or force-fail before then replaces the request.
        No compensation runs (the worker stops as for a cancel). `retry_execution` re-runs it
        like any failure. Raises `ValueError` for a blank reason (nothing written),
        `ExecutionNotFound` or `ExecutionFinished`.
        """

    @abc.abstractmethod
    async def retry_execution(
        self,
        execution_id: ExecutionId,
        actor: str | None,
        now_ms: int,
        *,
        discard_signal_step: str | None = None,
    ) -> None:
        """A failed execution goes back to pending: failed step records are dropped (completed ones
        stay memoized), the attempt count grows, a run is enqueued.

        `discard_signal_step`: also drop that step's record, which must be a consumed signal (kind
        `signal`, status `completed`, result kind `signal`), so that the wait waits again; audited as
        `signal.discarded` with the dropped record as data. Buffered signals stay buffered.
        Raises `ExecutionNotFound`, `ExecutionNotFailed`, or `InvalidStepId` (nothing changes) if the
        step holds no consumed signal.
        """

    @abc.abstractmethod
    async def skip_step(
        self, execution_id: ExecutionId, step_id: str, record: bytes, actor: str | None, now_ms: int
    ) -> None:
        """Store `record` for a stuck step of a non-final execution and enqueue a run.

        Raises `ExecutionNotFound` or `ExecutionFinished`.
        """
