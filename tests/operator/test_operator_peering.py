"""Two operator replicas on one cluster and one Redis: only the active one mirrors; a standby takes over."""

from __future__ import annotations

import contextlib
import datetime
import json

import pytest
import redis.asyncio as aioredis

from durable import Durable, Status
from durable._store._keys import Keys
from durable_operator._activity import peering_allows
from durable_operator._runtime import mirror_name
from operator_harness import Cluster, doc, eventually, fast_config, operator_replica

pytestmark = pytest.mark.timeout(60)

PEERING = "durable-test"


async def _consumers(redis_url: str, group: str) -> dict[str, int]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        infos = await client.xinfo_consumers(Keys().status(), group)
        return {i["name"].decode(): int(i["pending"]) for i in infos}
    finally:
        await client.aclose()


async def _no_pending(redis_url: str, group: str) -> bool:
    client = aioredis.Redis.from_url(redis_url)
    try:
        summary = await client.xpending(Keys().status(), group)
        return int(summary["pending"]) == 0
    finally:
        await client.aclose()


def test_kopf_peering_rule() -> None:
    now = datetime.datetime.now(datetime.UTC)
    seen = now.isoformat()
    old = (now - datetime.timedelta(seconds=120)).isoformat()
    me = {"priority": 20, "lifetime": 60, "lastseen": seen}
    assert peering_allows({"a": me}, "a", 20, now)
    assert not peering_allows({}, "a", 20, now)  # kopf has not announced us yet
    assert peering_allows({"a": me, "b": {"priority": 10, "lifetime": 60, "lastseen": seen}}, "a", 20, now)
    assert not peering_allows(
        {"a": me, "b": {"priority": 30, "lifetime": 60, "lastseen": seen}}, "a", 20, now
    )
    # kopf pauses every replica of a tied priority.
    assert not peering_allows(
        {"a": me, "b": {"priority": 20, "lifetime": 60, "lastseen": seen}}, "a", 20, now
    )
    # A dead peer (last seen longer ago than its lifetime) does not count.
    assert peering_allows({"a": me, "b": {"priority": 30, "lifetime": 60, "lastseen": old}}, "a", 20, now)


async def test_only_the_active_replica_mirrors_and_a_standby_takes_over(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    cluster.add_peering(PEERING)
    config = fast_config(cluster, redis_url, activity_interval=0.1, claim_idle_seconds=1.0)
    group = config.group
    async with contextlib.AsyncExitStack() as replica_b:
        stack_a = contextlib.AsyncExitStack()
        async with stack_a:
            a = await stack_a.enter_async_context(
                operator_replica(config, peering_name=PEERING, identity="op-a", priority=20)
            )
            await cluster.wait_for(lambda: a.activity.active, what="op-a active")
            b = await replica_b.enter_async_context(
                operator_replica(config, peering_name=PEERING, identity="op-b", priority=10)
            )
            await cluster.apply(
                doc(
                    "DurableWorkflow", "orders", {"workflowId": "app.workflows.processOrder", "mirror": "all"}
                )
            )
            await cluster.status("durableworkflows", "orders", lambda s: bool(s.get("conditions")))
            first = await engine.start("app.workflows.processOrder", {"id": 1}, execution_id="sdk-1")
            await cluster.status(
                "durableexecutions", mirror_name(first), lambda s: s.get("phase") == "Waiting"
            )

            # Only op-a mirrors: op-b stands by (kopf paused it, and its mirror never started).
            assert set(cluster.peers(PEERING)) == {"op-a", "op-b"}
            assert not b.activity.active and b.mirror.consumer is None and b.mirror.batches == 0
            consumers = await _consumers(redis_url, group)
            assert consumers and all(name.startswith("durable-operator/op-a/") for name in consumers)

            # A third peer of a priority between the two keeps op-b standing by once op-a is gone,
            # long enough to leave op-a's last batch unacknowledged, as if it died mid-batch.
            now = datetime.datetime.now(datetime.UTC).isoformat()
            await cluster.kubectl(
                "patch",
                "clusterkopfpeerings.kopf.dev",
                PEERING,
                "--type=merge",
                "-p",
                json.dumps({"status": {"phantom": {"priority": 15, "lifetime": 60, "lastseen": now}}}),
            )
            await cluster.wait_for(lambda: "phantom" in cluster.peers(PEERING), what="phantom peer")
            a_consumer = a.mirror.consumer
            assert a_consumer is not None and a.activity.active
        # op-a stopped: it left the peering.
        await cluster.wait_for(lambda: "op-a" not in cluster.peers(PEERING), what="op-a gone")
        assert not b.activity.active

        # The engine moves on meanwhile; op-a "had read" these events and never acked them.
        await engine.signal(first, "orders.approved", {"approver": "dave"})
        await engine.wait(first, timeout=10)
        second = await engine.start("app.workflows.processOrder", {"id": 2}, execution_id="sdk-2")
        for _ in range(100):
            record = await engine.get_execution(second)
            if record is not None and record.status == Status.WAITING:
                break
            await cluster.wait_for(lambda: True)
        stranded = []
        while batch := await engine.store.read_status_events(group, a_consumer, 100, 0):
            stranded.extend(batch)
        assert {e.execution_id for e in stranded} >= {first, second}
        assert (await _consumers(redis_url, group))[a_consumer] == len(stranded)

        # The phantom goes: op-b becomes active, claims op-a's entries, and nothing is lost.
        await cluster.kubectl(
            "patch",
            "clusterkopfpeerings.kopf.dev",
            PEERING,
            "--type=merge",
            "-p",
            json.dumps({"status": {"phantom": None}}),
        )
        await cluster.wait_for(lambda: b.activity.active, what="op-b active")
        await cluster.status("durableexecutions", mirror_name(second), lambda s: s.get("phase") == "Waiting")
        done = await cluster.status(
            "durableexecutions", mirror_name(first), lambda s: s.get("phase") == "Succeeded"
        )
        assert done["result"]["approver"] == "dave"
        assert b.mirror.claimed >= len(stranded)
        await engine.signal(second, "orders.approved", {"approver": "erin"})
        await cluster.status(
            "durableexecutions", mirror_name(second), lambda s: s.get("phase") == "Succeeded"
        )
        await cluster.wait_for(lambda: b.mirror.batches > 0, what="op-b batches")
        # Every entry is acknowledged once applied (the ack follows the patch).
        assert await eventually(lambda: _no_pending(redis_url, group), what="no pending entries")
