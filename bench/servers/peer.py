"""The peer: how a Python team would usually build this with python-socketio.

ASGI app under uvicorn, `socketio.AsyncRedisManager` (so several processes
could share rooms through Redis pub/sub), one room per geo cell (the same
`rules.geo.CellGrid` as Streetfeed's index). A client emits `subscribe`
{lat, lon, radius_m, kinds} and joins the room of every cell its disc covers;
a post is emitted to the room of the shop's cell, and clients keep only what is
within their exact distance and kinds. Posts arrive over HTTP on the same app
(`POST /post`). Compression is off, as in every scenario.

    python -m bench.servers.peer --port P --redis-url redis://127.0.0.1:R/0
"""

from __future__ import annotations

import argparse
import json

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.servers.common import make_post
from rules.geo import CellGrid
from runtime.settings import Settings


def create_app(redis_url: str) -> socketio.ASGIApp:
    grid = CellGrid(Settings().geo_cell_deg)
    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager,
                               cors_allowed_origins=[], logger=False, engineio_logger=False)

    @sio.on("subscribe")
    async def subscribe(sid: str, data: dict[str, object]) -> str:
        lat, lon, radius = float(data["lat"]), float(data["lon"]), float(data["radius_m"])
        for cell in grid.cells_covering(lat, lon, radius):
            await sio.enter_room(sid, str(cell))
        return "ok"

    async def post(request: Request) -> Response:
        body = json.loads(await request.body())
        data = make_post(body)
        shop = data["shop"]
        await sio.emit("post", data, room=str(grid.cell_of(shop["lat"], shop["lon"])))
        return Response(json.dumps({"id": data["id"]}), status_code=202,
                        media_type="application/json")

    web = Starlette(routes=[Route("/post", post, methods=["POST"])])
    return socketio.ASGIApp(sio, other_asgi_app=web)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    config = uvicorn.Config(create_app(args.redis_url), host=args.host, port=args.port,
                            backlog=4096, ws_per_message_deflate=False, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print("ready", flush=True)  # the harness also waits for the port to answer
    server.run()


if __name__ == "__main__":
    cli()
