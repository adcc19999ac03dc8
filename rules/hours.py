"""Opening hours as instants (pure): open now?, next change, the changes in a window.

Weekly ranges and exceptions are local wall-clock times in the shop's time
zone; each is turned into UTC instants day by day with zoneinfo, so a day of
23 or 25 hours (DST) is handled by the same code as any other. A range whose
close is not after its open runs past midnight into the next day.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from schemas.hours import (
    WEEKDAYS,
    DayException,
    NextChange,
    OpeningState,
    ShopHours,
    TimeRange,
    Weekday,
)

__all__ = ["HORIZON_DAYS", "changes", "is_open", "is_time_zone", "next_change", "opening_state",
           "parse_ranges", "parse_weekly"]

# How far ahead (days) to look for the next change; a shop closed for longer has none.
HORIZON_DAYS = 60

# Keys zoneinfo loads that are no place's time: the server's own zone under Debian's name
# `localtime` (it would follow the machine, not the shop), and tzdata's `Factory` (offset
# "-00", local time unknown: a shop in it would read neither open nor closed).
_NOT_PLACES = frozenset({"localtime", "Factory"})


@functools.cache
def _time_zones() -> frozenset[str]:
    # Read once (a walk of the time zone database, ~0.1 s); it does not change while a
    # process runs. Lists IANA keys only: no paths, no `posix/` or `right/` copies.
    return frozenset(available_timezones()) - _NOT_PLACES


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone of a place (`Europe/Paris`, `UTC`), as a shop's
    hours and the deployment's default may name."""
    return name in _time_zones()


def _local_instant(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    if hhmm == "24:00":
        day, hhmm = day + timedelta(days=1), "00:00"
    hour, minute = int(hhmm[:2]), int(hhmm[3:])
    # fold=0: a repeated autumn hour is its first occurrence; a spring-gap time is
    # shifted forward by the gap (02:30 -> 03:30), as PEP 495 reads it.
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def _ranges_for(hours: ShopHours, day: date,
                exceptions: dict[date, DayException]) -> list[TimeRange]:
    exception = exceptions.get(day)
    if exception is not None:
        return list(exception.ranges)
    return list(hours.weekly.get(WEEKDAYS[day.weekday()], []))


def intervals(hours: ShopHours, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Open intervals (UTC, merged) overlapping [start, end)."""
    tz = ZoneInfo(hours.timezone)
    exceptions = {e.date: e for e in hours.exceptions}
    first = start.astimezone(tz).date() - timedelta(days=1)  # yesterday's late ranges
    last = end.astimezone(tz).date()
    raw: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        for rng in _ranges_for(hours, day, exceptions):
            opens = _local_instant(day, rng.open, tz)
            close_day = day if rng.close > rng.open else day + timedelta(days=1)
            closes = _local_instant(close_day, rng.close, tz)
            if closes > opens and closes > start and opens < end:
                raw.append((opens, closes))
        day += timedelta(days=1)
    raw.sort()
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in raw:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def changes(hours: ShopHours, start: datetime, end: datetime) -> Iterator[NextChange]:
    """Every opening and closing in (start, end], in order."""
    for opens, closes in intervals(hours, start, end + timedelta(seconds=1)):
        if start < opens <= end:
            yield NextChange(at=opens, open=True)
        if start < closes <= end:
            yield NextChange(at=closes, open=False)


def is_open(hours: ShopHours, at: datetime) -> bool:
    return any(o <= at < c for o, c in intervals(hours, at, at + timedelta(seconds=1)))


def opening_state(hours: ShopHours | None, at: datetime) -> OpeningState:
    if hours is None or (not hours.weekly and not hours.exceptions):
        return OpeningState(open_now=None, next_change=None)
    return OpeningState(open_now=is_open(hours, at), next_change=next_change(hours, at))


def next_change(hours: ShopHours, at: datetime) -> NextChange | None:
    """The first opening or closing after `at`, within HORIZON_DAYS.

    A week ahead first: shop profiles ask this for every shop, and building 60 days of
    intervals each time is what costs. Changes inside a window are exact whatever lies
    beyond it, so the longer look is only for shops closed for more than a week."""
    for days in (8, HORIZON_DAYS):
        upcoming = next(changes(hours, at, at + timedelta(days=days)), None)
        if upcoming is not None:
            return upcoming
    return None


_DAY_SPEC = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*)\s+"
                       r"(?P<ranges>closed|\d\d:\d\d-\d\d:\d\d(?:,\d\d:\d\d-\d\d:\d\d)*)$")


def parse_ranges(text: str) -> list[TimeRange]:
    if text == "closed":
        return []
    return [TimeRange(open=part[:5], close=part[6:]) for part in text.split(",")]


def parse_weekly(text: str) -> dict[Weekday, list[TimeRange]]:
    """'mon-fri 09:00-12:30,14:00-19:00; sat 09:00-18:00' -> weekly hours (CLI syntax)."""
    weekly: dict[Weekday, list[TimeRange]] = {}
    for clause in filter(None, (c.strip().lower() for c in text.split(";"))):
        match = _DAY_SPEC.match(clause)
        if match is None:
            raise ValueError(f"expected 'mon-fri 09:00-19:00' or 'sun closed', got {clause!r}")
        ranges = parse_ranges(match["ranges"])
        for part in match["days"].split(","):
            first, _, last = part.partition("-")
            if first not in WEEKDAYS or (last and last not in WEEKDAYS):
                raise ValueError(f"unknown day in {part!r}; days are {', '.join(WEEKDAYS)}")
            i, j = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
            for k in range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)]:
                weekly[WEEKDAYS[k]] = ranges
    return weekly
