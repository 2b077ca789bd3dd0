"""One multiplexed Redis connection: many calls in flight, auto-pipelined.

RESP answers come back in the order the commands were sent, so every call appends its packed
command to a write buffer and a future to a FIFO; the buffer goes out once per event-loop turn
(all the calls made in that turn share one write), and `data_received` hands each parsed reply
(hiredis) to the oldest future. That costs a few microseconds per call where a pooled redis-py
call costs tens, and it batches naturally when many executions are in flight.

Every store call goes over one of these; a blocking read (BLOCK) gets a `Mux` of its own, since
the server answers nothing else on its connection meanwhile. Plain TCP, TLS or a unix socket, as
the `RedisSettings` say. A call that gets no answer within its deadline (`op_timeout_s`, plus the
time a blocking read may wait) fails with `StoreUnavailable` (cause `TimeoutError`) and drops the
connection with everything in flight on it; a lost connection fails its calls with
`StoreUnavailable` (cause `ConnectionError`). The next call connects again. A call is sent again on
a new connection only if it never left this process (the connection was found closed before its
bytes were written): a command that may have reached the server is never repeated, since a script
that ran but whose answer was lost must not run twice (callers settle that ambiguity by reading the
state again: the engine replays the history). Replies that describe the server's state rather than
the command (LOADING after a restart, BUSY, READONLY after a failover, ...) are `StoreUnavailable`
too: callers treat it as "try later"; other error replies are the command's own (`RedisReplyError`).
"""

from __future__ import annotations

import asyncio
import collections
import select
import ssl
from collections.abc import Callable
from typing import Any, TypeVar, cast

import hiredis

from ..._errors import StoreUnavailable
from ._settings import RedisSettings

__all__ = ["TRANSIENT_REPLIES", "Mux", "RedisReplyError", "open_connection", "pack", "reply_error"]

_P = TypeVar("_P", bound=asyncio.BaseProtocol)

# Reconnect-and-resend attempts for a call whose connection was gone before it was written.
_RETRIES = 3

# Error replies that say the server cannot serve anything right now, whatever the command: a
# restart still loading its data, a script running too long, a replica or a failover in progress,
# memory or disk trouble. Transient for the caller, never the command's own fault.
TRANSIENT_REPLIES = (
    "LOADING",
    "BUSY ",
    "MASTERDOWN",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "READONLY",
    "OOM",
    "MISCONF",
)


# poll(2) events that mean the peer closed its end (POLLRDHUP is Linux's; elsewhere only a full hang-up).
_HUNG_UP = getattr(select, "POLLRDHUP", 0) | getattr(select, "POLLHUP", 0) | getattr(select, "POLLERR", 0)


class RedisReplyError(Exception):
    """An error reply to a command (NOGROUP, WRONGTYPE, a script's error, ...): the command's own fault,
    not the server's state nor the connection's. The message is the reply."""


class _NotSent(ConnectionError):
    """The connection was closed before the command was written: sending it again is safe."""


def reply_error(message: str) -> Exception:
    """An error reply as an exception: the server's transient states as `StoreUnavailable`."""
    if message.startswith(TRANSIENT_REPLIES):
        err = StoreUnavailable(f"redis cannot serve now: {message}")
        err.__cause__ = RedisReplyError(message)
        return err
    return RedisReplyError(message)


async def open_connection(settings: RedisSettings, factory: Callable[[], _P]) -> _P:
    """A connection to the server of `settings` (TCP, TLS or unix socket) speaking `factory()`'s protocol."""
    loop = asyncio.get_running_loop()
    if settings.path:
        _, proto = await loop.create_unix_connection(factory, settings.path)
    else:
        # With TLS the server's certificate is checked against `host` (unless the context says not to).
        _, proto = await loop.create_connection(factory, settings.host, settings.port, ssl=settings.tls)
    return proto


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return repr(value).encode() if isinstance(value, float) else str(value).encode()


