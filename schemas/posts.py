"""Posts: what a shopkeeper sends (strict), what the `in` stream keeps, what passers-by get."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas import limits
from schemas.categories import CategoryCode
from schemas.common import AwareDatetime, Latitude, Longitude, PostId, ShopId
from schemas.holds import HoldOffer, HoldState
from schemas.media import MediaId, MediaOut
from schemas.producers import ProducerIds, ProducerOut, ProducerRef

__all__ = ["FlashOffer", "FlashOfferIn", "Kind", "NewArrival", "NewArrivalIn", "OpeningChange",
           "OpeningChangeIn", "Post", "PostAccepted", "PostIn", "PostPatch", "PostWithdrawn",
           "RawPost", "ShopSummary"]

# Lengths count Unicode code points, on the server and in the console alike
# (docs/architecture.md): what msgspec and JSON Schema's maxLength count.
Title = Annotated[str, msgspec.Meta(
    min_length=1, max_length=limits.TITLE_MAX,
    description=f"1-{limits.TITLE_MAX} Unicode code points (not UTF-16 units), at least one "
                "of them visible")]
Text = Annotated[str, msgspec.Meta(max_length=limits.TEXT_MAX)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.TAG_MAX)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=limits.TAGS_MAX)]
Price = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
Percent = Annotated[int, msgspec.Meta(ge=1, le=99)]
MediaIds = Annotated[list[MediaId], msgspec.Meta(
    max_length=limits.MEDIA_PER_POST_MAX,
    description=f"0-{limits.MEDIA_PER_POST_MAX} distinct ids from POST /api/v1/shops/"
                "{shop_id}/media, uploaded by the same shop, in display order")]

KINDS: tuple[str, ...] = ("new_arrival", "flash_offer", "opening_change")
Kind = Literal["new_arrival", "flash_offer", "opening_change"]
OpeningStatus = Literal["open_now", "closed_now", "open_late", "closed_exceptionally"]


# --- What the shopkeeper POSTs (strict) -------------------------------------------------


class _PostIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
              tag_field="kind"):
    title: Title
    text: Text = ""
    # Every kind may name producers ("A post may carry", DESIGN.md section 9).
    producer_ids: ProducerIds = []


class NewArrivalIn(_PostIn, frozen=True, tag="new_arrival"):
    price: Price | None = None
    tags: Tags = []
    media_ids: MediaIds = []
    # "Hold it for me": passers-by may ask the shop to keep one aside.
    hold: HoldOffer | None = None


class FlashOfferIn(_PostIn, frozen=True, tag="flash_offer"):
    ends_at: AwareDatetime
    price: Price | None = None
    discount_pct: Percent | None = None
    media_ids: MediaIds = []
    hold: HoldOffer | None = None


class OpeningChangeIn(_PostIn, frozen=True, tag="opening_change"):
    status: OpeningStatus = "open_now"
    until: AwareDatetime | None = None


PostIn = NewArrivalIn | FlashOfferIn | OpeningChangeIn


class PostPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A correction of a live post: only the fields given change (kind stays)."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    text: Text | msgspec.UnsetType = msgspec.UNSET
    price: Price | msgspec.UnsetType | None = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    ends_at: AwareDatetime | msgspec.UnsetType = msgspec.UNSET
    discount_pct: Percent | msgspec.UnsetType | None = msgspec.UNSET
    status: OpeningStatus | msgspec.UnsetType = msgspec.UNSET
    until: AwareDatetime | msgspec.UnsetType | None = msgspec.UNSET
    media_ids: MediaIds | msgspec.UnsetType = msgspec.UNSET
    producer_ids: ProducerIds | msgspec.UnsetType = msgspec.UNSET
    # null: no more holds (those taken stay); a new quantity counts those taken.
    hold: HoldOffer | msgspec.UnsetType | None = msgspec.UNSET


# --- What the `in` stream keeps (tolerant) ----------------------------------------------


class RawPost(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    shop_id: str
    accepted_at: datetime
    body: PostIn
    # An edit (or republish) of a live post: applied only while the post is live.
    edit: bool = False
    # When the post was first accepted (kept across edits); None: accepted_at.
    posted_at: datetime | None = None
    # Made by the scheduler from opening hours, not typed by the shopkeeper.
    auto: bool = False
    # The body's media_ids as the ingest found them (services.media): the enricher
    # publishes them without reading the media store.
    media: list[MediaOut] = []
    # The body's producer_ids as the ingest found them (services.producers), with their
    # positions: the enricher computes each one's distance from the shop.
    producers: list[ProducerRef] = []


# --- What passers-by get ------------------------------------------------------------------


class ShopSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: ShopId
    name: str
    category: CategoryCode
    lat: Latitude
    lon: Longitude
    address: str = ""
    # The IANA zone the shop's times are in (its hours' zone, else the deployment's): a
    # page shows "until 18:00" in the shop's time, whatever the reader's device says.
    timezone: str | None = None


class _Post(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    id: PostId
    title: str
    text: str = ""
    posted_at: datetime
    expires_at: datetime
    shop: ShopSummary
    updated_at: datetime | None = None
    auto: bool = False
    producers: list[ProducerOut] = []


class NewArrival(_Post, frozen=True, tag="new_arrival"):
    price: float | None = None
    tags: list[str] = []
    media: list[MediaOut] = []
    hold: HoldState | None = None


class FlashOffer(_Post, frozen=True, tag="flash_offer"):
    ends_at: datetime
    price: float | None = None
    discount_pct: int | None = None
    media: list[MediaOut] = []
    hold: HoldState | None = None


class OpeningChange(_Post, frozen=True, tag="opening_change"):
    status: OpeningStatus = "open_now"
    until: datetime | None = None
    # Automatic posts (`auto`) only: the shop's IANA time zone, so that a page can write
    # the title from `status` and `until` in its reader's language at the shop's local time.
    timezone: str | None = None


Post = NewArrival | FlashOffer | OpeningChange


class PostAccepted(msgspec.Struct, frozen=True):
    id: str


class PostWithdrawn(msgspec.Struct, frozen=True):
    id: str
    status: Literal["withdrawn"] = "withdrawn"
