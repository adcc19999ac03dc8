"""Raw post + shop record -> public post, or the reason it is dropped (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict
from zoneinfo import ZoneInfo

import msgspec

from rules.expiry import expires_at
from rules.moderation import Policy, check_post
from rules.opening import override_of
from rules.producers import any_local, producer_out
from rules.shops import summary_of
from schemas.holds import HoldOffer, HoldState
from schemas.hours import OpeningOverride
from schemas.posts import (
    FlashOffer,
    FlashOfferIn,
    NewArrival,
    NewArrivalIn,
    OpeningChange,
    OpeningChangeIn,
    Post,
    RawPost,
    ShopSummary,
)
from schemas.producers import ProducerOut
from schemas.shops import ShopRecord

__all__ = ["Dropped", "Enriched", "enrich", "hold_offered"]

_encode = msgspec.json.Encoder().encode


class _Common(TypedDict):
    """The fields every kind of public post has (schemas.posts._Post)."""

    id: str
    title: str
    text: str
    posted_at: datetime
    expires_at: datetime
    shop: ShopSummary
    updated_at: datetime | None
    auto: bool
    producers: list[ProducerOut]


@dataclass(frozen=True, slots=True)
class Enriched:
    post: Post
    kind: str
    json: bytes
    lat: float
    lon: float
    expires_ts: float
    # A shopkeeper's opening_change post overrides the shop's hours while it lasts.
    opening: OpeningOverride | None = None
    # It names a producer within STREETFEED_LOCAL_KM of the shop: what `local=1` keeps.
    local: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str


def hold_offered(raw: RawPost, shop: ShopRecord) -> HoldOffer | None:
    """What the post offers to hold as it is published: nothing when the shop turned
    holds off."""
    offer = raw.body.hold if isinstance(raw.body, NewArrivalIn | FlashOfferIn) else None
    return offer if shop.holds else None


def _hold_state(offer: HoldOffer | None, left: int | None) -> HoldState | None:
    if offer is None or left is None:
        return None
    return HoldState(left=left, minutes=offer.minutes)


def enrich(raw: RawPost, shop: ShopRecord | None, *, now: datetime, tz: ZoneInfo,
           policy: Policy, local_km: float, hold_left: int | None = None) -> Enriched | Dropped:
    """`hold_left`: units of the post still to hold (storage.holds), None when it offers
    none now (the body asks for none, or the shop turned holds off)."""
    if shop is None or shop.disabled:
        return Dropped("unknown_shop")
    accepted_at = raw.accepted_at.astimezone(UTC)
    posted_at = (raw.posted_at or raw.accepted_at).astimezone(UTC)
    # Moderation is checked again (policy may have tightened since the API took it),
    # judged at acceptance time so that a slow queue does not reject valid offers.
    rejection = check_post(raw.body, accepted_at, policy)
    if rejection is not None:
        return Dropped(rejection.code)
    # Default lifetimes count from the first posting: an edit does not prolong a post.
    expires = expires_at(raw.body, posted_at, tz).astimezone(UTC)
    if expires <= now:
        return Dropped("expired")
    # Distances from the shop as it is now (an operator may have moved it since the post
    # was made: a republish measures again).
    producers = [producer_out(p, shop.lat, shop.lon) for p in raw.producers]
    common: _Common = {
        "id": raw.id, "title": raw.body.title.strip(), "text": raw.body.text.strip(),
        "posted_at": posted_at, "expires_at": expires, "shop": summary_of(shop, tz.key),
        "updated_at": accepted_at if raw.edit else None, "auto": raw.auto,
        "producers": producers}
    post: Post
    match raw.body:
        case NewArrivalIn(price=price, tags=tags, hold=offer):
            post = NewArrival(**common, price=price, tags=list(tags), media=raw.media,
                              hold=_hold_state(offer, hold_left))
        case FlashOfferIn(ends_at=ends_at, price=price, discount_pct=pct, hold=offer):
            post = FlashOffer(**common, ends_at=ends_at.astimezone(UTC), price=price,
                              discount_pct=pct, media=raw.media,
                              hold=_hold_state(offer, hold_left))
        case OpeningChangeIn(status=status, until=until):
            # An automatic post names the shop's time zone: pages write its title in
            # their reader's language, at the shop's local time.
            timezone = shop.hours.timezone if raw.auto and shop.hours is not None else None
            post = OpeningChange(**common, status=status,
                                 until=None if until is None else until.astimezone(UTC),
                                 timezone=timezone)
    kind = type(post).__struct_config__.tag
    assert isinstance(kind, str)  # each Post class is tagged with its kind's name
    return Enriched(post=post, kind=kind,
                    json=_encode(post), lat=shop.lat, lon=shop.lon,
                    expires_ts=expires.timestamp(), opening=override_of(post),
                    local=any_local((p.distance_km for p in producers), local_km))
