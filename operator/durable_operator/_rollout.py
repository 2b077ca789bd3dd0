"""Safe worker-version rollouts: one Deployment per version, a replay check before a new version gets
work, and old versions drained, never cut off.

Each reconcile (on a spec change and on the periodic refresh) compares the template's version D with
the one new executions go to, C (`durable.versions.current`):

- no C, or nothing in flight on C: D becomes current at once (nothing to verify);
- C is D: D's Deployment follows the template;
- otherwise D's Deployment starts beside C's, and unless `rollout: force`, a replay-check Job runs
  D's image against C's in-flight executions. Complete: D becomes current. Failed: the rollout is
  blocked (`ReplayVerified=False` naming the divergent executions), D keeps no replicas and C keeps
  serving, until the template names another version or image.

Every other version's Deployment drains: full replicas while some of its executions are runnable,
`drainingReplicas` while they all sleep or wait, deleted once nothing of it is in flight. Nothing is
decided while Redis cannot be read (the caller retries). Every decision is in `status.versions`, the
`ReplayVerified` condition and an Event.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from durable import VersionLoad

from ._models import DurableWorkflowSpec
from ._runtime import Runtime
from ._verification import delete_other_jobs, verify
from ._versions import template_version
from ._workers import (
    delete_deployment,
    ensure_version_deployment,
    ready_condition,
    replicas_of,
    scale_deployment,
    version_deployments,
)

log = logging.getLogger("durable_operator")

#: The ReplayVerified condition: (True / False / None for Unknown, reason, message).
Verified = tuple[bool | None, str, str]


@dataclasses.dataclass
class Rollout:
    """What a reconcile decided, for the DurableWorkflow's status."""

    status: dict[str, Any]
    ready: tuple[bool, str, str]
    #: None: leave the ReplayVerified condition as it is.
    replay: Verified | None = None


def shown(version: str | None) -> str:
    return version if version else '"" (unversioned)'


