"""Fetching executions' recorded histories, for a replay check or an export."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from .._errors import ExecutionNotFound
from .._records import ExecutionRecord, Status
from .._worker._replayer import ExecutionHistory
from ._executions import ExecutionClient

__all__ = ["history_of", "load_histories"]

_IN_FLIGHT = (Status.PENDING, Status.RUNNING, Status.SLEEPING, Status.WAITING)
_FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
_PAGE = 200


async def load_histories(
    client: ExecutionClient,
    *,
    workflow_id: str | None = None,
    version: str | None = None,
    limit: int = 100,
    finished_within_s: float = 3600.0,
) -> list[ExecutionHistory]:
    """Up to `limit` histories, newest first: the executions not finished yet, then those that finished
    in the last `finished_within_s` seconds. `version`: only executions started by that worker version
    ("" for unversioned ones); None for every version. Finished executions are listed newest created
    first, and at most `10 * limit + 1000` of them are looked at (a store may hold millions)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if finished_within_s < 0:
        raise ValueError(f"finished_within_s must not be negative, got {finished_within_s}")
    since_ms = (time.time() - finished_within_s) * 1000
    out: list[ExecutionHistory] = []
    for statuses, scan_cap in ((_IN_FLIGHT, None), (_FINISHED, 10 * limit + 1000)):
        scanned = 0
        async for record in _records(client, workflow_id, statuses):
            scanned += 1
            if len(out) >= limit or (scan_cap is not None and scanned > scan_cap):
                break
            if version is not None and (record.version or "") != version:
                continue
            if record.finished_at is not None and record.finished_at.timestamp() * 1000 < since_ms:
                continue
            out.append(await _history(client, record))
    return out


async def history_of(client: ExecutionClient, execution_id: str) -> ExecutionHistory:
    """One execution's history; `ExecutionNotFound` if there is no such execution."""
    record = await client.get_execution(execution_id)
    if record is None:
        raise ExecutionNotFound(f"execution {execution_id!r} does not exist", execution_id=execution_id)
    return await _history(client, record)


async def _history(client: ExecutionClient, record: ExecutionRecord) -> ExecutionHistory:
    return ExecutionHistory(
        execution_id=record.execution_id,
        workflow_id=record.workflow_id,
        status=record.status.value,
        input=record.input,
        steps=await client.store.load_steps(record.execution_id),
        version=record.version,
    )


async def _records(
    client: ExecutionClient, workflow_id: str | None, statuses: Sequence[Status]
) -> AsyncIterator[ExecutionRecord]:
    cursor: str | None = None
    while True:
        page, cursor = await client.list_executions_page(workflow_id, statuses, limit=_PAGE, cursor=cursor)
        for record in page:
            yield record
        if not cursor:
            return
