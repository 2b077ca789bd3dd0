"""DurableSignal handlers: one delivery per CR, exactly once (the CR's uid is the delivery id)."""

from __future__ import annotations

import datetime
from typing import Any

import kopf
import pydantic

from durable import ExecutionFinished, ExecutionNotFound, PermanentError, SignalPayloadError

from .._models import DurableSignalSpec, Phase, SignalPhase, now_iso
from .._runtime import delivery_id, path
from .._status import condition, one_line
from ._common import age, as_dict, runtime_of
from ._errors import count, retry_delay, retry_later, spec_error


async def signal_deliver(
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
        count("DurableSignal", "invalid")

    try:
        spec = DurableSignalSpec.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        fail("InvalidSpec", spec_error(exc))
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
            if age(started) < rt.config.ref_grace_seconds:
                patch.status.update(
                    {"phase": SignalPhase.PENDING.value, "reason": "ExecutionNotFound", "message": message}
                )
                raise kopf.TemporaryError(message, delay=retry_delay(retry))
            fail("ExecutionNotFound", message)
            return
    assert eid is not None

    def store_unavailable(exc: Exception) -> None:
        patch.status.update(
            {"phase": SignalPhase.PENDING.value, "reason": "StoreUnavailable", "message": one_line(exc)}
        )
        patch.status["attempts"] = retry + 1

    try:
        with retry_later(f"signal {eid}", retry_delay(retry), kind="DurableSignal", report=store_unavailable):
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
    await rt.kube.event(as_dict(body), "Normal", "SignalDelivered", message)
    count("DurableSignal", "ok")
