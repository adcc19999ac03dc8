"""Open or closed with the shop's own posts (rules.opening, pure; issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.hours import changes, parse_weekly
from rules.opening import (
    automatic_changes,
    effective_state,
    governing,
    offer_closing,
    override_of,
    state_at,
    superseded,
)
from schemas.hours import NextChange, OpeningOverride, ShopHours
from schemas.posts import OpeningChange, ShopSummary

# Tuesday 2026-11-24, Paris is UTC+1. Open 07:00-19:00 local (06:00-18:00 UTC), Tue-Sat.
HOURS = ShopHours(weekly=parse_weekly("tue-sat 07:00-19:00"))
BAKERY = ShopHours(weekly=parse_weekly("tue-sat 07:00-13:00,15:30-19:30; sun 07:00-12:30"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def override(starts: datetime, ends: datetime, open_: bool, post_id: str = "p1") -> OpeningOverride:
    return OpeningOverride(post_id=post_id, open=open_, status="open_late" if open_ else
                           "closed_exceptionally", starts_ts=starts.timestamp(),
                           ends_ts=ends.timestamp())


def test_open_late_keeps_the_shop_open_until_its_until() -> None:
    # "Ouvert tard jusqu'à 00:57", posted at 18:30 local.
    late = override(utc(2026, 11, 24, 17, 30), utc(2026, 11, 24, 23, 57), True)
    state = effective_state(HOURS, [late], utc(2026, 11, 24, 20, 0))  # 21:00 local
    assert state.open_now is True
    assert state.next_change == NextChange(at=utc(2026, 11, 24, 23, 57), open=False)
    # Before 19:00 the shop is open either way: the next change is the end of the post.
    assert effective_state(HOURS, [late], utc(2026, 11, 24, 17, 45)).next_change == \
        NextChange(at=utc(2026, 11, 24, 23, 57), open=False)
    after = effective_state(HOURS, [late], utc(2026, 11, 24, 23, 57))
    assert after.open_now is False
    assert after.next_change == NextChange(at=utc(2026, 11, 25, 6, 0), open=True)


def withdrawn(newer: OpeningOverride, *overrides: OpeningOverride,
              hours: ShopHours | None = HOURS) -> set[str]:
    return {o.post_id for o in superseded(newer, [*overrides, newer], hours)}


def test_a_later_word_that_outlasts_an_earlier_one_supersedes_it() -> None:
    """"Open until 22:00", then "closed now" for the rest of the day: the first will never
    govern again (a cold user saw both cards on the street). "Closed, back at 14:00" does
    not end it: it governs again from 14:00."""
    open_until_22 = override(utc(2026, 11, 24, 7, 0), utc(2026, 11, 24, 21, 0), True, "a")
    closed_today = override(utc(2026, 11, 24, 8, 0), utc(2026, 11, 24, 23, 0), False, "b")
    back_at_14 = override(utc(2026, 11, 24, 8, 0), utc(2026, 11, 24, 13, 0), False, "c")
    assert withdrawn(closed_today, open_until_22) == {"a"}
    assert withdrawn(open_until_22, closed_today) == set()  # posted before it: never
    assert withdrawn(back_at_14, open_until_22) == set()
    assert governing([open_until_22, back_at_14], utc(2026, 11, 24, 14, 0).timestamp()) \
        == open_until_22
    same_end = override(utc(2026, 11, 24, 9, 0), utc(2026, 11, 24, 21, 0), False, "d")
    assert withdrawn(same_end, open_until_22) == {"a"}
    assert superseded(open_until_22, [open_until_22], HOURS) == []  # an edit of itself
    # Posted in the same second: the order governing() uses, the post id, decides.
    twin = override(utc(2026, 11, 24, 7, 0), utc(2026, 11, 24, 21, 0), False, "z")
    assert withdrawn(twin, open_until_22) == {"a"}
    assert withdrawn(open_until_22, twin) == set()


def test_a_later_word_supersedes_one_that_then_says_only_what_the_hours_say() -> None:
    """"Closed now" (no time: until the end of the day), then "open late until 23:00":
    past 23:00 the first says "closed", as the hours (07:00-19:00) do, so it is withdrawn
    (a cold user saw both cards live). Where it says more than the hours, it stays: a shop
    with no hours, or "open now" on a day the hours say closed (Monday), then "closed,
    back at 14:00"."""
    closed_now = OpeningOverride(post_id="a", open=False, status="closed_now",
                                 starts_ts=utc(2026, 11, 24, 14, 0).timestamp(),
                                 ends_ts=utc(2026, 11, 24, 23, 0).timestamp(),
                                 until_said=False)
    open_late = override(utc(2026, 11, 24, 15, 0), utc(2026, 11, 24, 22, 0), True, "b")
    assert withdrawn(open_late, closed_now) == {"a"}
    assert withdrawn(open_late, closed_now, hours=None) == set()  # past 23:00, only it says
    # Open until 22:00 local: past 23:00 the hours say closed, as the first does.
    monday_open = OpeningOverride(post_id="c", open=True, status="open_now",
                                  starts_ts=utc(2026, 11, 23, 8, 0).timestamp(),
                                  ends_ts=utc(2026, 11, 23, 23, 0).timestamp(),
                                  until_said=False)
    back_at_14 = override(utc(2026, 11, 23, 10, 0), utc(2026, 11, 23, 13, 0), False, "d")
    assert withdrawn(back_at_14, monday_open) == set()
    # Two that repeat each other: one goes, not both (then the hours would say "open").
    first = override(utc(2026, 11, 24, 9, 0), utc(2026, 11, 24, 22, 30), False, "e")
    second = override(utc(2026, 11, 24, 10, 0), utc(2026, 11, 24, 22, 30), False, "f")
    brief = override(utc(2026, 11, 24, 11, 0), utc(2026, 11, 24, 12, 0), True, "g")
    assert len(withdrawn(brief, first, second, hours=ShopHours(weekly=parse_weekly(
        "tue 07:00-23:59")))) == 1


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 30), st.booleans()),
                min_size=2, max_size=6),
       st.integers(0, 80), st.booleans())
