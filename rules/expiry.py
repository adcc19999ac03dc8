"""When a post leaves the street, by kind (pure).

- flash_offer: at its `ends_at` (at most 24 h ahead, checked at the edge).
- opening_change: at its `until` when given, else at the end of the shop's local day.
- new_arrival: at the end of the shop's local day, but never less than
  MIN_LIFETIME after posting (a late-evening arrival is still news tomorrow morning).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.posts import FlashOfferIn, NewArrivalIn, OpeningChangeIn, PostIn

__all__ = ["end_of_local_day", "expires_at"]

MIN_LIFETIME = timedelta(hours=3)


def end_of_local_day(moment: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after `moment` of the next day in `tz`, in `moment`'s zone. A
    midnight skipped by a change of offset is read with the offset before the change
    (fold=0): the instant the change, and the day, start."""
    local = moment.astimezone(tz)
    next_midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
    return next_midnight.astimezone(moment.tzinfo)


def expires_at(post: PostIn, posted_at: datetime, tz: ZoneInfo) -> datetime:
    match post:
        case FlashOfferIn(ends_at=ends_at):
            return ends_at
        case OpeningChangeIn(until=until) if until is not None:
            return until
        case OpeningChangeIn():
            return end_of_local_day(posted_at, tz)
        case NewArrivalIn():
            return max(end_of_local_day(posted_at, tz), posted_at + MIN_LIFETIME)
    raise TypeError(f"unknown post kind: {type(post).__name__}")
