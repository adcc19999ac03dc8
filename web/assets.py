"""The pages and web/static's files, from memory: compressed once, validated by ETag.

Every file is read, hashed and compressed (brotli q11 and gzip -9, rules/compression.py)
before the first request: the app's lifespan runs `warm()` in a worker thread (the same
loop writes feed frames) and starts serving once it is done. Brotli q11 costs ~1.4 s of
one core for the 51 files (~185 KB kept), so the compressed copies are also kept beside
the package, in `web/.compressed/` (named by each file's SHA-256, checked when read
back, as Python keeps `__pycache__`): every later process of the install (a restart
after a crash or a deploy that changed a few files, `--workers N`, the tests' and
benchmarks' many servers) reads them back in a few ms and compresses only what changed,
so a gateway restarted under a reconnect storm is not held back by it. Where the package
is read-only they are made again at each start. A file is kept in memory until it
changes on disk (its size or mtime, looked at on each request: an edit shows on the next
reload, without a restart), then compressed again in a worker thread, once, whoever asks
meanwhile. A request only picks a copy: no compression per request.

- `Content-Encoding: br`, else `gzip`, as `Accept-Encoding` weighs them
  (rules/negotiation.py), when the file is of a text type that shrinks (images are
  compressed already); `Vary: Accept-Encoding` on every answer of such a file,
  compressed or not, so that no shared cache hands one coding to a client that did not
  ask for it.
- A strong `ETag` per representation (a hash of the file, and `-br` or `-gzip`): a
  matching `If-None-Match` is answered `304 Not Modified`, with no body.
- `Cache-Control: no-cache`: the browser keeps the file and asks each time whether it
  is still current, so a deploy shows at once and the ES modules of a page never mix two
  versions; the answer to the question is a 304 of a few hundred bytes.
- HEAD answers the headers of GET, with no body.

Compressed at start-up rather than as `.br`/`.gz` files beside the sources made at build
time: the project has no build step, and a file edited on disk would leave its side files
stale (the copies kept are named by content, so they cannot be). The API's JSON
is compressed per answer by web/compression.py; feed frames never are
(docs/performance.md, "Page weight and compression").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import stat
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rules.compression import CODINGS, Coding, compress, decompress
from rules.negotiation import choose_encoding, etag_matches

__all__ = ["Asset", "Assets", "Representation"]

log = logging.getLogger("streetfeed.web")

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
# Below this a member's own bytes and a lost 304's worth are not paid back.
_MIN_SAVING = 0.9

Stamp = tuple[int, int]  # (mtime_ns, size) of the file some bytes were read from


def _etag(digest: bytes, suffix: str = "") -> str:
    return f'"{base64.urlsafe_b64encode(digest[:12]).decode()}{suffix}"'


@dataclass(frozen=True, slots=True)
class Representation:
    body: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class Asset:
    stamp: Stamp
    media_type: str
    identity: Representation
    # In CODINGS' order (best first); only those that shrink the file enough, none for
    # what is not text.
    packed: dict[str, Representation]
    digest: bytes  # SHA-256 of the file: its ETags, and its compressed copies' names
    # packed's codings, as rules.negotiation.choose_encoding takes them.
    codings: tuple[str, ...]


def _packed(body: bytes, digest: bytes, coding: Coding, cache: Path | None) -> bytes:
    """`body` compressed for files, read back from `cache` when an earlier process of this
    deployment made it (named by the file's SHA-256: never stale), else made and left
    there for the next one. What is read back is checked by decompressing it (a few ms
    for every file together): a damaged entry is made again, never served."""
    name = cache / f"{digest.hex()}.{coding}" if cache is not None else None
    if name is not None:
        try:
            kept = name.read_bytes()
            if decompress(kept, coding) == body:
                return kept
        except (OSError, ValueError):
            pass  # none yet, unreadable or damaged: made again below
    out = compress(body, coding, static=True)
    if name is not None:
        try:
            name.parent.mkdir(parents=True, exist_ok=True)
            # Written whole under another name, then renamed: a process reading it meanwhile
            # sees the old entry or the new one, never half of one.
            partial = name.with_name(f"{name.name}.{os.getpid()}.{threading.get_ident()}")
            try:
                partial.write_bytes(out)
                os.replace(partial, name)
            except OSError:
                # A full disk left half-written files behind at every start (a cold
                # attacker's: 82, then 162).
                with contextlib.suppress(OSError):
                    partial.unlink(missing_ok=True)
                raise
        except OSError as exc:  # a read-only install: compressed again at each start
            log.debug("could not keep %s: %s", name, exc)
    return out


def _load(path: Path, stamp: Stamp, cache: Path | None) -> Asset:
    body = path.read_bytes()
    digest = hashlib.sha256(body).digest()
    suffix = path.suffix.lower()
    packed: dict[str, Representation] = {}
    if suffix in _COMPRESSIBLE:
        for coding in CODINGS:
            out = _packed(body, digest, coding, cache)
            if len(out) <= len(body) * _MIN_SAVING:
                packed[coding] = Representation(out, _etag(digest, f"-{coding}"))
    return Asset(stamp=stamp, media_type=_MEDIA_TYPES.get(suffix, "application/octet-stream"),
                 identity=Representation(body, _etag(digest)), packed=packed, digest=digest,
                 codings=tuple(packed))


class Assets:
    """The files under one directory, each kept in memory with its compressed copies.

    One per process (web.pages.ASSETS), shared by every app and loop of it (tests start
    many): work under way is a `concurrent.futures.Future`, which any loop or thread may
    wait on, so a file is loaded once whoever asks.
    """

    def __init__(self, root: Path, cache: Path | None = None) -> None:
        self.root = root.resolve()
        # Where compressed copies are kept between processes (None: nowhere).
        self.cache = cache
        self._kept: dict[Path, Asset] = {}
        self._loading: dict[Path, tuple[Stamp, Future[Asset]]] = {}
        self._lock = threading.Lock()

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

    def _claim(self, path: Path, stamp: Stamp) -> tuple[Future[Asset], bool]:
        """The load of this version of the file under way, or a new one (True) that the
        caller must run with `_run`."""
        with self._lock:
            loading = self._loading.get(path)
            if loading is not None and loading[0] == stamp:
                return loading[1], False
            future: Future[Asset] = Future()
            # Running: a waiter cancelled (its client gone) cannot cancel it for the others.
            future.set_running_or_notify_cancel()
            self._loading[path] = (stamp, future)
            return future, True

    def _run(self, path: Path, stamp: Stamp, future: Future[Asset]) -> None:
        """Loads the file in the calling thread (never the loop's) and settles `future`."""
        try:
            asset = _load(path, stamp, self.cache)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            self._kept[path] = asset  # before the load is forgotten: always one or the other
            future.set_result(asset)
        with self._lock:
            if self._loading.get(path, (stamp, None))[1] is future:
                del self._loading[path]

    def warm(self) -> None:
        """Loads and compresses every file not kept yet (blocking: call it in a thread),
        keeping compressed copies in the cache for the next process, and forgets there the
        copies of files no longer here. A request meanwhile for a file not reached yet
        loads that one itself, or waits for it if under way."""
        digests: set[str] = set()
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root)
            if "__pycache__" in relative.parts or relative.name.startswith("."):
                continue
            found = self._file(relative.as_posix())
            if found is None:
                continue
            stamp = (found[1].st_mtime_ns, found[1].st_size)
            kept = self._kept.get(found[0])
            if kept is None or kept.stamp != stamp:
                future, mine = self._claim(found[0], stamp)
                if mine:
                    self._run(found[0], stamp, future)
                try:
                    kept = future.result()
                except OSError as exc:  # gone since the walk: as if never there
                    log.debug("could not read %s: %s", relative, exc)
                    continue
            digests.add(kept.digest.hex())
        if self.cache is not None:
            self._forget_others(self.cache, digests)

    @staticmethod
    def _forget_others(cache: Path, digests: set[str]) -> None:
        # Copies of earlier versions of the files (a deploy, an edit) would pile up.
        try:
            entries = list(cache.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.name.partition(".")[0] not in digests:
                with contextlib.suppress(OSError):
                    entry.unlink()

    async def get(self, relative: str) -> Asset | None:
        found = self._file(relative)
        if found is None:
            return None
        path, st = found
        stamp = (st.st_mtime_ns, st.st_size)
        kept = self._kept.get(path)
        if kept is None or kept.stamp != stamp:
            future, mine = self._claim(path, stamp)
            if mine:
                await asyncio.to_thread(self._run, path, stamp, future)
            try:
                kept = await asyncio.wrap_future(future)
            except OSError:  # gone or made unreadable since the stat: as if never there
                return None
        return kept

    async def response(self, request: Request, relative: str, *, status_code: int = 200,
                       media_type: str | None = None,
                       headers: dict[str, str] | None = None) -> Response:
        """The file's answer to this request; a 404 (the API's JSON error) if none."""
        asset = await self.get(relative)
        if asset is None:
            raise HTTPException(404, "no such file")
        coding = choose_encoding(request.headers.get("accept-encoding"), asset.codings)
        chosen = asset.identity if coding is None else asset.packed[coding]
        out = {"Cache-Control": "no-cache", "ETag": chosen.etag, **(headers or {})}
        if asset.packed:
            out["Vary"] = "Accept-Encoding"
        # Only a 200 is validated: a 404 page must not turn into a 304 of something else.
        if status_code == 200 and etag_matches(request.headers.get("if-none-match"),
                                               chosen.etag):
            return Response(status_code=304, headers=out)
        if coding is not None:
            out["Content-Encoding"] = coding
        body = chosen.body
        # HEAD: the headers of GET, Content-Length included, and no body.
        if request.method == "HEAD":
            out["Content-Length"] = str(len(body))
            body = b""
        return Response(body, status_code=status_code,
                        media_type=media_type or asset.media_type, headers=out)
