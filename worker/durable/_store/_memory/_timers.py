"""`MemoryStore`'s `Timers`: wake-ups due at a time, each fired once."""

from __future__ import annotations

from ..._records import ExecutionId
from .._base import Timers
from ._state import MemoryPart, changed


class MemoryTimers(MemoryPart, Timers):
    async def add_timer(self, execution_id: ExecutionId, timer_id: str, due_ms: int) -> None:
        self._state.set_timer(f"{execution_id}|{timer_id}", due_ms)

    async def fire_due_timers(self, now_ms: int, limit: int = 500) -> int:
        st = self._state
        due = sorted((ms, member) for member, ms in st.timers.items() if ms <= now_ms)[:limit]
        for _ms, member in due:
            del st.timers[member]
            execution_id = member.rsplit("|", 1)[0]
            ex = st.execs.get(execution_id)
            if ex is not None and ex.timer == member:
                ex.timer = ""
            st.enqueue(execution_id, "timer")
        return len(due)

    async def next_timer_due(self) -> int | None:
        return min(self._state.timers.values(), default=None)

    async def due_timer_count(self, now_ms: int) -> int:
        return sum(1 for ms in self._state.timers.values() if ms <= now_ms)

    async def wait_timer_change(self, timeout_s: float) -> None:
        await changed(self._state.timer_changed, timeout_s)
