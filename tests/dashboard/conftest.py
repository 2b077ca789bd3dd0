"""The dashboard served by uvicorn on a free port, in the test's event loop, over a real Redis; an
in-process worker runs the executions the tests start."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from apps.dashboard_app import WORKFLOWS
from durable import Durable, RedisStore, Status
from durable._dashboard import DashboardConfig, create_app

TOKEN = "dashboard-test-token-0123456789"


@dataclass
class Served:
    url: str
    durable: Durable  # the worker's side: starts executions and reads them back in the tests
    http: httpx.AsyncClient

    async def wait_status(self, execution_id: str, *statuses: Status, timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            record = await self.durable.get_execution(execution_id)
            if record is not None and record.status in statuses:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{execution_id} is {record and record.status}, not {statuses}")
            await asyncio.sleep(0.02)

    async def csrf(self, client: httpx.AsyncClient | None = None) -> str:
        """The session's CSRF token (the session cookie lands in the client's jar)."""
        reply = await (client or self.http).get("/api/session")
        token: str = reply.json()["csrf"]
        return token

    async def sign_in(self, client: httpx.AsyncClient | None = None, name: str = "alice") -> str:
        """Sign in through the form as a browser does; returns the new session's CSRF token."""
        client = client or self.http
        csrf = await self.csrf(client)
        reply = await client.post("/sign-in", data={"token": TOKEN, "name": name, "csrf": csrf, "next": "/"})
        assert reply.status_code == 303, reply.text
        return await self.csrf(client)


@contextlib.asynccontextmanager
async def serving(redis_url: str, config: DashboardConfig) -> AsyncIterator[Served]:
    worker_side = Durable(store=RedisStore.from_url(redis_url), workflows=WORKFLOWS, actor="tests")
    dashboard_side = Durable(store=RedisStore.from_url(redis_url), workflows=WORKFLOWS, actor="dashboard")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(dashboard_side, config),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with worker_side.worker(concurrency=8):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                yield Served(url, worker_side, http)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await worker_side.close()
        await dashboard_side.close()


@pytest.fixture
async def serve(redis_url: str) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """`await serve(token=..., ...)`: a dashboard with that configuration (default: the test token)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> Served:
            options.setdefault("token", TOKEN)
            return await stack.enter_async_context(serving(redis_url, DashboardConfig(**options)))

        yield start


@pytest.fixture
async def served(serve: Callable[..., Awaitable[Served]]) -> Served:
    return await serve()
