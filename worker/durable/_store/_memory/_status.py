"""`MemoryStore`'s `StatusFeed`: status changes read once per consumer group."""

from __future__ import annotations

from collections.abc import Sequence

from ..._records import StatusConsumer, StatusEvent
from .._base import StatusFeed
from ._state import MemoryPart, changed


class MemoryStatusFeed(MemoryPart, StatusFeed):
    async def read_status_events(
        self, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StatusEvent]:
        st = self._state
        last, pending = st.groups.setdefault(group, (0, {}))
        fresh = [ev for ev in st.status if int(ev.event_id.rsplit("-", 1)[1]) > last]
        if not fresh and block_ms > 0:
            if not await changed(st.status_changed, block_ms / 1000):
                return []
            fresh = [ev for ev in st.status if int(ev.event_id.rsplit("-", 1)[1]) > last]
        fresh = fresh[:count]
        if fresh:
            last = int(fresh[-1].event_id.rsplit("-", 1)[1])
            pending.update({ev.event_id: ev for ev in fresh})
            st.groups[group] = (last, pending)
        return fresh

    async def ack_status_events(self, group: str, event_ids: Sequence[str]) -> None:
        groups = self._state.groups
        if group in groups:
            pending = groups[group][1]
            for event_id in event_ids:
                pending.pop(event_id, None)

    async def tail_status_events(
        self, after: str | None, count: int, block_ms: int
    ) -> tuple[list[StatusEvent], str]:
        st = self._state

        def seq(event_id: str) -> int:
            return int(event_id.rsplit("-", 1)[1])

        if after is None:
            after = st.status[-1].event_id if st.status else "0-0"
        fresh = [ev for ev in st.status if seq(ev.event_id) > seq(after)]
        if not fresh and block_ms > 0 and await changed(st.status_changed, block_ms / 1000):
            fresh = [ev for ev in st.status if seq(ev.event_id) > seq(after)]
        fresh = fresh[:count]
        return fresh, fresh[-1].event_id if fresh else after

    # One process holds every reader of a MemoryStore: there is no other replica to take over from,
    # and its group keeps no per-reader lists.
    async def claim_status_events(self, group: str, consumer: str, min_idle_ms: int) -> int:
        return 0

    async def status_consumers(self, group: str) -> list[StatusConsumer]:
        return []

    async def drop_status_consumer(self, group: str, consumer: str) -> None:
        return None
