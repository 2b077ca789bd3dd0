"""The thread pool that runs sync step bodies off the event loop, with a cheap hand-off.

`loop.run_in_executor` costs about 100 µs per call on uvloop (a concurrent future, its
condition variable, a wrapping asyncio future and their callbacks). Here a call is one
`SimpleQueue.put` and one `call_soon_threadsafe` back: about 30 µs. The semantics are a thread
pool's: each body runs in a worker thread (never on the loop), up to `max_threads` at once.

Threads are added on demand, but not for every burst: quick bodies are best served by few
threads (each extra runnable thread competes for the GIL with the event loop, which then waits
up to a switch interval to get it back; waiting in the queue mostly measures that contention).
A thread is added when a body ran longer than `grow_after_s`, or when no thread took anything
for that long while work is queued (every thread is busy in a slow body), so blocking bodies
still get up to `max_threads` threads within a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

__all__ = ["StepThreads"]

_STOP = None


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the awaiting task was cancelled meanwhile
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class StepThreads(Executor):
    """A small thread pool with an asyncio fast path (`run`); `submit` works as for any executor."""

    def __init__(self, max_threads: int, name: str = "durable-step", *, grow_after_s: float = 0.002) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self._max = max_threads
        self._name = name
        self._grow_after = grow_after_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._taken = 0  # items the threads have picked up (progress, for the stall check)
        self._want_more = False  # a body ran longer than grow_after_s
        self._check_scheduled = False

    @property
    def threads(self) -> int:
        return len(self._threads)

    def run(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run `fn()` in a pool thread; the returned future resolves on the running loop."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._put((loop, fut, fn, time.monotonic()), loop)
        return fut

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        cf: Future[Any] = Future()
        self._put((None, cf, lambda: fn(*args, **kwargs), time.monotonic()), None)
        return cf

    def _put(
        self, item: tuple[Any, Any, Callable[[], Any], float], loop: asyncio.AbstractEventLoop | None
    ) -> None:
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        self._queue.put(item)
        if self._idle.acquire(blocking=False):
            return  # an idle thread takes it
        with self._lock:
            if not self._threads or loop is None or self._want_more:
                self._want_more = False
                self._spawn()
            elif not self._check_scheduled and len(self._threads) < self._max:
                self._check_scheduled = True
                loop.call_later(self._grow_after, self._check, loop, self._taken)

    def _spawn(self) -> None:
        if len(self._threads) < self._max and not self._closed:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _check(self, loop: asyncio.AbstractEventLoop, taken: int) -> None:
        """Loop-side: work is queued; if no thread took anything since `taken`, they are all stuck."""
        with self._lock:
            self._check_scheduled = False
            if self._closed or self._queue.empty():
                return
            if self._taken == taken or self._want_more:
                self._want_more = False
                self._spawn()
            if len(self._threads) < self._max:
                self._check_scheduled = True
                loop.call_later(self._grow_after, self._check, loop, self._taken)

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            loop, fut, fn, _queued_at = item
            self._taken += 1
            started = time.monotonic()
            if loop is None:  # a `submit` call: a concurrent future
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn())
                    except BaseException as exc:
                        fut.set_exception(exc)
            else:
                try:
                    ok, value = True, fn()
                except BaseException as exc:
                    ok, value = False, exc
                # A closed loop raises RuntimeError: nobody waits any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, fut, ok, value)
            if time.monotonic() - started > self._grow_after:
                self._want_more = True  # slow bodies (likely blocking): more threads will help
            del item, loop, fut, fn
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    continue
                loop, fut, _fn, _at = item
                if loop is None:
                    fut.cancel()
                else:
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(fut.cancel)
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                thread.join()
