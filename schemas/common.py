"""Building blocks shared by the other schema modules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from schemas import limits

__all__ = ["AwareDatetime", "ErrorBody", "ErrorDetail", "Latitude", "Longitude", "PostId",
           "RadiusM", "ShopId", "ShopLatitude"]

Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
# Where a shop can be: the latitudes Redis GEO can index.
ShopLatitude = Annotated[float, msgspec.Meta(ge=-limits.GEO_LAT_MAX, le=limits.GEO_LAT_MAX)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
RadiusM = Annotated[float, msgspec.Meta(gt=0.0, le=limits.RADIUS_MAX_M)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
# Every id pattern ends `(?!\n)$`: Python's `$` (msgspec's) also matches before a final
# newline, so "p_...\n" passed; the lookahead makes it the very end, in Python and in the
# ECMAScript regexes of JSON Schema (the OpenAPI document) alike.
ShopId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,63}(?!\n)$")]
PostId = Annotated[str, msgspec.Meta(pattern=r"^p_[a-z0-9]{16}(?!\n)$")]


class ErrorDetail(msgspec.Struct, frozen=True):
    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail
