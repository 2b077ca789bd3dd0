"""`ctx.continue_as_new(input)`: end this run and start a fresh history under the same execution id."""

from __future__ import annotations

from typing import Any, NoReturn

from .. import _codec
from .._errors import ContinueAsNew
from ._replay import ReplayContext


class Continuing(ReplayContext):
    """`ctx.continue_as_new`."""

    def continue_as_new(self, input: Any = None) -> NoReturn:
        """End this run and start a fresh one of the same workflow under the same execution id, with
        `input` (checked against the workflow's input type like `start`'s; a bad one raises
        `InputValidationError` here, and nothing is written).

        Not awaited: it raises `ContinueAsNew`, a `BaseException` that `except Exception` cannot
        catch; the engine then writes, in one atomic step, what this run buffered, drops its step
        history, stores the new input, counts the run up (`ExecutionRecord.run`) and queues the
        next run. Signals buffered and not yet consumed stay buffered for the next run, and
        delivery ids stay deduplicated. The finished run's history and result are gone.
        """
        abandoned = self._activation.abandoned
        if abandoned is not None:
            raise abandoned
        # The workflow's own input check, from the worker's workflows (none without a worker).
        lookup = self._activation.lookup
        definition = lookup(self.workflow_id) if lookup is not None else None
        value = definition.validate_input(input) if definition is not None else input
        raise ContinueAsNew(_codec.dumps(value, what=f"input of workflow {self.workflow_id!r}"))
