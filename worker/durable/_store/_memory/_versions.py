"""`MemoryStore`'s `Versions`: current and known versions, per-version queues, migration."""

from __future__ import annotations

import copy
from typing import Self

from ..._records import FINAL_STATUSES, ExecutionId, Status, VersionLoad
from .._data import AuditDraft
from .._keys import check_version
from .._versions import Versions
from ._controls import unfinished
from ._state import MemoryPart


def _shown(version: str) -> str:
    return version or "(unversioned)"


class MemoryVersions(MemoryPart, Versions):
    @property
    def version(self) -> str:
        return self._version

    def versioned(self, version: str) -> Self:
        view = copy.copy(self)
        view._version = check_version(version)
        return view

    async def current_versions(self) -> dict[str, str]:
        return dict(self._state.current_versions)

    async def set_current_version(self, workflow_id: str, version: str, *, if_unset: bool = False) -> bool:
        current = self._state.current_versions
        if not check_version(version):
            return current.pop(workflow_id, None) is not None
        if (if_unset and workflow_id in current) or current.get(workflow_id) == version:
            return False
        current[workflow_id] = version
        return True

    async def known_versions(self) -> set[str]:
        return set(self._state.known_versions)

    async def add_known_version(self, version: str) -> None:
        if check_version(version):
            self._state.known_versions.add(version)

    async def version_load(self, workflow_id: str) -> dict[str, VersionLoad]:
        counts: dict[str, list[int]] = {}
        for ex in self._state.execs.values():
            if ex.workflow_id != workflow_id or ex.status in FINAL_STATUSES:
                continue
            n = counts.setdefault(ex.version, [0, 0])
            n[0] += 1
            n[1] += ex.status in (Status.PENDING, Status.RUNNING)
        return {v: VersionLoad(v, n[0], n[1]) for v, n in sorted(counts.items())}

    async def migrate(
        self, execution_id: ExecutionId, to_version: str, actor: str | None, now_ms: int
    ) -> str | None:
        st = self._state
        check_version(to_version)
        ex = unfinished(st, execution_id)
        old = ex.version
        if old == to_version:
            return None
        ex.version = to_version
        ex.fence += 1
        ex.lease = None
        ex.updated_ms = now_ms
        rewake, ex.rewake = ex.rewake, False
        # Idle: an armed sleeper, or a waiter no signal has woken; anything else may have a run queued
        # on the old version's queue, which no worker of the new version reads.
        idle = (ex.status == Status.SLEEPING and bool(ex.timer) and ex.timer in st.timers) or (
            ex.status == Status.WAITING and bool(ex.waiting_for)
        )
        if not idle or rewake:
            st.enqueue(execution_id, "migrated")
        message = f"moved from worker version {_shown(old)} to {_shown(to_version)}"
        st.audit(ex, [AuditDraft(kind="migrated", message=message, actor=actor)], now_ms)
        return old
