"""Shared fixtures: a real redis-server for the session, a clean database per test, both stores."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from _redis_server import RedisServer
from durable._store._base import Store


def _running_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session. Tests that kill it must restart it (see `fresh_redis_server`)."""
    yield from _running_server()


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, for fault tests that kill and restart it."""
    yield from _running_server()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, its data flushed before the test."""
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


def _memory_store() -> Store:
    try:
        module = importlib.import_module("durable._store._memory")
    except ImportError as exc:
        pytest.skip(f"MemoryStore is not available yet: {exc}")
    store: Store = module.MemoryStore()
    return store


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """Each conformance test runs once on the in-memory store and once on Redis."""
    if request.param == "memory":
        made = _memory_store()
    else:
        from durable._store._redis import RedisStore

        made = RedisStore.from_url(request.getfixturevalue("redis_url"))
    try:
        yield made
    finally:
        await made.close()


# ---------------------------------------------------------------- operator tests
@pytest.fixture
async def cluster() -> AsyncIterator[Any]:
    """kmock's Kubernetes emulator on loopback, with the product's kinds registered."""
    from operator_harness import Cluster

    async with Cluster() as c:
        yield c


@pytest.fixture
async def engine(redis_url: str) -> AsyncIterator[Any]:
    """A `Durable` with in-process workers serving the operator tests' workflows: an unversioned one,
    and one of version 0.1.0, standing in for the pods of the Deployment the operator makes for
    `examples/k8s/workflow.yaml` (whose image tag makes 0.1.0 current for its workflow)."""
    from apps.operator_app import failing, process_order
    from durable import Durable, RedisStore

    d = Durable(store=RedisStore.from_url(redis_url), workflows=[process_order, failing])
    async with d.worker(concurrency=8), d.worker(concurrency=8, version=EXAMPLE_VERSION):
        yield d
    await d.close()


#: The worker version the operator derives from the image of `examples/k8s/workflow.yaml`.
EXAMPLE_VERSION = "0.1.0"


# Each folder is a part; its name is a marker (`-m stores`, `-m "not operator"`). The chart's tests and
# every test on the emulated cluster (which `kubectl` drives) need the real helm/kubectl binaries
# (`cluster_tools`), so `make unit` can leave them out.
_PARTS = ("engine", "stores", "schedules", "cli", "operator", "chart", "faults", "dashboard")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        part = item.path.resolve().relative_to(tests).parts[0]
        if part in _PARTS:
            item.add_marker(part)
        if part == "chart" or "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker("cluster_tools")
