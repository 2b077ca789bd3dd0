"""In-process store for development and tests.

Same semantics as the Redis store (one conformance suite runs on both). Every method
body runs without an `await` between its reads and writes, which is what makes it
atomic on one event loop. Lease time-to-lives follow the monotonic-free wall clock in
milliseconds that callers pass or `time.time()`, like Redis' PX.

`MemoryStore` is one part per part of the storage contract (`_executions`, `_runs`,
`_signals`, `_controls`, `_queue`, `_timers`, `_status`, `_retention`, `_schedules`), all over
one `MemoryState` (`_state`), which also holds the plumbing they share (enqueueing, audit,
status events, finalizing).
"""

from __future__ import annotations

from typing import Any

from .._base import Store
from ._concurrency import MemoryConcurrency
from ._controls import MemoryControls
from ._executions import MemoryExecutions
from ._queue import MemoryQueue
from ._retention import MemoryRetention
from ._runs import MemoryRuns
from ._schedules import MemorySchedules
from ._signals import MemorySignals
from ._state import MemoryState
from ._status import MemoryStatusFeed
from ._timers import MemoryTimers
from ._versions import MemoryVersions

__all__ = ["MemoryStore"]


class MemoryStore(
    MemoryExecutions,
    MemoryRuns,
    MemorySignals,
    MemoryControls,
    MemoryQueue,
    MemoryTimers,
    MemoryStatusFeed,
    MemoryRetention,
    MemorySchedules,
    MemoryVersions,
    MemoryConcurrency,
    Store,
):
    """All state in one process. Not shared between processes; lost on exit."""

    url_schemes = ("memory",)

    @classmethod
    def open_url(cls, url: str, **options: Any) -> MemoryStore:
        return cls()

    def __init__(self) -> None:
        super().__init__(MemoryState())