def pack(args: tuple[Any, ...] | list[Any]) -> bytes:
    """A command in RESP: `*<n>` then `$<len>` and the bytes of each argument."""
    out = [b"*%d\r\n" % len(args)]
    append = out.append
    for value in args:
        cls = value.__class__
        if cls is str:
            data = value.encode()
        elif cls is bytes:
            data = value
        elif cls is int:
            data = b"%d" % value
        else:
            data = _arg(value)
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(out)


class _Proto(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, op_timeout_s: float | None) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        # Each call's future and deadline (loop time), oldest first: replies come back in this order.
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.closed = False
        self.op_timeout_s = op_timeout_s
        self.watchdog: asyncio.TimerHandle | None = None
        # Polled (without waiting) before each write, to see whether the server has hung up. On a TLS
        # connection this is the socket under it: a hang-up shows there all the same.
        self.probe: select.poll | None = None

    # ------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and hasattr(select, "poll"):
            self.probe = select.poll()
            self.probe.register(sock.fileno(), _HUNG_UP)
        if self.op_timeout_s is not None:
            self.watchdog = self.loop.call_later(self._period(), self._check)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(ConnectionError(f"protocol error: {exc}"), "redis sent an unreadable reply")
                return
            if reply is False:
                return
            if not waiting:  # pragma: no cover - a reply nobody asked for: the stream is out of step
                self._fail(ConnectionError("unexpected reply"), "redis sent a reply nobody asked for")
                return
            fut, _ = waiting.popleft()
            if fut.done():
                continue  # the caller gave up (cancelled); the answer still had to be read
            if isinstance(reply, hiredis.ReplyError):
                fut.set_exception(reply_error(str(reply)))
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        cause = ConnectionError(f"connection lost: {exc}" if exc else "connection closed by the server")
        cause.__cause__ = exc
        self._fail(cause, "redis is unreachable")

    # ------------------------------------------------------------ sending
    def send(self, packed: bytes, extra_s: float = 0.0) -> asyncio.Future[Any]:
        """Queue a command; its deadline is the operation time-out plus `extra_s` (a blocking read's wait)."""
        fut: asyncio.Future[Any] = self.loop.create_future()
        if self.closed:
            err = StoreUnavailable("redis is unreachable: connection closed")
            err.__cause__ = _NotSent("connection closed")
            fut.set_exception(err)
            return fut
        self.waiting.append((fut, self.loop.time() + (self.op_timeout_s or 0.0) + extra_s))
        self.out.append(packed)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)
        return fut

    def _peer_closed(self) -> bool:
        """The server hung up (a restart, an idle time-out) and the loop has not noticed yet."""
        probe = self.probe
        return probe is not None and any(events & _HUNG_UP for _fd, events in probe.poll(0))

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.closed:
            if self._peer_closed():
                # Nothing in the buffer reached the server: its calls may go again on a new connection.
                self._fail(ConnectionError("connection closed by the server"), "redis is unreachable")
                return
            data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
            self.out.clear()
            self.transport.write(data)

    # ------------------------------------------------------------ failure
    def _period(self) -> float:
        assert self.op_timeout_s is not None
        return max(0.02, min(1.0, self.op_timeout_s / 4))

    def _check(self) -> None:
        self.watchdog = None
        if self.closed or self.op_timeout_s is None:
            return
        if self.waiting and self.loop.time() > self.waiting[0][1]:
            self._fail(TimeoutError("no answer in time"), "redis did not answer in time")
            return
        self.watchdog = self.loop.call_later(self._period(), self._check)

    def _fail(self, cause: BaseException, message: str) -> None:
        self.closed = True
        self.probe = None
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if self.transport is not None:
            self.transport.abort()
        waiting, self.waiting = self.waiting, collections.deque()
        # The newest `unsent` calls are still in the write buffer: they never reached the server.
        unsent = len(self.out)
        self.out.clear()
        first_unsent = len(waiting) - unsent
        for i, (fut, _) in enumerate(waiting):
            if not fut.done():
                err = StoreUnavailable(f"{message}: {cause}")
                err.__cause__ = _NotSent(str(cause)) if i >= first_unsent else cause
                fut.set_exception(err)

    def close(self) -> None:
        if not self.closed:
            self._fail(ConnectionError("store closed"), "redis is unreachable")


