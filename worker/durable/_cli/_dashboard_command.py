"""`durable dashboard`: serve the web dashboard over the executions in Redis."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

from .._dashboard import TOKEN_ENV, DashboardConfig, serve
from . import _output as out
from ._app import CliError, Settings, _safe_url, app


@app.command("dashboard")
def dashboard(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0 in a container).")
    ] = "127.0.0.1",
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help=f"File holding the bearer token that authorizes actions (else env {TOKEN_ENV}). "
            "Without a token, actions are refused.",
        ),
    ] = None,
    read_token: Annotated[
        bool,
        typer.Option("--read-token/--open", help="Reading needs the token too (default: reading is open)."),
    ] = False,
    unauthenticated_actions: Annotated[
        bool,
        typer.Option(
            "--dangerously-allow-unauthenticated-actions",
            help="Let anybody who reaches the dashboard act (a banner on every page says so).",
        ),
    ] = False,
) -> None:
    """Serve the dashboard: executions, workflows, schedules, and operator actions (--app draws flows)."""
    settings: Settings = ctx.obj
    try:
        config = DashboardConfig.from_env(
            token_file,
            protect_reads=read_token,
            allow_unauthenticated_actions=unauthenticated_actions,
        )
    except (OSError, ValueError) as exc:
        raise CliError(str(exc), 2) from exc
    durable = settings.durable()
    if config.token is None and not unauthenticated_actions:
        out.error(f"no token configured (--token-file or {TOKEN_ENV}): the dashboard is read-only")
    if unauthenticated_actions:
        out.error("WARNING: unauthenticated actions are enabled: anybody who reaches the dashboard can act")
    out.message(f"dashboard on http://{host}:{port}/ over {_safe_url(settings.redis_url)}")

    async def go() -> None:
        try:
            await serve(durable, config, host=host, port=port)
        finally:
            with contextlib.suppress(Exception):
                await durable.close()

    asyncio.run(go())
