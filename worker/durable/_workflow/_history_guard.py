"""The history-size guard of one activation: counts the run's step records and bytes as they grow.

The engine counts the loaded history once (sizes only, no decoding) when the activation starts;
each record the workflow buffers then adds its own size, or the difference from the record it
replaces. Past the warning threshold the buffer gets one `history.warning` audit entry (the crossing
happens once per run: the history only grows, and an uncommitted crossing is crossed again on the
retry); past the limit `HistoryLimitExceeded` is raised into the workflow.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from .._errors import HistoryLimitExceeded
from .._store._data import AuditDraft
from ._definitions import HistoryLimit

__all__ = ["HistoryBudget"]


class HistoryBudget:
    __slots__ = ("_new", "_stored", "bytes", "execution_id", "limit", "records")

    def __init__(self, execution_id: str, limit: HistoryLimit, stored: Mapping[str, bytes]) -> None:
        self.execution_id = execution_id
        self.limit = limit
        self._stored = stored
        # Sizes of the records this activation buffered, by step id.
        self._new: dict[str, int] = {}
        self.records = len(stored)
        self.bytes = sum(len(k) + len(v) for k, v in stored.items())

    def _size_before(self, step_id: str) -> int | None:
        size = self._new.get(step_id)
        if size is not None:
            return size
        raw = self._stored.get(step_id)
        return None if raw is None else len(step_id) + len(raw)

    def add(self, step_id: str, encoded: bytes) -> AuditDraft | None:
        """Count one buffered record; the warning to audit if this record crosses the threshold.

        Raises `HistoryLimitExceeded` past the limit."""
        limit = self.limit
        was_warned = self.records > limit.warn_records or self.bytes > limit.warn_bytes
        size = len(step_id) + len(encoded)
        before = self._size_before(step_id)
        if before is None:
            self.records += 1
            self.bytes += size
        else:
            self.bytes += size - before
        self._new[step_id] = size
        if self.records > limit.max_records or self.bytes > limit.max_bytes:
            raise HistoryLimitExceeded(
                f"execution {self.execution_id!r}: its history holds {self.records} records, {self.bytes} "
                f"bytes, past the limit of {limit.max_records} records or {limit.max_bytes} bytes; "
                "call ctx.continue_as_new(input) to start a fresh history",
                execution_id=self.execution_id,
                records=self.records,
                bytes=self.bytes,
                limit_records=limit.max_records,
                limit_bytes=limit.max_bytes,
            )
        if was_warned or (self.records <= limit.warn_records and self.bytes <= limit.warn_bytes):
            return None
        return AuditDraft(
            kind="history.warning",
            message=(
                f"history holds {self.records} records, {self.bytes} bytes (warning at {limit.warn_records} "
                f"records or {limit.warn_bytes} bytes, limit {limit.max_records} records or "
                f"{limit.max_bytes} bytes); call ctx.continue_as_new(input) to start a fresh history"
            ),
            step_id=step_id,
            data=orjson.dumps(
                {
                    "records": self.records,
                    "bytes": self.bytes,
                    "warn_records": limit.warn_records,
                    "warn_bytes": limit.warn_bytes,
                    "limit_records": limit.max_records,
                    "limit_bytes": limit.max_bytes,
                }
            ),
        )
