"""`MemoryStore`'s `Signals`: buffered payloads, delivery ids, and the schemas senders check against."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from ..._errors import ExecutionFinished
from ..._records import FINAL_STATUSES, ExecutionId, Status
from .._base import Signals
from .._data import CHECKED_BY_MODEL, AuditDraft, SchemaCheckNeeded, schema_digest
from ._state import MemoryPart


class MemorySignals(MemoryPart, Signals):
    async def send_signal(
        self,
        execution_id: ExecutionId,
        name: str,
        payload: bytes,
        delivery_id: str,
        now_ms: int,
        actor: str | None = None,
        *,
        checked: str = CHECKED_BY_MODEL,
    ) -> bool:
        st = self._state
        ex = st.get(execution_id)
        if delivery_id in ex.sigids:
            return False  # a duplicate whatever happened since (see `Store.send_signal`)
        if ex.status in FINAL_STATUSES:
            raise ExecutionFinished(
                f"execution {execution_id!r} is {ex.status.value}; signal {name!r} not delivered",
                execution_id=execution_id,
                status=ex.status.value,
            )
        if (
            checked != CHECKED_BY_MODEL
            and ex.wait_signal == name
            and ex.wait_schema
            and schema_digest(ex.wait_schema) != checked
        ):
            raise SchemaCheckNeeded(ex.wait_schema)
        ex.sigids.add(delivery_id)
        ex.signals.setdefault(name, deque()).append(payload)
        st.audit(
            ex,
            [
                AuditDraft(
                    kind="signal.received", message=f"signal {name} received", actor=actor, data=payload
                )
            ],
            now_ms,
        )
        if ex.status == Status.WAITING and ex.waiting_for == name:
            ex.waiting_for = ""
            st.enqueue(execution_id, "signal")
        return True

    async def signal_schema(self, execution_id: ExecutionId, name: str) -> bytes | None:
        st = self._state
        ex = st.execs.get(execution_id)
        if ex is not None and ex.wait_signal == name and ex.wait_schema:
            return ex.wait_schema
        return st.signal_schemas.get(name)

    async def published_signal_schemas(self) -> dict[str, bytes]:
        return dict(self._state.signal_schemas)

    async def publish_signal_schemas(self, schemas: Mapping[str, bytes]) -> None:
        self._state.signal_schemas.update(schemas)
