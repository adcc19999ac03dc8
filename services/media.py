"""Photos, from an upload to a post (DESIGN.md section 9 "Photos").

`MediaLibrary.add` processes an upload (rules.images, in child processes), keeps its variants in
the store and registers it in the index (storage.media_index) under the shop's quota;
`take_media` turns a post's `media_ids` into what the post delivers, keeping the
photos for the post's lifetime. The sweep (workers.media_sweep) removes what is no longer
kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

from rules import images
from rules.clock import Clock
from rules.errors import ApiError, InvalidInput, Unavailable
from rules.media import media_out
from runtime import metrics
from schemas.limits import MEDIA_UNPOSTED_KEEP_S
from schemas.media import MediaCreated, MediaOut, MediaRecord
from schemas.shops import ShopRecord
from storage.media import MediaStore
from storage.media_index import MediaIndex, MediaIndexes, Registered

__all__ = ["UPLOADS_PER_WORKER", "ImageProcessor", "MediaLibrary", "UploadGate", "take_media"]


class ImageProcessor(Protocol):
    async def process(self, data: bytes, content_type: str) -> images.ProcessedImage:
        """rules.images.process, run where it cannot stall the caller's loop (the web
        process's is services.image_pool.ImagePool: child processes)."""


def quota_exceeded(quota_mb: int) -> ApiError:
    return ApiError(f"the shop's kept photos would weigh more than {quota_mb} MB: withdraw "
                    "posts or wait for them to expire", code="media_quota_exceeded", status=413)


# Uploads a web process holds at once (read, waiting for a child, processed) per child:
# each holds its body (up to 10 MB) the whole time, so more are refused, not queued.
UPLOADS_PER_WORKER = 4


class UploadGate:
    """Admission of uploads into one web process: `with gate:` around reading and
    processing one; past `limit` at once, 503 `server_busy` with Retry-After, before the
    body is read (a burst of 40 MP photos once queued hundreds of MB in the web process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0

    def __enter__(self) -> UploadGate:
        if self.inside >= self.limit:
            raise Unavailable("too many photos are being processed: retry in a few seconds",
                              code="server_busy", retry_after=5)
        self.inside += 1
        metrics.UPLOADS_IN_PROGRESS.inc()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inside -= 1
        metrics.UPLOADS_IN_PROGRESS.dec()


class MediaLibrary:
    def __init__(self, redis: Redis, store: MediaStore, processor: ImageProcessor,
                 clock: Clock, quota_mb: int) -> None:
        self.redis = redis
        self.store = store
        self.processor = processor
        self.clock = clock
        self.quota_mb = quota_mb
        self.indexes = MediaIndexes(redis)

    async def add(self, shop: ShopRecord, data: bytes, content_type: str) -> MediaCreated:
        image = await self.processor.process(data, content_type)
        now = self.clock.now()
        record = MediaRecord(id=images.media_id(shop.id, image), shop_id=shop.id,
                             width=image.width, height=image.height,
                             widths=[v.width for v in image.variants],
                             heights=[v.height for v in image.variants],
                             created_at=now, bytes=image.size_bytes)
        index = self.indexes[shop.region]
        keep_until = now.timestamp() + MEDIA_UNPOSTED_KEEP_S
        quota = self.quota_mb * 1024 * 1024
        known = await index.known(shop.id, record.id)
        if known is None:
            if await index.total_bytes(shop.id) + record.bytes > quota:
                raise quota_exceeded(self.quota_mb)
            # Files first, index last: an id the index names always has its files.
            await self.store.save(record, {v.width: v.data for v in image.variants})
        outcome = await index.register(known or record, keep_until, quota, now.timestamp())
        if outcome is Registered.BEING_DELETED:
            # The sweep forgot this very photo an instant ago and is deleting its files
            # (maybe the ones just written): registering them now would name lost files.
            raise Unavailable("this photo is being removed: send it again in a few seconds",
                              code="server_busy", retry_after=5)
        if outcome is Registered.OVER_QUOTA:
            # Another upload took the room meanwhile. The files go unless the same photo
            # was registered by a twin upload in between (then they are its files).
            if await index.known(shop.id, record.id) is None:
                await self.store.delete(record.id)
            raise quota_exceeded(self.quota_mb)
        out = media_out(record)
        return MediaCreated(id=out.id, width=out.width, height=out.height, url=out.url,
                            variants=out.variants)


async def take_media(index: MediaIndex, shop: ShopRecord, media_ids: Sequence[str],
                     keep_until: float) -> list[MediaOut]:
    """A post's photos as delivered, kept at least until `keep_until`; 422 `unknown_media`
    for an id that is not one of the shop's kept photos (`index`: its region's). Needs the
    index only, not the store: ingesting a post never touches the photos' bytes."""
    if len(set(media_ids)) != len(media_ids):
        raise InvalidInput("media_ids: each photo at most once", code="invalid_post")
    taken = await index.take(shop.id, media_ids, keep_until)
    if isinstance(taken, str):
        raise InvalidInput(f"media {taken!r} is not a photo this shop uploaded (or it was "
                           "removed after a day unposted)", code="unknown_media")
    return [media_out(r) for r in taken]
