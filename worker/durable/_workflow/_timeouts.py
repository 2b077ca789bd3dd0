"""Step time-outs and heartbeats: `ctx.step(..., timeout=, heartbeat_timeout=)`, `durable.heartbeat()`.

A step with a time-out runs its body as a `StepRun`. Before the body runs, the run commits a record
of the attempt with status `running` and arms a store timer at its due time: the start plus
`timeout`, or the last heartbeat plus `heartbeat_timeout`, whichever comes first
(`Runs.put_running_step`). Each heartbeat the body sends (at most one every third of
`heartbeat_timeout`) rewrites that record with the body's details and pushes the timer forward, in
one fenced write. While the worker is alive it enforces both limits itself: an async body is
cancelled, a sync body (on a step thread, which cannot be interrupted) is abandoned, and the attempt
fails with `StepTimeout`. If the worker stops (crashed, SIGSTOPped, partitioned), the store timer
fires: the store revokes the lease and queues a run, whose replay finds the `running` record past its
due time and counts that attempt as failed with `StepTimeout` the same way. The step's `RetryPolicy`
decides what follows; the last heartbeat details travel in the retry's record to the next attempt
(`durable.heartbeat_details()`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
from datetime import timedelta
from typing import Any

from .. import _codec
from .._errors import ActivationAbandoned, LeaseLost, StepAbandoned
from .._history import StepKind, StepRecord, StepStatus
from .._records import now_ms
from ._activation import Activation
from ._definitions import seconds

__all__ = ["StepLimits", "StepRun", "check_timeout", "heartbeat", "heartbeat_details"]

log = logging.getLogger("durable.engine")

_current_step: contextvars.ContextVar[StepRun | None] = contextvars.ContextVar(
    "durable_step_run", default=None
)


def check_timeout(name: str, value: float | timedelta | None) -> int | None:
    """`value` (seconds or a timedelta) in ms, or None; `ValueError` unless it is a positive finite time."""
    if value is None:
        return None
    try:
        secs = seconds(value)
    except TypeError:
        raise ValueError(f"{name} must be a number of seconds or a timedelta, got {value!r}") from None
    if not math.isfinite(secs) or secs <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return max(1, round(secs * 1000))


class StepLimits:
    """A step's start-to-close `timeout` and `heartbeat_timeout`, in ms (checked: positive, finite)."""

    __slots__ = ("heartbeat_ms", "timeout_ms")

    def __init__(
        self, timeout: float | timedelta | None, heartbeat_timeout: float | timedelta | None
    ) -> None:
        self.timeout_ms = check_timeout("timeout", timeout)
        self.heartbeat_ms = check_timeout("heartbeat_timeout", heartbeat_timeout)

    def meta(self) -> dict[str, Any]:
        """What a step's records show of its limits (`durable get`)."""
        out: dict[str, Any] = {}
        if self.timeout_ms is not None:
            out["timeout"] = self.timeout_ms / 1000
        if self.heartbeat_ms is not None:
            out["heartbeat_timeout"] = self.heartbeat_ms / 1000
        return out


