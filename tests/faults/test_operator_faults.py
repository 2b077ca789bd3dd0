"""The status mirror under faults: Redis restarts, an operator stopped mid-batch, stale writers.

Every test checks the phase history the emulator stored for each DurableExecution
(`Emulator.phases`): its `observedVersion` never decreases, so a phase never goes backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from _redis_server import RedisServer
from apps.operator_app import failing, multistep, process_order
from durable import Durable, ExecutionRecord, RedisStore, Status
from durable._store._keys import Keys
from durable_operator._mirror import write_execution_status
from durable_operator._runtime import mirror_name
from durable_operator._status import parse_version, record_version
from operator_harness import Cluster, doc, eventually, fast_config, operator

pytestmark = pytest.mark.timeout(120)


async def _workflow(cluster: Cluster, name: str, workflow_id: str, mirror: str = "all") -> None:
    await cluster.apply(doc("DurableWorkflow", name, {"workflowId": workflow_id, "mirror": mirror}))
    await cluster.status("durableworkflows", name, lambda s: bool(s.get("conditions")))


def _never_backwards(cluster: Cluster) -> None:
    for name, history in cluster.emulator.phases.items():
        keys = [parse_version(version) for _, version in history if version is not None]
        assert keys == sorted(keys), f"{name} went backwards: {history}"  # type: ignore[type-var]


async def _pending(redis_url: str, group: str) -> int:
    client = aioredis.Redis.from_url(redis_url)
    try:
        summary = await client.xpending(Keys().status(), group)
        return int(summary["pending"])
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def _engine(url: str) -> AsyncIterator[Durable]:
    d = Durable(store=RedisStore.from_url(url), workflows=[process_order, failing, multistep])
    try:
        async with d.worker(concurrency=8):
            yield d
    finally:
        await d.close()


async def _matches_redis(cluster: Cluster, engine: Durable, eid: str) -> ExecutionRecord:
    record = await engine.get_execution(eid)
    assert record is not None
    obj = cluster.get("durableexecutions", mirror_name(eid))
    assert obj is not None
    status = obj["status"]
    assert status["observedVersion"] == record_version(record)
    assert (status["currentStep"], status["attempts"]) == (record.current_step, record.attempt)
    if record.status == Status.COMPLETED:
        assert status["phase"] == "Succeeded" and status["result"] == record.result
    return record


@pytest.mark.slow
async def test_the_mirror_survives_redis_restarts(cluster: Cluster) -> None:
    server = RedisServer(persistent=True)  # an fsync-always AOF: acknowledged writes survive a SIGKILL
    server.start()
    try:
        async with _engine(server.url) as engine, operator(fast_config(cluster, server.url)) as rt:
            await _workflow(cluster, "steps", "test.multistep")
            ids = [
                await engine.start(
                    "test.multistep", {"id": i, "steps": 4, "sleep": 0.3}, execution_id=f"multi-{i}"
                )
                for i in range(6)
            ]
            names = [mirror_name(eid) for eid in ids]

            def in_progress() -> bool:
                phases = [((cluster.get("durableexecutions", n) or {}).get("status") or {}) for n in names]
                return sum(p.get("phase") in ("Running", "Sleeping") for p in phases) >= 3

            await cluster.wait_for(in_progress, 20, "executions in progress")
            for _ in range(2):  # twice, while the mirror reads and patches
                await asyncio.to_thread(server.kill)
                await asyncio.sleep(1.5)  # longer than the client's retries: the mirror sees the outage
                await asyncio.to_thread(server.start)
                await asyncio.sleep(0.4)
            for name in names:
                await cluster.status("durableexecutions", name, lambda s: s.get("phase") == "Succeeded", 40)
            for eid in ids:
                record = await _matches_redis(cluster, engine, eid)
                index = int(eid.split("-")[1])
                assert record.result == {"id": index, "done": [index * 10 + k for k in range(4)]}

            # Healthy again once its next read succeeds: a read that failed during the last outage may
            # still be in its back-off (up to 2 s here) when the last status lands through a resync.
            async def recovered() -> bool:
                return rt.mirror.running and rt.mirror.healthy

            assert await eventually(recovered, what="the mirror healthy again")
            assert rt.mirror.reconciles >= 2  # the first term, and a term after an outage
            assert await eventually(
                lambda: _no_pending(server.url, rt.config.group), what="every event acknowledged"
            )
        _never_backwards(cluster)
    finally:
        server.stop()


async def _no_pending(url: str, group: str) -> bool:
    return await _pending(url, group) == 0


@pytest.mark.slow
async def test_a_redis_that_restarts_empty_is_reconciled(
    cluster: Cluster, fresh_redis_server: RedisServer
) -> None:
    server = fresh_redis_server  # no persistence: a restart loses everything, the stream's group too
    async with _engine(server.url) as engine, operator(fast_config(cluster, server.url)) as rt:
        await _workflow(cluster, "orders", "app.workflows.processOrder")
        waiting = await engine.start("app.workflows.processOrder", {"id": 1}, execution_id="sdk-wait")
        done = await engine.start("test.failing", {"id": 2}, execution_id="sdk-failed")
        await _workflow(cluster, "failing", "test.failing")
        await cluster.status("durableexecutions", mirror_name(waiting), lambda s: s.get("phase") == "Waiting")
        await cluster.status("durableexecutions", mirror_name(done), lambda s: s.get("phase") == "Failed")
        reconciles = rt.mirror.reconciles

        await asyncio.to_thread(server.kill)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(server.start)

        # The reconcile after the outage: the waiting execution is gone; the finished one keeps its phase.
        lost = await cluster.status(
            "durableexecutions", mirror_name(waiting), lambda s: s.get("reason") == "ExecutionLost", 20
        )
        assert lost["phase"] == "Failed"
        kept = cluster.get("durableexecutions", mirror_name(done))
        assert kept is not None and kept["status"]["reason"] == "WorkflowFailed"
        # The mirror itself reconciled after the outage (another writer may have got there first).
        deadline = asyncio.get_running_loop().time() + 20
        while rt.mirror.reconciles <= reconciles:
            assert asyncio.get_running_loop().time() < deadline, (
                "the mirror never reconciled after the outage"
            )
            await asyncio.sleep(0.05)
        # The group was re-created: new executions are mirrored again.
        again = await engine.start("app.workflows.processOrder", {"id": 3}, execution_id="sdk-after")
        await cluster.status(
            "durableexecutions", mirror_name(again), lambda s: s.get("phase") == "Waiting", 20
        )
        await engine.signal(again, "orders.approved", {"approver": "fay"})
        await cluster.status("durableexecutions", mirror_name(again), lambda s: s.get("phase") == "Succeeded")
    _never_backwards(cluster)


def _block_status_patches(rt: Any, *, then_fail: bool = False) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold every DurableExecution status patch of this runtime until `release` is set.

    `then_fail`: a released patch fails instead of landing (its operator is going down; kopf's
    graceful stop waits for the handler that holds it).
    """
    blocked, release = asyncio.Event(), asyncio.Event()
    original = rt.kube.merge_patch

    async def merge_patch(path: str, body: dict[str, Any]) -> Any:
        if "/durableexecutions/" in path and path.endswith("/status"):
            blocked.set()
            await release.wait()
            if then_fail:
                raise ConnectionError("the operator stopped while this patch was in flight")
        return await original(path, body)

    rt.kube.merge_patch = merge_patch
    return blocked, release


