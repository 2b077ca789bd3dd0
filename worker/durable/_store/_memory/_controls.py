"""`MemoryStore`'s `Controls`: cancel, force a failure, retry after a failure, skip a stuck step."""

from __future__ import annotations

from ..._errors import ExecutionFinished, ExecutionNotFailed, InvalidStepId
from ..._history import consumed_signal_name, is_failed
from ..._records import FINAL_STATUSES, ExecutionId, Status
from .._base import Controls
from .._data import AuditDraft, forced_failure_error
from ._concurrency import give_back
from ._state import Exec, MemoryPart, MemoryState


def unfinished(st: MemoryState, execution_id: str) -> Exec:
    """The execution; `ExecutionFinished` if it is final, for what only a live one takes."""
    ex = st.get(execution_id)
    if ex.status in FINAL_STATUSES:
        raise ExecutionFinished(
            f"execution {execution_id!r} is already {ex.status.value}",
            execution_id=execution_id,
            status=ex.status.value,
        )
    return ex


# The audit entry of a stop request stored for the worker holding the lease, by the final status asked for.
_REQUESTED = {
    Status.CANCELLED: ("cancel.requested", "cancel requested: "),
    Status.FAILED: ("fail.requested", "forced failure requested: "),
}


class MemoryControls(MemoryPart, Controls):
    async def cancel(self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int) -> Status:
        return self._stop(execution_id, reason, actor, now_ms, Status.CANCELLED)

    async def force_fail(
        self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int
    ) -> Status:
        forced_failure_error(reason, actor)  # a blank reason raises before anything is read or written
        return self._stop(execution_id, reason, actor, now_ms, Status.FAILED)

    def _stop(
        self, execution_id: ExecutionId, reason: str, actor: str | None, now_ms: int, status: Status
    ) -> Status:
        """Stop now if no worker runs it (returns `status`), else store the request (returns running)."""
        st = self._state
        ex = unfinished(st, execution_id)
        if ex.lease_holder(now_ms) is not None:
            ex.cancel, ex.cancel_actor, ex.cancel_status = reason, actor, status
            kind, message = _REQUESTED[status]
            st.audit(ex, [AuditDraft(kind=kind, message=message + reason, actor=actor)], now_ms)
            return Status.RUNNING
        st.stop_now(ex, status, reason, actor, now_ms)
        if ex.conc_group:
            give_back(st, execution_id, ex.conc_group)
        return status

    async def retry_execution(
        self,
        execution_id: ExecutionId,
        actor: str | None,
        now_ms: int,
        *,
        discard_signal_step: str | None = None,
    ) -> None:
        st = self._state
        ex = st.get(execution_id)
        if ex.status != Status.FAILED:
            raise ExecutionNotFailed(
                f"execution {execution_id!r} is {ex.status.value}, not failed",
                execution_id=execution_id,
                status=ex.status.value,
            )
        if discard_signal_step:
            raw = ex.steps.get(discard_signal_step)
            name = consumed_signal_name(raw)
            if raw is None or name is None:
                raise InvalidStepId(
                    f"execution {execution_id!r} has no consumed signal at step {discard_signal_step!r} to discard",
                    execution_id=execution_id,
                    step_id=discard_signal_step,
                )
            del ex.steps[discard_signal_step]
            st.audit(
                ex,
                [
                    AuditDraft(
                        kind="signal.discarded",
                        message=f"consumed signal {name} discarded at step {discard_signal_step}",
                        step_id=discard_signal_step,
                        actor=actor,
                        data=raw,
                    )
                ],
                now_ms,
            )
        for step_id, rec in list(ex.steps.items()):
            if is_failed(rec):
                del ex.steps[step_id]
        ex.attempt += 1
        ex.cancel, ex.cancel_actor, ex.cancel_status = None, None, Status.CANCELLED
        ex.result = None
        ex.error = None
        ex.finished_ms = None
        st.set_status(ex, Status.PENDING, now_ms)
        st.audit(
            ex,
            [AuditDraft(kind="retry", message=f"retry requested (attempt {ex.attempt})", actor=actor)],
            now_ms,
        )
        st.enqueue(execution_id, "retry")

    async def skip_step(
        self, execution_id: ExecutionId, step_id: str, record: bytes, actor: str | None, now_ms: int
    ) -> None:
        st = self._state
        ex = unfinished(st, execution_id)
        ex.steps[step_id] = record
        st.audit(
            ex,
            [
                AuditDraft(
                    kind="step.skipped", message=f"step {step_id} skipped", step_id=step_id, actor=actor
                )
            ],
            now_ms,
        )
        if ex.lease_holder(now_ms) is None:
            st.drop_timer(ex)
        st.enqueue(execution_id, "skip")
