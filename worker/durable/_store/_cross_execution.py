"""The store's parts that span executions: the ready queue, timers, the status feed, retention."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from .._records import (
    ExecutionId,
    QueueEntry,
    StatusConsumer,
    StatusEvent,
)

__all__ = ["ReadyQueue", "Retention", "StatusFeed", "Timers"]


class ReadyQueue(abc.ABC):
    """Executions ready to run, delivered at least once to the workers' consumer group."""

    @abc.abstractmethod
    async def enqueue(self, execution_id: ExecutionId, reason: str) -> None: ...

    @abc.abstractmethod
    async def dequeue(self, consumer: str, count: int, block_ms: int) -> list[QueueEntry]:
        """New entries for this consumer, waiting up to `block_ms` for the first."""

    @abc.abstractmethod
    async def delivered_to(self, consumer: str, count: int) -> list[QueueEntry]:
        """Entries delivered to this consumer and not acked yet, oldest first: after a queue read whose
        answer was lost (the connection dropped), the entries it took are found here at once instead of
        after the visibility time-out."""

    @abc.abstractmethod
    async def ack(self, entry_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[QueueEntry]:
        """Take over entries delivered to any consumer and not acked for `min_idle_ms`."""

    @abc.abstractmethod
    async def queue_depth(self) -> int:
        """Entries waiting or delivered and not yet acked."""

    @abc.abstractmethod
    async def recover(self, now_ms: int) -> int:
        """Enqueue every non-final execution that nobody runs and nothing will wake; return the count."""


class Timers(abc.ABC):
    """Wake-ups due at a time (durable sleeps, deadlines, delayed starts), fired once each."""

    @abc.abstractmethod
    async def add_timer(self, execution_id: ExecutionId, timer_id: str, due_ms: int) -> None: ...

    @abc.abstractmethod
    async def fire_due_timers(self, now_ms: int, limit: int = 500) -> int:
        """Move due timers to the queue; each timer fires once however many pollers call this."""

    @abc.abstractmethod
    async def next_timer_due(self) -> int | None: ...

    @abc.abstractmethod
    async def due_timer_count(self, now_ms: int) -> int: ...

    @abc.abstractmethod
    async def wait_timer_change(self, timeout_s: float) -> None:
        """Return early when a timer is added that is due before every timer already set, or into an
        empty set (so a poller sleeping until the earliest due time can re-aim its sleep)."""


class StatusFeed(abc.ABC):
    """Status changes, read once per consumer group (the operator's mirror reads only this)."""

    @abc.abstractmethod
    async def read_status_events(
        self, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StatusEvent]:
        """Status changes through a consumer group (created on first use, from the stream's start)."""

    @abc.abstractmethod
    async def ack_status_events(self, group: str, event_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def claim_status_events(self, group: str, consumer: str, min_idle_ms: int) -> int:
        """Hand `consumer` every status event of the group unacknowledged for `min_idle_ms`.

        Its next `read_status_events` returns them first. For a reader that took over from a
        replica that died mid-batch. Returns how many were claimed.
        """

    @abc.abstractmethod
    async def status_consumers(self, group: str) -> list[StatusConsumer]:
        """The group's readers with their unacknowledged counts and idle times."""

    @abc.abstractmethod
    async def drop_status_consumer(self, group: str, consumer: str) -> None:
        """Forget a reader (its unacknowledged events should be claimed first)."""

    @abc.abstractmethod
    async def tail_status_events(
        self, after: str | None, count: int, block_ms: int
    ) -> tuple[list[StatusEvent], str]:
        """Status changes after the event id `after` (None: only those that happen from now on), without
        a consumer group: for watchers that leave nothing behind in the store and may miss events (the
        dashboard's live updates). Waits up to `block_ms` for the first one; returns the events and the
        id to pass as `after` next time."""


class Retention(abc.ABC):
    """Dropping the history, then the records, of executions finished long ago."""

    @abc.abstractmethod
    async def compact_finished(self, finished_before_ms: int, now_ms: int, limit: int = 1000) -> int:
        """Retention's first stage: completed and cancelled executions that became final before the given
        time keep their record (status, input, result or error, times, counters) and lose their history
        (step records, audit entries, buffered signals, delivery ids). Failed executions keep everything:
        they can be retried, and they are the ones worth debugging. Each execution is compacted once,
        oldest first, at most `limit` per call; returns how many were compacted."""

    @abc.abstractmethod
    async def purge_finished(self, finished_before_ms: int, limit: int = 1000) -> int:
        """Delete executions that became final before the given time; return how many."""
