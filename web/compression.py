"""The API's JSON answers, compressed per request, for the routes allowed to be.

Which routes: only those whose endpoint the route table (web/app.py) wraps in
`compressed(...)`, an explicit allow-list in one place. Everything else goes as it is,
whatever the client accepts, and must stay so:

- Answers that carry a secret (a hold's `secret` and its code, a shop token, a push
  subscription's secret, a sign-in link, a session's profile) next to text a client chose:
  the shape a BREACH-style attack needs (it reads the secret from the compressed size of
  answers in which it planted guesses). tests/test_compression.py checks that no route
  whose answer's schema names a secret is allowed, and asks each such route with
  `Accept-Encoding: br, gzip` over real HTTP.
- Streams (`GET /api/v1/feed/stream`): a compressor would hold events back until its
  buffer fills. An allowed route that streams anyway (`more_body`) goes as it is: this
  layer never buffers a stream.
- Feed sockets never pass through ASGI (feed/raw_ws.py) and negotiate no
  permessage-deflate: one frame is encoded once for every socket it goes to, which a
  compressor per socket would undo (docs/performance.md).

An allowed answer is compressed when it is JSON of at least DYNAMIC_MIN_BYTES and the
client accepts br or gzip (rules/negotiation.py), at the fast levels of
rules/compression.py, in a worker thread above DYNAMIC_OFFLOAD_BYTES; every answer of an
allowed route says `Vary: Accept-Encoding`, compressed or not, since the next one may be.
A pure ASGI middleware rather than starlette's GZipMiddleware: that one compresses every
route (secrets included), offers no brotli, and buffers streaming answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, TypeVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rules.compression import (
    CODINGS,
    DYNAMIC_MIN_BYTES,
    DYNAMIC_OFFLOAD_BYTES,
    Coding,
    compress,
)
from rules.negotiation import choose_encoding

__all__ = ["CompressJSON", "compressed", "is_compressed"]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

_ATTRIBUTE: Final = "__streetfeed_compressed__"


def compressed(endpoint: Endpoint) -> Endpoint:
    """Marks an endpoint whose JSON may be compressed (see the module's docstring for
    what may never be)."""
    setattr(endpoint, _ATTRIBUTE, True)
    return endpoint


def is_compressed(endpoint: object) -> bool:
    return getattr(endpoint, _ATTRIBUTE, False) is True


def _is_json(media_type: str) -> bool:
    essence = media_type.partition(";")[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


class CompressJSON:
    """Compresses the answers of `compressed` endpoints; must sit inside every middleware
    that copies the scope (web.forwarded), as it reads the endpoint the router put there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None

        async def send_compressed(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                # The router has put the matched endpoint in the scope by now.
                if is_compressed(scope.get("endpoint")):
                    start = message  # held until the body says how large it is
                    return
            elif message["type"] == "http.response.body" and start is not None:
                held, start = start, None
                await self._answer(scope, held, message, send)
                return
            await send(message)

        await self.app(scope, receive, send_compressed)

    @staticmethod
    async def _answer(scope: Scope, start: Message, body_message: Message,
                      send: Send) -> None:
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        vary = headers.get("vary")
        if vary is None:
            headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            headers["Vary"] = f"{vary}, Accept-Encoding"
        body: bytes = body_message.get("body", b"")
        coding: Coding | None = None
        if (not body_message.get("more_body", False) and len(body) >= DYNAMIC_MIN_BYTES
                and "content-encoding" not in headers
                and _is_json(headers.get("content-type", ""))):
            coding = choose_encoding(Headers(scope=scope).get("accept-encoding"), CODINGS)
        if coding is not None:
            if len(body) > DYNAMIC_OFFLOAD_BYTES:
                body = await asyncio.to_thread(compress, body, coding, static=False)
            else:
                body = compress(body, coding, static=False)
            headers["Content-Encoding"] = coding
            headers["Content-Length"] = str(len(body))
            body_message = {**body_message, "body": body}
        await send({**start, "headers": headers.raw})
        await send(body_message)
