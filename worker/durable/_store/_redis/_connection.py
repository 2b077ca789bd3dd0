"""What every part of the Redis store shares: the connections, the Lua scripts, the notifier.

One multiplexed connection (`Mux`) carries every call that does not wait on the server. A blocking
read (XREADGROUP or XREAD with BLOCK) takes a connection of its own from a small set, one read at a
time per connection, since the server answers nothing else on a connection while it blocks. Pub/sub
has its own connection too (`Notifier`). Connection failures, deadlines and the server's transient
states all surface as `StoreUnavailable` from the `Mux` (see `_mux.py`): there is no other guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..._errors import StoreUnavailable
from .._keys import Keys
from ._decode import StreamEntry, stream_entries, text
from ._mux import Mux, RedisReplyError
from ._notify import Notifier
from ._settings import RedisSettings

__all__ = ["Declared", "RedisConnection", "RedisPart"]

# A script's answers "declare these keys and call me again" and "declare this version's queue and call
# me again" (see lua/_prelude.lua).
_NEEDS_KEYS = 2
_NEEDS_QUEUE = 3
# The keys to declare change only when someone else writes the same execution meanwhile.
_DECLARE_ATTEMPTS = 8
# Versions learnt from scripts' answers, kept for the next call on the same execution or workflow.
_VERSION_GUESSES = 10_000

# Scripts of one execution (and the shared keys next to it): each is prefixed by lua/_prelude.lua.
_EXECUTION_SCRIPTS = (
    "create",
    "acquire",
    "renew",
    "commit",
    "suspend",
    "finish",
    "release",
    "send_signal",
    "stop",
    "retry",
    "skip_step",
    "append_audit",
    "add_timer",
    "fire_timer",
    "recover",
    "purge",
    "compact",
    "ack",
    "migrate",
    "continue_as_new",
    "conc_admit",
    "conc_free",
    "conc_enroll",
    "put_running_step",
    "fire_step_timer",
)
# Scripts that stand alone (they touch only schedule keys).
_SCHEDULE_SCRIPTS = ("schedule_put", "schedule_claim", "schedule_commit", "schedule_delete")


@dataclass(frozen=True, slots=True)
class _Script:
    sha: str
    source: str


def _load_scripts(keys: Keys) -> dict[str, _Script]:
    """Every script's source, the execution scripts after the prelude with its placeholders filled."""
    folder = resources.files("durable._store").joinpath("lua")

    def read(name: str) -> str:
        return folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")

    prelude = read("_prelude")
    for name, value in keys.lua_constants().items():
        prelude = prelude.replace(f"@{name}@", value)
    left = re.search(r"@[A-Z_]+@", prelude)
    if left:
        raise RuntimeError(f"lua/_prelude.lua: Keys.lua_constants() does not fill {left.group()}")
    sources = {name: prelude + "\n" + read(name) for name in _EXECUTION_SCRIPTS}
    sources.update((name, read(name)) for name in _SCHEDULE_SCRIPTS)
    return {
        name: _Script(hashlib.sha1(src.encode(), usedforsecurity=False).hexdigest(), src)
        for name, src in sources.items()
    }


@dataclass(frozen=True, slots=True)
class Declared:
    """Keys of one execution a script found it needs, learnt from its answers: the workflow whose
    index it touches, the signals whose lists it touches (in the order learnt), and the worker version
    whose queue it enqueues on (None: the caller's guess)."""

    workflow: str = ""
    signals: tuple[str, ...] = ()
    version: str | None = None

    def learn(self, reply: list[Any]) -> Declared:
        if reply[0] == _NEEDS_QUEUE:
            return Declared(self.workflow, self.signals, text(reply[1]))
        names = [text(n) for n in reply[2:]]
        return Declared(
            text(reply[1]) or self.workflow,
            self.signals + tuple(n for n in names if n not in self.signals),
            self.version,
        )


