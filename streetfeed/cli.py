"""The `streetfeed` command (DESIGN.md section 8).

    streetfeed up [--port P] [--host H] [--data-dir D] [--no-demo] [--workers N]
    streetfeed shops add --name N --category C --lat LAT --lon LON [--address A] [--data-dir D]
    streetfeed shops list | update ID [--name ...] | disable ID | enable ID | rotate-token ID
    streetfeed shops link ID [--base-url URL]   (a one-time console sign-in link and its QR)
    streetfeed shops categories        (the codes --category takes, with their labels)
    streetfeed shops hours ID [--weekly 'mon-fri 09:00-19:00; sat 09:00-13:00']
                              [--closed YYYY-MM-DD]... [--open 'YYYY-MM-DD 10:00-22:00']...
                              [--timezone Europe/Paris] [--clear]
    streetfeed web [--workers N] | enricher | scheduler | pusher [--data-dir D]
                                       (one process kind)

Every command reaches the same Redis: REDIS_URL when set, otherwise the
embedded server of the data directory, started if it is not running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec

from rules.clock import SystemClock
from rules.errors import ConfigError
from runtime.logs import setup_logging
from runtime.processes import die_with_parent_from_env
from runtime.settings import Settings, load_settings
from schemas.categories import CATEGORIES
from schemas.hours import ShopHours
from schemas.shops import NewShop, ShopProfile, ShopRecord, ShopUpdate
from streetfeed.embedded import EmbeddedServer

if TYPE_CHECKING:
    from services.signin import NewLink

__all__ = ["main"]


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[tuple[Settings, EmbeddedServer | None]]:
    """Settings with a reachable redis_url, and the embedded server if this command started
    it (stopped after)."""
    if settings.redis_url or settings.redis_cluster_url:
        yield settings, None
        return
    server = EmbeddedServer(settings.data_dir, settings.redis_server)
    url = server.ensure_running()
    try:
        yield settings.with_(redis_url=url), server if server.started_here else None
    finally:
        server.stop()


@contextlib.contextmanager
def metrics_shared(shared: bool) -> Iterator[None]:
    """For a run of several processes, one fresh PROMETHEUS_MULTIPROC_DIR, set before
    prometheus_client is first imported (it reads the variable then), so that the
    children and this process share their metrics (runtime.metrics); removed at exit."""
    if not shared:
        yield
        return
    previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    _remove_orphan_metrics_dirs()
    path = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if previous is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous


_METRICS_PREFIX = "streetfeed-metrics-"


def _remove_orphan_metrics_dirs() -> None:
    """The metrics directories of runs that were killed (kill -9 leaves them behind): each
    is named after the pid of its run, which is gone."""
    for path in Path(tempfile.gettempdir()).glob(f"{_METRICS_PREFIX}*-*"):
        pid = path.name.removeprefix(_METRICS_PREFIX).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


_CATEGORY_HELP = ("a category code (`streetfeed shops categories` lists them), or its French "
                  "or English label")


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
    up.add_argument("--workers", type=int, default=1,
                    help="web/gateway processes sharing the port (default 1)")
    data_dir(up)

    for kind in ("web", "enricher", "scheduler", "pusher"):
        p = sub.add_parser(kind, help=f"run only the {kind} process kind")
        if kind == "web":
            p.add_argument("--port", type=int, default=8000)
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--workers", type=int, default=1,
                           help="processes sharing the port (default 1)")
            # Internal: bind with SO_REUSEPORT (set for each of --workers' processes).
            p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
        data_dir(p)

    shops = sub.add_parser("shops", help="manage shops")
    shops_sub = shops.add_subparsers(dest="shops_command", required=True)
    add = shops_sub.add_parser("add", help="register a shop; prints its id and token (once)")
    add.add_argument("--name", required=True)
    add.add_argument("--category", required=True, help=_CATEGORY_HELP)
    add.add_argument("--lat", type=float, required=True)
    add.add_argument("--lon", type=float, required=True)
    add.add_argument("--address", default="")
    data_dir(add)
    data_dir(shops_sub.add_parser("list", help="every shop, one JSON object per line"))
    shops_sub.add_parser("categories", help="the category codes, one JSON object per line")
    update = shops_sub.add_parser("update", help="change a shop's details")
    update.add_argument("shop_id")
    update.add_argument("--name")
    update.add_argument("--category", help=_CATEGORY_HELP)
    update.add_argument("--address")
    update.add_argument("--lat", type=float)
    update.add_argument("--lon", type=float)
    data_dir(update)
    for name, text in (("disable", "take a shop and its live posts off the street"),
                       ("enable", "let a disabled shop post again"),
                       ("rotate-token", "new token; the old one stops working at once")):
        p = shops_sub.add_parser(name, help=text)
        p.add_argument("shop_id")
        data_dir(p)
    link = shops_sub.add_parser("link", help="a one-time sign-in link to the shop's console "
                                "and its QR code (works once, within 24 h)")
    link.add_argument("shop_id")
    link.add_argument("--base-url", default=None, metavar="URL",
                      help="where the shopkeeper reaches this deployment, https://host[:port] "
                           "(default STREETFEED_PUBLIC_URL, else http://127.0.0.1:8000)")
    data_dir(link)
    hours = shops_sub.add_parser("hours", help="show or set opening hours")
    hours.add_argument("shop_id")
    hours.add_argument("--weekly", help="e.g. 'tue-sat 07:00-13:00,15:30-19:30; sun closed'")
    hours.add_argument("--closed", action="append", default=[], metavar="DATE",
                       help="an exceptional closure (repeatable)")
    hours.add_argument("--open", action="append", default=[], metavar="'DATE HH:MM-HH:MM'",
                       help="exceptional hours for a date (repeatable)")
    hours.add_argument("--timezone")
    hours.add_argument("--clear", action="store_true", help="forget the shop's hours")
    data_dir(hours)
    return parser


# Written by a running `up`/`web` in its data dir: the address it serves, so that `shops
# link` (without --base-url or STREETFEED_PUBLIC_URL) names the port really in use.
SERVED_URL_FILE = "served-url"


def _write_served_url(settings: Settings) -> None:
    path = Path(settings.data_dir) / SERVED_URL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.public_base_url + "\n", encoding="utf-8")


def _served_url(data_dir: Path) -> str | None:
    try:
        return (data_dir / SERVED_URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


UP_LOCK_FILE = "up.lock"


@contextlib.contextmanager
def _sole_up(data_dir: Path) -> Iterator[None]:
    """Hold the data dir for one `up` at a time, from before anything is started: a second
    one beside it (same data dir) seeded the demo again, rotating every demo shop's token
    under the running service, and took its `served-url` away on the way out (a cold try).
    The kernel drops the lock with the process, however it ends (kill -9 included)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / UP_LOCK_FILE, "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another `streetfeed up` is running with the data dir "
                              f"{data_dir}: stop it first, or give this one its own "
                              "--data-dir") from None
        yield


