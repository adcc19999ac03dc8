"""Open or closed, all things considered (pure): weekly hours, overridden by the shop's word.

A shopkeeper's own `opening_change` post ("open late until 00:57", "exceptionally closed",
and also a plain "open now" / "closed now") is the truth about the shop from when it is
posted until its `until` (else until the post expires), or until it is withdrawn: weekly
hours say what is usual, the shopkeeper says what is so. Several live at once: the one
posted last governs. One that will say nothing again once a later one is published is
withdrawn then (`superseded`): "open until 22:00" and, later, "closed now" for the rest
of the day would otherwise both be on the street, as would "closed now" and a later "open
late until 23:00" in a shop that closes at 19:00 (past 23:00 the first says what the
hours say). One that still has something to say stays ("open until 22:00", then
"closed, back at 14:00"): it governs again after.
Automatic posts (the scheduler's, made from the hours) are no override: they repeat the
hours.

The effective state is a step function of time; its changes are the weekly changes not
masked by an override, the starts of overrides that differ from the hours, and their ends.
The scheduler announces all of them but the starts (the shopkeeper's post says it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeGuard
from zoneinfo import ZoneInfo

import msgspec

from rules.hours import changes, is_open, next_change
from schemas.hours import NextChange, OpeningOverride, OpeningState, ShopHours
from schemas.posts import OpeningChange, OpeningStatus, Post

__all__ = ["OPEN_STATUSES", "automatic_changes", "effective_state", "governing",
           "offer_closing", "override_of", "revisit_ts", "state_at", "superseded"]

OPEN_STATUSES: dict[OpeningStatus, bool] = {
    "open_now": True, "open_late": True, "closed_now": False, "closed_exceptionally": False}


def override_of(post: Post) -> OpeningOverride | None:
    """What a published post says about the shop's opening, if it is a shopkeeper's own."""
    if not isinstance(post, OpeningChange) or post.auto:
        return None
    return OpeningOverride(post_id=post.id, open=OPEN_STATUSES[post.status], status=post.status,
                           starts_ts=post.posted_at.timestamp(),
                           ends_ts=post.expires_at.timestamp(),
                           until_said=post.until is not None)


def _posted_order(override: OpeningOverride) -> tuple[float, str]:
    return override.starts_ts, override.post_id


def governing(overrides: Iterable[OpeningOverride], at_ts: float) -> OpeningOverride | None:
    """The override in force at `at_ts`: among those holding then, the last posted."""
    holding = [o for o in overrides if o.starts_ts <= at_ts < o.ends_ts]
    return max(holding, key=_posted_order, default=None)


def superseded(newer: OpeningOverride, overrides: Sequence[OpeningOverride],
               hours: ShopHours | None) -> list[OpeningOverride]:
    """The shop's earlier words (in `overrides`, beside `newer`) that will say nothing
    again once `newer` is posted: withdrawing them changes the shop's state at no time
    from `newer` on. Judged oldest first, each against those left, so that two that
    repeat each other do not both go. Masked for all that is left of it ("open until
    22:00", then "closed" for the rest of the day) or, past the end of `newer`, saying
    only what the hours or the words left say anyway ("closed now", then "open late until
    23:00" in a shop that closes at 19:00)."""
    left = list(overrides)
    gone: list[OpeningOverride] = []
    for older in sorted(overrides, key=_posted_order):
        if _posted_order(older) >= _posted_order(newer):
            break
        rest = [o for o in left if o is not older]
        if _same_states(hours, left, rest, newer.starts_ts, older.ends_ts):
            left = rest
            gone.append(older)
    return gone


def _same_states(hours: ShopHours | None, a: Sequence[OpeningOverride],
                 b: Sequence[OpeningOverride], start_ts: float, end_ts: float) -> bool:
    """Whether `a` and `b` give the same state at every instant of [start_ts, end_ts):
    both are step functions, so at the instants either may change."""
    if end_ts <= start_ts:
        return True
    instants = {start_ts} | {t for o in a for t in (o.starts_ts, o.ends_ts)
                             if start_ts < t < end_ts}
    if _has_hours(hours):
        instants |= {c.at.timestamp() for c in changes(hours, _from_ts(start_ts),
                                                        _from_ts(end_ts))}
    return all(_state_under(hours, governing(a, t), _from_ts(t))
               == _state_under(hours, governing(b, t), _from_ts(t))
               for t in instants if t < end_ts)


def _has_hours(hours: ShopHours | None) -> TypeGuard[ShopHours]:
    return hours is not None and bool(hours.weekly or hours.exceptions)


def state_at(hours: ShopHours | None, overrides: Sequence[OpeningOverride],
             at: datetime) -> bool | None:
    """Open at `at`? None when neither hours nor an override say."""
    return _state_under(hours, governing(overrides, at.timestamp()), at)


def _state_under(hours: ShopHours | None, override: OpeningOverride | None,
                 at: datetime) -> bool | None:
    if override is not None:
        return override.open
    if not _has_hours(hours):
        return None
    return is_open(hours, at)


def revisit_ts(overrides: Iterable[OpeningOverride], at_ts: float) -> float | None:
    """The next instant after `at_ts` an override starts or ends (the state may change)."""
    return min((b for o in overrides for b in (o.starts_ts, o.ends_ts) if b > at_ts),
               default=None)


def _from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _next_flip(hours: ShopHours | None, overrides: Sequence[OpeningOverride], at: datetime,
               current: bool | None, limit: datetime | None = None) -> NextChange | None:
    """The first instant after `at` the effective state differs from `current`, looking no
    further than `limit` (None: the hours' horizon). None also when it becomes unknown (an
    override ends on a shop without hours): a NextChange says open or closed."""
    t = at
    while True:
        bound = revisit_ts(overrides, t.timestamp())
        segment_end = _from_ts(bound) if bound is not None else None
        override = governing(overrides, t.timestamp())
        value = override.open if override is not None else state_at(hours, (), t)
        if t > at and value != current:
            return None if value is None else NextChange(at=t, open=value)
        if override is None and _has_hours(hours):
            # No override until segment_end: the hours decide, and they agree with
            # `current` at t, so their next change is a flip.
            ends = [e for e in (segment_end, limit) if e is not None]
            upcoming = next(changes(hours, t, min(ends)), None) if ends else next_change(hours, t)
            if upcoming is not None and (segment_end is None or upcoming.at < segment_end):
                return upcoming
        if segment_end is None or (limit is not None and segment_end > limit):
            return None
        t = segment_end


def effective_state(hours: ShopHours | None, overrides: Sequence[OpeningOverride],
                    at: datetime) -> OpeningState:
    """open_now and next_change of a shop at `at`, its own posts taken into account."""
    override = governing(overrides, at.timestamp())
    open_now = _state_under(hours, override, at)
    if open_now is None:
        return OpeningState(open_now=None, next_change=None)
    change = _next_flip(hours, overrides, at, open_now)
    if change is not None and override is not None and not override.until_said \
            and abs(change.at.timestamp() - override.ends_ts) < 0.001:
        # "Open late" with no time given: it lapses at the end of the day, which is not
        # when the shop closes.
        change = msgspec.structs.replace(change, estimated=True)
    return OpeningState(open_now=open_now, next_change=change)


def offer_closing(hours: ShopHours | None, overrides: Sequence[OpeningOverride], at: datetime,
                  within: timedelta = timedelta(days=1)) -> datetime | None:
    """What "until closing" means to a shopkeeper posting an offer at `at`: when the shop
    next closes if it is open (its own "open late until 00:57" included), or, closed now
    (lunch), the end of its next opening if that starts the same local day. None when
    nothing says (no hours), when it does not open again today, or when that closing is
    further than `within` (an offer's longest life)."""
    state = effective_state(hours, overrides, at)
    change = state.next_change
    if change is None or change.estimated:  # "open late" with no time: no closing known
        return None
    if not state.open_now:
        if hours is None:
            return None  # an override closed a shop without hours: no opening to go by
        tz = ZoneInfo(hours.timezone)
        if change.at.astimezone(tz).date() != at.astimezone(tz).date():
            return None
        change = _next_flip(hours, overrides, change.at, True)
        if change is None:
            return None
    return change.at if change.at - at <= within else None


def automatic_changes(hours: ShopHours | None, overrides: Sequence[OpeningOverride],
                      start: datetime, end: datetime) -> list[NextChange]:
    """The changes in (start, end] the scheduler posts about: every change of the effective
    state but those at the start of an override (the shopkeeper's post says it). So nothing
    while an override masks the hours, and the hours again when it ends or is withdrawn."""
    own_starts = {o.starts_ts for o in overrides}
    out: list[NextChange] = []
    t, current = start, state_at(hours, overrides, start)
    while current is not None:
        flip = _next_flip(hours, overrides, t, current, limit=end)
        if flip is None or flip.at > end:
            break
        if flip.at.timestamp() not in own_starts:
            out.append(flip)
        t, current = flip.at, flip.open
    return out
