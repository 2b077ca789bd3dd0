"""The workflow context: every `ctx.*` call is a checkpoint that replay fast-forwards through.

A workflow re-runs from the top on each wake-up. The k-th `ctx.*` call must name the
step recorded at position k, or replay raises `NonDeterminismError`. Cheap records
(`now`, `uuid4`, `random`, `emit`, `note`, a finished sleep) are buffered and written
with the next checkpoint, and always before a step body runs, so nothing outside the
workflow can see a value that is not yet durable.
"""

from __future__ import annotations

import contextvars
import inspect
import random as _random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from .. import _codec
from .._errors import (
    DurableError,
    InvalidStepId,
    NoMatchingBranch,
    NonDeterminismError,
    SignalPayloadError,
    StepFailedError,
    describe_exception,
)
from .._history import PAYLOAD_SLOT, StepKind, StepRecord, StepStatus, signal_result, timeout_result
from .._records import Status, ms_to_dt
from .._records import now_ms as now_ms
from .._store._base import AuditDraft, SignalWait
from ._activation import Activation
from ._definitions import NO_RETRY, Branch, RetryPolicy, Signal, StepId, resolve_signal, seconds

if TYPE_CHECKING:
    pass

RESERVED_PREFIXES = ("__", "rollback:")

current_context: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "durable_workflow_context", default=None
)


@dataclass(frozen=True, slots=True)
class SignalResult:
    """What `wait_for_signal` returns when it has a timeout."""

    kind: Literal["signal", "timeout"]
    payload: Any = None


