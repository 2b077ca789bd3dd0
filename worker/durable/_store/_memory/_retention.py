"""`MemoryStore`'s `Retention`: compacting, then purging, executions finished long ago."""

from __future__ import annotations

from ..._records import FINAL_STATUSES, Status
from .._base import Retention
from ._state import MemoryPart


class MemoryRetention(MemoryPart, Retention):
    async def compact_finished(self, finished_before_ms: int, now_ms: int, limit: int = 1000) -> int:
        st = self._state
        due = sorted(
            (e.finished_ms, e.execution_id)
            for e in st.execs.values()
            if e.status in (Status.COMPLETED, Status.CANCELLED)
            and e.compacted_ms is None
            and e.finished_ms is not None
            and e.finished_ms < finished_before_ms
        )[:limit]
        for _, execution_id in due:
            ex = st.execs[execution_id]
            ex.steps.clear()
            ex.signals.clear()
            ex.sigids.clear()
            ex.audit.clear()
            ex.lease = None
            ex.compacted_ms = now_ms
        return len(due)

    async def purge_finished(self, finished_before_ms: int, limit: int = 1000) -> int:
        st = self._state
        doomed = [
            e.execution_id
            for e in st.execs.values()
            if e.status in FINAL_STATUSES and e.finished_ms is not None and e.finished_ms < finished_before_ms
        ][:limit]
        for execution_id in doomed:
            del st.execs[execution_id]
        return len(doomed)
