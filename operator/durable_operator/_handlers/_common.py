"""What the handlers of every kind share: the runtime in kopf's memo, the CR as a dict, ages, conditions."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import kopf

from .._runtime import Runtime


def runtime_of(memo: kopf.Memo) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


def age(started: datetime.datetime | None) -> float:
    if started is None:
        return 0.0
    if started.tzinfo is None:
        started = started.replace(tzinfo=datetime.UTC)
    return (datetime.datetime.now(datetime.UTC) - started).total_seconds()


def as_dict(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(body) if not isinstance(body, dict) else body


def condition_status(status: Mapping[str, Any], type_: str) -> str | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return None
