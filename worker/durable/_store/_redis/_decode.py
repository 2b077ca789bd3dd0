"""Replies (RESP2 as hiredis gives them: lists, bytes, ints, None) into the store's records, and the
scripts' error codes into the errors they stand for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..._errors import ExecutionFinished, ExecutionNotFound, InvalidStepId
from ..._records import AuditEntry, ExecutionId, ExecutionRecord, Status, ms_to_dt

# A stream entry: its id and its fields.
StreamEntry = tuple[bytes, dict[bytes, bytes]]


def string(value: bytes | None) -> str:
    return value.decode() if value else ""


def opt(value: bytes | None) -> str | None:
    return value.decode() if value else None


def opt_ms(value: bytes | None) -> int | None:
    return int(value) if value else None


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def json_value(value: bytes | None) -> Any:
    return orjson.loads(value) if value else None


def lenient_json(value: bytes | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode(errors="replace")


def pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    """A flat field, value, field, value, ... reply (HGETALL, a stream entry's fields) as a dict."""
    it = iter(flat)
    return dict(zip(it, it, strict=True))


def steps(flat: Sequence[Any]) -> dict[str, bytes]:
    it = iter(flat)
    return {k.decode(): v for k, v in zip(it, it, strict=True)}


def score(value: str) -> str:
    """A sorted-set score as Redis prints it, normalised to an integer string when it is one."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


# ---------------------------------------------------------------------------- streams
def entries(raw: Sequence[Any] | None) -> list[StreamEntry]:
    """XRANGE, XREVRANGE or XAUTOCLAIM entries; a deleted entry (no fields) gets empty fields."""
    return [(entry[0], pairs(entry[1] or ())) for entry in raw or () if entry is not None]


def stream_entries(reply: Sequence[Any] | None) -> list[StreamEntry]:
    """The entries of an XREAD or XREADGROUP reply (None when nothing came), every stream's in turn."""
    return [entry for _stream, raw in reply or () for entry in entries(raw)]


def audit_entry(entry_id: bytes, f: dict[bytes, bytes]) -> AuditEntry:
    at = ms_to_dt(int(f.get(b"t") or 0))
    assert at is not None
    return AuditEntry(
        entry_id=text(entry_id),
        at=at,
        kind=string(f.get(b"k")),
        message=string(f.get(b"m")),
        step_id=opt(f.get(b"s")),
        actor=opt(f.get(b"a")),
        data=lenient_json(f.get(b"d")),
    )


# ---------------------------------------------------------------------------- execution records
def record(execution_id: str, flat: Sequence[Any]) -> ExecutionRecord:
    return record_from(execution_id, pairs(flat))


def record_from(execution_id: str, f: dict[bytes, bytes]) -> ExecutionRecord:
    g = f.get
    created = ms_to_dt(int(f[b"created_ms"]))
    updated = ms_to_dt(opt_ms(g(b"updated_ms"))) or created
    assert created is not None and updated is not None
    return ExecutionRecord(
        execution_id=ExecutionId(execution_id),
        workflow_id=string(g(b"workflow_id")),
        status=Status(f[b"status"].decode()),
        input=json_value(g(b"input")),
        created_at=created,
        updated_at=updated,
        started_at=ms_to_dt(opt_ms(g(b"started_ms"))),
        finished_at=ms_to_dt(opt_ms(g(b"finished_ms"))),
        result=json_value(g(b"result")),
        error=json_value(g(b"error")),
        attempt=int(g(b"attempt") or 1),
        activations=int(g(b"activations") or 0),
        current_step=opt(g(b"current_step")),
        waiting_for=opt(g(b"waiting_for")),
        wake_at=ms_to_dt(opt_ms(g(b"wake_ms"))),
        category=opt(g(b"category")),
        parent=opt(g(b"parent")),
        input_hash=opt(g(b"input_hash")),
        run=int(g(b"run") or 1),
        version=opt(g(b"version")),
        on_parent_cancel=opt(g(b"on_parent_cancel")),
        deadline=ms_to_dt(opt_ms(g(b"deadline_ms"))),
    )


def published_record(execution_id: str, payload: bytes | None) -> ExecutionRecord | None:
    """The final record a done message carried (a JSON array of the hash's fields), if it did."""
    if not payload:
        return None
    try:
        return record(execution_id, [str(x).encode() for x in orjson.loads(payload)])
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return None  # read it instead


# ---------------------------------------------------------------------------- the scripts' refusals
def not_found(execution_id: str) -> ExecutionNotFound:
    return ExecutionNotFound(f"unknown execution {execution_id!r}", execution_id=execution_id)


def finished(execution_id: str) -> ExecutionFinished:
    return ExecutionFinished(f"execution {execution_id!r} has already finished", execution_id=execution_id)


def no_consumed_signal(execution_id: str, step_id: str) -> InvalidStepId:
    return InvalidStepId(
        f"execution {execution_id!r} has no consumed signal at step {step_id!r} to discard",
        execution_id=execution_id,
        step_id=step_id,
    )
