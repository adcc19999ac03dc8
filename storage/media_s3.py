"""Photos in an S3-compatible bucket (STREETFEED_MEDIA_URL=s3://...; rules.media_url), for web
processes on several hosts; the data dir (storage.media.FileMediaStore) is the default.

Objects: `<prefix>/<id>/<width>.webp` (Content-Type image/webp) and `<prefix>/<id>/record.json`,
the record put last as in the data dir: a record that reads back means its variants are there.
One PUT is atomic (a reader sees the whole object or none), which is what the data dir gets
from its renames. Keys are only ever built from a validated media id (`is_media_id`) and an
integer width. The client is obstore (async-native, no thread per request); it signs with
the standard AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else a role).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import obstore
import obstore.exceptions
from obstore.store import S3Store

from rules.media_url import S3Location
from schemas.media import MediaRecord
from storage.media import CHUNK_BYTES, MediaBlob, StoredMedia, is_media_id

if TYPE_CHECKING:  # obstore's typed dicts exist only in its stubs
    from obstore.store import S3Config

__all__ = ["S3_UNAVAILABLE", "S3MediaStore"]

# What a call raises when the bucket cannot be used (unreachable after the retries, timed
# out, refused credentials): answered 503 `media_unavailable` (web.app), not a 500.
S3_UNAVAILABLE: tuple[type[Exception], ...] = (obstore.exceptions.BaseError,)

_decode_record = msgspec.json.Decoder(MediaRecord).decode
_encode = msgspec.json.Encoder().encode
_RECORD = "record.json"
# A bucket that does not answer fails the call (503 media_unavailable) within seconds
# instead of obstore's default of ten retries over up to three minutes: no connection
# within _CONNECT_TIMEOUT, or nothing read for _STALL_TIMEOUT. The whole of a request may
# take far longer: a photo's body is read from the bucket at the pace of the phone it is
# served to (obstore's default, 30 s in all, cut such a body short: a truncated photo).
_CONNECT_TIMEOUT = "5s"
_STALL_TIMEOUT = "10s"
_REQUEST_TIMEOUT = "10m"
_MAX_RETRIES = 3
_RETRY_TIMEOUT = timedelta(seconds=15)
# Keys listed per request (S3's maximum).
_LIST_PAGE = 1000
# obstore completes each call from one of its own (Rust) threads, which then takes the GIL
# back for a moment; a Python < 3.14 that is finalising by then kills that thread with
# pthread_exit, which aborts the whole process (SIGABRT, exit 134; seen in a third of the
# exits made right after a call). Closing waits this long so that the last of them is done.
_CLOSE_GRACE_S = 0.1


class S3MediaStore:
    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._root = f"{location.prefix}/" if location.prefix else ""
        config: S3Config = {}
        if location.endpoint is not None:
            config["endpoint"] = location.endpoint
        if location.region is not None:
            config["region"] = location.region
        # The constructor reads AWS_* from the environment; what is given here wins.
        self._store = S3Store(
            location.bucket, config=config,
            client_options={"allow_http": location.allow_http,
                            "connect_timeout": _CONNECT_TIMEOUT,
                            "read_timeout": _STALL_TIMEOUT, "timeout": _REQUEST_TIMEOUT},
            retry_config={"max_retries": _MAX_RETRIES, "retry_timeout": _RETRY_TIMEOUT})

    def _folder(self, media_id: str) -> str:
        # Keys name objects that any later request may read or delete: only the
        # content-address shape is ever part of one.
        if not is_media_id(media_id):
            raise ValueError(f"not a media id: {media_id!r}")
        return f"{self._root}{media_id}/"

    async def save(self, record: MediaRecord, variants: Mapping[int, bytes]) -> None:
        folder = self._folder(record.id)
        # One PUT each (no multipart: a variant is at most a few hundred KB, and an aborted
        # multipart upload would leave hidden parts that nothing sweeps).
        await asyncio.gather(*(
            obstore.put_async(self._store, f"{folder}{int(width)}.webp", data,
                              attributes={"Content-Type": "image/webp"}, use_multipart=False)
            for width, data in variants.items()))
        await obstore.put_async(self._store, f"{folder}{_RECORD}", _encode(record),
                                attributes={"Content-Type": "application/json"},
                                use_multipart=False)

    async def record(self, media_id: str) -> MediaRecord | None:
        if not is_media_id(media_id):
            return None
        data = await self._read(f"{self._folder(media_id)}{_RECORD}")
        return None if data is None else _decode_record(data)

    async def variant(self, media_id: str, width: int) -> bytes | None:
        if not is_media_id(media_id):
            return None
        return await self._read(f"{self._folder(media_id)}{int(width)}.webp")

    async def open(self, media_id: str, width: int) -> MediaBlob | None:
        if not is_media_id(media_id):
            return None
        try:
            result = await obstore.get_async(self._store,
                                             f"{self._folder(media_id)}{int(width)}.webp")
        except FileNotFoundError:  # what obstore raises for a missing key
            return None
        # One GET: the size and the body are of the same object version, a delete while the
        # body streams does not cut it short, and serving costs one request. A body never
        # read (a HEAD, a client gone) goes with the result: its connection is dropped.
        return MediaBlob(size=result.meta["size"],
                         chunks=_chunks(result.stream(min_chunk_size=CHUNK_BYTES)))

    async def delete(self, media_id: str) -> None:
        if not is_media_id(media_id):
            return
        folder = self._folder(media_id)
        # Every object under the id, whatever widths it has (a photo narrower than 1600 px
        # keeps its own width): listed, then removed in one bulk request per 1000.
        keys = [meta["path"] async for page in obstore.list(
            self._store, folder.rstrip("/"), chunk_size=_LIST_PAGE) for meta in page]
        if keys:
            await obstore.delete_async(self._store, keys)

    async def list(self) -> AsyncIterator[StoredMedia]:
        # S3 lists keys in UTF-8 binary order, so the objects of one id come together: each id
        # is yielded once its last object is seen, with the latest time among them, without
        # holding the whole bucket's listing.
        current: str | None = None
        latest: datetime | None = None
        async for page in obstore.list(self._store, self._root.rstrip("/") or None,
                                       chunk_size=_LIST_PAGE):
            for meta in page:
                media_id, slash, _ = meta["path"].removeprefix(self._root).partition("/")
                if not slash or not is_media_id(media_id):
                    continue  # not a media object (something else kept in the bucket)
                if media_id != current:
                    if current is not None and latest is not None:
                        yield StoredMedia(current, latest)
                    current, latest = media_id, meta["last_modified"]
                elif latest is None or meta["last_modified"] > latest:
                    latest = meta["last_modified"]
        if current is not None and latest is not None:
            yield StoredMedia(current, latest)

    async def close(self) -> None:
        # obstore keeps no connection that needs closing (its pool goes with the store), but
        # its threads must be done with the GIL before the interpreter may exit.
        await asyncio.sleep(_CLOSE_GRACE_S)

    async def _read(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:  # what obstore raises for a missing key
            return None
        return bytes(await result.bytes_async())


async def _chunks(stream: obstore.BytesStream) -> AsyncGenerator[bytes, None]:
    # A generator, as the protocol asks: a server closes it (aclose) without reading it.
    async for chunk in stream:
        yield chunk