def test_withdrawing_what_is_superseded_changes_no_state(
        spans: list[tuple[int, int, bool]], at_h: int, with_hours: bool) -> None:
    """What a later post supersedes says nothing at any time from the later post on: the
    state with it and without it is the same."""
    base = utc(2026, 11, 24, 0, 0)
    hours = HOURS if with_hours else None
    overrides = [override(base + timedelta(hours=s), base + timedelta(hours=s + n), o, f"p{i}")
                 for i, (s, n, o) in enumerate(spans)]
    newest = max(overrides, key=lambda o: (o.starts_ts, o.post_id))
    gone = superseded(newest, overrides, hours)
    kept = [o for o in overrides if o not in gone]
    at = base + timedelta(hours=at_h)
    if at.timestamp() >= newest.starts_ts:
        assert state_at(hours, kept, at) == state_at(hours, overrides, at)
        assert effective_state(hours, kept, at) == effective_state(hours, overrides, at)


def test_open_late_without_a_time_has_no_closing_time_to_show() -> None:
    """"Open late" with no `until` lapses at the end of the shop's day: that is when to
    look again, not when it closes (pages said "closes at 00:00"; a cold user's find). An
    offer "until closing" has no closing to go by either."""
    posted = utc(2026, 11, 24, 17, 30)  # 18:30 local
    lapses = utc(2026, 11, 24, 23, 0)  # the end of the local day
    late = OpeningOverride(post_id="p1", open=True, status="open_late",
                           starts_ts=posted.timestamp(), ends_ts=lapses.timestamp(),
                           until_said=False)
    state = effective_state(HOURS, [late], utc(2026, 11, 24, 20, 0))
    assert state.open_now is True
    assert state.next_change == NextChange(at=lapses, open=False, estimated=True)
    assert offer_closing(HOURS, [late], utc(2026, 11, 24, 20, 0)) is None
    # Said until when, it is a closing time, as before.
    said = OpeningOverride(post_id="p1", open=True, status="open_late",
                           starts_ts=posted.timestamp(), ends_ts=lapses.timestamp())
    assert effective_state(HOURS, [said], utc(2026, 11, 24, 20, 0)).next_change == \
        NextChange(at=lapses, open=False)
    assert offer_closing(HOURS, [said], utc(2026, 11, 24, 20, 0)) == lapses
    # The post as published: no `until`, so not said.
    post = OpeningChange(id="p_0000000000000001", title="Ouvert tard ce soir",
                         posted_at=posted, expires_at=lapses, status="open_late",
                         shop=ShopSummary(id="s", name="S", category="bakery", lat=0, lon=0))
    made = override_of(post)
    assert made is not None and made.until_said is False
    # A closure without a time during the day: the hours bring the shop back the next
    # morning, a real change, not the post's lapse.
    closed = OpeningOverride(post_id="p2", open=False, status="closed_now",
                             starts_ts=utc(2026, 11, 24, 9, 0).timestamp(),
                             ends_ts=lapses.timestamp(), until_said=False)
    assert effective_state(HOURS, [closed], utc(2026, 11, 24, 10, 0)).next_change == \
        NextChange(at=utc(2026, 11, 25, 6, 0), open=True)


