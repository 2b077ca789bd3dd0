"""Child workflows: `ctx.child`, `ctx.start_child` and the `ChildHandle` it returns.

Starting a child is two writes: the child execution is created (idempotent: the same id and input is
a no-op), then the parent records it (kind `child`). A crash in between re-creates it on replay, which
changes nothing. Waiting for a child (kind `child_result`) is a signal wait for `__child:<child id>`:
whoever makes the child final sends its outcome to the parent as that signal (`notify_parent`), and
the store consumes it in the same atomic write that would suspend the parent, so a child that ends
before the parent suspends is not missed. As a safety net for a notification lost to a crash, every
activation that reaches the wait reads the child's record first, and the suspended wait re-checks on
a timer (`RECHECK_MS`, doubling up to `RECHECK_MAX_MS`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from .. import _codec
from .._errors import (
    ChildWorkflowCancelled,
    ChildWorkflowError,
    DurableError,
    PermanentError,
    WorkflowNotFound,
)
from .._history import PAYLOAD_SLOT, StepKind, StepRecord, StepStatus
from .._records import ExecutionId, ExecutionRecord, Status, now_ms
from .._store._base import (
    CHECKED_BY_MODEL,
    AuditDraft,
    NewExecution,
    SchemaCheckNeeded,
    SignalWait,
    schema_digest,
)
from ._definitions import (
    Signal,
    WorkflowDef,
    as_definition,
    check_payload_schema,
    lookup_workflow,
    resolve_signal,
)
from ._replay import ReplayContext

ON_PARENT_CANCEL = ("cancel", "abandon")
OnParentCancel = Literal["cancel", "abandon"]

# The safety net's re-check of a suspended child wait: first after this long, then doubling.
RECHECK_MS = 60_000
RECHECK_MAX_MS = 3_600_000

_CHILD = StepKind.CHILD
_CHILD_RESULT = StepKind.CHILD_RESULT
_CHILD_SIGNAL = StepKind.CHILD_SIGNAL
_COMPLETED = StepStatus.COMPLETED
_WAITING = StepStatus.WAITING


def child_signal_name(child_id: str) -> str:
    """The signal that carries a child's outcome to its parent."""
    return f"__child:{child_id}"


def child_outcome(record: ExecutionRecord | None, child_id: str) -> dict[str, Any]:
    """What a parent records when its child `record` is final (or gone: a failure)."""
    if record is None:
        return {
            "status": "failed",
            "result": None,
            "error": {"type": "ExecutionNotFound", "message": f"child execution {child_id!r} does not exist"},
        }
    return {"status": record.status.value, "result": record.result, "error": record.error}


def children_of(steps: Iterable[StepRecord]) -> list[dict[str, Any]]:
    """The children a history started, in order: {"execution_id", "workflow", "on_parent_cancel"} each."""
    started = [s for s in steps if s.kind == _CHILD and isinstance(s.result, dict)]
    started.sort(key=lambda s: s.seq)
    return [
        {
            "execution_id": s.result.get("execution_id"),
            "workflow": s.result.get("workflow"),
            "on_parent_cancel": s.result.get("on_parent_cancel", "cancel"),
        }
        for s in started
    ]


def check_execution_id(execution_id: Any) -> str:
    """A valid execution id, or `ValueError` (the rule `Durable.start` applies)."""
    if (
        not isinstance(execution_id, str)
        or not execution_id
        or len(execution_id) > 256
        or any(c in execution_id for c in "{}|\n")
    ):
        raise ValueError(
            f"execution id {execution_id!r} must be 1-256 characters without braces, '|' or newlines"
        )
    return execution_id


def derived_child_id(parent_id: str, step_id: str) -> str:
    """The child's id when none is given: the parent's id and the starting step's, or a digest of them."""
    candidate = f"{parent_id}:{step_id}"
    try:
        return check_execution_id(candidate)
    except ValueError:
        digest = hashlib.sha256(f"{parent_id}\x00{step_id}".encode()).hexdigest()[:24]
        base = "".join(c for c in parent_id if c not in "{}|\n")[:200]
        return f"{base}:child-{digest}"


