"""DurableWorkflow: a workflow type served in a namespace, and the worker Deployment it may own."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from ._wire import (
    DNS_SUBDOMAIN,
    PY_MODULE,
    WORKER_VERSION,
    WORKFLOW_ID,
    Condition,
    WireModel,
    cel,
    conditions_field,
)


class KeyRef(WireModel):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    optional: bool | None = None


class EnvVarSource(WireModel):
    """A key of a Secret or ConfigMap in the workflow's namespace."""

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "exactly one of secretKeyRef or configMapKeyRef must be set",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("exactly one of secretKeyRef or configMapKeyRef must be set")
        return self


class EnvVar(WireModel):
    name: str = Field(max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = Field(default=None, max_length=32768)
    value_from: EnvVarSource | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("!(has(self.value) && has(self.valueFrom))", "value and valueFrom are mutually exclusive")
            ]
        }
    )

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("value and valueFrom are mutually exclusive")
        return self


Quantity = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


class Resources(WireModel):
    """Compute resources of one worker container (as in a Pod spec)."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=8)
    limits: dict[str, Quantity] | None = Field(default=None, max_length=8)


class WorkerTemplate(WireModel):
    """A worker Deployment the operator owns for this workflow."""

    image: str = Field(min_length=1, max_length=512, description="Worker image with the workflow code.")
    module: str = Field(
        max_length=256,
        pattern=PY_MODULE,
        description="Python module to import; it registers the workflows with @workflow.",
    )
    replicas: int = Field(default=1, ge=0, le=1000)
    concurrency: int = Field(default=64, ge=1, le=10000, description="Executions one worker runs at once.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    resources: Resources | None = None
    env: list[EnvVar] | None = Field(default=None, max_length=64)
    service_account_name: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN)
    node_selector: dict[str, Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=32
    )
    version: str | None = Field(
        default=None,
        max_length=63,
        pattern=WORKER_VERSION,
        description="This code's worker version (default: derived from the image: the first 12 hex "
        "digits of its digest, else its tag, else `latest`). A new version gets a Deployment of its "
        "own beside the old one, which drains.",
    )
    rollout: Literal["verify", "force"] = Field(
        default="verify",
        description="verify: a new version becomes current only after a replay-check Job shows the "
        "current version's in-flight executions replay on it; force: at once.",
    )
    draining_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Replicas an old version keeps while all its in-flight executions sleep or wait.",
    )
    verify_timeout_seconds: int = Field(
        default=600, ge=10, le=24 * 3600, description="Deadline of the replay-check Job."
    )


class Retention(WireModel):
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=365 * 24 * 3600,
        description="Delete finished DurableExecution objects of this workflow after this many seconds "
        "(an execution's own ttlSecondsAfterFinished wins).",
    )
    history_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=10 * 365 * 24 * 3600,
        description="Workers this operator runs compact a completed or cancelled execution's step "
        "history and audit this many seconds after it finished (`durable worker --retention`).",
    )


MirrorPolicy = Literal["all", "failed", "none"]


class DurableWorkflowSpec(WireModel):
    """Declares a workflow type served in this namespace."""

    workflow_id: str = Field(max_length=200, pattern=WORKFLOW_ID, description="The id given to @workflow.")
    worker: WorkerTemplate | None = Field(
        default=None, description="When set, the operator owns a worker Deployment serving this workflow."
    )
    retention: Retention | None = None
    mirror: MirrorPolicy = Field(
        default="failed",
        description="Which executions started outside Kubernetes (SDK, schedules) get a DurableExecution mirror.",
    )


VersionState = Literal["verifying", "current", "draining", "blocked"]


class WorkerVersionStatus(WireModel):
    """One worker version of this workflow: the one new executions go to, one being checked or
    blocked, or an old one draining its in-flight executions."""

    version: str = Field(max_length=63, description='The worker version ("" for unversioned workers).')
    state: VersionState
    image: str | None = Field(default=None, max_length=512)
    replicas: int | None = Field(default=None, description="Desired replicas of its Deployment.")
    ready_replicas: int | None = None
    in_flight: int | None = Field(default=None, description="Its executions not finished yet.")
    message: str | None = Field(default=None, max_length=1024)


class DurableWorkflowStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = conditions_field()
    current_version: str | None = Field(
        default=None, max_length=63, description="The worker version new executions go to."
    )
    versions: list[WorkerVersionStatus] | None = Field(default=None, max_length=32)
    draining: int | None = Field(default=None, description="Old versions still draining.")
    workers: int | None = Field(default=None, description="Desired worker replicas.")
    ready_workers: int | None = Field(default=None, description="Ready worker replicas.")
    running: int | None = Field(default=None, description="Executions not finished yet.")
    failed: int | None = Field(default=None, description="Failed executions.")
