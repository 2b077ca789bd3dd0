"""`Durable`: the service object that starts, signals, inspects and runs executions."""

from __future__ import annotations

import asyncio
import functools
import getpass
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .. import _codec
from .._errors import (
    ExecutionCancelledError,
    ExecutionNotFailed,
    ExecutionNotFound,
    InvalidStepId,
    SignalPayloadError,
    WorkflowFailedError,
    WorkflowNotFound,
)
from .._history import StepKind, StepRecord, StepStatus, signal_result
from .._metrics import METRICS
from .._records import (
    AuditEntry,
    ExecutionId,
    ExecutionRecord,
    Status,
    dt_to_ms,
    ms_to_dt,
    now_ms,
)
from .._store._base import (
    CHECKED_BY_MODEL,
    ExecutionQuery,
    IdReuse,
    NewExecution,
    SchemaCheckNeeded,
    Store,
    schema_digest,
)
from .._store._memory import MemoryStore
from .._worker._worker import Worker
from .._workflow._definitions import (
    Signal,
    WorkflowDef,
    as_definition,
    check_payload_schema,
    registered_workflow,
    registered_workflows,
    resolve_signal,
)
from .._workflow._shapes import FlowShape, describe_workflow
from ._schedules import ScheduleClient

# How long a `Durable` trusts its copy of the published signal schemas (workers publish at start).
_SCHEMA_TTL_S = 30.0


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database in some containers
        return "unknown"


def decode_step(step_id: str, raw: bytes) -> StepRecord:
    return StepRecord.decode(step_id, raw)


