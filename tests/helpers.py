"""Real servers and clients for end-to-end tests; conditions instead of sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from PIL import Image, ImageDraw
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rules.clock import Clock, SystemClock
from rules.moderation import Policy
from runtime.settings import Settings
from schemas.feed import FeedEntry
from schemas.presence import PresenceReport
from schemas.shops import NewShop, ShopCreated
from services.shops import create_shop, home_region
from storage import keys
from storage.vapid import load_vapid_key
from streetfeed.embedded import server_binary
from streetfeed.runner import uvicorn_config
from web.app import create_app
from web.state import AppState, state_of
from workers.enricher import Enricher
from workers.pusher import Pusher

DEFAULT_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(condition: Callable[[], bool | Awaitable[bool]],
                   timeout: float = DEFAULT_TIMEOUT, message: str = "condition") -> None:
    """Poll `condition` until true; fail after `timeout` seconds (never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.01)


async def plant_feed_entries(redis: Redis, region: str, first: int, count: int,
                             lat: float, lon: float) -> None:
    """Posts `first` .. `first + count - 1` straight into the region's feed stream at
    (lat, lon), as a day of traffic would leave them (only in the stream: the live index,
    and so a snapshot, does not have them)."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(first, first + count):
            post = {"kind": "new_arrival", "id": f"p_{i:016d}", "title": f"filler {i}",
                    "posted_at": "2026-11-26T10:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
                    "shop": {"id": "x", "name": "X", "category": "c", "lat": lat, "lon": lon}}
            pipe.xadd(keys.feed_stream(region), {"d": feed_entry(post)})
        await pipe.execute()


@dataclass
class RunningServer:
    server: uvicorn.Server
    port: int
    task: asyncio.Task[None]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def state(self) -> AppState:
        """The app's state, as the lifespan yielded it to the server."""
        return state_of(self.server.lifespan.state)

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


@contextlib.asynccontextmanager
async def web_server(settings: Settings, clock: Clock | None = None, port: int | None = None,
                     policy: Policy | None = None,
                     uvicorn_options: Mapping[str, object] | None = None,
                     ) -> AsyncIterator[RunningServer]:
    """Real uvicorn with the real app on a free port, in this event loop; `uvicorn_options`
    set public options of uvicorn.Config beyond the product's (read when it starts)."""
    port = port or free_port()
    app = create_app(settings, clock=clock, policy=policy)
    config = uvicorn_config(settings, app, port=port, log_level="warning")
    for name, value in (uvicorn_options or {}).items():
        setattr(config, name, value)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    running = RunningServer(server, port, task)
    await wait_for(lambda: server.started or task.done(), 10, "uvicorn to start")
    if task.done():
        task.result()
    try:
        yield running
    finally:
        if not task.done():
            await running.stop()


