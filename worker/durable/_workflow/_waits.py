"""Durable waits: `ctx.sleep` and `ctx.wait_for_signal`.

Both suspend the execution: the worker lets go of it, and a timer or a signal in the store
wakes it up to replay. A signal that arrived before the wait is consumed at once, in the same
atomic write that would otherwise suspend (the store fills the wait's record with the payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from .. import _codec
from .._errors import SignalPayloadError
from .._history import PAYLOAD_SLOT, StepKind, StepRecord, StepStatus, signal_result, timeout_result
from .._records import Status, ms_to_dt, now_ms
from .._store._base import AuditDraft, SignalWait
from ._definitions import Signal, resolve_signal, seconds
from ._replay import ReplayContext

# Enum members looked up once: attribute access on an Enum class costs about 90 ns on Python 3.11,
# and replay makes these calls once per record of every activation.
_SIGNAL = StepKind.SIGNAL
_SLEEP = StepKind.SLEEP
_COMPLETED = StepStatus.COMPLETED
_SLEEPING = StepStatus.SLEEPING
_WAITING = StepStatus.WAITING


@dataclass(frozen=True, slots=True)
class SignalResult:
    """What `wait_for_signal` returns when it has a timeout."""

    kind: Literal["signal", "timeout"]
    payload: Any = None


class Waits(ReplayContext):
    """`ctx.sleep`, `ctx.wait_for_signal`."""

    async def sleep(self, duration: float | timedelta, *, step_id: str | None = None) -> None:
        """A durable sleep: the execution suspends and a timer in the store wakes it."""
        secs = seconds(duration)
        if secs < 0:
            raise ValueError(f"sleep duration must be >= 0, got {secs}")
        sid = step_id or self._peek_id("__sleep:")
        seq, rec = self._next(sid, _SLEEP, user=step_id is not None)
        if rec is not None and rec.status == _COMPLETED:
            return
        now = now_ms()
        if rec is not None:
            until = int(rec.meta.get("until", now))
            if now >= until:
                self._activation.buffer(
                    StepRecord(
                        sid,
                        seq,
                        _SLEEP,
                        _COMPLETED,
                        at_ms=now,
                        meta={"until": until},
                    )
                )
                return
        else:
            until = now + int(secs * 1000)
            self._activation.buffer(
                StepRecord(sid, seq, _SLEEP, _SLEEPING, at_ms=now, meta={"until": until}),
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
        seq, rec = self._next(sid, _SIGNAL, user=step_id is not None)

        def shape(kind: Literal["signal", "timeout"], payload: Any = None) -> Any:
            if timeout is None:
                return payload
            return SignalResult(kind=kind, payload=payload if kind == "signal" else None)

        if rec is not None and rec.status == _COMPLETED:
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
            _SIGNAL,
            _COMPLETED,
            result=signal_result(PAYLOAD_SLOT),
            at=at,
            meta=meta,
        )
        # The store puts the payload in the slot, so that consuming it is one atomic write.
        prefix, suffix = consumed.split_at_slot()
        timeout_record = None
        if deadline is not None:
            timeout_record = StepRecord(
                sid,
                seq,
                _SIGNAL,
                _COMPLETED,
                result=timeout_result(),
                at=at,
                meta={"signal": sig.name},
            ).encode()
        return SignalWait(
            name=sig.name,
            step_id=sid,
            record_prefix=prefix,
            record_suffix=suffix,
            deadline_ms=deadline,
            timeout_record=timeout_record,
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


def _waiting_record(seq: int, sid: str, sig: Signal[Any], deadline: int | None, at_ms: int) -> StepRecord:
    """A signal wait's record while it waits (also what a rejected payload puts back)."""
    meta = {"signal": sig.name, "deadline": deadline}
    return StepRecord(sid, seq, _SIGNAL, _WAITING, at_ms=at_ms, meta=meta)
