"""`MemoryStore`'s `Concurrency`: slots and waiting lines of concurrency groups."""

from __future__ import annotations

from ..._records import FINAL_STATUSES, ExecutionId, Status
from .._concurrency import RECHECK_MS, Admission, Concurrency, waiting_for_concurrency
from ._state import MemoryPart, MemoryState


def _line(members: dict[str, int]) -> list[str]:
    """Ids in order: by score (ms), then by id, as a Redis sorted set orders them."""
    return [eid for eid, _ in sorted(members.items(), key=lambda item: (item[1], item[0]))]


def give_back(st: MemoryState, execution_id: str, group: str) -> int:
    """Give back `execution_id`'s slot or place in line in `group`; enqueue the oldest waiters that fit."""
    st.conc_slots[group].pop(execution_id, None)
    st.conc_waiting[group].pop(execution_id, None)
    free = st.conc_limits.get(group, 0) - len(st.conc_slots[group])
    if free <= 0:
        return 0
    woken = _line(st.conc_waiting[group])[:free]
    for eid in woken:
        st.enqueue(eid, "concurrency")
    return len(woken)


class MemoryConcurrency(MemoryPart, Concurrency):
    async def admit(
        self,
        execution_id: ExecutionId,
        token: int,
        group: str,
        limit: int,
        now_ms: int,
        *,
        recheck_ms: int = RECHECK_MS,
        ack: str | None = None,
    ) -> Admission:
        st = self._state
        ex = st.get(execution_id)
        st.check_fence(ex, token, now_ms)
        if ex.cancel is not None:
            return "cancelled"
        st.conc_limits[group] = limit
        ex.conc_group = group
        slots = st.conc_slots[group]
        if execution_id in slots:
            return "admitted"
        waiting = st.conc_waiting[group]
        waiting.setdefault(execution_id, ex.created_ms)
        if self._fits(group, execution_id, now_ms):
            return "admitted"
        # Free the slots of holders that are final or gone (a worker died between its final write and
        # its free_slot), then ask again.
        for holder in list(slots):
            other = st.execs.get(holder)
            if other is None or other.status in FINAL_STATUSES:
                give_back(st, holder, group)
        if self._fits(group, execution_id, now_ms):
            return "admitted"
        st.drop_timer(ex)
        ex.timer = f"{execution_id}|concurrency"
        st.set_timer(ex.timer, now_ms + recheck_ms)
        ex.waiting_for = waiting_for_concurrency(group)
        ex.wake_ms = None
        ex.lease = None
        ex.rewake = False
        st.set_status(ex, Status.PENDING, now_ms)
        if ack:
            st.pending.pop(ack, None)
        return "parked"

    def _fits(self, group: str, execution_id: str, now_ms: int) -> bool:
        st = self._state
        slots = st.conc_slots[group]
        free = st.conc_limits.get(group, 0) - len(slots)
        if free <= 0:
            return False
        if execution_id not in _line(st.conc_waiting[group])[:free]:
            return False
        del st.conc_waiting[group][execution_id]
        slots[execution_id] = now_ms
        return True

    async def enroll(self, execution_id: ExecutionId, group: str, now_ms: int) -> bool:
        st = self._state
        ex = st.execs.get(execution_id)
        if ex is None or ex.status in FINAL_STATUSES or ex.activations > 0:
            return False
        if execution_id in st.conc_slots[group]:
            return False
        ex.conc_group = group
        st.conc_waiting[group].setdefault(execution_id, ex.created_ms)
        return True

    async def free_slot(self, execution_id: ExecutionId, now_ms: int, *, group: str | None = None) -> int:
        st = self._state
        ex = st.execs.get(execution_id)
        if ex is not None:
            if ex.status not in FINAL_STATUSES:
                return 0
            group = group or ex.conc_group
        if not group:
            return 0
        return give_back(st, execution_id, group)

    async def concurrency_state(self, group: str) -> tuple[list[ExecutionId], list[ExecutionId]]:
        st = self._state
        holders = _line(st.conc_slots.get(group, {}))
        waiters = _line(st.conc_waiting.get(group, {}))
        return [ExecutionId(e) for e in holders], [ExecutionId(e) for e in waiters]
