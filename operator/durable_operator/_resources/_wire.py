"""The wire conventions every custom resource model shares.

Field names are camelCase on the wire (aliases) and snake_case in Python; free-form objects
are capped in top-level keys (the schema can say so) and in JSON bytes (only the operator can);
CEL rules are attached with `x-kubernetes-validations` in `json_schema_extra`.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "durable.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Byte caps (compact JSON) for the free-form fields; etcd objects stay far below their 1.5 MiB limit.
MAX_INPUT_BYTES = 32 * 1024
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_RESULT_BYTES = 4 * 1024
#: Top-level key caps the schema itself can enforce on free-form objects.
MAX_FREEFORM_PROPERTIES = 128

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
WORKFLOW_ID = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"
WORKER_VERSION = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
PY_MODULE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
SIGNAL_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$"
# Five or six cron fields of the usual characters, or one of the @-macros.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([0-9A-Za-z*?/,#LW-]+\s+){4,5}[0-9A-Za-z*?/,#LW-]+)$"
)
# A Go-style duration of whole units: 90s, 5m, 1h30m.
DURATION = r"^([0-9]+(ms|s|m|h))+$"
TIME_ZONE = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration string (`1h30m` -> 5400.0)."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def json_size(value: Any) -> int:
    """Bytes of the compact JSON form of `value`."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def check_freeform(name: str, value: dict[str, Any] | None, limit: int) -> dict[str, Any] | None:
    """The caps of a free-form object: top-level keys (as the schema says) and JSON bytes."""
    if value is None:
        return None
    if len(value) > MAX_FREEFORM_PROPERTIES:
        raise ValueError(f"{name} has {len(value)} top-level keys; the limit is {MAX_FREEFORM_PROPERTIES}")
    if (size := json_size(value)) > limit:
        raise ValueError(f"{name} is {size} bytes; the limit is {limit}")
    return value


def cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "message": message, **extra}


FREEFORM: Any = {"x-kubernetes-preserve-unknown-fields": True}
IMMUTABLE: Any = {"x-kubernetes-validations": [cel("self == oldSelf", "is immutable")]}


class WireModel(BaseModel):
    """The base of every spec and status: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The wire form: camelCase keys, no `None`s."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def freeform(description: str) -> Any:
    return Field(
        default=None,
        description=description,
        json_schema_extra={"type": "object", "maxProperties": MAX_FREEFORM_PROPERTIES, **FREEFORM},
    )


# ---------------------------------------------------------------- shared status parts


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    """The latest observation of one aspect of the object's state (metav1.Condition)."""

    type: str = Field(max_length=316, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
    status: ConditionStatus
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str = Field(description="When the condition last changed status (RFC 3339).")
    observed_generation: int | None = Field(default=None, ge=0)


_CONDITIONS_SCHEMA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def conditions_field() -> Any:
    return Field(default_factory=list, max_length=16, json_schema_extra=_CONDITIONS_SCHEMA)


# ---------------------------------------------------------------- times, as Kubernetes writes them


def now_iso() -> str:
    from datetime import UTC

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 with a Z, as Kubernetes writes times."""
    if dt is None:
        return None
    from datetime import UTC

    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
