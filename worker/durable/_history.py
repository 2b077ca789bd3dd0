"""An execution's history: one typed `StepRecord` per checkpoint, and its one encoding.

Every `ctx.*` call leaves a record under its step id in the execution's step hash. The workflow
context writes and replays them, the client reads and patches them (`list_step_results`,
`skip_step`), the stores keep them. All of them build and read records here.

Encoding: a JSON object with the keys `seq`, `kind`, `status`, `attempt`, `at` (ms since the
epoch), then `meta` (left out when empty), `error` (left out when None), and `result`, in that
order. That is byte for byte what every earlier version wrote, so stored histories (and the
golden ones in tests/engine/golden) replay unchanged. Decoding fills what an old record lacks:
`seq` -1 (a `skip_step` written before the step was reached), kind `step`, status `completed`,
attempt 1, no time, no meta; keys it does not know are ignored.

Storage contract: the stores treat an encoded record as opaque bytes, except for these fields,
which are all that lua/retry.lua and `MemoryStore` may read (through `is_failed` and
`consumed_signal_name` on the Python side):

- `status`: `retry_execution` drops every record whose status is `failed`.
- `kind`, `status`, `result.kind`: `retry_execution(discard_signal_step=...)` accepts only a
  consumed signal: kind `signal`, status `completed`, a `result` object whose `kind` is `signal`.
- `meta.signal`: that signal's name, for the `signal.discarded` audit message.

Everything else the stores write as given: checkpoint records, `skip_step`'s record
(lua/skip_step.lua), a wait's timeout record, and a consumed signal's record, which the store
builds by concatenating `SignalWait.record_prefix + payload + record_suffix` without parsing
anything (lua/suspend.lua); `StepRecord.split_at_slot` makes the two halves. A change to the
fields above, or to what they mean, is a change to lua/retry.lua and to both stores as well.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from . import _codec

__all__ = [
    "PAYLOAD_SLOT",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "consumed_signal_name",
    "is_failed",
    "signal_result",
    "timeout_result",
]


class StepKind(enum.StrEnum):
    """What made a record: the `ctx.*` call at its position in the history."""

    STEP = "step"
    # A compensation `ctx.rollback()` ran; its step id is `rollback:<the compensated step>`.
    COMPENSATION = "compensation"
    SWITCH = "switch"
    SLEEP = "sleep"
    SIGNAL = "signal"
    EMIT = "emit"
    NOTE = "note"
    NOW = "now"
    UUID = "uuid"
    RANDOM = "random"


class StepStatus(enum.StrEnum):
    COMPLETED = "completed"
    # A step's body raised and its retry policy gave up (or does not retry that error).
    FAILED = "failed"
    # A step's body raised; the next attempt is due at `meta.next_at`.
    RETRY = "retry"
    # A sleep until `meta.until`.
    SLEEPING = "sleeping"
    # A signal wait for `meta.signal`, until `meta.deadline` (None: no time-out).
    WAITING = "waiting"


# Decoding looks members up in these: about ten times faster than calling the enum.
_KINDS: dict[str, StepKind] = {k.value: k for k in StepKind}
_STATUSES: dict[str, StepStatus] = {s.value: s for s in StepStatus}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# Stands for the payload in a consumed signal's record while it is encoded (`split_at_slot`). The NUL
# characters keep it from being anything a workflow would write.
PAYLOAD_SLOT = "\x00durable:payload\x00"
_SLOT_JSON = orjson.dumps(PAYLOAD_SLOT)


@dataclass(frozen=True, slots=True, init=False)
class StepRecord:
    """One checkpoint of an execution's history (`Durable.list_step_results` returns these).

    `kind` and `status` are `StepKind`/`StepStatus`, string enums, so they compare equal to their
    plain values; `to_dict` gives plain strings.
    """

    step_id: str
    seq: int
    kind: StepKind
    status: StepStatus
    result: Any = None
    error: dict[str, Any] | None = None
    attempt: int = 1
    at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # Not the dataclass's own: a frozen dataclass sets each field through `object.__setattr__`, and
    # every activation makes one record per record of its history. Setting the slots through their
    # descriptors (bound below the class) makes this about twice as fast.
    def __init__(
        self,
        step_id: str,
        seq: int,
        kind: StepKind,
        status: StepStatus,
        result: Any = None,
        error: dict[str, Any] | None = None,
        attempt: int = 1,
        at: datetime | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        _set_step_id(self, step_id)
        _set_seq(self, seq)
        _set_kind(self, kind)
        _set_status(self, status)
        _set_result(self, result)
        _set_error(self, error)
        _set_attempt(self, attempt)
        _set_at(self, at)
        _set_meta(self, {} if meta is None else meta)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "seq": self.seq,
            "kind": str(self.kind),
            "status": str(self.status),
            "result": self.result,
            "error": self.error,
            "attempt": self.attempt,
            "at": self.at.isoformat() if self.at else None,
            "meta": self.meta,
        }

    def encode(self) -> bytes:
        """The stored form (see the module's docstring); a result JSON cannot hold raises
        `SerializationError` naming the step."""
        data: dict[str, Any] = {
            "seq": self.seq,
            "kind": self.kind,
            "status": self.status,
            "attempt": self.attempt,
            # Integer arithmetic, so that a decoded record encodes to the same bytes.
            "at": None if self.at is None else (self.at - _EPOCH) // _MS,
        }
        if self.meta:
            data["meta"] = self.meta
        if self.error is not None:
            data["error"] = self.error
        data["result"] = self.result
        step_id = self.step_id
        return _codec.dumps(data, what=f"result of step {step_id!r}", step_id=step_id)

    @classmethod
    def decode(cls, step_id: str, raw: bytes | str) -> StepRecord:
        """The record stored under `step_id`; raises `ValueError` if `raw` is not one."""
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"step {step_id!r}: a step record is a JSON object, not {type(data).__name__}")
        try:
            kind = _KINDS[data.get("kind", "step")]
            status = _STATUSES[data.get("status", "completed")]
        except (KeyError, TypeError):
            raise ValueError(
                f"step {step_id!r}: unknown kind {data.get('kind')!r} or status {data.get('status')!r}"
            ) from None
        at = data.get("at")
        return cls(
            step_id,
            int(data.get("seq", -1)),
            kind,
            status,
            data.get("result"),
            data.get("error"),
            int(data.get("attempt", 1)),
            # `_records.ms_to_dt`, inlined: that module imports this one (it re-exports `StepRecord`).
            None if at is None else datetime.fromtimestamp(at / 1000, UTC),
            data.get("meta") or {},
        )

    def split_at_slot(self) -> tuple[bytes, bytes]:
        """This record encoded, cut where its result holds `PAYLOAD_SLOT`: `(prefix, suffix)`.

        `prefix + payload + suffix` is the record with the JSON `payload` in the slot's place. A
        store joins them when it consumes a signal (`SignalWait`), so that taking the payload and
        recording it is one atomic write, whatever the key order of the encoding.
        """
        prefix, slot, suffix = self.encode().partition(_SLOT_JSON)
        if not slot or _SLOT_JSON in suffix:
            raise ValueError(f"step {self.step_id!r}: the record must hold PAYLOAD_SLOT exactly once")
        return prefix, suffix

    def signal_outcome(self) -> tuple[Literal["signal", "timeout"], Any]:
        """What a completed signal wait returned: `("timeout", None)` or `("signal", payload)`."""
        result = self.result
        if not isinstance(result, dict):
            return "signal", result  # a payload stored without its kind
        if result.get("kind") == "timeout":
            return "timeout", None
        return "signal", result.get("payload")


_set_step_id, _set_seq, _set_kind, _set_status, _set_result, _set_error, _set_attempt, _set_at, _set_meta = (
    getattr(StepRecord, f.name).__set__ for f in fields(StepRecord)
)


def signal_result(payload: Any) -> dict[str, Any]:
    """The result of a signal wait that consumed `payload`."""
    return {"kind": "signal", "payload": payload}


def timeout_result() -> dict[str, Any]:
    """The result of a signal wait whose deadline passed."""
    return {"kind": "timeout", "payload": None}


# ------------------------------------------------------------------ what the stores read
def _stored(raw: bytes | None) -> dict[str, Any] | None:
    """The record as a store sees it: a JSON object, or None for anything else (as lua/retry.lua's pcall)."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def is_failed(raw: bytes) -> bool:
    """Whether `retry_execution` drops this record: its `status` is failed."""
    data = _stored(raw)
    return data is not None and data.get("status") == StepStatus.FAILED


def consumed_signal_name(raw: bytes | None) -> str | None:
    """If `raw` is a consumed signal (what `retry_execution` may discard), its signal's name ("" if
    the record names none); else None."""
    data = _stored(raw)
    if data is None or data.get("kind") != StepKind.SIGNAL or data.get("status") != StepStatus.COMPLETED:
        return None
    result = data.get("result")
    if not (isinstance(result, dict) and result.get("kind") == "signal"):
        return None
    meta = data.get("meta")
    name = meta.get("signal") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
