"""The replay engine: one activation of one execution, from lease to commit.

acquire (lease + whole history, one round trip) → run the workflow from the top through
a `WorkflowContext` → finish, or a committed suspension, or abandon on a lost lease.
The engine talks to the run through its `Activation` (what is left to write, whether a store
fault abandoned it), never through the context's internals. It keeps nothing about an execution
once the activation ends.

A store fault during the activation (the store unreachable or slow, the lease lost) reaches the
workflow as `ActivationAbandoned`, which `except Exception` cannot catch; the engine then writes
nothing more and hands the fault to the worker, which runs the execution again after a back-off.
It never marks the execution failed for a fault that was not the workflow's.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Literal

from .. import _codec
from .._errors import (
    ActivationAbandoned,
    Cancelled,
    ContinueAsNew,
    DurableError,
    LeaseLost,
    StoreUnavailable,
    Suspend,
    describe_exception,
)
from .._metrics import METRICS
from .._records import ExecutionId, Status, dt_to_ms, now_ms
from .._store._base import WorkerStore
from .._workflow._activation import Activation
from .._workflow._context import WorkflowContext, current_context
from .._workflow._definitions import DEFAULT_HISTORY_LIMIT, HistoryLimit, WorkflowDef
from .._workflow._history_guard import HistoryBudget
from ._children import close_children, parent_gone, settle_quietly

log = logging.getLogger("durable.engine")

Outcome = Literal[
    "completed",
    "failed",
    "cancelled",  # stopped at an operator's request: a cancel, or a forced failure (`force_fail`)
    "suspended",
    "busy",
    "finished",
    "missing",
    "moved",
    "lease_lost",
    "unserved",
    "continued",  # ctx.continue_as_new: the next run is queued under the same id
    "parked",  # waits for a concurrency slot (`@workflow(max_concurrency=...)`); the admission acked its entry
]

# Outcomes whose final write or suspension acknowledged the queue entry passed to `Engine.run`.
ACKED: frozenset[Outcome] = frozenset({"completed", "failed", "suspended", "continued", "parked"})

# Retry an execution whose workflow this worker does not serve after this long (another pool may).
_UNSERVED_RETRY_MS = 5_000


class Engine:
    def __init__(
        self,
        store: WorkerStore,
        lookup: Callable[[str], WorkflowDef | None],
        *,
        worker_id: str,
        lease_ttl_ms: int,
        executor: Executor | None = None,
        forbid_bodies: bool = False,
        history_limit: HistoryLimit | None = None,
    ) -> None:
        self.store = store
        # The history-size guard of workflows that set none of their own.
        self.history_limit = history_limit or DEFAULT_HISTORY_LIMIT
        self.lookup = lookup
        self.forbid_bodies = forbid_bodies
        self.worker_id = worker_id
        self.lease_ttl_ms = lease_ttl_ms
        self.executor = executor
        # Leases this engine holds right now; the worker renews them.
        self.active: dict[str, int] = {}
        # Leases of activations abandoned because the store was unreachable: released before the
        # execution's next activation here, so the retry need not wait for the lease to expire.
        self._unreleased: dict[str, int] = {}
        # Executions whose acquire is under way here.
        self._acquiring: set[str] = set()

    async def run(self, execution_id: ExecutionId, entry_id: str | None = None) -> Outcome:
        """One activation. With `entry_id` (the queue entry that started it), a suspension or final
        write acknowledges that entry in the same atomic step (outcomes in `ACKED`); the caller
        acknowledges it otherwise."""
        store = self.store
        held = self._unreleased.get(execution_id)
        if held is not None:
            await store.release(execution_id, self.worker_id, held)
            del self._unreleased[execution_id]
        # A lease under our worker id while we run nothing of this execution is an orphan: an acquire
        # whose answer the connection lost. Taking it over spares waiting out its time-to-live.
        own_orphan = execution_id not in self.active and execution_id not in self._acquiring
        self._acquiring.add(execution_id)
        try:
            acquired = await store.acquire(
                execution_id, self.worker_id, self.lease_ttl_ms, now_ms(), own_orphan=own_orphan
            )
        finally:
            self._acquiring.discard(execution_id)
        if acquired.outcome == "busy":
            # The holder re-enqueues on release; this timer covers a holder that died.
            jitter = random.randint(5, 50)
            await store.add_timer(execution_id, "lease", now_ms() + acquired.retry_after_ms + jitter)
            return "busy"
        if acquired.outcome != "ok":
            if acquired.outcome == "finished":
                # Perhaps a cancel this acquire applied, or a repeated entry: give back a concurrency
                # slot it held and settle its parent/child links (both idempotent).
                await self._free_slot(execution_id)
                await settle_quietly(store, execution_id)
            return acquired.outcome
        record = acquired.record
        assert record is not None
        token = acquired.token
        if record.parent and await parent_gone(store, record):
            # A child whose parent ended (and whose cancel was lost to a crash): it runs no further.
            await store.cancel(
                execution_id, f"parent {record.parent} ended", f"parent:{record.parent}", now_ms()
            )
            await store.release(execution_id, self.worker_id, token)
            await self._free_slot(execution_id)
            await settle_quietly(store, execution_id)
            METRICS.finished(record.workflow_id, "cancelled")
            return "cancelled"
        definition = self.lookup(record.workflow_id)
        if definition is None:
            log.warning(
                "execution %s: workflow %r is not served by this worker; retrying later",
                execution_id,
                record.workflow_id,
            )
            await store.release(execution_id, self.worker_id, token)
            await store.add_timer(execution_id, "unserved", now_ms() + _UNSERVED_RETRY_MS)
            return "unserved"
        self.active[execution_id] = token
        activation = Activation(
            store,
            execution_id,
            token,
            self.worker_id,
            self.executor,
            forbid_bodies=self.forbid_bodies,
            ack=entry_id,
            lookup=self.lookup,
        )
        ctx = WorkflowContext(
            activation,
            execution_id=execution_id,
            workflow_id=record.workflow_id,
            history=acquired.steps,
            attempt=record.attempt,
            deadline_ms=None if record.deadline is None else dt_to_ms(record.deadline),
        )
        activation.budget = HistoryBudget(
            execution_id, definition.history_limit or self.history_limit, acquired.steps
        )
        reset = current_context.set(ctx)
        try:
            outcome = await self._drive(definition, ctx, activation, record.input)
            if outcome in ("completed", "failed", "cancelled") and (record.parent or activation.children):
                await settle_quietly(store, execution_id)
            return outcome
        except StoreUnavailable:
            # Nothing more was written; the caller retries after a back-off.
            self._unreleased[execution_id] = token
            raise
        finally:
            current_context.reset(reset)
            self.active.pop(execution_id, None)

    async def _drive(
        self, definition: WorkflowDef, ctx: WorkflowContext, activation: Activation, stored_input: object
    ) -> Outcome:
        store = self.store
        execution_id = activation.execution_id
        token = activation.token
        workflow_id = definition.workflow_id
        try:
            if definition.max_concurrency is not None:
                refused = await self._admit(definition, activation, stored_input)
                if refused is not None:
                    return refused
            try:
                value = definition.parse_input(stored_input)
                result = await definition.fn(ctx, value)
                encoded = _codec.dumps(result, what=f"result of workflow {workflow_id!r}")
            except Suspend:
                return "suspended"
            except ContinueAsNew as cont:
                if activation.abandoned is not None:  # the workflow caught the abandonment and went on
                    raise _abandoned(execution_id, activation.abandoned) from None
                return await self._continue_as_new(definition, activation, cont.encoded_input)
            except Cancelled:
                # The store applies the pending cancel (or forced failure) as soon as our lease is
                # gone. Either way the run stops here, before any compensation could run.
                applied = await store.release(execution_id, self.worker_id, token)
                METRICS.finished(workflow_id, "failed" if applied == Status.FAILED else "cancelled")
                await self._free_slot(execution_id, definition)
                return "cancelled"
            except ActivationAbandoned as abandoned:
                raise _abandoned(execution_id, abandoned) from None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if activation.abandoned is not None:  # the workflow caught the abandonment and raised anew
                    raise _abandoned(execution_id, activation.abandoned) from None
                await self._fail(definition, activation, exc)
                await self._free_slot(execution_id, definition)
                return "failed"
            if activation.abandoned is not None:  # the workflow caught the abandonment and returned
                raise _abandoned(execution_id, activation.abandoned) from None
            await store.finish(
                execution_id,
                token,
                activation.take_checkpoint(),
                now_ms(),
                status=Status.COMPLETED,
                result=encoded,
                ack=activation.ack,
            )
            METRICS.finished(workflow_id, "completed")
            await self._free_slot(execution_id, definition)
            return "completed"
        except LeaseLost:
            log.warning("execution %s: lease lost to a newer worker; abandoning this run", execution_id)
            return "lease_lost"
        except asyncio.CancelledError:
            # Worker shutdown: hand the execution back at once instead of after the lease expires.
            await asyncio.shield(self._hand_back(execution_id, token))
            raise

    async def _fail(self, definition: WorkflowDef, activation: Activation, exc: Exception) -> None:
        """The final write of an execution whose workflow raised `exc` (with what it buffered)."""
        execution_id = activation.execution_id
        log.info("execution %s failed: %s: %s", execution_id, type(exc).__name__, exc)
        await self.store.finish(
            execution_id,
            activation.token,
            activation.take_checkpoint(),
            now_ms(),
            status=Status.FAILED,
            error=_codec.dumps(describe_exception(exc), what="error"),
            ack=activation.ack,
        )
        METRICS.finished(definition.workflow_id, "failed")

    async def _continue_as_new(
        self, definition: WorkflowDef, activation: Activation, encoded_input: bytes
    ) -> Outcome:
        """`ctx.continue_as_new`: one write ends this run and queues the next under the same id."""
        store = self.store
        execution_id = activation.execution_id
        stopped = await store.continue_as_new(
            execution_id,
            activation.token,
            activation.take_checkpoint(),
            now_ms(),
            input=encoded_input,
            ack=activation.ack,
        )
        if stopped:  # a cancel (or forced failure) was requested: it applies as we let go
            applied = await store.release(execution_id, self.worker_id, activation.token)
            METRICS.finished(definition.workflow_id, "failed" if applied == Status.FAILED else "cancelled")
            await self._free_slot(execution_id, definition)
            return "cancelled"
        log.info("execution %s continued as new", execution_id)
        # The next run's history no longer names this run's children: close them now, as the parent's
        # end would (policy `cancel`), or nothing would.
        started = activation.children
        if started:
            try:
                await close_children(store, execution_id, f"parent {execution_id} continued as new", started)
            except (DurableError, OSError) as exc:
                log.warning("execution %s: children not closed on continue-as-new (%s)", execution_id, exc)
        return "continued"

    async def _admit(
        self, definition: WorkflowDef, activation: Activation, stored_input: object
    ) -> Outcome | None:
        """Take a concurrency slot before the workflow runs; the outcome if this run stops here instead
        (parked in the waiting line, cancelled, or failed by a concurrency key that is not a string)."""
        store = self.store
        execution_id = activation.execution_id
        token = activation.token
        assert definition.max_concurrency is not None
        try:
            group = definition.concurrency_group(definition.parse_input(stored_input))
        except Exception as exc:
            # The key comes from the execution's input: the execution fails, like a bad input would.
            await self._fail(definition, activation, exc)
            await self._free_slot(execution_id)  # its place in line, if a client enrolled it
            return "failed"
        admission = await store.admit(
            execution_id, token, group, definition.max_concurrency, now_ms(), ack=activation.ack
        )
        if admission == "admitted":
            return None
        if admission == "parked":
            METRICS.concurrency_parked(definition.workflow_id)
            return "parked"
        applied = await store.release(execution_id, self.worker_id, token)
        METRICS.finished(definition.workflow_id, "failed" if applied == Status.FAILED else "cancelled")
        await self._free_slot(execution_id, definition)
        return "cancelled"

    async def _free_slot(self, execution_id: ExecutionId, definition: WorkflowDef | None = None) -> None:
        """Give back the concurrency slot of an execution that just became final. A failure here is
        logged only: the waiters' recheck timers find a final holder's slot (see `Concurrency.admit`)."""
        if definition is not None and definition.max_concurrency is None:
            return
        try:
            await self.store.free_slot(execution_id, now_ms())
        except Exception as exc:
            log.warning("execution %s: could not give back its concurrency slot (%s)", execution_id, exc)

    async def _hand_back(self, execution_id: ExecutionId, token: int) -> None:
        try:
            await self.store.release(execution_id, self.worker_id, token)
            await self.store.enqueue(execution_id, "handoff")
        except Exception:  # pragma: no cover - best effort on the way out
            log.exception("execution %s: could not hand back on shutdown", execution_id)


def _abandoned(execution_id: str, abandoned: ActivationAbandoned) -> BaseException:
    """What an abandoned activation raises to its caller: the store fault that caused it."""
    cause = abandoned.cause
    log.warning(
        "execution %s: a checkpoint could not be committed (%s: %s); abandoning this activation",
        execution_id,
        type(cause).__name__,
        cause,
    )
    return cause
