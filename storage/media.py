"""Where processed photos are kept (DESIGN.md section 9 "Photos"): the data dir by default.

A store keeps, per media id, its WebP variants by width and its `MediaRecord`. The record
is written last, so a record that reads back means every file it names is there; a crash
between the two leaves files without a record, which the (still to come) sweep removes.
Only re-encoded bytes ever reach a store (rules.images), never an upload.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import msgspec

from schemas.media import MediaRecord

__all__ = ["FileMediaStore", "MediaStore"]

_ID = re.compile(r"^m_[0-9a-f]{32}$")
_decode_record = msgspec.json.Decoder(MediaRecord).decode
_encode = msgspec.json.Encoder().encode


class MediaStore(Protocol):
    async def save(self, record: MediaRecord, variants: Mapping[int, bytes]) -> None:
        """Keep the variants (width -> WebP bytes), then the record."""

    async def record(self, media_id: str) -> MediaRecord | None:
        """The media's record, or None if there is no (complete) media of that id."""

    async def variant(self, media_id: str, width: int) -> bytes | None:
        """One stored width's WebP bytes, or None."""


class FileMediaStore:
    """Files under `root`: `<id>/<width>.webp` and `<id>/record.json`. Each file is written
    to a temporary name and renamed, so a reader never sees half a file. The blocking file
    calls run in a thread: the loop that calls them serves sockets."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, media_id: str) -> Path:
        # The id is a path component: only the content-address shape is ever one.
        if not _ID.match(media_id):
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
        if not _ID.match(media_id):
            return None
        data = await asyncio.to_thread(_read, self._dir(media_id) / "record.json")
        return None if data is None else _decode_record(data)

    async def variant(self, media_id: str, width: int) -> bytes | None:
        if not _ID.match(media_id):
            return None
        return await asyncio.to_thread(_read, self._dir(media_id) / f"{width}.webp")


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
