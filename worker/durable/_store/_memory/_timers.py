"""`MemoryStore`'s `Timers`: wake-ups due at a time, each fired once."""

from __future__ import annotations

from ..._history import running_step
from ..._records import FINAL_STATUSES, ExecutionId
from .._base import Timers
from .._data import AuditDraft, step_of_timer
from ._state import MemoryPart, changed


class MemoryTimers(MemoryPart, Timers):
    async def add_timer(self, execution_id: ExecutionId, timer_id: str, due_ms: int) -> None:
        self._state.set_timer(f"{execution_id}|{timer_id}", due_ms)

    async def fire_due_timers(self, now_ms: int, limit: int = 500) -> int:
        st = self._state
        due = sorted((ms, member) for member, ms in st.timers.items() if ms <= now_ms)[:limit]
        for _ms, member in due:
            del st.timers[member]
            execution_id, _, timer_id = member.rpartition("|")
            step_id = step_of_timer(timer_id)
            if step_id is not None:
                self._fire_step_timer(execution_id, step_id, now_ms)
                continue
            ex = st.execs.get(execution_id)
            if ex is not None and ex.timer == member:
                ex.timer = ""
            st.enqueue(execution_id, "timer")
        return len(due)

    def _fire_step_timer(self, execution_id: str, step_id: str, now_ms: int) -> None:
        """A running step's time-out passed (see `Runs.put_running_step`)."""
        st = self._state
        ex = st.execs.get(execution_id)
        if ex is None or ex.status in FINAL_STATUSES:
            return
        raw = ex.steps.get(step_id)
        data = running_step(raw)
        if data is None:
            return
        ex.lease = (
            None  # revoked: the stuck worker's writes raise LeaseLost, the next acquire gets a new token
        )
        kind = "heartbeat.timeout" if data.get("meta", {}).get("due_kind") == "heartbeat" else "step.timeout"
        st.audit(
            ex,
            [
                AuditDraft(
                    kind=kind, message=f"step {step_id} timed out ({kind}); lease revoked", step_id=step_id
                )
            ],
            now_ms,
        )
        st.enqueue(execution_id, "step-timeout")

    async def next_timer_due(self) -> int | None:
        return min(self._state.timers.values(), default=None)

    async def due_timer_count(self, now_ms: int) -> int:
        return sum(1 for ms in self._state.timers.values() if ms <= now_ms)

    async def wait_timer_change(self, timeout_s: float) -> None:
        await changed(self._state.timer_changed, timeout_s)
