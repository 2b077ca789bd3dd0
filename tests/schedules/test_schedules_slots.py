"""Slot computation: cron in a time zone across daylight-saving changes, intervals, catch-up counting."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from durable import InvalidSchedule
from durable._client._schedules import CronSlots, ScheduleSpec, slot_execution_id, slot_iso

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def walk(expr: str, tz: str, start: datetime, until: datetime) -> list[datetime]:
    slots = CronSlots(expr, tz)
    out = []
    for t in slots.iter_after(ms(start)):
        if t > ms(until):
            break
        out.append(datetime.fromtimestamp(t / 1000, ZoneInfo(tz)))
    return out


def test_daily_slot_in_the_spring_gap_fires_after_the_gap_that_day() -> None:
    # 2024-03-31 Paris: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    got = walk(
        "30 2 * * *", "Europe/Paris", datetime(2024, 3, 29, 12, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC)
    )
    assert [d.isoformat() for d in got] == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:30:00+02:00",  # the skipped time runs right after the gap, not a day late
        "2024-04-01T02:30:00+02:00",
    ]


def test_daily_slot_in_the_autumn_overlap_fires_once() -> None:
    # 2024-10-27 Paris: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    got = walk(
        "30 2 * * *",
        "Europe/Paris",
        datetime(2024, 10, 25, 12, tzinfo=UTC),
        datetime(2024, 10, 29, tzinfo=UTC),
    )
    assert [d.isoformat() for d in got] == [
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",  # first occurrence only
        "2024-10-28T02:30:00+01:00",
    ]


def test_new_york_both_transitions() -> None:
    spring = walk(
        "0 2 * * *",
        "America/New_York",
        datetime(2024, 3, 9, 12, tzinfo=UTC),
        datetime(2024, 3, 12, tzinfo=UTC),
    )
    assert [d.isoformat() for d in spring] == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:00:00-04:00",
    ]
    autumn = walk(
        "30 1 * * *",
        "America/New_York",
        datetime(2024, 11, 2, 12, tzinfo=UTC),
        datetime(2024, 11, 5, tzinfo=UTC),
    )
    assert [d.isoformat() for d in autumn] == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


def test_every_hour_expressions_follow_real_time_across_both_transitions() -> None:
    # Every 30 minutes: real time between slots stays 30 min through both changes; no slot repeats.
    for start in (datetime(2024, 3, 30, 22, tzinfo=UTC), datetime(2024, 10, 26, 22, tzinfo=UTC)):
        got = walk("*/30 * * * *", "Europe/Paris", start, start + timedelta(hours=6))
        # (compare instants: subtracting two datetimes of one zone gives the wall-clock difference)
        gaps = {ms(b) - ms(a) for a, b in itertools.pairwise(got)}
        assert gaps == {30 * 60_000}
        assert len({ms(d) for d in got}) == len(got) == 12
    autumn = walk(
        "0 * * * *",
        "Europe/Paris",
        datetime(2024, 10, 26, 23, tzinfo=UTC),
        datetime(2024, 10, 27, 2, tzinfo=UTC),
    )
    # 02:00 happens twice and so does the hourly run (once per real hour), 3 h of real time = 3 runs.
    assert [d.isoformat() for d in autumn] == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]


def test_fixed_hours_expression_through_the_gap_does_not_double_fire() -> None:
    # */30 during hours 2-3: 02:00 and 02:30 fall in the gap and map onto 03:00 and 03:30, which fire once each.
    got = walk(
        "*/30 2-3 * * *",
        "Europe/Paris",
        datetime(2024, 3, 30, 23, tzinfo=UTC),
        datetime(2024, 3, 31, 12, tzinfo=UTC),
    )
    assert [d.isoformat() for d in got] == ["2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00"]


def test_a_year_of_daily_slots_in_paris_has_one_slot_per_day() -> None:
    got = walk(
        "30 2 * * *",
        "Europe/Paris",
        datetime(2023, 12, 31, 12, tzinfo=UTC),
        datetime(2024, 12, 31, 12, tzinfo=UTC),
    )
    days = [d.date() for d in got]
    assert len(days) == len(set(days)) == 366


def test_interval_slots_are_aligned_to_the_epoch() -> None:
    spec = ScheduleSpec(workflow_id="w", input=None, interval_ms=3_600_000)
    t = ms(datetime(2024, 5, 1, 10, 17, tzinfo=UTC))
    assert spec.next_after(t) == ms(datetime(2024, 5, 1, 11, tzinfo=UTC))
    assert spec.next_after(ms(datetime(2024, 5, 1, 11, tzinfo=UTC))) == ms(
        datetime(2024, 5, 1, 12, tzinfo=UTC)
    )


def test_latest_due_counts_superseded_slots() -> None:
    spec = ScheduleSpec(workflow_id="w", input=None, cron="*/15 * * * *")
    first = ms(datetime(2024, 5, 1, 10, tzinfo=UTC))
    latest, skipped = spec.latest_due(first, first + 2 * 3_600_000 + 5 * 60_000)
    assert latest == ms(datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert skipped == 8
    interval = ScheduleSpec(workflow_id="w", input=None, interval_ms=900_000)
    assert interval.latest_due(first, first + 2 * 3_600_000 + 5 * 60_000) == (latest, 8)
    # A month-long outage of a per-minute schedule: the count is right and cheap to get.
    spec = ScheduleSpec(workflow_id="w", input=None, cron="* * * * *")
    latest, skipped = spec.latest_due(first, first + 30 * 86_400_000)
    assert latest == first + 30 * 86_400_000
    assert skipped == 30 * 1440


def test_slot_execution_ids() -> None:
    assert slot_iso(ms(datetime(2024, 3, 31, 1, 30, tzinfo=UTC))) == "2024-03-31T01:30:00Z"
    assert slot_iso(1500) == "1970-01-01T00:00:01.500Z"
    assert slot_execution_id("nightly", 0) == "nightly@1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "* * * * * *"}, "expected 5 fields"),
        ({"cron": "@reboot"}, "not supported"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"interval_ms": 10}, "at least 1 second"),
        ({"cron": "0 * * * *", "interval_ms": 60_000}, "exactly one"),
        ({}, "exactly one"),
        ({"cron": "0 * * * *", "overlap": "queue"}, "overlap must be one of"),
        ({"cron": "0 * * * *", "deadline_ms": -1}, "must not be negative"),
    ],
)
def test_invalid_definitions(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        spec = ScheduleSpec(workflow_id="w", input=None, **kwargs)  # type: ignore[arg-type]
        spec.next_after(0)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
