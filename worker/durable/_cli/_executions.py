"""Commands on executions: start, signal, get, list, describe, cancel, fail, retry, skip-step."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .._client._durable import Durable
from .._errors import WorkflowNotFound
from .._records import Status
from .._store._base import IdReuse
from .._workflow._definitions import registered_workflows
from .._workflow._timeouts import check_timeout
from . import _output as out
from ._app import CliError, IdReusePolicy, Settings, ShapeFormat, _json_arg, _run, _when, app


@app.command()
def start(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="Input as JSON, or @file.")] = None,
    execution_id: Annotated[str | None, typer.Option("--id", help="Execution id (idempotent).")] = None,
    id_reuse: Annotated[
        IdReusePolicy,
        typer.Option(
            "--id-reuse",
            help="An existing --id with another workflow or input: reject, or allow_if_finished "
            "(a finished execution is replaced by a fresh run).",
        ),
    ] = IdReusePolicy.REJECT,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Execution time-out in seconds: the execution fails past it."),
    ] = None,
) -> None:
    """Start an execution; prints its id."""
    value = _json_arg(input, "--input")
    policy: IdReuse = "allow_if_finished" if id_reuse == IdReusePolicy.ALLOW_IF_FINISHED else "reject"
    try:
        check_timeout("--timeout", timeout)
    except ValueError as exc:  # nothing is written
        raise CliError(str(exc), 2) from exc

    async def go(d: Durable) -> str:
        return await d.start(workflow, value, execution_id=execution_id, id_reuse=policy, timeout=timeout)

    eid = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"execution_id": eid, "workflow_id": workflow})
    else:
        out.message(eid)


@app.command()
def signal(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Execution id.")],
    name: Annotated[str, typer.Argument(metavar="SIGNAL", help="Signal name.")],
    payload: Annotated[str | None, typer.Option("--payload", "-p", help="Payload as JSON, or @file.")] = None,
    delivery_id: Annotated[str | None, typer.Option(help="Deduplication id (a repeat is ignored).")] = None,
) -> None:
    """Send a signal to an execution.

    The payload is checked before anything is delivered: by the signal's model if --app imports
    it, else by the JSON Schema the waiting execution (or a worker) recorded for the signal. A
    payload that fails exits non-zero and nothing is buffered. One that gets through anyway is
    rejected when consumed (audit signal.rejected) and the execution keeps waiting.
    """
    value = _json_arg(payload, "--payload")

    async def go(d: Durable) -> bool:
        return await d.signal(execution, name, value, delivery_id=delivery_id)

    accepted = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"execution_id": execution, "signal": name, "accepted": accepted})
    else:
        out.message(
            f"signal {name} {'delivered to' if accepted else 'already delivered (duplicate) to'} {execution}"
        )


@app.command()
def get(ctx: typer.Context, execution: Annotated[str, typer.Argument(help="Execution id.")]) -> None:
    """Show an execution: status, steps and audit timeline."""

    async def go(d: Durable) -> Any:
        if ctx.obj.json:
            return await d.get_execution_detail(execution)
        record = await d._require(execution)
        return record, await d.list_step_results(execution), await d.list_audit_entries(execution)

    result = _run(ctx, go)
    if ctx.obj.json:
        out.print_json(result)
    else:
        out.execution_detail(*result)


@app.command("list")
def list_(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only this workflow id.")] = None,
    status: Annotated[
        list[Status] | None, typer.Option("--status", "-s", help="Only these statuses.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The cursor a previous page printed.")] = None,
) -> None:
    """List executions, newest first."""
    after, before = _when(since, "--since"), _when(until, "--until")

    async def go(d: Durable) -> Any:
        return await d.list_executions_page(
            workflow, status or None, created_after=after, created_before=before, limit=limit, cursor=cursor
        )

    page, next_cursor = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"executions": [r.to_dict() for r in page], "next_cursor": next_cursor})
    else:
        out.executions_table(page, next_cursor)


@app.command()
def describe(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    format: Annotated[
        ShapeFormat, typer.Option("--format", "-f", help="text, mermaid or json.")
    ] = ShapeFormat.TEXT,
    input: Annotated[str | None, typer.Option("--input", "-i", help="Sample input (JSON or @file).")] = None,
) -> None:
    """Show a workflow's flow shape (steps, waits, branches) without running it."""
    settings: Settings = ctx.obj
    value = _json_arg(input, "--input")
    settings.load_apps()
    d = Durable(store="memory://", workflows=registered_workflows())
    try:
        shape = d.describe(workflow, value)
    except WorkflowNotFound as exc:
        hint = "" if settings.apps else "; pass --app MODULE (or set DURABLE_APP) so workflow ids resolve"
        raise CliError(exc.message + hint) from exc
    if format == ShapeFormat.JSON or (settings.json and format == ShapeFormat.TEXT):
        out.print_json(shape.to_dict())
    elif format == ShapeFormat.MERMAID:
        sys.stdout.write(shape.to_mermaid() + "\n")
    else:
        sys.stdout.write(shape.to_text() + "\n")


@app.command()
def cancel(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Execution id.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit).")] = "cancelled from the command line",
) -> None:
    """Cancel an execution (a running one stops at its next checkpoint)."""

    async def go(d: Durable) -> Status:
        return await d.cancel(execution, reason)

    status = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"execution_id": execution, "status": status.value})
    elif status == Status.CANCELLED:
        out.message(f"cancelled {execution}")
    else:
        out.message(f"cancel requested: {execution} is {status.value} and stops at its next checkpoint")


@app.command()
def fail(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Execution id.")],
    reason: Annotated[
        str, typer.Option(help="Why (required; kept as the execution's error and in the audit).")
    ],
) -> None:
    """Mark a stuck execution failed (a running one fails at its next checkpoint); no compensation runs.

    A forced failure can be retried like any other (durable retry)."""
    if not reason.strip():
        raise CliError("--reason must not be empty")

    async def go(d: Durable) -> Status:
        return await d.force_fail(execution, reason)

    status = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"execution_id": execution, "status": status.value})
    elif status == Status.FAILED:
        out.message(f"failed {execution}")
    else:
        out.message(f"failure requested: {execution} is {status.value} and fails at its next checkpoint")


@app.command()
def retry(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Execution id.")],
    discard_signal: Annotated[
        bool,
        typer.Option(
            "--discard-signal",
            help="Also drop the signal the failed step consumed, so that the wait waits again "
            "(for the next buffered or a new signal, or skip-step).",
        ),
    ] = False,
) -> None:
    """Re-run a failed execution from its failed step (completed steps are kept)."""

    async def go(d: Durable) -> None:
        await d.retry(execution, discard_signal=discard_signal)

    _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"execution_id": execution, "status": Status.PENDING.value})
    else:
        out.message(f"retrying {execution}")


@app.command("skip-step")
def skip_step(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(help="Execution id.")],
    step: Annotated[str, typer.Argument(help="Step id.")],
    result: Annotated[
        str,
        typer.Option(
            "--result",
            "-r",
            help="The step's result as JSON, or @file; for a signal wait, the signal's payload "
            "(validated like `durable signal`).",
        ),
    ] = "null",
) -> None:
    """Store a result for a stuck step (retrying, sleeping or waiting for a signal) and wake the execution."""
    value = _json_arg(result, "--result")

    async def go(d: Durable) -> None:
        await d.skip_step(execution, step, value)

    _run(ctx, go)
    if ctx.obj.json:
        out.print_json({"execution_id": execution, "step_id": step, "result": value})
    else:
        out.message(f"step {step} of {execution} skipped with result {out.short(value)}")
