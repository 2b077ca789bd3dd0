"""The crash soak, small: a few hundred executions on three worker processes under kills, a stop,
a Redis restart and a client pause; the check reads histories and side effects (tests/soak.py)."""

from __future__ import annotations

from types import SimpleNamespace

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


def test_double_runs_are_explained_only_by_a_matching_fault() -> None:
    """The soak's classifier on a made-up timeline (fast; the soak itself is above)."""
    cfg = soak.Config(op_timeout=1.0, commit_slack_s=0.5)
    h = SimpleNamespace(
        cfg=cfg,
        timeline=[
            soak.Fault("kill", 10.0, 10.0, pid=1),
            soak.Fault("stop", 20.0, 26.0, pid=2),
            soak.Fault("restart", 30.0, 30.4),
            soak.Fault("pause", 40.0, 42.4),
        ],
    )
    explain = soak._explain
    assert explain(h, 1, 9.9, None) == "kill"  # cut mid-body by the kill of its own worker
    assert explain(h, 1, 9.0, 9.5) == "kill"  # killed between its body and its commit
    assert explain(h, 3, 9.9, None) is None  # another worker's kill explains nothing
    assert explain(h, 1, 5.0, 6.0) is None  # its worker died long after it finished
    assert explain(h, 2, 19.9, 25.9) == "stop"
    assert explain(h, 2, 27.0, 27.1) is None  # after the stop was over
    assert explain(h, 5, 29.5, 29.6) == "restart"  # commit window ran into the restart
    assert explain(h, 5, 41.0, 41.1) == "pause"
    assert explain(h, 5, 35.0, 35.1) is None  # no fault near it: a real double run
