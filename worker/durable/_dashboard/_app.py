"""`create_app`: the dashboard as an ASGI app over a `Durable` client; `serve` runs it with uvicorn."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from .._client._durable import Durable
from ._api import api_routes
from ._config import DashboardConfig
from ._live import StatusHub
from ._middleware import Guard
from ._pages import page_routes

__all__ = ["create_app", "serve"]

log = logging.getLogger("durable.dashboard")
STATIC = Path(__file__).parent / "static"


def create_app(durable: Durable, config: DashboardConfig | None = None) -> Starlette:
    """The dashboard over `durable` (its store, and the workflows it knows, for the flow diagrams).

    It only reads and acts through `durable`: it never talks to the Kubernetes API.
    """
    config = config or DashboardConfig()
    live = StatusHub(durable.store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await live.close()

    app = Starlette(
        routes=[*api_routes, *page_routes, Mount("/static", StaticFiles(directory=STATIC), name="static")],
        middleware=[Middleware(Guard, max_body_bytes=config.max_body_bytes)],
        lifespan=lifespan,
    )
    app.state.durable = durable
    app.state.config = config
    app.state.hub = live
    if config.allow_unauthenticated_actions:
        log.warning("the dashboard lets anybody who can reach it act on executions (unauthenticated actions)")
    return app


async def serve(
    durable: Durable, config: DashboardConfig, *, host: str = "127.0.0.1", port: int = 8080
) -> None:
    """Serve the dashboard until cancelled (or SIGINT/SIGTERM when run from the command line)."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(durable, config),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=2,
            lifespan="on",
        )
    )
    await server.serve()
