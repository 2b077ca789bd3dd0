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
- `status`, `meta.due_kind`: a step's time-out timer (lua/fire_step_timer.lua, `running_step`) acts only
  on a record whose status is `running`, and audits `heartbeat.timeout` if `due_kind` is `heartbeat`.

Everything else the stores write as given: checkpoint records, `skip_step`'s record
(lua/skip_step.lua), a wait's timeout record, and a consumed signal's record, which the store
builds by concatenating `SignalWait.record_prefix + payload + record_suffix` without parsing
anything (lua/suspend.lua); `StepRecord.split_at_slot` makes the two halves. A change to the
fields above, or to what they mean, is a change to lua/retry.lua and to both stores as well.
"""

from __future__ import annotations

import enum
from dataclasses import FrozenInstanceError
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
    "running_step",
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
    # `ctx.patched(change id)` reached on code that has the change; its step id is `__patch:<change id>`.
    PATCH = "patch"
    # `ctx.start_child`/`ctx.child` started a child execution: result {"execution_id", "workflow", "on_parent_cancel"}.
    CHILD = "child"
    # A wait for a child's end (`ctx.child`, `handle.result()`): waiting (meta.child), then completed with
    # the child's outcome {"status", "result", "error"} as its result.
    CHILD_RESULT = "child_result"
    # `handle.signal(...)` sent a signal to a child (meta.child, meta.signal).
    CHILD_SIGNAL = "child_signal"
    # The execution's deadline passed at this position (`ExecutionTimeout`); step id `__deadline`.
    DEADLINE = "deadline"


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
    # A step attempt with a time-out or heartbeat time-out is running: `meta.due` is when it times out
    # (pushed forward by each heartbeat), `meta.details` its last heartbeat details.
    RUNNING = "running"


# Decoding looks members up in these: about ten times faster than calling the enum.
_KINDS: dict[str, StepKind] = {k.value: k for k in StepKind}
_STATUSES: dict[str, StepStatus] = {s.value: s for s in StepStatus}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# Stands for the payload in a consumed signal's record while it is encoded (`split_at_slot`). The NUL
# characters keep it from being anything a workflow would write.
PAYLOAD_SLOT = "\x00durable:payload\x00"
_SLOT_JSON = orjson.dumps(PAYLOAD_SLOT)


class StepRecord:
    """One checkpoint of an execution's history (`Durable.list_step_results` returns these): its
    `step_id`, `seq`, `kind`, `status`, `result`, `error`, `attempt`, `at` (a datetime, or None) and
    `meta`. Frozen: `replace(**changes)` makes a changed copy.

    `kind` and `status` are `StepKind`/`StepStatus`, string enums, so they compare equal to their
    plain values; `to_dict` gives plain strings.

    A record holds its fields as they are stored (a JSON object) and reads them on access: every
    activation decodes its whole history, and most of a record is never looked at, so building the
    fields up front (a datetime for `at` above all) made replay measurably slower. A decoded record
    encodes to the bytes it was decoded from.
    """

    __slots__ = ("_data", "step_id")

    _data: dict[str, Any]
    step_id: str

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
        *,
        at_ms: int | None = None,
    ) -> None:
        """`at_ms` (milliseconds since the epoch) instead of `at` saves a datetime on the hot path."""
        if at is not None:
            at_ms = (at - _EPOCH) // _MS  # integer arithmetic: every millisecond survives the trip
        data: dict[str, Any] = {"seq": seq, "kind": kind, "status": status, "attempt": attempt, "at": at_ms}
        if meta:
            data["meta"] = meta
        if error is not None:
            data["error"] = error
        data["result"] = result
        _set_data(self, data)
        _set_step_id(self, step_id)

    # ------------------------------------------------------------ fields
    @property
    def seq(self) -> int:
        seq: int = self._data.get("seq", -1)
        return seq

    @property
    def kind(self) -> StepKind:
        kind = self._data.get("kind", "step")
        try:
            return _KINDS[kind]
        except (KeyError, TypeError):
            raise ValueError(f"step {self.step_id!r}: unknown kind {kind!r}") from None

    @property
    def status(self) -> StepStatus:
        status = self._data.get("status", "completed")
        try:
            return _STATUSES[status]
        except (KeyError, TypeError):
            raise ValueError(f"step {self.step_id!r}: unknown status {status!r}") from None

    @property
    def result(self) -> Any:
        return self._data.get("result")

    @property
    def error(self) -> dict[str, Any] | None:
        error: dict[str, Any] | None = self._data.get("error")
        return error

    @property
    def attempt(self) -> int:
        attempt: int = self._data.get("attempt", 1)
        return attempt

    @property
    def at_ms(self) -> int | None:
        """`at` in milliseconds since the epoch, as stored."""
        at: int | None = self._data.get("at")
        return at

    @property
    def at(self) -> datetime | None:
        at = self._data.get("at")
        return None if at is None else datetime.fromtimestamp(at / 1000, UTC)

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self._data.get("meta") or {}
        return meta

    def replays_at(self, seq: int, kind: StepKind) -> bool:
        """Whether a `kind` call at position `seq` may replay this record: it was made there by such a
        call, or by an operator (`skip_step`) before the step was ever reached (seq -1)."""
        data = self._data
        recorded: int = data.get("seq", -1)
        return recorded < 0 or (recorded == seq and data.get("kind", "step") == kind)

    def _fields(self) -> tuple[Any, ...]:
        return (self.step_id, self.seq, self.kind, self.status, self.result, self.error, self.attempt,
                self.at_ms, self.meta)  # fmt: skip

    # ------------------------------------------------------------ a value
    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, StepRecord)
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # results and meta are dicts

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _PUBLIC)
        return f"StepRecord({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_stored, (self.step_id, self._data))

    def replace(self, **changes: Any) -> StepRecord:
        """A copy with the given fields changed (`dataclasses.replace` for this record)."""
        fields = {name: getattr(self, name) for name in _PUBLIC if name != "at"}
        if "at" not in changes:
            fields["at_ms"] = self.at_ms
        fields.update(changes)
        return StepRecord(**fields)

    def to_dict(self) -> dict[str, Any]:
        at = self.at
        return {
            "step_id": self.step_id,
            "seq": self.seq,
            "kind": str(self.kind),
            "status": str(self.status),
            "result": self.result,
            "error": self.error,
            "attempt": self.attempt,
            "at": at.isoformat() if at else None,
            "meta": self.meta,
        }

    # ------------------------------------------------------------ storage
    def encode(self) -> bytes:
        """The stored form (see the module's docstring); a result JSON cannot hold raises
        `SerializationError` naming the step."""
        step_id = self.step_id
        return _codec.dumps(self._data, what=f"result of step {step_id!r}", step_id=step_id)

    @classmethod
    def decode(cls, step_id: str, raw: bytes | str) -> StepRecord:
        """The record stored under `step_id`; raises `ValueError` if `raw` is not one (a kind or status
        this version does not know raises when it is read)."""
        data = orjson.loads(raw)
        if data.__class__ is not dict:
            raise ValueError(f"step {step_id!r}: a step record is a JSON object, not {type(data).__name__}")
        record: StepRecord = _new(cls)
        _set_data(record, data)
        _set_step_id(record, step_id)
        return record

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


# The record's two slots, set through their descriptors: `__setattr__` refuses (the record is frozen).
_set_data = vars(StepRecord)["_data"].__set__
_set_step_id = vars(StepRecord)["step_id"].__set__
_PUBLIC = ("step_id", "seq", "kind", "status", "result", "error", "attempt", "at", "meta")
_new = object.__new__


def _from_stored(step_id: str, data: dict[str, Any]) -> StepRecord:
    record: StepRecord = _new(StepRecord)
    _set_data(record, data)
    _set_step_id(record, step_id)
    return record  # what unpickling calls


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


def running_step(raw: bytes | None) -> dict[str, Any] | None:
    """The record as a store sees it if it is a running step attempt (status `running`), else None."""
    data = _stored(raw)
    if data is None or data.get("status") != StepStatus.RUNNING:
        return None
    return data
