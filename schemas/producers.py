"""Local producers (DESIGN.md section 9): what a shop sends, what is stored, what is shown.

A producer is a record of its own, shared by every shop that names it; a post carries its
producers as the ingest resolved them (`ProducerRef`, with their position), and the
enricher delivers them with their distance from the shop (`ProducerOut`).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas import limits
from schemas.categories import CategoryCode
from schemas.common import AwareDatetime, Latitude, Longitude, ShopId, ShopLatitude

__all__ = ["ProducerCreated", "ProducerId", "ProducerIds", "ProducerIn", "ProducerMatch",
           "ProducerOut", "ProducerPage", "ProducerQuery", "ProducerRecord", "ProducerRef",
           "ProducerSearch", "ProducerShop"]

# Ends `(?!\n)$` as every id pattern does (schemas.common says why).
ProducerId = Annotated[str, msgspec.Meta(pattern=r"^pr_[a-z0-9]{16}(?!\n)$")]
ProducerName = Annotated[str, msgspec.Meta(
    min_length=1, max_length=limits.PRODUCER_NAME_MAX,
    description=f"1-{limits.PRODUCER_NAME_MAX} Unicode code points, at least one visible")]
ProducerPlace = Annotated[str, msgspec.Meta(
    min_length=1, max_length=limits.PRODUCER_PLACE_MAX,
    description=f"1-{limits.PRODUCER_PLACE_MAX} Unicode code points: the village or town")]
# More than PRODUCERS_PER_POST_MAX is the contract's 422 `unknown_producer`, not a schema
# error (services.producers checks it), so the bound is only said to the schema's readers.
ProducerIds = Annotated[list[ProducerId], msgspec.Meta(
    description=f"0-{limits.PRODUCERS_PER_POST_MAX} distinct ids of producers linked to the "
                "shop (POST /api/v1/shops/{shop_id}/producers), else 422 unknown_producer",
    extra_json_schema={"maxItems": limits.PRODUCERS_PER_POST_MAX})]
DistanceKm = Annotated[float, msgspec.Meta(
    ge=0, description="Great-circle distance in km, one decimal (half up on 100 m)")]


class ProducerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /api/v1/shops/{shop_id}/producers`. The position is where the producer is (its
    farm, mill, estate); GEO-indexable latitudes only, as a shop's."""

    name: ProducerName
    place: ProducerPlace
    lat: ShopLatitude
    lon: Longitude


class ProducerCreated(msgspec.Struct, frozen=True):
    """`201`: the producer's id, the existing one's when the same producer was known."""

    id: ProducerId


class ProducerRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Stored (storage.producers; decoded tolerantly). `name`, `place`, `lat`, `lon` as the
    shop that first named it sent them; later shops naming it link to it unchanged."""

    id: str
    name: str
    place: str
    lat: float
    lon: float
    created_at: AwareDatetime
    created_by: str = ""


class ProducerRef(msgspec.Struct, frozen=True, kw_only=True):
    """A producer as a raw post carries it (`RawPost.producers`): resolved at the API before
    the 202, so the enricher computes the distance from the shop without reading producers,
    and a post already out keeps its text when the producer is later unlisted."""

    id: str
    name: str
    place: str
    lat: float
    lon: float


class ProducerOut(msgspec.Struct, frozen=True, kw_only=True):
    """A producer in a delivered post and in a shop's profile: `distance_km` from the shop."""

    id: ProducerId
    name: str
    place: str
    distance_km: DistanceKm


class ProducerShop(msgspec.Struct, frozen=True, kw_only=True):
    """A shop that sells a producer's goods, as its page lists it."""

    id: ShopId
    name: str
    category: CategoryCode
    lat: Latitude
    lon: Longitude


class ProducerPage(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/v1/producers/{producer_id}`: the producer and the enabled shops linked to
    it, nearest to the producer first."""

    id: ProducerId
    name: str
    place: str
    lat: Latitude
    lon: Longitude
    shops: list[ProducerShop]


class ProducerMatch(msgspec.Struct, frozen=True, kw_only=True):
    """A listed producer near the searched point (an extension: `GET /api/v1/producers`),
    with its distance from that point."""

    id: ProducerId
    name: str
    place: str
    lat: Latitude
    lon: Longitude
    distance_km: DistanceKm


class ProducerQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`GET /api/v1/producers?lat=&lon=[&q=]` (strict about names and ranges)."""

    lat: Latitude
    lon: Longitude
    q: Annotated[str, msgspec.Meta(max_length=limits.PRODUCER_SEARCH_Q_MAX)] = ""


class ProducerSearch(msgspec.Struct, frozen=True):
    producers: list[ProducerMatch]

