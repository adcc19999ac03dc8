"""Holds ("Hold it for me", DESIGN.md section 9): a passer-by asks a shop to keep an item
aside for a while; no payment, no account. What a post offers, what the passer-by sends and
gets, what the shop lists, and what Redis keeps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas import limits

__all__ = ["OPEN_STATUSES", "EndReason", "HoldCreated", "HoldId", "HoldIn", "HoldOffer",
           "HoldPostRef", "HoldRecord", "HoldShop", "HoldState", "HoldStatus", "HoldView",
           "ShopHold", "ShopHolds"]

HoldStatus = Literal["pending", "accepted", "declined", "collected", "expired", "cancelled"]
# Why a hold ended as it did: declined because the shop said no, its post was withdrawn or
# ended first, or the shop was taken off the service; expired with the shop never having
# answered (rather than put aside and not collected).
EndReason = Literal["shop", "post_ended", "shop_disabled", "no_answer"]
# A unit is taken while its hold is one of these; the shop lists these.
OPEN_STATUSES: tuple[HoldStatus, ...] = ("pending", "accepted")

HoldId = Annotated[str, msgspec.Meta(pattern=r"^h_[a-z0-9]{16}(?!\n)$")]
HoldName = Annotated[str, msgspec.Meta(
    min_length=1, max_length=limits.HOLD_NAME_MAX,
    description=f"a first name, 1-{limits.HOLD_NAME_MAX} Unicode code points")]


class HoldOffer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """On a new_arrival or flash_offer: how many units may be held, each for how long."""

    quantity: Annotated[int, msgspec.Meta(ge=1, le=limits.HOLD_QUANTITY_MAX)]
    minutes: Annotated[int, msgspec.Meta(ge=limits.HOLD_MINUTES_MIN,
                                         le=limits.HOLD_MINUTES_MAX)]


class HoldState(msgspec.Struct, frozen=True, kw_only=True):
    """On a delivered post: units left to hold (kept current by `post` frames), and how
    long each is kept."""

    left: int
    minutes: int


class HoldIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: HoldName


class HoldCreated(msgspec.Struct, frozen=True, kw_only=True):
    """201 to `POST /api/v1/posts/{post_id}/holds`: `secret` (shown once, never stored in
    clear) reads and cancels the hold; `code` is said at the till."""

    id: str
    secret: str
    code: str
    status: HoldStatus
    expires_at: datetime


class HoldPostRef(msgspec.Struct, frozen=True, kw_only=True):
    """The post a hold is for, as it was when the hold was taken (the post may be gone)."""

    id: str
    kind: str
    title: str
    price: float | None = None
    discount_pct: int | None = None


class HoldShop(msgspec.Struct, frozen=True, kw_only=True):
    """Where to collect it (the shop's public fields)."""

    id: str
    name: str
    address: str = ""
    lat: float
    lon: float
    # The IANA zone of the shop's times (its hours', else the deployment's): "until 18:40"
    # in the shop's time, and the day its holds are counted in.
    timezone: str | None = None


class HoldRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Stored at keys.hold(region, id) beside its `status` (which scripts change): a first
    name, never a position or an address in clear. `address` is the day's keyed hash the
    rate limiter counts under (storage.ratelimit), so that an ended hold frees its slot."""

    id: str
    region: str
    post: HoldPostRef
    shop: HoldShop
    name: str
    code: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime
    minutes: int
    address: str = ""


class HoldView(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/v1/holds/{hold_id}` (Bearer secret). `reason` (an extension of DESIGN.md
    section 9): on a declined hold, why; on an expired one, `no_answer` when the shop never
    answered it; null otherwise."""

    id: str
    status: HoldStatus
    code: str
    name: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    post: HoldPostRef
    shop: HoldShop
    reason: EndReason | None = None


class ShopHold(msgspec.Struct, frozen=True, kw_only=True):
    """An open hold as the shop sees it."""

    id: str
    status: HoldStatus
    code: str
    name: str
    created_at: datetime
    expires_at: datetime
    post: HoldPostRef


class ShopHolds(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/v1/shops/{shop_id}/holds`: open holds, soonest to expire first."""

    holds: list[ShopHold]
