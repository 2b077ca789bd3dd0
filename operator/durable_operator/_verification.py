"""The replay-check Job that gates a new worker version, and how the operator reads its outcome.

Before a new version gets work, a Job runs its image with `durable replay-check` against the
in-flight executions of the current version. The Job reports the way any Job does: its status
conditions (`Complete` or `Failed`) and its pod's termination message, which `replay-check
--termination-log /dev/termination-log` fills with a JSON summary (`checked`, `ok`, `diverged`:
execution id, position, expected and actual step, error). With `FallbackToLogsOnError`, a check
that crashed before writing it leaves the end of its log there instead.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from ._kube import KubeError, resource_path
from ._models import DurableWorkflowSpec
from ._runtime import LABEL_WORKFLOW, Runtime, owner_reference
from ._status import one_line
from ._versions import ANNOTATION_IMAGE, ANNOTATION_VERIFIES, ANNOTATION_VERSION, job_name
from ._workers import version_labels, worker_container, worker_pod_spec

JOBS = ("batch/v1", "jobs")
PODS = ("v1", "pods")
#: Executions one check replays at most (newest first), and how long a finished Job is kept.
CHECK_LIMIT = 1000
JOB_TTL_SECONDS = 3600
#: Divergent executions a condition message names.
NAMED = 5


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Where a verification stands: running, passed or failed, in one line for a condition."""

    state: Literal["running", "passed", "failed"]
    message: str
    job: str


def verification_job(
    rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec, version: str, against: str
) -> dict[str, Any]:
    assert spec.worker is not None
    tpl = spec.worker
    meta = workflow["metadata"]
    args = [
        "replay-check",
        "--app",
        tpl.module,
        "--workflow",
        spec.workflow_id,
        "--version",
        against,
        "--finished-within",
        "0",
        "--limit",
        str(CHECK_LIMIT),
        "--termination-log",
        "/dev/termination-log",
    ]
    container = worker_container(rt, spec, "replay-check", args)
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    pod_spec = worker_pod_spec(spec, container)
    pod_spec["restartPolicy"] = "Never"
    pod_spec["terminationGracePeriodSeconds"] = 10
    labels = version_labels(meta["name"], version, component="replay-check")
    annotations = {ANNOTATION_VERSION: version, ANNOTATION_VERIFIES: against, ANNOTATION_IMAGE: tpl.image}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(meta["name"], version),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(workflow)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": tpl.verify_timeout_seconds,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
        },
    }


async def verify(
    rt: Runtime, workflow: dict[str, Any], spec: DurableWorkflowSpec, version: str, against: str
) -> tuple[Verdict, bool]:
    """Start the Job checking `version` against `against`'s executions, or read the one running.
    Returns the verdict and whether a Job was created just now. A Job of the same name made for
    another image or another current version is replaced."""
    body = verification_job(rt, workflow, spec, version, against)
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    job = await rt.kube.get(resource_path(*JOBS, ns, name))
    if job is not None and not _same_check(job, body):
        await delete_job(rt, job)
        return Verdict("running", f"replacing the verification Job {name} of an older check", name), False
    if job is None:
        try:
            await rt.kube.create(resource_path(*JOBS, ns), body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            return Verdict("running", f"verification Job {name} is running", name), False
        return Verdict("running", f"verification Job {name} started", name), True
    return await outcome(rt, job, version, against), False


def _same_check(job: dict[str, Any], body: dict[str, Any]) -> bool:
    have = (job.get("metadata") or {}).get("annotations") or {}
    want = body["metadata"]["annotations"]
    return all(have.get(k) == want[k] for k in (ANNOTATION_VERSION, ANNOTATION_VERIFIES, ANNOTATION_IMAGE))


def job_finished(job: dict[str, Any]) -> tuple[str | None, str]:
    """("Complete" | "Failed" | None, reason) from a Job's status conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"]), str(cond.get("reason") or cond.get("message") or "")
    return None, ""


async def outcome(rt: Runtime, job: dict[str, Any], version: str, against: str) -> Verdict:
    name = job["metadata"]["name"]
    state, reason = job_finished(job)
    if state is None:
        return Verdict("running", f"verification Job {name} is running", name)
    message = await termination_message(rt, job)
    summary = parse_summary(message)
    if state == "Complete":
        checked = f"{summary.get('checked', '?')} execution(s)" if summary else "the executions"
        return Verdict(
            "passed", f"{checked} in flight on {against or '(unversioned)'} replay on {version}", name
        )
    if summary is not None and summary.get("diverged"):
        return Verdict("failed", describe_divergence(summary, version, against), name)
    why = reason or "failed"
    if reason == "DeadlineExceeded":
        why = "deadline exceeded (spec.worker.verifyTimeoutSeconds)"
    detail = f": {one_line(message, 400)}" if message and summary is None else ""
    return Verdict("failed", f"verification Job {name} failed: {why}{detail}", name)


def describe_divergence(summary: dict[str, Any], version: str, against: str) -> str:
    diverged = [d for d in summary.get("diverged") or [] if isinstance(d, dict)]
    parts = []
    for d in diverged[:NAMED]:
        if d.get("position") is not None or d.get("expected") is not None:
            what = f"at position {d.get('position')}: expected {d.get('expected')!r}, got {d.get('actual')!r}"
        else:
            what = one_line(d.get("error") or "error", 120)
        parts.append(f"{d.get('execution_id')} {what}")
    failed = int(summary.get("checked", 0) or 0) - int(summary.get("ok", 0) or 0)
    failed = max(failed, len(diverged))
    more = failed - len(parts)
    tail = f"; and {more} more" if more > 0 else ""
    return one_line(
        f"{failed} of {summary.get('checked', '?')} execution(s) in flight on {against or '(unversioned)'} "
        f"would not replay on {version}: " + "; ".join(parts) + tail,
        1000,
    )


def parse_summary(message: str | None) -> dict[str, Any] | None:
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "checked" in data else None


async def termination_message(rt: Runtime, job: dict[str, Any]) -> str | None:
    """The termination message of the Job's pod's container (None when there is no pod or message)."""
    meta = job["metadata"]
    pods = await rt.kube.list(
        resource_path(*PODS, meta["namespace"]), label_selector=f"job-name={meta['name']}"
    )
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None


async def delete_job(rt: Runtime, job: dict[str, Any]) -> bool:
    meta = job["metadata"]
    return await rt.kube.delete(
        resource_path(*JOBS, meta["namespace"], meta["name"]), propagationPolicy="Background"
    )


async def delete_other_jobs(rt: Runtime, workflow: dict[str, Any], keep: str | None) -> None:
    """Delete the workflow's verification Jobs still running for another version than `keep`."""
    meta = workflow["metadata"]
    jobs = await rt.kube.list(
        resource_path(*JOBS, meta["namespace"]), label_selector=f"{LABEL_WORKFLOW}={meta['name']}"
    )
    for job in jobs:
        version = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_VERSION)
        if version != keep and job_finished(job)[0] is None:
            await delete_job(rt, job)
