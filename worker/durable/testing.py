"""Helpers for testing workflow code: record a history, replay one, without Redis or a worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _codec
from ._client._durable import Durable
from ._errors import error_from_dict
from ._records import ExecutionId
from ._store._base import NewExecution
from ._store._memory import MemoryStore
from ._worker._engine import Engine, Outcome
from ._workflow._context import now_ms
from ._workflow._definitions import WorkflowDef, as_definition

__all__ = ["ReplayResult", "record_history", "replay_history"]


@dataclass(frozen=True)
class ReplayResult:
    outcome: Outcome
    result: Any = None
    error: dict[str, Any] | None = None
    history: dict[str, Any] = field(default_factory=dict)

    def raise_error(self) -> None:
        """Raise the stored error (e.g. `NonDeterminismError`) if the replay failed."""
        if self.error is not None:
            raise error_from_dict(self.error)


async def record_history(
    workflow: Any,
    input: Any = None,
    *,
    signals: Mapping[str, list[Any]] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Run `workflow` to the end on a MemoryStore and return its history (step id → record).

    `signals` are delivered up front (they are buffered until the workflow waits for them).
    """
    durable = Durable(store=MemoryStore(), workflows=[workflow])
    async with durable.worker(concurrency=1, max_idle_poll=0.05):
        eid = await durable.start(workflow, input)
        for name, payloads in (signals or {}).items():
            for payload in payloads:
                await durable.signal(eid, name, payload)
        await durable.wait(eid, timeout=timeout)
    steps = await durable.store.load_steps(eid)
    return {step_id: _codec.loads(raw) for step_id, raw in steps.items()}


async def replay_history(
    workflow: Any,
    history: Mapping[str, Any],
    input: Any = None,
    *,
    forbid_step_bodies: bool = True,
) -> ReplayResult:
    """Replay `workflow` once against a recorded `history`, as a worker would after a restart.

    With `forbid_step_bodies`, a step that would run its body (history lacks it) is reported
    as a failure instead of running: a complete history must replay without side effects.
    """
    definition: WorkflowDef = as_definition(workflow)
    store = MemoryStore()
    eid = ExecutionId("replay")
    await store.create_execution(
        NewExecution(
            execution_id=eid,
            workflow_id=definition.workflow_id,
            input=_codec.dumps(definition.validate_input(input)),
            now_ms=now_ms(),
        )
    )
    store.import_history(eid, {k: _codec.dumps(v) for k, v in history.items()})
    engine = Engine(
        store,
        lambda _wid: definition,
        worker_id="replay",
        lease_ttl_ms=60_000,
        forbid_bodies=forbid_step_bodies,
    )
    await store.dequeue("replay", 10, 0)
    outcome = await engine.run(eid)
    record = await store.get_execution(eid)
    steps = await store.load_steps(eid)
    return ReplayResult(
        outcome=outcome,
        result=record.result if record else None,
        error=record.error if record else None,
        history={k: _codec.loads(v) for k, v in steps.items()},
    )
