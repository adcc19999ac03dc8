"""The busy phase of the streetfeed scenario: the fan-out with consoles and screens about.

A street's gateway does not only fan posts out: shopkeepers keep their console open (`WS
/ws/shop`: people watching, reach, their posts, pushed as they change) and in-shop
screens and pages fetch shops' profiles (`GET /api/v1/shops/{id}`). This phase repeats
the latency phase (same paced load, half of Streetfeed's saturation) with CONSOLES
console sockets open, each with its own shop's token, and PROFILES_PER_MIN profile
fetches a minute spread evenly over the bench's shops, all from the harness process,
and checks that the consoles were told what happened meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import httpclient
from bench.city import PlannedPost
from bench.stats import percentile

CONSOLES = 50
PROFILES_PER_MIN = 1_000
# A console's snapshot ends with people watching, once its region was heard for a round.
_SNAPSHOT_TIMEOUT_S = 15.0


@dataclass
class _Console:
    shop: int
    socket: ClientConnection
    frames: Counter[str] = field(default_factory=Counter)  # during the phase, by type
    watching: list[Any] = field(default_factory=list)  # the last stats frame's counts
    reach: dict[str, Any] = field(default_factory=dict)  # the last stats frame's reach
    live: asyncio.Event = field(default_factory=asyncio.Event)  # snapshot complete
    counting: bool = False


class BusyLoad:
    """CONSOLES console sockets and the profile fetches, around one phase."""

    def __init__(self, ws_base: str, http_base: str,
                 tokens: dict[int, tuple[str, str]]) -> None:
        self.ws_base = ws_base
        self.tokens = tokens
        self.http = httpclient.Client(http_base, size=4)
        self.consoles: list[_Console] = []
        self._readers: list[asyncio.Task[None]] = []
        self._fetcher: asyncio.Task[None] | None = None
        self.fetch_ms: list[float] = []
        self.fetch_errors = 0

    async def open(self, posts: list[PlannedPost]) -> None:
        """Consoles of the CONSOLES shops posting most in `posts` (their reach moves during
        the phase), each live (snapshot and people watching received)."""
        busiest = [s for s, _ in Counter(p.shop for p in posts).most_common(CONSOLES)]

        async def one(shop: int) -> None:
            shop_id, token = self.tokens[shop]
            socket = await connect(f"{self.ws_base}/ws/shop?shop={shop_id}",
                                   additional_headers={"Authorization": f"Bearer {token}"},
                                   compression=None, max_size=None)
            console = _Console(shop, socket)
            self.consoles.append(console)
            self._readers.append(asyncio.create_task(self._read(console)))
            await console.live.wait()

        await asyncio.wait_for(asyncio.gather(*(one(s) for s in busiest)), _SNAPSHOT_TIMEOUT_S)

    async def _read(self, console: _Console) -> None:
        with contextlib.suppress(Exception):
            async for message in console.socket:
                frame = json.loads(message)
                kind = frame.get("type", "?")
                if console.counting:
                    console.frames[kind] += 1
                if kind == "stats":
                    console.watching = frame["watching"]
                    console.reach = frame["reach"]
                    console.live.set()

    def start(self) -> None:
        """Counting frames from now, and fetching profiles evenly until `stop`."""
        for console in self.consoles:
            console.counting = True
        self._fetcher = asyncio.create_task(self._fetch())

    async def _fetch(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 60.0 / PROFILES_PER_MIN
        shops = sorted(self.tokens)
        start = loop.time()
        pending: set[asyncio.Task[None]] = set()
        try:
            for i in range(10**9):
                delay = start + i * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._get(self.tokens[shops[i % len(shops)]][0]))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _get(self, shop_id: str) -> None:
        t0 = time.perf_counter()
        try:
            status, _body = await self.http.get(f"/api/v1/shops/{shop_id}")
        except httpclient.HttpError:
            status = 0
        if status == 200:
            self.fetch_ms.append((time.perf_counter() - t0) * 1000.0)
        else:
            self.fetch_errors += 1

    async def stop(self) -> dict[str, Any]:
        """Stop fetching; what the consoles and fetches saw during the phase."""
        if self._fetcher is not None:
            self._fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetcher
        for console in self.consoles:
            console.counting = False
        frames: Counter[str] = Counter()
        for console in self.consoles:
            frames.update(console.frames)
        fetched = sorted(self.fetch_ms)
        return {
            "busy_consoles": len(self.consoles),
            "busy_console_frames": dict(frames),
            # Told of a post of theirs and of its reach during the phase.
            "busy_consoles_updated": sum(1 for c in self.consoles
                                         if c.frames["post"] and c.frames["stats"]),
            # People watching counted (a number, not "fewer than 5") in the last stats frame.
            "busy_consoles_watching": sum(1 for c in self.consoles
                                          if any(w.get("count") for w in c.watching)),
            "busy_profile_fetches": len(fetched) + self.fetch_errors,
            "busy_profile_errors": self.fetch_errors,
            "busy_profile_p50_ms": percentile(fetched, 50),
            "busy_profile_p99_ms": percentile(fetched, 99),
        }

    async def close(self) -> None:
        for console in self.consoles:
            with contextlib.suppress(Exception):
                await console.socket.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self.http.aclose()
