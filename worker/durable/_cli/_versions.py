"""`durable versions list|promote` and `durable migrate`: worker versions and moving executions between them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from .._client._durable import Durable
from .._client._histories import history_of, load_histories
from .._errors import ExecutionFinished, ExecutionNotFound
from .._records import FINAL_STATUSES, Status
from .._store._keys import check_version
from .._worker._replayer import ExecutionHistory, ReplayCheckResult, check_replay
from . import _output as out
from ._app import CliError, Settings, _run, app, versions_app


def _version_arg(value: str, what: str) -> str:
    try:
        return check_version(value)
    except ValueError as exc:
        raise CliError(f"{what}: {exc}", 2) from exc


@versions_app.command("list")
def versions_list(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only this workflow id.")] = None,
) -> None:
    """The current version of each workflow and the executions each version still runs."""

    async def go(d: Durable) -> dict[str, Any]:
        current = await d.versions.all_current()
        workflows = [workflow] if workflow else sorted(current)
        loads = {wf: await d.versions.load(wf) for wf in workflows}
        return {"current": current, "known": sorted(await d.versions.known()), "loads": loads}

    found = _run(ctx, go)
    rows: list[dict[str, Any]] = []
    for wf, load in found["loads"].items():
        cur = found["current"].get(wf, "")
        for version in sorted(set(load) | {cur}):
            n = load.get(version)
            rows.append(
                {
                    "workflow_id": wf,
                    "version": version,
                    "state": "current" if version == cur else "draining",
                    "in_flight": n.in_flight if n else 0,
                    "runnable": n.runnable if n else 0,
                }
            )
    if ctx.obj.json:
        out.print_json({"current": found["current"], "known": found["known"], "versions": rows})
        return
    out.versions_table(rows)
    if not rows:
        out.message("no workflow has a current version: every execution runs on unversioned workers")


@versions_app.command("promote")
def versions_promote(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    version: Annotated[str, typer.Argument(help='The version new executions go to ("" for unversioned).')],
) -> None:
    """Send new executions of WORKFLOW to VERSION's workers (those in flight stay where they are)."""
    version = _version_arg(version, "VERSION")
    if not workflow.strip():
        raise CliError("WORKFLOW must not be empty", 2)

    async def go(d: Durable) -> tuple[str | None, bool]:
        before = await d.versions.current(workflow)
        return before, await d.versions.promote(workflow, version, actor=ctx.obj.actor)

    before, changed = _run(ctx, go)
    if ctx.obj.json:
        out.print_json(
            {"workflow_id": workflow, "current": version, "previous": before or "", "changed": changed}
        )
    elif changed:
        out.message(
            f"workflow {workflow}: new executions go to {out.version_text(version)} (was {out.version_text(before or '')})"
        )
    else:
        out.message(f"workflow {workflow}: {out.version_text(version)} already is current")


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    execution: Annotated[str | None, typer.Argument(help="One execution id (or use --workflow).")] = None,
    to: Annotated[
        str | None, typer.Option("--to", help='The version to move to ("" for unversioned).')
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Every in-flight execution of this workflow id.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="With --workflow: only those on this version.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many executions.")] = 1000,
    skip_check: Annotated[
        bool, typer.Option("--skip-check", help="Move without replaying on the --app code first.")
    ] = False,
) -> None:
    """Move in-flight executions to another worker version, after checking they replay on its code
    (--app); if any would not, nothing moves and the exit status is 1."""
    settings: Settings = ctx.obj
    if to is None:
        raise CliError("--to VERSION is required", 2)
    target = _version_arg(to, "--to")
    if (execution is None) == (workflow is None):
        raise CliError("give one EXECUTION or --workflow (not both)", 2)
    if from_ is not None and workflow is None:
        raise CliError("--from needs --workflow", 2)
    source = None if from_ is None else _version_arg(from_, "--from")
    if not skip_check:
        settings.load_apps(required=True)

    async def histories(d: Durable) -> list[ExecutionHistory]:
        if execution is not None:
            found = [await history_of(d, execution)]
        else:
            found = await load_histories(
                d, workflow_id=workflow, version=source, limit=limit, finished_within_s=0
            )
        return [h for h in found if Status(h.status) not in FINAL_STATUSES and (h.version or "") != target]

    try:
        moving = _run(ctx, histories)
    except ExecutionNotFound as exc:
        raise CliError(exc.message) from exc
    if execution is not None and not moving:
        raise CliError(
            f"execution {execution!r} is finished or already on {out.version_text(target)}: nothing to move"
        )
    if not skip_check:

        async def check_all() -> list[ReplayCheckResult]:
            return [await check_replay(h) for h in moving]

        failed = [r for r in asyncio.run(check_all()) if not r.ok]
        if failed:
            out.replay_table(failed)
            raise CliError(
                f"{len(failed)} of {len(moving)} executions would not replay on the --app code: "
                "nothing moved (fix the code, or --skip-check)"
            )

    async def move(d: Durable) -> list[str]:
        moved = []
        for h in moving:
            try:
                if await d.versions.migrate(h.execution_id, target, actor=settings.actor):
                    moved.append(h.execution_id)
            except (ExecutionNotFound, ExecutionFinished):
                continue  # purged or finished meanwhile: nothing to move
        return moved

    moved = _run(ctx, move)
    if settings.json:
        out.print_json({"to": target, "moved": moved, "checked": not skip_check})
    else:
        out.message(f"moved {len(moved)} execution(s) to {out.version_text(target)}")
