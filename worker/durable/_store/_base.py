"""The storage contract every store meets.

Each method is one atomic operation (one Lua script on Redis, one uninterrupted
section on the in-memory store). Worker writes carry the fencing token from
`acquire`: a token that is no longer the execution's newest makes the write raise
`LeaseLost` and change nothing. Values the engine stores (inputs, results,
step records, payloads) arrive already encoded as JSON bytes and come back the
same; the store reads only the few fields it needs to decide.

Each consumer takes the narrow part it uses: the parts that act on one execution (`Executions`,
`Runs`, `Signals`, `Controls`, in `_per_execution`) and those that span executions (`ReadyQueue`,
`Timers`, `StatusFeed`, `Retention`, in `_cross_execution`); the status mirror a `StatusFeed`, an
activation its `Runs`, a worker a `WorkerStore`. `Store` is all of them, and schedules are their own
part (`ScheduleStore`). Both stores pass one conformance suite (tests/stores/test_store_conformance.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._concurrency import Concurrency
from ._cross_execution import ReadyQueue, Retention, StatusFeed, Timers
from ._data import (
    CHECKED_BY_MODEL,
    Acquired,
    AuditDraft,
    Checkpoint,
    ExecutionQuery,
    IdReuse,
    NewExecution,
    SchemaCheckNeeded,
    SignalWait,
    SuspendOutcome,
    conflict_error,
    schema_digest,
)
from ._per_execution import Controls, Executions, Runs, Signals
from ._versions import Versions

__all__ = [
    "CHECKED_BY_MODEL",
    "Acquired",
    "AuditDraft",
    "Checkpoint",
    "Concurrency",
    "Controls",
    "ExecutionQuery",
    "Executions",
    "IdReuse",
    "NewExecution",
    "ReadyQueue",
    "Retention",
    "Runs",
    "SchemaCheckNeeded",
    "SignalWait",
    "Signals",
    "StatusFeed",
    "Store",
    "SuspendOutcome",
    "Timers",
    "Versions",
    "WorkerStore",
    "conflict_error",
    "schema_digest",
]


class WorkerStore(Executions, Runs, Signals, Controls, ReadyQueue, Timers, Retention, Versions, Concurrency):
    """What a worker uses: every part but the status feed (its schedule poller starts and cancels
    executions, so it needs the client's parts too)."""


# URL scheme → the store class that opens it; each store registers itself (`url_schemes`), so the
# contract does not import its own implementations.
_STORES_BY_SCHEME: dict[str, type[Store]] = {}


class Store(WorkerStore, StatusFeed):
    """Where executions live: every part above over one connection. Use `Store.from_url` or a concrete class.

    Consumers take the narrowest part they use (the status mirror a `StatusFeed`, say); a store is all of them.
    """

    # The URL schemes a concrete store opens through `Store.from_url` (see `open_url`).
    url_schemes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for scheme in cls.__dict__.get("url_schemes", ()):
            _STORES_BY_SCHEME[scheme] = cls

    @staticmethod
    def from_url(url: str, **options: Any) -> Store:
        """`memory://` for the in-memory store, `redis://`/`rediss://`/`unix://` for Redis."""
        scheme = url.split(":", 1)[0].lower()
        cls = _STORES_BY_SCHEME.get(scheme)
        if cls is None:
            raise ValueError(
                f"unsupported store URL scheme {scheme!r}: use memory://, redis://, rediss:// or unix://"
            )
        return cls.open_url(url, **options)

    @classmethod
    def open_url(cls, url: str, **options: Any) -> Store:
        """Open this store from a URL of one of its `url_schemes` (what `Store.from_url` calls)."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL")

    async def close(self) -> None:
        """Release connections; the store may not be used afterwards."""

    async def ping(self) -> None:
        """Raise `StoreUnavailable` if the store cannot be reached."""
