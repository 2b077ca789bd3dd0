"""How handlers report what went wrong: reconcile counts, spec errors, kopf's retry delays."""

from __future__ import annotations

import pydantic

from .._metrics import metrics
from .._status import one_line


def spec_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    text = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return one_line(f"spec.{where}: {text}" if where else f"spec: {text}")


def retry_delay(retry: int) -> float:
    return float(min(2 ** min(retry, 6), 30))


def count(kind: str, outcome: str) -> None:
    metrics().reconciles.labels(kind=kind, outcome=outcome).inc()
    if outcome == "error":
        metrics().reconcile_errors.labels(kind=kind).inc()
