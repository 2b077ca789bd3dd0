"""CR status documents: engine records as DurableExecution status, and conditions.

Several writers put an execution's status into its CR (the status mirror, kopf's start and
resume handlers, a replica that is being deposed), each from a record it read from Redis a
moment earlier, so a write can be older than the one it replaces. `record_version` orders
the records of one execution the way the engine moves through them, and every status carries
it as `observedVersion`; a writer refuses to replace a newer one (`is_older`). The order is
(run, attempt, activation, stage, updated ms):

- run: `id_reuse="allow_if_finished"` starts a fresh run under a finished execution's id, its
  attempt and activation counts from zero again;
- attempt: a retry makes a failed execution pending again, under a higher attempt;
- activation: every lease acquisition counts one and makes the execution running;
- stage within one activation: pending < running < sleeping/waiting < final. Running and
  waiting/sleeping alternate for one execution, but only across activations;
- the record's update time orders the step changes of one running activation (one writer,
  the lease holder).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._models import PHASES, ConditionStatus, Phase, iso, json_size, now_iso

if TYPE_CHECKING:
    from durable import ExecutionRecord


#: The stage of a phase within one activation (finals are 3).
_STAGES = {Phase.PENDING: 0, Phase.RUNNING: 1, Phase.SLEEPING: 2, Phase.WAITING: 2}


def record_version(record: ExecutionRecord) -> str:
    """The ordering key of one of an execution's records, as `observedVersion` holds it."""
    phase = PHASES.get(str(record.status), Phase.PENDING)
    stage = 3 if phase.is_final else _STAGES.get(phase, 0)
    if phase == Phase.PENDING and _waits_for_slot(record):
        stage = 2  # parked by its activation (a concurrency limit): after that activation's running
    updated = round(record.updated_at.timestamp() * 1000)
    return f"{record.run}.{record.attempt}.{record.activations}.{stage}.{updated}"


def _waits_for_slot(record: ExecutionRecord) -> bool:
    """Parked in the waiting line of a `max_concurrency` workflow (see the engine's concurrency limits)."""
    return (record.waiting_for or "").startswith("concurrency:")


def parse_version(text: Any) -> tuple[int, ...] | None:
    """`record_version`'s key as a tuple; None for a missing or malformed one (written by someone else)."""
    if not isinstance(text, str):
        return None
    parts = text.split(".")
    if len(parts) == 4:
        parts.insert(0, "1")  # written before versions carried the run: the first run
    if len(parts) != 5 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def is_older(new: Any, old: Any) -> bool:
    """Would a status of version `new` replace a newer one (`old`)? Unknown versions never block."""
    new_key, old_key = parse_version(new), parse_version(old)
    return new_key is not None and old_key is not None and new_key < old_key


def one_line(text: Any, limit: int = 300) -> str:
    """The first line of `text`, capped: what a status `message` holds."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def condition(
    existing: list[dict[str, Any]] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str = "",
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """`existing` conditions with `type_` set; lastTransitionTime moves only when the status changes."""
    value = (
        ConditionStatus.UNKNOWN
        if status is None
        else (ConditionStatus.TRUE if status else ConditionStatus.FALSE)
    )
    out = [dict(c) for c in existing or [] if c.get("type") != type_]
    old = next((c for c in existing or [] if c.get("type") == type_), None)
    changed = old is None or old.get("status") != value.value
    cond: dict[str, Any] = {
        "type": type_,
        "status": value.value,
        "reason": reason,
        "message": one_line(message, 1000),
        "lastTransitionTime": now_iso()
        if changed or old is None
        else old.get("lastTransitionTime", now_iso()),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    out.append(cond)
    return out


def execution_status(
    record: ExecutionRecord, existing: dict[str, Any] | None, generation: int | None, result_cap: int
) -> dict[str, Any]:
    """The DurableExecution status for an engine record (a merge patch: absent keys are nulled)."""
    phase = PHASES.get(str(record.status), Phase.PENDING)
    status: dict[str, Any] = {
        "executionId": record.execution_id,
        "workflowId": record.workflow_id,
        "workerVersion": record.version or None,
        "phase": phase.value,
        "currentStep": record.current_step,
        "waitingFor": record.waiting_for,
        "attempts": record.attempt,
        "startTime": iso(record.started_at) or iso(record.created_at),
        "finishTime": iso(record.finished_at),
        "result": None,
        "resultTruncated": None,
        "error": None,
        "observedVersion": record_version(record),
        "parentExecutionId": record.parent,
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if phase == Phase.SUCCEEDED:
        if record.result is not None and json_size(record.result) > result_cap:
            status["resultTruncated"] = True
        else:
            status["result"] = record.result
        status["reason"], status["message"] = "Completed", "the execution completed"
    elif phase in (Phase.FAILED, Phase.CANCELLED):
        error = record.error or {}
        err_type = str(error.get("type") or ("Cancelled" if phase == Phase.CANCELLED else "Error"))
        err_message = one_line(error.get("message") or phase.value.lower(), 1000)
        status["error"] = {"type": err_type[:256], "message": err_message}
        status["reason"] = "Cancelled" if phase == Phase.CANCELLED else "WorkflowFailed"
        status["message"] = one_line(f"{err_type}: {err_message}")
    elif phase == Phase.WAITING:
        status["reason"], status["message"] = (
            "WaitingForSignal",
            f"waiting for signal {record.waiting_for or '?'}",
        )
    elif phase == Phase.PENDING and _waits_for_slot(record):
        group = (record.waiting_for or "").partition(":")[2]
        status["reason"], status["message"] = "WaitingForConcurrencySlot", f"waiting for a slot of {group}"
    elif phase == Phase.SLEEPING:
        status["reason"] = "Sleeping"
        status["message"] = f"sleeping until {iso(record.wake_at)}" if record.wake_at else "sleeping"
    else:
        status["reason"], status["message"] = phase.value, f"the execution is {phase.value.lower()}"
    conditions = (existing or {}).get("conditions")
    status["conditions"] = condition(
        conditions,
        "Finished",
        phase.is_final,
        phase.value if phase.is_final else "InProgress",
        status["message"],
        generation,
    )
    return status


def failed_status(
    reason: str, message: str, generation: int | None, existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A DurableExecution that cannot run: phase Failed with a one-line reason."""
    return {
        "phase": Phase.FAILED.value,
        "reason": reason,
        "message": one_line(message),
        "observedGeneration": generation,
        "finishTime": now_iso(),
        "conditions": condition(
            (existing or {}).get("conditions"), "Finished", True, reason, message, generation
        ),
    }
