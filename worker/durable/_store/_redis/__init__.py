"""The Redis store: every multi-key write is one Lua script, every call one round trip.

Key shapes live in `_keys.py`, the scripts in `lua/` (each prefixed by `lua/_prelude.lua`).
Worker writes are fenced: the scripts compare the caller's token with the execution's
fence counter and its lease, and answer "lease lost" without writing when they differ.
Connection failures surface as `StoreUnavailable`, the redis-py error kept as the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from ..._backoff import Backoff
from ..._errors import (
    ExecutionFinished,
    ExecutionNotFailed,
    ExecutionNotFound,
    InvalidStepId,
    LeaseLost,
    StoreUnavailable,
    WaitTimeoutError,
)
from ..._records import (
    AuditEntry,
    ExecutionId,
    ExecutionRecord,
    QueueEntry,
    Status,
    StatusConsumer,
    StatusEvent,
    ms_to_dt,
)
from .._base import (
    CHECKED_BY_MODEL,
    Acquired,
    AuditDraft,
    Checkpoint,
    ExecutionQuery,
    NewExecution,
    SchemaCheckNeeded,
    SignalWait,
    Store,
    SuspendOutcome,
    conflict_error,
)
from .._keys import QUEUE_GROUP, Keys
from ._mux import TRANSIENT_REPLIES, Mux, Subscriber, sha1
from ._schedules import RedisScheduleStore

__all__ = ["RedisStore"]

log = logging.getLogger("durable.store.redis")

_UNAVAILABLE = (rexc.ConnectionError, rexc.TimeoutError, ConnectionError)
_SCRIPTS = (
    "create",
    "acquire",
    "renew",
    "commit",
    "suspend",
    "finish",
    "release",
    "send_signal",
    "cancel",
    "retry",
    "skip_step",
    "append_audit",
    "add_timer",
    "fire_timers",
    "recover",
    "purge",
    "compact",
    "list",
    "ack",
)
_LUA_DIR = Path(__file__).parent.parent / "lua"
_LIST_SCAN_BUDGET = 2000
# Longest blocking queue read on the multiplexed path (its deadline is the store's plus this).
_MUX_MAX_BLOCK_MS = 5_000
_RECOVER_BATCH = 500


class _Op:
    """One store operation: a deadline, and connection failures turned into `StoreUnavailable`
    (the redis-py error kept as the cause). A deadline per call rather than a socket time-out per
    read keeps the hot path cheap and still never lets a hung server hang the caller."""

    __slots__ = ("_timeout",)

    def __init__(self, timeout_s: float | None) -> None:
        self._timeout = None if timeout_s is None else asyncio.timeout(timeout_s)

    async def __aenter__(self) -> None:
        if self._timeout is not None:
            await self._timeout.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._timeout is not None:
            try:
                await self._timeout.__aexit__(exc_type, exc, tb)
            except TimeoutError as timeout:
                raise StoreUnavailable("redis did not answer in time") from timeout
        if exc is not None and isinstance(exc, _UNAVAILABLE):
            raise StoreUnavailable(f"redis is unreachable: {exc}") from exc
        if isinstance(exc, rexc.ReadOnlyError) or (
            isinstance(exc, rexc.ResponseError) and str(exc).startswith(TRANSIENT_REPLIES)
        ):
            raise StoreUnavailable(f"redis cannot serve now: {exc}") from exc


def _mux_for(redis: aioredis.Redis, op_timeout_s: float | None) -> Mux | None:
    """The multiplexed hot-path connection, for plain TCP and unix-socket pools (TLS keeps redis-py)."""
    pool = redis.connection_pool
    kwargs = pool.connection_kwargs
    if pool.connection_class is aioredis.UnixDomainSocketConnection:
        where: dict[str, Any] = {"path": kwargs["path"]}
    elif pool.connection_class is aioredis.Connection:
        where = {"host": kwargs.get("host", "localhost"), "port": int(kwargs.get("port", 6379))}
    else:
        return None
    return Mux(
        **where,
        db=int(kwargs.get("db", 0) or 0),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        connect_timeout_s=kwargs.get("socket_connect_timeout") or 2.0,
        op_timeout_s=op_timeout_s,
    )


def _load_lua(keys: Keys) -> dict[str, str]:
    """Each script's source: the prelude, its placeholders filled from `keys`, then the script."""
    prelude = (_LUA_DIR / "_prelude.lua").read_text(encoding="utf-8")
    for name, value in keys.lua_constants().items():
        prelude = prelude.replace(f"@{name}@", value)
    left = re.search(r"@[A-Z_]+@", prelude)
    if left:
        raise RuntimeError(f"lua/_prelude.lua: Keys.lua_constants() does not fill {left.group()}")
    return {
        name: prelude + "\n" + (_LUA_DIR / f"{name}.lua").read_text(encoding="utf-8") for name in _SCRIPTS
    }


# ---------------------------------------------------------------------------- decoding
def _s(value: bytes | None) -> str:
    return value.decode() if value else ""


def _opt(value: bytes | None) -> str | None:
    return value.decode() if value else None


