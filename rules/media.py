"""A stored photo as a post delivers it: same-origin URLs, one per width (pure)."""

from __future__ import annotations

from schemas.media import MediaOut, MediaRecord, MediaVariant

__all__ = ["MEDIA_PATH", "media_out", "media_url"]

# Served by web.media; content-addressed, so each URL's bytes never change.
MEDIA_PATH = "/media"


def media_url(media_id: str, width: int) -> str:
    return f"{MEDIA_PATH}/{media_id}/{width}.webp"


def media_out(record: MediaRecord) -> MediaOut:
    """`url` is the widest variant (the contract's one URL); `variants`, narrowest first,
    lets a page pick by width (`srcset`)."""
    heights = (record.heights if len(record.heights) == len(record.widths)
               else [max(1, round(record.height * w / record.width)) for w in record.widths])
    variants = sorted((MediaVariant(url=media_url(record.id, w), width=w, height=h)
                       for w, h in zip(record.widths, heights, strict=True)),
                      key=lambda v: v.width)
    widest = variants[-1]
    return MediaOut(id=record.id, url=widest.url, width=record.width, height=record.height,
                    variants=variants)
