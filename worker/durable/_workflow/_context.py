"""The workflow context, `ctx`, made of its parts, and the helpers that find it (`durable.now()`, ...).

- `_replay`: the recorded history and the replay position every `ctx.*` call takes.
- `_steps`: `ctx.step` (retries, compensations), `ctx.switch`, `ctx.rollback`.
- `_waits`: `ctx.sleep`, `ctx.wait_for_signal`.
- `_recorded`: `ctx.emit`, `ctx.note`, `ctx.now`, `ctx.uuid4`, `ctx.random`.
- `_patching`: `ctx.patched`, `ctx.deprecate_patch` (changing code under running executions).
- `_continuing`: `ctx.continue_as_new` (a fresh history under the same execution id).
- `_activation`: the worker's side of a run (commits, suspensions, step bodies).
"""

from __future__ import annotations

import contextvars
import uuid
from datetime import datetime

from .._errors import DurableError

# Re-exported: the worker, the testing helpers and `durable` import them from here.
from .._records import now_ms as now_ms
from ._children import ChildHandle as ChildHandle
from ._children import Children
from ._continuing import Continuing
from ._patching import Patching
from ._recorded import RecordedValues
from ._steps import Steps
from ._waits import SignalResult as SignalResult
from ._waits import Waits


class WorkflowContext(Steps, Waits, RecordedValues, Patching, Children, Continuing):
    """Passed to every workflow function as its first argument.

    `execution_id`, `workflow_id`, `attempt`; `step`, `switch`, `rollback`; `sleep`,
    `wait_for_signal`; `emit`, `note`, `now`, `uuid4`, `random`; `patched`, `deprecate_patch`;
    `child`, `start_child`; `continue_as_new`.
    """


current_context: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "durable_workflow_context", default=None
)


def _outside(name: str) -> DurableError:
    return DurableError(f"durable.{name}() can only be called inside a workflow function", helper=name)


def now() -> datetime:
    """Replay-safe current time; raises outside a workflow."""
    ctx = current_context.get()
    if ctx is None:
        raise _outside("now")
    return ctx.now()


def uuid4() -> uuid.UUID:
    ctx = current_context.get()
    if ctx is None:
        raise _outside("uuid4")
    return ctx.uuid4()


def random() -> float:
    ctx = current_context.get()
    if ctx is None:
        raise _outside("random")
    return ctx.random()
