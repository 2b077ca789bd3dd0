"""The DurableExecution status mirrors a child execution's parent (`parentExecutionId`)."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import yaml

from durable import ExecutionRecord, Status
from durable._records import ExecutionId
from durable_operator._resources._executions import DurableExecutionStatus
from durable_operator._status import execution_status

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
ROOT = Path(__file__).resolve().parents[2]


def _record(parent: str | None) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=ExecutionId("p:__child:1"),
        workflow_id="wf",
        status=Status.RUNNING,
        input=None,
        created_at=T0,
        updated_at=T0,
        parent=parent,
        on_parent_cancel="cancel" if parent else None,
    )


def test_status_names_the_parent() -> None:
    status = execution_status(_record("p"), None, 1, 1000)
    assert status["parentExecutionId"] == "p"
    model = DurableExecutionStatus.model_validate({"parentExecutionId": status["parentExecutionId"]})
    assert model.parent_execution_id == "p"
    # Not a child: the key is there (a merge patch nulls what an earlier status set) and null.
    assert execution_status(dataclasses.replace(_record(None)), None, 1, 1000)["parentExecutionId"] is None


def test_crd_schema_has_the_field() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "durableexecutions.durable.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert schema["parentExecutionId"]["type"] == "string"
