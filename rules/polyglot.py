"""Files that are an image and something else at once (pure).

A polyglot is a valid JPEG/PNG/WebP that is also an HTML page, a script, a PDF or a ZIP
(a JAR): opened as the other type, by a browser that sniffs or a tool that trusts the
bytes, it runs its payload under our origin or a shopkeeper's name. The stored photo is
re-encoded and served as image/webp with nosniff, so no payload could reach a reader
anyway; the upload is still refused, so that nothing hostile is even processed, kept in
a log or a crash dump, and so that whoever sent it learns it was seen.

The signatures are long enough that the compressed data of a genuine photo cannot hold
them by chance (about one 10 MB photo in a million for the shortest), and are looked
for where the other format needs them: markup anywhere (browsers find it anywhere), a
PDF header in the first kilobyte (where readers look for it), a ZIP's end record in the
last 64 KB (where unzip looks for it).
"""

from __future__ import annotations

import re

__all__ = ["payload_kind"]

_MARKUP = re.compile(
    rb"<(?:script|iframe|object|embed|svg[\s>/]|html[\s>]|body[\s>]|\?php|!doctype\s+html)"
    rb"|javascript:", re.IGNORECASE)
_PDF = b"%PDF-"
_ZIP_END = b"PK\x05\x06"
_ZIP_END_WINDOW = 65_535 + 22  # the end record's size plus its longest comment


def payload_kind(data: bytes) -> str | None:
    """What else the bytes are ("markup", "pdf", "zip"), or None for an image alone."""
    if _MARKUP.search(data):
        return "markup"
    if _PDF in data[:1024]:
        return "pdf"
    if _ZIP_END in data[-_ZIP_END_WINDOW:]:
        return "zip"
    return None
