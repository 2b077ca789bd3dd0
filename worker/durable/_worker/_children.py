"""What happens around a child execution's end, outside its workflow code (see `_workflow/_children`).

`settle_final(store, execution_id)` runs after anything made an execution final (the engine's final
write, a cancel or forced failure applied by a worker or a client): a child's outcome goes to its
parent as the signal the parent's wait consumes (idempotent: one delivery id per child run and attempt),
and a parent's unfinished children with policy `cancel` are cancelled. Both are idempotent and safe to
repeat. A crash between the final write and this is covered elsewhere: the parent's wait re-reads the
child (every activation, and on a re-check timer), and a child whose parent ended is cancelled by its
next activation (`parent_gone`).
"""

from __future__ import annotations

import contextlib
import logging

import orjson

from .._errors import DurableError, ExecutionFinished, ExecutionNotFound
from .._history import StepKind, StepRecord
from .._records import ExecutionId, ExecutionRecord, now_ms
from .._store._base import CHECKED_BY_MODEL, WorkerStore
from .._workflow._children import child_outcome, child_signal_name

log = logging.getLogger("durable.children")


async def settle_final(store: WorkerStore, execution_id: str, record: ExecutionRecord | None = None) -> None:
    """Notify a final execution's parent and cancel its children by policy (idempotent)."""
    if record is None:
        record = await store.get_execution(ExecutionId(execution_id))
    if record is None or not record.is_final:
        return
    if record.parent and record.on_parent_cancel:
        await notify_parent(store, record)
    await cancel_children(store, record)


async def notify_parent(store: WorkerStore, record: ExecutionRecord) -> None:
    assert record.parent is not None
    payload = orjson.dumps(child_outcome(record, record.execution_id))
    delivery = f"__child:{record.execution_id}:{record.run}:{record.attempt}"
    with contextlib.suppress(ExecutionNotFound, ExecutionFinished):  # nobody left to wait for it
        await store.send_signal(
            ExecutionId(record.parent),
            child_signal_name(record.execution_id),
            payload,
            delivery,
            now_ms(),
            f"child:{record.execution_id}",
            checked=CHECKED_BY_MODEL,
        )


async def cancel_children(store: WorkerStore, record: ExecutionRecord) -> None:
    """Cancel the unfinished children of `record` (final) whose policy is `cancel`."""
    steps = await store.load_steps(record.execution_id)
    started: list[tuple[str, str]] = []
    for step_id, raw in steps.items():
        if b'"child"' not in raw:
            continue
        rec = StepRecord.decode(step_id, raw)
        if rec.kind == StepKind.CHILD and isinstance(rec.result, dict):
            started.append(
                (str(rec.result.get("execution_id")), str(rec.result.get("on_parent_cancel", "cancel")))
            )
    await close_children(
        store, record.execution_id, f"parent {record.execution_id} {record.status.value}", started
    )


async def close_children(
    store: WorkerStore, parent_id: str, reason: str, children: list[tuple[str, str]]
) -> None:
    """Cancel those of `children` ((execution id, on_parent_cancel) pairs) whose policy is `cancel`."""
    for child, policy in children:
        if policy != "cancel":
            continue
        try:
            applied = await store.cancel(ExecutionId(child), reason, f"parent:{parent_id}", now_ms())
        except (ExecutionNotFound, ExecutionFinished):
            continue
        log.info("child %s of %s: %s (%s)", child, parent_id, applied.value, reason)
        if applied.is_final:
            await settle_final(store, child)


async def parent_gone(store: WorkerStore, record: ExecutionRecord) -> bool:
    """Whether `record` is a child (policy cancel) whose parent has ended: it must not run on."""
    if not record.parent or record.on_parent_cancel != "cancel":
        return False
    parent = await store.get_execution(ExecutionId(record.parent))
    return parent is None or parent.is_final


async def settle_quietly(store: WorkerStore, execution_id: str) -> None:
    """`settle_final`, logging instead of raising: the safety nets cover what it could not do."""
    try:
        await settle_final(store, execution_id)
    except (DurableError, OSError) as exc:
        log.warning(
            "execution %s: parent/children not settled now (%s); the safety net will", execution_id, exc
        )


__all__ = [
    "cancel_children",
    "close_children",
    "notify_parent",
    "parent_gone",
    "settle_final",
    "settle_quietly",
]
