"""Redis over TLS (`rediss://`) on a real `redis-server` with certificates made here (trustme): a
workflow end to end, pub/sub, blocking reads, client certificates, and an untrusted server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import trustme
import uvloop

from _redis_server import RedisServer, TlsFiles
from durable import Durable, RedisStore, Status, StoreUnavailable, WorkflowContext, workflow
from durable._store._data import Checkpoint, NewExecution
from durable._store._redis._settings import RedisSettings
from durable._store._redis._subscriber import Subscriber

PASSWORD = "s3cr3t tls"


@dataclass(frozen=True)
class Certs:
    server: TlsFiles
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()
    server, client = ca.issue_cert("127.0.0.1", "localhost"), ca.issue_cert("durable-worker")
    paths = {
        name: folder / name for name in ("ca.pem", "other.pem", "srv.pem", "srv.key", "cli.pem", "cli.key")
    }
    ca.cert_pem.write_to_path(str(paths["ca.pem"]))
    other.cert_pem.write_to_path(str(paths["other.pem"]))
    server.cert_chain_pems[0].write_to_path(str(paths["srv.pem"]))
    server.private_key_pem.write_to_path(str(paths["srv.key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["cli.pem"]))
    client.private_key_pem.write_to_path(str(paths["cli.key"]))
    return Certs(
        server=TlsFiles(paths["srv.pem"], paths["srv.key"], paths["ca.pem"]),
        client_cert=paths["cli.pem"],
        client_key=paths["cli.key"],
        other_ca=paths["other.pem"],
    )


@pytest.fixture(scope="module")
def tls_server(certs: Certs) -> Iterator[RedisServer]:
    """TLS only (no plain port), a password, no client certificates asked."""
    with RedisServer(password=PASSWORD, tls=certs.server) as server:
        yield server


@pytest.fixture
def url(tls_server: RedisServer, certs: Certs) -> str:
    """Database 2 (so SELECT goes over TLS too), flushed before the test."""
    return f"rediss://:s3cr3t%20tls@127.0.0.1:{tls_server.port}/2?ssl_ca_certs={certs.server.ca}"


def _client(url: str) -> aioredis.Redis:
    """A redis-py client of the test's own, over TLS."""
    return aioredis.Redis.from_url(url)


@workflow("tls.order")
async def order(ctx: WorkflowContext, n: int) -> dict[str, Any]:
    doubled = await ctx.step("double", lambda: n * 2)
    await ctx.sleep(0.05, step_id="nap")
    go = await ctx.wait_for_signal("tls.go", timeout=30, step_id="go")
    return {"doubled": doubled, "go": go.payload}


async def test_a_workflow_runs_end_to_end_over_tls(url: str) -> None:
    async with _client(url) as client:
        await client.flushdb()
    durable = Durable(store=RedisStore.from_url(url), workflows=[order])
    try:
        async with durable.worker(concurrency=4, max_idle_poll=0.2):
            eid = await durable.start(order, 21)
            deadline = time.monotonic() + 20
            while (record := await durable.get_execution(eid)) is None or record.waiting_for != "tls.go":
                assert time.monotonic() < deadline, record
                await asyncio.sleep(0.02)
            await durable.signal(eid, "tls.go", {"ok": True})
            assert await durable.wait(eid, timeout=20) == {"doubled": 42, "go": {"ok": True}}
        steps = [s.step_id for s in await durable.list_step_results(eid)]
        assert steps == ["double", "nap", "go"]
    finally:
        await durable.close()
    async with _client(url) as client:
        assert await client.exists(f"dw:{{{eid}}}:exec")  # database 2, over TLS


async def test_pubsub_and_blocking_reads_over_tls(url: str) -> None:
    store = RedisStore.from_url(url)
    try:
        # A blocking queue read, woken by an enqueue on the multiplexed connection.
        reader = asyncio.create_task(store.dequeue("c1", 10, 4000))
        await asyncio.sleep(0.2)
        await store.enqueue("e1", "start")
        started = time.monotonic()
        entries = await asyncio.wait_for(reader, 5)
        assert [e.execution_id for e in entries] == ["e1"] and time.monotonic() - started < 3
        # A blocking status-feed read, woken by a status change.
        await store.read_status_events("g", "r1", 10, 0)  # creates the group
        feed = asyncio.create_task(store.read_status_events("g", "r1", 10, 4000))
        await asyncio.sleep(0.2)
        await store.create_execution(NewExecution("e2", "wf", b"1", int(time.time() * 1000)))
        events = await asyncio.wait_for(feed, 5)
        assert [(e.execution_id, e.status) for e in events] == [("e2", Status.PENDING)]
        # wait_finished: the done message arrives on the store's own pub/sub connection.
        got = await store.acquire("e2", "w1", 30_000, int(time.time() * 1000))
        waiter = asyncio.create_task(store.wait_finished("e2", 10))
        await asyncio.sleep(0.2)
        await store.finish("e2", got.token, Checkpoint(), int(time.time() * 1000), status=Status.COMPLETED)
        assert (await asyncio.wait_for(waiter, 5)).status == Status.COMPLETED
    finally:
        await store.close()


async def test_the_subscriber_connects_authenticates_and_receives_over_tls(url: str) -> None:
    received: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
    resets: list[None] = []
    sub = Subscriber(
        RedisSettings.from_url(url),
        lambda ch, data: received.put_nowait((ch, data)),
        lambda: resets.append(None),
    )
    try:
        sub.add(b"tls-channel")
        await asyncio.wait_for(sub.ready.wait(), 5)  # the server confirmed the subscription
        async with _client(url) as client:
            await client.publish("tls-channel", b"hello")
        assert await asyncio.wait_for(received.get(), 5) == (b"tls-channel", b"hello")
        assert resets == []
    finally:
        await sub.close()


async def test_an_untrusted_server_is_store_unavailable_in_one_line(
    tls_server: RedisServer, certs: Certs
) -> None:
    store = RedisStore.from_url(
        f"rediss://:s3cr3t%20tls@127.0.0.1:{tls_server.port}/0?ssl_ca_certs={certs.other_ca}",
        op_timeout_s=2.0,
    )
    try:
        with pytest.raises(StoreUnavailable) as info:
            await asyncio.wait_for(store.ping(), 10)
        message = str(info.value)
        assert "\n" not in message and "certificate verify failed" in message, message
        assert isinstance(info.value.__cause__, ConnectionError)
    finally:
        await store.close()


def test_client_certificates_and_uvloop(certs: Certs) -> None:
    """A server that asks for client certificates; the workers' event loop (uvloop)."""
    files = TlsFiles(certs.server.cert, certs.server.key, certs.server.ca, auth_clients=True)
    with RedisServer(tls=files) as server:
        base = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={files.ca}"

        async def check() -> None:
            without = RedisStore.from_url(base, op_timeout_s=2.0)
            try:
                with pytest.raises(StoreUnavailable) as info:
                    await asyncio.wait_for(without.ping(), 10)
                assert "\n" not in str(info.value)
            finally:
                await without.close()
            store = RedisStore.from_url(
                f"{base}&ssl_certfile={certs.client_cert}&ssl_keyfile={certs.client_key}"
            )
            try:
                await store.ping()
                reader = asyncio.create_task(store.dequeue("c1", 10, 4000))
                await asyncio.sleep(0.1)
                await store.enqueue("e1", "start")
                assert [e.execution_id for e in await asyncio.wait_for(reader, 5)] == ["e1"]
            finally:
                await store.close()

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(check())
