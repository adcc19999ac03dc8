"""What the reference servers share: the post they send and a tiny HTTP control endpoint.

The harness posts to every server over HTTP (`POST /post`, JSON body with the
shop and the post's fields); the server stamps the accept time (`posted_at`,
RFC 3339 with microseconds, like Streetfeed's) and a post id, and sends a post
shaped like Streetfeed's (same fields, about the same size) to its sockets.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

# A JSON text frame sent once a socket is registered: the load generator's "subscribed".
READY_PAYLOAD = b'{"type":"ping","cursor":"0-0"}'

_cursor = 0


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_post(body: dict[str, Any]) -> dict[str, Any]:
    """The post as a client gets it, stamped now (the accept time)."""
    now = datetime.now(UTC)
    post: dict[str, Any] = {"kind": body["kind"], "id": "p_" + secrets.token_hex(8),
                            "title": body["title"], "text": "", "posted_at": _rfc3339(now),
                            "expires_at": _rfc3339(now + timedelta(hours=8)),
                            "shop": body["shop"]}
    for name in ("price", "tags", "ends_at", "discount_pct", "status"):
        if name in body:
            post[name] = body[name]
    return post


def post_frame_payload(post: dict[str, Any]) -> bytes:
    global _cursor
    _cursor += 1
    frame = {"type": "post", "post": post, "cursor": f"{_cursor}-0"}
    return json.dumps(frame, separators=(",", ":")).encode()


Handler = Callable[[str, str, bytes], tuple[int, bytes]]


class ControlProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 with keep-alive: enough for the harness's POSTs, nothing more."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            status, payload = self.handle(method, path, body)
            self.transport.write(
                b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                % (status, len(payload)) + payload)


async def serve_control(host: str, port: int, handle: Handler) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: ControlProtocol(handle), host, port, backlog=128)
