"""Real servers and clients for end-to-end tests; conditions instead of sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from schemas.shops import NewShop, ShopCreated
from streetfeed.clock import Clock, SystemClock
from streetfeed.moderation import Policy
from streetfeed.runner import uvicorn_config
from streetfeed.settings import Settings
from streetfeed.shops import create_shop
from web.app import create_app
from workers.enricher import Enricher

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
    def state(self) -> Any:
        return self.server.config.loaded_app.app.state.streetfeed  # type: ignore[union-attr]

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


@contextlib.asynccontextmanager
async def web_server(settings: Settings, clock: Clock | None = None, port: int | None = None,
                     policy: Policy | None = None) -> AsyncIterator[RunningServer]:
    """Real uvicorn with the real app on a free port, in this event loop."""
    port = port or free_port()
    app = create_app(settings, clock=clock, policy=policy)
    config = uvicorn_config(settings, app, port=port, log_level="warning")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    running = RunningServer(server, port, task)
    await wait_for(lambda: server.started or task.done(), 10, "uvicorn to start")
    if task.done():
        task.result()
    await wait_for(lambda: running.state.hub.position is not None, 10, "feed reader position")
    try:
        yield running
    finally:
        if not task.done():
            await running.stop()


@contextlib.asynccontextmanager
async def enricher(redis: Redis, settings: Settings, clock: Clock | None = None,
                   name: str | None = None) -> AsyncIterator[Enricher]:
    worker = Enricher(redis, settings, clock or SystemClock(), Policy(), name=name)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def add_shop(redis: Redis, settings: Settings, name: str = "Boulangerie Test",
                   lat: float = 44.8370, lon: float = -0.5735,
                   category: str = "boulangerie") -> ShopCreated:
    return await create_shop(redis, NewShop(name=name, category=category, lat=lat, lon=lon),
                             region=settings.region, clock=SystemClock())


def arrival(title: str = "Premières fraises", **extra: Any) -> dict[str, Any]:
    return {"kind": "new_arrival", "title": title, **extra}


def flash(title: str = "-30 % jusqu'à 18h", minutes: float = 30, **extra: Any) -> dict[str, Any]:
    ends = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"kind": "flash_offer", "title": title, "ends_at": ends.isoformat(), **extra}


async def send_post(http: httpx.AsyncClient, shop: ShopCreated, body: Any,
                    idempotency_key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {shop.token}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(f"/api/v1/shops/{shop.id}/posts", content=content, headers=headers)


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
        except Exception:
            pass
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
