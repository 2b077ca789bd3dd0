"""Workflows for the command-line tests: `durable worker --app cli_app` serves them from a subprocess."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from durable import Signal, workflow
from durable._workflow._context import WorkflowContext


class Greeting(BaseModel):
    name: str


class Approval(BaseModel):
    approved: bool


class Poke(BaseModel):
    n: int


APPROVED = Signal("cli.approved", Approval)
POKE = Signal("cli.poke", Poke)


@workflow("cli.greet", category="cli")
async def greet(ctx: WorkflowContext, who: Greeting) -> dict[str, Any]:
    text = await ctx.step("compose", lambda: f"hello {who.name}")
    return {"greeting": text}


@workflow("cli.approval")
async def approval(ctx: WorkflowContext, order: dict[str, Any]) -> dict[str, Any]:
    decision = await ctx.wait_for_signal(APPROVED, step_id="approval")
    await ctx.step("ship", lambda: "shipped")
    return {"order": order.get("id"), "approved": decision.approved}


@workflow("cli.poked")
async def poked(ctx: WorkflowContext, _input: Any) -> dict[str, Any]:
    poke = await ctx.wait_for_signal(POKE, step_id="poke")
    return {"n": poke.n}


def _needs_marker(path: str) -> str:
    if not os.path.exists(path):
        raise RuntimeError(f"marker {path} is missing")
    return "found"


@workflow("cli.flaky")
async def flaky(ctx: WorkflowContext, cfg: dict[str, Any]) -> dict[str, Any]:
    first = await ctx.step("first", lambda: 1)
    second = await ctx.step("second", _needs_marker, cfg["marker"])
    return {"first": first, "second": second}


@workflow("cli.sleepy")
async def sleepy(ctx: WorkflowContext, _input: Any) -> str:
    await ctx.sleep(3600, step_id="nap")
    return "rested"


@workflow("cli.tick")
async def tick(ctx: WorkflowContext, payload: Any) -> Any:
    return await ctx.step("echo", lambda: payload)


@workflow("cli.count")
async def count(ctx: WorkflowContext, n: int) -> int:
    return await ctx.step("double", lambda: n * 2)


@workflow("cli.limited", max_concurrency=1)
async def limited(ctx: WorkflowContext, order: dict[str, Any]) -> dict[str, Any]:
    decision = await ctx.wait_for_signal(APPROVED, step_id="approval")
    return {"order": order.get("id"), "approved": decision.approved}
