"""Pub/sub wake-ups of one store: finished executions and changed timers.

Done messages resolve `wait_finished` futures, timer-change messages resolve `wait_timer_change`
futures. Each channel is subscribed on first use: a worker that never waits for results does not
get a message for every finished execution. The connection reconnects on its own; waiters poll as
a fallback, and every reconnect wakes the timer waiters (a message may have been missed).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ._settings import RedisSettings
from ._subscriber import Subscriber

__all__ = ["Notifier"]


class Notifier:
    def __init__(self, settings: RedisSettings, done_channel: str, timers_channel: str) -> None:
        self._done_channel = done_channel.encode()
        self._timers_channel = timers_channel.encode()
        # Done futures resolve to the final record as published (JSON), or None (read it instead).
        self._done: dict[str, set[asyncio.Future[bytes | None]]] = {}
        self._timers: set[asyncio.Future[None]] = set()
        self._sub = Subscriber(settings, self._on_message, self._wake_timers)
        # Counts timer-change messages (and resets): a poller that saw another count before it
        # looked for the next due timer must look again instead of sleeping.
        self.timer_gen = 0

    async def start(self, channel: str, wait_s: float = 2.0) -> None:
        """Subscribe `channel` (once), waiting up to `wait_s` for the server to confirm it."""
        self._sub.add(channel.encode())
        if not self._sub.ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sub.ready.wait(), wait_s)

    async def close(self) -> None:
        await self._sub.close()
        waiting: list[asyncio.Future[Any]] = [f for futures in self._done.values() for f in futures]
        for fut in [*waiting, *self._timers]:
            if not fut.done():
                fut.cancel()

    def watch_done(self, execution_id: str) -> asyncio.Future[bytes | None]:
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._done.setdefault(execution_id, set()).add(fut)
        return fut

    def unwatch_done(self, execution_id: str, fut: asyncio.Future[bytes | None]) -> None:
        futures = self._done.get(execution_id)
        if futures is not None:
            futures.discard(fut)
            if not futures:
                del self._done[execution_id]

    def watch_timers(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timers.add(fut)
        return fut

    def unwatch_timers(self, fut: asyncio.Future[None]) -> None:
        self._timers.discard(fut)

    def _wake_timers(self) -> None:
        self.timer_gen += 1
        for fut in self._timers:
            if not fut.done():
                fut.set_result(None)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self._done_channel:
            head, _, record = data.partition(b"\n")
            for fut in self._done.get(head.decode(), ()):
                if not fut.done():
                    fut.set_result(record or None)
        elif channel == self._timers_channel:
            self._wake_timers()
