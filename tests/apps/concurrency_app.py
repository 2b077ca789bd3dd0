"""Workflows for the concurrency-limit fault tests: step bodies record in Redis (CONC_REDIS_URL) which
executions are inside their limited section, and the largest number seen inside at once."""

from __future__ import annotations

import os
import time

import redis

from durable import WorkflowContext, workflow

_client: redis.Redis | None = None

# Adds an execution to the inside set (and to the list of entries, in order) and raises the high-water mark; a step re-run after a crash adds
# the same member again, so it does not count twice.
_ENTER = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[3], ARGV[1])
end
local n = redis.call('SCARD', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], n)
end
return n
"""


def r() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CONC_REDIS_URL"])
    return _client


def enter(execution_id: str) -> int:
    return int(r().eval(_ENTER, 3, "conc:inside", "conc:max", "conc:entered", execution_id))  # type: ignore[no-untyped-call]


def leave(execution_id: str) -> None:
    r().srem("conc:inside", execution_id)


def work(execution_id: str, hold: float) -> None:
    """Holds the first run `hold` seconds after marking it started (a test kills the worker then)."""
    if r().incr(f"conc:runs:{execution_id}") == 1:
        r().set(f"conc:started:{execution_id}", "1")
        time.sleep(hold)


@workflow("conc.two", max_concurrency=2)
async def two(ctx: WorkflowContext, hold: float) -> str:
    eid = ctx.execution_id
    await ctx.step("enter", enter, eid)
    await ctx.sleep(0.05)  # a sleeping execution keeps its slot
    await ctx.step("work", work, eid, hold)
    await ctx.step("leave", leave, eid)
    return eid


@workflow("conc.one", max_concurrency=1)
async def one(ctx: WorkflowContext, hold: float) -> str:
    eid = ctx.execution_id
    await ctx.step("enter", enter, eid)
    await ctx.step("work", work, eid, hold)
    await ctx.step("leave", leave, eid)
    return eid
