"""The store's part for worker versions: which version new executions of a workflow go to, which
versions exist, how many executions each still has, and moving an execution to another version.

An execution belongs to the version current for its workflow when it was created (its record's
`version`), and only workers of that version take its runs: each version has its own ready queue.
"""

from __future__ import annotations

import abc
from typing import Self

from .._records import ExecutionId, VersionLoad

__all__ = ["Versions"]


class Versions(abc.ABC):
    @property
    @abc.abstractmethod
    def version(self) -> str:
        """The worker version whose queue this store reads ("" for unversioned workers)."""

    @abc.abstractmethod
    def versioned(self, version: str) -> Self:
        """This store seen by workers of `version`: the same state and connection (close only the
        original), that version's ready queue. `ValueError` for a malformed version name."""

    @abc.abstractmethod
    async def current_versions(self) -> dict[str, str]:
        """Workflow id → the version its new executions go to (a workflow without one: unversioned)."""

    @abc.abstractmethod
    async def set_current_version(self, workflow_id: str, version: str, *, if_unset: bool = False) -> bool:
        """Make `version` current for `workflow_id` ("" removes the entry: new executions go to
        unversioned workers); with `if_unset`, only if it has none. True if it changed anything."""

    @abc.abstractmethod
    async def known_versions(self) -> set[str]:
        """Every version a worker has announced (`add_known_version`)."""

    @abc.abstractmethod
    async def add_known_version(self, version: str) -> None: ...

    @abc.abstractmethod
    async def version_load(self, workflow_id: str) -> dict[str, VersionLoad]:
        """The workflow's executions that are not final, by version (only versions that have some)."""

    @abc.abstractmethod
    async def migrate(
        self, execution_id: ExecutionId, to_version: str, actor: str | None, now_ms: int
    ) -> str | None:
        """Move a non-final execution to `to_version`: its record's version changes, the fence moves on
        (a worker still running it loses its lease at its next write), a due run is enqueued on the new
        version's queue, and the audit trail says who did it. Returns the old version, or None if it
        already was on `to_version` (nothing changed). Raises `ExecutionNotFound`, `ExecutionFinished`."""
