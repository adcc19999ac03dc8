"""The `streetfeed` command (DESIGN.md section 8).

    streetfeed up [--port P] [--host H] [--data-dir D] [--no-demo]
    streetfeed shops add --name N --category C --lat LAT --lon LON [--address A] [--data-dir D]
    streetfeed web | enricher | scheduler [--data-dir D]     (one process kind, for the Procfile)

Every command reaches the same Redis: REDIS_URL when set, otherwise the
embedded server of the data directory, started if it is not running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec

from schemas.shops import NewShop
from streetfeed.clock import SystemClock
from streetfeed.embedded import EmbeddedServer
from streetfeed.errors import ConfigError
from streetfeed.logs import setup_logging
from streetfeed.settings import Settings, load_settings


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """Settings with a reachable redis_url; an embedded server we started is stopped after."""
    if settings.redis_url:
        yield settings
        return
    server = EmbeddedServer(settings.data_dir)
    url = server.ensure_running()
    try:
        yield settings.with_(redis_url=url)
    finally:
        server.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streetfeed", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=None,
                       help="where the embedded server keeps its data (default ./var)")

    up = sub.add_parser("up", help="run everything in the foreground until Ctrl-C")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--no-demo", action="store_true", help="no demo street, no simulator")
    data_dir(up)

    for kind in ("web", "enricher", "scheduler"):
        p = sub.add_parser(kind, help=f"run only the {kind} process kind")
        if kind == "web":
            p.add_argument("--port", type=int, default=8000)
            p.add_argument("--host", default="127.0.0.1")
        data_dir(p)

    shops = sub.add_parser("shops", help="manage shops")
    shops_sub = shops.add_subparsers(dest="shops_command", required=True)
    add = shops_sub.add_parser("add", help="register a shop; prints its id and token (once)")
    add.add_argument("--name", required=True)
    add.add_argument("--category", required=True)
    add.add_argument("--lat", type=float, required=True)
    add.add_argument("--lon", type=float, required=True)
    add.add_argument("--address", default="")
    data_dir(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, object] = {"data_dir": args.data_dir}
    if hasattr(args, "port"):
        overrides.update(port=args.port, host=args.host)
    try:
        settings = load_settings(**overrides)
        if args.command == "shops":
            return _shops_add(settings, args)
        setup_logging()
        from streetfeed.runner import default_parts, supervise

        with redis_for(settings) as ready:
            if args.command == "up":
                parts = default_parts(ready, demo=not args.no_demo)
                print(f"Streetfeed on http://{ready.host}:{ready.port}  (Ctrl-C to stop)",
                      flush=True)
            else:
                parts = default_parts(ready, web=args.command == "web",
                                      enricher=args.command == "enricher",
                                      scheduler=args.command == "scheduler")
            asyncio.run(supervise(parts))
        return 0
    except ConfigError as exc:
        print(f"streetfeed: {exc}", file=sys.stderr)
        return 2


def _shops_add(settings: Settings, args: argparse.Namespace) -> int:
    try:
        shop = msgspec.convert({"name": args.name, "category": args.category, "lat": args.lat,
                                "lon": args.lon, "address": args.address}, NewShop)
    except msgspec.ValidationError as exc:
        print(f"streetfeed: invalid shop: {exc}", file=sys.stderr)
        return 2

    async def add(ready: Settings) -> bytes:
        from streetfeed.redis_conn import open_redis
        from streetfeed.shops import create_shop

        redis = open_redis(ready)
        try:
            created = await create_shop(redis, shop, region=ready.region, clock=SystemClock())
        finally:
            await redis.aclose()
        return msgspec.json.encode(created)

    with redis_for(settings) as ready:
        print(asyncio.run(add(ready)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
