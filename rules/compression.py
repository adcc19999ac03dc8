"""How bytes are compressed for HTTP (pure: bytes in, bytes out; docs/performance.md,
"Page weight and compression").

Two uses, two trade-offs:
- Files (pages, web/static) are compressed once a process, before they are asked for,
  and sent many times: the smallest output is worth a second of CPU (brotli q11, gzip -9;
  ~1.4 s of one core for the 41 text files, once an install: web/assets.py).
- The API's JSON is made per request on the loop that writes feed frames: the fastest
  levels that still take ~65-75 % off (brotli q2, gzip -1: ~15-20 µs for 2-3 KB, where
  q11 or -9 would take milliseconds for a few percent more), and never below
  DYNAMIC_MIN_BYTES (a few hundred bytes saved do not pay for the work, and fit a packet
  anyway).

The gzip members carry no name and mtime 0: the same bytes in, the same bytes out, so a
file's ETag outlives a restart.
"""

from __future__ import annotations

import zlib
from typing import Literal

import brotli

__all__ = ["CODINGS", "DYNAMIC_MIN_BYTES", "DYNAMIC_OFFLOAD_BYTES", "Coding", "compress",
           "decompress"]

Coding = Literal["br", "gzip"]
# Ours, best first: what negotiation (rules/negotiation.py) offers.
CODINGS: tuple[Coding, ...] = ("br", "gzip")

_STATIC_BROTLI_QUALITY = 11
_STATIC_GZIP_LEVEL = 9
_DYNAMIC_BROTLI_QUALITY = 2
_DYNAMIC_GZIP_LEVEL = 1
# An API answer shorter than this goes as it is.
DYNAMIC_MIN_BYTES = 1024
# Above this an API answer is compressed in a worker thread (zlib and brotli release the
# GIL): ~3 µs per KiB at the levels above, so ~50 µs here, where the hop to a thread and
# back costs ~150 µs of CPU for both threads; above it the loop is held long enough
# (a 150 KB snapshot: ~450 µs) for the hop to pay.
DYNAMIC_OFFLOAD_BYTES = 16 * 1024
# wbits for a gzip member (header and CRC-32 trailer) rather than a raw zlib stream.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def compress(body: bytes, coding: Coding, *, static: bool) -> bytes:
    """`body` in `coding`: at the best levels for a file (`static`), the fastest useful
    ones for an answer made per request."""
    if coding == "br":
        quality = _STATIC_BROTLI_QUALITY if static else _DYNAMIC_BROTLI_QUALITY
        return brotli.compress(body, quality=quality)
    level = _STATIC_GZIP_LEVEL if static else _DYNAMIC_GZIP_LEVEL
    return zlib.compress(body, level, wbits=_GZIP_WBITS)


def decompress(body: bytes, coding: Coding) -> bytes:
    """The bytes `compress` was given; ValueError when `body` is not `coding`'s."""
    try:
        if coding == "br":
            out: bytes = brotli.decompress(body)
            return out
        return zlib.decompress(body, wbits=_GZIP_WBITS)
    except (brotli.error, zlib.error) as exc:
        raise ValueError(f"not {coding}: {exc}") from None
