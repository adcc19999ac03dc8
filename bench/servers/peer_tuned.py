"""The tuned peer: python-socketio as a strong team would build this feed.

What differs from `peer.py` (the usual way), and why:

- rooms keyed by (geo cell, kind) at a cell size chosen on the benchmark's city
  (`python -m bench.peer_cells`: 0.002°, about 220 m): a post is written to 1.63
  sockets per one that wants it, against 2.69 with rooms of 0.005° cells and no kind;
- `socketio.AsyncManager`, the in-memory manager: one process, no Redis pub/sub hop
  on every emit;
- WebSocket transport only (no long-polling, hence no upgrade), no HTTP compression;
  per-message compression off (uvicorn), as in every scenario.

A client emits `subscribe` {lat, lon, radius_m, kinds} and joins the room of every
(cell, kind) its disc covers for the kinds it wants (every kind when `kinds` is null);
a post is emitted to the room of its shop's cell and its kind, and clients still keep
only what is within their exact distance. Posts arrive over HTTP on the same app
(`POST /post`).

    python -m bench.servers.peer_tuned --port P [--cell-deg 0.002]
"""

from __future__ import annotations

import argparse
import json
import os
from types import FrameType

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.city import KINDS
from bench.servers.common import make_post
from rules.geo import CellGrid

# Chosen with `python -m bench.peer_cells` (docs/performance.md, "The tuned peer").
CELL_DEG = 0.002


def room(cell: int, kind: str) -> str:
    return f"{cell}:{kind}"


def create_app(cell_deg: float = CELL_DEG) -> socketio.ASGIApp:
    grid = CellGrid(cell_deg)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=socketio.AsyncManager(),
                               transports=["websocket"], allow_upgrades=False,
                               http_compression=False, cors_allowed_origins=[],
                               logger=False, engineio_logger=False)

    @sio.on("subscribe")
    async def subscribe(sid: str, data: dict[str, object]) -> str:
        lat, lon, radius = float(data["lat"]), float(data["lon"]), float(data["radius_m"])
        kinds = data.get("kinds") or KINDS
        assert isinstance(kinds, list | tuple)
        for cell in grid.cells_covering(lat, lon, radius):
            for kind in kinds:
                await sio.enter_room(sid, room(cell, str(kind)))
        return "ok"

    async def post(request: Request) -> Response:
        body = json.loads(await request.body())
        data = make_post(body)
        shop = data["shop"]
        await sio.emit("post", data, room=room(grid.cell_of(shop["lat"], shop["lon"]),
                                               data["kind"]))
        return Response(json.dumps({"id": data["id"]}), status_code=202,
                        media_type="application/json")

    web = Starlette(routes=[Route("/post", post, methods=["POST"])])
    return socketio.ASGIApp(sio, other_asgi_app=web)


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # python-socketio's disconnect scans every room of the namespace (one per socket,
        # plus the (cell, kind) rooms) for each socket: a graceful stop after the run is
        # O(N x rooms), 6 s of CPU at N = 1,000 and minutes at 10,000, and would perturb
        # the next scenario. The measurement is over and nothing is kept: exit at once.
        os._exit(0)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cell-deg", type=float, default=CELL_DEG)
    args = parser.parse_args()
    config = uvicorn.Config(create_app(args.cell_deg), host=args.host, port=args.port,
                            backlog=4096, ws_per_message_deflate=False, log_level="warning",
                            access_log=False, lifespan="off")
    server = _Server(config)
    print("ready", flush=True)  # the harness also waits for the port to answer
    server.run()


if __name__ == "__main__":
    cli()
