"""One activation of one execution, as its worker runs it: the worker's side of a workflow context.

The engine makes an `Activation` from what it holds for the run (the store, the fencing token,
the queue entry that started it) and hands it to the `WorkflowContext`, which commits,
suspends and runs step bodies through it. When the workflow function has returned or raised,
the engine reads back the little it needs, and nothing else (workflow code never sees this
object):

- `take_checkpoint()`: what the workflow buffered and no commit wrote yet; the engine writes it
  with the final status.
- `abandoned`: set once a store call failed; the activation is over, whatever the workflow code
  did with the exception (see `ActivationAbandoned`).
- `ack`: the queue entry to acknowledge with the final write.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from .._errors import ActivationAbandoned, Cancelled, DurableError, Suspend
from .._history import StepRecord
from .._records import ExecutionId, Status, now_ms
from .._store._base import AuditDraft, Checkpoint, SignalWait

if TYPE_CHECKING:
    from .._store._base import Runs
    from ._history_guard import HistoryBudget


class Activation:
    """The store, the fencing token and the step threads of one run, and what it has yet to write.

    Without a store (a context no worker runs, such as `describe`'s) records still buffer, but
    committing raises `DurableError`.
    """

    __slots__ = (
        "_pending",
        "abandoned",
        "ack",
        "budget",
        "children",
        "execution_id",
        "executor",
        "forbid_bodies",
        "lookup",
        "store",
        "token",
        "worker_id",
    )

    def __init__(
        self,
        store: Runs | None,
        execution_id: ExecutionId,
        token: int = 0,
        worker_id: str = "",
        executor: Executor | None = None,
        *,
        forbid_bodies: bool = False,
        ack: str | None = None,
        lookup: Callable[[str], Any] | None = None,
    ) -> None:
        self.store = store
        # The worker's workflows by id (`ctx.child` of a workflow id); None: the process' `@workflow`s.
        self.lookup = lookup
        self.execution_id = execution_id
        # The queue entry that started this run: the store acknowledges it with the suspension or
        # the final write, in the same atomic step.
        self.ack = ack
        self.token = token
        self.worker_id = worker_id
        self.executor = executor
        # Replay tests: a step whose body would run means the history is incomplete.
        self.forbid_bodies = forbid_bodies
        self.abandoned: ActivationAbandoned | None = None
        self._pending = Checkpoint()
        # The history-size guard (the engine sets it; None: unguarded, as in replay tests).
        self.budget: HistoryBudget | None = None
        # The children this run started (`ctx.start_child`, `ctx.child`), as (execution id,
        # on_parent_cancel), replayed ones included: the engine settles them when the run ends or
        # continues as new (the next run's history no longer names them).
        self.children: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ the engine's side
    def take_checkpoint(self) -> Checkpoint:
        """Everything buffered since the last write; the activation starts a fresh buffer."""
        cp, self._pending = self._pending, Checkpoint()
        return cp

    # ------------------------------------------------------------------ the context's side
    def buffer(self, record: StepRecord, audit: AuditDraft | None = None, *, current: bool = False) -> None:
        """Add a record (and its audit entry) to the next write; `current`: it is the current step."""
        pending = self._pending
        encoded = record.encode()
        pending.records.append((record.step_id, encoded))
        if audit is not None:
            pending.audit.append(audit)
        if current:
            pending.current_step = record.step_id
        if self.budget is not None:
            warning = self.budget.add(record.step_id, encoded)  # raises HistoryLimitExceeded past the limit
            if warning is not None:
                pending.audit.append(warning)

    def buffer_audit(self, audit: AuditDraft) -> None:
        """Add an audit entry (no record) to the next write."""
        self._pending.audit.append(audit)

    def buffer_event(self, event: str, data: bytes) -> None:
        self._pending.events.append((event, data))

    def _store(self) -> Runs:
        if self.store is None:
            raise DurableError("this context is not attached to a worker run")
        return self.store

    def _abandon(self, cause: BaseException) -> ActivationAbandoned:
        """A store call failed: whatever the cause, it is the engine's to handle, not the workflow's."""
        self.abandoned = ActivationAbandoned(cause)
        return self.abandoned

    async def flush(self) -> None:
        """Write what is buffered, if anything (fenced). Raises `Cancelled` if a cancel (or a forced
        failure, which stops the run the same way) was requested."""
        if not self._pending:
            return
        cp = self.take_checkpoint()
        store = self._store()
        try:
            cancelled = await store.commit(self.execution_id, self.token, cp, now_ms())
        except Exception as exc:
            raise self._abandon(exc) from exc
        if cancelled:
            raise Cancelled(f"execution {self.execution_id!r} was cancelled or force-failed")

    async def suspend(
        self,
        status: Status,
        *,
        wake_at_ms: int | None,
        timer_id: str | None,
        wait: SignalWait | None = None,
    ) -> tuple[str, bytes | None]:
        """Write what is buffered and suspend: raises `Suspend` (or `Cancelled`), or returns how a
        signal wait settled at once, `("signal", payload)` or `("timeout", None)`."""
        store = self._store()
        try:
            outcome = await store.suspend(
                self.execution_id,
                self.token,
                self.take_checkpoint(),
                now_ms(),
                status=status,
                wake_at_ms=wake_at_ms,
                timer_id=timer_id,
                wait=wait,
                ack=self.ack,
            )
        except Exception as exc:
            raise self._abandon(exc) from exc
        if outcome.kind == "cancelled":
            raise Cancelled(f"execution {self.execution_id!r} was cancelled or force-failed")
        if outcome.kind == "suspended":
            raise Suspend(status.value)
        return outcome.kind, outcome.payload

    async def call(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run a step body: async ones on the loop, sync ones on the worker's step threads."""
        if self.forbid_bodies:
            raise AssertionError(
                f"execution {self.execution_id!r}: replay reached a step body the history does not hold"
            )
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        executor = self.executor
        # The worker's step threads (`run`) hand the result straight to the loop, skipping the
        # executor future's extra hop; the workflow part knows them only by that method.
        hand_off = getattr(executor, "run", None)
        if hand_off is not None:
            result = await hand_off(lambda: fn(*args, **kwargs))
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, lambda: fn(*args, **kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result
