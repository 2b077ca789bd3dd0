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
from .._errors import ActivationAbandoned, Cancelled, LeaseLost, StoreUnavailable, Suspend, describe_exception
from .._metrics import METRICS
from .._records import ExecutionId, Status, dt_to_ms, now_ms
from .._store._base import WorkerStore
from .._workflow._activation import Activation
from .._workflow._context import WorkflowContext, current_context
from .._workflow._definitions import WorkflowDef

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
]

# Outcomes whose final write or suspension acknowledged the queue entry passed to `Engine.run`.
ACKED: frozenset[Outcome] = frozenset({"completed", "failed", "suspended"})

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
    ) -> None:
        self.store = store
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
            return acquired.outcome
        record = acquired.record
        assert record is not None
        token = acquired.token
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
        )
        ctx = WorkflowContext(
            activation,
            execution_id=execution_id,
            workflow_id=record.workflow_id,
            history=acquired.steps,
            attempt=record.attempt,
            deadline_ms=None if record.deadline is None else dt_to_ms(record.deadline),
        )
        reset = current_context.set(ctx)
        try:
            return await self._drive(definition, ctx, activation, record.input)
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
            try:
                value = definition.parse_input(stored_input)
                result = await definition.fn(ctx, value)
                encoded = _codec.dumps(result, what=f"result of workflow {workflow_id!r}")
            except Suspend:
                return "suspended"
            except Cancelled:
                # The store applies the pending cancel (or forced failure) as soon as our lease is
                # gone. Either way the run stops here, before any compensation could run.
                applied = await store.release(execution_id, self.worker_id, token)
                METRICS.finished(workflow_id, "failed" if applied == Status.FAILED else "cancelled")
                return "cancelled"
            except ActivationAbandoned as abandoned:
                raise _abandoned(execution_id, abandoned) from None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if activation.abandoned is not None:  # the workflow caught the abandonment and raised anew
                    raise _abandoned(execution_id, activation.abandoned) from None
                log.info("execution %s failed: %s: %s", execution_id, type(exc).__name__, exc)
                await store.finish(
                    execution_id,
                    token,
                    activation.take_checkpoint(),
                    now_ms(),
                    status=Status.FAILED,
                    error=_codec.dumps(describe_exception(exc), what="error"),
                    ack=activation.ack,
                )
                METRICS.finished(workflow_id, "failed")
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
            return "completed"
        except LeaseLost:
            log.warning("execution %s: lease lost to a newer worker; abandoning this run", execution_id)
            return "lease_lost"
        except asyncio.CancelledError:
            # Worker shutdown: hand the execution back at once instead of after the lease expires.
            await asyncio.shield(self._hand_back(execution_id, token))
            raise

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
