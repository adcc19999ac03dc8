"""A request id for every HTTP request and WebSocket, and one access log line each.

The id comes from a well-formed `X-Request-ID` header or is made here; it is
echoed in the response and attached to every log record written meanwhile.
Paths are logged without their query string (positions live there).
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streetfeed.logs import REQUEST_ID

log = logging.getLogger("streetfeed.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_ID.match(given) else secrets.token_hex(8)
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

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info("%s %s %s", scope.get("method", "WS"), scope["path"], status,
                     extra={"method": scope.get("method", "WS"), "path": scope["path"],
                            "status": status,
                            "duration_ms": round((time.monotonic() - started) * 1000, 1)})
            REQUEST_ID.reset(token)
