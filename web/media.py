"""GET /media/<id>/<width>.webp: a stored photo variant (DESIGN.md section 9 "Photos").

Content-addressed, so each URL's bytes never change: browsers and any cache in between
keep it for a year without asking again, and a revalidation is a 304 (once the photo is
known to be still there). The bytes are streamed from the store in pieces (files read in
a thread, or an S3 object read as it arrives): one big photo never holds the loop or the
memory.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from rules.errors import NotFound
from rules.negotiation import etag_matches
from storage.media import is_media_id
from web.state import state_of

__all__ = ["IMMUTABLE", "serve_media"]

_NAME = re.compile(r"([1-9][0-9]{0,4})\.webp")
IMMUTABLE = "public, max-age=31536000, immutable"


def _not_found() -> NotFound:
    return NotFound("no such photo", code="unknown_media")


async def serve_media(request: Request) -> Response:
    media_id = request.path_params["media_id"]
    # fullmatch: `$` would also match before a final newline ("400.webp\n").
    name = _NAME.fullmatch(request.path_params["name"])
    if not is_media_id(media_id) or name is None:
        raise _not_found()
    width = int(name.group(1))
    etag = f'"{media_id}-{width}"'
    # X-Content-Type-Options: nosniff comes with every answer (web.pages.SecurityHeaders).
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    # Looked up before any 304: a photo swept (or never stored) is 404, not "unchanged",
    # and `If-None-Match: *` matches only what exists (RFC 9110 13.1.2).
    blob = await state_of(request).media.open(media_id, width)
    if blob is None:
        raise _not_found()
    if etag_matches(request.headers.get("if-none-match"), etag):
        await blob.chunks.aclose()
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(blob.size)
    if request.method == "HEAD":
        await blob.chunks.aclose()
        return Response(status_code=200, headers=headers, media_type="image/webp")
    return StreamingResponse(blob.chunks, headers=headers, media_type="image/webp")
