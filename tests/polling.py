"""Waiting in tests for an execution to reach a status (shared by the engine tests)."""

from __future__ import annotations

import asyncio

from durable import Status, Store


async def until(store: Store, eid: str, *statuses: Status, timeout: float = 10.0) -> None:
    """Poll `store` until execution `eid` has one of `statuses`; fail the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        record = await store.get_execution(eid)  # type: ignore[arg-type]
        if record is not None and record.status in statuses:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{eid} is {record and record.status}"
        await asyncio.sleep(0.02)
