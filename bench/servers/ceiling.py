"""The ceiling: a bare asyncio WebSocket server, one pre-encoded frame per post per transport.

No filtering, no Redis, no per-socket encoding, no framework: the handshake is
parsed by hand, and a post is one `json.dumps` plus one `transport.write` of
the same bytes to every socket. What asyncio itself costs per delivery, the
most one Python process can push on this machine.

    python -m bench.servers.ceiling --port P --control-port Q
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json

from bench.servers.common import (
    READY_PAYLOAD,
    make_post,
    post_frame_payload,
    serve_control,
)
from feed.frames import ws_text_frame

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_READY = ws_text_frame(READY_PAYLOAD)
_CLOSE = b"\x88\x02\x03\xe8"  # close frame, code 1000


class Fanout:
    def __init__(self) -> None:
        self.transports: set[asyncio.Transport] = set()

    def post(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method != "POST":
            return 405, b'{"error":"method"}'
        post = make_post(json.loads(body))
        frame = ws_text_frame(post_frame_payload(post))
        for transport in self.transports:
            transport.write(frame)
        return 202, b'{"id":"%s"}' % post["id"].encode()


class WsProtocol(asyncio.Protocol):
    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if self.upgraded:
            # Clients send nothing but a close frame (opcode 8): answer it and hang up.
            if data and data[0] & 0x0F == 0x8:
                self.fanout.transports.discard(transport)
                transport.write(_CLOSE)
                transport.close()
            return
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 8192:
                transport.close()
            return
        key = b""
        for line in self.buf[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if not key:
            transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            transport.close()
            return
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.upgraded = True
        self.buf = b""
        self.fanout.transports.add(transport)
        transport.write(_READY)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.fanout.transports.discard(self.transport)


async def main(host: str, port: int, control_port: int) -> None:
    loop = asyncio.get_running_loop()
    fanout = Fanout()
    server = await loop.create_server(lambda: WsProtocol(fanout), host, port, backlog=4096)
    control = await serve_control(host, control_port, fanout.post)
    print("ready", flush=True)
    async with server, control:
        await asyncio.Future()  # until killed


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.control_port))


if __name__ == "__main__":
    cli()
