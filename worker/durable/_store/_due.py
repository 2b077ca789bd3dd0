"""Taking due entries (timers, schedules) with one call per entry, as many pollers at once.

Each entry is taken by a script that declares that entry's keys and settles races itself (only one
caller sees it still due). Pollers that read the same first entries race for them; a poller that lost
some reads again, so that pollers together take as many as their limits allow, as one script over the
whole index did when it could build every key it touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["take_due"]

T = TypeVar("T")
R = TypeVar("R")

# Re-reads after lost races; each round either takes entries or finds fewer due than it asked for.
_ROUNDS = 8


async def take_due(
    read: Callable[[int], Awaitable[Sequence[T]]],
    take: Callable[[T], Awaitable[R | None]],
    limit: int,
) -> list[R]:
    """Up to `limit` results of `take` over the entries `read(n)` finds due (None: another caller won)."""
    taken: list[R] = []
    for _ in range(_ROUNDS):
        want = limit - len(taken)
        if want <= 0:
            break
        due = await read(want)
        won = [r for r in await asyncio.gather(*(take(entry) for entry in due)) if r is not None]
        taken.extend(won)
        if len(won) == len(due) or len(due) < want:
            break
    return taken
