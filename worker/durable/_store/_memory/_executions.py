"""`MemoryStore`'s `Executions`: creating executions, reading records, histories and audit, waiting for the end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..._errors import WaitTimeoutError
from ..._records import FINAL_STATUSES, AuditEntry, ExecutionId, ExecutionRecord
from ..._records import now_ms as _now_ms
from .._base import Executions
from .._data import DEADLINE_TIMER, AuditDraft, ExecutionQuery, NewExecution, conflict_error
from ._state import Exec, MemoryPart


class MemoryExecutions(MemoryPart, Executions):
    async def create_execution(self, new: NewExecution) -> bool:
        st = self._state
        old = st.execs.get(new.execution_id)
        if old is not None:
            replace = new.id_reuse == "allow_if_finished" and old.status in FINAL_STATUSES
            if not replace:
                if old.workflow_id != new.workflow_id:
                    raise conflict_error(new.execution_id, new.workflow_id, old.workflow_id, "workflow")
                if old.input_hash and old.input_hash != new.input_hash:
                    raise conflict_error(new.execution_id, new.workflow_id, old.workflow_id, "input")
                return False
        ex = Exec(
            execution_id=new.execution_id,
            workflow_id=new.workflow_id,
            input=new.input,
            created_ms=new.now_ms,
            updated_ms=new.now_ms,
            category=new.category,
            parent=new.parent,
            input_hash=new.input_hash,
            version=st.current_versions.get(new.workflow_id, ""),
            on_parent_cancel=new.on_parent_cancel,
        )
        if old is not None:
            # A fresh run: the old one's history (steps, signals, delivery ids, lease) goes, its audit stays.
            st.drop_timer(old)
            ex.run = old.run + 1
            ex.fence = old.fence  # tokens never repeat under one id: a stale worker stays fenced out
            ex.audit = old.audit
            message = f"run {old.run} ({old.status.value}, {old.workflow_id}) replaced by run {ex.run}"
            st.audit(ex, [AuditDraft(kind="replaced", message=message, actor=new.actor)], new.now_ms)
        st.execs[new.execution_id] = ex
        st.status_event(ex, new.now_ms)
        st.audit(
            ex,
            [AuditDraft(kind="created", message=f"execution of {new.workflow_id} created", actor=new.actor)],
            new.now_ms,
        )
        deadline_timer = f"{new.execution_id}|{DEADLINE_TIMER}"
        st.timers.pop(deadline_timer, None)  # an old run's
        if new.deadline_ms is not None:
            ex.deadline_ms = new.deadline_ms
            st.set_timer(deadline_timer, new.deadline_ms)
        if new.start_at_ms is not None and new.start_at_ms > new.now_ms:
            ex.wake_ms = new.start_at_ms
            ex.timer = f"{new.execution_id}|start"
            st.set_timer(ex.timer, new.start_at_ms)
        else:
            st.enqueue(new.execution_id, new.reason)
        return True

    def import_history(self, execution_id: str, steps: dict[str, bytes]) -> None:
        """Replace an execution's step records (replay tests load recorded histories this way)."""
        self._state.get(execution_id).steps = dict(steps)

    async def get_execution(self, execution_id: ExecutionId) -> ExecutionRecord | None:
        ex = self._state.execs.get(execution_id)
        return ex.record() if ex else None

    async def load_steps(self, execution_id: ExecutionId) -> dict[str, bytes]:
        ex = self._state.execs.get(execution_id)
        return dict(ex.steps) if ex else {}

    async def list_audit(self, execution_id: ExecutionId, limit: int = 1000) -> list[AuditEntry]:
        ex = self._state.execs.get(execution_id)
        return list(ex.audit)[:limit] if ex else []

    async def append_audit(self, execution_id: ExecutionId, drafts: Sequence[AuditDraft]) -> None:
        st = self._state
        st.audit(st.get(execution_id), drafts, _now_ms())

    async def list_executions(self, query: ExecutionQuery) -> tuple[list[ExecutionRecord], str | None]:
        candidates = sorted(
            self._state.execs.values(), key=lambda e: (e.created_ms, e.execution_id), reverse=True
        )
        start = 0
        if query.cursor:
            start = int(query.cursor)
        out: list[ExecutionRecord] = []
        index = start
        for index in range(start, len(candidates)):
            ex = candidates[index]
            if query.workflow_id is not None and ex.workflow_id != query.workflow_id:
                continue
            if query.statuses and ex.status not in query.statuses:
                continue
            if query.created_after_ms is not None and ex.created_ms < query.created_after_ms:
                continue
            if query.created_before_ms is not None and ex.created_ms >= query.created_before_ms:
                continue
            out.append(ex.record())
            if len(out) >= query.limit:
                nxt = index + 1
                return out, (str(nxt) if nxt < len(candidates) else None)
        return out, None

    async def list_active(self, limit: int = 10_000) -> list[ExecutionId]:
        ids = [
            ExecutionId(e.execution_id) for e in self._state.execs.values() if e.status not in FINAL_STATUSES
        ]
        return ids[:limit]

    async def wait_finished(self, execution_id: ExecutionId, timeout_s: float | None) -> ExecutionRecord:
        st = self._state
        ex = st.get(execution_id)
        if ex.status not in FINAL_STATUSES:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            st.finished_waiters.setdefault(execution_id, []).append(fut)
            try:
                await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                raise WaitTimeoutError(
                    f"execution {execution_id!r} did not finish within {timeout_s} s",
                    execution_id=execution_id,
                ) from None
        return ex.record()

    async def list_emitted(self, limit: int = 100) -> list[tuple[str, str, Any]]:
        return list(self._state.emitted)[-limit:]
