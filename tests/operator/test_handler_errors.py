"""How handlers hand errors to kopf: retried later, or refused for good (the one translation every site uses)."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from durable import Backoff, InvalidSchedule, RetryableError, StoreUnavailable
from durable_operator._handlers._errors import refuse, retry_delay, retry_later
from durable_operator._kube import KubeError
from durable_operator._metrics import metrics


def _errors(kind: str) -> float:
    return float(metrics().reconcile_errors.labels(kind=kind)._value.get())


def _outcomes(kind: str, outcome: str) -> float:
    return float(metrics().reconciles.labels(kind=kind, outcome=outcome)._value.get())


def test_a_transient_error_is_retried_after_its_delay_counted_and_reported_first() -> None:
    status: dict[str, Any] = {}
    before = _errors("RetryKind")
    cause = StoreUnavailable("redis is down")
    with (
        pytest.raises(kopf.TemporaryError) as caught,
        retry_later("signal e1", 4.0, kind="RetryKind", report=lambda exc: status.update(message=str(exc))),
    ):
        raise cause
    assert str(caught.value) == "signal e1: redis is down" and caught.value.delay == 4.0
    assert caught.value.__cause__ is cause
    assert status == {"message": "redis is down"}
    assert _errors("RetryKind") == before + 1


def test_only_the_named_errors_are_translated() -> None:
    with pytest.raises(RetryableError), retry_later("status of e1", 1, errors=(KubeError,)):
        raise RetryableError("not an API error")
    with (
        pytest.raises(kopf.TemporaryError, match=r"^status of e1: HTTP 503: gone$"),
        retry_later("status of e1", 1, errors=(KubeError,)),
    ):
        raise KubeError(503, "gone")
    with retry_later("store", 5):
        pass  # nothing raised, nothing done


def test_a_deletion_without_tries_left_gives_up_instead_of_raising() -> None:
    given_up: list[Exception] = []
    with (
        pytest.raises(kopf.TemporaryError, match=r"^cancel e1: down$"),
        retry_later("cancel e1", 2.0, tries_left=True, give_up=given_up.append),
    ):
        raise StoreUnavailable("down")
    assert given_up == []
    with retry_later("cancel e1", 2.0, tries_left=False, give_up=given_up.append):
        raise StoreUnavailable("still down")
    assert [str(e) for e in given_up] == ["still down"]


def test_a_refusal_reports_counts_as_invalid_and_does_not_chain() -> None:
    reported: list[str] = []
    before = _outcomes("RefuseKind", "invalid")
    with (
        pytest.raises(kopf.PermanentError) as caught,
        refuse("RefuseKind", (InvalidSchedule, ValueError), lambda exc: reported.append(str(exc)), str),
    ):
        raise InvalidSchedule("cron 'x' is not valid")
    assert str(caught.value) == "cron 'x' is not valid"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert reported == ["cron 'x' is not valid"]
    assert _outcomes("RefuseKind", "invalid") == before + 1


def test_kopf_retries_wait_one_second_doubling_up_to_thirty() -> None:
    assert [retry_delay(n) for n in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    # The formula the handlers used before they took the project's one back-off.
    assert all(retry_delay(n) == float(min(2 ** min(n, 6), 30)) for n in range(200))


async def test_a_backoffs_delay_after_n_failures_is_what_its_next_sleep_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    for first, cap in [(0.5, 10.0), (0.05, 0.3), (1.0, 30.0), (0.3, 0.3)]:
        backoff = Backoff(first, cap)
        slept.clear()
        for _ in range(12):
            await backoff.sleep()
        assert [Backoff(first, cap).delay_after(n) for n in range(12)] == slept
        assert backoff.delay_after(3) == slept[3]  # stateless: the sleeps taken do not count