def test_exceptional_closure_during_opening_hours() -> None:
    closed = override(utc(2026, 11, 24, 9, 0), utc(2026, 11, 24, 14, 0), False)
    state = effective_state(HOURS, [closed], utc(2026, 11, 24, 10, 0))
    assert state.open_now is False
    assert state.next_change == NextChange(at=utc(2026, 11, 24, 14, 0), open=True)
    # Until past closing time: the next change is the next morning.
    long = override(utc(2026, 11, 24, 9, 0), utc(2026, 11, 24, 20, 0), False)
    assert effective_state(HOURS, [long], utc(2026, 11, 24, 10, 0)).next_change == \
        NextChange(at=utc(2026, 11, 25, 6, 0), open=True)


def test_the_last_posted_governs_and_the_earlier_one_comes_back_after_it() -> None:
    closed = override(utc(2026, 11, 24, 9, 0), utc(2026, 11, 24, 16, 0), False, "a")
    opened = override(utc(2026, 11, 24, 10, 0), utc(2026, 11, 24, 11, 0), True, "b")
    assert governing([closed, opened], utc(2026, 11, 24, 10, 30).timestamp()) == opened
    state = effective_state(HOURS, [closed, opened], utc(2026, 11, 24, 10, 30))
    assert state == effective_state(HOURS, [opened, closed], utc(2026, 11, 24, 10, 30))
    assert state.open_now is True
    assert state.next_change == NextChange(at=utc(2026, 11, 24, 11, 0), open=False)
    assert state_at(HOURS, [closed, opened], utc(2026, 11, 24, 12, 0)) is False


def test_a_shop_without_hours_is_open_only_while_its_post_says_so() -> None:
    late = override(utc(2026, 11, 24, 17, 30), utc(2026, 11, 24, 23, 57), True)
    state = effective_state(None, [late], utc(2026, 11, 24, 20, 0))
    assert (state.open_now, state.next_change) == (True, None)  # then: unknown
    assert effective_state(None, [late], utc(2026, 11, 25)).open_now is None


def test_only_a_shopkeepers_opening_post_is_an_override() -> None:
    shop = ShopSummary(id="s", name="S", category="c", lat=44.8, lon=-0.5)
    post = OpeningChange(id="p_x", title="Ouvert tard", posted_at=utc(2026, 11, 24, 17),
                         expires_at=utc(2026, 11, 24, 23), shop=shop, status="open_late")
    found = override_of(post)
    assert found is not None and found.open and found.ends_ts == utc(2026, 11, 24, 23).timestamp()
    auto = OpeningChange(id="p_y", title="Fermé", posted_at=utc(2026, 11, 24, 18),
                         expires_at=utc(2026, 11, 25, 6), shop=shop, status="closed_now",
                         auto=True)
    assert override_of(auto) is None


def test_the_scheduler_announces_the_hours_only_where_no_post_of_the_shop_speaks() -> None:
    late = override(utc(2026, 11, 24, 17, 30), utc(2026, 11, 24, 23, 57), True)
    day = (utc(2026, 11, 24, 5), utc(2026, 11, 25, 12))
    # No "closed" at 19:00 while open late; closed at the end of the post; open tomorrow.
    assert automatic_changes(HOURS, [late], *day) == [
        NextChange(at=utc(2026, 11, 24, 6), open=True),
        NextChange(at=utc(2026, 11, 24, 23, 57), open=False),
        NextChange(at=utc(2026, 11, 25, 6), open=True)]
    # The start of a closure is the shopkeeper's to say; its end (here withdrawn at
    # 11:00, i.e. ended then) brings the hours back.
    closed = override(utc(2026, 11, 24, 9), utc(2026, 11, 24, 10), False)
    assert automatic_changes(HOURS, [closed], utc(2026, 11, 24, 8), utc(2026, 11, 24, 12)) == [
        NextChange(at=utc(2026, 11, 24, 10), open=True)]
    # An override that agrees with the hours changes nothing.
    agreeing = override(utc(2026, 11, 24, 7), utc(2026, 11, 24, 18), True)
    assert automatic_changes(HOURS, [agreeing], *day) == list(changes(HOURS, *day))


