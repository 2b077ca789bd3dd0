"""Redis over a unix socket (`unix://`): the whole path (multiplexed calls, blocking reads, pub/sub)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _redis_server import RedisServer
from durable import Durable, RedisStore, WorkflowContext, workflow


@workflow("unix.hello")
async def hello(ctx: WorkflowContext, name: str) -> str:
    await ctx.sleep(0.01)
    return str(await ctx.step("greet", lambda: f"hello {name}"))


@pytest.fixture
def on_a_socket() -> Iterator[RedisServer]:
    with RedisServer(unix_socket=True) as server:
        yield server


async def test_workflow_runs_over_a_unix_socket(on_a_socket: RedisServer) -> None:
    durable = Durable(store=RedisStore.from_url(f"unix://{on_a_socket.unix_path}?db=1"), workflows=[hello])
    try:
        async with durable.worker(concurrency=4, max_idle_poll=0.1):
            assert await durable.start_and_wait(hello, "ada", timeout=20) == "hello ada"
    finally:
        await durable.close()
