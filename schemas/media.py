"""Photos (DESIGN.md section 9): the upload's answer, the stored record, what a post delivers."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas import limits
from schemas.common import AwareDatetime, ShopId

__all__ = ["MediaCreated", "MediaId", "MediaOut", "MediaRecord", "MediaVariant"]

# Content-addressed: rules.images.media_id derives it from the shop and the re-encoded
# pixels, so the same photo uploaded twice by a shop is one media, and its URL can be
# cached forever.
MediaId = Annotated[str, msgspec.Meta(pattern=r"^m_[0-9a-f]{32}(?!\n)$")]
Dimension = Annotated[int, msgspec.Meta(ge=1, le=limits.MEDIA_WIDTH_MAX * 64)]


class MediaVariant(msgspec.Struct, frozen=True, kw_only=True):
    """One width of a delivered photo, for a page's `srcset`."""

    url: str
    width: int
    height: int


class MediaCreated(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`201` to `POST /api/v1/shops/{shop_id}/media`: the largest stored width and its height
    (the contract's three fields), plus, as a compatible extension, the URLs a post will
    deliver for it (`url`, `variants`), so a console can show it before posting."""

    id: MediaId
    width: Dimension
    height: Dimension
    url: str = ""
    variants: list[MediaVariant] = []


class MediaRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the store keeps beside the files (decoded tolerantly: fields added later default).

    `width`/`height` are those of the largest variant; `widths` every variant stored, widest
    last, and `heights` theirs; `bytes` their total size, which counts against the shop's
    quota.
    """

    id: MediaId
    shop_id: ShopId
    width: int
    height: int
    widths: list[int]
    created_at: AwareDatetime
    bytes: int
    heights: list[int] = []


class MediaOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A photo in a delivered post: `{"id","url","width","height"}` as the contract says, `url`
    the largest variant (a same-origin path); `variants`, every stored width narrowest first,
    is the extra "srcset-style" field the contract allows (absent when empty)."""

    id: MediaId
    url: str
    width: int
    height: int
    variants: list[MediaVariant] = []
