"""The `durable` command: run a worker, start and signal executions, operate on them and on schedules.

Every command talks to Redis (`--redis-url`, env `DURABLE_REDIS_URL`). Commands that name a
workflow need its module imported (`--app`, env `DURABLE_APP`) so the id resolves and the
input is validated. Output is a rich table by default and JSON with `-o json`. Bad input
ends with a non-zero exit status and one line on stderr: `error: <what was wrong>`.
The global options may be given before or after the command name.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import logging
import os
import signal as signals
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import typer

from .._client._durable import Durable
from .._errors import DurableError, StoreUnavailable, WorkflowNotFound
from .._metrics import serve_metrics
from .._records import Status
from .._store._base import IdReuse
from .._workflow._definitions import registered_workflows
from . import _output as out

T = TypeVar("T")

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


class IdReusePolicy(enum.StrEnum):
    REJECT = "reject"
    ALLOW_IF_FINISHED = "allow_if_finished"


class ShapeFormat(enum.StrEnum):
    TEXT = "text"
    MERMAID = "mermaid"
    JSON = "json"


@dataclass
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    apps: list[str] = field(default_factory=list)
    output: Output = Output.TABLE
    actor: str | None = None
    _loaded: bool = False

    @property
    def json(self) -> bool:
        return self.output == Output.JSON

    def load_apps(self, *, required: bool = False) -> None:
        if self._loaded:
            return
        self._loaded = True
        if required and not self.apps:
            raise CliError("no workflows to serve: pass --app MODULE (or set DURABLE_APP)", 2)
        # A console script does not have the working directory on sys.path; `python -m` does.
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        for name in self.apps:
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise CliError(f"cannot import app module {name!r}: {type(exc).__name__}: {exc}", 2) from exc

    def durable(self, *, op_timeout_s: float | None = None) -> Durable:
        from .._store._redis import RedisStore

        self.load_apps()
        options: dict[str, Any] = {} if op_timeout_s is None else {"op_timeout_s": op_timeout_s}
        try:
            store = RedisStore.from_url(self.redis_url, **options)
        except ValueError as exc:
            raise CliError(f"invalid --redis-url {self.redis_url!r}: {exc}", 2) from exc
        return Durable(store=store, workflows=registered_workflows(), actor=self.actor)


def _safe_url(url: str) -> str:
    """The URL without its password."""
    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url


def _run(ctx: typer.Context, fn: Callable[[Durable], Awaitable[T]]) -> T:
    settings: Settings = ctx.obj

    async def go() -> T:
        d = settings.durable()
        try:
            return await fn(d)
        except StoreUnavailable as exc:
            raise CliError(f"cannot reach Redis at {_safe_url(settings.redis_url)}: {exc.message}") from exc
        except WorkflowNotFound as exc:
            hint = "" if settings.apps else "; pass --app MODULE (or set DURABLE_APP) so workflow ids resolve"
            raise CliError(exc.message + hint) from exc
        finally:
            with contextlib.suppress(Exception):
                await d.close()

    return asyncio.run(go())


def _json_arg(value: str | None, what: str) -> Any:
    """A JSON value given inline, as `@file`, or as `@-` (stdin)."""
    if value is None:
        return None
    text: str | bytes = value
    if value.startswith("@"):
        path = value[1:]
        try:
            text = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {what} file {path!r}: {exc.strerror or exc}", 2) from exc
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}", 2) from exc


def _when(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise CliError(
            f"{what} must be an ISO 8601 time such as 2024-05-01T10:00:00Z, got {value!r}", 2
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- the app

app = typer.Typer(
    name="durable",
    help="Durable workflows: run workers, start and operate executions and schedules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
schedules_app = typer.Typer(
    help="Inspect and operate schedules (list, get, pause, resume, remove).", no_args_is_help=True
)
app.add_typer(schedules_app, name="schedules")


@app.callback()
def _global(
    ctx: typer.Context,
    redis_url: Annotated[
        str, typer.Option("--redis-url", envvar="DURABLE_REDIS_URL", help="Redis holding the executions.")
    ] = DEFAULT_REDIS_URL,
    app_modules: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            envvar="DURABLE_APP",
            help="Module(s) to import so workflow ids resolve (repeat, or comma-separate).",
        ),
    ] = None,
    output: Annotated[
        Output,
        typer.Option("--output", "-o", envvar="DURABLE_OUTPUT", help="table for people, json for scripts."),
    ] = Output.TABLE,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", envvar="DURABLE_ACTOR", help="Who is acting, for the audit (default: OS user)."
        ),
    ] = None,
) -> None:
    apps = [part for item in app_modules or () for part in item.replace(",", " ").split() if part]
    ctx.obj = Settings(redis_url=redis_url, apps=apps, output=output, actor=actor or None)


# ---------------------------------------------------------------------------- worker


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(min=1, help="Executions run at once.")] = 64,
    worker_id: Annotated[
        str | None, typer.Option(help="Name in leases and logs (default host-pid-random).")
    ] = None,
    lease_ttl: Annotated[float, typer.Option(min=0.1, help="Seconds a lease lives without renewal.")] = 30.0,
    visibility_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds before a silent worker's queue entries are taken over.")
    ] = 60.0,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port (/metrics).")
    ] = None,
    retention: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            envvar="DURABLE_RETENTION",
            help="Seconds a completed or cancelled execution keeps its step history and audit (default: forever).",
        ),
    ] = None,
    op_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.05,
            envvar="DURABLE_OP_TIMEOUT",
            help="Seconds one Redis operation may take before it counts as unavailable (default 10).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python logging level.")] = "INFO",
) -> None:
    """Run a worker until SIGTERM or SIGINT (then finish in-flight work and stop)."""
    settings: Settings = ctx.obj
    settings.load_apps(required=True)
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise CliError(f"unknown --log-level {log_level!r}", 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("durable.cli")
    workflows = registered_workflows()
    if not workflows:
        raise CliError(
            f"no workflows registered by {', '.join(settings.apps)}: decorate them with @workflow", 2
        )

    async def serve() -> None:
        d = settings.durable(op_timeout_s=op_timeout)
        try:
            try:
                await d.store.ping()
            except StoreUnavailable as exc:
                raise CliError(
                    f"cannot reach Redis at {_safe_url(settings.redis_url)}: {exc.message}"
                ) from exc
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signals.SIGTERM, signals.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if metrics_port is not None:
                serve_metrics(metrics_port)
            async with d.worker(
                concurrency=concurrency,
                worker_id=worker_id,
                lease_ttl=lease_ttl,
                visibility_timeout=visibility_timeout,
                retention=retention,
            ) as w:
                log.info(
                    "worker %s ready: %d workflow(s) [%s] on %s",
                    w.worker_id,
                    len(workflows),
                    ", ".join(sorted(wf.workflow_id for wf in workflows)),
                    _safe_url(settings.redis_url),
                )
                await stop.wait()
                log.info("worker %s stopping: finishing in-flight work", w.worker_id)
            log.info("worker stopped")
        finally:
            await d.close()

    _run_fast(serve())


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (a worker spends much of its time in the event loop)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


# ---------------------------------------------------------------------------- executions


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
) -> None:
    """Start an execution; prints its id."""
    value = _json_arg(input, "--input")
    policy: IdReuse = "allow_if_finished" if id_reuse == IdReusePolicy.ALLOW_IF_FINISHED else "reject"

    async def go(d: Durable) -> str:
        return await d.start(workflow, value, execution_id=execution_id, id_reuse=policy)

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


# ---------------------------------------------------------------------------- schedules


@schedules_app.command("list")
def schedules_list(ctx: typer.Context) -> None:
    """Every schedule with its next and last run."""

    async def go(d: Durable) -> Any:
        return await d.list_schedules()

    infos = _run(ctx, go)
    if ctx.obj.json:
        out.print_json([i.to_dict() for i in infos])
    else:
        out.schedules_table(infos)


@schedules_app.command("get")
def schedules_get(ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]) -> None:
    """One schedule's definition, status and history."""

    async def go(d: Durable) -> Any:
        return await d.get_schedule(schedule), await d.list_schedule_audit(schedule)

    info, audit = _run(ctx, go)
    if ctx.obj.json:
        out.print_json({**info.to_dict(), "history": [a.to_dict() for a in audit]})
    else:
        out.schedule_detail(info, audit)


