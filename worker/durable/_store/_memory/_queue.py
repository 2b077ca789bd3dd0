"""`MemoryStore`'s `ReadyQueue`: entries delivered at least once, acknowledged, reclaimed; recovery."""

from __future__ import annotations

from collections.abc import Sequence

from ..._records import FINAL_STATUSES, ExecutionId, QueueEntry, Status
from ..._records import now_ms as _now_ms
from .._base import ReadyQueue
from ._state import MemoryPart, changed


class MemoryQueue(MemoryPart, ReadyQueue):
    async def enqueue(self, execution_id: ExecutionId, reason: str) -> None:
        self._state.enqueue(execution_id, reason, self._version)

    async def dequeue(self, consumer: str, count: int, block_ms: int) -> list[QueueEntry]:
        st = self._state
        ready = st.ready[self._version]
        if not ready and block_ms > 0 and not await changed(st.queue_changed, block_ms / 1000):
            return []
        out: list[QueueEntry] = []
        now_ms = _now_ms()
        while ready and len(out) < count:
            entry = ready.popleft()
            st.pending[entry.entry_id] = (entry, consumer, now_ms, self._version)
            out.append(entry)
        return out

    async def delivered_to(self, consumer: str, count: int) -> list[QueueEntry]:
        mine = [
            e for e, owner, _t, v in self._state.pending.values() if owner == consumer and v == self._version
        ]
        return mine[:count]

    async def ack(self, entry_ids: Sequence[str]) -> None:
        pending = self._state.pending
        for entry_id in entry_ids:
            pending.pop(entry_id, None)

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[QueueEntry]:
        st = self._state
        now_ms = _now_ms()
        out: list[QueueEntry] = []
        for entry_id, (entry, _owner, since, version) in list(st.pending.items()):
            if len(out) >= count:
                break
            if version == self._version and now_ms - since >= min_idle_ms:
                st.pending[entry_id] = (entry, consumer, now_ms, version)
                out.append(entry)
        return out

    async def queue_depth(self) -> int:
        st = self._state
        return len(st.ready[self._version]) + sum(p[3] == self._version for p in st.pending.values())

    async def recover(self, now_ms: int) -> int:
        st = self._state
        queued = {e.execution_id for ready in st.ready.values() for e in ready}
        queued |= {p[0].execution_id for p in st.pending.values()}
        count = 0
        for ex in st.execs.values():
            if (
                ex.status in FINAL_STATUSES
                or ex.execution_id in queued
                or ex.lease_holder(now_ms) is not None
            ):
                continue
            armed = bool(ex.timer) and ex.timer in st.timers
            action: str | None = None
            if ex.status in (Status.PENDING, Status.RUNNING):
                action = None if armed else "enqueue"
            elif ex.status == Status.SLEEPING:
                action = None if armed else "rearm"
            elif ex.status == Status.WAITING:
                # waiting_for was cleared by the signal that enqueued it: that entry was lost.
                if not ex.waiting_for or ex.signals.get(ex.waiting_for):
                    action = "enqueue"
                elif ex.wake_ms is not None and not armed:
                    action = "rearm"
            if action == "rearm" and ex.wake_ms is None:
                action = "enqueue"
            if action == "enqueue":
                st.enqueue(ex.execution_id, "recover")
                count += 1
            elif action == "rearm" and ex.wake_ms is not None:
                ex.timer = ex.timer or f"{ex.execution_id}|recover"
                st.set_timer(ex.timer, ex.wake_ms)
        return count
