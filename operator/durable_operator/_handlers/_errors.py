"""How handlers report what went wrong: reconcile counts, spec errors, and kopf's retry or refusal.

Errors from the engine and the API server become kopf's at each call site, through
`retry_later` (another try after a delay) or `refuse` (no retry can help). The sites differ
in what they say and do before kopf takes over (a message prefix, a delay, a counted error,
a status written first, a deletion that gives up after a few tries); the helpers take those
differences as arguments, so the translation itself is written once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import kopf
import pydantic

from durable import Backoff, RetryableError

from .._metrics import metrics
from .._status import one_line

E = TypeVar("E", bound=Exception)


def spec_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    text = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return one_line(f"spec.{where}: {text}" if where else f"spec: {text}")


#: kopf counts a handler's retries; retry n waits 1 s doubled n times, at most 30 s (1, 2, 4, 8, 16, 30, 30...).
_RETRIES = Backoff(1.0, 30.0)


def retry_delay(retry: int) -> float:
    return _RETRIES.delay_after(retry)


def count(kind: str, outcome: str) -> None:
    metrics().reconciles.labels(kind=kind, outcome=outcome).inc()
    if outcome == "error":
        metrics().reconcile_errors.labels(kind=kind).inc()


@contextlib.contextmanager
def retry_later(
    what: str,
    delay: float,
    *,
    errors: tuple[type[Exception], ...] = (RetryableError,),
    kind: str | None = None,
    report: Callable[[Exception], object] | None = None,
    tries_left: bool = True,
    give_up: Callable[[Exception], object] | None = None,
) -> Iterator[None]:
    """`errors` (the store's transient ones by default) as kopf's `TemporaryError("<what>: <error>")`.

    Before kopf retries after `delay` seconds: `kind` counts a reconcile error, then `report`
    writes what the status should say meanwhile. A handler that must not wedge its object (a
    deletion) passes `give_up`, which is called instead of raising once `tries_left` is false.
    """
    try:
        yield
    except errors as exc:
        if kind is not None:
            count(kind, "error")
        if report is not None:
            report(exc)
        if tries_left or give_up is None:
            raise kopf.TemporaryError(f"{what}: {exc}", delay=delay) from exc
        give_up(exc)


@contextlib.contextmanager
def refuse(
    kind: str, errors: tuple[type[E], ...], report: Callable[[E], object], message: Callable[[E], str]
) -> Iterator[None]:
    """`errors` no retry can fix as kopf's `PermanentError(message(error))`, after `report` wrote the
    reason into the status, counted as invalid. Not chained: the message is the whole story."""
    try:
        yield
    except errors as exc:
        report(exc)
        count(kind, "invalid")
        raise kopf.PermanentError(message(exc)) from None