def _schedule_action(ctx: typer.Context, schedule: str, action: str) -> None:
    async def go(d: Durable) -> Any:
        if action == "pause":
            return await d.pause_schedule(schedule)
        if action == "resume":
            return await d.resume_schedule(schedule)
        await d.remove_schedule(schedule)
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


@schedules_app.command("remove")
def schedules_remove(
    ctx: typer.Context, schedule: Annotated[str, typer.Argument(help="Schedule id.")]
) -> None:
    """Delete a schedule (runs already started go on)."""
    _schedule_action(ctx, schedule, "remove")


# ---------------------------------------------------------------------------- entry point

_GLOBAL_WITH_VALUE = frozenset({"--redis-url", "--app", "--output", "-o", "--actor"})


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the global options to the front, where Click reads them, wherever they were given."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _GLOBAL_WITH_VALUE:
            front.extend(args[i : i + 2])
            i += 2
            continue
        inline = arg.split("=", 1)[0] in _GLOBAL_WITH_VALUE and "=" in arg
        if inline or (arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    debug = os.environ.get("DURABLE_DEBUG", "") not in ("", "0")
    try:
        rv = command.main(args=args, prog_name="durable", standalone_mode=False)
    except typer.TyperException as exc:
        help_ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and help_ctx is not None:
            # `durable` or `durable schedules` alone: show the help.
            sys.stdout.write(help_ctx.get_help() + "\n")
            sys.exit(2)
        format_message = getattr(exc, "format_message", None)
        out.error(format_message() if callable(format_message) else str(exc))
        code = getattr(exc, "exit_code", 2)
        sys.exit(code if isinstance(code, int) else 2)
    except typer.Abort:
        out.error("aborted")
        sys.exit(130)
    except CliError as exc:
        out.error(str(exc))
        sys.exit(exc.code)
    except DurableError as exc:
        out.error(exc.message)
        sys.exit(1)
    except (ValueError, OSError) as exc:
        if debug:
            raise
        out.error(str(exc) or type(exc).__name__)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        out.error(f"unexpected {type(exc).__name__}: {exc} (set DURABLE_DEBUG=1 for a traceback)")
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
