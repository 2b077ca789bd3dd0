"""A password-protected Redis on a non-default database: the whole path (hot connection, queue, pub/sub)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _redis_server import RedisServer
from durable import Durable, RedisStore, StoreUnavailable, WorkflowContext, workflow


@workflow("auth.hello")
async def hello(ctx: WorkflowContext, name: str) -> str:
    await ctx.sleep(0.01)
    greeting = await ctx.step("greet", lambda: f"hello {name}")
    return str(greeting)


@pytest.fixture
def secured() -> Iterator[RedisServer]:
    server = RedisServer(password="s3cr3t pass")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_workflow_runs_on_a_password_protected_redis_db(secured: RedisServer) -> None:
    url = f"redis://:s3cr3t%20pass@127.0.0.1:{secured.port}/3"
    durable = Durable(store=RedisStore.from_url(url), workflows=[hello])
    async with durable.worker(concurrency=4, max_idle_poll=0.1):
        assert await durable.start_and_wait(hello, "ada", timeout=20) == "hello ada"
    await durable.close()


async def test_wrong_password_is_a_clear_error(secured: RedisServer) -> None:
    store = RedisStore.from_url(f"redis://:wrong@127.0.0.1:{secured.port}/0", op_timeout_s=2.0)
    with pytest.raises(StoreUnavailable) as info:
        await Durable(store=store, workflows=[hello]).start(hello, "x")
    message = str(info.value).lower()
    assert "\n" not in message and ("auth" in message or "password" in message), message
    await store.close()
