"""Recorded values: `ctx.emit`, `ctx.note`, and the deterministic `ctx.now`, `ctx.uuid4`, `ctx.random`.

Each is a cheap record, buffered and written with the next checkpoint: the first run records
the value (or writes the event or note), replay returns the recorded value and writes nothing.
"""

from __future__ import annotations

import random as _random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .. import _codec
from .._history import StepKind, StepRecord, StepStatus
from .._records import now_ms
from .._store._base import AuditDraft
from ._replay import ReplayContext, _Done

# Enum members looked up once: attribute access on an Enum class costs about 90 ns on Python 3.11,
# and replay makes these calls once per record of every activation.
_EMIT = StepKind.EMIT
_NOTE = StepKind.NOTE
_NOW = StepKind.NOW
_RANDOM = StepKind.RANDOM
_UUID = StepKind.UUID
_COMPLETED = StepStatus.COMPLETED


class RecordedValues(ReplayContext):
    """`ctx.emit`, `ctx.note`, `ctx.now`, `ctx.uuid4`, `ctx.random`."""

    def emit(self, event: str, payload: Any = None, *, step_id: str | None = None) -> _Done:
        """Publish an event once (written with the next checkpoint); awaiting the result is optional."""
        sid = step_id or self._peek_id(f"__emit:{event}:")
        seq, rec = self._next(sid, _EMIT, user=step_id is not None)
        if rec is None:
            data = _codec.dumps(payload, what=f"payload of event {event!r}", step_id=sid)
            self._activation.buffer(
                StepRecord(
                    sid,
                    seq,
                    _EMIT,
                    _COMPLETED,
                    at_ms=now_ms(),
                    meta={"event": event},
                ),
                AuditDraft(kind="emit", message=f"emitted {event}", step_id=sid, data=data),
            )
            self._activation.buffer_event(event, data)
        return _Done()

    def note(self, message: str, meta: Mapping[str, Any] | None = None) -> _Done:
        """An audit note, written once however often the workflow replays."""
        sid = self._peek_id("__note:")
        seq, rec = self._next(sid, _NOTE, user=False)
        if rec is None:
            data = _codec.dumps(dict(meta) if meta else None, what="note meta", step_id=sid)
            self._activation.buffer(
                StepRecord(sid, seq, _NOTE, _COMPLETED, at_ms=now_ms()),
                AuditDraft(kind="note", message=str(message), step_id=sid, data=data),
            )
        return _Done()

    def _recorded_value(self, prefix: str, kind: StepKind, make: Callable[[], Any]) -> Any:
        sid = self._peek_id(prefix)
        seq, rec = self._next(sid, kind, user=False)
        if rec is not None:
            return rec.result
        value = make()
        self._activation.buffer(StepRecord(sid, seq, kind, _COMPLETED, result=value, at_ms=now_ms()))
        return value

    def now(self) -> datetime:
        """The current time, recorded: replay returns the same instant."""
        return datetime.fromisoformat(
            self._recorded_value("__now:", _NOW, lambda: datetime.now(UTC).isoformat())
        )

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(self._recorded_value("__uuid:", _UUID, lambda: str(uuid.uuid4())))

    def random(self) -> float:
        return float(self._recorded_value("__random:", _RANDOM, _random.random))