class RedisConnection:
    def __init__(self, settings: RedisSettings, keys: Keys, *, op_timeout_s: float | None) -> None:
        self.settings = settings
        self.op_timeout_s = op_timeout_s
        self._keys = keys
        self._mux = Mux(settings, op_timeout_s=op_timeout_s)
        self._scripts = _load_scripts(keys)
        # Connections for blocking reads: every one made, and those free now.
        self._blocking: set[Mux] = set()
        self._idle: list[Mux] = []
        # Started on first use: a store that never waits for anything opens no pub/sub connection.
        self.notifier: Notifier | None = None
        self._version_guesses: OrderedDict[str, str] = OrderedDict()

    async def call(self, *args: Any) -> Any:
        return await self._mux.call(*args)

    async def scan_set(self, key: str, count: int) -> AsyncIterator[list[bytes]]:
        """The members of a set, a batch (SSCAN, about `count`) at a time, each member once (SSCAN
        itself may return a member twice)."""
        seen: set[bytes] = set()
        cursor: bytes | int = 0
        while True:
            cursor, members = await self._mux.call("SSCAN", key, cursor, "COUNT", count)
            fresh = [m for m in dict.fromkeys(members) if m not in seen]
            seen.update(fresh)
            if fresh:
                yield fresh
            if cursor == b"0":
                return

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of the store's Lua scripts (`lua/<name>.lua`) with these KEYS and ARGV."""
        script = self._scripts[name]
        return await self._mux.evalsha(script.sha, script.source, keys, args)

    async def script_declaring(
        self,
        name: str,
        execution_id: str,
        call: Callable[[Declared], tuple[list[str], list[Any]]],
        declared: Declared = Declared(),
    ) -> Any:
        """Run a script whose keys depend on the execution's state: `call` gives its KEYS and ARGV for
        what is declared so far; an answer naming undeclared keys (nothing written) makes another call
        with them declared."""
        for _ in range(_DECLARE_ATTEMPTS):
            keys, args = call(declared)
            reply = await self.script(name, keys, args)
            if not (isinstance(reply, list) and reply and reply[0] in (_NEEDS_KEYS, _NEEDS_QUEUE)):
                return reply
            declared = declared.learn(reply)
        raise StoreUnavailable(
            f"{name} of execution {execution_id!r}: the keys to declare kept changing; try again"
        )

    async def script_on_queue(
        self,
        name: str,
        execution_id: str,
        guess_key: str,
        guess: str,
        call: Callable[[str, Declared], tuple[list[str], list[Any]]],
    ) -> Any:
        """`script_declaring` for a script that may enqueue: `call` gets the worker version whose queue to
        declare, first the one learnt last for `guess_key` (an execution or a workflow) or else `guess`,
        then the one the script names."""
        learnt: list[str] = []

        def with_queue(declared: Declared) -> tuple[list[str], list[Any]]:
            if declared.version is not None:
                learnt.append(declared.version)
            version = (
                self._version_guesses.get(guess_key, guess) if declared.version is None else declared.version
            )
            return call(version, declared)

        reply = await self.script_declaring(name, execution_id, with_queue)
        if learnt:
            self._version_guesses[guess_key] = learnt[-1]
            self._version_guesses.move_to_end(guess_key)
            if len(self._version_guesses) > _VERSION_GUESSES:
                self._version_guesses.popitem(last=False)
        return reply

    async def blocking_call(self, block_ms: int, *args: Any) -> Any:
        """A command that may wait `block_ms` on the server, on a connection no other call waits behind."""
        mux = self._idle.pop() if self._idle else self._new_blocking()
        try:
            return await mux.call(*args, extra_s=block_ms / 1000)
        except asyncio.CancelledError:
            # Drop the connection: a read still blocked on the server would take entries for a
            # reader that is gone (they would wait for the visibility time-out).
            mux.close()
            raise
        finally:
            if mux in self._blocking:
                self._idle.append(mux)

    def _new_blocking(self) -> Mux:
        mux = Mux(self.settings, op_timeout_s=self.op_timeout_s)
        self._blocking.add(mux)
        return mux

    async def read_group(
        self, stream: str, group: str, consumer: str, last_id: str, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """XREADGROUP on one stream, creating the group (from the stream's start) if it is missing."""
        args: list[Any] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
        if block_ms:
            args += ["BLOCK", block_ms]
        args += ["STREAMS", stream, last_id]

        async def read() -> Any:
            return await (self.blocking_call(block_ms, *args) if block_ms else self.call(*args))

        try:
            reply = await read()
        except RedisReplyError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.create_group(stream, group)
            reply = await read()
        return stream_entries(reply)

    async def create_group(self, stream: str, group: str) -> None:
        try:
            await self.call("XGROUP", "CREATE", stream, group, "0", "MKSTREAM")
        except RedisReplyError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def notifications(self, channel: str) -> Notifier:
        """The notifier, subscribed to `channel` (once) before this returns: no lost wake-up."""
        if self.notifier is None:
            self.notifier = Notifier(self.settings, self._keys.done_channel(), self._keys.timers_changed())
        await self.notifier.start(channel)
        return self.notifier

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.close()
            self.notifier = None
        self._mux.close()
        for mux in self._blocking:
            mux.close()
        self._blocking.clear()
        self._idle.clear()


class RedisPart:
    """The base of each part of the Redis store: the shared connection and the key layout. Parts that
    keep state of their own extend `__init__` and call this one (each part is usable alone)."""

    def __init__(self, redis: RedisConnection, keys: Keys) -> None:
        self._redis = redis
        self.keys = keys
