"""The order of an execution's records (`observedVersion`): a phase never goes backwards in CR status."""

from __future__ import annotations

import dataclasses
import datetime
import random

from durable import ExecutionRecord, Status
from durable._records import ExecutionId
from durable_operator._status import execution_status, is_older, parse_version, record_version

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def _record(
    status: Status, ms: int, attempt: int = 1, activations: int = 0, step: str | None = None
) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=ExecutionId("e1"),
        workflow_id="wf",
        status=status,
        input=None,
        created_at=T0,
        updated_at=T0 + datetime.timedelta(milliseconds=ms),
        attempt=attempt,
        activations=activations,
        current_step=step,
    )


#: One execution's life as the engine moves through it: steps, a wait, a sleep, a failure, a retry.
HISTORY = [
    _record(Status.PENDING, 0),
    _record(Status.RUNNING, 10, activations=1),
    _record(Status.RUNNING, 11, activations=1, step="reserve"),
    _record(Status.RUNNING, 11, activations=1, step="charge"),  # two steps in one millisecond
    _record(Status.WAITING, 12, activations=1, step="approval"),
    _record(Status.RUNNING, 5, activations=2, step="approval"),  # another worker, its clock behind
    _record(Status.SLEEPING, 6, activations=2, step="cool-off"),
    _record(Status.RUNNING, 40, activations=3, step="cool-off"),
    _record(Status.FAILED, 41, activations=3, step="ship"),
    _record(Status.PENDING, 50, attempt=2, activations=3, step="ship"),  # retried
    _record(Status.RUNNING, 60, attempt=2, activations=4, step="ship"),
    _record(Status.COMPLETED, 61, attempt=2, activations=4, step="ship"),
]


def test_the_version_orders_an_executions_history() -> None:
    keys = [parse_version(record_version(r)) for r in HISTORY]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
    # Distinct phases of one history never share a version; only step changes in one millisecond do.
    assert len(set(keys)) == len(keys) - 1
    assert execution_status(HISTORY[-1], None, 1, 100)["observedVersion"] == record_version(HISTORY[-1])


def test_shuffled_records_never_move_a_status_backwards() -> None:
    rng = random.Random(8)
    for _ in range(200):
        shuffled = list(enumerate(HISTORY))
        rng.shuffle(shuffled)
        # Some writers see a record twice (a replayed stream, a reconcile after the mirror).
        shuffled += rng.sample(shuffled, 4)
        current: str | None = None
        accepted: list[int] = []
        for index, record in shuffled:
            version = record_version(record)
            if not is_older(version, current):
                current = version
                accepted.append(index)
        # What the CR went through is a sub-sequence of the true history, and it ends at the end.
        positions = [parse_version(record_version(HISTORY[i])) for i in accepted]
        assert positions == sorted(positions), accepted  # type: ignore[type-var]
        assert current == record_version(HISTORY[-1])


def test_a_final_phase_gives_way_only_to_a_retry() -> None:
    failed = record_version(HISTORY[8])
    for record in HISTORY[:8]:
        assert is_older(record_version(record), failed)
    assert not is_older(record_version(HISTORY[9]), failed)  # the retry: pending again, legitimately


def test_a_fresh_run_under_the_same_id_is_newer_than_the_last_one() -> None:
    finished = record_version(HISTORY[-1])
    fresh = record_version(dataclasses.replace(_record(Status.PENDING, 0), run=2))
    assert is_older(finished, fresh) and not is_older(fresh, finished)
    # A version written before versions carried the run counts as the first run's.
    legacy = finished.split(".", 1)[1]
    assert parse_version(legacy) == parse_version(finished)
    assert is_older(legacy, fresh)


def test_unknown_versions_never_block() -> None:
    version = record_version(HISTORY[3])
    for other in (None, "", "garbage", "1.2.3", "1.2.x.4", 7):
        assert parse_version(other) is None
        assert not is_older(version, other)
        assert not is_older(other, version)


def test_an_execution_parked_for_a_concurrency_slot_is_newer_than_its_activation() -> None:
    running = _record(Status.RUNNING, 10, activations=1)
    parked = dataclasses.replace(
        _record(Status.PENDING, 10, activations=1), waiting_for="concurrency:wf:customer-7"
    )
    again = _record(Status.RUNNING, 20, activations=2)
    assert is_older(record_version(running), record_version(parked))
    assert is_older(record_version(parked), record_version(again))
    status = execution_status(parked, None, 1, 100)
    assert (status["phase"], status["reason"]) == ("Pending", "WaitingForConcurrencySlot")
    assert status["message"] == "waiting for a slot of wf:customer-7"
