"""Reading /remind's times, and the recurrence arithmetic: plain values, no database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aisystem.services.reminders import (
    DAY_SETS,
    Recurrence,
    ReminderError,
    local_moment,
    recurrence_next,
    time_zone_parse,
)
from pipeline.reminders.parsing import delay_parse, remind_parse
from tests.reminders.conftest import NOW

BERLIN = ZoneInfo("Europe/Berlin")


def test_in_ten_minutes_is_ten_minutes_from_now() -> None:
    request = remind_parse("in 10m stretch your legs", now=NOW, zone=BERLIN)

    assert request.due_at == NOW + timedelta(minutes=10)
    assert request.text == "stretch your legs"
    assert request.recurrence is None


@pytest.mark.parametrize(
    ("words", "delay"),
    [
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2 hours", timedelta(hours=2)),
        ("3 days and 4h", timedelta(days=3, hours=4)),
        ("90s", timedelta(seconds=90)),
        ("1w, 2d", timedelta(weeks=1, days=2)),
        ("45 min", timedelta(minutes=45)),
    ],
)
def test_durations_can_be_written_several_ways(words: str, delay: timedelta) -> None:
    assert delay_parse(f"{words} do it") == (delay, "do it")


def test_at_a_date_and_time_is_read_on_the_persons_wall_clock() -> None:
    request = remind_parse("at 2026-12-24 09:00 call Mum", now=NOW, zone=BERLIN)

    assert request.due_at == datetime(2026, 12, 24, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert request.text == "call Mum"


def test_at_a_time_alone_is_the_next_such_time() -> None:
    # NOW is 10:00 in Berlin: 09:30 has passed today, 11:00 has not.
    later_today = remind_parse("at 11:00 lunch", now=NOW, zone=BERLIN)
    tomorrow = remind_parse("at 9:30 standup", now=NOW, zone=BERLIN)

    assert later_today.due_at == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert tomorrow.due_at == datetime(2026, 12, 5, 8, 30, tzinfo=UTC)


def test_at_tomorrow_is_understood() -> None:
    request = remind_parse("at tomorrow 07:15 run", now=NOW, zone=BERLIN)

    assert request.due_at == datetime(2026, 12, 5, 6, 15, tzinfo=UTC)


def test_every_weekday_is_a_recurrence() -> None:
    request = remind_parse("every weekday at 08:00 brief me on my day", now=NOW, zone=BERLIN)

    assert request.recurrence == Recurrence(days="weekday", at=time(8, 0))
    assert request.text == "brief me on my day"
    assert request.due_at is None


@pytest.mark.parametrize(
    ("word", "days"),
    [("day", "day"), ("mon", "monday"), ("Fridays", "friday"), ("weekend", "weekend")],
)
def test_every_accepts_day_words_and_short_names(word: str, days: str) -> None:
    request = remind_parse(f"every {word} 07:30 hi", now=NOW, zone=BERLIN)

    assert request.recurrence == Recurrence(days=days, at=time(7, 30))


@pytest.mark.parametrize(
    "args",
    [
        "tomorrow stretch",
        "in soon stretch",
        "in 10m",
        "at 25:00 stretch",
        "at 2026-02-30 09:00 stretch",
        "at 2026-12-24 stretch",
        "every fortnight 08:00 hi",
        "every weekday",
        "in 0m stretch",
    ],
)
def test_bad_input_is_answered_with_examples_that_work(args: str) -> None:
    with pytest.raises(ReminderError) as raised:
        remind_parse(args, now=NOW, zone=BERLIN)

    answer = str(raised.value)
    assert "/remind in 10m stretch" in answer
    assert "/remind at 2026-12-24 09:00 call Mum" in answer  # NOW + 20 days
    assert "/remind every weekday 08:00" in answer
    # The examples themselves are read without error.
    for line in answer.splitlines():
        if line.startswith("/remind "):
            assert remind_parse(line.removeprefix("/remind "), now=NOW, zone=BERLIN).text


def test_time_zone_names_are_matched_without_regard_to_case() -> None:
    assert time_zone_parse("europe/berlin") == BERLIN
    assert time_zone_parse("UTC") == ZoneInfo("UTC")
    assert time_zone_parse("Mars/Olympus") is None


def test_a_daily_time_keeps_its_wall_clock_time_across_the_spring_change() -> None:
    daily = Recurrence(days="day", at=time(8, 0))
    before = recurrence_next(daily, BERLIN, after=datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    after = recurrence_next(daily, BERLIN, after=before)

    assert before == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST, the first day
    assert recurrence_next(daily, BERLIN, after=datetime(2026, 3, 27, 12, 0, tzinfo=UTC)) == (
        datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 CET, the day before
    )
    assert after == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_a_time_in_the_spring_gap_fires_an_hour_later_and_a_doubled_one_the_first_time() -> None:
    gap = local_moment(datetime(2026, 3, 29).date(), time(2, 30), BERLIN)
    doubled = local_moment(datetime(2026, 10, 25).date(), time(2, 30), BERLIN)

    assert gap == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert doubled == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET


def test_weekdays_skip_the_weekend() -> None:
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)

    due = recurrence_next(Recurrence("weekday", time(8, 0)), BERLIN, after=friday_evening)

    assert due == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday 08:00 CET


zones = st.sampled_from(
    ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
).map(ZoneInfo)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


@given(
    days=st.sampled_from(sorted(DAY_SETS)),
    at=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    zone=zones,
    after=moments,
)
def test_the_next_occurrence_is_soon_after_on_a_right_day_at_the_right_time(
    days: str, at: time, zone: ZoneInfo, after: datetime
) -> None:
    due = recurrence_next(Recurrence(days, at), zone, after=after)

    assert after < due <= after + timedelta(days=8)
    local = due.astimezone(zone)
    assert local.weekday() in DAY_SETS[days]  # these zones change their clocks at night
    wall = datetime.combine(local.date(), at)
    # Exactly the wall time, unless it fell into a DST gap (then up to an hour later).
    assert timedelta() <= local.replace(tzinfo=None) - wall <= timedelta(hours=1)
    assert not any(
        after < candidate < due
        for candidate in (
            local_moment(due.astimezone(zone).date() - timedelta(days=n), at, zone)
            for n in range(1, 8)
        )
        if candidate.astimezone(zone).weekday() in DAY_SETS[days]
    )


@given(
    amount=st.integers(min_value=1, max_value=999),
    unit=st.sampled_from(["m", "min", "minutes", "h", "hours", "d", "days"]),
    text=st.text(alphabet="abc xyz", min_size=1, max_size=20).filter(lambda t: t.strip()),
)
def test_in_n_units_is_that_long_after_now(amount: int, unit: str, text: str) -> None:
    request = remind_parse(f"in {amount}{unit} {text}", now=NOW, zone=BERLIN)

    step = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}[unit[0]]
    assert request.due_at == NOW + amount * step
    assert request.text == text.strip()
