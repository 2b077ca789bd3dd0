"""The DurableExecution start handler on its own: a CR that attaches to an execution the store no longer has."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

import kopf

from durable import Durable, MemoryStore
from durable_operator._handlers._executions import execution_start


async def _start(status: dict[str, Any]) -> kopf.Patch:
    durable = Durable(store=MemoryStore())
    memo = kopf.Memo(runtime=SimpleNamespace(durable=durable, executions={}))
    meta = {"namespace": "default", "name": "sdk-failed", "uid": "u1", "generation": 1}
    body = {
        "metadata": meta,
        "spec": {"workflowRef": "failing", "executionId": "sdk-failed"},
        "status": status,
    }
    patch = kopf.Patch()
    started = datetime.datetime.now(datetime.UTC)
    await execution_start(
        body=body,
        meta=meta,
        status=status,
        patch=patch,
        memo=memo,
        retry=0,
        started=started,  # type: ignore[arg-type]
    )
    await durable.close()
    return patch


async def test_a_cr_mirrored_to_its_end_keeps_its_phase_when_the_store_lost_the_execution() -> None:
    # A Redis that restarted empty before this handler ran (it may run late: retries, a busy operator).
    patch = await _start({"phase": "Failed", "reason": "WorkflowFailed", "executionId": "sdk-failed"})
    assert dict(patch) == {}


async def test_a_cr_naming_an_execution_the_store_does_not_have_is_refused() -> None:
    patch = await _start({})
    assert patch["status"]["phase"] == "Failed" and patch["status"]["reason"] == "ExecutionNotFound"