BASE = utc(2026, 11, 23)
_minutes = st.integers(min_value=0, max_value=4 * 24 * 60)


@st.composite
def _overrides(draw: st.DrawFn) -> list[OpeningOverride]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=4))):
        start = draw(_minutes)
        length = draw(st.integers(min_value=1, max_value=2 * 24 * 60))
        out.append(override(BASE + timedelta(minutes=start),
                            BASE + timedelta(minutes=start + length), draw(st.booleans()),
                            f"p{i}"))
    return out


@settings(max_examples=150, deadline=None)
@given(overrides=_overrides(), at=_minutes, with_hours=st.booleans())
def test_next_change_is_the_first_instant_the_state_differs(
        overrides: list[OpeningOverride], at: int, with_hours: bool) -> None:
    hours = HOURS if with_hours else None
    moment = BASE + timedelta(minutes=at)
    state = effective_state(hours, overrides, moment)
    assert state.open_now == state_at(hours, overrides, moment)
    # Every instant the state may change at, from the hours or an override, up to 8 days.
    end = moment + timedelta(days=8)
    weekly = {c.at for c in changes(HOURS, moment, end)} if hours else set()
    candidates = sorted(weekly | {datetime.fromtimestamp(b, UTC) for o in overrides
                                  for b in (o.starts_ts, o.ends_ts)
                                  if moment.timestamp() < b <= end.timestamp()})
    first = next((c for c in candidates if state_at(hours, overrides, c) != state.open_now),
                 None)
    if state.open_now is None or first is None or state_at(hours, overrides, first) is None:
        assert state.next_change is None  # unknown then, or no change at all
    else:
        assert state.next_change == NextChange(at=first, open=not state.open_now)


def test_until_closing_for_an_offer() -> None:
    """The console's "until closing": this opening's end; at lunch, the afternoon's; never
    a closing of another day, nor a made-up time (it used to be now + 2 h)."""
    # Tuesday 2026-06-16 in Paris (UTC+2): 10:00 open -> 13:00 local.
    assert offer_closing(BAKERY, (), utc(2026, 6, 16, 8, 0)) == utc(2026, 6, 16, 11, 0)
    # 14:00 local, closed for lunch: the afternoon closes at 19:30.
    assert offer_closing(BAKERY, (), utc(2026, 6, 16, 12, 0)) == utc(2026, 6, 16, 17, 30)
    # 20:00 local: closed for the day (it opens tomorrow).
    assert offer_closing(BAKERY, (), utc(2026, 6, 16, 18, 0)) is None
    # Monday: closed all day; no hours at all: nothing to go by.
    assert offer_closing(BAKERY, (), utc(2026, 6, 15, 10, 0)) is None
    assert offer_closing(None, (), utc(2026, 6, 16, 10, 0)) is None
    assert offer_closing(ShopHours(), (), utc(2026, 6, 16, 10, 0)) is None
    # Open past midnight: its closing is tomorrow's 02:00, and still "closing".
    bar = ShopHours(weekly=parse_weekly("fri-sat 18:00-02:00"))
    assert offer_closing(bar, (), utc(2026, 6, 19, 21, 0)) == utc(2026, 6, 20, 0, 0)
    # Open day and night: no closing within an offer's day.
    always = ShopHours(weekly=parse_weekly("mon-sun 00:00-24:00"))
    assert offer_closing(always, (), utc(2026, 6, 16, 10, 0)) is None
    # The shop's own word counts: "open late until 00:57" posted at 18:30 local (16:30 UTC
    # in June) makes that the closing; "exceptionally closed" for the day, none.
    late = override(utc(2026, 6, 16, 16, 30), utc(2026, 6, 16, 22, 57), True)
    assert offer_closing(BAKERY, [late], utc(2026, 6, 16, 17, 0)) == utc(2026, 6, 16, 22, 57)
    shut = override(utc(2026, 6, 16, 7, 0), utc(2026, 6, 16, 21, 59), False)
    assert offer_closing(BAKERY, [shut], utc(2026, 6, 16, 8, 0)) is None