def _opt_ms(value: bytes | None) -> int | None:
    return int(value) if value else None


def _json(value: bytes | None) -> Any:
    return orjson.loads(value) if value else None


def _lenient_json(value: bytes | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode(errors="replace")


def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    it = iter(flat)
    return dict(zip(it, it, strict=True))


def _record(execution_id: str, flat: Sequence[Any]) -> ExecutionRecord:
    return _record_from(execution_id, _pairs(flat))


def _record_from(execution_id: str, f: dict[bytes, bytes]) -> ExecutionRecord:
    g = f.get
    created = ms_to_dt(int(f[b"created_ms"]))
    updated = ms_to_dt(_opt_ms(g(b"updated_ms"))) or created
    assert created is not None and updated is not None
    return ExecutionRecord(
        execution_id=ExecutionId(execution_id),
        workflow_id=_s(g(b"workflow_id")),
        status=Status(f[b"status"].decode()),
        input=_json(g(b"input")),
        created_at=created,
        updated_at=updated,
        started_at=ms_to_dt(_opt_ms(g(b"started_ms"))),
        finished_at=ms_to_dt(_opt_ms(g(b"finished_ms"))),
        result=_json(g(b"result")),
        error=_json(g(b"error")),
        attempt=int(g(b"attempt") or 1),
        activations=int(g(b"activations") or 0),
        current_step=_opt(g(b"current_step")),
        waiting_for=_opt(g(b"waiting_for")),
        wake_at=ms_to_dt(_opt_ms(g(b"wake_ms"))),
        category=_opt(g(b"category")),
        parent=_opt(g(b"parent")),
        input_hash=_opt(g(b"input_hash")),
        run=int(g(b"run") or 1),
    )


def _published_record(execution_id: str, payload: bytes | None) -> ExecutionRecord | None:
    """The final record a done message carried (a JSON array of the hash's fields), if it did."""
    if not payload:
        return None
    try:
        return _record(execution_id, [str(x).encode() for x in orjson.loads(payload)])
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return None  # read it instead


def _steps(flat: Sequence[Any]) -> dict[str, bytes]:
    it = iter(flat)
    return {k.decode(): v for k, v in zip(it, it, strict=True)}


def _stream_entries(resp: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Entries of an XREADGROUP reply on one stream, whatever shape the protocol gives it."""
    if not resp:
        return []
    streams = resp.values() if isinstance(resp, dict) else (item[1] for item in resp)
    out: list[tuple[bytes, dict[bytes, bytes]]] = []
    for entries in streams:
        for entry in entries:
            if isinstance(entries, dict):
                out.append((entry, entries[entry] or {}))
            else:
                out.append((entry[0], entry[1] or {}))
    return out


def _id(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pack_checkpoint(cp: Checkpoint, out: list[Any]) -> list[Any]:
    """Flatten a checkpoint into ARGV in the order lua/_prelude.lua's write_checkpoint reads it."""
    out.append(len(cp.records))
    for step_id, record in cp.records:
        out.append(step_id)
        out.append(record)
    out.append(len(cp.audit))
    for d in cp.audit:
        out.extend((d.kind, d.message, d.step_id or "", d.actor or "", d.data or b""))
    out.append(len(cp.events))
    for name, payload in cp.events:
        out.append(name)
        out.append(payload)
    if cp.current_step is None:
        out.extend(("0", ""))
    else:
        out.extend(("1", cp.current_step))
    return out


def _timer_member(execution_id: str, timer_id: str) -> str:
    if "|" in timer_id:
        raise ValueError(f"timer id {timer_id!r} may not contain '|'")
    return f"{execution_id}|{timer_id}"


def _cancel_error(reason: str, actor: str | None) -> bytes:
    return orjson.dumps(
        {"type": "Cancelled", "message": reason, "fields": {"reason": reason, "actor": actor}}
    )


def _not_found(execution_id: str) -> ExecutionNotFound:
    return ExecutionNotFound(f"unknown execution {execution_id!r}", execution_id=execution_id)


def _no_consumed_signal(execution_id: str, step_id: str) -> InvalidStepId:
    return InvalidStepId(
        f"execution {execution_id!r} has no consumed signal at step {step_id!r} to discard",
        execution_id=execution_id,
        step_id=step_id,
    )


def _finished(execution_id: str) -> ExecutionFinished:
    return ExecutionFinished(f"execution {execution_id!r} has already finished", execution_id=execution_id)


# ---------------------------------------------------------------------------- notifications
class _Notifier:
    """One pub/sub connection per store: done messages resolve `wait_finished` futures, timer-change
    messages resolve `wait_timer_change` futures. Reconnects on its own; waiters poll as a fallback.
    Each channel is subscribed on first use: a worker that never waits for results does not get a
    message for every finished execution."""

    def __init__(self, client: aioredis.Redis, done_channel: str, timers_channel: str) -> None:
        self._client = client
        self._done_channel = done_channel.encode()
        self._timers_channel = timers_channel.encode()
        # Done futures resolve to the final record as published (JSON), or None (read it instead).
        self._done: dict[str, set[asyncio.Future[bytes | None]]] = {}
        self._timers: set[asyncio.Future[None]] = set()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._channels: list[bytes] = []
        self._confirmed: set[bytes] = set()
        self._requested: set[bytes] = set()
        # Counts timer-change messages (and resets): a poller that saw another count before it
        # looked for the next due timer must look again instead of sleeping.
        self.timer_gen = 0

    async def start(self, channel: bytes, wait_s: float = 2.0) -> None:
        if channel not in self._channels:
            self._channels.append(channel)
            self._ready.clear()
            # Once the connection is up a subscribe may go out from here; before that the reader
            # task subscribes it (two tasks connecting the same PubSub would use two connections).
            if self._pubsub is not None and self._confirmed:
                self._requested.add(channel)
                try:
                    await self._pubsub.subscribe(channel)
                except Exception:  # the reader task starts over with every channel
                    await self._drop_pubsub()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="durable-redis-notifier")
        if not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop_pubsub()
        waiting: list[asyncio.Future[Any]] = [f for futures in self._done.values() for f in futures]
        for fut in [*waiting, *self._timers]:
            if not fut.done():
                fut.cancel()

    def watch_done(self, execution_id: str) -> asyncio.Future[bytes | None]:
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._done.setdefault(execution_id, set()).add(fut)
        return fut

    def unwatch_done(self, execution_id: str, fut: asyncio.Future[bytes | None]) -> None:
        futures = self._done.get(execution_id)
        if futures is not None:
            futures.discard(fut)
            if not futures:
                del self._done[execution_id]

    def watch_timers(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timers.add(fut)
        return fut

    def unwatch_timers(self, fut: asyncio.Future[None]) -> None:
        self._timers.discard(fut)

    def _wake_timers(self) -> None:
        self.timer_gen += 1
        for fut in self._timers:
            if not fut.done():
                fut.set_result(None)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _run(self) -> None:
        backoff = Backoff(0.05, 1.0)
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = self._client.pubsub()
                    self._requested = set(self._channels)
                    await self._pubsub.subscribe(*self._channels)
                missing = [c for c in self._channels if c not in self._requested]
                if missing:
                    self._requested.update(missing)
                    await self._pubsub.subscribe(*missing)
                message = await self._pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost connection: start over, let waiters re-check meanwhile
                log.debug("pub/sub connection lost: %r", exc)
                self._ready.clear()
                self._confirmed.clear()
                await self._drop_pubsub()
                self._wake_timers()
                await backoff.sleep()
                continue
            if message is None:
                continue
            kind = message.get("type")
            if kind == "subscribe":
                self._confirmed.add(message.get("channel"))
                if self._confirmed.issuperset(self._channels):
                    self._ready.set()
            elif kind == "message":
                self._on_message(message.get("channel"), message.get("data"))

    def _on_message(self, channel: bytes, data: Any) -> None:
        if channel == self._done_channel:
            raw = data if isinstance(data, bytes) else str(data).encode()
            head, _, record = raw.partition(b"\n")
            for fut in self._done.get(head.decode(), ()):
                if not fut.done():
                    fut.set_result(record or None)
        elif channel == self._timers_channel:
            self._wake_timers()


class _FastNotifier(_Notifier):
    """The same, on a raw pub/sub connection parsed by hiredis (`_mux.Subscriber`) instead of redis-py's
    PubSub, which costs about 0.1 ms per message; used wherever the multiplexed connection is."""

    def __init__(self, client: aioredis.Redis, mux: Mux, done_channel: str, timers_channel: str) -> None:
        super().__init__(client, done_channel, timers_channel)
        self._sub = Subscriber(mux, self._on_message, self._wake_timers)

    async def start(self, channel: bytes, wait_s: float = 2.0) -> None:
        self._sub.add(channel)
        if not self._sub.ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sub.ready.wait(), wait_s)

    async def close(self) -> None:
        await self._sub.close()
        await super().close()


# ---------------------------------------------------------------------------- the store
class RedisStore(RedisScheduleStore, Store):
    """Executions in Redis. `redis` is a `redis.asyncio.Redis` with `decode_responses=False`."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = "dw", op_timeout_s: float | None = 10.0
    ) -> None:
        self.redis = redis
        self._op_timeout = op_timeout_s
        self.keys = Keys(prefix)
        self._r: Any = redis  # redis-py's stubs type replies loosely; the replies are decoded here
        sources = _load_lua(self.keys)
        self._scripts = {name: redis.register_script(src) for name, src in sources.items()}
        self._sources = {name: (sha1(src), src) for name, src in sources.items()}
        self._mux = _mux_for(redis, op_timeout_s)
        # The queue's blocking reads get a connection of their own (one read at a time).
        self._queue_mux = _mux_for(
            redis, None if op_timeout_s is None else op_timeout_s + _MUX_MAX_BLOCK_MS / 1000
        )
        self._notifier: _Notifier | None = None
        self._timer_gen_seen = 0
        self._status_cursors: dict[tuple[str, str], str] = {}
        kwargs = redis.connection_pool.connection_kwargs
        timeout = kwargs.get("socket_timeout", kwargs.get("orig_socket_timeout", 5.0))
        # A blocking read must return before the socket time-out fires.
        self._max_block_ms: int | None = None if timeout is None else max(int(timeout * 1000) - 500, 100)

    url_schemes = ("redis", "rediss", "unix")

    @classmethod
    def open_url(cls, url: str, **options: Any) -> RedisStore:
        return cls.from_url(url, **options)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "dw", **options: Any) -> RedisStore:  # type: ignore[override]
        options["decode_responses"] = False
        op_timeout_s = options.pop("op_timeout_s", 10.0)
        # No per-read socket time-out (it costs an asyncio.wait_for per read); each store call has a
        # deadline instead (`op_timeout_s`), so a hung server still cannot hang a caller.
        options.setdefault("socket_timeout", None)
        options.setdefault("socket_connect_timeout", 2.0)
        options.setdefault("retry", Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), retries=3))
        # A bounded pool that waits for a free connection: a burst of a thousand calls queues here
        # instead of opening a thousand sockets and hitting the server's client limit.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=options.pop("max_connections", 64),
            timeout=options.pop("pool_timeout", 30.0),
            **options,
        )
        return cls(aioredis.Redis(connection_pool=pool), prefix=prefix, op_timeout_s=op_timeout_s)

    async def close(self) -> None:
        if self._notifier is not None:
            await self._notifier.close()
            self._notifier = None
        if self._mux is not None:
            self._mux.close()
        if self._queue_mux is not None:
            self._queue_mux.close()
        with contextlib.suppress(*_UNAVAILABLE):
            await self._r.aclose()

    def _op(self, blocking_ms: int | None = None) -> _Op:
        if self._op_timeout is None:
            return _Op(None)
        return _Op(self._op_timeout + (blocking_ms or 0) / 1000)

    async def ping(self) -> None:
        async with self._op():
            await self._r.ping()

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self._mux is not None:
            sha, source = self._sources[name]
            return await self._mux.evalsha(sha, source, keys, args)
        async with self._op():
            return await self._scripts[name](keys=keys, args=args)

    # ---------------------------------------------------------------- executions
    async def create_execution(self, new: NewExecution) -> bool:
        eid = new.execution_id
        keys = self.keys.execution_keys(eid)
        keys.append(self.keys.idx_all())
        keys.append(self.keys.idx_workflow(new.workflow_id))
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
            _timer_member(eid, "start"),
            new.input_hash,
            new.id_reuse,
        ]
        res = await self._run("create", keys, args)
        if int(res[0]) < 0:
            raise conflict_error(eid, new.workflow_id, _id(res[2]), _id(res[1]))
        return bool(int(res[0]) == 1)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        if self._mux is not None:
            flat = await self._mux.call("HGETALL", self.keys.exec(execution_id))
            return _record(execution_id, flat) if flat else None
        async with self._op():
            raw = await self._r.hgetall(self.keys.exec(execution_id))
        if not raw:
            return None
        return _record_from(execution_id, raw)

    async def load_steps(self, execution_id: str) -> dict[str, bytes]:
        async with self._op():
            raw = await self._r.hgetall(self.keys.steps(execution_id))
        return {k.decode(): v for k, v in raw.items()}

    async def list_audit(self, execution_id: str, limit: int = 1000) -> list[AuditEntry]:
        async with self._op():
            entries = await self._r.xrange(self.keys.audit(execution_id), count=limit)
        out: list[AuditEntry] = []
        for entry_id, f in entries:
            at = ms_to_dt(int(f.get(b"t") or 0))
            assert at is not None
            out.append(
                AuditEntry(
                    entry_id=_id(entry_id),
                    at=at,
                    kind=_s(f.get(b"k")),
                    message=_s(f.get(b"m")),
                    step_id=_opt(f.get(b"s")),
                    actor=_opt(f.get(b"a")),
                    data=_lenient_json(f.get(b"d")),
                )
            )
        return out

    async def append_audit(self, execution_id: str, drafts: Sequence[AuditDraft]) -> None:
        args: list[Any] = [execution_id, int(time.time() * 1000), len(drafts)]
        for d in drafts:
            args.extend((d.kind, d.message, d.step_id or "", d.actor or "", d.data or b""))
        if not await self._run("append_audit", self.keys.execution_keys(execution_id), args):
            raise _not_found(execution_id)

    async def list_executions(self, query: ExecutionQuery) -> tuple[list[ExecutionRecord], str | None]:
        index = self.keys.idx_workflow(query.workflow_id) if query.workflow_id else self.keys.idx_all()
        max_score = "+inf" if query.created_before_ms is None else f"({query.created_before_ms}"
        min_score = "-inf" if query.created_after_ms is None else str(query.created_after_ms)
        cursor_score, cursor_member = "", ""
        if query.cursor:
            cursor_score, _, cursor_member = query.cursor.partition(":")
            max_score = cursor_score
        statuses = [Status(s).value for s in query.statuses]
        page: list[ExecutionRecord] = []
        limit = max(query.limit, 1)
        while True:
            args = [max_score, min_score, cursor_score, cursor_member, limit - len(page), _LIST_SCAN_BUDGET]
            res = await self._run("list", [index], [*args, len(statuses), *statuses])
            state, score, member = _id(res[0]), _id(res[1]), _id(res[2])
            page.extend(_record(_id(eid), fields) for eid, fields in res[3:])
            if state == "end":
                return page, None
            cursor_score, cursor_member = _score(score), member
            if state == "more":
                return page, f"{cursor_score}:{cursor_member}"
            max_score = cursor_score  # the scan budget ran out: go on from the last entry examined

    async def list_active(self, limit: int = 10_000) -> list[ExecutionId]:
        out: list[ExecutionId] = []
        seen: set[bytes] = set()
        async with self._op():
            async for member in self._r.sscan_iter(self.keys.active(), count=1000):
                if member not in seen:
                    seen.add(member)
                    out.append(ExecutionId(member.decode()))
                    if len(out) >= limit:
                        break
        return out

    # ---------------------------------------------------------------- worker side
    async def acquire(self, execution_id: str, worker_id: str, ttl_ms: int, now_ms: int) -> Acquired:
        res = await self._run(
            "acquire", self.keys.execution_keys(execution_id), [execution_id, now_ms, worker_id, ttl_ms]
        )
        outcome = _id(res[0])
        if outcome == "ok":
            return Acquired(
                "ok", token=int(res[1]), record=_record(execution_id, res[2]), steps=_steps(res[3])
            )
        if outcome == "busy":
            return Acquired("busy", retry_after_ms=int(res[1]))
        if outcome == "finished":
            return Acquired("finished")
        return Acquired("missing")

    async def renew(self, execution_id: str, worker_id: str, token: int, ttl_ms: int) -> bool:
        keys = self.keys.execution_keys(execution_id)
        return bool(await self._run("renew", keys, [execution_id, "", worker_id, token, ttl_ms]))

    async def commit(self, execution_id: str, token: int, checkpoint: Checkpoint, now_ms: int) -> bool:
        args = _pack_checkpoint(checkpoint, [execution_id, now_ms, token])
        res = await self._run("commit", self.keys.execution_keys(execution_id), args)
        if res == -1:
            raise LeaseLost(execution_id=execution_id, token=token)
        return bool(res == 1)

    async def suspend(
        self,
        execution_id: str,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        wake_at_ms: int | None = None,
        timer_id: str | None = None,
        wait: SignalWait | None = None,
        ack: str | None = None,
    ) -> SuspendOutcome:
        keys = self.keys.execution_keys(execution_id)
        member = "" if wake_at_ms is None else _timer_member(execution_id, timer_id or "wake")
        args: list[Any] = [
            execution_id,
            now_ms,
            token,
            Status(status).value,
            "" if wake_at_ms is None else wake_at_ms,
        ]
        args.append(member)
        if wait is None:
            keys.append(keys[0])
            args.extend(("0", "", "", b"", b"", "", b"", b""))
        else:
            keys.append(self.keys.sig(execution_id, wait.name))
            # Without a timeout record a passed deadline cannot be recorded: the wait just suspends.
            deadline = "" if wait.deadline_ms is None or wait.timeout_record is None else wait.deadline_ms
            timeout_record = wait.timeout_record or b""
            args.extend(
                (
                    "1",
                    wait.name,
                    wait.step_id,
                    wait.record_prefix,
                    wait.record_suffix,
                    deadline,
                    timeout_record,
                    wait.schema or b"",
                )
            )
        _pack_checkpoint(checkpoint, args).append(ack or "")
        res = await self._run("suspend", keys, args)
        kind = _id(res[0])
        if kind == "lost":
            raise LeaseLost(execution_id=execution_id, token=token)
        if kind == "signal":
            return SuspendOutcome("signal", payload=res[1])
        if kind == "timeout":
            return SuspendOutcome("timeout")
        if kind == "cancelled":
            return SuspendOutcome("cancelled")
        return SuspendOutcome("suspended")

    async def finish(
        self,
        execution_id: str,
        token: int,
        checkpoint: Checkpoint,
        now_ms: int,
        *,
        status: Status,
        result: bytes | None = None,
        error: bytes | None = None,
        ack: str | None = None,
    ) -> None:
        status = Status(status)
        if not status.is_final:
            raise ValueError(f"finish needs a final status, not {status.value!r}")
        args: list[Any] = [execution_id, now_ms, token, status.value]
        args.extend(("0", b"") if result is None else ("1", result))
        args.extend(("0", b"") if error is None else ("1", error))
        _pack_checkpoint(checkpoint, args).append(ack or "")
        res = await self._run("finish", self.keys.execution_keys(execution_id), args)
        if res == -1:
            raise LeaseLost(execution_id=execution_id, token=token)

    async def release(self, execution_id: str, worker_id: str, token: int) -> None:
        await self._run(
            "release",
            self.keys.execution_keys(execution_id),
            [execution_id, int(time.time() * 1000), worker_id, token],
        )

    # ---------------------------------------------------------------- signals, cancel, actions
    async def send_signal(
        self,
        execution_id: str,
        name: str,
        payload: bytes,
        delivery_id: str,
        now_ms: int,
        actor: str | None = None,
        *,
        checked: str = CHECKED_BY_MODEL,
    ) -> bool:
        keys = self.keys.execution_keys(execution_id)
        keys.append(self.keys.sig(execution_id, name))
        res = await self._run(
            "send_signal", keys, [execution_id, now_ms, name, payload, delivery_id, actor or "", checked]
        )
        if isinstance(res, list):  # {-5, schema}: the waiter recorded a schema the sender did not check
            raise SchemaCheckNeeded(bytes(res[1]))
        if res == -2:
            raise _not_found(execution_id)
        if res == -3:
            raise _finished(execution_id)
        return bool(res == 1)

    async def signal_schema(self, execution_id: str, name: str) -> bytes | None:
        exec_key, registry = self.keys.exec(execution_id), self.keys.signal_schemas()
        if self._mux is not None:
            # Both reads go out together (the connection pipelines them): one round trip.
            own, published = await asyncio.gather(
                self._mux.call("HMGET", exec_key, "wait_signal", "wait_schema"),
                self._mux.call("HGET", registry, name),
            )
        else:
            async with self._op():
                own = await self._r.hmget(exec_key, "wait_signal", "wait_schema")
                published = await self._r.hget(registry, name)
        if own and own[0] is not None and _s(own[0]) == name and own[1]:
            return bytes(own[1])
        return bytes(published) if published else None

    async def published_signal_schemas(self) -> dict[str, bytes]:
        async with self._op():
            flat = await self._r.hgetall(self.keys.signal_schemas())
        return {_s(k): bytes(v) for k, v in flat.items()}

    async def publish_signal_schemas(self, schemas: Mapping[str, bytes]) -> None:
        if schemas:
            async with self._op():
                await self._r.hset(self.keys.signal_schemas(), mapping=dict(schemas))

    async def cancel(self, execution_id: str, reason: str, actor: str | None, now_ms: int) -> Status:
        args = [execution_id, now_ms, reason, actor or "", _cancel_error(reason, actor)]
        res = await self._run("cancel", self.keys.execution_keys(execution_id), args)
        if res == -2:
            raise _not_found(execution_id)
        if res == -3:
            raise _finished(execution_id)
        return Status(_id(res))

    async def retry_execution(
        self, execution_id: str, actor: str | None, now_ms: int, *, discard_signal_step: str | None = None
    ) -> None:
        res = await self._run(
            "retry",
            self.keys.execution_keys(execution_id),
            [execution_id, now_ms, actor or "", discard_signal_step or ""],
        )
        if res == -2:
            raise _not_found(execution_id)
        if res == -4:
            raise ExecutionNotFailed(f"execution {execution_id!r} has not failed", execution_id=execution_id)
        if res == -5:
            raise _no_consumed_signal(execution_id, discard_signal_step or "")

    async def skip_step(
        self, execution_id: str, step_id: str, record: bytes, actor: str | None, now_ms: int
    ) -> None:
        args = [execution_id, now_ms, step_id, record, actor or ""]
        res = await self._run("skip_step", self.keys.execution_keys(execution_id), args)
        if res == -2:
            raise _not_found(execution_id)
        if res == -3:
            raise _finished(execution_id)

    # ---------------------------------------------------------------- queue
    def _block(self, block_ms: int) -> int | None:
        if block_ms <= 0:
            return None  # BLOCK 0 would wait forever
        if self._max_block_ms is not None:
            return min(block_ms, self._max_block_ms)
        return block_ms

    async def _create_group(self, stream: str, group: str) -> None:
        try:
            await self._r.xgroup_create(stream, group, id="0", mkstream=True)
        except rexc.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read_group(
        self, stream: str, group: str, consumer: str, last_id: str, count: int, block_ms: int
    ) -> Any:
        block = self._block(block_ms) if last_id == ">" else None
        async with self._op(block):
            try:
                return await self._r.xreadgroup(group, consumer, {stream: last_id}, count=count, block=block)
            except rexc.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
            await self._create_group(stream, group)
            return await self._r.xreadgroup(group, consumer, {stream: last_id}, count=count, block=block)

    async def enqueue(self, execution_id: str, reason: str) -> None:
        async with self._op():
            await self._r.xadd(self.keys.queue(), {"e": execution_id, "r": reason})

    def _queue_entries(
        self, raw: list[tuple[bytes, dict[bytes, bytes]]], broken: list[bytes]
    ) -> list[QueueEntry]:
        out: list[QueueEntry] = []
        for entry_id, f in raw:
            eid = f.get(b"e")
            if not eid:
                broken.append(entry_id)
                continue
            out.append(QueueEntry(_id(entry_id), ExecutionId(eid.decode()), _s(f.get(b"r"))))
        return out

    async def _dequeue_raw(self, mux: Mux, consumer: str, count: int, block_ms: int) -> Any:
        q = self.keys.queue()
        args: list[Any] = ["XREADGROUP", "GROUP", QUEUE_GROUP, consumer, "COUNT", count]
        if block_ms > 0:
            args += ["BLOCK", min(block_ms, _MUX_MAX_BLOCK_MS)]
        args += ["STREAMS", q, ">"]
        try:
            return await mux.call(*args)
        except rexc.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        async with self._op():
            await self._create_group(q, QUEUE_GROUP)
        return await mux.call(*args)

    async def dequeue(self, consumer: str, count: int, block_ms: int) -> list[QueueEntry]:
        if self._queue_mux is not None:
            try:
                raw = await self._dequeue_raw(self._queue_mux, consumer, count, block_ms)
            except asyncio.CancelledError:
                # Drop the connection: a read still blocked on the server would take entries for a
                # reader that is gone (they would wait for the visibility time-out).
                self._queue_mux.close()
                raise
            entries = [
                (entry[0], _pairs(entry[1] or ()))
                for _stream, stream_entries in raw or ()
                for entry in stream_entries
            ]
        else:
            resp = await self._read_group(self.keys.queue(), QUEUE_GROUP, consumer, ">", count, block_ms)
            entries = _stream_entries(resp)
        broken: list[bytes] = []
        out = self._queue_entries(entries, broken)
        if broken:
            await self.ack([_id(b) for b in broken])
        return out

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        await self._run("ack", [self.keys.queue()], [QUEUE_GROUP, *entry_ids])

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[QueueEntry]:
        q = self.keys.queue()
        out: list[QueueEntry] = []
        start: bytes | str = "0-0"
        broken: list[bytes] = []
        async with self._op():
            for _ in range(16):
                try:
                    res = await self._r.xautoclaim(
                        q, QUEUE_GROUP, consumer, min_idle_ms, start, count=count - len(out)
                    )
                except rexc.ResponseError as exc:
                    if "NOGROUP" in str(exc):
                        return []
                    raise
                start = res[0]
                out.extend(self._queue_entries([(e[0], e[1] or {}) for e in res[1]], broken))
                if len(res) > 2:
                    broken.extend(res[2])
                if _id(start) == "0-0" or len(out) >= count:
                    break
        if broken:
            await self.ack([_id(b) for b in broken])
        return out

    async def queue_depth(self) -> int:
        async with self._op():
            return int(await self._r.xlen(self.keys.queue()))

    # ---------------------------------------------------------------- timers
    async def add_timer(self, execution_id: str, timer_id: str, due_ms: int) -> None:
        await self._run("add_timer", [self.keys.timers()], [_timer_member(execution_id, timer_id), due_ms])

    async def fire_due_timers(self, now_ms: int, limit: int = 500) -> int:
        return int(
            await self._run("fire_timers", [self.keys.timers(), self.keys.queue()], ["", now_ms, limit])
        )

    async def next_timer_due(self) -> int | None:
        if self._notifier is not None:
            self._timer_gen_seen = self._notifier.timer_gen
        async with self._op():
            first = await self._r.zrange(self.keys.timers(), 0, 0, withscores=True)
        if not first:
            return None
        return int(first[0][1])

    async def due_timer_count(self, now_ms: int) -> int:
        async with self._op():
            return int(await self._r.zcount(self.keys.timers(), "-inf", now_ms))

    async def _notifier_started(self, channel: str) -> _Notifier:
        if self._notifier is None:
            done, timers = self.keys.done_channel(), self.keys.timers_changed()
            if self._mux is not None:
                self._notifier = _FastNotifier(self.redis, self._mux, done, timers)
            else:
                self._notifier = _Notifier(self.redis, done, timers)
        await self._notifier.start(channel.encode())
        return self._notifier

    async def wait_timer_change(self, timeout_s: float) -> None:
        notifier = await self._notifier_started(self.keys.timers_changed())
        if notifier.timer_gen != self._timer_gen_seen:
            self._timer_gen_seen = notifier.timer_gen
            return  # a timer changed since the poller last looked: no sleeping on a stale answer
        fut = notifier.watch_timers()
        try:
            await asyncio.wait([fut], timeout=max(timeout_s, 0.0))
        finally:
            notifier.unwatch_timers(fut)

    # ---------------------------------------------------------------- observers
    async def wait_finished(self, execution_id: str, timeout_s: float | None) -> ExecutionRecord:
        # Subscribed before the first look: no lost wake-up.
        notifier = await self._notifier_started(self.keys.done_channel())
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        fut = notifier.watch_done(execution_id)
        try:
            while True:
                record = await self.get_execution(execution_id)
                if record is None:
                    raise _not_found(execution_id)
                if record.is_final:
                    return record
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
                    published = _published_record(execution_id, fut.result())
                    if published is not None and published.is_final:
                        return published
        finally:
            notifier.unwatch_done(execution_id, fut)

    async def read_status_events(
        self, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StatusEvent]:
        stream = self.keys.status()
        key = (group, consumer)
        while True:
            # First what this consumer was given and never acked (a restart resumes there), then new events.
            last_id = self._status_cursors.get(key, "0")
            raw = _stream_entries(await self._read_group(stream, group, consumer, last_id, count, block_ms))
            if last_id != ">":
                if not raw:
                    self._status_cursors[key] = ">"
                    continue
                self._status_cursors[key] = _id(raw[-1][0])
            events: list[StatusEvent] = []
            trimmed: list[str] = []
            for entry_id, f in raw:
                if not f.get(b"e"):
                    trimmed.append(_id(entry_id))
                    continue
                at = ms_to_dt(int(f.get(b"t") or 0))
                assert at is not None
                events.append(
                    StatusEvent(
                        event_id=_id(entry_id),
                        execution_id=ExecutionId(_s(f.get(b"e"))),
                        workflow_id=_s(f.get(b"w")),
                        status=Status(_s(f.get(b"s"))),
                        current_step=_opt(f.get(b"c")),
                        at=at,
                    )
                )
            if trimmed:
                await self.ack_status_events(group, trimmed)
            if events or last_id == ">":
                return events

    async def claim_status_events(self, group: str, consumer: str, min_idle_ms: int) -> int:
        stream = self.keys.status()
        start: Any = "0-0"
        claimed = 0
        async with self._op():
            while True:
                try:
                    # Not JUSTID: redis-py then drops the cursor from the reply.
                    reply = await self._r.xautoclaim(stream, group, consumer, min_idle_ms, start, count=500)
                except rexc.ResponseError as exc:
                    if "NOGROUP" in str(exc):
                        return 0  # no group yet: the first read creates it from the stream's start
                    raise
                start, entries = reply[0], reply[1]
                claimed += len(entries)
                if _id(start) == "0-0":
                    break
        # The claimed entries are now this consumer's unacknowledged ones: read those first.
        self._status_cursors[(group, consumer)] = "0"
        return claimed

    async def status_consumers(self, group: str) -> list[StatusConsumer]:
        try:
            async with self._op():
                raw = await self._r.xinfo_consumers(self.keys.status(), group)
        except rexc.ResponseError as exc:
            if "NOGROUP" in str(exc) or "no such key" in str(exc).lower():
                return []
            raise
        out = []
        for c in raw:
            fields = {_s(k) if isinstance(k, bytes) else str(k): v for k, v in c.items()}
            name = fields.get("name")
            out.append(
                StatusConsumer(
                    name=_s(name) if isinstance(name, bytes) else str(name),
                    pending=int(fields.get("pending", 0)),
                    idle_ms=int(fields.get("idle", 0)),
                )
            )
        return out

    async def drop_status_consumer(self, group: str, consumer: str) -> None:
        try:
            async with self._op():
                await self._r.xgroup_delconsumer(self.keys.status(), group, consumer)
        except rexc.ResponseError as exc:
            if "NOGROUP" not in str(exc) and "no such key" not in str(exc).lower():
                raise
        self._status_cursors.pop((group, consumer), None)

    async def ack_status_events(self, group: str, event_ids: Sequence[str]) -> None:
        if event_ids:
            async with self._op():
                await self._r.xack(self.keys.status(), group, *event_ids)

    async def list_emitted(self, limit: int = 100) -> list[tuple[str, str, Any]]:
        async with self._op():
            entries = await self._r.xrevrange(self.keys.events(), count=limit)
        return [(_s(f.get(b"e")), _s(f.get(b"n")), _lenient_json(f.get(b"p"))) for _, f in reversed(entries)]

    # ---------------------------------------------------------------- maintenance
    async def recover(self, now_ms: int) -> int:
        queued: set[bytes] = set()
        q = self.keys.queue()
        start = "-"
        async with self._op():
            while True:
                entries = await self._r.xrange(q, min=start, max="+", count=1000)
                queued.update(f[b"e"] for _, f in entries if f and b"e" in f)
                if len(entries) < 1000:
                    break
                start = "(" + _id(entries[-1][0])
            seen: set[bytes] = set()
            batch: list[bytes] = []
            total = 0
            shared = [q, self.keys.timers(), self.keys.active()]
            async for member in self._r.sscan_iter(self.keys.active(), count=_RECOVER_BATCH):
                if member in seen:
                    continue
                seen.add(member)
                batch.append(member)
                if len(batch) >= _RECOVER_BATCH:
                    total += await self._recover_batch(shared, batch, queued, now_ms)
                    batch = []
            if batch:
                total += await self._recover_batch(shared, batch, queued, now_ms)
        return total

    async def _recover_batch(
        self, keys: list[str], batch: list[bytes], queued: set[bytes], now_ms: int
    ) -> int:
        args: list[Any] = ["", now_ms]
        for member in batch:
            args.append(member)
            args.append("1" if member in queued else "0")
        return int(await self._run("recover", keys, args))

    async def purge_finished(self, finished_before_ms: int, limit: int = 1000) -> int:
        keys = [self.keys.finished(), self.keys.idx_all(), self.keys.active()]
        return int(await self._run("purge", keys, ["", finished_before_ms, limit]))

    async def compact_finished(self, finished_before_ms: int, now_ms: int, limit: int = 1000) -> int:
        keys = [self.keys.compactable()]
        return int(await self._run("compact", keys, ["", now_ms, finished_before_ms, limit]))


def _score(value: str) -> str:
    """A sorted-set score as Redis prints it, normalised to an integer string when it is one."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value
