"""The operator's configuration and the state its handlers and its status mirror share."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from typing import TYPE_CHECKING, Any

import kopf

from ._kube import Kube
from ._models import API_VERSION, DurableWorkflowSpec

if TYPE_CHECKING:
    from durable import Durable

    from ._activity import ActivityGate
    from ._mirror import StatusMirror

PLURALS = {
    "DurableWorkflow": "durableworkflows",
    "DurableExecution": "durableexecutions",
    "DurableSignal": "durablesignals",
    "DurableSchedule": "durableschedules",
}
LABEL_MIRROR = "durable.dev/mirror"
LABEL_WORKFLOW = "durable.dev/workflow"
LABEL_SCHEDULE = "durable.dev/schedule"
ANNOTATION_EXECUTION = "durable.dev/execution-id"
FINALIZER = "durable.dev/finalizer"
_USER_EXECUTION = re.compile(r"^k8s-[0-9a-fA-F-]{8,64}$")


@dataclasses.dataclass
class OperatorConfig:
    redis_url: str = "redis://localhost:6379/0"
    #: Override of the API server (tests, local runs); None: in-cluster service account, then kubeconfig.
    server: str | None = None
    token: str | None = None
    insecure: bool = False
    #: The Secret (name, key) the operator puts into worker Deployments as DURABLE_REDIS_URL.
    worker_redis_secret: str | None = None
    worker_redis_secret_key: str = "redis-url"
    #: Status mirror: consumer group, and the prefix of the consumer names (one per replica and term).
    group: str = "durable-operator"
    consumer: str = "durable-operator"
    #: How often a replica looks whether it is the active one (kopf peering), in seconds.
    activity_interval: float = 2.0
    #: Entries another consumer left unacknowledged this long are claimed (besides at each term start).
    claim_idle_seconds: float = 60.0
    #: How often the mirror reconciles every CR against Redis besides at term starts (0: never). A
    #: safety net for events lost without an error the mirror saw: a Redis that restarted empty
    #: faster than the client's retries (the group is re-created silently), a trimmed stream.
    resync_seconds: float = 300.0
    batch_size: int = 256
    batch_window: float = 0.2
    max_patches_per_second: float = 50.0
    #: How often workflow/schedule status and TTLs are refreshed.
    status_interval: float = 15.0
    ttl_interval: float = 30.0
    #: How long a reference (workflowRef, executionRef) may be missing before the CR fails.
    ref_grace_seconds: float = 60.0
    #: How many times a deletion retries a transient store error before it lets the object go.
    delete_retries: int = 3
    #: Result bytes copied into DurableExecution status.
    result_cap: int = 4096


@dataclasses.dataclass
class WorkflowRef:
    namespace: str
    name: str
    uid: str
    workflow_id: str
    mirror: str
    ttl_seconds: int | None


@dataclasses.dataclass
class Runtime:
    """Everything the handlers need; kept in kopf's memo as `memo.runtime`."""

    config: OperatorConfig
    durable: Durable
    kube: Kube
    login: kopf.ConnectionInfo | None = None
    #: (namespace, name) -> DurableWorkflow facts, from the watch stream.
    workflows: dict[tuple[str, str], WorkflowRef] = dataclasses.field(default_factory=dict)
    #: execution id -> (namespace, name) of its DurableExecution.
    executions: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    #: engine schedule id -> (namespace, name) of its DurableSchedule.
    schedules: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    mirror: StatusMirror | None = None
    #: Starts the mirror while this replica is the active one (kopf peering), stops it otherwise.
    activity: ActivityGate | None = None
    #: (namespace, name) -> the lock one DurableWorkflow's rollout decisions take (handler and timer).
    locks: dict[tuple[str, str], asyncio.Lock] = dataclasses.field(default_factory=dict)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((namespace, name), asyncio.Lock())

    def workflows_by_id(self, workflow_id: str) -> list[WorkflowRef]:
        return [ref for ref in self.workflows.values() if ref.workflow_id == workflow_id]

    def forget_execution(self, namespace: str, name: str) -> None:
        for eid, key in list(self.executions.items()):
            if key == (namespace, name):
                del self.executions[eid]


def workflow_ref(body: Any, spec: DurableWorkflowSpec) -> WorkflowRef:
    meta = body["metadata"]
    return WorkflowRef(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid", ""),
        workflow_id=spec.workflow_id,
        mirror=spec.mirror,
        ttl_seconds=spec.retention.ttl_seconds_after_finished if spec.retention else None,
    )


def execution_id_of(body: Any) -> str | None:
    """The execution a DurableExecution stands for (status, then spec, then the mirror annotation)."""
    meta = body.get("metadata") or {}
    eid = (body.get("status") or {}).get("executionId") or (body.get("spec") or {}).get("executionId")
    eid = eid or (meta.get("annotations") or {}).get(ANNOTATION_EXECUTION)
    return str(eid) if eid else None


def user_execution_id(uid: str) -> str:
    """The execution id of a DurableExecution created by a user: its uid makes every start idempotent."""
    return f"k8s-{uid}"


def is_user_execution_id(execution_id: str) -> bool:
    return bool(_USER_EXECUTION.match(execution_id))


def schedule_id(namespace: str, name: str) -> str:
    return f"k8s/{namespace}/{name}"


def delivery_id(uid: str) -> str:
    return f"k8s-{uid}"


def mirror_name(execution_id: str) -> str:
    """A DNS-1123 name for the mirror of an execution started outside Kubernetes."""
    digest = hashlib.sha256(execution_id.encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9-]+", "-", execution_id.lower()).strip("-")[:40].strip("-") or "execution"
    return f"{stem}-{digest}"


def path(kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
    from ._kube import resource_path

    return resource_path(API_VERSION, PLURALS[kind], namespace, name, sub)


def owner_reference(obj: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", API_VERSION),
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }
