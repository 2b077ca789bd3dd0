"""Steps: `ctx.step` with its retries and compensations, `ctx.switch`, `ctx.rollback`.

A step's body runs once; its JSON result is committed before the workflow goes on, and replay
returns the stored result. A failed attempt that its retry policy retries is recorded with the
time of the next one and the execution sleeps on a durable timer until then.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from .. import _codec
from .._errors import NoMatchingBranch, StepFailedError, StepTimeout, describe_exception
from .._history import StepKind, StepRecord, StepStatus
from .._metrics import METRICS
from .._records import Status, now_ms
from .._store._base import AuditDraft
from ._definitions import NO_RETRY, Branch, RetryPolicy, StepId
from ._replay import ReplayContext
from ._timeouts import StepLimits, StepRun

# Enum members looked up once: attribute access on an Enum class costs about 90 ns on Python 3.11,
# and replay makes these calls once per record of every activation.
_COMPENSATION = StepKind.COMPENSATION
_STEP = StepKind.STEP
_SWITCH = StepKind.SWITCH
_COMPLETED = StepStatus.COMPLETED
_FAILED = StepStatus.FAILED
_RETRY = StepStatus.RETRY
_RUNNING = StepStatus.RUNNING


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) and p.default is p.empty
        for p in params
    )


class Steps(ReplayContext):
    """`ctx.step`, `ctx.switch`, `ctx.rollback`."""

    async def step(
        self,
        step_id: str | StepId[Any],
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        compensate: Callable[..., Any] | None = None,
        timeout: float | timedelta | None = None,
        heartbeat_timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run `fn(*args, **kwargs)` once, persist its JSON result, return it (also on replay).

        `timeout` (seconds, start-to-close) limits each attempt: an async body is cancelled, a sync
        one is abandoned (its thread runs on), and the attempt fails with `StepTimeout`, which
        `retry` retries like any failure. With `heartbeat_timeout`, an attempt whose body does not call
        `durable.heartbeat()` for that long fails the same way, also when its worker stopped: the
        store gives the execution to another worker (see `durable.heartbeat`).
        """
        typed = step_id if isinstance(step_id, StepId) else None
        sid = typed.id if typed is not None else step_id
        limits = None
        if timeout is not None or heartbeat_timeout is not None:
            limits = StepLimits(timeout, heartbeat_timeout)  # checked before anything is recorded
        return await self._step(
            sid, fn, args, kwargs, retry or NO_RETRY, compensate, typed, user=True, limits=limits
        )

    async def _step(
        self,
        sid: Any,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        policy: RetryPolicy,
        compensate: Callable[..., Any] | None,
        typed: StepId[Any] | None,
        *,
        user: bool,
        kind: StepKind = _STEP,
        limits: StepLimits | None = None,
    ) -> Any:
        seq, rec = self._next(sid, kind, user=user)
        if rec is not None and rec.status == _COMPLETED:
            result = rec.result
            if compensate is not None:
                self._compensations.append((sid, compensate, result, policy))
            return typed.parse(result) if typed else result
        if rec is not None and rec.status == _FAILED:
            raise StepFailedError(
                f"step {sid!r} failed: {(rec.error or {}).get('message', '')}",
                step_id=sid,
                attempts=rec.attempt,
                error=rec.error,
            )
        attempt = 1
        details: Any = None
        if rec is not None and rec.status == _RETRY:
            attempt = rec.attempt + 1
            details = rec.meta.get("details")
            next_at = int(rec.meta.get("next_at", 0))
            if now_ms() < next_at:
                await self._activation.suspend(Status.SLEEPING, wake_at_ms=next_at, timer_id=f"retry:{sid}")
        elif rec is not None and rec.status == _RUNNING:
            # An attempt whose worker stopped or lost the lease: past its due time it timed out (the
            # store's timer revoked the lease), else its worker crashed and the same attempt runs again.
            attempt, details = rec.attempt, rec.meta.get("details")
            if now_ms() >= int(rec.meta.get("due", 0)):
                return await self._lost_attempt(sid, seq, kind, policy, rec)
        await self._activation.flush()
        started = now_ms()
        run: StepRun | None = None
        try:
            if limits is None:
                result = await self._activation.call(fn, args, kwargs)
            else:
                run = StepRun(self._activation, sid, seq, kind, attempt, limits, details)
                result = await self._run_limited(run, fn, args, kwargs)
        except Exception as exc:
            if run is not None:
                details = run.details
            return await self._attempt_failed(sid, seq, kind, policy, exc, attempt, details)
        return await self._finish_completed(
            sid, seq, kind, result, attempt, started, limits, typed, compensate, policy
        )

    async def _attempt_failed(
        self,
        sid: str,
        seq: int,
        kind: StepKind,
        policy: RetryPolicy,
        exc: Exception,
        attempt: int,
        details: Any = None,
    ) -> Any:
        """Attempt `attempt` raised `exc`: record a retry and sleep until it, or fail the step."""
        error = describe_exception(exc)
        if policy.should_retry(exc, attempt):
            delay_ms = int(policy.delay(attempt) * 1000)
            next_at = now_ms() + delay_ms
            retry_meta: dict[str, Any] = {"next_at": next_at}
            if details is not None:  # the last heartbeat details, for the next attempt
                retry_meta["details"] = details
            record = StepRecord(
                sid,
                seq,
                kind,
                _RETRY,
                error=error,
                attempt=attempt,
                at_ms=now_ms(),
                meta=retry_meta,
            )
            self._activation.buffer(
                record,
                AuditDraft(
                    kind="step.retry",
                    message=f"step {sid} attempt {attempt} failed: {error['message'][:200]}; retry in {delay_ms} ms",
                    step_id=sid,
                ),
                current=True,
            )
            await self._activation.suspend(Status.SLEEPING, wake_at_ms=next_at, timer_id=f"retry:{sid}")
        record = StepRecord(sid, seq, kind, _FAILED, error=error, attempt=attempt, at_ms=now_ms())
        self._activation.buffer(
            record,
            AuditDraft(
                kind="step.failed", message=f"step {sid} failed: {error['message'][:200]}", step_id=sid
            ),
            current=True,
        )
        await self._activation.flush()
        raise StepFailedError(
            f"step {sid!r} failed after {attempt} attempt(s): {type(exc).__name__}: {exc}",
            step_id=sid,
            attempts=attempt,
            error=error,
        ) from exc

    async def _finish_completed(
        self,
        sid: str,
        seq: int,
        kind: StepKind,
        result: Any,
        attempt: int,
        started: int,
        limits: StepLimits | None,
        typed: StepId[Any] | None,
        compensate: Callable[..., Any] | None,
        policy: RetryPolicy,
    ) -> Any:
        plain = _codec.to_plain(result, what=f"result of step {sid!r}", step_id=sid)
        finished = now_ms()
        meta: dict[str, Any] = {"ms": finished - started}
        if limits is not None:
            meta.update(limits.meta())
        record = StepRecord(
            sid,
            seq,
            kind,
            _COMPLETED,
            result=plain,
            attempt=attempt,
            at_ms=finished,
            meta=meta,
        )
        self._activation.buffer(
            record,
            AuditDraft(kind="step.completed", message=f"step {sid} completed", step_id=sid),
            current=True,
        )
        await self._activation.flush()
        if compensate is not None:
            self._compensations.append((sid, compensate, plain, policy))
        return typed.parse(plain) if typed else plain

    async def _run_limited(
        self, run: StepRun, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """Run a body under its time-outs (see `_timeouts`): the result, or `StepTimeout`."""
        await run.begin()
        if inspect.iscoroutinefunction(fn):

            async def body() -> Any:
                run.enter()  # the task's own context: `durable.heartbeat()` finds the run
                return await fn(*args, **kwargs)

        else:

            def body() -> Any:  # type: ignore[misc]
                token = run.enter()  # on a step thread: its context outlives this body
                try:
                    return fn(*args, **kwargs)
                finally:
                    run.leave(token)

        task = asyncio.get_running_loop().create_task(self._activation.call(body, (), {}))
        run.task = task
        try:
            while True:
                now = now_ms()
                due, due_kind = run.due()
                if now >= due:
                    break
                done, _ = await asyncio.wait({task}, timeout=(due - now) / 1000)
                if done:
                    return task.result()
        except asyncio.CancelledError:
            if run.lost is not None:  # a heartbeat found the lease lost and cancelled the body
                raise run.lost from None
            task.cancel()
            raise
        except BaseException:
            if run.lost is not None:
                raise run.lost from None
            raise
        finally:
            await run.close()
        limits = run.limits
        limit_ms = limits.heartbeat_ms if due_kind == "heartbeat" else limits.timeout_ms
        assert limit_ms is not None
        what = "sent no heartbeat for" if due_kind == "heartbeat" else "did not finish within"
        message = f"step {run.step_id!r} attempt {run.attempt} {what} {limit_ms / 1000:g} s"
        run.give_up(message)
        self._note_timeout(run.step_id, due_kind, message)
        raise StepTimeout(message, step_id=run.step_id, timeout=limit_ms / 1000, kind=due_kind)

    def _note_timeout(self, sid: str, due_kind: str, message: str) -> None:
        """Audit and count a step attempt's time-out (`step.timeout` or `heartbeat.timeout`)."""
        audit_kind = "heartbeat.timeout" if due_kind == "heartbeat" else "step.timeout"
        self._activation.buffer_audit(AuditDraft(kind=audit_kind, message=message, step_id=sid))
        METRICS.timed_out(self.workflow_id, "heartbeat" if due_kind == "heartbeat" else "step")

    async def _lost_attempt(
        self,
        sid: str,
        seq: int,
        kind: StepKind,
        policy: RetryPolicy,
        rec: StepRecord,
    ) -> Any:
        """A running attempt past its due time (its worker stopped): it failed with `StepTimeout`."""
        meta = rec.meta
        due_kind = "heartbeat" if meta.get("due_kind") == "heartbeat" else "timeout"
        limit = meta.get("heartbeat_timeout" if due_kind == "heartbeat" else "timeout") or 0
        what = "sent no heartbeat for" if due_kind == "heartbeat" else "did not finish within"
        message = f"step {sid!r} attempt {rec.attempt} {what} {limit:g} s (its worker stopped)"
        # The store audited the time-out when it revoked the lease; this counts it.
        METRICS.timed_out(self.workflow_id, "heartbeat" if due_kind == "heartbeat" else "step")
        exc = StepTimeout(message, step_id=sid, timeout=float(limit), kind=due_kind)
        return await self._attempt_failed(sid, seq, kind, policy, exc, rec.attempt, meta.get("details"))

    async def switch(
        self,
        step_id: str,
        value: Any,
        branches: Sequence[Branch | Mapping[str, Any]],
        default: Callable[..., Any] | Branch | None = None,
    ) -> Any:
        """Run the first branch whose `match` fits `value`, once; replay returns its stored result."""
        parsed = [Branch.of(b) for b in branches]
        seq, rec = self._next(step_id, _SWITCH, user=True)
        if rec is not None and rec.status == _COMPLETED:
            return rec.result
        chosen = next((b for b in parsed if b.matches(value)), None)
        if chosen is None:
            if default is None:
                raise NoMatchingBranch(
                    f"switch {step_id!r}: no branch matched {value!r} and no default was given",
                    step_id=step_id,
                    value=repr(value)[:200],
                )
            chosen = default if isinstance(default, Branch) else Branch(id="default", match=None, run=default)
        await self._activation.flush()
        fn = chosen.run
        result = await self._activation.call(fn, (value,) if _takes_argument(fn) else (), {})
        plain = _codec.to_plain(result, what=f"result of switch {step_id!r}", step_id=step_id)
        self._activation.buffer(
            StepRecord(
                step_id,
                seq,
                _SWITCH,
                _COMPLETED,
                result=plain,
                at_ms=now_ms(),
                meta={"branch": chosen.id},
            ),
            AuditDraft(kind="switch", message=f"switch {step_id} took branch {chosen.id}", step_id=step_id),
            current=True,
        )
        await self._activation.flush()
        return plain

    async def rollback(self) -> None:
        """Run registered compensations newest first, each exactly once (resumable after a crash)."""
        while self._compensations:
            sid, fn, result, policy = self._compensations.pop()
            args = (result,) if _takes_argument(fn) else ()
            await self._step(
                f"rollback:{sid}", fn, args, {}, policy, None, None, user=False, kind=_COMPENSATION
            )