@contextlib.asynccontextmanager
async def enricher(redis: Redis, settings: Settings, clock: Clock | None = None,
                   name: str | None = None, region: str | None = None) -> AsyncIterator[Enricher]:
    worker = Enricher(redis, settings, clock or SystemClock(), Policy(), name=name, region=region)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def pusher(redis: Redis, settings: Settings,
                 clock: Clock | None = None) -> AsyncIterator[Pusher]:
    """The alerts' worker (workers/pusher.py) in this process, with the deployment's key."""
    worker = Pusher(redis, settings, clock or SystemClock(), load_vapid_key(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def add_shop(redis: Redis, settings: Settings, name: str = "Boulangerie Test",
                   lat: float = 44.8370, lon: float = -0.5735,
                   category: str = "bakery") -> ShopCreated:
    return await create_shop(redis, NewShop(name=name, category=category, lat=lat, lon=lon),
                             region=home_region(settings, lat, lon), clock=SystemClock())


def arrival(title: str = "Premières fraises", **extra: Any) -> dict[str, Any]:
    return {"kind": "new_arrival", "title": title, **extra}


def flash(title: str = "-30 % jusqu'à 18h", minutes: float = 30, **extra: Any) -> dict[str, Any]:
    ends = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"kind": "flash_offer", "title": title, "ends_at": ends.isoformat(), **extra}


def bearer(secret: str) -> dict[str, str]:
    """The headers of a request made with a bearer secret (a hold's, a token)."""
    return {"Authorization": f"Bearer {secret}"}


def auth(shop: ShopCreated) -> dict[str, str]:
    """The headers of a request made with the shop's token."""
    return bearer(shop.token)


async def send_post(http: httpx.AsyncClient, shop: ShopCreated, body: Any,
                    idempotency_key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {shop.token}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(f"/api/v1/shops/{shop.id}/posts", content=content, headers=headers)


def feed_entry(post: dict[str, Any]) -> bytes:
    """A `feed` stream entry (field `d`) carrying `post` as is, at its shop's place: a post
    planted past the API's rules."""
    shop = post["shop"]
    return msgspec.json.encode(FeedEntry(type="post", id=post["id"], kind=post["kind"],
                                         lat=shop["lat"], lon=shop["lon"],
                                         post=msgspec.Raw(msgspec.json.encode(post))))


@dataclass
class FeedClient:
    """A real WebSocket client that records every frame it receives."""

    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    task: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        try:
            async for message in self.ws:
                self.frames.append(json.loads(message))
        except ConnectionClosed:
            pass  # the close code says how
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def posts(self) -> list[dict[str, Any]]:
        return [f["post"] for f in self.frames if f["type"] == "post"]

    def post_ids(self) -> list[str]:
        return [p["id"] for p in self.posts()]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    @property
    def cursor(self) -> str | None:
        for frame in reversed(self.frames):
            if "cursor" in frame:
                return str(frame["cursor"])
        return None

    async def wait_ready(self, pings: int = 1) -> None:
        """The first ping follows the snapshot (or replay)."""
        await wait_for(lambda: len(self.of_type("ping")) >= pings or self.closed.is_set(),
                       message="snapshot end")

    async def wait_post(self, post_id: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        await wait_for(lambda: post_id in self.post_ids(), timeout, f"post {post_id}")
        return next(p for p in self.posts() if p["id"] == post_id)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await self.task


@contextlib.asynccontextmanager
async def feed_client(base: str, lat: float, lon: float, radius_m: float = 500,
                      kinds: str | None = None, cursor: str | None = None,
                      wait_ready: bool = True, **extra: str) -> AsyncIterator[FeedClient]:
    query = f"lat={lat}&lon={lon}&radius_m={radius_m}"
    if kinds is not None:
        query += f"&kinds={kinds}"
    if cursor is not None:
        query += f"&cursor={cursor}"
    for name, value in extra.items():
        query += f"&{name}={value}"
    async with connect(f"{base}/ws/feed?{query}", max_size=2**22) as ws:
        client = FeedClient(ws)
        client.task = asyncio.create_task(client._pump())
        if wait_ready:
            await client.wait_ready()
        try:
            yield client
        finally:
            await client.close()


def service_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for a `streetfeed` process in tests: our Redis, limits out of the way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETFEED_")}
    env.update({"REDIS_URL": redis_url, "STREETFEED_SHOP_POSTS_PER_MINUTE": "100000",
                "STREETFEED_ADDRESS_REQUESTS_PER_MINUTE": "1000000",
                "STREETFEED_ADDRESS_SOCKETS_PER_MINUTE": "1000000",
                "STREETFEED_MAX_SOCKETS_PER_ADDRESS": "20000", **extra})
    return env


class Service:
    """A real `streetfeed` process (web, enricher, scheduler or up), logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen([sys.executable, "-m", "streetfeed.cli", *self.args],
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_http(url: str, timeout: float = 20) -> None:
    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(url, timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False
    await wait_for(up, timeout, f"{url} to answer 200")


class ResumingClient:
    """A subscriber that reconnects by itself with its cursor, like the pages do."""

    def __init__(self, base_ws: str, lat: float, lon: float, radius_m: float) -> None:
        self.base_ws = base_ws
        self.lat, self.lon, self.radius_m = lat, lon, radius_m
        self.post_ids: list[str] = []
        self.resets = 0
        # Every `status` frame's `live`, in order.
        self.statuses: list[bool] = []
        self.cursor: str | None = None
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.connected = asyncio.Event()
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> ResumingClient:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            query = f"lat={self.lat}&lon={self.lon}&radius_m={self.radius_m}"
            if self.cursor is not None:
                query += f"&cursor={self.cursor}"
            try:
                async with connect(f"{self.base_ws}/ws/feed?{query}", open_timeout=5) as ws:
                    self.connections += 1
                    delay = 0.05
                    stopping = asyncio.create_task(self._stop.wait())
                    try:
                        while True:
                            receiving = asyncio.create_task(ws.recv())
                            done, _ = await asyncio.wait(
                                [receiving, stopping], return_when=asyncio.FIRST_COMPLETED)
                            if stopping in done:
                                receiving.cancel()
                                return
                            self._frame(json.loads(receiving.result()))
                    finally:
                        stopping.cancel()
                        self.close_codes.append(ws.close_code)
                        self.connected.clear()
            except Exception:  # any failure: reconnect, as a browser would
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, 1.0)

    def _frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "post":
            self.post_ids.append(frame["post"]["id"])
        elif kind == "reset":
            self.resets += 1
        elif kind == "ping":
            self.connected.set()
        elif kind == "status":
            self.statuses.append(frame["live"])
        if "cursor" in frame:
            self.cursor = frame["cursor"]

    async def stop(self) -> None:
        self._stop.set()
        if self.task is not None:
            await self.task


class HubSink:
    """A live socket's write end for a Hub used alone (no server): keeps what it is sent."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)

    def write_many(self, frames: list[bytes]) -> None:
        self.frames.extend(frames)

    def buffered(self) -> int:
        return 0

    def close(self, code: int, reason: str = "") -> None:
        pass

    def fast_path(self, high_water: int, on_lagging: object) -> object:
        return self.write

    def bodies(self) -> list[dict[str, Any]]:
        """Every frame received, decoded (a write may carry several: Hub.dispatch_many)."""
        out = []
        for data in self.frames:
            at = 0
            while at < len(data):  # server frames: unmasked text, FIN set
                length, at = data[at + 1], at + 2
                if length == 126:
                    length, at = int.from_bytes(data[at:at + 2], "big"), at + 2
                elif length == 127:
                    length, at = int.from_bytes(data[at:at + 8], "big"), at + 8
                out.append(json.loads(data[at:at + length]))
                at += length
        return out

    def posts(self) -> list[tuple[str, str]]:
        """(id, title) of every post frame received."""
        return [(body["post"]["id"], body["post"]["title"]) for body in self.bodies()
                if body["type"] == "post"]


def start_valkey(port: int, data: Path, appendfsync: str = "everysec",
                 ) -> subprocess.Popen[bytes]:
    """A Valkey server (the bundled binary) on 127.0.0.1:`port` with AOF in `data`, once
    it answers PING. Started before any event loop runs: a plain polling connect."""
    process = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
         "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", port), 0.2) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return process
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"valkey-server did not start (exit {process.poll()})")
        time.sleep(0.02)


