"""DurableExecution handlers: start or attach, conflicts with the spec, status, cancel on delete, TTL.

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
    PermanentError,
    RetryableError,
    WorkflowNotFound,
)

from .._kube import KubeError
from .._mirror import write_execution_status
from .._models import DurableExecutionSpec, Phase
from .._runtime import Runtime, execution_id_of, path, user_execution_id
from .._status import condition, failed_status, one_line
from ._common import age, as_dict, runtime_of
from ._errors import count, retry_delay, retry_later, spec_error

log = logging.getLogger("durable_operator")


async def execution_seen(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime_of(memo)
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    eid = execution_id_of(body)
    if type == "DELETED":
        rt.forget_execution(*key)
    elif eid:
        rt.executions[eid] = key


async def execution_start(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    started: datetime.datetime,
    **_: Any,
) -> None:
    """Start the execution (or attach to an existing one) and mirror its state once."""
    rt = runtime_of(memo)
    generation = meta.get("generation")
    namespace, name = meta["namespace"], meta["name"]
    if status.get("phase") == Phase.FAILED.value and not status.get("executionId"):
        return  # refused before: a bad CR stays refused
    try:
        spec = DurableExecutionSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        patch.status.update(failed_status("InvalidSpec", spec_error(exc), generation, status))
        count("DurableExecution", "invalid")
        return
    if spec.execution_id is not None:
        eid = spec.execution_id
    else:
        eid = status.get("executionId") or user_execution_id(meta["uid"])
    rt.executions[eid] = (namespace, name)
    # The store unreachable is a short wait, not kopf's default back-off for unexpected errors (a
    # minute), during which the mirror holds this object's status writes back.
    with retry_later("store", retry_delay(retry), kind="DurableExecution"):
        record = await rt.durable.get_execution(eid)
    if record is None and spec.execution_id is not None:
        if Phase.shows_final(status.get("phase")):
            # Mirrored to its end before the store lost it (a Redis that restarted empty, say) and this
            # handler ran only now: the CR keeps what it showed, as the mirror's reconcile does.
            return
        patch.status.update(
            failed_status(
                "ExecutionNotFound", f"execution {eid!r} does not exist in the store", generation, status
            )
        )
        count("DurableExecution", "invalid")
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
            if age(started) < rt.config.ref_grace_seconds:
                patch.status.update(
                    {"phase": Phase.PENDING.value, "reason": "WorkflowNotFound", "message": message}
                )
                raise kopf.TemporaryError(message, delay=retry_delay(retry))
            patch.status.update(failed_status("WorkflowNotFound", message, generation, status))
            count("DurableExecution", "invalid")
            return
        try:
            with retry_later("store", retry_delay(retry), kind="DurableExecution"):
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
            count("DurableExecution", "invalid")
            return
        with retry_later("store", retry_delay(retry), kind="DurableExecution"):
            record = await rt.durable.get_execution(eid)
        await rt.kube.event(
            as_dict(body), "Normal", "Created", f"execution {eid} created for workflow {ref.workflow_id}"
        )
    if record is None:
        raise kopf.TemporaryError(f"execution {eid} is not readable yet", delay=1)
    await _write_status(rt, namespace, name, eid, mark_lost=False)
    count("DurableExecution", "ok")


async def _input_conflict(
    rt: Runtime,
    body: kopf.Body,
    eid: str,
    workflow_id: str,
    input: Any,
    status: kopf.Status,
    patch: kopf.Patch,
) -> bool:
    """Whether the CR's spec now asks for another run than its execution (then the status says so).

    The start is idempotent for the same request, so this writes nothing in the store.
    """
    meta = body["metadata"]
    try:
        with retry_later("store", 5):
            await rt.durable.start(
                workflow_id, input, execution_id=eid, actor=f"k8s:{meta['namespace']}/{meta['name']}"
            )
    except ExecutionConflict as exc:
        await _report_conflict(rt, body, eid, exc, status, patch)
        return True
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
    rt: Runtime, body: kopf.Body, eid: str, exc: ExecutionConflict, status: kopf.Status, patch: kopf.Patch
) -> None:
    """The execution keeps running as it started; the status and an Event say the spec no longer matches."""
    meta = body["metadata"]
    generation = meta.get("generation")
    what = "workflowRef" if exc.fields.get("reason") == "workflow" else "spec.input"
    message = one_line(
        f"{what} changed after execution {eid} started; it keeps running as it started "
        f"(the spec is immutable: create a new DurableExecution to run it again)"
    )
    # Only the conflict's own fields: the phase and the rest belong to the guarded writer, which
    # never moves them backwards (kopf applies this patch later, without a precondition).
    patch.status["reason"], patch.status["message"] = "ExecutionConflict", message
    patch.status["conditions"] = condition(
        status.get("conditions"), "InputConflict", True, "ExecutionConflict", message, generation
    )
    await rt.kube.event(as_dict(body), "Warning", "ExecutionConflict", message)
    count("DurableExecution", "invalid")


async def execution_input_changed(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    """spec.input was edited (the CRD forbids it; an old CRD without CEL does not): report, never crash-loop."""
    rt = runtime_of(memo)
    eid = status.get("executionId")
    try:
        spec = DurableExecutionSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError:
        return  # the start handler reports an invalid spec
    if not eid or spec.execution_id is not None or eid != user_execution_id(meta["uid"]):
        return  # not started yet (the start handler reads the new spec) or not ours to start
    ref = rt.workflows.get((meta["namespace"], spec.workflow_ref))
    if ref is None:
        return
    with retry_later("store", 1, kind="DurableExecution"):
        if await rt.durable.get_execution(eid) is None:
            return
    await _input_conflict(rt, body, eid, ref.workflow_id, spec.input, status, patch)


async def _write_status(rt: Runtime, namespace: str, name: str, eid: str, *, mark_lost: bool) -> None:
    """The execution's status, written by the guarded writer the mirror uses (never backwards).

    Not through kopf's `patch`: kopf applies it after the handler returns, without a
    precondition, over whatever the mirror wrote meanwhile.
    """
    with retry_later(f"status of {eid}", 1, errors=(KubeError, RetryableError), kind="DurableExecution"):
        await write_execution_status(rt, namespace, name, eid, mark_lost=mark_lost)


async def execution_resume(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """On operator start: an unstarted CR starts; a started one is reconciled against Redis."""
    rt = runtime_of(memo)
    eid = status.get("executionId")
    if not eid:
        await execution_start(body=body, meta=meta, status=status, patch=patch, memo=memo, **kwargs)
        return
    rt.executions[eid] = (meta["namespace"], meta["name"])
    # A CR whose execution is gone from the store fails as ExecutionLost, unless it shows a final phase.
    await _write_status(rt, meta["namespace"], meta["name"], eid, mark_lost=True)


async def execution_delete(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    retry: int,
    **_: Any,
) -> None:
    """Cancel a running execution unless `cancelOnDelete: false`. Never wedges: gives up after a few retries."""
    rt = runtime_of(memo)
    rt.forget_execution(meta["namespace"], meta["name"])
    eid = status.get("executionId")
    if not eid or spec.get("cancelOnDelete", True) is False:
        return
    if status.get("phase") in (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value):
        return

    def let_go(exc: Exception) -> None:
        log.warning("could not cancel %s after %d tries (%s); letting the object go", eid, retry + 1, exc)

    try:
        with retry_later(
            f"cancel {eid}", retry_delay(retry), tries_left=retry < rt.config.delete_retries, give_up=let_go
        ):
            await rt.durable.cancel(
                eid, reason=f"DurableExecution {meta['namespace']}/{meta['name']} deleted", actor="k8s"
            )
            log.info("cancelled execution %s: its DurableExecution was deleted", eid)
    except (ExecutionNotFound, ExecutionFinished):
        return


async def execution_ttl(
    body: kopf.Body, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo, **_: Any
) -> None:
    """Delete a finished execution once its ttlSecondsAfterFinished (or its workflow's retention) passed."""
    rt = runtime_of(memo)
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


def finished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value)
