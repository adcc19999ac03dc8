"""Where processed photos are kept (DESIGN.md section 9 "Photos"): the data dir by default.

A store keeps, per media id, its WebP variants by width and its `MediaRecord`. The record
is written last, so a record that reads back means every file it names is there; a crash
between the two leaves files without a record, which the sweep (workers.media_sweep)
removes. Only re-encoded bytes ever reach a store (rules.images), never an upload.

Which media exist and until when is kept in Redis (storage.media_index); a store only
holds bytes, so that it can be a directory or an S3-compatible bucket alike.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import msgspec

from runtime.settings import Settings
from schemas.media import MediaRecord

__all__ = ["FileMediaStore", "MediaBlob", "MediaStore", "StoredMedia", "is_media_id",
           "media_store_for"]

# Matched whole (fullmatch): `$` would also let a trailing newline through.
_ID = re.compile(r"m_[0-9a-f]{32}")
_decode_record = msgspec.json.Decoder(MediaRecord).decode
_encode = msgspec.json.Encoder().encode
# Served files are read in pieces of this size: one photo variant is ~20-200 KB.
CHUNK_BYTES = 64 * 1024


def is_media_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class MediaBlob:
    """One stored variant, ready to be streamed: its size, and its bytes in pieces."""

    size: int
    chunks: AsyncGenerator[bytes, None]


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A media id found in a store, with when it was last written (for the orphan sweep)."""

    id: str
    modified_at: datetime


class MediaStore(Protocol):
    async def save(self, record: MediaRecord, variants: Mapping[int, bytes]) -> None:
        """Keep the variants (width -> WebP bytes), then the record."""

    async def record(self, media_id: str) -> MediaRecord | None:
        """The media's record, or None if there is no (complete) media of that id."""

    async def variant(self, media_id: str, width: int) -> bytes | None:
        """One stored width's WebP bytes, or None."""

    async def open(self, media_id: str, width: int) -> MediaBlob | None:
        """One stored width as a stream (to serve it without holding it whole), or None."""

    async def delete(self, media_id: str) -> None:
        """Remove every file of the media (no error if there is none)."""

    def list(self) -> AsyncIterator[StoredMedia]:
        """Every media id the store holds files for, complete or not."""

    async def close(self) -> None:
        """Release connections (a no-op for files)."""


class FileMediaStore:
    """Files under `root`: `<id>/<width>.webp` and `<id>/record.json`. Each file is written
    to a temporary name and renamed, so a reader never sees half a file. The blocking file
    calls run in a thread: the loop that calls them serves sockets."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, media_id: str) -> Path:
        # The id is a path component: only the content-address shape is ever one.
        if not is_media_id(media_id):
            raise ValueError(f"not a media id: {media_id!r}")
        return self.root / media_id

    async def save(self, record: MediaRecord, variants: Mapping[int, bytes]) -> None:
        await asyncio.to_thread(self._save, record, dict(variants))

    def _save(self, record: MediaRecord, variants: dict[int, bytes]) -> None:
        folder = self._dir(record.id)
        folder.mkdir(parents=True, exist_ok=True)
        for width, data in variants.items():
            _write_atomic(folder / f"{width}.webp", data)
        _write_atomic(folder / "record.json", _encode(record))

    async def record(self, media_id: str) -> MediaRecord | None:
        if not is_media_id(media_id):
            return None
        data = await asyncio.to_thread(_read, self._dir(media_id) / "record.json")
        return None if data is None else _decode_record(data)

    async def variant(self, media_id: str, width: int) -> bytes | None:
        if not is_media_id(media_id):
            return None
        return await asyncio.to_thread(_read, self._dir(media_id) / f"{width}.webp")

    async def open(self, media_id: str, width: int) -> MediaBlob | None:
        if not is_media_id(media_id):
            return None
        path = self._dir(media_id) / f"{width}.webp"
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        # Opened when the first piece is asked for: a HEAD, or a client gone before the
        # body, leaves no open file behind.
        return MediaBlob(size=size, chunks=_chunks(path))

    async def delete(self, media_id: str) -> None:
        if is_media_id(media_id):
            await asyncio.to_thread(shutil.rmtree, self._dir(media_id), True)

    async def list(self) -> AsyncIterator[StoredMedia]:
        for entry in await asyncio.to_thread(_scan, self.root):
            yield entry

    async def close(self) -> None:
        return None


def media_store_for(settings: Settings) -> MediaStore:
    """The store every process of a deployment shares (web serving, scheduler sweeping):
    the data dir's media/ by default, the S3-compatible bucket of STREETFEED_MEDIA_URL when
    one is configured (web processes on several hosts)."""
    if settings.media_bucket is None:
        return FileMediaStore(settings.data_dir / "media")
    # Imported here: storage.media_s3 builds on this module's MediaBlob and is_media_id.
    from storage.media_s3 import S3MediaStore

    return S3MediaStore(settings.media_bucket)


async def _open(path: Path) -> BinaryIO:
    """`path` opened in a thread. A download dropped while the thread opens it cancels the
    waiting task, not the thread: the file it still opens is then closed, not left to the
    garbage collector (a ResourceWarning in a CI run)."""
    opening: asyncio.Future[BinaryIO] = asyncio.ensure_future(
        asyncio.to_thread(path.open, "rb"))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(done: asyncio.Future[BinaryIO]) -> None:
    if not done.cancelled() and done.exception() is None:
        done.result().close()


async def _chunks(path: Path) -> AsyncGenerator[bytes, None]:
    # Once open, the file survives its directory's removal (POSIX): a photo swept while
    # being served is still served whole.
    file = await _open(path)
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()


def _scan(root: Path) -> list[StoredMedia]:
    found: list[StoredMedia] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return found
    for entry in entries:
        if is_media_id(entry.name) and entry.is_dir(follow_symlinks=False):
            mtime = entry.stat(follow_symlinks=False).st_mtime
            found.append(StoredMedia(entry.name, datetime.fromtimestamp(mtime, UTC)))
    return found


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
