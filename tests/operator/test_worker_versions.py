"""Worker versions as the operator names them: derived from images, DNS-safe and distinct in names."""

from __future__ import annotations

import re

import pydantic
import pytest

from durable_operator._models import DurableWorkflowSpec
from durable_operator._verification import describe_divergence, parse_summary
from durable_operator._versions import (
    deployment_name,
    derived_version,
    job_name,
    template_version,
    version_slug,
)
from durable_operator._workers import worker_args

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/acme/orders:1.4.2", "1.4.2"),
        ("registry.local:5000/orders:v2", "v2"),
        ("registry.local:5000/orders", "latest"),
        ("orders", "latest"),
        ("orders:v1@sha256:" + "ABCDEF0123456789" * 4, "abcdef012345"),
        ("registry.local:5000/team/orders@sha256:" + "0" * 64, "000000000000"),
    ],
)
def test_version_derived_from_the_image(image: str, version: str) -> None:
    assert derived_version(image) == version


def test_a_tag_that_is_no_version_becomes_a_hash() -> None:
    odd = derived_version("orders:_private")
    assert re.fullmatch(r"[0-9a-f]{12}", odd)
    assert derived_version("orders:" + "x" * 100) != derived_version("orders:" + "y" * 100)


def _spec(**worker: object) -> DurableWorkflowSpec:
    return DurableWorkflowSpec.model_validate(
        {"workflowId": "app.wf", "worker": {"image": "orders:7", "module": "app", **worker}}
    )


def test_explicit_version_wins_and_bad_ones_are_refused() -> None:
    assert template_version(_spec().worker) == "7"  # type: ignore[arg-type]
    assert template_version(_spec(version="2024.05_rc-1").worker) == "2024.05_rc-1"  # type: ignore[arg-type]
    for bad in ("-v1", "v 1", "v/1", "x" * 64, ""):
        with pytest.raises(pydantic.ValidationError):
            _spec(version=bad)


def test_names_are_dns_safe_and_distinct() -> None:
    versions = ["v1", "V1", "v_1", "v.1", "v-1", "1.0", "1-0", "x" * 63, "x" * 62 + "y", ""]
    slugs = {version_slug(v) for v in versions}
    assert len(slugs) == len(versions)
    for v in versions:
        assert DNS_LABEL.match(version_slug(v)) and len(version_slug(v)) <= 63
        job = job_name("a-rather-long-workflow-name-for-orders-and-returns", v)
        assert DNS_LABEL.match(job) and len(job) <= 63, job
    assert version_slug("v1") == "v1" and deployment_name("orders", "v1") == "orders-worker-v1"
    assert deployment_name("orders", "v.1") != deployment_name("orders", "v-1")
    assert job_name("w" * 63, "v1") != job_name("w" * 62 + "x", "v1")


def test_worker_args_carry_version_and_retention() -> None:
    spec = DurableWorkflowSpec.model_validate(
        {
            "workflowId": "app.wf",
            "retention": {"historySecondsAfterFinished": 604800},
            "worker": {"image": "orders:7", "module": "app"},
        }
    )
    assert worker_args(spec, "7") == [
        "worker", "--app", "app", "--concurrency", "64", "--version", "7", "--retention", "604800",
    ]  # fmt: skip
    assert "--retention" not in worker_args(_spec(), "7")


def test_divergence_message_names_the_executions() -> None:
    summary = parse_summary(
        '{"checked": 9, "ok": 2, "diverged": ['
        + ",".join(
            f'{{"execution_id": "e{i}", "workflow_id": "w", "position": {i}, "expected": "a", '
            f'"actual": "b", "error": null}}'
            for i in range(7)
        )
        + "]}"
    )
    assert summary is not None
    text = describe_divergence(summary, "v2", "v1")
    assert text.startswith("7 of 9 execution(s) in flight on v1 would not replay on v2: ")
    assert "e0 at position 0: expected 'a', got 'b'" in text and "e4" in text and "e5" not in text
    assert text.endswith("; and 2 more")
    assert parse_summary("Traceback (most recent call last): ...") is None