async def test_an_operator_stopped_mid_batch_loses_nothing(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    config = fast_config(cluster, redis_url)
    async with operator(config) as first:
        await _workflow(cluster, "orders", "app.workflows.processOrder")
        blocked, release = _block_status_patches(first, then_fail=True)
        eid = await engine.start("app.workflows.processOrder", {"id": 1}, execution_id="mid-batch")
        # The mirror read the events, created the mirror CR, and hangs in its status patch: unacked.
        await asyncio.wait_for(blocked.wait(), 10)
        assert await _pending(redis_url, config.group) > 0
        release.set()  # the held patch fails now, as the operator goes down
    obj = cluster.get("durableexecutions", mirror_name(eid))
    assert obj is not None and not (obj.get("status") or {}).get("observedVersion")
    await engine.signal(eid, "orders.approved", {"approver": "gus"})
    await engine.wait(eid, timeout=10)

    async with operator(config) as second:
        done = await cluster.status(
            "durableexecutions", mirror_name(eid), lambda s: s.get("phase") == "Succeeded"
        )
        assert done["result"]["approver"] == "gus"
        assert second.mirror.claimed > 0  # the first operator's unacknowledged events
        assert await eventually(lambda: _no_pending(redis_url, config.group), what="no pending entries")
    _never_backwards(cluster)


@dataclasses.dataclass
class _StaleDurable:
    """A reader that saw the execution a while ago: every read returns `record`."""

    record: ExecutionRecord

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        return self.record


async def test_stale_writers_and_a_replayed_stream_never_move_a_phase_backwards(
    cluster: Cluster, redis_url: str, engine: Durable
) -> None:
    async with operator(fast_config(cluster, redis_url)) as rt:
        await _workflow(cluster, "orders", "app.workflows.processOrder")
        eid = await engine.start("app.workflows.processOrder", {"id": 1}, execution_id="stale")
        name = mirror_name(eid)
        await cluster.status("durableexecutions", name, lambda s: s.get("phase") == "Waiting")
        waiting = await engine.get_execution(eid)
        assert waiting is not None and waiting.status == Status.WAITING

        # A writer that read "running again" (the signal's activation) and stalls before its patch,
        # while the mirror writes the final phase: its patch must not land.
        stalled = dataclasses.replace(
            waiting, status=Status.RUNNING, activations=waiting.activations + 1, current_step="ship"
        )
        stale_rt = dataclasses.replace(rt, durable=_StaleDurable(stalled), kube=_Kube(rt.kube))
        blocked, release = _block_status_patches(stale_rt)
        writer = asyncio.create_task(write_execution_status(stale_rt, "default", name, eid))
        await asyncio.wait_for(blocked.wait(), 10)
        await engine.signal(eid, "orders.approved", {"approver": "hal"})
        await cluster.status("durableexecutions", name, lambda s: s.get("phase") == "Succeeded")
        conflicts = cluster.emulator.conflicts
        release.set()
        assert await asyncio.wait_for(writer, 10) is False  # 409, then refused as older
        assert cluster.emulator.conflicts > conflicts

        # A reconcile that read Redis long ago: refused outright.
        for old in (waiting, dataclasses.replace(waiting, status=Status.PENDING, activations=0)):
            old_rt = dataclasses.replace(rt, durable=_StaleDurable(old))
            assert await write_execution_status(old_rt, "default", name, eid) is False

        # The whole stream again from its start (as after a group reset): nothing moves back.
        client = aioredis.Redis.from_url(redis_url)
        try:
            await client.xgroup_setid(Keys().status(), rt.config.group, "0")
        finally:
            await client.aclose()
        batches = rt.mirror.batches
        await cluster.wait_for(lambda: rt.mirror.batches > batches + 2, what="the replay")
        assert await eventually(lambda: _no_pending(redis_url, rt.config.group), what="replay acknowledged")
        final = cluster.get("durableexecutions", name)
        assert final is not None and final["status"]["phase"] == "Succeeded"
        await _matches_redis(cluster, engine, eid)
    history = [phase for phase, _ in cluster.emulator.phases[name]]
    assert history[-1] == "Succeeded" and history.count("Succeeded") == len(history) - history.index(
        "Succeeded"
    )
    _never_backwards(cluster)


class _Kube:
    """The operator's Kube client with an attribute of its own (`merge_patch` can be replaced)."""

    def __init__(self, kube: Any) -> None:
        self._kube = kube

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)