async def reconcile_versions(
    rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec, status: dict[str, Any]
) -> Rollout:
    """Bring the workflow's worker Deployments and current version one step towards the template.
    Raises the store's `RetryableError` (nothing decided) and `KubeError`."""
    assert spec.worker is not None
    tpl = spec.worker
    wf = spec.workflow_id
    desired = template_version(tpl)
    current = was_current = await rt.durable.versions.current(wf)
    load = await rt.durable.versions.load(wf)
    deps = await version_deployments(rt, workflow)
    previous = {str(v.get("version")): v for v in status.get("versions") or [] if isinstance(v, dict)}
    entries: dict[str, dict[str, Any]] = {}
    replay: Verified | None = None

    def in_flight(version: str | None) -> int:
        return load[version].in_flight if version is not None and version in load else 0

    async def ensure(replicas: int) -> None:
        deps[desired] = await ensure_version_deployment(
            rt, workflow, spec, desired, replicas, deps.get(desired)
        )

    async def promote(reason: str, type_: str, message: str) -> None:
        if await rt.durable.versions.promote(wf, desired, actor="durable-operator"):
            await rt.kube.event(workflow, type_, reason, message)

    if current is None or (current != desired and in_flight(current) == 0):
        await ensure(tpl.replicas)
        before = f"on {shown(current)}" if current is not None else "(no current version)"
        message = f"version {desired} is current: nothing in flight {before} to verify"
        await promote("VersionPromoted", "Normal", message)
        replay, current = (True, "NothingToVerify", message), desired
    elif current == desired:
        await ensure(tpl.replicas)
        if not any(c.get("type") == "ReplayVerified" for c in status.get("conditions") or []):
            replay = (True, "NothingToVerify", f"version {desired} is current")
    elif tpl.rollout == "force":
        await ensure(tpl.replicas)
        message = (
            f"version {desired} made current without a replay check (spec.worker.rollout: force); "
            f"{in_flight(current)} execution(s) stay on {shown(current)}"
        )
        await promote("RolloutForced", "Warning", message)
        replay, current = (None, "Forced", message), desired
    else:
        prev = previous.get(desired) or {}
        if prev.get("state") == "blocked" and prev.get("image") == tpl.image:
            await ensure(0)
            message = str(prev.get("message") or f"the replay check of {desired} failed")
            replay = (False, "ReplayCheckFailed", message)
            entries[desired] = _entry(desired, "blocked", deps[desired], load, message, tpl.image)
        else:
            await ensure(tpl.replicas)
            verdict, started = await verify(rt, workflow, spec, desired, current)
            if started:
                await rt.kube.event(
                    workflow,
                    "Normal",
                    "VerificationStarted",
                    f"checking that the {in_flight(current)} execution(s) in flight on {shown(current)} "
                    f"replay on version {desired} (Job {verdict.job})",
                )
            if verdict.state == "passed":
                message = f"{verdict.message}: version {desired} is current"
                await promote("VerificationPassed", "Normal", message)
                replay, current = (True, "ReplayCheckPassed", verdict.message), desired
            elif verdict.state == "failed":
                deps[desired] = await scale_deployment(rt, deps[desired], 0)
                await rt.kube.event(
                    workflow,
                    "Warning",
                    "VerificationFailed",
                    f"rollout of version {desired} blocked, {shown(current)} keeps serving: {verdict.message}",
                )
                replay = (False, "ReplayCheckFailed", verdict.message)
                entries[desired] = _entry(desired, "blocked", deps[desired], load, verdict.message, tpl.image)
            else:
                replay = (None, "Verifying", verdict.message)
                entries[desired] = _entry(
                    desired, "verifying", deps[desired], load, verdict.message, tpl.image
                )
    await delete_other_jobs(rt, workflow, keep=desired if desired != current else None)
    if current != was_current:
        # Executions started between the first read and the promotion went to the old version:
        # count again before deciding which Deployments have nothing left to run.
        load = await rt.durable.versions.load(wf)

    if current in deps and current != desired:
        deps[current] = await scale_deployment(rt, deps[current], tpl.replicas)
    entries[current] = _entry(
        current,
        "current",
        deps.get(current),
        load,
        None if current in deps else "no worker Deployment of this version in this namespace",
    )
    for version in sorted(set(deps) | set(load)):
        if version in entries:
            continue
        dep = deps.get(version)
        n = load.get(version)
        if dep is not None and (n is None or n.in_flight == 0):
            if await delete_deployment(rt, dep):
                await rt.kube.event(
                    workflow,
                    "Normal",
                    "WorkersDeleted",
                    f"version {shown(version)} has nothing in flight: deleted its worker Deployment "
                    f"{dep['metadata']['name']}",
                )
            continue
        if n is None or n.in_flight == 0:
            continue
        if dep is None:
            message = f"no worker Deployment: {n.in_flight} execution(s) wait for a worker of this version"
            if version not in previous:
                await rt.kube.event(
                    workflow, "Warning", "WorkersMissing", f"version {shown(version)}: {message}"
                )
        else:
            asleep = n.runnable == 0
            replicas = min(tpl.draining_replicas, tpl.replicas) if asleep else tpl.replicas
            deps[version] = dep = await scale_deployment(rt, dep, replicas)
            message = f"{n.in_flight} in flight, {n.runnable} runnable"
        entries[version] = _entry(version, "draining", dep, load, message)

    ordered = sorted(
        entries.values(),
        key=lambda e: ({"current": 0, "verifying": 1, "blocked": 1}.get(e["state"], 2), e["version"]),
    )
    ready, reason, message, workers, ready_workers = ready_condition(spec, current, deps.get(current))
    return Rollout(
        status={
            "currentVersion": current,
            "versions": ordered,
            "draining": sum(1 for e in ordered if e["state"] == "draining"),
            "workers": workers,
            "readyWorkers": ready_workers,
        },
        ready=(ready, reason, message),
        replay=replay,
    )


def _entry(
    version: str,
    state: str,
    dep: dict[str, Any] | None,
    load: dict[str, VersionLoad],
    message: str | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    replicas, ready = replicas_of(dep)
    if image is None and dep is not None:
        containers = (((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        image = containers[0].get("image") if containers else None
    entry: dict[str, Any] = {
        "version": version,
        "state": state,
        "image": image,
        "replicas": replicas,
        "readyReplicas": ready,
        "inFlight": load[version].in_flight if version in load else 0,
        "message": message,
    }
    return {k: v for k, v in entry.items() if v is not None}
