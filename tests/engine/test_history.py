"""The typed step record writes the bytes the untyped encoder wrote, and reads what it wrote.

`legacy_encode` and `legacy_decode` are the encoder and the client's decoder as they were before
`durable._history` (frozen copies): stored histories must keep replaying, and a record encoded
today must be the same bytes an older worker would have written for it.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import durable
from durable._history import (
    PAYLOAD_SLOT,
    StepKind,
    StepRecord,
    StepStatus,
    consumed_signal_name,
    is_failed,
    signal_result,
    timeout_result,
)

GOLDEN = Path(__file__).parent / "golden"
AT = 1_795_266_175_489


def legacy_encode(
    seq: int,
    kind: str,
    status: str,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
    attempt: int = 1,
    at_ms: int,
    meta: Mapping[str, Any] | None = None,
) -> bytes:
    data: dict[str, Any] = {"seq": seq, "kind": kind, "status": status, "attempt": attempt, "at": at_ms}
    if meta:
        data["meta"] = dict(meta)
    if error is not None:
        data["error"] = error
    data["result"] = result
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def legacy_decode(step_id: str, raw: bytes) -> dict[str, Any]:
    data = orjson.loads(raw)
    at = data.get("at")
    return {
        "step_id": step_id,
        "seq": int(data.get("seq", -1)),
        "kind": str(data.get("kind", "step")),
        "status": str(data.get("status", "completed")),
        "result": data.get("result"),
        "error": data.get("error"),
        "attempt": int(data.get("attempt", 1)),
        "at": None if at is None else datetime.fromtimestamp(at / 1000, tz=UTC),
        "meta": data.get("meta") or {},
    }


ERROR = {"type": "ValueError", "message": "no stock", "fields": {}, "retryable": True}

# (seq, kind, status, keyword arguments of the legacy encoder): every record shape the context, the
# client's skip_step and the signal waits write.
TABLE: list[tuple[int, str, str, dict[str, Any]]] = [
    (1, "step", "completed", {"result": {"order_id": "o-7", "reserved": True}, "meta": {"ms": 3}}),
    (2, "step", "completed", {"result": [1, "two", None, 3.5], "attempt": 3, "meta": {"ms": 0}}),
    (3, "step", "retry", {"error": ERROR, "attempt": 2, "meta": {"next_at": AT + 500}}),
    (4, "step", "failed", {"error": ERROR, "attempt": 5}),
    (5, "compensation", "completed", {"result": "released", "meta": {"ms": 1}}),
    (6, "switch", "completed", {"result": "air", "meta": {"branch": "express"}}),
    (7, "sleep", "sleeping", {"meta": {"until": AT + 3_600_000}}),
    (8, "sleep", "completed", {"meta": {"until": AT}}),
    (9, "signal", "waiting", {"meta": {"signal": "orders.approved", "deadline": None}}),
    (10, "signal", "waiting", {"meta": {"signal": "orders.approved", "deadline": AT + 60_000}}),
    (11, "signal", "completed", {"result": {"kind": "signal", "payload": {"ok": "\u00e9"}}, "meta": {"signal": "s"}}),
    (12, "signal", "completed", {"result": {"kind": "timeout", "payload": None}, "meta": {"signal": "s"}}),
    (13, "emit", "completed", {"meta": {"event": "order.shipped"}}),
    (14, "note", "completed", {}),
    (15, "now", "completed", {"result": "2026-12-03T21:02:00.123456+00:00"}),
    (16, "uuid", "completed", {"result": "772e1e90-f953-448a-9806-e76f1a56d0e5"}),
    (17, "random", "completed", {"result": 0.8444218515250481}),
    (-1, "step", "completed", {"result": {"forced": True}, "meta": {"skipped_by": "ops"}}),
    (-1, "signal", "completed", {"result": {"kind": "signal", "payload": 1}, "meta": {"skipped_by": "ops"}}),
    (18, "step", "completed", {"result": None, "meta": {}}),  # empty meta: left out
]  # fmt: skip


def _typed(step_id: str, seq: int, kind: str, status: str, kw: dict[str, Any]) -> StepRecord:
    return StepRecord(
        step_id,
        seq,
        StepKind(kind),
        StepStatus(status),
        result=kw.get("result"),
        error=kw.get("error"),
        attempt=kw.get("attempt", 1),
        at=datetime.fromtimestamp(kw.get("at_ms", AT) / 1000, tz=UTC),
        meta=kw.get("meta", {}),
    )


@pytest.mark.parametrize(("seq", "kind", "status", "kw"), TABLE)
def test_new_bytes_equal_the_old_encoders(seq: int, kind: str, status: str, kw: dict[str, Any]) -> None:
    legacy = legacy_encode(seq, kind, status, at_ms=AT, **kw)
    assert _typed("s", seq, kind, status, kw).encode() == legacy


@pytest.mark.parametrize(("seq", "kind", "status", "kw"), TABLE)
def test_old_records_decode_to_what_the_client_showed(
    seq: int, kind: str, status: str, kw: dict[str, Any]
) -> None:
    legacy = legacy_encode(seq, kind, status, at_ms=AT, **kw)
    record = StepRecord.decode("s", legacy)
    assert record.to_dict() == {
        **legacy_decode("s", legacy),
        "at": record.at.isoformat() if record.at else None,
    }
    assert record.at == legacy_decode("s", legacy)["at"]
    assert record.encode() == legacy  # decoding and encoding again changes no byte


def test_every_millisecond_survives_the_trip_through_datetime() -> None:
    for at in [0, 1, 999, AT, AT + 1, 4_102_444_800_000, *range(AT, AT + 5_000)]:
        raw = legacy_encode(1, "note", "completed", at_ms=at)
        assert StepRecord.decode("n", raw).encode() == raw


def test_golden_histories_decode_and_encode_unchanged() -> None:
    for path in GOLDEN.glob("*.json"):
        history = json.loads(path.read_text())["history"]
        for step_id, data in history.items():
            raw = orjson.dumps(data)  # what the replay helper stores (keys in the file's order)
            record = StepRecord.decode(step_id, raw)
            assert orjson.loads(record.encode()) == data
            assert record.kind == data["kind"] and record.status == data["status"]


def test_missing_fields_get_the_old_defaults_and_bad_records_raise() -> None:
    record = StepRecord.decode("x", b'{"result": 5, "extra": true}')
    assert (record.seq, record.kind, record.status, record.attempt, record.at, record.meta) == (
        -1, "step", "completed", 1, None, {},
    )  # fmt: skip
    for bad in (b"[]", b"{", b"5"):
        with pytest.raises(ValueError):
            StepRecord.decode("x", bad)
    # A kind or status this version does not know (a newer writer's) raises where it is read.
    for field, bad in (
        ("kind", b'{"kind": "mystery"}'),
        ("status", b'{"status": "lost"}'),
        ("kind", b'{"kind": []}'),
    ):
        record = StepRecord.decode("x", bad)
        with pytest.raises(ValueError, match=f"unknown {field}"):
            getattr(record, field)


def test_kinds_and_statuses_are_plain_strings_to_users() -> None:
    record = StepRecord.decode("s", legacy_encode(3, "step", "retry", at_ms=AT, error=ERROR))
    assert record.kind == "step" and record.status == "retry"
    as_dict = record.to_dict()
    assert type(as_dict["kind"]) is str and type(as_dict["status"]) is str
    assert json.dumps(as_dict["kind"]) == '"step"'
    assert durable.StepRecord is StepRecord


def test_the_record_is_a_frozen_value_with_the_old_fields() -> None:
    record = StepRecord("s", 1, StepKind.STEP, StepStatus.COMPLETED)
    names = ["step_id", "seq", "kind", "status", "result", "error", "attempt", "at", "meta"]
    assert [getattr(record, name) for name in names] == ["s", 1, "step", "completed", None, None, 1, None, {}]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.seq = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.meta = {}  # type: ignore[misc]
    moved = record.replace(seq=2, meta={"ms": 1})
    assert moved == StepRecord("s", 2, StepKind.STEP, StepStatus.COMPLETED, meta={"ms": 1}) != record
    assert moved.to_dict()["meta"] == {"ms": 1} and record.meta == {}
    at = datetime.fromtimestamp(AT / 1000, tz=UTC)
    timed = record.replace(at=at)
    assert timed.at == at and timed.at_ms == AT and timed == StepRecord("s", 1, "step", "completed", at_ms=AT)  # type: ignore[arg-type]
    assert timed.replace(seq=5).at == at  # the time survives other changes
    assert repr(timed).startswith("StepRecord(step_id='s', seq=1, kind=<StepKind.STEP: 'step'>")
    assert pickle.loads(pickle.dumps(timed)) == timed


def test_the_consumed_signal_halves_are_the_old_splice() -> None:
    meta = {"signal": "orders.approved", "deadline": AT + 9}
    consumed = StepRecord(
        "w",
        3,
        StepKind.SIGNAL,
        StepStatus.COMPLETED,
        result=signal_result(PAYLOAD_SLOT),
        at=_dt(AT),
        meta=meta,
    )
    prefix, suffix = consumed.split_at_slot()
    head = legacy_encode(3, "signal", "completed", at_ms=AT, meta=meta)
    assert prefix == head[: -len(b"null}")] + b'{"kind":"signal","payload":'
    assert suffix == b"}}"
    payload = b'{"approved":true}'
    spliced = StepRecord.decode("w", prefix + payload + suffix)
    assert spliced.signal_outcome() == ("signal", {"approved": True})
    assert consumed_signal_name(prefix + payload + suffix) == "orders.approved"


def test_a_slot_must_occur_once() -> None:
    no_slot = StepRecord("w", 1, StepKind.SIGNAL, StepStatus.COMPLETED, result=signal_result(1))
    twice = StepRecord(
        "w",
        1,
        StepKind.SIGNAL,
        StepStatus.COMPLETED,
        result=signal_result(PAYLOAD_SLOT),
        meta={"x": PAYLOAD_SLOT},
    )
    for record in (no_slot, twice):
        with pytest.raises(ValueError):
            record.split_at_slot()


def test_signal_outcomes() -> None:
    def outcome(result: Any) -> tuple[str, Any]:
        return StepRecord("w", 1, StepKind.SIGNAL, StepStatus.COMPLETED, result=result).signal_outcome()

    assert outcome(timeout_result()) == ("timeout", None)
    assert outcome(signal_result([1])) == ("signal", [1])
    assert outcome("bare") == ("signal", "bare")
    assert outcome({"payload": 2}) == ("signal", 2)


def test_what_the_stores_read() -> None:
    failed = legacy_encode(1, "step", "failed", at_ms=AT, error=ERROR)
    assert is_failed(failed)
    assert not is_failed(legacy_encode(1, "step", "retry", at_ms=AT, error=ERROR))
    assert not is_failed(b"not json") and not is_failed(b"[1]") and not is_failed(b"")
    consumed = legacy_encode(
        2, "signal", "completed", at_ms=AT, result=signal_result(1), meta={"signal": "go"}
    )
    assert consumed_signal_name(consumed) == "go"
    assert (
        consumed_signal_name(legacy_encode(2, "signal", "completed", at_ms=AT, result=signal_result(1))) == ""
    )
    for other in (
        legacy_encode(2, "signal", "completed", at_ms=AT, result=timeout_result(), meta={"signal": "go"}),
        legacy_encode(2, "signal", "waiting", at_ms=AT, meta={"signal": "go", "deadline": None}),
        legacy_encode(2, "step", "completed", at_ms=AT, result=signal_result(1)),
        b"garbage",
        None,
    ):
        assert consumed_signal_name(other) is None


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
