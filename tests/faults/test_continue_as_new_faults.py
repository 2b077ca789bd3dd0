"""Continue-as-new with real worker processes killed around the hand-off (Redis: processes share it)."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest
from test_faults import fault_env  # noqa: F401 (a fixture)

from durable import Durable, RedisStore
from worker_procs import runs, spawn_worker, wait_for_key


def _died(proc: subprocess.Popen[bytes]) -> None:
    assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.slow
async def test_a_worker_killed_around_continue_as_new_loses_nothing_and_repeats_nothing(
    fault_env: str,  # noqa: F811
    workers: list[Any],
) -> None:
    client = Durable(store=RedisStore.from_url(fault_env), allow_unregistered=True)
    workers.append(spawn_worker(fault_env))
    eid = await client.start("fault.continue", {"round": 1, "seen": []}, execution_id="cont-crash")
    await client.signal(eid, "fault.item", 0, delivery_id="item-0")
    # Round 1: killed after the step and the signal committed, before the continue-as-new write.
    wait_for_key(fault_env, f"fault:started:{eid}:after-commit")
    _died(workers[-1])
    await client.signal(eid, "fault.item", 1, delivery_id="item-1")  # sent while no worker runs
    await client.signal(eid, "fault.item", 1, delivery_id="item-1")  # a retried send: deduplicated
    workers.append(spawn_worker(fault_env))
    # Round 2: killed inside a step body just before continue-as-new.
    wait_for_key(fault_env, f"fault:started:{eid}:in-step")
    _died(workers[-1])
    await client.signal(eid, "fault.item", 2, delivery_id="item-2")
    workers.append(spawn_worker(fault_env))
    result = await client.wait(eid, timeout=60)
    record = await client.get_execution(eid)
    await client.close()
    assert record is not None and record.run == 3 and result["round"] == 3
    # Each round's step committed once and its signal was consumed once, in order.
    assert result["seen"] == [[1, 0], [1, 1], [1, 2]]
    counted = runs(fault_env)
    assert {k: v for k, v in counted.items() if ":work-" in k} == {f"{eid}:work-{n}": 1 for n in (1, 2, 3)}
    assert counted[f"{eid}:in-step"] == 2  # cut mid-body once, then ran to the end
