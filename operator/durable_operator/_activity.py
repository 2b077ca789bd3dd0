"""Which operator replica is the active one, and the loops that run only there.

kopf peering pauses kopf's own watch streams, handlers, timers and daemons in a standby
replica, but a task we start ourselves (the status mirror) knows nothing of it. So the
mirror follows kopf's activity rather than an election of its own:

- Design choice: we observe the same peering object kopf uses and apply kopf's own rule
  (kopf/_core/engines/peering.py, `process_peering_event`): a replica is active while its
  own entry is live and no other live peer has a priority as high as its own (kopf pauses
  every replica of a tied priority). kopf is given our identity and priority, so both
  read the same facts. A Redis leader lease was the alternative, but the mirror needs
  what only the kopf-active replica has: the DurableWorkflow/DurableExecution views fed
  by kopf's watch streams. A lease could elect a replica whose kopf is paused, whose
  views are empty, and whose mirrors would then be dropped. kopf exposes no public hook
  for its paused state (a daemon would be stopped on pause, but needs an object to hang
  on and puts a finalizer on it), hence the observation.
- The gate follows kopf with a lag of at most `activity_interval`. In that window two
  mirrors may overlap; that is harmless: every patch re-reads the execution from Redis
  (idempotent), and an entry is acknowledged only after its batch was applied.
- Without peering (standalone) the one replica is always active.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import random
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._kube import KubeError, resource_path

if TYPE_CHECKING:
    from ._mirror import StatusMirror

log = logging.getLogger("durable_operator.activity")

PEERING_GROUP_VERSION = "kopf.dev/v1"


def own_identity() -> str:
    """A peer id unique per process start (like kopf's own: host or pod name, start time, random)."""
    host = os.environ.get("POD_NAME") or socket.gethostname() or "operator"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")
    return f"{host}/{now}/{random.randbytes(3).hex()}"


def random_priority() -> int:
    """Replicas of one Deployment need distinct priorities: kopf pauses every replica of a tie."""
    return random.randint(1, 2**31 - 1)


def _live(info: Any, now: datetime.datetime) -> bool:
    if not isinstance(info, Mapping):
        return False
    try:
        lastseen = info.get("lastseen")
        seen = datetime.datetime.fromisoformat(str(lastseen).replace("Z", "+00:00")) if lastseen else now
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        return seen + datetime.timedelta(seconds=int(info.get("lifetime", 60))) > now
    except (TypeError, ValueError):
        return False


def peering_allows(
    status: Mapping[str, Any], identity: str, priority: int, now: datetime.datetime | None = None
) -> bool:
    """kopf's rule, read from a peering object's status: is the replica `identity` active?"""
    now = now or datetime.datetime.now(datetime.UTC)
    if not _live(status.get(identity), now):
        return False  # kopf has not announced itself yet (it starts paused when peering is mandatory)
    for peer, info in status.items():
        if peer != identity and _live(info, now) and int(info.get("priority", 0)) >= priority:
            return False
    return True


class ActivityGate:
    """Starts the status mirror while this replica is the active one, stops it otherwise."""

    def __init__(
        self,
        mirror: StatusMirror,
        *,
        identity: str,
        priority: int,
        peering_name: str | None,
        namespaces: tuple[str, ...] = (),
        interval: float = 2.0,
    ) -> None:
        self.mirror = mirror
        self.identity = identity
        self.priority = priority
        self.peering_name = peering_name
        self.namespaces = namespaces
        self.interval = interval
        self.active = False
        self._task: asyncio.Task[None] | None = None

    def _paths(self) -> list[str]:
        assert self.peering_name is not None
        if not self.namespaces:
            return [resource_path(PEERING_GROUP_VERSION, "clusterkopfpeerings", None, self.peering_name)]
        return [
            resource_path(PEERING_GROUP_VERSION, "kopfpeerings", ns, self.peering_name)
            for ns in self.namespaces
        ]

    async def allowed(self) -> bool | None:
        """True/False by kopf's rule; None when the peering object cannot be read (keep the state)."""
        if self.peering_name is None:
            return True
        kube = self.mirror.runtime.kube
        try:
            objs = [await kube.get(p) for p in self._paths()]
        except KubeError as exc:
            log.debug("peering object unreadable: %s", exc)
            return None
        # A missing peering object: kopf (peering mandatory) pauses, and so do we.
        return all(
            obj is not None and peering_allows(obj.get("status") or {}, self.identity, self.priority)
            for obj in objs
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="durable-activity-gate")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._switch(False)

    async def run(self) -> None:
        while True:
            try:
                allowed = await self.allowed()
                if allowed is not None:
                    await self._switch(allowed)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the gate die: the next look decides again
                log.exception("activity gate")
            await asyncio.sleep(self.interval)

    async def _switch(self, active: bool) -> None:
        if active == self.active:
            return
        self.active = active
        if active:
            log.info("this replica (%s) is active: starting the status mirror", self.identity)
            self.mirror.start()
        else:
            log.info("this replica (%s) is standing by: stopping the status mirror", self.identity)
            await self.mirror.stop()


__all__ = ["ActivityGate", "own_identity", "peering_allows", "random_priority"]
