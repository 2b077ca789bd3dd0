"""Timers on Redis: one sorted set (member `<execution>|<timer>`, score the due time in ms); each due
timer is fired by a script of its execution that moves it to the queue only if it takes it from the
set, so a timer fires once whatever the number of pollers."""

from __future__ import annotations

import asyncio
from typing import Any

from ..._records import ExecutionId
from .._base import Timers
from .._data import step_of_timer
from .._due import take_due
from .._keys import Keys
from ._connection import Declared, RedisConnection, RedisPart
from ._decode import text
from ._encode import timer_member

__all__ = ["RedisTimers"]


class RedisTimers(RedisPart, Timers):
    def __init__(self, redis: RedisConnection, keys: Keys) -> None:
        super().__init__(redis, keys)
        # The notifier's timer count when the poller last looked for the next due timer.
        self._timer_gen_seen = 0
        # (timer count before the read, earliest due or None) from the last read of `fire_due_timers`
        # that found nothing due: `next_timer_due` answers from it while no timer changed since,
        # saving the poller a round trip per idle pass (each timer added wakes every poller).
        self._next_due_hint: tuple[int, int | None] | None = None

    async def add_timer(self, execution_id: ExecutionId, timer_id: str, due_ms: int) -> None:
        member = timer_member(execution_id, timer_id)
        await self._redis.script("add_timer", [self.keys.timers()], [member, due_ms])

    async def fire_due_timers(self, now_ms: int, limit: int = 500) -> int:
        notifier = self._redis.notifier
        self._next_due_hint = None

        async def due(n: int) -> list[str]:
            # The first n + 1 timers whatever their time: the one past the due ones tells the next due
            # time without another read when none is due.
            gen = notifier.timer_gen if notifier is not None else None
            found = await self._redis.call(
                "ZRANGEBYSCORE", self.keys.timers(), "-inf", "+inf", "WITHSCORES", "LIMIT", 0, n + 1
            )
            members: list[str] = []
            for i in range(0, len(found), 2):
                score = int(float(found[i + 1]))
                if score > now_ms or len(members) >= n:
                    break
                members.append(text(found[i]))
            if gen is not None and not members:
                self._next_due_hint = (gen, int(float(found[1])) if found else None)
            else:
                self._next_due_hint = None
            return members

        async def fire(member: str) -> bool | None:
            eid = member.rpartition("|")[0] or member
            # A running step's time-out (`put_running_step`) has its own script.
            step_id = step_of_timer(member.rpartition("|")[2])
            script = "fire_timer" if step_id is None else "fire_step_timer"
            extra = [] if step_id is None else [step_id]

            def call(version: str, _: Declared) -> tuple[list[str], list[Any]]:
                return self.keys.execution_keys(eid, version), [eid, now_ms, member, *extra]

            fired = await self._redis.script_on_queue(script, eid, eid, self.keys.version, call)
            return True if fired else None

        return len(await take_due(due, fire, limit))

    async def next_timer_due(self) -> int | None:
        hint, self._next_due_hint = self._next_due_hint, None
        notifier = self._redis.notifier
        if hint is not None and notifier is not None and notifier.timer_gen == hint[0]:
            # No timer added or moved since the read that found none due: its first timer is the next.
            self._timer_gen_seen = hint[0]
            return hint[1]
        if self._redis.notifier is not None:
            self._timer_gen_seen = self._redis.notifier.timer_gen
        first = await self._redis.call("ZRANGE", self.keys.timers(), 0, 0, "WITHSCORES")
        return int(float(first[1])) if first else None

    async def due_timer_count(self, now_ms: int) -> int:
        return int(await self._redis.call("ZCOUNT", self.keys.timers(), "-inf", now_ms))

    async def wait_timer_change(self, timeout_s: float) -> None:
        notifier = await self._redis.notifications(self.keys.timers_changed())
        if notifier.timer_gen != self._timer_gen_seen:
            self._timer_gen_seen = notifier.timer_gen
            return  # a timer changed since the poller last looked: no sleeping on a stale answer
        fut = notifier.watch_timers()
        try:
            await asyncio.wait([fut], timeout=max(timeout_s, 0.0))
        finally:
            notifier.unwatch_timers(fut)
