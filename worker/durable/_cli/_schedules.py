"""`durable schedules ...`: list, get, pause, resume, trigger, remove."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .._client._durable import Durable
from . import _output as out
from ._app import _run, schedules_app


@schedules_app.command("list")
def schedules_list(ctx: typer.Context) -> None:
    """Every schedule with its next and last run."""

    async def go(d: Durable) -> Any:
        return await d.schedules.list()

    infos = _run(ctx, go)
    if ctx.obj.json:
        out.print_json([i.to_dict() for i in infos])
    else:
        out.schedules_table(infos)


@schedules_app.command("get")
def schedules_get(ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]) -> None:
    """One schedule's definition, status and history."""

    async def go(d: Durable) -> Any:
        return await d.schedules.get(schedule), await d.schedules.audit(schedule)

    info, audit = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({**info.to_dict(), "history": [a.to_dict() for a in audit]})
    else:
        out.schedule_detail(info, audit)


def _schedule_action(ctx: typer.Context, schedule: str, action: str) -> None:
    async def go(d: Durable) -> Any:
        if action == "pause":
            return await d.schedules.pause(schedule)
        if action == "resume":
            return await d.schedules.resume(schedule)
        await d.schedules.remove(schedule)
        return None

    info = _run(ctx, go)
    if ctx.obj.json:
        out.print_json(info.to_dict() if info is not None else {"schedule_id": schedule, "removed": True})
    elif action == "remove":
        out.message(f"removed schedule {schedule}")
    else:
        nxt = "" if info.next_run_at is None else f"; next run {out.when(info.next_run_at)}"
        out.message(f"{'paused' if info.paused else 'resumed'} schedule {schedule}{nxt}")


@schedules_app.command("pause")
def schedules_pause(
    ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]
) -> None:
    """Stop firing (runs already started go on)."""
    _schedule_action(ctx, schedule, "pause")


@schedules_app.command("resume")
def schedules_resume(
    ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]
) -> None:
    """Fire again from the next slot (slots missed while paused do not run)."""
    _schedule_action(ctx, schedule, "resume")


@schedules_app.command("trigger")
def schedules_trigger(
    ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]
) -> None:
    """Start one run now, outside the slots (the overlap policy is not applied)."""

    async def go(d: Durable) -> str:
        return await d.schedules.trigger(schedule)

    execution_id = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"schedule_id": schedule, "execution_id": execution_id})
    else:
        out.message(f"triggered schedule {schedule}: started {execution_id}")


@schedules_app.command("remove")
def schedules_remove(
    ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]
) -> None:
    """Delete a schedule (runs already started go on)."""
    _schedule_action(ctx, schedule, "remove")
