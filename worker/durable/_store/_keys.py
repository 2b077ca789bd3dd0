"""Every Redis key shape the engine uses, in one place.

Keys of one execution carry the hash tag `{<execution id>}` so that a Lua script may
touch them all on a single Redis or in one Cluster slot. Shared keys keep their
partition in the name (`{q0}` for the queue side, `{s0}` for schedules) so that a hot
key can later be split without renaming the others.

Every script declares every key it touches in KEYS (checked by tests/stores/test_lua_keys.py):
no script builds a key name, so the shapes live here only, and a Redis Cluster client can
route each call by its keys. Work over many executions (firing timers, recovery, retention,
listing) is driven from Python in batches of per-execution calls.
"""

from __future__ import annotations

import re

_SAFE_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]+$")
# A worker version: it is part of its queue's key name after an at-sign (which no prefix holds), so the
# scripts can tell which version's queue a caller declared (see lua/_prelude.lua).
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_VERSION = re.compile(VERSION_PATTERN)


def check_version(version: str) -> str:
    """`version` if it is a valid worker version name ("" is the unversioned one), else `ValueError`."""
    if version and not _VERSION.match(version):
        raise ValueError(
            f"worker version {version!r} is not valid: use 1-63 letters, digits and _ . - "
            "starting with a letter or digit"
        )
    return version


QUEUE_GROUP = "workers"
AUDIT_MAXLEN = 1000
STATUS_MAXLEN = 100_000
EVENTS_MAXLEN = 10_000


