"""The frames of WS /ws/shop, the shopkeeper console's own socket (server -> client).

A compatible extension of the contract: a new endpoint, nothing of /ws/feed changes. After
the handshake the server sends `shop`, `producers`, `holds`, `posts` and, once people
watching can be counted, `stats`; then only changes, pushed as they happen. `status` and
`error` are the feed's own frames (schemas.feed). docs/architecture.md describes the socket.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.feed import Reach, WatchCount
from schemas.holds import ShopHold
from schemas.producers import ProducerOut
from schemas.shops import ShopProfile

__all__ = ["ConsoleExpired", "ConsoleHolds", "ConsolePost", "ConsolePosts", "ConsoleProducers",
           "ConsoleShop", "ConsoleStats", "ConsoleWithdrawn"]


class _Frame(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class ConsoleShop(_Frame, frozen=True, tag="shop"):
    """The shop's public profile (as GET /api/v1/shops/{id}): on connect and whenever it
    changes (opening or closing, by its hours or by a change of them; name, address).
    `closes_at` is what "until closing" means for an offer posted now: the end of the
    current opening, or of today's next one; null when the shop has no hours or does not
    open again today (rules.opening.offer_closing)."""

    shop: ShopProfile
    closes_at: datetime | None = None


class ConsoleProducers(_Frame, frozen=True, tag="producers"):
    """The producers the shop names, nearest to it first (as `producers` in GET
    /api/v1/shops/{id}): on connect, and whenever a console or an API client of the shop
    names or unlinks one, so that the shop's other screens offer the same ones."""

    producers: list[ProducerOut]


class ConsoleHolds(_Frame, frozen=True, tag="holds"):
    """The shop's open holds, soonest to expire first (as GET /api/v1/shops/{id}/holds),
    and how many it was asked for today: on connect, and at every step of one of them.
    `taken`: for each live post of the shop that holds have taken units of (open or
    collected), how many, absent when none: a post's `hold` says only what is `left`,
    and an edit's `quantity` counts those taken, so the console's edit form needs both."""

    holds: list[ShopHold]
    held_today: int = 0
    taken: dict[str, int] | msgspec.UnsetType = msgspec.UNSET


class ConsolePosts(_Frame, frozen=True, tag="posts"):
    """Every live post of the shop, newest first (as GET /api/v1/shops/{id}/posts): sent
    on connect; the client replaces what it had."""

    posts: list[msgspec.Raw]


class ConsolePost(_Frame, frozen=True, tag="post"):
    """A post of the shop made live or corrected (same id: replace it)."""

    post: msgspec.Raw


class ConsoleExpired(_Frame, frozen=True, tag="expired"):
    id: str


class ConsoleWithdrawn(_Frame, frozen=True, tag="withdrawn"):
    id: str


class ConsoleStats(_Frame, frozen=True, tag="stats"):
    """What GET /api/v1/shops/{id}/stats answers, under the same privacy rules: people
    watching around the shop's registered position ("fewer than 5" under 5) and each live
    post's reach. Sent once counting is possible, then only when it changes."""

    watching: list[WatchCount]
    reach: dict[str, Reach]
