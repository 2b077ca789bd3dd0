"""`wait_finished` returns the same record as a read after the fact, whichever path delivered it."""

from __future__ import annotations

import asyncio
import time

from durable._records import Status
from durable._store._base import Checkpoint, NewExecution, Store

TTL = 30_000


def now() -> int:
    return int(time.time() * 1000)


async def test_waited_record_equals_the_stored_one(store: Store) -> None:
    await store.create_execution(NewExecution("w1", "wf", b'{"n":1}', now(), category="c"))  # type: ignore[arg-type]
    got = await store.acquire("w1", "worker", TTL, now())
    waiter = asyncio.create_task(store.wait_finished("w1", 10.0))
    await asyncio.sleep(0.05)  # the waiter has looked once and waits for the done message
    cp = Checkpoint(current_step="s1")
    await store.finish("w1", got.token, cp, now(), status=Status.COMPLETED, result=b'{"ok":"\\u00e9/x"}')
    waited = await asyncio.wait_for(waiter, 5.0)
    assert waited == await store.get_execution("w1")
    assert waited.result == {"ok": "\u00e9/x"} and waited.category == "c" and waited.current_step == "s1"