class StepRun:
    """One attempt of a step with limits: its `running` record, heartbeats and local time-outs."""

    def __init__(
        self,
        activation: Activation,
        step_id: str,
        seq: int,
        kind: StepKind,
        attempt: int,
        limits: StepLimits,
        details: Any,
    ) -> None:
        self.activation = activation
        self.step_id = step_id
        self.seq = seq
        self.kind = kind
        self.attempt = attempt
        self.limits = limits
        # The previous attempt's last heartbeat details (`heartbeat_details()`), and this attempt's.
        self.previous = details
        self.details = details
        self.started_ms = now_ms()
        self.beat_ms = self.started_ms  # the body's last heartbeat call
        self.sent_ms = 0  # the last heartbeat written
        self.interval_ms = 0 if limits.heartbeat_ms is None else limits.heartbeat_ms // 3
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # Set once the attempt is given up (time-out, lost lease): `heartbeat()` in the body raises it.
        self.stop: StepAbandoned | None = None
        # Set if a heartbeat found the lease lost: what the workflow raises.
        self.lost: ActivationAbandoned | None = None
        self.task: asyncio.Task[Any] | None = None
        self._closed = False
        self._sending = False
        self._sends: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the running record
    def due(self) -> tuple[int, str]:
        """When the attempt times out as of its last heartbeat, and why: `("timeout" | "heartbeat")`."""
        due, kind = math.inf, "timeout"
        limits = self.limits
        if limits.timeout_ms is not None:
            due = self.started_ms + limits.timeout_ms
        if limits.heartbeat_ms is not None and self.beat_ms + limits.heartbeat_ms < due:
            due, kind = self.beat_ms + limits.heartbeat_ms, "heartbeat"
        return int(due), kind

    def record(self) -> tuple[bytes, int]:
        due, due_kind = self.due()
        meta: dict[str, Any] = {"due": due, "due_kind": due_kind, **self.limits.meta()}
        if self.details is not None:
            meta["details"] = self.details
        if self.sent_ms:
            meta["heartbeat_at"] = self.sent_ms
        rec = StepRecord(
            self.step_id, self.seq, self.kind, StepStatus.RUNNING, attempt=self.attempt, at_ms=self.started_ms,
            meta=meta,
        )  # fmt: skip
        return rec.encode(), due

    async def begin(self) -> None:
        """Commit the attempt's running record and arm its timer, before the body runs."""
        await self._write(raise_abandoned=True)

    async def _write(self, *, raise_abandoned: bool) -> None:
        activation = self.activation
        store = activation.store
        if store is None:
            return
        raw, due = self.record()
        try:
            await store.put_running_step(
                activation.execution_id, activation.token, self.step_id, raw, due, now_ms()
            )
        except Exception as exc:
            if raise_abandoned:
                raise activation._abandon(exc) from exc
            if isinstance(exc, LeaseLost):
                self.lose(exc)
            else:  # the store is unreachable: the next heartbeat tries again
                log.warning("step %s: heartbeat not written: %s", self.step_id, exc)

    def lose(self, exc: BaseException) -> None:
        """The lease is gone: the attempt stops, the activation is abandoned."""
        self.lost = self.activation._abandon(exc)
        self.stop = StepAbandoned(f"step {self.step_id!r}: the execution's lease was lost")
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # ------------------------------------------------------------------ heartbeats
    def beat(self, details: Any) -> None:
        """`durable.heartbeat(details)` from the body, on the loop or on a step thread."""
        if self.stop is not None:
            raise self.stop
        if details is not None:
            self.details = _codec.to_plain(
                details, what=f"heartbeat details of step {self.step_id!r}", step_id=self.step_id
            )
        now = now_ms()
        self.beat_ms = now
        if self.limits.heartbeat_ms is None or self._sending or now - self.sent_ms < self.interval_ms:
            return
        self._sending = True
        if threading.get_ident() == self._loop_thread:
            self._send_soon()
        else:
            try:
                self.loop.call_soon_threadsafe(self._send_soon)
            except RuntimeError:  # the loop is closed: nobody waits for this body any more
                self._sending = False

    def _send_soon(self) -> None:
        if self._closed:
            self._sending = False
            return
        task = self.loop.create_task(self._send())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self) -> None:
        try:
            self.sent_ms = now_ms()
            await self._write(raise_abandoned=False)
        finally:
            self._sending = False

    async def close(self) -> None:
        """No more heartbeats: wait for one in flight (it must not land after the step's outcome)."""
        self._closed = True
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)

    def give_up(self, why: str) -> None:
        """The attempt timed out: the body is cancelled (async) or abandoned (sync)."""
        self.stop = StepAbandoned(why)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def enter(self) -> contextvars.Token[StepRun | None]:
        return _current_step.set(self)

    @staticmethod
    def leave(token: contextvars.Token[StepRun | None]) -> None:
        _current_step.reset(token)


def heartbeat(details: Any = None) -> None:
    """Report that the running step is alive, with optional JSON `details` (its progress).

    Call it from a step body, sync or async. With `heartbeat_timeout=` on the step, a worker that
    stops heartbeating for that long loses the step: it is retried elsewhere, and the retry reads the
    last details with `heartbeat_details()`. Heartbeats are written at most every third of the
    heartbeat time-out, so calling this often is cheap. Raises `StepAbandoned` (a `BaseException`)
    once the attempt was given up (its time-out passed, or the worker lost the execution): let it
    propagate so that the body stops. Does nothing outside a step with a time-out.
    """
    run = _current_step.get()
    if run is not None:
        run.beat(details)


def heartbeat_details() -> Any:
    """The last heartbeat details of the step's previous attempt (None on the first attempt, or if it
    sent none). Like Temporal's `activity.info().heartbeat_details`: a retried step resumes from them."""
    run = _current_step.get()
    return None if run is None else run.previous
