"""Opening hours: weekly patterns, exceptions, midnight and DST (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.hours import HORIZON_DAYS, changes, is_open, next_change, opening_state, parse_weekly
from schemas.hours import WEEKDAYS, DayException, ShopHours, TimeRange

BAKERY = ShopHours(weekly=parse_weekly("tue-sat 07:00-13:00,15:30-19:30; sun 07:00-12:30"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_pattern_in_local_time() -> None:
    # Tuesday 2026-06-16, Paris is UTC+2: 07:00 local = 05:00 UTC.
    assert not is_open(BAKERY, utc(2026, 6, 16, 4, 59))
    assert is_open(BAKERY, utc(2026, 6, 16, 5, 0))
    assert not is_open(BAKERY, utc(2026, 6, 16, 12, 0))  # lunch, 14:00 local
    assert is_open(BAKERY, utc(2026, 6, 16, 13, 30))
    assert not is_open(BAKERY, utc(2026, 6, 15, 10, 0))  # Monday: closed
    state = opening_state(BAKERY, utc(2026, 6, 16, 10, 0))
    assert state.open_now is True
    assert state.next_change is not None
    assert (state.next_change.at, state.next_change.open) == (utc(2026, 6, 16, 11, 0), False)


def test_no_hours_means_unknown() -> None:
    assert opening_state(None, utc(2026, 6, 16)).open_now is None
    assert opening_state(ShopHours(), utc(2026, 6, 16)).next_change is None


def test_across_midnight() -> None:
    bar = ShopHours(weekly=parse_weekly("fri-sat 18:00-02:00"))
    # Saturday 2026-06-20 01:30 local = Friday 23:30 UTC: still Friday's evening.
    assert is_open(bar, utc(2026, 6, 19, 23, 30))
    assert not is_open(bar, utc(2026, 6, 20, 0, 0))  # 02:00 local: closed
    assert [(c.at, c.open) for c in changes(bar, utc(2026, 6, 19, 0), utc(2026, 6, 21, 12))] == [
        (utc(2026, 6, 19, 16), True), (utc(2026, 6, 20, 0), False),
        (utc(2026, 6, 20, 16), True), (utc(2026, 6, 21, 0), False)]


def test_dst_spring_forward_and_fall_back() -> None:
    daily = ShopHours(weekly=parse_weekly("mon-sun 09:00-19:00"))
    # Saturday before the change (UTC+1), Sunday 2026-03-29 after it (UTC+2).
    assert [c.at for c in changes(daily, utc(2026, 3, 28), utc(2026, 3, 29, 23))] == [
        utc(2026, 3, 28, 8), utc(2026, 3, 28, 18), utc(2026, 3, 29, 7), utc(2026, 3, 29, 17)]
    # Autumn: Sunday 2026-10-25 back to UTC+1.
    assert [c.at for c in changes(daily, utc(2026, 10, 24), utc(2026, 10, 25, 23))] == [
        utc(2026, 10, 24, 7), utc(2026, 10, 24, 17), utc(2026, 10, 25, 8), utc(2026, 10, 25, 18)]
    # A night shop open through the change is open for 23 hours of wall time.
    night = ShopHours(weekly=parse_weekly("sat 22:00-06:00"))
    opened = list(changes(night, utc(2026, 3, 28), utc(2026, 3, 30)))
    assert opened[1].at - opened[0].at == utc(2026, 3, 29, 4) - utc(2026, 3, 28, 21)


def test_exceptions_replace_the_weekly_day() -> None:
    hours = msgspec.structs.replace(BAKERY, exceptions=[
        DayException(date=date(2026, 12, 25), note="Noël"),
        DayException(date=date(2026, 12, 24), ranges=[TimeRange("07:00", "21:00")]),
    ])
    assert not is_open(hours, utc(2026, 12, 25, 9))  # a Friday, closed for Christmas
    assert is_open(hours, utc(2026, 12, 24, 18))  # late opening on Christmas Eve
    assert not is_open(BAKERY, utc(2026, 12, 24, 18, 45))


def test_weekly_syntax_errors() -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_weekly("mondays 9-5")
    with pytest.raises(ValueError, match="unknown day"):
        parse_weekly("mon-xyz 09:00-10:00")
    assert parse_weekly("sat-mon 10:00-11:00").keys() == {"sat", "sun", "mon"}
    assert parse_weekly("sun closed") == {"sun": []}


_hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))


@settings(max_examples=150, deadline=None)
@given(weekly=st.dictionaries(st.sampled_from(WEEKDAYS),
                              st.lists(st.builds(lambda a, b: TimeRange(open=a, close=b),
                                                 _hhmm, _hhmm), max_size=2)),
       closed_for=st.integers(0, 40), at_hours=st.integers(0, 24 * 14))
def test_next_change_is_the_first_change_of_the_whole_horizon(
        weekly: dict[str, list[TimeRange]], closed_for: int, at_hours: int) -> None:
    """Looking a week ahead first gives the same answer as the 60-day look, including
    for shops closed for weeks (exceptions) and shops that never close."""
    start = date(2026, 3, 20)
    closures = [DayException(date=start + timedelta(days=d), ranges=[])
                for d in range(closed_for)]
    hours = ShopHours(timezone="Europe/Paris", weekly=weekly, exceptions=closures)
    at = utc(2026, 3, 20) + timedelta(hours=at_hours)
    whole = next(changes(hours, at, at + timedelta(days=HORIZON_DAYS)), None)
    assert next_change(hours, at) == whole
