"""Replaying a recorded history against the code loaded now, without running or writing anything.

The check a deploy needs: would this code resume these executions? The workflow runs on a context
over the recorded history, through the same replay position (`_workflow._replay`) a worker uses,
so it diverges exactly where a worker's replay would raise `NonDeterminismError`. Replay stops
with success at the frontier, the first thing the history does not hold (a step body to run, a
checkpoint to write, a suspension): from there the execution runs on the new code, which is fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .._errors import ContinueAsNew, NonDeterminismError
from .._history import StepRecord
from .._records import ExecutionId, Status
from .._workflow._activation import Activation
from .._workflow._context import WorkflowContext, current_context
from .._workflow._definitions import WorkflowDef, lookup_workflow

__all__ = ["ExecutionHistory", "ReplayCheckResult", "check_replay"]


@dataclass(frozen=True)
class ExecutionHistory:
    """One execution's recorded history as `durable export-history` writes it (one JSON line)."""

    execution_id: str
    workflow_id: str
    status: str
    input: Any
    # Step id -> the stored record (JSON bytes), as the store holds it.
    steps: Mapping[str, bytes]
    version: str | None = None

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "execution_id": self.execution_id,
                "workflow_id": self.workflow_id,
                "version": self.version,
                "status": self.status,
                "input": self.input,
                "steps": {sid: orjson.loads(raw) for sid, raw in sorted(self.steps.items())},
            }
        ).decode()

    @classmethod
    def from_json(cls, line: str | bytes) -> ExecutionHistory:
        """Parse one line of an export; a `ValueError` says what is wrong with it."""
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for name in ("execution_id", "workflow_id", "status"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(f"{name!r} must be a non-empty string")
        steps = data.get("steps")
        if not isinstance(steps, dict) or not all(isinstance(v, dict) for v in steps.values()):
            raise ValueError("'steps' must be an object of step id -> record object")
        version = data.get("version")
        if version is not None and not isinstance(version, str):
            raise ValueError("'version' must be a string or null")
        return cls(
            execution_id=data["execution_id"],
            workflow_id=data["workflow_id"],
            status=data["status"],
            input=data.get("input"),
            steps={sid: orjson.dumps(rec) for sid, rec in steps.items()},
            version=version or None,
        )


@dataclass(frozen=True)
class ReplayCheckResult:
    """How one history replayed: `ok`, or the first divergent `position` (the step id recorded there,
    `expected`, and the one the code asked for, `actual`), or another `error`."""

    execution_id: str
    workflow_id: str
    version: str | None
    ok: bool
    position: int | None = None
    expected: str | None = None
    actual: str | None = None
    error: str | None = None

    def summary(self) -> str:
        if self.ok:
            return "ok"
        if self.position is not None:
            got = "the workflow returned" if self.actual is None else repr(self.actual)
            return f"diverged at position {self.position}: expected {self.expected!r}, got {got}"
        return f"error: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "version": self.version,
            "ok": self.ok,
            "position": self.position,
            "expected": self.expected,
            "actual": self.actual,
            "error": self.error,
        }


class _Frontier(BaseException):
    """The replay reached what the history does not hold (BaseException: workflow code cannot catch it)."""


class _ReplayActivation(Activation):
    """A run that owns nothing: where a worker would write, suspend or run a body, replay is over."""

    __slots__ = ()

    async def flush(self) -> None:
        if self._pending:
            raise _Frontier("a checkpoint")

    async def suspend(self, *args: Any, **kwargs: Any) -> tuple[str, bytes | None]:
        raise _Frontier("a suspension")

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise _Frontier("a step body")


async def check_replay(
    history: ExecutionHistory, workflows: Mapping[str, WorkflowDef] | None = None
) -> ReplayCheckResult:
    """Replay `history` on the code loaded now (`workflows`, else every `@workflow` of the process)."""

    def result(ok: bool, **fields: Any) -> ReplayCheckResult:
        return ReplayCheckResult(history.execution_id, history.workflow_id, history.version, ok, **fields)

    definition = lookup_workflow(workflows or {}, history.workflow_id)
    if definition is None:
        return result(False, error=f"workflow {history.workflow_id!r} is not registered by the loaded code")
    try:
        value = definition.parse_input(history.input)
    except Exception as exc:
        return result(False, error=f"the recorded input does not parse: {type(exc).__name__}: {exc}")
    activation = _ReplayActivation(None, ExecutionId(history.execution_id))
    ctx = WorkflowContext(
        activation, execution_id=history.execution_id, workflow_id=history.workflow_id, history=history.steps
    )
    reset = current_context.set(ctx)
    try:
        await definition.fn(ctx, value)
    except _Frontier:
        return result(True)
    except ContinueAsNew:
        pass  # the run ends here like a return: whatever it recorded must have been reached
    except NonDeterminismError as exc:
        return result(False, position=exc.seq, expected=exc.expected, actual=exc.actual)
    except Exception as exc:
        if history.status == Status.FAILED:
            return result(True)  # it failed then, and fails the same way now
        return result(False, error=f"the workflow raised {type(exc).__name__} during replay: {exc}")
    finally:
        current_context.reset(reset)
    unreached = _unreached(history.steps, ctx)
    if unreached is not None:
        return result(False, position=unreached[0], expected=unreached[1], actual=None)
    return result(True)


def _unreached(steps: Mapping[str, bytes], ctx: WorkflowContext) -> tuple[int, str] | None:
    """The first recorded call the code returned without making (a call removed from the end)."""
    seen = ctx._seen
    first: tuple[int, str] | None = None
    for step_id, raw in steps.items():
        if step_id in seen:
            continue
        seq = StepRecord.decode(step_id, raw).seq
        if seq >= 0 and (first is None or seq < first[0]):
            first = (seq, step_id)
    return first
