"""Workflows for the crash soak (tests/soak.py).

Every step body records its side effects in a separate Redis (SOAK_EFFECTS_URL) that the soak never
faults: a run counter per execution + step, and a start and an end event per run with the worker's
pid and the wall-clock time. Results carry the run number, so the history says which run committed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from durable import WorkflowContext, workflow

_client: redis.Redis | None = None

RUNS = "soak:runs"  # hash "<eid>|<step>" -> body runs
BUSY = "soak:busy"  # hash pid -> bodies running right now (the soak prefers busy workers as victims)


def log_key(execution_id: str, step: str) -> str:
    return f"soak:log:{execution_id}|{step}"


def r() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["SOAK_EFFECTS_URL"])
    return _client


def _event(run: int, ev: str) -> bytes:
    return json.dumps({"run": run, "pid": os.getpid(), "ev": ev, "at": time.time()}).encode()


def body(execution_id: str, step: str, value: int, hold_ms: int, fail: bool = False) -> dict[str, int]:
    """One side effect: counted, timed, attributed to this worker process."""
    c = r()
    pid = os.getpid()
    # One transaction: the k-th start event in the log is run k, even if the worker dies right here.
    pipe = c.pipeline(transaction=True)
    pipe.hincrby(RUNS, f"{execution_id}|{step}", 1)
    pipe.rpush(log_key(execution_id, step), _event(0, "start"))
    pipe.hincrby(BUSY, str(pid), 1)
    run = int(pipe.execute()[0])
    try:
        time.sleep(hold_ms / 1000)
    finally:
        c.hincrby(BUSY, str(pid), -1)
    c.rpush(log_key(execution_id, step), _event(run, "end"))
    if fail:
        raise RuntimeError(f"no truck (run {run})")
    return {"v": value, "run": run}


def value_of(n: int, step: str) -> int:
    """What the body for `step` of execution number `n` returns (the checker recomputes it)."""
    return n * 10 + {"a": 1, "b": 2, "c": 3, "d": 4, "reserve": 5, "charge": 6, "ship": 7}[step]


def signal_payload(n: int) -> dict[str, int]:
    return {"k": n * 7 + 3}


@workflow("soak.flow")
async def flow(ctx: WorkflowContext, inp: dict[str, Any]) -> dict[str, Any]:
    """Two steps, a durable sleep, a step, a signal wait, a step."""
    eid, n, h = ctx.execution_id, int(inp["n"]), inp["holds"]
    a = await ctx.step("a", body, eid, "a", value_of(n, "a"), h[0])
    b = await ctx.step("b", body, eid, "b", value_of(n, "b"), h[1])
    await ctx.sleep(float(inp["sleep"]), step_id="nap")
    c = await ctx.step("c", body, eid, "c", value_of(n, "c"), h[2])
    go = await ctx.wait_for_signal("soak.go", step_id="go")
    d = await ctx.step("d", body, eid, "d", value_of(n, "d"), h[3])
    return {"n": n, "sum": a["v"] + b["v"] + c["v"] + d["v"] + int(go["k"])}


@workflow("soak.saga")
async def saga(ctx: WorkflowContext, inp: dict[str, Any]) -> dict[str, Any]:
    """reserve, charge, ship; compensations only when ship fails, which it does when input says so."""
    eid, n, h = ctx.execution_id, int(inp["n"]), inp["holds"]
    fail = inp.get("fail_at") == "ship"
    try:
        r1 = await ctx.step(
            "reserve",
            body,
            eid,
            "reserve",
            value_of(n, "reserve"),
            h[0],
            compensate=lambda: body(eid, "undo-reserve", -n, h[3]),
        )
        r2 = await ctx.step(
            "charge",
            body,
            eid,
            "charge",
            value_of(n, "charge"),
            h[1],
            compensate=lambda: body(eid, "undo-charge", -n, h[3]),
        )
        r3 = await ctx.step("ship", body, eid, "ship", value_of(n, "ship"), h[2], fail)
    except Exception:
        await ctx.rollback()
        return {"n": n, "status": "rolled back"}
    return {"n": n, "status": "shipped", "total": r1["v"] + r2["v"] + r3["v"]}
