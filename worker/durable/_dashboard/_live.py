"""Live updates: one reader tails the store's status stream and fans each change out to the open
server-sent-event streams of this process (so a hundred open pages cost one Redis read)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from .._errors import DurableError
from .._records import StatusEvent
from .._store._cross_execution import StatusFeed

__all__ = ["StatusHub"]

log = logging.getLogger("durable.dashboard")

# A subscriber this far behind loses events (its page refreshes on the next one anyway).
_QUEUE_SIZE = 1000


class StatusHub:
    """Tails `feed` while anybody listens (`subscribe`); stops when the last listener leaves."""

    def __init__(self, feed: StatusFeed, *, block_ms: int = 5000) -> None:
        self._feed = feed
        self._block_ms = block_ms
        self._queues: set[asyncio.Queue[StatusEvent]] = set()
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        # Where the tail stands: kept across idle periods only while the reader runs.
        self._cursor: str | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[StatusEvent]]:
        """A queue of every status change from now on: the tail's position is fixed before this
        returns, so a change made after it is delivered."""
        queue: asyncio.Queue[StatusEvent] = asyncio.Queue(_QUEUE_SIZE)
        async with self._starting:
            if self._task is None or self._task.done():
                _, self._cursor = await self._feed.tail_status_events(None, 1, 0)
                self._task = asyncio.create_task(self._run(), name="durable-dashboard-status-tail")
            self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def _run(self) -> None:
        while self._queues:
            try:
                events, self._cursor = await self._feed.tail_status_events(self._cursor, 500, self._block_ms)
            except DurableError as exc:
                log.warning("status stream unavailable (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            for event in events:
                for queue in list(self._queues):
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(event)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