class ChildHandle:
    """A started child execution (`ctx.start_child`): `await handle.result()`, `await handle.signal(...)`."""

    __slots__ = ("_ctx", "execution_id", "workflow_id")

    def __init__(self, ctx: Children, execution_id: str, workflow_id: str) -> None:
        self._ctx = ctx
        self.execution_id = execution_id
        self.workflow_id = workflow_id

    async def result(self, *, step_id: str | None = None) -> Any:
        """Wait (durably) for the child to end: its result, or `ChildWorkflowError`/`ChildWorkflowCancelled`."""
        return await self._ctx._wait_child(self.execution_id, self.workflow_id, step_id)

    async def signal(
        self, signal: str | Signal[Any], payload: Any = None, *, step_id: str | None = None
    ) -> None:
        """Send the child a signal, once (a recorded step; a replay re-sends with the same delivery id)."""
        await self._ctx._signal_child(self.execution_id, signal, payload, step_id)

    def __repr__(self) -> str:
        return f"ChildHandle(execution_id={self.execution_id!r}, workflow_id={self.workflow_id!r})"


class Children(ReplayContext):
    """`ctx.child`, `ctx.start_child`."""

    async def child(
        self,
        workflow: Any,
        input: Any = None,
        *,
        execution_id: str | None = None,
        on_parent_cancel: OnParentCancel = "cancel",
        step_id: str | None = None,
    ) -> Any:
        """Start a child execution and wait for it durably: its result, or its error raised as
        `ChildWorkflowError` (`ChildWorkflowCancelled` if it was cancelled)."""
        handle = await self.start_child(
            workflow, input, execution_id=execution_id, on_parent_cancel=on_parent_cancel, step_id=step_id
        )
        return await handle.result()

    async def start_child(
        self,
        workflow: Any,
        input: Any = None,
        *,
        execution_id: str | None = None,
        on_parent_cancel: OnParentCancel = "cancel",
        step_id: str | None = None,
    ) -> ChildHandle:
        """Start a child execution (id `<parent id>:<step id>` unless given) and return its handle."""
        if on_parent_cancel not in ON_PARENT_CANCEL:
            raise ValueError(f"on_parent_cancel must be one of cancel, abandon, got {on_parent_cancel!r}")
        if execution_id is not None:
            check_execution_id(execution_id)
        sid = step_id or self._peek_id("__child:")
        seq, rec = self._next(sid, _CHILD, user=step_id is not None)
        if rec is not None and rec.status == _COMPLETED and isinstance(rec.result, dict):
            started = rec.result
            child_id = str(started.get("execution_id"))
            self._activation.children.append((child_id, str(started.get("on_parent_cancel", "cancel"))))
            return ChildHandle(self, child_id, str(started.get("workflow")))
        # Only a call that starts the child needs its workflow (a replay does not look it up again).
        definition = self._child_definition(workflow)
        encoded = _codec.dumps(
            definition.validate_input(input), what=f"input of workflow {definition.workflow_id!r}"
        )
        child_id = execution_id or derived_child_id(self.execution_id, sid)
        activation = self._activation
        await activation.flush()  # what came before is durable before the child can be seen
        store: Any = activation._store()
        try:
            await store.create_execution(
                NewExecution(
                    execution_id=ExecutionId(child_id),
                    workflow_id=definition.workflow_id,
                    input=encoded,
                    now_ms=now_ms(),
                    category=definition.category,
                    parent=self.execution_id,
                    actor=f"workflow:{self.execution_id}",
                    on_parent_cancel=on_parent_cancel,
                )
            )
        except PermanentError:
            raise  # a conflicting execution under the id: the workflow's to handle
        except Exception as exc:
            raise activation._abandon(exc) from exc
        started = {
            "execution_id": child_id,
            "workflow": definition.workflow_id,
            "on_parent_cancel": on_parent_cancel,
        }
        activation.buffer(
            StepRecord(sid, seq, _CHILD, _COMPLETED, result=started, at_ms=now_ms()),
            AuditDraft(
                kind="child.started",
                message=f"child {child_id} ({definition.workflow_id}) started",
                step_id=sid,
            ),
            current=True,
        )
        await activation.flush()
        activation.children.append((child_id, on_parent_cancel))
        return ChildHandle(self, child_id, definition.workflow_id)

    def _child_definition(self, workflow: Any) -> WorkflowDef:
        if isinstance(workflow, str):
            lookup = self._activation.lookup
            definition = lookup(workflow) if lookup is not None else lookup_workflow({}, workflow)
            if not isinstance(definition, WorkflowDef):
                raise WorkflowNotFound(
                    f"ctx.child: unknown workflow {workflow!r} (not served by this worker)",
                    workflow_id=workflow,
                )
            return definition
        try:
            return as_definition(workflow)
        except TypeError as exc:
            raise WorkflowNotFound(f"ctx.child: {exc}") from None

    async def _wait_child(self, child_id: str, workflow_id: str, step_id: str | None) -> Any:
        rid = step_id or self._peek_id("__child_result:")
        seq, rec = self._next(rid, _CHILD_RESULT, user=step_id is not None)
        if rec is not None and rec.status == _COMPLETED:
            return _settle(rec.result, child_id, workflow_id)
        activation = self._activation
        checks = int(rec.meta.get("checks", 0)) if rec is not None else 0
        store: Any = activation._store()
        try:
            current = await store.get_execution(ExecutionId(child_id))
        except Exception as exc:
            raise activation._abandon(exc) from exc
        meta = {"child": child_id, "workflow": workflow_id}
        if current is None or current.is_final:
            outcome = child_outcome(current, child_id)
            activation.buffer(
                StepRecord(rid, seq, _CHILD_RESULT, _COMPLETED, result=outcome, at_ms=now_ms(), meta=meta),
                AuditDraft(kind="child.done", message=f"child {child_id} {outcome['status']}", step_id=rid),
                current=True,
            )
            await activation.flush()
            return _settle(outcome, child_id, workflow_id)
        now = now_ms()
        activation.buffer(
            StepRecord(rid, seq, _CHILD_RESULT, _WAITING, at_ms=now, meta={**meta, "checks": checks + 1}),
            AuditDraft(kind="child.wait", message=f"waiting for child {child_id}", step_id=rid)
            if rec is None
            else None,
            current=True,
        )
        consumed = StepRecord(rid, seq, _CHILD_RESULT, _COMPLETED, result=PAYLOAD_SLOT, at_ms=now, meta=meta)
        prefix, suffix = consumed.split_at_slot()
        recheck = min(RECHECK_MAX_MS, RECHECK_MS * (1 << min(checks, 16)))
        _kind, payload = await activation.suspend(
            Status.WAITING,
            wake_at_ms=now + recheck,
            timer_id=rid,
            wait=SignalWait(
                name=child_signal_name(child_id), step_id=rid, record_prefix=prefix, record_suffix=suffix
            ),
        )
        return _settle(_codec.loads(payload) if payload is not None else None, child_id, workflow_id)

    async def _signal_child(
        self, child_id: str, signal: str | Signal[Any], payload: Any, step_id: str | None
    ) -> None:
        sig = resolve_signal(signal)
        sid = step_id or self._peek_id("__child_signal:")
        seq, rec = self._next(sid, _CHILD_SIGNAL, user=step_id is not None)
        if rec is not None and rec.status == _COMPLETED:
            return
        what = f"payload of signal {sig.name!r}"
        if sig.schema is not None:
            value = sig.validate(payload)
            checked = CHECKED_BY_MODEL
        else:
            value = _codec.to_plain(payload, what=what)
            checked = ""
        data = _codec.dumps(value, what=what)
        activation = self._activation
        await activation.flush()
        store: Any = activation._store()
        delivery = f"{self.execution_id}:{sid}"
        try:
            try:
                await store.send_signal(
                    ExecutionId(child_id), sig.name, data, delivery, now_ms(), f"workflow:{self.execution_id}",
                    checked=checked,
                )  # fmt: skip
            except SchemaCheckNeeded as need:
                check_payload_schema(sig.name, need.schema, value)
                await store.send_signal(
                    ExecutionId(child_id), sig.name, data, delivery, now_ms(), f"workflow:{self.execution_id}",
                    checked=schema_digest(need.schema),
                )  # fmt: skip
        except (PermanentError, DurableError) as exc:
            if exc.retryable:
                raise activation._abandon(exc) from exc
            raise
        except Exception as exc:
            raise activation._abandon(exc) from exc
        activation.buffer(
            StepRecord(
                sid,
                seq,
                _CHILD_SIGNAL,
                _COMPLETED,
                at_ms=now_ms(),
                meta={"child": child_id, "signal": sig.name},
            ),
            AuditDraft(
                kind="child.signal", message=f"signal {sig.name} sent to child {child_id}", step_id=sid
            ),
            current=True,
        )
        await activation.flush()


def _settle(outcome: Any, child_id: str, workflow_id: str) -> Any:
    """The child's result, or its failure raised."""
    if not isinstance(outcome, dict):
        outcome = {"status": "failed", "result": None, "error": {"type": "Error", "message": repr(outcome)}}
    status = outcome.get("status")
    if status == Status.COMPLETED:
        return outcome.get("result")
    error = outcome.get("error") or {}
    message = str(error.get("message") or status)
    cls = ChildWorkflowCancelled if status == Status.CANCELLED else ChildWorkflowError
    verb = "was cancelled" if status == Status.CANCELLED else f"failed: {error.get('type', 'Error')}"
    raise cls(
        f"child execution {child_id!r} ({workflow_id}) {verb}: {message}",
        child_execution_id=child_id,
        workflow_id=workflow_id,
        status=str(status),
        error=error,
    )
