"""The one back-off every retrying loop uses: doubling delays up to a cap, reset after a success."""

from __future__ import annotations

import asyncio

import pytest

from durable._backoff import Backoff


async def test_delays_double_up_to_the_cap_and_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    backoff = Backoff(0.05, 0.3)
    for _ in range(5):
        await backoff.sleep()
    assert slept == [0.05, 0.1, 0.2, 0.3, 0.3]
    backoff.reset()
    assert backoff.delay == 0.05


@pytest.mark.parametrize(("first", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_refused(first: float, cap: float) -> None:
    with pytest.raises(ValueError, match=r"back-off needs 0 < first <= cap"):
        Backoff(first, cap)
