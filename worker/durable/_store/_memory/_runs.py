"""`MemoryStore`'s `Runs`: a worker's lease, fenced checkpoints, suspensions and final writes."""

from __future__ import annotations

from ..._records import FINAL_STATUSES, ExecutionId, Status
from ..._records import now_ms as _now_ms
from .._base import Runs
from .._data import Acquired, AuditDraft, Checkpoint, SignalWait, SuspendOutcome, step_timer_id
from ._state import MemoryPart


class MemoryRuns(MemoryPart, Runs):
    async def acquire(
        self, execution_id: ExecutionId, worker_id: str, ttl_ms: int, now_ms: int, *, own_orphan: bool = False
    ) -> Acquired:
        st = self._state
        ex = st.execs.get(execution_id)
        if ex is None:
            return Acquired("missing")
        if ex.status in FINAL_STATUSES:
            return Acquired("finished")
        if ex.version != self._version:
            return Acquired("moved")
        holder = ex.lease_holder(now_ms)
        if holder is not None and own_orphan and holder[0] == worker_id:
            holder = None
        if holder is not None:
            ex.rewake = True
            return Acquired("busy", retry_after_ms=max(1, holder[2] - now_ms))
        if st.apply_stop_request(ex, now_ms) is not None:
            return Acquired("finished")
        ex.fence += 1
        ex.lease = (worker_id, ex.fence, now_ms + ttl_ms)
        st.drop_timer(ex)
        ex.rewake = False
        ex.activations += 1
        if ex.started_ms is None:
            ex.started_ms = now_ms
        if ex.status != Status.RUNNING:
            ex.waiting_for = ""
            ex.wake_ms = None
            st.set_status(ex, Status.RUNNING, now_ms)
        ex.updated_ms = now_ms
        return Acquired("ok", token=ex.fence, record=ex.record(), steps=dict(ex.steps))

    async def renew(self, execution_id: ExecutionId, worker_id: str, token: int, ttl_ms: int) -> bool:
        ex = self._state.execs.get(execution_id)
        if ex is None:
            return False
        now_ms = _now_ms()
        holder = ex.lease_holder(now_ms)
        if holder is None or holder[1] != token or ex.fence != token:
            return False
        ex.lease = (worker_id, token, now_ms + ttl_ms)
        return True

    async def commit(
        self, execution_id: ExecutionId, token: int, checkpoint: Checkpoint, now_ms: int
    ) -> bool:
        st = self._state
        ex = st.get(execution_id)
        st.check_fence(ex, token, now_ms)
        if ex.cancel is not None:
            return True
        st.write(ex, checkpoint, now_ms)
        return False

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
        st = self._state
        ex = st.get(execution_id)
        st.check_fence(ex, token, now_ms)
        if ex.cancel is not None:
            return SuspendOutcome("cancelled")
        st.write(ex, checkpoint, now_ms)
        if wait is not None:
            ex.wait_signal, ex.wait_schema = wait.name, wait.schema
            buffered = ex.signals.get(wait.name)
            if buffered:
                payload = buffered.popleft()
                ex.steps[wait.step_id] = wait.record_prefix + payload + wait.record_suffix
                st.audit(
                    ex,
                    [
                        AuditDraft(
                            kind="signal.consumed",
                            message=f"signal {wait.name} consumed",
                            step_id=wait.step_id,
                        )
                    ],
                    now_ms,
                )
                return SuspendOutcome("signal", payload)
            if (
                wait.deadline_ms is not None
                and now_ms >= wait.deadline_ms
                and wait.timeout_record is not None
            ):
                ex.steps[wait.step_id] = wait.timeout_record
                return SuspendOutcome("timeout")
        ex.waiting_for = wait.name if wait is not None else ""
        ex.wake_ms = wake_at_ms
        due_now = wake_at_ms is not None and wake_at_ms <= now_ms
        if wake_at_ms is not None:
            st.drop_timer(ex)
            if not due_now:
                ex.timer = f"{execution_id}|{timer_id or 'wake'}"
                st.set_timer(ex.timer, wake_at_ms)
        ex.lease = None
        st.set_status(ex, status, now_ms)
        if due_now:
            # Already due (a 0 s sleep, a passed retry time): straight to the queue, no timer round.
            ex.rewake = False
            st.enqueue(execution_id, "timer")
        st.after_release(ex)
        if ack:
            st.pending.pop(ack, None)
        return SuspendOutcome("suspended")

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
        st = self._state
        ex = st.get(execution_id)
        st.check_fence(ex, token, now_ms)
        st.write(ex, checkpoint, now_ms)
        st.finalize(ex, status, now_ms, result=result, error=error)
        if ack:
            st.pending.pop(ack, None)

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
        st = self._state
        ex = st.get(execution_id)
        st.check_fence(ex, token, now_ms)
        if ex.cancel is not None:
            return True
        st.write(ex, checkpoint, now_ms)
        ex.steps.clear()
        ex.input = input
        ex.run += 1
        ex.attempt = 1
        ex.current_step = None
        ex.waiting_for = ""
        ex.wake_ms = None
        st.drop_timer(ex)
        ex.lease = None
        ex.rewake = False
        st.set_status(ex, Status.PENDING, now_ms)
        st.enqueue(execution_id, "continued")
        st.audit(
            ex,
            [
                AuditDraft(
                    kind="continued_as_new",
                    message=f"continued as new: run {ex.run}",
                    data=b'{"run":%d}' % ex.run,
                )
            ],
            now_ms,
        )
        if ack:
            st.pending.pop(ack, None)
        return False

    async def release(self, execution_id: ExecutionId, worker_id: str, token: int) -> Status | None:
        st = self._state
        ex = st.execs.get(execution_id)
        if ex is None:
            return None
        now_ms = _now_ms()
        holder = ex.lease_holder(now_ms)
        if holder is not None and holder[1] == token:
            ex.lease = None
        elif holder is not None or ex.fence != token:
            return None
        if ex.status in FINAL_STATUSES:
            return None
        # A cancel or forced failure requested while we ran takes effect the moment we let go.
        applied = st.apply_stop_request(ex, now_ms)
        if applied is None:
            st.after_release(ex)
        return applied

    async def put_running_step(
        self, execution_id: ExecutionId, token: int, step_id: str, record: bytes, due_ms: int, now_ms: int
    ) -> None:
        st = self._state
        ex = st.get(execution_id)
        st.check_fence(ex, token, now_ms)
        ex.steps[step_id] = record
        st.set_timer(f"{execution_id}|{step_timer_id(step_id)}", due_ms)