class OwnRedis:
    """A Valkey server of this test alone, on a fixed port and data dir, so it can be
    killed and restarted from its AOF."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = start_valkey(self.port, self.data)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

async def gateways_watched(redis: Redis, region: str, count: int,
                           timeout: float = 10) -> set[str]:
    """Wait until `count` gateways report watchers in `region` on its presence channel
    (Pub/Sub: presence is in no key); their ids."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.presence_channel(region))
    seen: set[str] = set()

    async def enough() -> bool:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None and message["type"] == "message":
            report = msgspec.json.decode(message["data"], type=PresenceReport)
            if report.cells:
                seen.add(report.gateway)
        return len(seen) >= count
    try:
        await wait_for(enough, timeout, f"{count} gateways reporting watchers in {region}")
    finally:
        await pubsub.aclose()
    return seen


# --- Browser quality (tests/test_browser_screen.py, tests/test_browser_quality.py) ---------

# Layout shift as Lighthouse counts it: shifts without recent input, grouped in session
# windows (a gap under 1 s, at most 5 s long); the metric is the largest window.
CLS_OBSERVER = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (!e.hadRecentInput) {
      window.__shifts.push({t: e.startTime, v: e.value,
        nodes: e.sources.map((s) => s.node?.id || s.node?.className || s.node?.nodeName)});
    }
  }
}).observe({type: "layout-shift", buffered: true});
window.__cls = () => {
  let best = 0, sum = 0, first = 0, last = -Infinity;
  for (const s of window.__shifts) {
    if (s.t - last >= 1000 || s.t - first >= 5000) { sum = 0; first = s.t; }
    sum += s.v; last = s.t; best = Math.max(best, sum);
  }
  return best;
};
"""


async def throttle_like_lighthouse(page: Any) -> None:
    """Lighthouse's mobile conditions (DevTools' "slow 4G" and a 4x slower CPU): what
    arrives late on a slow link is what shifts the layout."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 562.5, "downloadThroughput": 180_000,
        "uploadThroughput": 84_375})
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})


