"""The poller that fires due slots, exactly once each however many poll one store.

Firing follows Kubernetes CronJob semantics: after an outage only the latest missed
slot runs (earlier ones are counted and audited as skipped), and not even that one if it
is later than `starting_deadline_seconds`; the overlap policy (`allow`, `forbid`,
`replace`) decides what happens while the previous run is still going. Each slot's
execution id is `<schedule id>@<slot time, UTC ISO>`, so firing a slot twice starts
one execution.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from .. import _codec
from .._errors import ExecutionConflict, ExecutionFinished, ExecutionNotFound
from .._records import ExecutionId
from .._schedule_specs import ScheduleSpec, slot_execution_id, slot_iso
from .._store._base import AuditDraft, NewExecution, WorkerStore
from .._store._schedules_base import ScheduleClaim, ScheduleStore
from ._children import settle_quietly

if TYPE_CHECKING:
    from .._workflow._definitions import WorkflowDef

log = logging.getLogger("durable.schedules")

# How long a claimed slot stays with its poller before another may take it over.
DEFAULT_CLAIM_TIMEOUT = 30.0


def schedule_store(store: WorkerStore) -> ScheduleStore:
    if not isinstance(store, ScheduleStore):
        raise TypeError(f"{type(store).__name__} does not support schedules")
    return store


class StoreAndWorkflows(Protocol):
    """A store with its workflows: what the poller and the worker take from a client (or a worker)."""

    @property
    def store(self) -> WorkerStore: ...

    @property
    def registry(self) -> Mapping[str, WorkflowDef]: ...


class Scheduler:
    """Fires due slots. Any number may poll one store: each slot fires once.

    `tick(now_ms)` claims every due schedule, fires or skips its slot, stores the next
    slot, and returns the earliest due time over all schedules (None if there is none).
    """

    def __init__(
        self, durable: StoreAndWorkflows, *, claim_timeout: float = DEFAULT_CLAIM_TIMEOUT, batch: int = 100
    ) -> None:
        self.durable = durable
        self.claim_ms = int(claim_timeout * 1000)
        self.batch = batch

    @property
    def store(self) -> ScheduleStore:
        return schedule_store(self.durable.store)

    async def wait_change(self, timeout_s: float) -> None:
        await self.store.wait_schedule_change(timeout_s)

    async def tick(self, now_ms: int) -> int | None:
        store = self.store
        while True:
            claims = await store.claim_due_schedules(now_ms, self.claim_ms, self.batch)
            for claim in claims:
                try:
                    await self._fire(claim, now_ms)
                except Exception:
                    # The claim times out and another poll retries the slot (idempotently).
                    log.exception(
                        "schedule %s: firing the slot failed; it will be retried", claim.schedule_id
                    )
            if len(claims) < self.batch:
                break
        return await store.next_schedule_due()

    async def _fire(self, claim: ScheduleClaim, now_ms: int) -> None:
        sched = self.store
        exec_store = self.durable.store
        sid = claim.schedule_id
        rec = await sched.get_schedule(sid)
        if rec is None or rec.token != claim.token:
            return  # removed or rewritten since the claim: the rewrite set its own due time
        spec = ScheduleSpec.from_json(rec.spec)
        slot = rec.next_ms
        if rec.paused or slot is None or slot > now_ms:
            await sched.commit_schedule_slot(sid, claim.token, next_ms=slot, now_ms=now_ms)
            return
        latest, superseded = spec.latest_due(slot, now_ms)
        next_ms = spec.next_after(latest)
        actor = f"schedule:{sid}"
        audit: list[AuditDraft] = []
        skipped = superseded
        if superseded:
            audit.append(
                AuditDraft(
                    "skipped",
                    f"{superseded} slot(s) from {slot_iso(slot)} missed while no scheduler ran; "
                    f"only the latest ({slot_iso(latest)}) may run",
                    actor=actor,
                    data=_codec.dumps({"reason": "superseded", "first": slot_iso(slot), "count": superseded}),
                )
            )
        execution_id = slot_execution_id(sid, latest)
        late_ms = now_ms - latest
        if spec.deadline_ms is not None and late_ms > spec.deadline_ms:
            audit.append(
                AuditDraft(
                    "skipped",
                    f"slot {slot_iso(latest)} missed its starting deadline "
                    f"({late_ms / 1000:g} s late, deadline {spec.deadline_ms / 1000:g} s)",
                    actor=actor,
                    data=_codec.dumps({"reason": "deadline", "slot": slot_iso(latest), "late_ms": late_ms}),
                )
            )
            await sched.commit_schedule_slot(
                sid, claim.token, next_ms=next_ms, now_ms=now_ms, skipped=skipped + 1, audit=audit
            )
            return
        already = await exec_store.get_execution(ExecutionId(execution_id))
        if already is None:
            previous = rec.last_execution_id
            prev = (
                await exec_store.get_execution(ExecutionId(previous))
                if previous and spec.overlap != "allow"
                else None
            )
            if prev is not None and not prev.is_final:
                if spec.overlap == "forbid":
                    audit.append(
                        AuditDraft(
                            "skipped",
                            f"slot {slot_iso(latest)} skipped: {previous} is still {prev.status.value} (overlap forbid)",
                            actor=actor,
                            data=_codec.dumps(
                                {"reason": "overlap", "slot": slot_iso(latest), "running": previous}
                            ),
                        )
                    )
                    await sched.commit_schedule_slot(
                        sid, claim.token, next_ms=next_ms, now_ms=now_ms, skipped=skipped + 1, audit=audit
                    )
                    return
                try:
                    stopped = await exec_store.cancel(
                        prev.execution_id, f"replaced by schedule slot {slot_iso(latest)}", actor, now_ms
                    )
                    if stopped.is_final:  # its children, as for any cancel (a running one's: when it stops)
                        await settle_quietly(exec_store, prev.execution_id)
                    audit.append(
                        AuditDraft("replaced", f"cancelled {previous} (overlap replace)", actor=actor)
                    )
                except (ExecutionFinished, ExecutionNotFound):
                    pass
            wf = self.durable.registry.get(spec.workflow_id)
            try:
                await exec_store.create_execution(
                    NewExecution(
                        execution_id=ExecutionId(execution_id),
                        workflow_id=spec.workflow_id,
                        input=_codec.dumps(spec.input, what="schedule input"),
                        now_ms=now_ms,
                        category=None if wf is None else wf.category,
                        actor=actor,
                        reason="schedule",
                    )
                )
            except ExecutionConflict as exc:
                # Another attempt at this slot started it first, from the schedule as it was then (its
                # input or workflow was updated since). That run is the slot's run: keep it, say so.
                audit.append(
                    AuditDraft(
                        "conflict",
                        f"slot {slot_iso(latest)}: {execution_id} was already started with a different "
                        f"{exc.reason}; kept that run",
                        actor=actor,
                        data=_codec.dumps(
                            {"reason": exc.reason, "existing_workflow_id": exc.existing_workflow_id}
                        ),
                    )
                )
        audit.append(
            AuditDraft(
                "fired",
                f"slot {slot_iso(latest)} started {execution_id}"
                + (f" ({late_ms / 1000:g} s late)" if late_ms >= 1000 else ""),
                actor=actor,
            )
        )
        committed = await sched.commit_schedule_slot(
            sid,
            claim.token,
            next_ms=next_ms,
            now_ms=now_ms,
            fired=1,
            skipped=skipped,
            last_ms=latest,
            last_execution_id=execution_id,
            audit=audit,
        )
        if not committed:
            log.info("schedule %s: claim on slot %s was taken over", sid, slot_iso(latest))
