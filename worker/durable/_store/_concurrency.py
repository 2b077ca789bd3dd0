"""The store's part that enforces `@workflow(max_concurrency=...)` across all workers.

A concurrency group (`<workflow id>`, or `<workflow id>:<key>` with a `concurrency_key`) has a set of
slot holders and a line of waiters ordered by the executions' creation time. A client that knows the
workflow puts a new execution in line at once (`enroll`); otherwise it joins at its first activation.
An execution holds a slot from its first admitted activation until it is final; the worker asks for it
(`admit`) right after it acquires the lease, and gives it back (`free_slot`) after the final write (a
second write: a worker that dies in between leaves a final holder, which the next admission that finds
the group full frees). Waiters are parked: pending, no lease, `waiting_for` `concurrency:<group>`, with a
recheck timer (`RECHECK_MS`) as the safety net that makes such an admission happen.
"""

from __future__ import annotations

import abc
from typing import Literal

from .._records import ExecutionId

__all__ = ["Admission", "Concurrency", "waiting_for_concurrency"]

Admission = Literal["admitted", "parked", "cancelled"]

# A parked execution activates again after this long even if no slot release woke it: the safety net
# for a holder whose worker died between its final write and its `free_slot`.
RECHECK_MS = 30_000


def waiting_for_concurrency(group: str) -> str:
    """What a parked execution's `waiting_for` says."""
    return f"concurrency:{group}"


class Concurrency(abc.ABC):
    @abc.abstractmethod
    async def admit(
        self,
        execution_id: ExecutionId,
        token: int,
        group: str,
        limit: int,
        now_ms: int,
        *,
        recheck_ms: int = RECHECK_MS,
        ack: str | None = None,
    ) -> Admission:
        """Take a slot of `group` (whose limit is `limit`) for the run holding lease `token`.

        `admitted` if the execution holds a slot already, or it is among the oldest waiters (by creation
        time) that fit in the free slots. Otherwise, slots of executions that are final or gone are
        freed (`free_slot`) and it is asked again; still full: the execution joins the waiting line and
        is parked in the same atomic step: status pending, `waiting_for` `concurrency:<group>`, lease
        released, its wake-up timer set to `now_ms + recheck_ms`, the queue entry `ack` acknowledged;
        the answer is `parked`. `cancelled` (nothing written) if a cancel or forced failure was
        requested: the caller releases the lease, which applies it. Records `limit` as the group's
        limit. Raises `LeaseLost` if `token` is stale.
        """

    @abc.abstractmethod
    async def enroll(self, execution_id: ExecutionId, group: str, now_ms: int) -> bool:
        """Put a just-created execution that has never run in `group`'s waiting line, by its creation time,
        so that executions started earlier are admitted earlier even when a later one's first activation
        reaches the store first. Records the group on the execution. False (nothing written) if the
        execution is gone, final, has been activated, or holds a slot; True otherwise (already in line
        included). The client calls it right after `create_execution` when it knows the workflow's
        definition; without it the execution joins the line at its first activation."""

    @abc.abstractmethod
    async def free_slot(self, execution_id: ExecutionId, now_ms: int, *, group: str | None = None) -> int:
        """Give back the slot (or the place in line) of an execution that is final or gone, and enqueue
        the oldest waiters that now fit (reason `concurrency`); how many. Does nothing (0) for an
        execution that is not final or never asked for a slot. `group`: for an execution that may be
        gone (read from the execution otherwise)."""

    @abc.abstractmethod
    async def concurrency_state(self, group: str) -> tuple[list[ExecutionId], list[ExecutionId]]:
        """The slot holders (oldest admitted first) and the waiters (in line order) of `group`."""
