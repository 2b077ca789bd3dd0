"""DurableSchedule handlers: the engine schedule kept in step with its CR, its status, its history."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf
import pydantic

from durable import InvalidSchedule, PermanentError, RetryableError, ScheduleNotFound, Status

from .._metrics import metrics
from .._models import DurableScheduleSpec, Phase, iso
from .._runtime import LABEL_SCHEDULE, Runtime, path, schedule_id
from .._status import condition, one_line
from ._common import age, condition_status, runtime_of
from ._errors import count, refuse, retry_delay, retry_later, spec_error

log = logging.getLogger("durable_operator")


async def schedule_seen(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime_of(memo)
    meta = body["metadata"]
    sid = schedule_id(meta["namespace"], meta["name"])
    if type == "DELETED":
        rt.schedules.pop(sid, None)
    else:
        rt.schedules[sid] = (meta["namespace"], meta["name"])


async def schedule_reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    started: datetime.datetime,
    **_: Any,
) -> None:
    rt = runtime_of(memo)
    generation = meta.get("generation")
    namespace, name = meta["namespace"], meta["name"]
    sid = schedule_id(namespace, name)
    rt.schedules[sid] = (namespace, name)
    conditions = list(status.get("conditions") or [])

    def not_ready(reason: str, message: str) -> None:
        patch.status.update(
            {
                "observedGeneration": generation,
                "reason": reason,
                "message": one_line(message),
                "conditions": condition(conditions, "Ready", False, reason, message, generation),
            }
        )

    def invalid_spec(exc: pydantic.ValidationError) -> None:
        not_ready("InvalidSpec", spec_error(exc))

    def invalid_schedule(exc: Exception) -> None:
        not_ready("InvalidSchedule", f"{type(exc).__name__}: {exc}")

    with refuse("DurableSchedule", (pydantic.ValidationError,), invalid_spec, spec_error):
        spec = DurableScheduleSpec.model_validate(dict(body.get("spec") or {}))
    ref = rt.workflows.get((namespace, spec.workflow_ref))
    if ref is None:
        message = f"DurableWorkflow {spec.workflow_ref!r} not found in namespace {namespace!r}"
        not_ready("WorkflowNotFound", message)
        count("DurableSchedule", "invalid")
        delay = retry_delay(retry) if age(started) < rt.config.ref_grace_seconds else 60.0
        raise kopf.TemporaryError(message, delay=delay)
    with (
        retry_later("store", retry_delay(retry), kind="DurableSchedule"),
        refuse("DurableSchedule", (InvalidSchedule, PermanentError, ValueError), invalid_schedule, str),
    ):
        info = await rt.durable.ensure_schedule(
            ref.workflow_id,
            spec.input,
            id=sid,
            cron=spec.cron,
            interval=spec.interval_seconds,
            timezone=spec.time_zone,
            overlap=spec.overlap,
            starting_deadline_seconds=spec.starting_deadline_seconds,
            paused=spec.suspend,
            actor=f"k8s:{namespace}/{name}",
        )
        # ensure_schedule keeps an existing schedule's paused state; the CR's `suspend` is the truth.
        if info.paused != spec.suspend:
            if spec.suspend:
                await rt.durable.pause_schedule(sid, actor=f"k8s:{namespace}/{name}")
            else:
                await rt.durable.resume_schedule(sid, actor=f"k8s:{namespace}/{name}")
            info = await rt.durable.get_schedule(sid)
    message = "suspended" if spec.suspend else f"next run at {iso(info.next_run_at) or 'never'}"
    patch.status.update(
        {
            "observedGeneration": generation,
            "scheduleId": sid,
            "workflowId": ref.workflow_id,
            "reason": "Suspended" if spec.suspend else "Scheduled",
            "message": message,
            "nextScheduleTime": None if spec.suspend else iso(info.next_run_at),
            "lastScheduleTime": iso(info.last_run_at),
            "lastExecutionId": info.last_execution_id,
            "conditions": condition(
                conditions, "Ready", True, "Suspended" if spec.suspend else "Scheduled", message, generation
            ),
        }
    )
    count("DurableSchedule", "ok")


async def schedule_refresh(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Periodic: last/next times, active executions, history limits."""
    rt = runtime_of(memo)
    namespace, name = meta["namespace"], meta["name"]
    sid = schedule_id(namespace, name)
    if condition_status(status, "Ready") != "True":
        return
    try:
        info = await rt.durable.get_schedule(sid)
        active_records = await rt.durable.list_executions(
            info.workflow_id, [Status.PENDING, Status.RUNNING, Status.SLEEPING, Status.WAITING], limit=500
        )
    except ScheduleNotFound:
        return
    except RetryableError as exc:
        log.warning("schedule %s status refresh: %s", sid, exc)
        return
    active = sorted(r.execution_id for r in active_records if r.execution_id.startswith(sid + "@"))[:100]
    new = {
        "lastScheduleTime": iso(info.last_run_at),
        "nextScheduleTime": None if info.paused else iso(info.next_run_at),
        "lastExecutionId": info.last_execution_id,
        "active": active or None,
        "fired": info.fired_count,
        "skipped": info.skipped_count,
    }
    if info.next_run_at is not None and not info.paused:
        lag = (datetime.datetime.now(datetime.UTC) - info.next_run_at).total_seconds()
        metrics().schedule_lag.labels(schedule=sid).set(max(lag, 0.0))
    if any(status.get(k) != v for k, v in new.items()):
        patch.status.update(new)
    await _prune_history(rt, namespace, name, spec)


async def _prune_history(rt: Runtime, namespace: str, name: str, spec: kopf.Spec) -> None:
    """Keep the newest N succeeded and M failed mirror executions of this schedule."""
    items = await rt.kube.list(path("DurableExecution", namespace), f"{LABEL_SCHEDULE}={name}")
    limits = {
        Phase.SUCCEEDED.value: int(spec.get("successfulExecutionsHistoryLimit", 3)),
        Phase.FAILED.value: int(spec.get("failedExecutionsHistoryLimit", 1)),
    }
    for phase, limit in limits.items():
        done = [i for i in items if (i.get("status") or {}).get("phase") == phase]
        done.sort(key=lambda i: str((i.get("status") or {}).get("finishTime") or ""), reverse=True)
        for old in done[limit:]:
            await rt.kube.delete(path("DurableExecution", namespace, old["metadata"]["name"]))


async def schedule_delete(meta: kopf.Meta, memo: kopf.Memo, retry: int, **_: Any) -> None:
    rt = runtime_of(memo)
    sid = schedule_id(meta["namespace"], meta["name"])
    rt.schedules.pop(sid, None)

    def let_go(exc: Exception) -> None:
        log.warning("could not remove schedule %s (%s); letting the object go", sid, exc)

    try:
        with retry_later(
            f"remove schedule {sid}",
            retry_delay(retry),
            tries_left=retry < rt.config.delete_retries,
            give_up=let_go,
        ):
            await rt.durable.remove_schedule(sid, actor="k8s")
    except ScheduleNotFound:
        return
