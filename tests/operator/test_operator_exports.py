"""The operator package's public surface is pinned; the console entry point and crdgen are wired."""

from __future__ import annotations

import pytest

import durable_operator
from durable_operator import _main


def test_public_names() -> None:
    assert sorted(durable_operator.__all__) == [
        "API_VERSION",
        "DurableExecutionSpec",
        "DurableExecutionStatus",
        "DurableScheduleSpec",
        "DurableScheduleStatus",
        "DurableSignalSpec",
        "DurableSignalStatus",
        "DurableWorkflowSpec",
        "DurableWorkflowStatus",
        "GROUP",
        "KINDS",
        "Phase",
        "VERSION",
    ]
    for name in durable_operator.__all__:
        assert getattr(durable_operator, name) is not None


def test_cli_reads_the_chart_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_REDIS_URL", "redis://r:6379/1")
    monkeypatch.setenv("DURABLE_PEERING", "rel")
    monkeypatch.setenv("DURABLE_WORKER_REDIS_SECRET", "s")
    args = _main.parse(["--namespace", "a", "--namespace", "b"])
    assert args.redis_url == "redis://r:6379/1" and args.peering == "rel"
    assert args.worker_redis_secret == "s" and args.namespace == ["a", "b"]
