"""A request id for every HTTP request and WebSocket, and one access log line each.

The id comes from a well-formed `X-Request-ID` header or is made here; it is
echoed in the response and attached to every log record written meanwhile.
Paths are logged without their query string (positions live there). Feed
sockets never pass through here (feed.raw_ws answers them without ASGI) and
write the same line themselves (runtime.logs.log_access).

A client that leaves before it has been answered (mid-body, say) is nothing
this server did wrong: one access line with status 499 (nginx's "client closed
request"), no traceback, no error.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.logs import REQUEST_ID, log_access, request_id_from

__all__ = ["RequestIdMiddleware"]

log = logging.getLogger("streetfeed.access")
CLIENT_CLOSED = 499


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = request_id_from(given)
        token = REQUEST_ID.set(request_id)
        started = time.monotonic()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        method = scope.get("method", "WS")
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # Raised by starlette when the client is gone while its body is read (or,
            # ASGI 2.4, while a response is sent): nobody is left to answer.
            log.debug("client left during %s %s", method, scope["path"])
            status = status or CLIENT_CLOSED
        except Exception:
            status = status or 500  # what starlette's ServerErrorMiddleware answers next
            raise
        finally:
            log_access(method, scope["path"], status, started, request_id)
            REQUEST_ID.reset(token)
