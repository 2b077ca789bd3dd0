"""The crash soak, small: a few hundred executions on three worker processes under kills, a stop,
a Redis restart and a client pause; the check reads histories and side effects (tests/soak.py)."""

from __future__ import annotations

import pytest

import soak


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_crash_soak() -> None:
    cfg = soak.Config.from_env(executions=240, seconds=45.0)
    report, text = soak.run(cfg)
    print(text)
    assert report.ok, text
    assert report.completed == cfg.executions
    assert report.kills >= 5 and report.stops and report.restarts and report.pauses