def photo_jpeg(color: tuple[int, int, int], size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A shopkeeper's photo made here: stripes and a disc (each colour encodes to its own
    bytes, and a screenshot shows what a page crops)."""
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    for x in range(0, size[0], 80):
        draw.rectangle((x, 0, x + 16, size[1]), fill=(255 - color[0], color[1], color[2] // 2))
    r = min(size) // 3
    draw.ellipse((size[0] // 2 - r, size[1] // 2 - r, size[0] // 2 + r, size[1] // 2 + r),
                 fill=(250, 250, 240))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


async def upload_photo(http: httpx.AsyncClient, shop: ShopCreated, data: bytes) -> str:
    """Uploaded as the shop's phone does (POST /api/v1/shops/{id}/media): its media id."""
    response = await http.post(f"/api/v1/shops/{shop.id}/media", content=data, headers={
        "Authorization": f"Bearer {shop.token}", "Content-Type": "image/jpeg"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    """A DOMRect-like box within another (half a pixel of rounding allowed)."""
    return (inner["left"] >= outer["left"] - 0.5 and inner["right"] <= outer["right"] + 0.5
            and inner["top"] >= outer["top"] - 0.5 and inner["bottom"] <= outer["bottom"] + 0.5)


def apart(a: dict[str, float], b: dict[str, float]) -> bool:
    """Two DOMRect-like boxes that do not overlap."""
    return (a["right"] <= b["left"] or b["right"] <= a["left"]
            or a["bottom"] <= b["top"] or b["bottom"] <= a["top"])


async def posted(http: httpx.AsyncClient, shop: ShopCreated, body: dict[str, Any]) -> str:
    """Post through the API; the new post's id (a 202 is asserted)."""
    response = await send_post(http, shop, body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def live_post(http: httpx.AsyncClient, shop: ShopCreated, redis: Redis,
                    body: dict[str, Any]) -> str:
    """Post through the API and wait until the enricher made it live (region "main")."""
    post_id = await posted(http, shop, body)
    await wait_for(lambda: redis.exists(keys.post("main", post_id)), message="post live")
    return post_id


async def new_page(browser: Any, width: int = 390, height: int = 844,
                   lang: str | None = None) -> Any:
    """A page of `browser` at this size that records its uncaught errors (`page.errors`);
    `lang` ("fr"/"en") as a reader who chose it before."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    if lang:
        await page.add_init_script(f"localStorage.setItem('streetfeed.lang', '{lang}')")
    await page.set_viewport_size({"width": width, "height": height})
    return page


def feed_card(post_id: str) -> str:
    """The selector of a post's card in the passer-by page's list."""
    return f'#feed [data-post-id="{post_id}"]'
