"""The kopf handlers of the four kinds, registered into a registry per operator instance.

Every handler parses the CR through its pydantic model first: a CR the API server should
have refused (old CRD, no CEL) ends with a one-line reason in its status, not a traceback.
Everything the operator asks of the engine carries the CR's uid as its idempotency key,
so a handler that runs again after a crash does nothing twice.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf
import pydantic

from durable import (
    ExecutionConflict,
    ExecutionFinished,
    ExecutionNotFound,
    InputValidationError,
    InvalidSchedule,
    PermanentError,
    RetryableError,
    ScheduleNotFound,
    SignalPayloadError,
    Status,
    WorkflowNotFound,
)

from ._kube import KubeError
from ._metrics import metrics
from ._mirror import announce
from ._models import (
    GROUP,
    VERSION,
    DurableExecutionSpec,
    DurableScheduleSpec,
    DurableSignalSpec,
    DurableWorkflowSpec,
    Phase,
    SignalPhase,
    iso,
    now_iso,
)
from ._runtime import (
    LABEL_SCHEDULE,
    OperatorConfig,
    Runtime,
    delivery_id,
    execution_id_of,
    owner_reference,
    path,
    schedule_id,
    user_execution_id,
    workflow_ref,
)
from ._status import condition, execution_status, failed_status, one_line
from ._workers import ensure_worker_deployment, worker_status

log = logging.getLogger("durable_operator")

WORKFLOWS = (GROUP, VERSION, "durableworkflows")
EXECUTIONS = (GROUP, VERSION, "durableexecutions")
SIGNALS = (GROUP, VERSION, "durablesignals")
SCHEDULES = (GROUP, VERSION, "durableschedules")


def _rt(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


def _spec_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    text = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return one_line(f"spec.{where}: {text}" if where else f"spec: {text}")


def _age(started: datetime.datetime | None) -> float:
    if started is None:
        return 0.0
    if started.tzinfo is None:
        started = started.replace(tzinfo=datetime.UTC)
    return (datetime.datetime.now(datetime.UTC) - started).total_seconds()


def _backoff(retry: int) -> float:
    return float(min(2 ** min(retry, 6), 30))


def _obj(body: Any) -> dict[str, Any]:
    return dict(body) if not isinstance(body, dict) else body


def _count(kind: str, outcome: str) -> None:
    metrics().reconciles.labels(kind=kind, outcome=outcome).inc()
    if outcome == "error":
        metrics().reconcile_errors.labels(kind=kind).inc()


# ---------------------------------------------------------------- DurableWorkflow


async def workflow_seen(body: Any, type: str | None, memo: Any, **_: Any) -> None:
    """Keep the in-memory view of DurableWorkflows (the mirror and the references read it)."""
    rt = _rt(memo)
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        rt.workflows.pop(key, None)
        return
    try:
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        rt.workflows.pop(key, None)
        return
    rt.workflows[key] = workflow_ref(body, spec)


async def workflow_reconcile(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **_: Any) -> None:
    rt = _rt(memo)
    generation = meta.get("generation")
    conditions = list(status.get("conditions") or [])
    try:
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = condition(
            conditions, "Ready", False, "InvalidSpec", _spec_error(exc), generation
        )
        _count("DurableWorkflow", "invalid")
        raise kopf.PermanentError(_spec_error(exc)) from None
    rt.workflows[(meta["namespace"], meta["name"])] = workflow_ref(body, spec)
    try:
        if spec.worker is not None:
            await ensure_worker_deployment(rt, _obj(body), spec)
        ready, reason, message, desired, ready_n = await worker_status(rt, _obj(body), spec)
    except KubeError as exc:
        _count("DurableWorkflow", "error")
        patch.status["conditions"] = condition(
            conditions, "Ready", False, "DeploymentError", str(exc), generation
        )
        raise kopf.TemporaryError(f"worker Deployment: {exc}", delay=10) from exc
    patch.status["observedGeneration"] = generation
    patch.status["workers"] = desired
    patch.status["readyWorkers"] = ready_n
    patch.status["conditions"] = condition(conditions, "Ready", ready, reason, message, generation)
    _count("DurableWorkflow", "ok")


async def workflow_refresh(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **_: Any) -> None:
    """Periodic: ready workers and execution counts."""
    rt = _rt(memo)
    try:
        spec = DurableWorkflowSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        return
    generation = meta.get("generation")
    try:
        ready, reason, message, desired, ready_n = await worker_status(rt, _obj(body), spec)
        running = await _count_executions(
            rt, spec.workflow_id, (Status.PENDING, Status.RUNNING, Status.SLEEPING, Status.WAITING)
        )
        failed = await _count_executions(rt, spec.workflow_id, (Status.FAILED,))
    except (KubeError, RetryableError) as exc:
        log.warning("workflow %s/%s status refresh: %s", meta["namespace"], meta["name"], exc)
        return
    new = {"workers": desired, "readyWorkers": ready_n, "running": running, "failed": failed}
    if any(status.get(k) != v for k, v in new.items()) or _cond(status, "Ready") != (
        "True" if ready else "False"
    ):
        patch.status.update(new)
        patch.status["conditions"] = condition(
            list(status.get("conditions") or []), "Ready", ready, reason, message, generation
        )


def _cond(status: Any, type_: str) -> str | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return None


async def _count_executions(
    rt: Runtime, workflow_id: str, statuses: tuple[Status, ...], cap: int = 10000
) -> int:
    total, cursor = 0, None
    while total < cap:
        page, cursor = await rt.durable.list_executions_page(
            workflow_id, list(statuses), limit=500, cursor=cursor
        )
        total += len(page)
        if not cursor:
            break
    return total


# ---------------------------------------------------------------- DurableExecution


async def execution_seen(body: Any, type: str | None, memo: Any, **_: Any) -> None:
    rt = _rt(memo)
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    eid = execution_id_of(body)
    if type == "DELETED":
        rt.forget_execution(*key)
    elif eid:
        rt.executions[eid] = key


async def execution_start(
    body: Any,
    meta: Any,
    status: Any,
    patch: Any,
    memo: Any,
    retry: int,
    started: datetime.datetime,
    **_: Any,
) -> None:
    """Start the execution (or attach to an existing one) and mirror its state once."""
    rt = _rt(memo)
    generation = meta.get("generation")
    namespace, name = meta["namespace"], meta["name"]
    if status.get("phase") == Phase.FAILED.value and not status.get("executionId"):
        return  # refused before: a bad CR stays refused
    try:
        spec = DurableExecutionSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        patch.status.update(failed_status("InvalidSpec", _spec_error(exc), generation, status))
        _count("DurableExecution", "invalid")
        return
    if spec.execution_id is not None:
        eid = spec.execution_id
    else:
        eid = status.get("executionId") or user_execution_id(meta["uid"])
    rt.executions[eid] = (namespace, name)
    record = await rt.durable.get_execution(eid)
    if record is None and spec.execution_id is not None:
        patch.status.update(
            failed_status(
                "ExecutionNotFound", f"execution {eid!r} does not exist in the store", generation, status
            )
        )
        _count("DurableExecution", "invalid")
        return
    if record is not None and spec.execution_id is None:
        # Our own execution, started by an earlier attempt: the spec must still be what started it.
        ref = rt.workflows.get((namespace, spec.workflow_ref))
        if ref is not None and await _input_conflict(
            rt, body, eid, ref.workflow_id, spec.input, status, patch
        ):
            return
    if record is None:
        ref = rt.workflows.get((namespace, spec.workflow_ref))
        if ref is None:
            message = f"DurableWorkflow {spec.workflow_ref!r} not found in namespace {namespace!r}"
            if _age(started) < rt.config.ref_grace_seconds:
                patch.status.update(
                    {"phase": Phase.PENDING.value, "reason": "WorkflowNotFound", "message": message}
                )
                raise kopf.TemporaryError(message, delay=_backoff(retry))
            patch.status.update(failed_status("WorkflowNotFound", message, generation, status))
            _count("DurableExecution", "invalid")
            return
        try:
            await rt.durable.start(
                ref.workflow_id, spec.input, execution_id=eid, actor=f"k8s:{namespace}/{name}"
            )
        except ExecutionConflict as exc:
            # Another attempt started it meanwhile from a spec that has changed since.
            await _report_conflict(rt, body, eid, exc, status, patch)
            return
        except (InputValidationError, WorkflowNotFound, PermanentError, ValueError) as exc:
            patch.status.update(
                failed_status("InvalidInput", f"{type(exc).__name__}: {exc}", generation, status)
            )
            _count("DurableExecution", "invalid")
            return
        except RetryableError as exc:
            _count("DurableExecution", "error")
            raise kopf.TemporaryError(f"store: {exc}", delay=_backoff(retry)) from exc
        record = await rt.durable.get_execution(eid)
        await rt.kube.event(
            _obj(body), "Normal", "Created", f"execution {eid} created for workflow {ref.workflow_id}"
        )
    if record is None:
        raise kopf.TemporaryError(f"execution {eid} is not readable yet", delay=1)
    new_status = execution_status(record, status, generation, rt.config.result_cap)
    patch.status.update(new_status)
    await announce(rt.kube, _obj(body), status.get("phase"), new_status, record.workflow_id)
    _count("DurableExecution", "ok")


async def _input_conflict(
    rt: Runtime, body: Any, eid: str, workflow_id: str, input: Any, status: Any, patch: Any
) -> bool:
    """Whether the CR's spec now asks for another run than its execution (then the status says so).

    The start is idempotent for the same request, so this writes nothing in the store.
    """
    meta = body["metadata"]
    try:
        await rt.durable.start(
            workflow_id, input, execution_id=eid, actor=f"k8s:{meta['namespace']}/{meta['name']}"
        )
    except ExecutionConflict as exc:
        await _report_conflict(rt, body, eid, exc, status, patch)
        return True
    except RetryableError as exc:
        raise kopf.TemporaryError(f"store: {exc}", delay=5) from exc
    except (PermanentError, ValueError):
        return False  # the spec cannot start anything now (bad input): the execution stays as it is
    if any(
        c.get("type") == "InputConflict" and c.get("status") == "True" for c in status.get("conditions") or []
    ):
        patch.status["conditions"] = condition(
            status.get("conditions"), "InputConflict", False, "InputMatches",
            "spec.input matches the execution again", meta.get("generation"),
        )  # fmt: skip
    return False


async def _report_conflict(
    rt: Runtime, body: Any, eid: str, exc: ExecutionConflict, status: Any, patch: Any
) -> None:
    """The execution keeps running as it started; the status and an Event say the spec no longer matches."""
    meta = body["metadata"]
    generation = meta.get("generation")
    what = "workflowRef" if exc.fields.get("reason") == "workflow" else "spec.input"
    message = one_line(
        f"{what} changed after execution {eid} started; it keeps running as it started "
        f"(the spec is immutable: create a new DurableExecution to run it again)"
    )
    record = await rt.durable.get_execution(eid)
    new_status = (
        execution_status(record, status, generation, rt.config.result_cap)
        if record is not None
        else dict(status)
    )
    new_status["reason"], new_status["message"] = "ExecutionConflict", message
    new_status["conditions"] = condition(
        new_status.get("conditions"), "InputConflict", True, "ExecutionConflict", message, generation
    )
    patch.status.update(new_status)
    await rt.kube.event(_obj(body), "Warning", "ExecutionConflict", message)
    _count("DurableExecution", "invalid")


async def execution_input_changed(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **_: Any) -> None:
    """spec.input was edited (the CRD forbids it; an old CRD without CEL does not): report, never crash-loop."""
    rt = _rt(memo)
    eid = status.get("executionId")
    try:
        spec = DurableExecutionSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        return  # the start handler reports an invalid spec
    if not eid or spec.execution_id is not None or eid != user_execution_id(meta["uid"]):
        return  # not started yet (the start handler reads the new spec) or not ours to start
    ref = rt.workflows.get((meta["namespace"], spec.workflow_ref))
    if ref is None or await rt.durable.get_execution(eid) is None:
        return
    await _input_conflict(rt, body, eid, ref.workflow_id, spec.input, status, patch)


async def execution_resume(body: Any, meta: Any, status: Any, patch: Any, memo: Any, **kwargs: Any) -> None:
    """On operator start: an unstarted CR starts; a started one is reconciled against Redis."""
    rt = _rt(memo)
    eid = status.get("executionId")
    if not eid:
        await execution_start(body=body, meta=meta, status=status, patch=patch, memo=memo, **kwargs)
        return
    rt.executions[eid] = (meta["namespace"], meta["name"])
    record = await rt.durable.get_execution(eid)
    if record is None:
        if status.get("phase") != Phase.FAILED.value:
            patch.status.update(
                failed_status(
                    "ExecutionLost",
                    f"execution {eid!r} is gone from the store",
                    meta.get("generation"),
                    status,
                )
            )
        return
    patch.status.update(execution_status(record, status, meta.get("generation"), rt.config.result_cap))


async def execution_delete(
    body: Any, meta: Any, spec: Any, status: Any, memo: Any, retry: int, **_: Any
) -> None:
    """Cancel a running execution unless `cancelOnDelete: false`. Never wedges: gives up after a few retries."""
    rt = _rt(memo)
    rt.forget_execution(meta["namespace"], meta["name"])
    eid = status.get("executionId")
    if not eid or spec.get("cancelOnDelete", True) is False:
        return
    if status.get("phase") in (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value):
        return
    try:
        await rt.durable.cancel(
            eid, reason=f"DurableExecution {meta['namespace']}/{meta['name']} deleted", actor="k8s"
        )
        log.info("cancelled execution %s: its DurableExecution was deleted", eid)
    except (ExecutionNotFound, ExecutionFinished):
        return
    except RetryableError as exc:
        if retry < rt.config.delete_retries:
            raise kopf.TemporaryError(f"cancel {eid}: {exc}", delay=_backoff(retry)) from exc
        log.warning("could not cancel %s after %d tries (%s); letting the object go", eid, retry + 1, exc)


async def execution_ttl(body: Any, meta: Any, spec: Any, status: Any, memo: Any, **_: Any) -> None:
    """Delete a finished execution once its ttlSecondsAfterFinished (or its workflow's retention) passed."""
    rt = _rt(memo)
    if status.get("phase") not in (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value):
        return
    ttl = spec.get("ttlSecondsAfterFinished")
    if ttl is None:
        ref = rt.workflows.get((meta["namespace"], spec.get("workflowRef", "")))
        ttl = ref.ttl_seconds if ref is not None else None
    finished = status.get("finishTime")
    if ttl is None or not finished:
        return
    finish = datetime.datetime.fromisoformat(str(finished).replace("Z", "+00:00"))
    if (datetime.datetime.now(datetime.UTC) - finish).total_seconds() >= float(ttl):
        log.info("deleting %s/%s: finished more than %ss ago", meta["namespace"], meta["name"], ttl)
        await rt.kube.delete(path("DurableExecution", meta["namespace"], meta["name"]))


def _finished(status: Any, **_: Any) -> bool:
    return status.get("phase") in (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value)


# ---------------------------------------------------------------- DurableSignal


async def signal_deliver(
    body: Any,
    meta: Any,
    status: Any,
    patch: Any,
    memo: Any,
    retry: int,
    started: datetime.datetime,
    **_: Any,
) -> None:
    rt = _rt(memo)
    generation = meta.get("generation")
    if status.get("phase") in (SignalPhase.DELIVERED.value, SignalPhase.FAILED.value):
        return  # delivered exactly once: never again

    def fail(reason: str, message: str) -> None:
        patch.status.update(
            {
                "phase": SignalPhase.FAILED.value,
                "reason": reason,
                "message": one_line(message),
                "observedGeneration": generation,
                "attempts": retry + 1,
                "conditions": condition(
                    status.get("conditions"), "Delivered", False, reason, message, generation
                ),
            }
        )
        _count("DurableSignal", "invalid")

    try:
        spec = DurableSignalSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        fail("InvalidSpec", _spec_error(exc))
        return
    eid = spec.execution_id
    if spec.execution_ref is not None:
        target = await rt.kube.get(path("DurableExecution", meta["namespace"], spec.execution_ref))
        target_status = (target or {}).get("status") or {}
        eid = target_status.get("executionId")
        if target is None or not eid:
            what = "not found" if target is None else "not started yet"
            message = f"DurableExecution {spec.execution_ref!r} {what} in namespace {meta['namespace']!r}"
            if target is not None and target_status.get("phase") == Phase.FAILED.value:
                fail("ExecutionFailed", f"DurableExecution {spec.execution_ref!r} failed before it started")
                return
            if _age(started) < rt.config.ref_grace_seconds:
                patch.status.update(
                    {"phase": SignalPhase.PENDING.value, "reason": "ExecutionNotFound", "message": message}
                )
                raise kopf.TemporaryError(message, delay=_backoff(retry))
            fail("ExecutionNotFound", message)
            return
    assert eid is not None
    try:
        accepted = await rt.durable.signal(
            eid,
            spec.signal,
            spec.payload,
            delivery_id=delivery_id(meta["uid"]),
            actor=f"k8s:{meta['namespace']}/{meta['name']}",
        )
    except ExecutionNotFound:
        fail("ExecutionNotFound", f"execution {eid!r} does not exist")
        return
    except ExecutionFinished:
        fail("ExecutionFinished", f"execution {eid!r} has already finished")
        return
    except (SignalPayloadError, PermanentError, ValueError) as exc:
        fail("PayloadRejected", f"{type(exc).__name__}: {exc}")
        return
    except RetryableError as exc:
        _count("DurableSignal", "error")
        patch.status.update(
            {"phase": SignalPhase.PENDING.value, "reason": "StoreUnavailable", "message": one_line(exc)}
        )
        patch.status["attempts"] = retry + 1
        raise kopf.TemporaryError(f"signal {eid}: {exc}", delay=_backoff(retry)) from exc
    message = f"signal {spec.signal} delivered to execution {eid}" + (
        "" if accepted else " (already delivered before)"
    )
    patch.status.update(
        {
            "phase": SignalPhase.DELIVERED.value,
            "reason": "Delivered",
            "message": message,
            "executionId": eid,
            "deliveredTime": now_iso(),
            "duplicate": not accepted,
            "observedGeneration": generation,
            "attempts": retry + 1,
            "conditions": condition(
                status.get("conditions"), "Delivered", True, "Delivered", message, generation
            ),
        }
    )
    await rt.kube.event(_obj(body), "Normal", "SignalDelivered", message)
    _count("DurableSignal", "ok")


# ---------------------------------------------------------------- DurableSchedule


async def schedule_seen(body: Any, type: str | None, memo: Any, **_: Any) -> None:
    rt = _rt(memo)
    meta = body["metadata"]
    sid = schedule_id(meta["namespace"], meta["name"])
    if type == "DELETED":
        rt.schedules.pop(sid, None)
    else:
        rt.schedules[sid] = (meta["namespace"], meta["name"])


async def schedule_reconcile(
    body: Any, meta: Any, status: Any, patch: Any, memo: Any, retry: int, started: datetime.datetime, **_: Any
) -> None:
    rt = _rt(memo)
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

    try:
        spec = DurableScheduleSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        not_ready("InvalidSpec", _spec_error(exc))
        _count("DurableSchedule", "invalid")
        raise kopf.PermanentError(_spec_error(exc)) from None
    ref = rt.workflows.get((namespace, spec.workflow_ref))
    if ref is None:
        message = f"DurableWorkflow {spec.workflow_ref!r} not found in namespace {namespace!r}"
        not_ready("WorkflowNotFound", message)
        _count("DurableSchedule", "invalid")
        delay = _backoff(retry) if _age(started) < rt.config.ref_grace_seconds else 60.0
        raise kopf.TemporaryError(message, delay=delay)
    try:
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
    except (InvalidSchedule, PermanentError, ValueError) as exc:
        not_ready("InvalidSchedule", f"{type(exc).__name__}: {exc}")
        _count("DurableSchedule", "invalid")
        raise kopf.PermanentError(str(exc)) from None
    except RetryableError as exc:
        _count("DurableSchedule", "error")
        raise kopf.TemporaryError(f"store: {exc}", delay=_backoff(retry)) from exc
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
    _count("DurableSchedule", "ok")


async def schedule_refresh(
    body: Any, meta: Any, spec: Any, status: Any, patch: Any, memo: Any, **_: Any
) -> None:
    """Periodic: last/next times, active executions, history limits."""
    rt = _rt(memo)
    namespace, name = meta["namespace"], meta["name"]
    sid = schedule_id(namespace, name)
    if _cond(status, "Ready") != "True":
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


async def _prune_history(rt: Runtime, namespace: str, name: str, spec: Any) -> None:
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


async def schedule_delete(meta: Any, memo: Any, retry: int, **_: Any) -> None:
    rt = _rt(memo)
    sid = schedule_id(meta["namespace"], meta["name"])
    rt.schedules.pop(sid, None)
    try:
        await rt.durable.remove_schedule(sid, actor="k8s")
    except ScheduleNotFound:
        return
    except RetryableError as exc:
        if retry < rt.config.delete_retries:
            raise kopf.TemporaryError(f"remove schedule {sid}: {exc}", delay=_backoff(retry)) from exc
        log.warning("could not remove schedule %s (%s); letting the object go", sid, exc)


# ---------------------------------------------------------------- registry


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A fresh registry with every handler: one per operator instance (tests run several)."""
    registry = kopf.OperatorRegistry()
    on = kopf.on

    on.event(*WORKFLOWS, registry=registry)(workflow_seen)
    on.resume(*WORKFLOWS, registry=registry, id="reconcile")(workflow_reconcile)
    on.create(*WORKFLOWS, registry=registry, id="reconcile")(workflow_reconcile)
    on.update(*WORKFLOWS, registry=registry, id="reconcile", field="spec")(workflow_reconcile)
    kopf.timer(*WORKFLOWS, registry=registry, interval=config.status_interval, idle=None, id="refresh")(
        workflow_refresh
    )

    on.event(*EXECUTIONS, registry=registry)(execution_seen)
    on.create(*EXECUTIONS, registry=registry, id="start")(execution_start)
    on.resume(*EXECUTIONS, registry=registry, id="resume")(execution_resume)
    on.update(*EXECUTIONS, registry=registry, id="input", field="spec.input")(execution_input_changed)
    on.delete(*EXECUTIONS, registry=registry, id="cancel", optional=False)(execution_delete)
    kopf.timer(*EXECUTIONS, registry=registry, interval=config.ttl_interval, when=_finished, id="ttl")(
        execution_ttl
    )

    on.create(*SIGNALS, registry=registry, id="deliver")(signal_deliver)
    on.resume(*SIGNALS, registry=registry, id="deliver")(signal_deliver)

    on.event(*SCHEDULES, registry=registry)(schedule_seen)
    on.create(*SCHEDULES, registry=registry, id="reconcile")(schedule_reconcile)
    on.resume(*SCHEDULES, registry=registry, id="reconcile")(schedule_reconcile)
    on.update(*SCHEDULES, registry=registry, id="reconcile", field="spec")(schedule_reconcile)
    on.delete(*SCHEDULES, registry=registry, id="remove", optional=False)(schedule_delete)
    kopf.timer(*SCHEDULES, registry=registry, interval=config.status_interval, id="refresh")(schedule_refresh)
    return registry


__all__ = ["build_registry", "owner_reference"]
