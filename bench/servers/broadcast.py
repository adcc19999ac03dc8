"""Reference: the `websockets` library's own `broadcast()` to every connection.

Compression off (as in every scenario) and no keepalive pings (the ceiling has
none either); a post is one `json.dumps` and one `broadcast(connections, text)`.

    python -m bench.servers.broadcast --port P --control-port Q
"""

from __future__ import annotations

import argparse
import asyncio
import json

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.servers.common import READY_PAYLOAD, make_post, post_frame_payload, serve_control


class Fanout:
    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()

    async def handler(self, ws: ServerConnection) -> None:
        self.connections.add(ws)
        try:
            await ws.send(READY_PAYLOAD.decode())
            await ws.wait_closed()
        finally:
            self.connections.discard(ws)

    def post(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method != "POST":
            return 405, b'{"error":"method"}'
        post = make_post(json.loads(body))
        broadcast(self.connections, post_frame_payload(post).decode())
        return 202, b'{"id":"%s"}' % post["id"].encode()


async def main(host: str, port: int, control_port: int) -> None:
    fanout = Fanout()
    async with serve(fanout.handler, host, port, compression=None, ping_interval=None,
                     backlog=4096, max_queue=16) as server:
        control = await serve_control(host, control_port, fanout.post)
        print("ready", flush=True)
        async with control:
            await server.serve_forever()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.control_port))


if __name__ == "__main__":
    cli()
