"""The mirror's consumer group housekeeping: claiming what other readers left, forgetting old readers.

Each replica reads under a consumer name of its own, and each term under a fresh one, so the
group collects readers that are gone (old terms, replicas that died or were deposed). Their
unacknowledged entries are claimed into the current term; readers with nothing pending are
dropped once they have been quiet for a while.
"""

from __future__ import annotations

from durable import StatusFeed


async def claim_status_entries(feed: StatusFeed, group: str, consumer: str, min_idle_ms: int) -> int:
    """Move every entry of the group idle for `min_idle_ms` into `consumer`'s pending list."""
    return await feed.claim_status_events(group, consumer, min_idle_ms)


async def pending_elsewhere(feed: StatusFeed, group: str, consumer: str, min_idle_ms: int) -> bool:
    """Does another consumer hold entries it has not touched for `min_idle_ms`?"""
    return any(
        c.name != consumer and c.pending > 0 and c.idle_ms >= min_idle_ms
        for c in await feed.status_consumers(group)
    )


async def prune_status_consumers(feed: StatusFeed, group: str, keep: str, min_idle_ms: int) -> None:
    """Forget consumers with nothing pending that have been quiet for a while (old terms, gone replicas)."""
    for c in await feed.status_consumers(group):
        if c.name != keep and c.pending == 0 and c.idle_ms >= min_idle_ms:
            await feed.drop_status_consumer(group, c.name)
