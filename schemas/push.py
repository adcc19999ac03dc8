"""Alerts for followed shops (Web Push, DESIGN.md section 9): what a page sends to subscribe,
what it gets back, what Redis keeps of a subscription and of the alerts waiting their turn,
and the message a push service carries to the browser.

A subscription keeps the push service's endpoint and the browser's keys, the shop ids
followed, the kinds wanted and when alerts may come: no position, no address, no user agent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas import limits
from schemas.common import PostId, ShopId
from schemas.posts import Kind

__all__ = ["PushCreated", "PushEndpointIn", "PushKey", "PushKeysIn", "PushMessage",
           "PushRecord", "PushSubscribeIn", "PushUpdateIn", "PushView", "SubscriptionId",
           "Waiting"]

SubscriptionId = Annotated[str, msgspec.Meta(pattern=r"^s_[a-z0-9]{16}(?!\n)$")]
# Unpadded base64url, as PushSubscription.toJSON() gives the keys (rules.push_endpoint
# checks what they decode to: a P-256 point, 16 bytes).
_B64URL = r"^[A-Za-z0-9_-]+={0,2}(?!\n)$"
P256dh = Annotated[str, msgspec.Meta(pattern=_B64URL, min_length=86, max_length=88,
                                     description="the browser's P-256 public key, base64url "
                                                 "(65 bytes, an uncompressed point)")]
AuthSecret = Annotated[str, msgspec.Meta(pattern=_B64URL, min_length=22, max_length=24,
                                         description="the browser's auth secret, base64url "
                                                     "(16 bytes)")]
Endpoint = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.PUSH_ENDPOINT_MAX,
                                       description="the push service's URL for this browser")]
FollowedShops = Annotated[list[ShopId], msgspec.Meta(
    min_length=1, max_length=limits.PUSH_SHOPS_MAX,
    description=f"1-{limits.PUSH_SHOPS_MAX} shop ids (repeats folded)")]
WantedKinds = Annotated[list[Kind], msgspec.Meta(
    min_length=1, max_length=3, description="the post kinds wanted (absent: every kind)")]
TimeZoneName = Annotated[str, msgspec.Meta(
    min_length=1, max_length=64,
    description="the device's IANA time zone, for quiet hours (absent: the deployment's)")]


class PushKeysIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    p256dh: P256dh
    auth: AuthSecret


class PushEndpointIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A browser's PushSubscription as its toJSON() gives it."""

    endpoint: Endpoint
    keys: PushKeysIn
    # toJSON() always carries it (null in every browser today); read, never kept: a
    # subscription that ends earlier is told by a 404/410 from its push service.
    expirationTime: float | None = None


class PushSubscribeIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    subscription: PushEndpointIn
    shops: FollowedShops
    kinds: WantedKinds | None = None
    quiet_hours: bool = True
    # An extension: the device's zone, where "21:00-08:00" is read.
    timezone: TimeZoneName | None = None


class PushUpdateIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PUT replaces the shops and kinds (absent kinds: every kind); quiet_hours and
    timezone, when absent, stay as they were."""

    shops: FollowedShops
    kinds: WantedKinds | None = None
    quiet_hours: bool | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZoneName | msgspec.UnsetType | None = msgspec.UNSET


class PushCreated(msgspec.Struct, frozen=True, kw_only=True):
    """201 to `POST /api/v1/push/subscriptions`: `secret` (shown once, stored only as its
    SHA-256) changes and removes the subscription. `shops`: the ids kept (an extension:
    ids of no shop are dropped)."""

    id: str
    secret: str
    shops: list[str]


class PushView(msgspec.Struct, frozen=True, kw_only=True):
    """200 to `PUT /api/v1/push/subscriptions/{id}`: the subscription as it now stands."""

    id: str
    shops: list[str]
    kinds: list[Kind]
    quiet_hours: bool
    timezone: str


class PushKey(msgspec.Struct, frozen=True):
    """The VAPID public key (RFC 8292): the page's applicationServerKey."""

    public_key: str


class PushRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What Redis keeps of a subscription (storage.push)."""

    id: str
    endpoint: str
    p256dh: str
    auth: str
    shops: list[str]
    kinds: list[Kind]
    quiet_hours: bool
    timezone: str
    secret_hash: str
    created_at: datetime
    updated_at: datetime


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    """A post to alert a subscription of, waiting its turn (rules.push.plan says when)."""

    post_id: PostId
    region: str
    shop_id: str
    kind: Kind
    expires_ts: float
    queued_ts: float
    # Failed sends so far (429, 5xx, no answer), and when the next may go.
    attempts: int = 0
    not_before_ts: float = 0.0


class PushMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The encrypted body of an alert: the public post of a `post` frame, and where the
    notification opens."""

    type: Literal["post"] = "post"
    post: msgspec.Raw
    url: str
