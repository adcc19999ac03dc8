"""The pages and web/static's files, from memory: compressed once, validated by ETag.

Each file is read, hashed and gzipped the first time it is asked for (in a worker
thread: the same loop writes feed frames), then kept until the file changes on disk
(its size or mtime, looked at on each request: an edit shows on the next reload,
without a restart). A request only picks a copy: no compression per request.

- `Content-Encoding: gzip` when the client accepts it and the file is of a text type
  that shrinks (images are compressed already); `Vary: Accept-Encoding` on every answer
  of such a file, compressed or not, so that no shared cache hands gzip to a client that
  did not ask for it.
- A strong `ETag` per representation (a hash of the bytes sent): a matching
  `If-None-Match` is answered `304 Not Modified`, with no body.
- `Cache-Control: no-cache`: the browser keeps the file and asks each time whether it
  is still current, so a deploy shows at once and the ES modules of a page never mix two
  versions; the answer to the question is a 304 of a few hundred bytes.
- HEAD answers the headers of GET, with no body.

Brotli (q11) would shrink a page's files a further 14 % (docs/performance.md, "Page
weight"): about 4.5 KB on a first visit and nothing on later ones (304s), which does not
pay for a compiled dependency. The API's JSON and feed frames are not compressed: see
the same section.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rules.negotiation import accepts_gzip, etag_matches

__all__ = ["Asset", "Assets"]

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".json", ".webmanifest", ".txt")
# Below this a gzip member's own 18 bytes and a lost 304's worth are not paid back.
_MIN_SAVING = 0.9


def _etag(body: bytes, suffix: str = "") -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:12]).decode()
    return f'"{digest}{suffix}"'


@dataclass(frozen=True, slots=True)
class Asset:
    stamp: tuple[int, int]  # (mtime_ns, size) of the file these bytes were read from
    media_type: str
    body: bytes
    etag: str
    gzip_body: bytes | None  # None when gzip would not shrink it enough, or not text
    gzip_etag: str | None


def _load(path: Path, stamp: tuple[int, int]) -> Asset:
    body = path.read_bytes()
    suffix = path.suffix.lower()
    packed: bytes | None = None
    if suffix in _COMPRESSIBLE:
        # mtime=0: the same bytes every time, so the ETag outlives a restart.
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        if len(packed) > len(body) * _MIN_SAVING:
            packed = None
    return Asset(stamp=stamp, media_type=_MEDIA_TYPES.get(suffix, "application/octet-stream"),
                 body=body, etag=_etag(body),
                 gzip_body=packed, gzip_etag=_etag(body, "-gzip") if packed else None)


class Assets:
    """The files under one directory, each kept in memory with its compressed copy."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._kept: dict[Path, Asset] = {}

    def _file(self, relative: str) -> tuple[Path, os.stat_result] | None:
        # Resolved, then required to be inside the root: no "..", no symlink out. A
        # trailing slash names a directory (pathlib would drop it and find the file).
        # One stat per request: it tells both that it is a file and whether it changed.
        if "\x00" in relative or "\\" in relative or relative.endswith("/"):
            return None
        try:
            path = (self.root / relative.lstrip("/")).resolve()
            if not path.is_relative_to(self.root):
                return None
            st = path.stat()
        except (OSError, RuntimeError):
            # A name the file system refuses (too long, a file taken for a directory, a
            # symlink loop: RuntimeError before Python 3.13), or none at all, is no file
            # of ours, whoever asks: a 404, not a 500 and a traceback per request.
            return None
        return (path, st) if stat.S_ISREG(st.st_mode) else None

    async def get(self, relative: str) -> Asset | None:
        found = self._file(relative)
        if found is None:
            return None
        path, st = found
        stamp = (st.st_mtime_ns, st.st_size)
        kept = self._kept.get(path)
        if kept is None or kept.stamp != stamp:
            try:
                kept = await asyncio.to_thread(_load, path, stamp)
            except OSError:  # gone or made unreadable since the stat: as if never there
                return None
            self._kept[path] = kept
        return kept

    async def response(self, request: Request, relative: str, *, status_code: int = 200,
                       media_type: str | None = None,
                       headers: dict[str, str] | None = None) -> Response:
        """The file's answer to this request; a 404 (the API's JSON error) if none."""
        asset = await self.get(relative)
        if asset is None:
            raise HTTPException(404, "no such file")
        packed = asset.gzip_body is not None and accepts_gzip(
            request.headers.get("accept-encoding"))
        etag = asset.gzip_etag if packed else asset.etag
        assert etag is not None
        out = {"Cache-Control": "no-cache", "ETag": etag, **(headers or {})}
        if asset.gzip_body is not None:
            out["Vary"] = "Accept-Encoding"
        # Only a 200 is validated: a 404 page must not turn into a 304 of something else.
        if status_code == 200 and etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=out)
        if packed:
            out["Content-Encoding"] = "gzip"
        body = asset.gzip_body if packed else asset.body
        assert body is not None
        # HEAD: the headers of GET, Content-Length included, and no body.
        if request.method == "HEAD":
            out["Content-Length"] = str(len(body))
            body = b""
        return Response(body, status_code=status_code,
                        media_type=media_type or asset.media_type, headers=out)
