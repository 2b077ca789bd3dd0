"""Capped exponential back-off for loops that retry while the store is unreachable."""

from __future__ import annotations

import asyncio


class Backoff:
    """Delays that double from `first` up to `cap`; `reset()` after a success starts again at `first`.

    One object per retrying loop, so every loop backs off the same way and says so in one place.
    """

    __slots__ = ("_delay", "cap", "first")

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        if first <= 0 or cap < first:
            raise ValueError(f"back-off needs 0 < first <= cap, got first={first}, cap={cap}")
        self.first = first
        self.cap = cap
        self._delay = first

    @property
    def delay(self) -> float:
        """The wait the next `sleep()` takes."""
        return self._delay

    def delay_after(self, failures: int) -> float:
        """The wait `sleep()` takes after `failures` sleeps since a reset; nothing sleeps, nothing changes.

        For retries that something else schedules and counts (kopf retries a handler and says how often).
        """
        delay = self.first
        for _ in range(failures):
            if delay >= self.cap:
                break
            delay = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._delay = self.first

    async def sleep(self) -> None:
        """Wait the current delay, then double it (up to the cap)."""
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, self.cap)
