"""Static flow shape: run a workflow against a recording context that executes no step bodies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .._history import StepKind
from ._children import ChildHandle
from ._context import SignalResult, WorkflowContext
from ._definitions import (
    Branch,
    RetryPolicy,
    Signal,
    StepId,
    WorkflowDef,
    as_definition,
    resolve_signal,
    seconds,
)
from ._replay import _Done


class _Anything:
    """Stands in for results that describe() does not compute; tolerates whatever code does with it."""

    def __getattr__(self, name: str) -> _Anything:
        return self

    def __getitem__(self, key: Any) -> _Anything:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:
        return self

    def __iter__(self) -> Any:
        return iter(())

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: Any) -> bool:
        return False

    __gt__ = __le__ = __ge__ = __lt__

    def __add__(self, other: Any) -> _Anything:
        return self

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __add__

    def __float__(self) -> float:
        return 0.0

    def __int__(self) -> int:
        return 0

    def __str__(self) -> str:
        return "<result>"


@dataclass
class FlowShape:
    workflow_id: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    stopped_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "nodes": self.nodes,
            "complete": self.complete,
            "stopped_by": self.stopped_by,
        }

    def to_mermaid(self) -> str:
        lines = ["flowchart TD", '  start(["start"])']
        prev = "start"
        for index, node in enumerate(self.nodes):
            name = f"n{index}"
            label = f"{node['kind']}: {node['id']}".replace('"', "'")
            if node["kind"] == "switch":
                lines.append(f'  {name}{{"{label}"}}')
            else:
                lines.append(f'  {name}["{label}"]')
            lines.append(f"  {prev} --> {name}")
            prev = name
        lines.append('  finish(["end"])')
        lines.append(f"  {prev} --> finish")
        return "\n".join(lines)

    def to_text(self) -> str:
        out = [f"workflow {self.workflow_id}"]
        for index, node in enumerate(self.nodes, 1):
            extra = ""
            if node["kind"] == "switch":
                extra = f"  branches: {', '.join(node.get('branches', []))}"
            elif node["kind"] == "sleep" and node.get("seconds") is not None:
                extra = f"  ({node['seconds']:g} s)"
            elif node["kind"] == "waitForSignal":
                extra = f"  (signal {node['signal']})"
            out.append(f"{index:>3}. {node['kind']:<14} {node['id']}{extra}")
        if not self.complete:
            out.append(f"  ... stopped: {self.stopped_by}")
        return "\n".join(out)


class _DescribeContext(WorkflowContext):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(None, execution_id="describe", workflow_id=workflow_id, history={})
        self.nodes: list[dict[str, Any]] = []

    def _add(self, kind: str, step_id: str, **extra: Any) -> None:
        self.nodes.append({"kind": kind, "id": step_id, **extra})

    async def step(
        self,
        step_id: str | StepId[Any],
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        compensate: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        sid = step_id.id if isinstance(step_id, StepId) else step_id
        self._next(sid, StepKind.STEP, user=True)
        self._add("step", sid, compensated=compensate is not None)
        return _Anything()

    async def sleep(self, duration: float | timedelta, *, step_id: str | None = None) -> None:
        sid = step_id or self._peek_id("__sleep:")
        self._next(sid, StepKind.SLEEP, user=step_id is not None)
        self._add("sleep", sid, seconds=seconds(duration))

    async def wait_for_signal(
        self,
        signal: str | Signal[Any],
        *,
        timeout: float | timedelta | None = None,
        step_id: str | None = None,
    ) -> Any:
        sig = resolve_signal(signal)
        sid = step_id or self._peek_id(f"__signal:{sig.name}:")
        self._next(sid, StepKind.SIGNAL, user=step_id is not None)
        self._add(
            "waitForSignal", sid, signal=sig.name, timeout=None if timeout is None else seconds(timeout)
        )
        return _Anything() if timeout is None else SignalResult(kind="signal", payload=_Anything())

    def emit(self, event: str, payload: Any = None, *, step_id: str | None = None) -> _Done:
        sid = step_id or self._peek_id(f"__emit:{event}:")
        self._next(sid, StepKind.EMIT, user=step_id is not None)
        self._add("emit", sid, event=event)
        return _Done()

    def note(self, message: str, meta: Mapping[str, Any] | None = None) -> _Done:
        sid = self._peek_id("__note:")
        self._next(sid, StepKind.NOTE, user=False)
        self._add("note", sid, message=str(message))
        return _Done()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def switch(
        self,
        step_id: str,
        value: Any,
        branches: Sequence[Branch | Mapping[str, Any]],
        default: Callable[..., Any] | Branch | None = None,
    ) -> Any:
        parsed = [Branch.of(b) for b in branches]
        self._next(step_id, StepKind.SWITCH, user=True)
        ids = [b.id for b in parsed] + (["default"] if default is not None else [])
        self._add("switch", step_id, branches=ids)
        return _Anything()

    async def rollback(self) -> None:
        self._add("rollback", "rollback")

    async def start_child(
        self,
        workflow: Any,
        input: Any = None,
        *,
        execution_id: str | None = None,
        on_parent_cancel: Any = "cancel",
        step_id: str | None = None,
    ) -> ChildHandle:
        sid = step_id or self._peek_id("__child:")
        self._next(sid, StepKind.CHILD, user=step_id is not None)
        name = workflow if isinstance(workflow, str) else as_definition(workflow).workflow_id
        self._add("child", sid, workflow=name, on_parent_cancel=on_parent_cancel)
        return ChildHandle(self, execution_id or f"describe:{sid}", name)

    async def _wait_child(self, child_id: str, workflow_id: str, step_id: str | None) -> Any:
        sid = step_id or self._peek_id("__child_result:")
        self._next(sid, StepKind.CHILD_RESULT, user=step_id is not None)
        self._add("childResult", sid, workflow=workflow_id)
        return _Anything()

    async def _signal_child(self, child_id: str, signal: Any, payload: Any, step_id: str | None) -> None:
        sid = step_id or self._peek_id("__child_signal:")
        self._next(sid, StepKind.CHILD_SIGNAL, user=step_id is not None)
        self._add("childSignal", sid, signal=resolve_signal(signal).name)

    def patched(self, change_id: str) -> bool:
        # The shape of the code as it is now: the patched branch.
        first = change_id not in self._patches
        answer = super().patched(change_id)
        if first:
            self._add("patch", f"__patch:{change_id}", change=change_id)
        return answer


def describe_workflow(definition: WorkflowDef, input: Any = None) -> FlowShape:
    """Record every ctx.* call of the workflow without running step bodies or touching a store."""
    ctx = _DescribeContext(definition.workflow_id)
    shape = FlowShape(workflow_id=definition.workflow_id)
    value: Any = input
    if input is None:
        value = _Anything()
    elif definition.input_type is not None:
        with contextlib.suppress(Exception):
            value = definition.parse_input(definition.validate_input(input))

    async def drive() -> None:
        await definition.fn(ctx, value)

    try:
        _run_coroutine(drive)
    except Exception as exc:
        shape.complete = False
        shape.stopped_by = f"{type(exc).__name__}: {exc}"
    shape.nodes = ctx.nodes
    return shape


def _run_coroutine(factory: Callable[[], Any]) -> None:
    """Drive a coroutine that never really awaits I/O, even from inside a running loop."""
    coro = factory()
    try:
        while True:
            future = coro.send(None)
            if future is not None and isinstance(future, asyncio.Future):
                coro.close()
                raise RuntimeError("describe() cannot follow code that awaits real I/O outside ctx calls")
    except StopIteration:
        return
