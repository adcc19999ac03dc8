"""Opening hours of a shop: a weekly pattern and dated exceptions, in the shop's time zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

__all__ = [
    "WEEKDAYS",
    "DayException",
    "NextChange",
    "OpeningOverride",
    "OpeningState",
    "ShopHours",
    "TimeRange",
    "Weekday",
]

# "HH:MM", 00:00..24:00; a range whose close is not after its open ends the next day.
LocalTime = Annotated[str, msgspec.Meta(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)(?!\n)$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    open: LocalTime
    close: LocalTime


Ranges = Annotated[list[TimeRange], msgspec.Meta(max_length=6)]


class DayException(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A date whose hours replace the weekly ones: closed when `ranges` is empty."""

    date: date
    ranges: Ranges = []
    note: Annotated[str, msgspec.Meta(max_length=80)] = ""


class ShopHours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "Europe/Paris"
    weekly: dict[Weekday, Ranges] = {}
    exceptions: Annotated[list[DayException], msgspec.Meta(max_length=366)] = []


class NextChange(msgspec.Struct, frozen=True, omit_defaults=True):
    at: datetime
    open: bool
    # The shop gave no time for it: its own opening post ("open late", "closed now") with
    # no `until` lapses then, at the end of its day. Pages say "open late", not "closes at
    # 00:00"; `at` still says when to look again. Sent only when true.
    estimated: bool = False


class OpeningState(msgspec.Struct, frozen=True):
    open_now: bool | None
    next_change: NextChange | None


class OpeningOverride(msgspec.Struct, frozen=True, kw_only=True):
    """A shopkeeper's own opening_change post, as it bears on the shop's open/closed state:
    `open` from `starts_ts` (when posted) to `ends_ts` (its until, else its expiry; the
    moment it was withdrawn, if it was). Stored per shop (storage.openings) by the live
    index's scripts, so it cannot disagree with the post; times are POSIX seconds because
    the withdraw script, in Lua, moves `ends_ts`."""

    post_id: str
    open: bool
    status: str
    starts_ts: float
    ends_ts: float
    # The post said until when (`until`); if not, `ends_ts` is only its expiry.
    until_said: bool = True