def main(argv: list[str] | None = None) -> int:
    die_with_parent_from_env()
    args = _parser().parse_args(argv)
    if args.command == "shops" and args.shops_command == "categories":  # no Redis needed
        for category in CATEGORIES:
            print(msgspec.json.encode(category).decode())
        return 0
    overrides: dict[str, object] = {"data_dir": args.data_dir}
    if hasattr(args, "port"):
        overrides.update(port=args.port, host=args.host)
    if getattr(args, "base_url", None):
        overrides["public_url"] = args.base_url  # checked as STREETFEED_PUBLIC_URL is
    try:
        settings = load_settings(None, **overrides)
        if (args.command == "shops" and args.shops_command == "link"
                and settings.public_url is None):
            served = _served_url(Path(settings.data_dir))
            if served is not None:  # the address a running `up`/`web` listens on
                settings = load_settings(None, **overrides, public_url=served)
        if args.command == "shops":
            if args.shops_command == "add":
                return _shops_add(settings, args)
            return _shops_manage(settings, args)
        setup_logging(fmt=settings.log_format)
        with (_sole_up(Path(settings.data_dir)) if args.command == "up"
              else contextlib.nullcontext()):
            return _run(args, settings)
    except ConfigError as exc:
        print(f"streetfeed: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    # `up` runs children (the enricher, the scheduler), `--workers` several web processes:
    # their metrics are shared (set before anything imports prometheus_client).
    shared = args.command == "up" or getattr(args, "workers", 1) > 1
    with metrics_shared(shared), redis_for(settings) as (ready, server):
        from streetfeed.runner import default_parts, embedded_server_part, supervise

        if args.command == "up":
            parts = default_parts(ready, demo=not args.no_demo, workers=args.workers,
                                  children=True)
            print(f"Streetfeed on http://{ready.host}:{ready.port}  (Ctrl-C to stop)",
                  flush=True)
        else:
            parts = default_parts(ready, web=args.command == "web",
                                  enricher=args.command == "enricher",
                                  scheduler=args.command == "scheduler",
                                  pusher=args.command == "pusher",
                                  workers=getattr(args, "workers", 1),
                                  reuse_port=getattr(args, "reuse_port", False))
        if server is not None:
            # The server we started is ours to keep alive (and to stop last, on exit).
            parts["redis"] = embedded_server_part(server)
        serving = args.command in ("up", "web")
        if serving:
            _write_served_url(ready)
        try:
            asyncio.run(supervise(parts))
        finally:
            if serving:
                (Path(ready.data_dir) / SERVED_URL_FILE).unlink(missing_ok=True)
    return 0


def _shops_add(settings: Settings, args: argparse.Namespace) -> int:
    try:
        shop = msgspec.convert({"name": args.name, "category": args.category, "lat": args.lat,
                                "lon": args.lon, "address": args.address}, NewShop)
    except msgspec.ValidationError as exc:
        print(f"streetfeed: invalid shop: {exc}", file=sys.stderr)
        return 2

    async def add(ready: Settings) -> bytes:
        from services.shops import create_shop, home_region
        from storage.redis_conn import open_redis

        redis = open_redis(ready)
        try:
            created = await create_shop(redis, shop, region=home_region(ready, shop.lat, shop.lon),
                                        clock=SystemClock(), policy=ready.moderation_policy())
        finally:
            await redis.aclose()
        return msgspec.json.encode(created)

    from rules.errors import ApiError

    try:
        with redis_for(settings) as (ready, _server):
            print(asyncio.run(add(ready)).decode())
    except ApiError as exc:  # refused by the content policy, or outside every region
        print(f"streetfeed: invalid shop: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    return 0


def _shops_manage(settings: Settings, args: argparse.Namespace) -> int:
    from rules.errors import ApiError
    from rules.shops import profile_of
    from services import shops as shop_changes
    from storage import openings, shops
    from storage.redis_conn import open_redis

    clock = SystemClock()
    out: list[bytes] = []

    async def run(ready: Settings) -> None:
        redis = open_redis(ready)
        record: ShopRecord | None

        async def profile(record: ShopRecord) -> ShopProfile:
            # Open or closed as the API says it: the shop's own opening posts count.
            return profile_of(record, clock,
                              await openings.of_shop(redis, record.region, record.id))

        try:
            command = args.shops_command
            if command == "list":
                for record in await shops.list_shops(redis, include_disabled=True):
                    out.append(msgspec.json.encode({**msgspec.structs.asdict(
                        await profile(record)), "disabled": record.disabled}))
            elif command == "update":
                fields = {k: getattr(args, k) for k in ("name", "category", "address", "lat",
                                                        "lon") if getattr(args, k) is not None}
                update = msgspec.convert(fields, ShopUpdate)
                record = await shop_changes.update_shop(redis, args.shop_id, update, clock, ready)
                out.append(msgspec.json.encode(await profile(record)))
            elif command in ("disable", "enable"):
                withdrawn = await shop_changes.set_disabled(
                    redis, args.shop_id, command == "disable", clock, ready)
                out.append(msgspec.json.encode({"id": args.shop_id,
                                                "disabled": command == "disable",
                                                "withdrawn_posts": withdrawn}))
            elif command == "rotate-token":
                token = await shops.rotate_token(redis, args.shop_id, clock)
                out.append(msgspec.json.encode({"id": args.shop_id, "token": token}))
            elif command == "link":
                from services.signin import make_link

                link = await make_link(redis, args.shop_id, ready.public_base_url, clock)
                out.append(_link_text(link, ready.timezone).encode())
            elif command == "hours":
                record = await shops.get_shop(redis, args.shop_id)
                if record is None:
                    raise ApiError(f"no shop with id {args.shop_id!r}")
                changed = args.weekly or args.closed or args.open or args.timezone or args.clear
                if changed:
                    hours = None if args.clear else _hours_from_args(
                        record.hours or ShopHours(timezone=ready.timezone), args)
                    record = await shop_changes.set_hours(redis, args.shop_id, hours, clock)
                out.append(msgspec.json.encode({
                    "id": record.id, "hours": record.hours,
                    **msgspec.structs.asdict(await profile(record)),
                }))
        finally:
            await redis.aclose()

    try:
        with redis_for(settings) as (ready, _server):
            asyncio.run(run(ready))
    except (msgspec.ValidationError, ValueError) as exc:
        print(f"streetfeed: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"streetfeed: {exc.message}", file=sys.stderr)
        return 1
    for line in out:
        print(line.decode())
    return 0


def _link_text(link: NewLink, timezone: str) -> str:
    """A sign-in link as the operator hands it over: the link, its QR for a phone to scan
    off the terminal, and until when it works."""
    import segno

    qr = io.StringIO()
    segno.make(link.url, error="m").terminal(out=qr, compact=True, border=2)
    until = link.expires_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    return (f"Sign-in link to the console of {link.shop.name} ({link.shop.id}), valid once, "
            f"until {until} ({timezone}):\n{link.url}\n\n{qr.getvalue()}\n"
            "Open it, or scan the QR code, on the shopkeeper's phone or computer. Whoever "
            "has it can sign in as the shop until it is used: hand it over privately.")


def _hours_from_args(current: ShopHours, args: argparse.Namespace) -> ShopHours:
    from rules.hours import parse_ranges, parse_weekly

    data = msgspec.to_builtins(current)
    if args.weekly:
        data["weekly"] = msgspec.to_builtins(parse_weekly(args.weekly))
    if args.timezone:
        data["timezone"] = args.timezone
    exceptions = {e["date"]: e for e in data.get("exceptions", [])}
    given = [*args.closed, *(spec.partition(" ")[0] for spec in args.open)]
    twice = sorted({day for day in given if given.count(day) > 1})
    if twice:  # one command, two answers for a date: neither may silently win
        from rules.errors import InvalidInput
        raise InvalidInput(f"{', '.join(twice)} given more than once (--closed, --open): "
                           "give each date once", code="duplicate_exception_date")
    for day in args.closed:
        exceptions[day] = {"date": day, "ranges": []}
    for spec in args.open:
        day, _, ranges = spec.partition(" ")
        exceptions[day] = {"date": day, "ranges": msgspec.to_builtins(parse_ranges(ranges))}
    data["exceptions"] = sorted(exceptions.values(), key=lambda e: e["date"])
    hours = msgspec.convert(data, ShopHours)
    from rules.shops import validate_hours
    validate_hours(hours)
    return hours


if __name__ == "__main__":
    sys.exit(main())
