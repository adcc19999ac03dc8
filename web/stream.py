"""GET /api/v1/feed/stream: the HTTP side of the feed's Server-Sent Events (feed.sse).

The query is checked and the stream admitted (origin, sockets per address, sockets a
minute: Gateway.admit, as a WebSocket handshake is) before anything is sent, so a refusal
is the contract's JSON error with its status. Then the response streams what the gateway
queues until the stream is closed (slow consumer, its longest life, the server stopping,
the client gone).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from feed.gateway import Gateway, SubscriptionError, parse_subscription, same_origin
from feed.sse import EventStream
from rules.errors import InvalidInput, Unavailable
from schemas.feed import Subscription
from web.openapi import FEED_QUERY, Operation
from web.state import state_of

__all__ = ["feed_stream"]

EVENT_STREAM = "text/event-stream"
_STREAM_PARAMETERS = (
    *FEED_QUERY,
    {"name": "Last-Event-ID", "in": "header", "required": False,
     "description": "The `id:` of the last event received: the stream resumes after it, "
                    "as the WebSocket does after its `cursor` (a `reset` and a snapshot when "
                    "it is older than what is kept)",
     "schema": {"type": "string", "maxLength": 1024}},
    {"name": "cursor", "in": "query", "required": False,
     "description": "Where to resume when there is no Last-Event-ID header (a new "
                    "EventSource cannot send one): a `cursor` from a frame or /api/v1/feed",
     "schema": {"type": "string", "maxLength": 1024}},
)


@Operation(summary="The live feed as Server-Sent Events (for clients without WebSocket)",
           media_type=EVENT_STREAM, parameters=_STREAM_PARAMETERS,
           description="Events `post`, `expired`, `withdrawn`, `reset`, `status` (and `ping`, "
                       "which also marks the end of the snapshot or replay), each with "
                       "`data:` the JSON of the WS /ws/feed frame and `id:` its cursor; "
                       "the events before that `ping` have no `id:`, so a stream cut "
                       "during its snapshot or replay resumes with all of it again")
async def feed_stream(request: Request) -> Response:
    st = state_of(request)
    try:
        sub = parse_subscription(request.query_params.multi_items())
    except SubscriptionError as exc:
        raise InvalidInput(str(exc), code=exc.code, status=400) from None
    gateway = st.gateway
    if gateway.streams.stopping:
        raise Unavailable("the server is restarting: reconnect", code="feed_unavailable",
                          retry_after=1)
    address = request.client.host if request.client else ""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    refusal = await gateway.admit(origin, host, request.url.scheme, address)
    if refusal is not None:
        raise refusal
    cursor = request.headers.get("last-event-id") or request.query_params.get("cursor")
    # An origin the allow-list names reads the stream too (CORS); our own needs nothing.
    cors = origin if origin is not None and not same_origin(origin, host,
                                                            request.url.scheme) else None
    return _EventStreamResponse(gateway, sub, cursor or None, address, cors)


class _EventStreamResponse(Response):
    """Streams the gateway's events (no Content-Length: chunked until the stream ends)."""

    def __init__(self, gateway: Gateway, sub: Subscription, cursor: str | None, address: str,
                 cors_origin: str | None) -> None:
        self.gateway = gateway
        self.sub = sub
        self.cursor = cursor
        self.address = address
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", EVENT_STREAM.encode()),
                            (b"cache-control", b"no-store"),
                            # nginx passes it on as it comes (docs/deploy.md).
                            (b"x-accel-buffering", b"no")]
        if cors_origin is not None:
            self.raw_headers += [(b"access-control-allow-origin", cors_origin.encode()),
                                 (b"vary", b"Origin")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.gateway.event_stream(self.sub, self.cursor, self.address) as stream:
            watcher = asyncio.create_task(_close_when_gone(receive, stream))
            try:
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                while (events := await stream.next_events()) is not None:
                    stream.sending = True
                    await send({"type": "http.response.body", "body": events,
                                "more_body": True})
                    stream.sending = False
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                watcher.cancel()


async def _close_when_gone(receive: Receive, stream: EventStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.close(1001, "client gone")