class Mux:
    """The connection factory and the calls; connects lazily, again after a failure."""

    def __init__(self, settings: RedisSettings, *, op_timeout_s: float | None = 10.0) -> None:
        self.settings = settings
        self.op_timeout_s = op_timeout_s
        self._proto: _Proto | None = None
        self._connecting: asyncio.Future[_Proto] | None = None

    async def _connection(self) -> _Proto:
        loop = asyncio.get_running_loop()
        proto = self._proto
        if proto is not None and not proto.closed and proto.loop is loop:
            return proto
        connecting = self._connecting
        if connecting is not None and not connecting.done() and connecting.get_loop() is loop:
            return await asyncio.shield(connecting)
        self._connecting = connecting = loop.create_future()
        try:
            proto = await self._connect(loop)
        except BaseException as exc:
            connecting.set_exception(exc)
            connecting.exception()  # retrieved: waiters re-raise it, nobody else must log it
            self._connecting = None
            raise
        self._proto = proto
        connecting.set_result(proto)
        return proto

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Proto:
        old, self._proto = self._proto, None
        if old is not None:
            old.close()
        s = self.settings

        def factory() -> _Proto:
            return _Proto(loop, self.op_timeout_s)

        opened: _Proto | None = None
        try:
            async with asyncio.timeout(s.connect_timeout_s):
                opened = proto = await open_connection(s, factory)
                if s.password:
                    await proto.send(
                        pack(("AUTH", s.username, s.password) if s.username else ("AUTH", s.password))
                    )
                if s.db:
                    await proto.send(pack(("SELECT", s.db)))
        except TimeoutError as exc:
            if opened is not None:
                opened.close()
            raise StoreUnavailable(f"redis is unreachable: no connection in {s.connect_timeout_s} s") from exc
        except ssl.SSLError as exc:
            cause = ConnectionError(f"TLS handshake failed: {exc}")
            cause.__cause__ = exc
            raise StoreUnavailable(
                f"redis is unreachable: TLS handshake with {s.describe()} failed: {exc}"
            ) from cause
        except OSError as exc:
            cause = ConnectionError(f"cannot connect: {exc}")
            cause.__cause__ = exc
            raise StoreUnavailable(f"redis is unreachable: {exc}") from cause
        except RedisReplyError as exc:
            # AUTH or SELECT refused (a wrong password, a database out of range): one line saying so.
            if opened is not None:
                opened.close()
            raise StoreUnavailable(f"redis refused the connection: {exc}") from exc
        except StoreUnavailable:
            if opened is not None:  # a transient reply to AUTH or SELECT (still loading, ...)
                opened.close()
            raise
        return proto

    async def _send(self, packed: bytes, extra_s: float) -> Any:
        """Send and await the reply. A call that never left (its connection was already gone) goes
        again on a new connection, a few times, backing off; one that may have reached the server
        does not (see the module's docstring)."""
        delay = 0.02
        for attempt in range(_RETRIES + 1):
            proto = await self._connection() if attempt == 0 else await self._reconnect(delay)
            try:
                return await proto.send(packed, extra_s)
            except StoreUnavailable as exc:
                if attempt == _RETRIES or not isinstance(exc.__cause__, _NotSent):
                    raise
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reconnect(self, delay: float) -> _Proto:
        await asyncio.sleep(delay)
        return await self._connection()

    async def call(self, *args: Any, extra_s: float = 0.0) -> Any:
        """One command; `extra_s` lengthens its deadline (by the time a blocking read may wait)."""
        return await self._send(pack(args), extra_s)

    async def evalsha(self, sha: str, source: str, keys: Any, args: Any) -> Any:
        """Run a script by its digest, loading it (EVAL) if the server does not know it yet."""
        try:
            return await self._send(pack(("EVALSHA", sha, len(keys), *keys, *args)), 0.0)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self._send(pack(("EVAL", source, len(keys), *keys, *args)), 0.0)

    def close(self) -> None:
        if self._proto is not None:
            self._proto.close()
            self._proto = None
