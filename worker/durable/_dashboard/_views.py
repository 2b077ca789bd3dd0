"""What every page shows, as plain JSON-ready dicts: the JSON API returns them and the pages render them."""

from __future__ import annotations

import asyncio
import time
import weakref
from datetime import datetime
from typing import Any

from .._client._durable import Durable
from .._errors import DurableError, ExecutionNotFound, WorkflowNotFound
from .._history import StepStatus
from .._records import ExecutionRecord, Status, ms_to_dt

__all__ = [
    "COUNT_CAP",
    "STATUSES",
    "execution_list",
    "execution_view",
    "schedule_list",
    "schedule_view",
    "status_counts",
    "workflow_list",
]

STATUSES = [s.value for s in Status]
# Counting reads executions newest first; past this many the counts say "at least".
COUNT_CAP = 10_000
_COUNT_PAGE = 1000


def _iso_ms(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    dt = ms_to_dt(int(value))
    return dt.isoformat() if dt else None


def summary(record: ExecutionRecord) -> dict[str, Any]:
    """One row of a listing."""
    return {
        "execution_id": record.execution_id,
        "workflow_id": record.workflow_id,
        "status": record.status.value,
        "current_step": record.current_step,
        "waiting_for": record.waiting_for,
        "attempt": record.attempt,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
    }


# Counts per (client, workflow filter) for a moment: live pages refresh on every status change, and
# counting reads up to `COUNT_CAP` records.
_COUNT_TTL_S = 2.0
_counted: weakref.WeakKeyDictionary[Durable, dict[str | None, tuple[float, dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


async def status_counts(durable: Durable, workflow: str | None = None) -> dict[str, Any]:
    """Executions per status (of `workflow`, or all), over the newest `COUNT_CAP` at most. A count that
    took more than one page of reads is reused for `_COUNT_TTL_S` seconds (small counts are always
    fresh: a page that shows the last change of a quiet system shows its counts too)."""
    cache = _counted.setdefault(durable, {})
    hit = cache.get(workflow)
    if hit is not None and time.monotonic() - hit[0] < _COUNT_TTL_S:
        return hit[1]
    result = await _count(durable, workflow)
    if result["total"] >= _COUNT_PAGE:
        cache[workflow] = (time.monotonic(), result)
    return result


async def _count(durable: Durable, workflow: str | None) -> dict[str, Any]:
    counts = dict.fromkeys(STATUSES, 0)
    seen = 0
    cursor: str | None = None
    while True:
        page, cursor = await durable.list_executions_page(workflow, limit=_COUNT_PAGE, cursor=cursor)
        for record in page:
            counts[record.status.value] += 1
        seen += len(page)
        if cursor is None or seen >= COUNT_CAP:
            break
    return {"counts": counts, "total": seen, "capped": cursor is not None}


async def execution_list(
    durable: Durable,
    *,
    workflow: str | None = None,
    status: list[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    execution_id: str | None = None,
) -> dict[str, Any]:
    """A page of executions, newest first, with the counts per status of the same workflow filter."""
    if execution_id:
        record = await durable.get_execution(execution_id)
        rows, next_cursor = ([record] if record is not None else []), None
    else:
        rows, next_cursor = await durable.list_executions_page(
            workflow,
            status or None,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
    counts = await status_counts(durable, workflow)
    return {
        "executions": [summary(r) for r in rows],
        "next_cursor": next_cursor,
        **counts,
    }


def _timeline(record: ExecutionRecord, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in history order; `duration_ms` is the time since the previous checkpoint (or the start)."""
    previous = record.started_at or record.created_at
    out = []
    for step in steps:
        at = datetime.fromisoformat(step["at"]) if step.get("at") else None
        duration = None
        if at is not None and previous is not None:
            duration = max(0, round((at - previous).total_seconds() * 1000))
            previous = at
        out.append({**step, "duration_ms": duration})
    return out


def _current_wait(record: ExecutionRecord, steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What a suspended execution waits for: a sleep's end, a signal, a retry's next attempt."""
    for step in steps:
        meta = step.get("meta") or {}
        if step["status"] == StepStatus.RETRY.value:
            return {"kind": "retry", "step_id": step["step_id"], "until": _iso_ms(meta.get("next_at"))}
    if record.status == Status.SLEEPING:
        until = record.wake_at.isoformat() if record.wake_at else None
        return {"kind": "sleep", "step_id": record.current_step, "until": until}
    if record.status == Status.WAITING:
        deadline = None
        for step in steps:
            if step["step_id"] == record.current_step:
                deadline = _iso_ms((step.get("meta") or {}).get("deadline"))
        return {
            "kind": "signal",
            "step_id": record.current_step,
            "signal": record.waiting_for,
            "until": deadline,
        }
    return None


def _flow(durable: Durable, record: ExecutionRecord, taken: set[str]) -> dict[str, Any] | None:
    """The workflow's static shape (`Durable.describe`) with the steps this execution took marked;
    None when this dashboard does not have the workflow's code (start it with --app)."""
    try:
        shape = durable.describe(record.workflow_id, record.input)
    except WorkflowNotFound:
        return None
    data = shape.to_dict()
    for node in data["nodes"]:
        node["taken"] = node["id"] in taken
        node["current"] = node["id"] == record.current_step and not record.is_final
    return data


async def execution_view(durable: Durable, execution_id: str) -> dict[str, Any]:
    """Everything about one execution. Raises `ExecutionNotFound`."""
    record = await durable.get_execution(execution_id)
    if record is None:
        raise ExecutionNotFound(f"execution {execution_id!r} does not exist", execution_id=execution_id)
    steps_records, audit = await asyncio.gather(
        durable.list_step_results(execution_id), durable.list_audit_entries(execution_id)
    )
    steps = [s.to_dict() for s in steps_records]
    flow = _flow(durable, record, {s["step_id"] for s in steps})
    return {
        "execution": record.to_dict(),
        "steps": _timeline(record, steps),
        "audit": [a.to_dict() for a in audit],
        "wait": _current_wait(record, steps),
        "flow": flow,
        "signals": sorted(_known_signals(flow, record)),
    }


def _known_signals(flow: dict[str, Any] | None, record: ExecutionRecord) -> set[str]:
    names = {n["signal"] for n in (flow or {}).get("nodes", []) if n.get("kind") == "waitForSignal"}
    if record.waiting_for and record.status == Status.WAITING:  # not a concurrency slot's wait
        names.add(record.waiting_for)
    return names


async def workflow_list(durable: Durable, *, failures: int = 5) -> list[dict[str, Any]]:
    """Registered workflows and those seen in executions, with counts per status and recent failures."""
    # The client's own workflows (`durable dashboard` builds it with those its --app modules register).
    registered = set(durable.registry)
    per: dict[str, dict[str, int]] = {}
    seen = 0
    cursor: str | None = None
    while True:
        page, cursor = await durable.list_executions_page(limit=_COUNT_PAGE, cursor=cursor)
        for record in page:
            counts = per.setdefault(record.workflow_id, dict.fromkeys(STATUSES, 0))
            counts[record.status.value] += 1
        seen += len(page)
        if cursor is None or seen >= COUNT_CAP:
            break
    capped = cursor is not None
    out = []
    for workflow_id in sorted(registered | set(per)):
        failed = await durable.list_executions(workflow_id, Status.FAILED, limit=failures)
        definition = durable.lookup(workflow_id)
        out.append(
            {
                "workflow_id": workflow_id,
                "registered": workflow_id in registered,
                "category": definition.category if definition else None,
                "counts": per.get(workflow_id, dict.fromkeys(STATUSES, 0)),
                "capped": capped,
                "recent_failures": [
                    {
                        **summary(r),
                        "error": (r.error or {}).get("message"),
                        "error_type": (r.error or {}).get("type"),
                    }
                    for r in failed
                ],
            }
        )
    return out


async def _recent_runs(
    durable: Durable, schedule_id: str, workflow_id: str, limit: int
) -> list[dict[str, Any]]:
    """The schedule's newest runs: executions of its workflow whose id is `<schedule id>@...`."""
    prefix = f"{schedule_id}@"
    runs: list[dict[str, Any]] = []
    cursor: str | None = None
    scanned = 0
    while len(runs) < limit and scanned < 2000:
        page, cursor = await durable.list_executions_page(workflow_id, limit=200, cursor=cursor)
        scanned += len(page)
        runs.extend(summary(r) for r in page if r.execution_id.startswith(prefix))
        if cursor is None:
            break
    return runs[:limit]


async def schedule_list(durable: Durable, *, runs: int = 3) -> list[dict[str, Any]]:
    infos = await durable.schedules.list()
    recent = await asyncio.gather(*(_recent_runs(durable, i.schedule_id, i.workflow_id, runs) for i in infos))
    return [{**i.to_dict(), "recent_runs": r} for i, r in zip(infos, recent, strict=True)]


async def schedule_view(durable: Durable, schedule_id: str) -> dict[str, Any]:
    """One schedule with its recent runs and audit trail. Raises `ScheduleNotFound`."""
    info = await durable.schedules.get(schedule_id)
    runs, audit = await asyncio.gather(
        _recent_runs(durable, schedule_id, info.workflow_id, 20), durable.schedules.audit(schedule_id)
    )
    return {"schedule": info.to_dict(), "recent_runs": runs, "audit": [a.to_dict() for a in audit]}


def error_status(exc: DurableError) -> int:
    """The HTTP status of a client error."""
    name = type(exc).__name__
    if name.endswith("NotFound"):
        return 404
    if name in ("StoreUnavailable",):
        return 503
    if name in ("ExecutionFinished", "ExecutionNotFailed", "ExecutionConflict"):
        return 409
    return 400
