"""Starting and reading executions: the part of `Durable` that resolves workflows and creates runs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from .. import _codec
from .._errors import (
    ExecutionCancelledError,
    ExecutionNotFound,
    InputValidationError,
    StoreUnavailable,
    WorkflowFailedError,
    WorkflowNotFound,
)
from .._metrics import METRICS
from .._records import ExecutionId, ExecutionRecord, Status, dt_to_ms
from .._store._base import ExecutionQuery, IdReuse, NewExecution, Store
from .._workflow._context import now_ms
from .._workflow._definitions import WorkflowDef, as_definition, lookup_workflow, registered_workflows
from .._workflow._shapes import FlowShape, describe_workflow
from .._workflow._timeouts import check_timeout

log = logging.getLogger("durable.client")


def concurrency_group(definition: WorkflowDef, encoded: bytes) -> str | None:
    """The concurrency group an execution of `definition` with this input competes in (None: no limit).

    Raises `InputValidationError` (one line) if the workflow's `concurrency_key` fails or returns no str.
    """
    if definition.max_concurrency is None:
        return None
    try:
        return definition.concurrency_group(definition.parse_input(_codec.loads(encoded)))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise InputValidationError(
            f"input for workflow {definition.workflow_id!r}: {reason}",
            workflow_id=definition.workflow_id,
            errors=reason,
        ) from None


def encode_input(definition: WorkflowDef, value: Any) -> bytes:
    """A workflow's input validated against its annotation, in its stored form."""
    return _codec.dumps(
        definition.validate_input(value), what=f"input of workflow {definition.workflow_id!r}"
    )


class ExecutionClient:
    """Starts executions and reads them back; `Durable` adds acting on them, schedules and workers.

    `registry` is kept, not copied: workflows a caller passes by function join it, and a worker
    built on this client serves them too.
    """

    def __init__(
        self,
        store: Store,
        registry: dict[str, WorkflowDef],
        *,
        allow_unregistered: bool,
        actor: str,
        default_timeout_ms: int | None = None,
    ) -> None:
        # The execution time-out of starts that give none, in ms (None: executions have no deadline).
        self.default_timeout_ms = default_timeout_ms
        self.store: Store = store
        self.registry = registry
        self.allow_unregistered = allow_unregistered
        self.actor = actor

    # ------------------------------------------------------------------ helpers
    def lookup(self, workflow_id: str) -> WorkflowDef | None:
        """This service's own workflows first, then any `@workflow` registered in the process."""
        return lookup_workflow(self.registry, workflow_id)

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

    async def _require(self, execution_id: str) -> ExecutionRecord:
        record = await self.store.get_execution(ExecutionId(execution_id))
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
        timeout: float | timedelta | None = None,
    ) -> ExecutionId:
        """Create an execution and return its id at once.

        `timeout` (seconds; default the client's `default_timeout`) gives the execution a deadline that
        long after it starts (`start_at`, or now): its first `ctx.*` call at or after the deadline
        raises `ExecutionTimeout`, which fails the execution unless the workflow catches it. A
        time-out that is not a positive, finite number raises `ValueError`, writing nothing.

        Starting again under an existing `execution_id` is idempotent for the same request (same
        workflow, same input): the id comes back and nothing changes. A different workflow or input
        raises `ExecutionConflict` and changes nothing. `id_reuse="allow_if_finished"` instead starts
        a fresh run under the id when its execution is final (completed, failed or cancelled),
        dropping the old run's history. Invalid input raises `InputValidationError`, writing nothing.
        """
        timeout_ms = check_timeout("timeout", timeout) if timeout is not None else self.default_timeout_ms
        definition = self._resolve_workflow(workflow)
        encoded = encode_input(definition, input)
        eid = ExecutionId(execution_id or uuid.uuid4().hex)
        if not eid or len(eid) > 256 or any(c in eid for c in "{}|\n"):
            raise ValueError(f"execution id {eid!r} must be 1-256 characters without braces, '|' or newlines")
        group = concurrency_group(definition, encoded)
        now = now_ms()
        start_at_ms = dt_to_ms(start_at) if start_at is not None else None
        deadline_ms = None if timeout_ms is None else max(now, start_at_ms or now) + timeout_ms
        created = await self.store.create_execution(
            NewExecution(
                execution_id=eid,
                workflow_id=definition.workflow_id,
                input=encoded,
                now_ms=now,
                category=definition.category,
                parent=parent,
                actor=actor or self.actor,
                start_at_ms=start_at_ms,
                id_reuse=id_reuse,
                deadline_ms=deadline_ms,
            )
        )
        if created:
            METRICS.started.labels(workflow=definition.workflow_id).inc()
            if group is not None and start_at is None:
                # Join the waiting line at once, so slots go in start order (not best effort: without
                # this the first activation joins it).
                try:
                    await self.store.enroll(eid, group, now_ms())
                except StoreUnavailable as exc:
                    log.warning("execution %s: not put in its concurrency line at start (%s)", eid, exc)
        return eid

    async def wait(self, execution_id: str, timeout: float | None = None) -> Any:
        """The execution's result once it completes; raises if it failed or was cancelled."""
        record = await self.store.wait_finished(ExecutionId(execution_id), timeout)
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

    # ------------------------------------------------------------------ reading
    def describe(self, workflow: Any, input: Any = None) -> FlowShape:
        return describe_workflow(self._resolve_workflow(workflow), input)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        return await self.store.get_execution(ExecutionId(execution_id))

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


async def _unregistered(
    ctx: Any, input: Any
) -> Any:  # pragma: no cover - never run: a placeholder definition
    raise WorkflowNotFound("this process does not serve the workflow")
