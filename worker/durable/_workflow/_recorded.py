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
from .._records import ms_to_dt, now_ms
from .._store._base import AuditDraft
from ._replay import ReplayContext, _Done


class RecordedValues(ReplayContext):
    """`ctx.emit`, `ctx.note`, `ctx.now`, `ctx.uuid4`, `ctx.random`."""

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
