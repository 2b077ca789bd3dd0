"""`Durable.versions`: which worker version new executions of each workflow go to, what every version
still runs, and moving executions between versions."""

from __future__ import annotations

import logging

from .._errors import ExecutionNotFound
from .._records import ExecutionId, VersionLoad, now_ms
from .._store._base import Store
from .._store._keys import check_version

__all__ = ["VersionClient"]

log = logging.getLogger("durable.versions")


def _workflow_id(workflow_id: str) -> str:
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        raise ValueError(f"workflow id must be a non-empty string, not {workflow_id!r}")
    return workflow_id


class VersionClient:
    """Worker versions (`durable worker --version V`). Each execution belongs to the version that was
    current for its workflow when it started, and only workers of that version run it; a workflow with
    no current version starts executions for unversioned workers ("")."""

    def __init__(self, store: Store, *, actor: str) -> None:
        self.store = store
        self.actor = actor

    async def current(self, workflow_id: str) -> str | None:
        """The version new executions of `workflow_id` go to; None if none is set (unversioned)."""
        return (await self.store.current_versions()).get(_workflow_id(workflow_id))

    async def all_current(self) -> dict[str, str]:
        """Workflow id → current version, for every workflow that has one."""
        return await self.store.current_versions()

    async def promote(self, workflow_id: str, version: str, *, actor: str | None = None) -> bool:
        """Make `version` current for `workflow_id`: executions started from now on run on its workers
        (those in flight stay on theirs). "" sends new executions to unversioned workers. True if it
        changed anything. `ValueError` (nothing changes) for a malformed version or workflow id."""
        changed = await self.store.set_current_version(_workflow_id(workflow_id), check_version(version))
        if changed:
            log.info(
                "workflow %s: version %s is now current (by %s)",
                workflow_id,
                version or '""',
                actor or self.actor,
            )
        return changed

    async def known(self) -> set[str]:
        """Every version whose workers have started (unversioned workers are not listed)."""
        return await self.store.known_versions()

    async def load(self, workflow_id: str) -> dict[str, VersionLoad]:
        """The workflow's executions not yet final, by version ("" unversioned), with how many of
        them are runnable now (pending or running) rather than asleep or waiting for a signal."""
        return await self.store.version_load(_workflow_id(workflow_id))

    async def migrate(self, execution_id: str, to_version: str, *, actor: str | None = None) -> bool:
        """Move a non-final execution to `to_version`'s workers; False if it was already there.

        Its next run replays its history on that version's code: check first that it replays
        (`check_replay`, `durable migrate` does). A worker of the old version still running it loses
        its lease at its next write (its current step may run again on the new version, as after any
        lost lease). Raises `ExecutionNotFound`, `ExecutionFinished`, `ValueError` for a bad version."""
        if not execution_id:
            raise ExecutionNotFound("execution id must not be empty", execution_id=execution_id)
        old = await self.store.migrate(
            ExecutionId(execution_id), check_version(to_version), actor or self.actor, now_ms()
        )
        return old is not None
