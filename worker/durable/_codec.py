"""JSON encoding of everything stored: orjson, with pydantic models turned into plain data."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import BaseModel

from ._errors import SerializationError

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"type {type(value).__name__} is not JSON-serialisable")


def dumps(value: Any, *, what: str = "value", step_id: str | None = None) -> bytes:
    """Encode `value`; a value JSON cannot hold raises `SerializationError` naming `what`."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise SerializationError(f"{what} is not JSON-serialisable: {exc}", step_id=step_id) from exc


def loads(data: bytes | str | None) -> Any:
    if data is None or data == b"" or data == "":
        return None
    return orjson.loads(data)


def to_plain(value: Any, *, what: str = "value", step_id: str | None = None) -> Any:
    """The value as it will come back from the store (tuples become lists, models dicts)."""
    return orjson.loads(dumps(value, what=what, step_id=step_id))


def input_hash(encoded: bytes) -> str:
    """sha256 (hex) of an encoded input in canonical form: equal inputs hash equal whatever their key order."""
    canonical = orjson.dumps(orjson.loads(encoded) if encoded else None, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