class _Done:
    """An already-finished awaitable: lets `ctx.note(...)` work with or without `await`."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # pragma: no cover - makes this a generator


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) and p.default is p.empty
        for p in params
    )


class WorkflowContext:
    """Passed to every workflow function as its first argument."""

    def __init__(
        self,
        activation: Activation | None,
        *,
        execution_id: str,
        workflow_id: str,
        history: Mapping[str, bytes],
        attempt: int = 1,
    ) -> None:
        # The worker's side: commits, suspensions, step bodies (a detached one when no worker runs this).
        self._activation = activation if activation is not None else Activation(None, execution_id)
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self.attempt = attempt
        self._history = {k: StepRecord.decode(k, v) for k, v in history.items()}
        self._by_seq = {rec.seq: step_id for step_id, rec in self._history.items() if rec.seq >= 0}
        self._seq = 0
        self._seen: set[str] = set()
        self._compensations: list[tuple[str, Callable[..., Any], Any, RetryPolicy]] = []

    # ------------------------------------------------------------------ replay bookkeeping
    def _next(self, step_id: str, kind: StepKind, *, user: bool) -> tuple[int, StepRecord | None]:
        abandoned = self._activation.abandoned
        if abandoned is not None:
            raise abandoned
        if not isinstance(step_id, str) or not step_id:
            raise InvalidStepId(f"step id must be a non-empty string, got {step_id!r}", step_id=str(step_id))
        if user and step_id.startswith(RESERVED_PREFIXES):
            raise InvalidStepId(
                f"step id {step_id!r} uses a reserved prefix ({', '.join(RESERVED_PREFIXES)})",
                step_id=step_id,
            )
        if step_id in self._seen:
            raise InvalidStepId(
                f"step id {step_id!r} is used twice in execution {self.execution_id!r}; step ids must be unique",
                step_id=step_id,
                execution_id=self.execution_id,
            )
        self._seen.add(step_id)
        self._seq += 1
        seq = self._seq
        rec = self._history.get(step_id)
        recorded_at_seq = self._by_seq.get(seq)
        if rec is not None:
            # seq -1: an operator's skip_step written before the step was ever reached.
            if rec.seq >= 0 and (rec.seq != seq or rec.kind != kind):
                raise NonDeterminismError(
                    f"execution {self.execution_id!r}: call #{seq} is {kind} {step_id!r} but history recorded "
                    f"{recorded_at_seq!r} there ({step_id!r} was recorded as {rec.kind} #{rec.seq})",
                    execution_id=self.execution_id,
                    seq=seq,
                    expected=recorded_at_seq,
                    actual=step_id,
                )
            return seq, rec
        if recorded_at_seq is not None:
            raise NonDeterminismError(
                f"execution {self.execution_id!r}: call #{seq} is {kind} {step_id!r} but history recorded "
                f"{recorded_at_seq!r} at that position",
                execution_id=self.execution_id,
                seq=seq,
                expected=recorded_at_seq,
                actual=step_id,
            )
        return seq, None

    def _peek_id(self, prefix: str) -> str:
        return f"{prefix}{self._seq + 1}"

    # ------------------------------------------------------------------ steps
    async def step(
        self,
        step_id: str | StepId[Any],
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        compensate: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run `fn(*args, **kwargs)` once, persist its JSON result, return it (also on replay)."""
        typed = step_id if isinstance(step_id, StepId) else None
        sid = typed.id if typed is not None else step_id
        return await self._step(sid, fn, args, kwargs, retry or NO_RETRY, compensate, typed, user=True)

    async def _step(
        self,
        sid: Any,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        policy: RetryPolicy,
        compensate: Callable[..., Any] | None,
        typed: StepId[Any] | None,
        *,
        user: bool,
        kind: StepKind = StepKind.STEP,
    ) -> Any:
        seq, rec = self._next(sid, kind, user=user)
        if rec is not None and rec.status == StepStatus.COMPLETED:
            result = rec.result
            if compensate is not None:
                self._compensations.append((sid, compensate, result, policy))
            return typed.parse(result) if typed else result
        if rec is not None and rec.status == StepStatus.FAILED:
            raise StepFailedError(
                f"step {sid!r} failed: {(rec.error or {}).get('message', '')}",
                step_id=sid,
                attempts=rec.attempt,
                error=rec.error,
            )
        attempt = 1
        if rec is not None and rec.status == StepStatus.RETRY:
            attempt = rec.attempt + 1
            next_at = int(rec.meta.get("next_at", 0))
            if now_ms() < next_at:
                await self._activation.suspend(Status.SLEEPING, wake_at_ms=next_at, timer_id=f"retry:{sid}")
        await self._activation.flush()
        started = now_ms()
        try:
            result = await self._activation.call(fn, args, kwargs)
        except Exception as exc:
            error = describe_exception(exc)
            if policy.should_retry(exc, attempt):
                delay_ms = int(policy.delay(attempt) * 1000)
                next_at = now_ms() + delay_ms
                record = StepRecord(
                    sid,
                    seq,
                    kind,
                    StepStatus.RETRY,
                    error=error,
                    attempt=attempt,
                    at=ms_to_dt(now_ms()),
                    meta={"next_at": next_at},
                )
                self._activation.buffer(
                    record,
                    AuditDraft(
                        kind="step.retry",
                        message=f"step {sid} attempt {attempt} failed: {error['message'][:200]}; retry in {delay_ms} ms",
                        step_id=sid,
                    ),
                    current=True,
                )
                await self._activation.suspend(Status.SLEEPING, wake_at_ms=next_at, timer_id=f"retry:{sid}")
            record = StepRecord(
                sid, seq, kind, StepStatus.FAILED, error=error, attempt=attempt, at=ms_to_dt(now_ms())
            )
            self._activation.buffer(
                record,
                AuditDraft(
                    kind="step.failed", message=f"step {sid} failed: {error['message'][:200]}", step_id=sid
                ),
                current=True,
            )
            await self._activation.flush()
            raise StepFailedError(
                f"step {sid!r} failed after {attempt} attempt(s): {type(exc).__name__}: {exc}",
                step_id=sid,
                attempts=attempt,
                error=error,
            ) from exc
        plain = _codec.to_plain(result, what=f"result of step {sid!r}", step_id=sid)
        finished = now_ms()
        record = StepRecord(
            sid,
            seq,
            kind,
            StepStatus.COMPLETED,
            result=plain,
            attempt=attempt,
            at=ms_to_dt(finished),
            meta={"ms": finished - started},
        )
        self._activation.buffer(
            record,
            AuditDraft(kind="step.completed", message=f"step {sid} completed", step_id=sid),
            current=True,
        )
        await self._activation.flush()
        if compensate is not None:
            self._compensations.append((sid, compensate, plain, policy))
        return typed.parse(plain) if typed else plain

    # ------------------------------------------------------------------ durable waits
    async def sleep(self, duration: float | timedelta, *, step_id: str | None = None) -> None:
        """A durable sleep: the execution suspends and a timer in the store wakes it."""
        secs = seconds(duration)
        if secs < 0:
            raise ValueError(f"sleep duration must be >= 0, got {secs}")
        sid = step_id or self._peek_id("__sleep:")
        seq, rec = self._next(sid, StepKind.SLEEP, user=step_id is not None)
        if rec is not None and rec.status == StepStatus.COMPLETED:
            return
        now = now_ms()
        if rec is not None:
            until = int(rec.meta.get("until", now))
            if now >= until:
                self._activation.buffer(
                    StepRecord(
                        sid,
                        seq,
                        StepKind.SLEEP,
                        StepStatus.COMPLETED,
                        at=ms_to_dt(now),
                        meta={"until": until},
                    )
                )
                return
        else:
            until = now + int(secs * 1000)
            self._activation.buffer(
                StepRecord(
                    sid, seq, StepKind.SLEEP, StepStatus.SLEEPING, at=ms_to_dt(now), meta={"until": until}
                ),
                AuditDraft(kind="sleep", message=f"sleeping {secs:g} s", step_id=sid),
                current=True,
            )
        await self._activation.suspend(Status.SLEEPING, wake_at_ms=until, timer_id=sid)

    async def wait_for_signal(
        self,
        signal: str | Signal[Any],
        *,
        timeout: float | timedelta | None = None,
        step_id: str | None = None,
    ) -> Any:
        """Wait for a signal. Without a timeout: its payload. With one: a `SignalResult`.

        A payload that fails the signal's model is rejected (audit `signal.rejected`, the wait's
        record back to waiting, in the same write as the next wait) and the wait goes on.
        """
        sig = resolve_signal(signal)
        sid = step_id or self._peek_id(f"__signal:{sig.name}:")
        seq, rec = self._next(sid, StepKind.SIGNAL, user=step_id is not None)

        def shape(kind: Literal["signal", "timeout"], payload: Any = None) -> Any:
            if timeout is None:
                return payload
            return SignalResult(kind=kind, payload=payload if kind == "signal" else None)

        if rec is not None and rec.status == StepStatus.COMPLETED:
            outcome, payload = rec.signal_outcome()
            if outcome == "timeout":
                return shape("timeout")
            try:
                return shape("signal", sig.parse_payload(payload))
            except SignalPayloadError as exc:
                # Consumed, then a crash before the rejection was written (or an old client's or an
                # operator's bad payload): reject it now, exactly as the consuming run would have.
                meta = rec.meta
                if "deadline" in meta:
                    deadline = meta["deadline"]
                else:  # a record written before consumed records kept their deadline
                    deadline = now_ms() + int(seconds(timeout) * 1000) if timeout is not None else None
                self._reject_signal(seq, sid, sig, deadline, exc, payload)
        elif rec is not None:
            deadline = rec.meta.get("deadline")
        else:
            now = now_ms()
            deadline = now + int(seconds(timeout) * 1000) if timeout is not None else None
            self._activation.buffer(
                _waiting_record(seq, sid, sig, deadline, now),
                AuditDraft(kind="wait", message=f"waiting for signal {sig.name}", step_id=sid),
                current=True,
            )
        while True:
            kind, payload = await self._activation.suspend(
                Status.WAITING,
                wake_at_ms=deadline,
                timer_id=sid,
                wait=self._signal_wait(seq, sid, sig, deadline),
            )
            if kind == "timeout":
                return shape("timeout")
            value = _codec.loads(payload)
            try:
                return shape("signal", sig.parse_payload(value))
            except SignalPayloadError as exc:
                self._reject_signal(seq, sid, sig, deadline, exc, value)

    def _signal_wait(self, seq: int, sid: str, sig: Signal[Any], deadline: int | None) -> SignalWait:
        now = now_ms()
        meta: dict[str, Any] = {"signal": sig.name}
        if deadline is not None:
            meta["deadline"] = deadline  # a replay that rejects this payload waits until the same deadline
        at = ms_to_dt(now)
        consumed = StepRecord(
            sid,
            seq,
            StepKind.SIGNAL,
            StepStatus.COMPLETED,
            result=signal_result(PAYLOAD_SLOT),
            at=at,
            meta=meta,
        )
        # The store puts the payload in the slot, so that consuming it is one atomic write.
        prefix, suffix = consumed.split_at_slot()
        timeout_record = StepRecord(
            sid,
            seq,
            StepKind.SIGNAL,
            StepStatus.COMPLETED,
            result=timeout_result(),
            at=at,
            meta={"signal": sig.name},
        )
        return SignalWait(
            name=sig.name,
            step_id=sid,
            record_prefix=prefix,
            record_suffix=suffix,
            deadline_ms=deadline,
            timeout_record=timeout_record.encode() if deadline is not None else None,
            schema=sig.schema,
        )

    def _reject_signal(
        self,
        seq: int,
        sid: str,
        sig: Signal[Any],
        deadline: int | None,
        exc: SignalPayloadError,
        payload: Any,
    ) -> None:
        """Buffer the rejection of a consumed payload: the wait's record back to waiting, and the audit."""
        self._activation.buffer(
            _waiting_record(seq, sid, sig, deadline, now_ms()),
            AuditDraft(
                kind="signal.rejected",
                message=f"signal {sig.name} rejected: {exc.fields.get('errors', exc.message)}",
                step_id=sid,
                data=_codec.dumps(payload, what=f"payload of signal {sig.name!r}", step_id=sid),
            ),
            current=True,
        )

    # ------------------------------------------------------------------ replay-safe records
    def emit(self, event: str, payload: Any = None, *, step_id: str | None = None) -> _Done:
        """Publish an event once (written with the next checkpoint); awaiting the result is optional."""
        sid = step_id or self._peek_id(f"__emit:{event}:")
        seq, rec = self._next(sid, StepKind.EMIT, user=step_id is not None)
        if rec is None:
            data = _codec.dumps(payload, what=f"payload of event {event!r}", step_id=sid)
            self._activation.buffer(
                StepRecord(
                    sid,
                    seq,
                    StepKind.EMIT,
                    StepStatus.COMPLETED,
                    at=ms_to_dt(now_ms()),
                    meta={"event": event},
                ),
                AuditDraft(kind="emit", message=f"emitted {event}", step_id=sid, data=data),
            )
            self._activation.buffer_event(event, data)
        return _Done()

    def note(self, message: str, meta: Mapping[str, Any] | None = None) -> _Done:
        """An audit note, written once however often the workflow replays."""
        sid = self._peek_id("__note:")
        seq, rec = self._next(sid, StepKind.NOTE, user=False)
        if rec is None:
            data = _codec.dumps(dict(meta) if meta else None, what="note meta", step_id=sid)
            self._activation.buffer(
                StepRecord(sid, seq, StepKind.NOTE, StepStatus.COMPLETED, at=ms_to_dt(now_ms())),
                AuditDraft(kind="note", message=str(message), step_id=sid, data=data),
            )
        return _Done()

    def _recorded_value(self, prefix: str, kind: StepKind, make: Callable[[], Any]) -> Any:
        sid = self._peek_id(prefix)
        seq, rec = self._next(sid, kind, user=False)
        if rec is not None:
            return rec.result
        value = make()
        self._activation.buffer(
            StepRecord(sid, seq, kind, StepStatus.COMPLETED, result=value, at=ms_to_dt(now_ms()))
        )
        return value

    def now(self) -> datetime:
        """The current time, recorded: replay returns the same instant."""
        return datetime.fromisoformat(
            self._recorded_value("__now:", StepKind.NOW, lambda: datetime.now(UTC).isoformat())
        )

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(self._recorded_value("__uuid:", StepKind.UUID, lambda: str(uuid.uuid4())))

    def random(self) -> float:
        return float(self._recorded_value("__random:", StepKind.RANDOM, _random.random))

    # ------------------------------------------------------------------ control flow
    async def switch(
        self,
        step_id: str,
        value: Any,
        branches: Sequence[Branch | Mapping[str, Any]],
        default: Callable[..., Any] | Branch | None = None,
    ) -> Any:
        """Run the first branch whose `match` fits `value`, once; replay returns its stored result."""
        parsed = [Branch.of(b) for b in branches]
        seq, rec = self._next(step_id, StepKind.SWITCH, user=True)
        if rec is not None and rec.status == StepStatus.COMPLETED:
            return rec.result
        chosen = next((b for b in parsed if b.matches(value)), None)
        if chosen is None:
            if default is None:
                raise NoMatchingBranch(
                    f"switch {step_id!r}: no branch matched {value!r} and no default was given",
                    step_id=step_id,
                    value=repr(value)[:200],
                )
            chosen = default if isinstance(default, Branch) else Branch(id="default", match=None, run=default)
        await self._activation.flush()
        fn = chosen.run
        result = await self._activation.call(fn, (value,) if _takes_argument(fn) else (), {})
        plain = _codec.to_plain(result, what=f"result of switch {step_id!r}", step_id=step_id)
        self._activation.buffer(
            StepRecord(
                step_id,
                seq,
                StepKind.SWITCH,
                StepStatus.COMPLETED,
                result=plain,
                at=ms_to_dt(now_ms()),
                meta={"branch": chosen.id},
            ),
            AuditDraft(kind="switch", message=f"switch {step_id} took branch {chosen.id}", step_id=step_id),
            current=True,
        )
        await self._activation.flush()
        return plain

    async def rollback(self) -> None:
        """Run registered compensations newest first, each exactly once (resumable after a crash)."""
        while self._compensations:
            sid, fn, result, policy = self._compensations.pop()
            args = (result,) if _takes_argument(fn) else ()
            await self._step(
                f"rollback:{sid}", fn, args, {}, policy, None, None, user=False, kind=StepKind.COMPENSATION
            )


def _waiting_record(seq: int, sid: str, sig: Signal[Any], deadline: int | None, at_ms: int) -> StepRecord:
    """A signal wait's record while it waits (also what a rejected payload puts back)."""
    meta = {"signal": sig.name, "deadline": deadline}
    return StepRecord(sid, seq, StepKind.SIGNAL, StepStatus.WAITING, at=ms_to_dt(at_ms), meta=meta)


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
