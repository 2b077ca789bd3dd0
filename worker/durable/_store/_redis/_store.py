"""`RedisStore`: every part of the store contract, each in its own module, over one shared connection."""

from __future__ import annotations

import warnings
from typing import Any

from .._base import Store
from .._keys import Keys
from ._concurrency import RedisConcurrency
from ._connection import RedisConnection
from ._controls import RedisControls
from ._executions import RedisExecutions
from ._queue import RedisQueue
from ._retention import RedisRetention
from ._runs import RedisRuns
from ._schedules import RedisSchedules
from ._settings import RedisSettings, settings_from_client
from ._signals import RedisSignals
from ._status import RedisStatusFeed
from ._timers import RedisTimers
from ._versions import RedisVersions

__all__ = ["RedisStore"]


class RedisStore(
    RedisExecutions,
    RedisRuns,
    RedisSignals,
    RedisControls,
    RedisQueue,
    RedisTimers,
    RedisStatusFeed,
    RedisRetention,
    RedisSchedules,
    RedisVersions,
    RedisConcurrency,
    Store,
):
    """Executions in Redis. Open one with `RedisStore.from_url(url)` (or `Store.from_url`); `settings`
    may also be a `RedisSettings` or a URL. Each operation has a deadline of `op_timeout_s` (None:
    none), after which it fails with `StoreUnavailable`."""

    url_schemes = ("redis", "rediss", "unix")

    def __init__(
        self, settings: RedisSettings | str, *, prefix: str = "dw", op_timeout_s: float | None = 10.0
    ) -> None:
        if isinstance(settings, str):
            settings = RedisSettings.from_url(settings)
        elif not isinstance(settings, RedisSettings):
            warnings.warn(
                "RedisStore(<redis-py client>) is deprecated: use RedisStore.from_url(url)",
                DeprecationWarning,
                stacklevel=2,
            )
            settings = settings_from_client(settings)
        keys = Keys(prefix)
        super().__init__(RedisConnection(settings, keys, op_timeout_s=op_timeout_s), keys)
        self.settings = settings
        self._op_timeout = op_timeout_s

    @classmethod
    def open_url(cls, url: str, **options: Any) -> RedisStore:
        return cls.from_url(url, **options)

    @classmethod
    def from_url(  # type: ignore[override]
        cls, url: str, *, prefix: str = "dw", op_timeout_s: float | None = 10.0, **options: Any
    ) -> RedisStore:
        """`options`: those of the URL's query (`socket_connect_timeout`, `ssl_ca_certs`, ...), see
        `RedisSettings`; a bad URL or option raises `ValueError`."""
        return cls(RedisSettings.from_url(url, **options), prefix=prefix, op_timeout_s=op_timeout_s)

    async def close(self) -> None:
        await self._redis.close()

    async def ping(self) -> None:
        await self._redis.call("PING")
