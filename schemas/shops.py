"""Shops: the stored record (with the token hash) and the public profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from schemas import limits
from schemas.categories import CategoryCode, CategoryIn
from schemas.common import Longitude, ShopId, ShopLatitude
from schemas.hours import NextChange, ShopHours
from schemas.producers import ProducerOut

__all__ = ["NewShop", "PositionFields", "ShopCreated", "ShopEdit", "ShopList", "ShopListResponse",
           "ShopProfile", "ShopProfileWithProducers", "ShopRecord", "ShopUpdate", "SignIn",
           "TokenRotated"]

ShopName = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.SHOP_NAME_MAX)]
Address = Annotated[str, msgspec.Meta(max_length=limits.ADDRESS_MAX)]


class ShopRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Stored as JSON at keys.shop(id). Never leaves the server: it holds the token hash."""

    id: str
    name: str
    category: str
    lat: float
    lon: float
    address: str = ""
    region: str = "main"
    token_hash: str
    created_at: datetime
    disabled: bool = False
    hours: ShopHours | None = None
    updated_at: datetime | None = None
    # "Hold it for me" taken (the shop may turn it off: its posts then offer none).
    holds: bool = True


class NewShop(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ShopName
    category: CategoryIn
    lat: ShopLatitude
    lon: Longitude
    address: Address = ""


class ShopUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A change to a shop's record by the operator (`streetfeed shops update`): the only way
    a shop moves. The shop itself sends a ShopEdit."""

    name: ShopName | msgspec.UnsetType = msgspec.UNSET
    category: CategoryIn | msgspec.UnsetType = msgspec.UNSET
    lat: ShopLatitude | msgspec.UnsetType = msgspec.UNSET
    lon: Longitude | msgspec.UnsetType = msgspec.UNSET
    address: Address | msgspec.UnsetType = msgspec.UNSET
    holds: bool | msgspec.UnsetType = msgspec.UNSET


class ShopEdit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /api/v1/shops/{id}` with the shop's token or console session. No position: a
    shop that could move itself could move its "people watching within R m" counts around
    a passer-by and corner them (issue 12); only the operator moves a shop."""

    name: ShopName | msgspec.UnsetType = msgspec.UNSET
    category: CategoryIn | msgspec.UnsetType = msgspec.UNSET
    address: Address | msgspec.UnsetType = msgspec.UNSET
    holds: bool | msgspec.UnsetType = msgspec.UNSET


class PositionFields(msgspec.Struct, frozen=True):
    """Read from a ShopEdit body first, whatever else it holds, to refuse a position by name
    (403 `position_locked`) rather than as one unknown field among others."""

    lat: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    lon: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class ShopProfile(msgspec.Struct, frozen=True, kw_only=True):
    id: ShopId
    name: str
    category: CategoryCode
    lat: float
    lon: float
    address: str = ""
    # None when the shop has not given its hours.
    open_now: bool | None = None
    next_change: NextChange | None = None
    # The IANA zone of the hours: pages say "opens at 07:00" in the shop's time, whatever
    # zone the device showing it is left in (an in-shop screen on a UTC kiosk).
    timezone: str | None = None
    # It takes "Hold it for me" (its posts offering units then show it).
    holds: bool = True


class ShopProfileWithProducers(ShopProfile, frozen=True, kw_only=True):
    """`GET /api/v1/shops/{shop_id}`: the profile and the producers the shop names (DESIGN.md
    section 9), nearest first, `distance_km` from the shop. Only this answer has them: the
    shop list and the console's profile stay as they were, each shop's links unread."""

    producers: list[ProducerOut] = []
    # Holds it was asked for today (its local date): the in-shop screen's "3 held today".
    held_today: int = 0


class ShopList(msgspec.Struct, frozen=True):
    """A page of GET /api/v1/shops, in shop id order. `next` is the cursor of the next page
    (`?cursor=<next>`), null on the last one; a client that ignores it gets the first."""

    shops: list[ShopProfile]
    next: str | None = None


class ShopListResponse(msgspec.Struct, frozen=True):
    # Raw: profiles are kept encoded (services.directory); ShopList types them for the schema.
    shops: list[msgspec.Raw]
    next: str | None = None


class SignIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The console's sign-in: the token is exchanged for an HttpOnly session cookie."""

    shop_id: Annotated[str, msgspec.Meta(max_length=64)]
    token: Annotated[str, msgspec.Meta(max_length=256)]


class TokenRotated(msgspec.Struct, frozen=True):
    id: str
    token: str


class ShopCreated(msgspec.Struct, frozen=True):
    """What `streetfeed shops add` prints: the token is shown this once only."""

    id: str
    token: str
    name: str
    region: str
