"""`durable worker`: run a worker process (with metrics and graceful shutdown)."""

from __future__ import annotations

import asyncio
import logging
import signal as signals
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from .._errors import StoreUnavailable
from .._metrics import serve_metrics
from .._store._keys import check_version
from .._workflow._definitions import registered_workflows
from ._app import CliError, Settings, _safe_url, app


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
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            envvar="DURABLE_WORKER_VERSION",
            help="This code's version: run only executions started on it (default: unversioned).",
        ),
    ] = None,
    make_current: Annotated[
        bool,
        typer.Option(
            "--make-current",
            help="Send new executions of the served workflows to this version at start "
            "(without it, only workflows that have no current version).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="Python logging level.")] = "INFO",
) -> None:
    """Run a worker until SIGTERM or SIGINT (then finish in-flight work and stop)."""
    settings: Settings = ctx.obj
    try:
        check_version(version or "")
    except ValueError as exc:
        raise CliError(f"--version: {exc}", 2) from exc
    if make_current and not version:
        raise CliError("--make-current needs --version", 2)
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
                version=version or None,
                make_current=make_current,
            ) as w:
                log.info(
                    "worker %s%s ready: %d workflow(s) [%s] on %s",
                    w.worker_id,
                    f" (version {w.version})" if w.version else "",
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
