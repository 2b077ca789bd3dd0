"""`Durable`, the client: starts and reads executions (`ExecutionClient`), signals, cancels, retries
and skips steps of them, reads their history, holds the schedules client and makes workers."""

from __future__ import annotations

import asyncio
import functools
import getpass
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from .. import _codec
from .._errors import (
    ExecutionNotFailed,
    InvalidStepId,
    SignalPayloadError,
)
from .._history import StepKind, StepRecord, StepStatus, signal_result
from .._records import (
    AuditEntry,
    ExecutionId,
    Status,
    ms_to_dt,
    now_ms,
)
from .._store._base import (
    CHECKED_BY_MODEL,
    SchemaCheckNeeded,
    Store,
    schema_digest,
)
from .._store._memory import MemoryStore
from .._worker._children import settle_quietly
from .._worker._worker import Worker
from .._workflow._children import children_of
from .._workflow._definitions import (
    Signal,
    WorkflowDef,
    as_definition,
    check_payload_schema,
    resolve_signal,
)
from .._workflow._timeouts import check_timeout
from ._executions import ExecutionClient
from ._schedules import ScheduleClient
from ._versions import VersionClient

_P = ParamSpec("_P")
_R = TypeVar("_R")

# How long a `Durable` trusts its copy of the published signal schemas (workers publish at start).
_SCHEMA_TTL_S = 30.0


