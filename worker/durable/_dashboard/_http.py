"""Shared request helpers: the app's client, JSON responses and bodies, query parsing, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .._client._durable import Durable
from ._config import DashboardConfig
from ._live import StatusHub

__all__ = ["BadRequest", "client", "config", "hub", "json_response", "parse_time", "read_body"]


class BadRequest(Exception):
    """A request the API cannot take (400)."""


def client(request: Request) -> Durable:
    durable: Durable = request.app.state.durable
    return durable


def config(request: Request) -> DashboardConfig:
    cfg: DashboardConfig = request.app.state.config
    return cfg


def hub(request: Request) -> StatusHub:
    live: StatusHub = request.app.state.hub
    return live


def to_json(data: Any) -> bytes:
    return orjson.dumps(data, default=str)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(to_json(data), status_code=status, media_type="application/json")


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON object (or an HTML form's fields); `BadRequest` for anything else. Empty: {}."""
    raw = await request.body()
    if not raw.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"malformed form body: {exc}") from None
        return {name: values[-1] for name, values in fields.items()}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def parse_time(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 time (a date alone is midnight UTC; no zone means UTC)."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise BadRequest(
            f"{what} must be an ISO 8601 time such as 2024-05-01T10:00:00Z, got {value!r}"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
