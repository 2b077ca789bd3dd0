"""How the mirror paces itself: status events read in batches, status patches at a bounded rate."""

from __future__ import annotations

import asyncio
import time

from durable import StatusEvent, StatusFeed


class RateLimiter:
    """A token bucket: `rate` operations per second, bursts up to `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = max(rate, 0.1)
        self.tokens = self.rate
        self.stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


async def read_batch(
    feed: StatusFeed, group: str, consumer: str, size: int, window: float
) -> list[StatusEvent]:
    """Up to `size` events: a blocking read (1 s), then whatever more arrives within `window` seconds."""
    events = await feed.read_status_events(group, consumer, size, 1000)
    deadline = time.monotonic() + window
    # Gather a little more to coalesce bursts (a step commit is often followed by the next one).
    while events and len(events) < size and time.monotonic() < deadline:
        more = await feed.read_status_events(group, consumer, size - len(events), 0)
        if not more:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            continue
        events.extend(more)
    return events