def _alias(
    method: Callable[Concatenate[ScheduleClient, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[Durable, _P], Coroutine[Any, Any, _R]]:
    """A `Durable` method that calls `method` on `durable.schedules`, with its signature."""
    name = method.__name__

    async def forward(self: Durable, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        # Looked up per call: a subclass's or a test's replacement of the method is the one called.
        target: Callable[_P, Coroutine[Any, Any, _R]] = getattr(self.schedules, name)
        return await target(*args, **kwargs)

    functools.update_wrapper(forward, method)
    forward.__doc__ = f"Alias of `schedules.{name}` (its name in earlier versions).\n\n{method.__doc__ or ''}"
    return forward


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database in some containers
        return "unknown"


def decode_step(step_id: str, raw: bytes) -> StepRecord:
    return StepRecord.decode(step_id, raw)


class Durable(ExecutionClient):
    """Start, signal, inspect and run durable workflow executions; `schedules` holds the schedules,
    `versions` the worker versions.

    `store` is a `Store`, a URL (`memory://`, `redis://…`) or None for a fresh `MemoryStore`.
    `workflows` are the `@workflow` functions this process knows. A process that only starts
    executions by id for workers elsewhere (the operator) passes `allow_unregistered=True`.

    The schedule methods of earlier versions stay as aliases of `schedules`' methods: `schedule`
    (`once`), `ensure_schedule`, `update_schedule`, `pause_schedule`, `resume_schedule`,
    `get_schedule`, `list_schedules`, `list_schedule_audit` (`audit`), `remove_schedule`.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        workflows: Iterable[Any] = (),
        *,
        allow_unregistered: bool = False,
        actor: str | None = None,
        default_timeout: float | timedelta | None = None,
    ) -> None:
        # Checked before a store is opened from a URL: a bad value changes nothing.
        default_timeout_ms = check_timeout("default_timeout", default_timeout)
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str):
            store = Store.from_url(store)
        registry: dict[str, WorkflowDef] = {}
        for wf in workflows:
            definition = as_definition(wf)
            registry[definition.workflow_id] = definition
        super().__init__(
            store,
            registry,
            allow_unregistered=allow_unregistered,
            actor=actor or _default_actor(),
            default_timeout_ms=default_timeout_ms,
        )
        self.schedules = ScheduleClient(self.store, self._resolve_workflow, actor=self.actor)
        self.versions = VersionClient(self.store, actor=self.actor)
        # (monotonic time read, schemas): the published signal schemas, for senders without the model.
        self._published: tuple[float, dict[str, bytes]] = (-_SCHEMA_TTL_S - 1, {})

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
                    own = await self.store.signal_schema(ExecutionId(execution_id), sig.name)
                    if own is None or own == published:
                        raise
                    check_payload_schema(sig.name, own, value)
                    checked = schema_digest(own)
        data = _codec.dumps(value, what=what)
        delivery = delivery_id or uuid.uuid4().hex
        send = functools.partial(
            self.store.send_signal,
            ExecutionId(execution_id),
            sig.name,
            data,
            delivery,
            now_ms(),
            actor or self.actor,
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
        schema = await self.store.signal_schema(ExecutionId(execution_id), sig.name)
        if schema is not None:
            check_payload_schema(sig.name, schema, value)
        return value

    async def cancel(
        self, execution_id: str, reason: str = "cancelled", *, actor: str | None = None
    ) -> Status:
        """Cancel at once if idle; a running execution stops at its next checkpoint. Its children
        started with `on_parent_cancel="cancel"` are cancelled too, and a waiting parent is woken."""
        status = await self.store.cancel(ExecutionId(execution_id), reason, actor or self.actor, now_ms())
        if status.is_final:
            await settle_quietly(self.store, execution_id)
        return status

    async def force_fail(self, execution_id: str, reason: str, *, actor: str | None = None) -> Status:
        """Mark a stuck execution failed with `reason`, like `cancel` but ending `failed`.

        At once if idle (returns failed; error type `ForcedFailure`); a running execution is flagged
        (returns running) and fails at its next checkpoint or when its worker lets go. No compensation
        runs. `retry` re-runs it like any failure. Raises `ValueError` for a blank reason,
        `ExecutionNotFound` or `ExecutionFinished`."""
        status = await self.store.force_fail(ExecutionId(execution_id), reason, actor or self.actor, now_ms())
        if status.is_final:
            await settle_quietly(self.store, execution_id)
        return status

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
            ExecutionId(execution_id), actor or self.actor, now_ms(), discard_signal_step=step
        )

    async def skip_step(
        self, execution_id: str, step_id: str, result: Any = None, *, actor: str | None = None
    ) -> None:
        """Store `result` for a stuck step (retrying, sleeping or waiting) and wake the execution.

        For a signal wait, `result` is the payload: validated like `signal`'s (model or stored schema;
        `SignalPayloadError` writes nothing)."""
        raw = (await self.store.load_steps(ExecutionId(execution_id))).get(step_id)
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
            at_ms=now_ms(),
            meta={**meta, "skipped_by": actor or self.actor},
        )
        await self.store.skip_step(
            ExecutionId(execution_id), step_id, record.encode(), actor or self.actor, now_ms()
        )

    async def recover(self) -> int:
        """Kick every incomplete execution that nothing else will wake (run on worker start-up)."""
        return await self.store.recover(now_ms())

    # ------------------------------------------------------------------ history
    async def list_step_results(self, execution_id: str) -> list[StepRecord]:
        steps = [
            decode_step(k, v) for k, v in (await self.store.load_steps(ExecutionId(execution_id))).items()
        ]
        return sorted(steps, key=lambda s: (s.seq if s.seq >= 0 else 1 << 30, s.at or ms_to_dt(0)))

    async def list_children(self, execution_id: str) -> list[dict[str, Any]]:
        """The child executions `execution_id` started (`ctx.child`, `ctx.start_child`), oldest first:
        {"execution_id", "workflow", "on_parent_cancel"} each. A child's record names its parent (`parent`)."""
        return children_of(await self.list_step_results(execution_id))

    async def list_audit_entries(self, execution_id: str, limit: int = 1000) -> list[AuditEntry]:
        return await self.store.list_audit(ExecutionId(execution_id), limit)

    async def get_execution_detail(self, execution_id: str) -> dict[str, Any]:
        record, steps, audit = await asyncio.gather(
            self._require(execution_id),
            self.list_step_results(execution_id),
            self.list_audit_entries(execution_id),
        )
        return {
            "execution": record.to_dict(),
            "children": children_of(steps),
            "steps": [s.to_dict() for s in steps],
            "audit": [a.to_dict() for a in audit],
        }

    # ------------------------------------------------------------------ schedules (aliases)
    schedule = _alias(ScheduleClient.once)
    ensure_schedule = _alias(ScheduleClient.ensure)
    update_schedule = _alias(ScheduleClient.update)
    pause_schedule = _alias(ScheduleClient.pause)
    resume_schedule = _alias(ScheduleClient.resume)
    get_schedule = _alias(ScheduleClient.get)
    list_schedules = _alias(ScheduleClient.list)
    list_schedule_audit = _alias(ScheduleClient.audit)
    remove_schedule = _alias(ScheduleClient.remove)

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
