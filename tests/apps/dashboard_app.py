"""Workflows the dashboard tests serve: one that waits for a signal, one that fails, one that sleeps."""

from __future__ import annotations

from typing import Any

from durable import RetryPolicy, workflow

GO = "dash.go"


def _hello(value: Any) -> dict[str, Any]:
    return {"hello": value}


def _finish(payload: Any) -> str:
    return f"done with {payload}"


@workflow("dash.greet", category="tests")
async def greet(ctx: Any, value: Any) -> dict[str, Any]:
    """A step, a signal wait, a step: the page shows it waiting, a signal from the page finishes it."""
    hello = await ctx.step("hello", _hello, value)
    payload = await ctx.wait_for_signal(GO, step_id="wait-go")
    finished = await ctx.step("finish", _finish, payload)
    return {"hello": hello, "finished": finished}


def _explode(value: Any) -> None:
    raise ValueError(f"cannot take {value!r}")


@workflow("dash.fail")
async def fail(ctx: Any, value: Any) -> None:
    await ctx.step("prepare", _hello, value)
    await ctx.step("explode", _explode, value, retry=RetryPolicy(max_attempts=1))


@workflow("dash.sleepy")
async def sleepy(ctx: Any, value: Any) -> str:
    await ctx.sleep(3600, step_id="nap")
    return "rested"


WORKFLOWS = [greet, fail, sleepy]


@workflow("dash.flaky")
async def flaky(ctx: Any, value: Any) -> None:
    """Fails once and waits an hour for its next attempt: the page shows the retry due."""
    await ctx.step(
        "call-api",
        _explode,
        value,
        retry=RetryPolicy(max_attempts=3, initial_interval=3600, max_interval=3600),
    )


WORKFLOWS.append(flaky)
