"""The `feed` stream entries, the WebSocket frames and the feed API response."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.common import ErrorDetail, Latitude, Longitude, RadiusM
from schemas.posts import Kind, Post

__all__ = ["ClientMessage", "ErrorFrame", "ExpiredFrame", "FeedEntry", "FeedPage", "FeedResponse",
           "PingFrame", "PostFrame", "Reach", "ResetFrame", "ShopPosts", "ShopPostsPage",
           "ShopStats", "StatusFrame", "Subscription", "WatchCount", "WithdrawnFrame"]

# --- Subscriptions (query string or `subscribe` message; strict) --------------------------

KindList = Annotated[list[Kind], msgspec.Meta(max_length=3)]


class Subscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lat: Latitude
    lon: Longitude
    radius_m: RadiusM
    kinds: KindList | None = None
    # Only posts naming a producer within STREETFEED_LOCAL_KM of their shop (DESIGN.md
    # section 9): `local=1` in a query string, `"local": true` in a `subscribe` message.
    local: bool = False
    # What kind of device watches: counted apart in a post's reach ("screens and phones").
    client: Literal["phone", "screen"] = "phone"


class SubscribeMessage(Subscription, frozen=True, forbid_unknown_fields=True,
                       tag_field="type", tag="subscribe"):
    pass


ClientMessage = SubscribeMessage


# --- `feed` stream entry (tolerant; field `d`) ---------------------------------------------


class FeedEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One ordered event for the gateways.

    `post` is the encoded public post, kept raw so a gateway turns it into a frame
    without decoding it; `lat`, `lon` and `kind` are what matching needs.
    """

    type: Literal["post", "expired", "withdrawn"]
    id: str
    kind: str = ""
    lat: float = 0.0
    lon: float = 0.0
    # Empty for tombstones (msgspec.Raw cannot be Optional).
    post: msgspec.Raw = msgspec.Raw()
    # An edit or republish of a post already out: delivered again, not counted in its reach.
    edit: bool = False
    # The post names a producer within STREETFEED_LOCAL_KM of its shop: `local=1`
    # subscribers take it (decided at enrichment, so the gateway does no geometry for it).
    local: bool = False
    # An edit of a post that was `local` and is no longer: `local=1` subscribers get it
    # too, since they may hold its card, which would otherwise keep naming the producer.
    was_local: bool = False


# --- WebSocket frames (server -> client) ----------------------------------------------------


class _Frame(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class PostFrame(_Frame, frozen=True, tag="post"):
    post: msgspec.Raw
    cursor: str


class ExpiredFrame(_Frame, frozen=True, tag="expired"):
    id: str
    cursor: str


class WithdrawnFrame(_Frame, frozen=True, tag="withdrawn"):
    id: str
    cursor: str


class ResetFrame(_Frame, frozen=True, tag="reset"):
    cursor: str


class PingFrame(_Frame, frozen=True, tag="ping"):
    pass


class ErrorFrame(_Frame, frozen=True, tag="error"):
    error: ErrorDetail


class StatusFrame(_Frame, frozen=True, tag="status", omit_defaults=True):
    """Whether the feed is live (DESIGN.md section 9): `live` false while the gateway cannot
    read it, with `since` (RFC 3339) the last moment it could."""

    live: bool
    since: str | None = None


# --- HTTP feed API ---------------------------------------------------------------------------


class FeedResponse(msgspec.Struct, frozen=True):
    # Raw: posts are stored encoded and sent as they are; FeedPage types them for the schema.
    posts: list[msgspec.Raw]
    cursor: str


class FeedPage(msgspec.Struct, frozen=True):
    """FeedResponse as clients decode it (the OpenAPI document's view)."""

    posts: list[Post]
    cursor: str


class ShopPosts(msgspec.Struct, frozen=True):
    posts: list[msgspec.Raw]


class ShopPostsPage(msgspec.Struct, frozen=True):
    posts: list[Post]


class WatchCount(msgspec.Struct, frozen=True, omit_defaults=True):
    """People watching within `radius_m` of the shop's registered position. From 5 up
    `count` is exact; under 5 it is null and `fewer_than` is 5 (never 0 to 4: that would
    single a person out)."""

    radius_m: int
    count: int | None
    fewer_than: int | None = None


class Reach(msgspec.Struct, frozen=True, omit_defaults=True):
    """Sockets a post went out to live when it was published (edits and republishes not
    counted again), phones and screens apart. Each from 5 up is exact; under 5 it is null
    and `fewer_than` is 5 (never 0 to 4: with one socket in range, a post's reach would
    say whether a passer-by is around)."""

    phone: int | None
    screen: int | None
    fewer_than: int | None = None


class ShopStats(msgspec.Struct, frozen=True):
    """For the console: people watching around the shop now, and each live post's reach."""

    watching: list[WatchCount]
    reach: dict[str, Reach]
