"""`ctx.patched` and `ctx.deprecate_patch`: changing workflow code under executions already running it.

A workflow's history is positional: the k-th `ctx.*` call must be the one recorded k-th. To add,
remove or reorder calls in code that has executions in flight, branch on `ctx.patched("change-id")`:

- an execution that reaches that point on the new code (a new one, or one past the end of the
  history it recorded before the change) gets True, and a PATCH marker is recorded there, so every
  later replay of it answers True again;
- replaying a history recorded before the change, where another call sits at that position, gets
  False (and takes no position): the old branch runs and matches the old history.

Once no execution from before the change is left, replace `if ctx.patched(x): new else: old` with
`ctx.deprecate_patch(x); new`: it takes the marker where a history has one and nothing otherwise, so
histories with and without the marker replay. When those are gone too, drop the call.
"""

from __future__ import annotations

import re

from .._history import StepKind, StepRecord, StepStatus
from .._records import now_ms
from ._replay import ReplayContext

_PATCH = StepKind.PATCH
_COMPLETED = StepStatus.COMPLETED
_PATCH_PREFIX = "__patch:"
_CHANGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


def _step_id(change_id: object) -> str:
    if not isinstance(change_id, str) or not _CHANGE_ID.match(change_id):
        raise ValueError(
            f"patch change id must be 1 to 200 characters of letters, digits and _ . : -, got {change_id!r}"
        )
    return _PATCH_PREFIX + change_id


class Patching(ReplayContext):
    """`ctx.patched`, `ctx.deprecate_patch`."""

    def patched(self, change_id: str) -> bool:
        """True where this execution runs the code with change `change_id`, False where it replays a
        history recorded before it (see the module's notes); the same answer for the whole run."""
        sid = _step_id(change_id)
        known = self._patches.get(change_id)
        if known is not None:
            return known
        if self._stored_record(sid) is not None:
            self._next(sid, _PATCH, user=False)  # checks the marker sits at this position
            answer = True
        elif self._recorded_at(self._seq + 1) is not None:
            answer = False  # the old code's call is recorded here: take no position
        else:
            seq, _ = self._next(sid, _PATCH, user=False)
            self._activation.buffer(
                StepRecord(sid, seq, _PATCH, _COMPLETED, at_ms=now_ms(), meta={"change": change_id})
            )
            answer = True
        self._patches[change_id] = answer
        return answer

    def deprecate_patch(self, change_id: str) -> None:
        """Take `change_id`'s marker where the history has one; record nothing either way."""
        sid = _step_id(change_id)
        if change_id in self._patches:
            return
        self._patches[change_id] = True
        if self._stored_record(sid) is not None:
            self._next(sid, _PATCH, user=False)

    def _stored_record(self, step_id: str) -> bytes | None:
        return self._stored.get(step_id)
