"""Executions on Redis: creating and reading records, step histories, audit, listings, waiting for the end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ..._errors import WaitTimeoutError
from ..._records import AuditEntry, ExecutionId, ExecutionRecord, Status
from .._base import AuditDraft, ExecutionQuery, Executions, NewExecution, conflict_error
from .._data import DEADLINE_TIMER
from ._connection import Declared, RedisPart
from ._decode import (
    audit_entry,
    entries,
    lenient_json,
    not_found,
    pairs,
    published_record,
    record,
    record_from,
    score,
    steps,
    string,
    text,
)
from ._encode import pack_audit, timer_member

__all__ = ["RedisExecutions"]

# Index entries read per round trip while listing (their records follow in one pipelined batch).
_LIST_SLICE = 200


class RedisExecutions(RedisPart, Executions):
    async def create_execution(self, new: NewExecution) -> bool:
        eid = new.execution_id
        start_at = "" if new.start_at_ms is None else new.start_at_ms
        args = [
            eid,
            new.now_ms,
            new.workflow_id,
            new.input,
            new.category or "",
            new.parent or "",
            new.actor or "",
            new.reason,
            start_at,
            timer_member(eid, "start"),
            new.input_hash,
            new.id_reuse,
        ]

        # Replacing a finished run also clears its workflow's index entry and its buffered signals:
        # keys the script names when it needs them.
        # The run goes on the queue of its workflow's current version, which the script names.
        def call(version: str, declared: Declared) -> tuple[list[str], list[Any]]:
            keys = self.keys.execution_keys(eid, version)
            keys.append(self.keys.idx_all())
            keys.append(self.keys.idx_workflow(new.workflow_id))
            keys.append(self.keys.idx_workflow(declared.workflow or new.workflow_id))
            keys.append(self.keys.current_versions())
            keys.extend(self.keys.sig(eid, name) for name in declared.signals)
            return keys, [
                *args,
                declared.workflow,
                len(declared.signals),
                *declared.signals,
                new.on_parent_cancel or "",
                "" if new.deadline_ms is None else new.deadline_ms,
                timer_member(eid, DEADLINE_TIMER),
            ]

        res = await self._redis.script_on_queue(
            "create", eid, f"workflow:{new.workflow_id}", self.keys.version, call
        )
        if int(res[0]) < 0:
            raise conflict_error(eid, new.workflow_id, text(res[2]), text(res[1]))
        return bool(int(res[0]) == 1)

    async def get_execution(self, execution_id: ExecutionId) -> ExecutionRecord | None:
        flat = await self._redis.call("HGETALL", self.keys.exec(execution_id))
        return record(execution_id, flat) if flat else None

    async def load_steps(self, execution_id: ExecutionId) -> dict[str, bytes]:
        return steps(await self._redis.call("HGETALL", self.keys.steps(execution_id)))

    async def list_audit(self, execution_id: ExecutionId, limit: int = 1000) -> list[AuditEntry]:
        raw = await self._redis.call("XRANGE", self.keys.audit(execution_id), "-", "+", "COUNT", limit)
        return [audit_entry(entry_id, f) for entry_id, f in entries(raw)]

    async def append_audit(self, execution_id: ExecutionId, drafts: Sequence[AuditDraft]) -> None:
        args = pack_audit(drafts, [execution_id, int(time.time() * 1000)])
        if not await self._redis.script("append_audit", self.keys.execution_keys(execution_id), args):
            raise not_found(execution_id)

    async def list_executions(self, query: ExecutionQuery) -> tuple[list[ExecutionRecord], str | None]:
        # Newest first: an index entry (score, member) comes after the cursor if its score is lower, or
        # the same with a lower member (ZREVRANGEBYSCORE order). Each round trip reads a slice of the
        # index from the last entry examined, then the slice's records in one pipelined batch.
        index = self.keys.idx_workflow(query.workflow_id) if query.workflow_id else self.keys.idx_all()
        max_score = "+inf" if query.created_before_ms is None else f"({query.created_before_ms}"
        min_score = "-inf" if query.created_after_ms is None else str(query.created_after_ms)
        examined: tuple[float, bytes] | None = None
        if query.cursor:
            cursor_score, _, cursor_member = query.cursor.partition(":")
            max_score = cursor_score
            examined = (float(cursor_score), cursor_member.encode())
        statuses = {Status(s).value.encode() for s in query.statuses}
        limit = max(query.limit, 1)
        page: list[ExecutionRecord] = []
        last = ""
        skip = 0
        while True:
            want = _LIST_SLICE if statuses else min(_LIST_SLICE, limit + 1 - len(page))
            flat = await self._redis.call(
                "ZREVRANGEBYSCORE", index, max_score, min_score, "WITHSCORES", "LIMIT", skip, want
            )
            if not flat:
                return page, None
            sliced = [(bytes(flat[i]), bytes(flat[i + 1])) for i in range(0, len(flat), 2)]
            fresh = [
                (m, sc) for m, sc in sliced if examined is None or float(sc) != examined[0] or m < examined[1]
            ]
            if not fresh:
                skip += len(sliced)  # more entries of one score than a slice holds: step over them
                continue
            skip = 0
            found = await asyncio.gather(
                *(self._redis.call("HGETALL", self.keys.exec(text(m))) for m, _ in fresh)
            )
            for (member, at), flat_record in zip(fresh, found, strict=True):
                examined = (float(at), member)
                if not flat_record:
                    continue  # purged since the index was read
                fields = pairs(flat_record)
                if statuses and fields.get(b"status") not in statuses:
                    continue
                if len(page) >= limit:
                    return page, last
                page.append(record_from(text(member), fields))
                last = f"{score(text(at))}:{text(member)}"
            max_score = text(fresh[-1][1])

    async def list_active(self, limit: int = 10_000) -> list[ExecutionId]:
        out: list[ExecutionId] = []
        async for members in self._redis.scan_set(self.keys.active(), 1000):
            out.extend(ExecutionId(m.decode()) for m in members)
            if len(out) >= limit:
                break
        return out[:limit]

    async def wait_finished(self, execution_id: ExecutionId, timeout_s: float | None) -> ExecutionRecord:
        # Subscribed before the first look: no lost wake-up.
        notifier = await self._redis.notifications(self.keys.done_channel())
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        fut = notifier.watch_done(execution_id)
        try:
            while True:
                current = await self.get_execution(execution_id)
                if current is None:
                    raise not_found(execution_id)
                if current.is_final:
                    return current
                pause = 1.0  # a fallback look now and then, in case a message was lost
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise WaitTimeoutError(
                            f"execution {execution_id!r} did not finish in {timeout_s}s",
                            execution_id=execution_id,
                        )
                    pause = min(pause, remaining)
                if fut.done():
                    # The message came while we looked (after the read): look again now, not after `pause`.
                    notifier.unwatch_done(execution_id, fut)
                    fut = notifier.watch_done(execution_id)
                    continue
                await asyncio.wait([fut], timeout=pause)
                if fut.done():
                    published = published_record(execution_id, fut.result())
                    if published is not None and published.is_final:
                        return published
        finally:
            notifier.unwatch_done(execution_id, fut)

    async def list_emitted(self, limit: int = 100) -> list[tuple[str, str, Any]]:
        raw = await self._redis.call("XREVRANGE", self.keys.events(), "+", "-", "COUNT", limit)
        return [
            (string(f.get(b"e")), string(f.get(b"n")), lenient_json(f.get(b"p")))
            for _, f in reversed(entries(raw))
        ]