class Keys:
    """Key names under one prefix (default `dw`)."""

    __slots__ = ("_active", "_compactable", "_done", "_events", "_finished", "_idx_all", "_queue", "_status",
                 "_timers", "_timers_changed", "prefix", "queue_partition", "version")  # fmt: skip

    def __init__(self, prefix: str = "dw", *, queue_partition: str = "q0", version: str = "") -> None:
        if not _SAFE_PREFIX.match(prefix):
            raise ValueError(f"key prefix {prefix!r} may hold only letters, digits and _ . : -")
        self.prefix = prefix
        self.queue_partition = queue_partition
        # The worker version whose queue `queue()` names by default ("": the unversioned queue).
        self.version = check_version(version)
        shared = f"{prefix}:{{{queue_partition}}}"
        self._queue = f"{shared}:queue"
        self._timers = f"{shared}:timers"
        self._timers_changed = f"{shared}:timers:changed"
        self._status = f"{shared}:status"
        self._events = f"{shared}:events"
        self._idx_all = f"{prefix}:idx:all"
        self._active = f"{prefix}:active"
        self._finished = f"{prefix}:finished"
        self._compactable = f"{prefix}:compactable"
        self._done = f"{prefix}:done"

    # ------------------------------------------------------------ one execution
    def exec(self, execution_id: str) -> str:
        """Hash: the execution's fields (status, input, result, fence counter, ...)."""
        return f"{self.prefix}:{{{execution_id}}}:exec"

    def steps(self, execution_id: str) -> str:
        """Hash: step id → encoded step record."""
        return f"{self.prefix}:{{{execution_id}}}:steps"

    def lease(self, execution_id: str) -> str:
        """String `worker_id:token` with a time-to-live."""
        return f"{self.prefix}:{{{execution_id}}}:lease"

    def sig(self, execution_id: str, name: str) -> str:
        """List: buffered payloads of signal `name`."""
        return f"{self.prefix}:{{{execution_id}}}:sig:{name}"

    def sigids(self, execution_id: str) -> str:
        """Set: delivery ids already accepted (dedupe)."""
        return f"{self.prefix}:{{{execution_id}}}:sigids"

    def signames(self, execution_id: str) -> str:
        """Set: names of the signal lists that exist, so a purge can find them."""
        return f"{self.prefix}:{{{execution_id}}}:signames"

    def audit(self, execution_id: str) -> str:
        """Stream (capped at about AUDIT_MAXLEN) of audit entries."""
        return f"{self.prefix}:{{{execution_id}}}:audit"

    def versioned(self, version: str) -> Keys:
        """The same layout with `version`'s queue as the default one."""
        return Keys(self.prefix, queue_partition=self.queue_partition, version=version)

    def execution_keys(self, execution_id: str, version: str | None = None) -> list[str]:
        """The fixed KEYS layout of every per-execution script (see lua/_prelude.lua); KEYS[7] is the
        queue of `version` (default: this layout's own)."""
        p = f"{self.prefix}:{{{execution_id}}}:"
        return [
            p + "exec",
            p + "steps",
            p + "lease",
            p + "audit",
            p + "sigids",
            p + "signames",
            self.queue(version),
            self._timers,
            self._status,
            self._events,
            self._active,
            self._finished,
            self._compactable,
        ]

    # ------------------------------------------------------------ shared (partitioned)
    def queue(self, version: str | None = None) -> str:
        """Stream: the ready queue of one worker version (default: this layout's own), consumer group
        QUEUE_GROUP; fields e (execution id), r (reason). The unversioned queue has no suffix."""
        version = self.version if version is None else version
        return f"{self._queue}@{version}" if version else self._queue

    def timers(self) -> str:
        """Sorted set: `<execution id>|<timer id>` scored by due time in ms."""
        return self._timers

    def timers_changed(self) -> str:
        """Pub/sub channel: a timer was added (pollers re-aim their sleep)."""
        return self._timers_changed

    def status(self) -> str:
        """Stream (capped at about STATUS_MAXLEN) of status changes: e, w, s, c, t."""
        return self._status

    def events(self) -> str:
        """Stream (capped at about EVENTS_MAXLEN) of events workflows emit: e, n, p, t."""
        return self._events

    # ------------------------------------------------------------ indexes and channels
    def idx_all(self) -> str:
        """Sorted set: every execution id scored by creation time in ms."""
        return self._idx_all

    def idx_workflow(self, workflow_id: str) -> str:
        """Sorted set: the executions of one workflow scored by creation time in ms."""
        return f"{self.prefix}:idx:wf:{workflow_id}"

    def active(self) -> str:
        """Set: ids of executions not yet final."""
        return self._active

    def finished(self) -> str:
        """Sorted set: ids of final executions scored by the time they became final."""
        return self._finished

    def compactable(self) -> str:
        """Sorted set: completed or cancelled executions whose history retention has not yet dropped,
        scored by the time they became final (failed ones keep their history for retry and debugging)."""
        return self._compactable

    def current_versions(self) -> str:
        """Hash: workflow id → the worker version its new executions go to (absent: unversioned)."""
        return f"{self.prefix}:versions:current"

    def known_versions(self) -> str:
        """Set: every worker version that has served (workers add theirs at start)."""
        return f"{self.prefix}:versions:known"

    def signal_schemas(self) -> str:
        """Hash: signal name → the JSON Schema of its payload, published by workers (senders without the
        model validate against it)."""
        return f"{self.prefix}:signal-schemas"

    def done_channel(self) -> str:
        """Pub/sub channel: the id of every execution that just became final."""
        return self._done

    # ------------------------------------------------------------ concurrency limits
    def concurrency_slots(self, group: str) -> str:
        """Sorted set: the executions holding a slot of concurrency group `group` (`<workflow id>` or
        `<workflow id>:<key>`), scored by when they were admitted in ms."""
        return f"{self.prefix}:{{{self.queue_partition}}}:conc:slots:{group}"

    def concurrency_waiting(self, group: str) -> str:
        """Sorted set: the executions waiting for a slot of `group`, scored by creation time in ms."""
        return f"{self.prefix}:{{{self.queue_partition}}}:conc:waiting:{group}"

    def concurrency_limits(self) -> str:
        """Hash: concurrency group → its limit, as the workers that serve it last said."""
        return f"{self.prefix}:{{{self.queue_partition}}}:conc:limits"

    def concurrency_keys(self, execution_id: str, group: str, version: str | None = None) -> list[str]:
        """KEYS of the concurrency scripts: the execution's layout, then slots, waiting, limits."""
        return [
            *self.execution_keys(execution_id, version),
            self.concurrency_slots(group),
            self.concurrency_waiting(group),
            self.concurrency_limits(),
        ]

    # ------------------------------------------------------------ schedules (used by the schedules mixin)
    def schedule(self, schedule_id: str) -> str:
        """Hash: one schedule's definition and state."""
        return f"{self.prefix}:{{s0}}:sched:{schedule_id}"

    def schedule_due(self) -> str:
        """Sorted set: schedule id scored by its next due time (or claim expiry) in ms."""
        return f"{self.prefix}:{{s0}}:sched:due"

    def schedule_index(self) -> str:
        """Set: every schedule id."""
        return f"{self.prefix}:{{s0}}:sched:index"

    # ------------------------------------------------------------ for the Lua scripts
    def lua_constants(self) -> dict[str, str]:
        """Values substituted into lua/_prelude.lua: channels, the queue's group, stream caps (no key names)."""
        return {
            "DONE_CHANNEL": self._done,
            "QUEUE_GROUP": QUEUE_GROUP,
            "TIMERS_CHANNEL": self._timers_changed,
            "AUDIT_MAXLEN": str(AUDIT_MAXLEN),
            "STATUS_MAXLEN": str(STATUS_MAXLEN),
            "EVENTS_MAXLEN": str(EVENTS_MAXLEN),
        }

    # ------------------------------------------------------------ schedules: audit and change feed
    def schedule_audit(self, schedule_id: str) -> str:
        """Stream (capped at about AUDIT_MAXLEN) of one schedule's audit entries."""
        return f"{self.prefix}:{{s0}}:sched-audit:{schedule_id}"

    def schedule_changes(self) -> str:
        """Stream (capped, short): one entry per schedule write, so pollers can re-aim their sleep."""
        return f"{self.prefix}:{{s0}}:sched-changes"

    def schedule_write_keys(self, schedule_id: str) -> list[str]:
        """The KEYS layout of the scripts that write or delete one schedule (schedule_put, schedule_delete)."""
        return [
            self.schedule(schedule_id),
            self.schedule_due(),
            self.schedule_index(),
            self.schedule_audit(schedule_id),
            self.schedule_changes(),
        ]
