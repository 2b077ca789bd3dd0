"""The context's replay position: every `ctx.*` call is a checkpoint that replay fast-forwards through.

A workflow re-runs from the top on each wake-up. The k-th `ctx.*` call must name the
step recorded at position k, or replay raises `NonDeterminismError`. Cheap records
(`now`, `uuid4`, `random`, `emit`, `note`, a finished sleep) are buffered and written
with the next checkpoint, and always before a step body runs, so nothing outside the
workflow can see a value that is not yet durable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ExecutionTimeout, InvalidStepId, NonDeterminismError
from .._history import StepKind, StepRecord, StepStatus
from .._metrics import METRICS
from .._records import ExecutionId, now_ms
from .._store._base import AuditDraft
from ._activation import Activation
from ._definitions import RetryPolicy

RESERVED_PREFIXES = ("__", "rollback:")
# The record of the position where the execution's deadline passed (`ExecutionTimeout`).
DEADLINE_STEP = "__deadline"
# Records that replay returns without waiting or running anything: no deadline check stops them.
_SETTLED = frozenset({StepStatus.COMPLETED, StepStatus.FAILED})


class _Done:
    """An already-finished awaitable: lets `ctx.note(...)` work with or without `await`."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # pragma: no cover - makes this a generator


class ReplayContext:
    """A context's replay position: the recorded history and where the workflow code is in it.

    The parts of `WorkflowContext` (steps, waits, recorded values) build on this; each `ctx.*`
    call takes its position with `_next` and then reads or writes its record.
    """

    def __init__(
        self,
        activation: Activation | None,
        *,
        execution_id: str,
        workflow_id: str,
        history: Mapping[str, bytes],
        attempt: int = 1,
        deadline_ms: int | None = None,
    ) -> None:
        # The worker's side: commits, suspensions, step bodies (a detached one when no worker runs this).
        self._activation = (
            activation if activation is not None else Activation(None, ExecutionId(execution_id))
        )
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self.attempt = attempt
        # Records are decoded as replay reaches them (each activation replays the whole history, so
        # this is on the hot path), and the position index only when a call finds no record of its own.
        self._stored = history
        self._history: dict[str, StepRecord] = {}
        self._by_seq: dict[int, str] | None = None
        self._seq = 0
        self._seen: set[str] = set()
        # `ctx.patched` answers, by change id: one answer per run, however often it is asked.
        self._patches: dict[str, bool] = {}
        # What `ctx.rollback()` undoes, oldest first: (step id, compensation, the step's result, policy).
        self._compensations: list[tuple[str, Callable[..., Any], Any, RetryPolicy]] = []
        # The execution's deadline (ms since the epoch), and whether `ExecutionTimeout` was raised.
        self._deadline_ms = deadline_ms
        self._deadline_raised = False

    def _next(self, step_id: str, kind: StepKind, *, user: bool) -> tuple[int, StepRecord | None]:
        abandoned = self._activation.abandoned
        if abandoned is not None:
            raise abandoned
        if not isinstance(step_id, str) or not step_id:
            raise InvalidStepId(f"step id must be a non-empty string, got {step_id!r}", step_id=str(step_id))
        if user and step_id.startswith(RESERVED_PREFIXES):
            raise InvalidStepId(
                f"step id {step_id!r} uses a reserved prefix ({', '.join(RESERVED_PREFIXES)})",
                step_id=step_id,
            )
        if step_id in self._seen:
            raise InvalidStepId(
                f"step id {step_id!r} is used twice in execution {self.execution_id!r}; step ids must be unique",
                step_id=step_id,
                execution_id=self.execution_id,
            )
        self._seen.add(step_id)
        self._seq += 1
        seq = self._seq
        rec = self._history.get(step_id)
        if rec is None:  # decoded on first use: this runs for every record of every activation
            raw = self._stored.get(step_id)
            if raw is not None:
                rec = self._history[step_id] = StepRecord.decode(step_id, raw)
        if rec is not None:
            if not rec.replays_at(seq, kind):
                raise self._diverged(
                    seq, kind, step_id, f"there ({step_id!r} was recorded as {rec.kind} #{rec.seq})"
                )
            if self._deadline_ms is not None and rec.status not in _SETTLED:
                self._check_deadline(seq, step_id)
            return seq, rec
        if self._deadline_ms is not None:
            self._check_deadline(seq, step_id)
        if self._recorded_at(seq) is not None:
            raise self._diverged(seq, kind, step_id, "at that position")
        return seq, None

    def _check_deadline(self, seq: int, step_id: str) -> None:
        """Raise `ExecutionTimeout` at call `seq` if the deadline passed: the first call that would do
        anything new (run a body, wait, record a value) at or after it, the same call on every replay
        (its position is recorded under `DEADLINE_STEP`). Raised once per run: a workflow that catches
        it may go on (and `ctx.rollback()`)."""
        deadline = self._deadline_ms
        if self._deadline_raised or deadline is None:
            return
        stored = self._stored.get(DEADLINE_STEP)
        if stored is not None:
            if StepRecord.decode(DEADLINE_STEP, stored).seq != seq:
                return
        elif now_ms() < deadline:
            return
        else:
            now = now_ms()
            self._activation.buffer(
                StepRecord(
                    DEADLINE_STEP, seq, StepKind.DEADLINE, StepStatus.COMPLETED, result={"deadline": deadline},
                    at_ms=now, meta={"step": step_id},
                ),
                AuditDraft(
                    kind="execution.timeout",
                    message=f"execution deadline passed ({(now - deadline) / 1000:.3f} s ago) at {step_id}",
                    step_id=step_id,
                ),
            )  # fmt: skip
            METRICS.timed_out(self.workflow_id, "execution")
        self._deadline_raised = True
        self._seen.discard(step_id)  # the call did not happen: a workflow that catches this may make it
        raise ExecutionTimeout(
            f"execution {self.execution_id!r} passed its deadline (at call #{seq}, {step_id!r})",
            execution_id=self.execution_id,
            deadline=deadline,
        )

    def _diverged(self, seq: int, kind: StepKind, step_id: str, where: str) -> NonDeterminismError:
        recorded = self._recorded_at(seq)
        return NonDeterminismError(
            f"execution {self.execution_id!r}: call #{seq} is {kind} {step_id!r} but history recorded "
            f"{recorded!r} {where}",
            execution_id=self.execution_id,
            seq=seq,
            expected=recorded,
            actual=step_id,
        )

    def _recorded_at(self, seq: int) -> str | None:
        """The step id recorded at position `seq` (not yet reached), if any.

        Every record replay reached sits at an earlier position (a hit is checked to be at its own
        position), so only the records not reached yet can be at `seq`: they are decoded once, the
        first time a call finds no record of its own, usually none at all.
        """
        by_seq = self._by_seq
        if by_seq is None:
            by_seq = self._by_seq = {}
            history = self._history
            for step_id, raw in self._stored.items():
                if step_id not in history:
                    rec = history[step_id] = StepRecord.decode(step_id, raw)
                    if rec.seq >= 0:
                        by_seq[rec.seq] = step_id
        return by_seq.get(seq)

    def _peek_id(self, prefix: str) -> str:
        """The id an unnamed call (`__sleep:`, `__now:`, ...) gets: its prefix and position."""
        return f"{prefix}{self._seq + 1}"