class Durable(ScheduleClient):
    """Start, signal, inspect and run durable workflow executions.

    `store` is a `Store`, a URL (`memory://`, `redis://…`) or None for a fresh `MemoryStore`.
    `workflows` are the `@workflow` functions this process knows. A process that only starts
    executions by id for workers elsewhere (the operator) passes `allow_unregistered=True`.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        workflows: Iterable[Any] = (),
        *,
        allow_unregistered: bool = False,
        actor: str | None = None,
    ) -> None:
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str):
            store = Store.from_url(store)
        self.store: Store = store
        self.registry: dict[str, WorkflowDef] = {}
        for wf in workflows:
            definition = as_definition(wf)
            self.registry[definition.workflow_id] = definition
        self.allow_unregistered = allow_unregistered
        self.actor = actor or _default_actor()
        # (monotonic time read, schemas): the published signal schemas, for senders without the model.
        self._published: tuple[float, dict[str, bytes]] = (-_SCHEMA_TTL_S - 1, {})

    # ------------------------------------------------------------------ helpers
    def lookup(self, workflow_id: str) -> WorkflowDef | None:
        """This service's own workflows first, then any `@workflow` registered in the process."""
        return self.registry.get(workflow_id) or registered_workflow(workflow_id)

    def _resolve_workflow(self, workflow: Any) -> WorkflowDef:
        if isinstance(workflow, str):
            definition = self.lookup(workflow)
            if definition is None:
                if self.allow_unregistered and workflow.strip():
                    return WorkflowDef(workflow_id=workflow, fn=_unregistered)
                known = (
                    ", ".join(sorted({*self.registry, *(w.workflow_id for w in registered_workflows())}))
                    or "none"
                )
                raise WorkflowNotFound(
                    f"unknown workflow {workflow!r} (registered: {known})", workflow_id=workflow
                )
            return definition
        definition = as_definition(workflow)
        if definition.workflow_id not in self.registry:
            self.registry[definition.workflow_id] = definition
        return definition

    def _validate_input(self, definition: WorkflowDef, value: Any) -> bytes:
        return _codec.dumps(
            definition.validate_input(value), what=f"input of workflow {definition.workflow_id!r}"
        )

    async def _require(self, execution_id: str) -> ExecutionRecord:
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(f"execution {execution_id!r} does not exist", execution_id=execution_id)
        return record

    # ------------------------------------------------------------------ starting and waiting
    async def start(
        self,
        workflow: Any,
        input: Any = None,
        *,
        execution_id: str | None = None,
        actor: str | None = None,
        parent: str | None = None,
        start_at: datetime | None = None,
        id_reuse: IdReuse = "reject",
    ) -> ExecutionId:
        """Create an execution and return its id at once.

        Starting again under an existing `execution_id` is idempotent for the same request (same
        workflow, same input): the id comes back and nothing changes. A different workflow or input
        raises `ExecutionConflict` and changes nothing. `id_reuse="allow_if_finished"` instead starts
        a fresh run under the id when its execution is final (completed, failed or cancelled),
        dropping the old run's history. Invalid input raises `InputValidationError`, writing nothing.
        """
        definition = self._resolve_workflow(workflow)
        encoded = self._validate_input(definition, input)
        eid = ExecutionId(execution_id or uuid.uuid4().hex)
        if not eid or len(eid) > 256 or any(c in eid for c in "{}|\n"):
            raise ValueError(f"execution id {eid!r} must be 1-256 characters without braces, '|' or newlines")
        created = await self.store.create_execution(
            NewExecution(
                execution_id=eid,
                workflow_id=definition.workflow_id,
                input=encoded,
                now_ms=now_ms(),
                category=definition.category,
                parent=parent,
                actor=actor or self.actor,
                start_at_ms=dt_to_ms(start_at) if start_at is not None else None,
                id_reuse=id_reuse,
            )
        )
        if created:
            METRICS.started.labels(workflow=definition.workflow_id).inc()
        return eid

    async def wait(self, execution_id: str, timeout: float | None = None) -> Any:
        """The execution's result once it completes; raises if it failed or was cancelled."""
        record = await self.store.wait_finished(execution_id, timeout)
        if record.status == Status.COMPLETED:
            return record.result
        error = record.error or {}
        message = str(error.get("message") or record.status.value)
        if record.status == Status.CANCELLED:
            raise ExecutionCancelledError(
                f"execution {execution_id!r} was cancelled: {message}", execution_id=execution_id, error=error
            )
        raise WorkflowFailedError(
            f"execution {execution_id!r} failed: {error.get('type', 'Error')}: {message}",
            execution_id=execution_id,
            error=error,
        )

    async def start_and_wait(
        self,
        workflow: Any,
        input: Any = None,
        *,
        timeout: float | None = None,
        execution_id: str | None = None,
        id_reuse: IdReuse = "reject",
    ) -> Any:
        eid = await self.start(workflow, input, execution_id=execution_id, id_reuse=id_reuse)
        return await self.wait(eid, timeout=timeout)

    # ------------------------------------------------------------------ talking to executions
    async def signal(
        self,
        execution_id: str,
        signal: str | Signal[Any],
        payload: Any = None,
        *,
        delivery_id: str | None = None,
        actor: str | None = None,
    ) -> bool:
        """Deliver a signal (buffered if nobody waits yet). False if `delivery_id` was seen before.

        The payload is validated by the signal's model if this process knows it, else by the JSON
        Schema the store holds for it (`Store.signal_schema`); a bad one raises `SignalPayloadError`
        and nothing is delivered.
        """
        sig = resolve_signal(signal)
        what = f"payload of signal {sig.name!r}"
        checked = CHECKED_BY_MODEL
        if sig.schema is not None:
            value = sig.validate(payload)
        else:
            # Without the model: the schema a worker published, if any (cached), and the store
            # refuses the send if the waiter recorded one we did not check (one more round trip then).
            value = _codec.to_plain(payload, what=what)
            published = await self._published_schema(sig.name)
            checked = ""
            if published is not None:
                try:
                    check_payload_schema(sig.name, published, value)
                    checked = schema_digest(published)
                except SignalPayloadError:
                    # The waiter's own schema (the code that waits) wins over the published one.
                    own = await self.store.signal_schema(execution_id, sig.name)
                    if own is None or own == published:
                        raise
                    check_payload_schema(sig.name, own, value)
                    checked = schema_digest(own)
        data = _codec.dumps(value, what=what)
        delivery = delivery_id or uuid.uuid4().hex
        send = functools.partial(
            self.store.send_signal, execution_id, sig.name, data, delivery, now_ms(), actor or self.actor
        )
        try:
            return await send(checked=checked)
        except SchemaCheckNeeded as need:
            check_payload_schema(sig.name, need.schema, value)
            return await send(checked=schema_digest(need.schema))

    async def _published_schema(self, name: str) -> bytes | None:
        """The JSON Schema workers published for signal `name`, read at most every `_SCHEMA_TTL_S`."""
        loaded_at, schemas = self._published
        if time.monotonic() - loaded_at > _SCHEMA_TTL_S:
            schemas = await self.store.published_signal_schemas()
            self._published = (time.monotonic(), schemas)
        return schemas.get(name)

    async def _checked_payload(self, execution_id: str, sig: Signal[Any], payload: Any, *, what: str) -> Any:
        """The payload in its stored form, validated by the model or the stored schema if there is one."""
        if sig.schema is not None:
            return sig.validate(payload)
        value = _codec.to_plain(payload, what=what)
        schema = await self.store.signal_schema(execution_id, sig.name)
        if schema is not None:
            check_payload_schema(sig.name, schema, value)
        return value

    async def cancel(
        self, execution_id: str, reason: str = "cancelled", *, actor: str | None = None
    ) -> Status:
        """Cancel at once if idle; a running execution stops at its next checkpoint."""
        return await self.store.cancel(execution_id, reason, actor or self.actor, now_ms())

    async def retry(
        self, execution_id: str, *, discard_signal: bool = False, actor: str | None = None
    ) -> None:
        """Re-run a failed execution from its failed step; completed steps stay memoized.

        `discard_signal`: the execution failed on the signal its current step consumed (a payload the
        workflow could not use): drop that consumed signal so the wait waits again (for a buffered or
        a new payload, or `skip_step`). Raises `InvalidStepId` if the current step holds no consumed
        signal."""
        step: str | None = None
        if discard_signal:
            record = await self._require(execution_id)
            if record.status != Status.FAILED:
                raise ExecutionNotFailed(
                    f"execution {execution_id!r} is {record.status.value}, not failed",
                    execution_id=execution_id,
                    status=record.status.value,
                )
            step = record.current_step
            if not step:
                raise InvalidStepId(
                    f"execution {execution_id!r} has no current step, so no consumed signal to discard",
                    execution_id=execution_id,
                )
        await self.store.retry_execution(
            execution_id, actor or self.actor, now_ms(), discard_signal_step=step
        )

    async def skip_step(
        self, execution_id: str, step_id: str, result: Any = None, *, actor: str | None = None
    ) -> None:
        """Store `result` for a stuck step (retrying, sleeping or waiting) and wake the execution.

        For a signal wait, `result` is the payload: validated like `signal`'s (model or stored schema;
        `SignalPayloadError` writes nothing)."""
        raw = (await self.store.load_steps(execution_id)).get(step_id)
        stuck = StepRecord.decode(step_id, raw) if raw is not None else None
        seq, kind = (stuck.seq, stuck.kind) if stuck is not None else (-1, StepKind.STEP)
        meta: dict[str, Any] = {}
        value: Any = _codec.to_plain(result, what=f"result for step {step_id!r}", step_id=step_id)
        if stuck is not None and kind == StepKind.SIGNAL:
            meta = stuck.meta
            name = meta.get("signal")
            if isinstance(name, str) and name:
                value = await self._checked_payload(
                    execution_id, resolve_signal(name), value, what=f"result for step {step_id!r}"
                )
                meta = {"signal": name, **({"deadline": meta["deadline"]} if meta.get("deadline") else {})}
            value = signal_result(value)
        record = StepRecord(
            step_id,
            seq,
            kind,
            StepStatus.COMPLETED,
            result=value,
            at=ms_to_dt(now_ms()),
            meta={**meta, "skipped_by": actor or self.actor},
        )
        await self.store.skip_step(execution_id, step_id, record.encode(), actor or self.actor, now_ms())

    async def recover(self) -> int:
        """Kick every incomplete execution that nothing else will wake (run on worker start-up)."""
        return await self.store.recover(now_ms())

    # ------------------------------------------------------------------ inspection
    def describe(self, workflow: Any, input: Any = None) -> FlowShape:
        return describe_workflow(self._resolve_workflow(workflow), input)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        return await self.store.get_execution(execution_id)

    async def list_step_results(self, execution_id: str) -> list[StepRecord]:
        steps = [decode_step(k, v) for k, v in (await self.store.load_steps(execution_id)).items()]
        return sorted(steps, key=lambda s: (s.seq if s.seq >= 0 else 1 << 30, s.at or ms_to_dt(0)))

    async def list_audit_entries(self, execution_id: str, limit: int = 1000) -> list[AuditEntry]:
        return await self.store.list_audit(execution_id, limit)

    async def get_execution_detail(self, execution_id: str) -> dict[str, Any]:
        record, steps, audit = await asyncio.gather(
            self._require(execution_id),
            self.list_step_results(execution_id),
            self.list_audit_entries(execution_id),
        )
        return {
            "execution": record.to_dict(),
            "steps": [s.to_dict() for s in steps],
            "audit": [a.to_dict() for a in audit],
        }

    async def list_executions_page(
        self,
        workflow: str | None = None,
        status: Status | str | Iterable[Status | str] | None = None,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[ExecutionRecord], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if status is None:
            statuses: tuple[Status, ...] = ()
        elif isinstance(status, str):
            statuses = (Status(status),)
        else:
            statuses = tuple(Status(s) for s in status)
        query = ExecutionQuery(
            workflow_id=workflow,
            statuses=statuses,
            created_after_ms=dt_to_ms(created_after) if created_after else None,
            created_before_ms=dt_to_ms(created_before) if created_before else None,
            limit=limit,
            cursor=cursor,
        )
        return await self.store.list_executions(query)

    async def list_executions(
        self,
        workflow: str | None = None,
        status: Status | str | Iterable[Status | str] | None = None,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> list[ExecutionRecord]:
        page, _ = await self.list_executions_page(
            workflow,
            status,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        return page

    async def list_emitted(self, limit: int = 100) -> list[tuple[str, str, Any]]:
        return await self.store.list_emitted(limit)

    # ------------------------------------------------------------------ running
    def worker(self, **options: Any) -> Worker:
        """An in-process worker: `async with durable.worker(concurrency=...) as w: ...`."""
        return Worker(self.store, self.registry, **options)

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Durable:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _unregistered(
    ctx: Any, input: Any
) -> Any:  # pragma: no cover - never run: a placeholder definition
    raise WorkflowNotFound("this process does not serve the workflow")
