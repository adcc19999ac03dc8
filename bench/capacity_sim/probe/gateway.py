"""One `streetfeed web` process under the probe: feed reads, presence reports heard, a
console's reach reads, profiles, posts, socket opens and `subscribe` moves (its CPU, less
what it burns idle)."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.capacity_sim.inputs import SETTINGS
from bench.capacity_sim.presence import presence_cells
from bench.capacity_sim.probe.city import ProbeCity, in_radius
from bench.capacity_sim.probe.common import cpu_s, received, say
from bench.capacity_sim.probe.presence import encode_empty_report, probe_report


class _Http:
    """Keep-alive HTTP to the web process."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def exchange(self, method: str, path: str, body: str | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        # Reopened when the server has closed an idle connection.
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return int(response.status), response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> int:
        return self.exchange(method, path, body, headers)[0]

    def get(self, path: str, token: str | None = None) -> None:
        status = self.request("GET", path, headers={"Authorization": f"Bearer {token}"}
                              if token else None)
        if status != 200:
            raise SystemExit(f"probe: GET {path} -> {status}")


@dataclass
class _WebProbe:
    """The web process, its Valkey, and what the steps measured so far."""

    redis: Any
    sync: Any
    sock: Path
    valkey: Any
    web: Any
    port: int
    city: ProbeCity
    out: dict[str, float | str]
    n: int
    http: _Http
    channel: str
    idle: float = 0.0                # the web process's CPU-s per second, idle
    typical: int = 0                 # the console's shop: the mean number of live posts
    sockets: list[Any] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.city.tokens[self.typical]

    @property
    def shop_id(self) -> str:
        return str(self.city.shops[self.typical].id)

    def busy(self, c_before: float, t_before: float) -> float:
        """The web process's CPU since then, less what it burns idle."""
        return cpu_s(self.web) - c_before - self.idle * (time.perf_counter() - t_before)

    async def open_one(self, i: int, lat_shift: float = 0.0) -> int:
        """A feed socket at phone `i`: the post frames of its snapshot."""
        import websockets

        pop = self.city.pop
        url = (f"ws://127.0.0.1:{self.port}/ws/feed?lat={pop.lat[i] + lat_shift:.7f}"
               f"&lon={pop.lon[i]:.7f}&radius_m={pop.radius[i]:g}")
        ws = await websockets.connect(url, compression=None, ping_interval=None,
                                      max_size=2**20, open_timeout=30, close_timeout=1)
        self.sockets.append(ws)
        return await _post_frames(ws)

async def _post_frames(ws: Any) -> int:
    """Post frames until the ping that ends a snapshot."""
    frames = 0
    while True:
        message = json.loads(await received(ws))
        if message["type"] == "ping":
            return frames
        frames += message["type"] == "post"


async def _batch(items: list[Any], call: Callable[[Any], Any]) -> list[int]:
    """`call` on every item, 16 at a time."""
    gate = asyncio.Semaphore(16)

    async def one(item: Any) -> int:
        async with gate:
            return int(await call(item))

    return list(await asyncio.gather(*(one(x) for x in items)))


async def probe_gateway(redis: Any, sync: Any, sock: Path, valkey: Any, web: Any, port: int,
                        city: ProbeCity, out: dict[str, float | str],
                        n: int) -> None:  # pragma: no cover
    from storage import keys

    w = _WebProbe(redis=redis, sync=sync, sock=sock, valkey=valkey, web=web, port=port,
                  city=city, out=out, n=n, http=_Http(port),
                  channel=keys.presence_channel(SETTINGS.region))
    await _ready(w)
    sparse, dense = _by_posts_around(w)
    say("web: feed entry read")
    await _feed_read(w)
    say("web: presence reports heard")
    await _presence_heard(w)
    say("console: reach reads")
    await _reach_reads(w)
    say("web: profiles, posts")
    _profiles_and_posts(w)
    say("web: sockets opened")
    frame = await _opens(w, sparse, dense)
    say("web: moves")
    await _moves(w, dense, frame)
    # All at once, each given a second: one by one, sockets the server has already closed
    # take the client's close timeout each (minutes for hundreds).
    await asyncio.gather(*(ws.close() for ws in w.sockets), return_exceptions=True)


async def _ready(w: _WebProbe) -> None:
    """The process up, its idle RSS; then listening to the region's presence, its idle CPU."""
    for _ in range(200):
        try:
            w.http.get("/healthz")
            break
        except (OSError, http.client.HTTPException, SystemExit):
            await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)
    w.out["web_rss_kib_idle"] = round(w.web.memory_info().rss / 1024)
    # The console's shop, with the mean number of live posts. Its first request makes this
    # process listen to the region's presence (feed/presence.py), as every process answering
    # consoles does at peak; the idle CPU below includes that listening, nobody publishing.
    per_shop = w.city.live.sum(axis=1)
    w.typical = int(np.argmin(np.abs(per_shop - per_shop.mean())))
    w.http.get(f"/api/v1/shops/{w.shop_id}/stats", w.token)
    if int(dict(w.sync.pubsub_numsub(w.channel)).get(w.channel.encode(), 0)) < 1:
        raise SystemExit("probe: the web process does not listen to presence after a console")
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    await asyncio.sleep(3.0)
    w.idle = (cpu_s(w.web) - c0) / (time.perf_counter() - t0)


def _by_posts_around(w: _WebProbe) -> tuple[list[int], list[int]]:
    """Phones with few posts around (the outskirts: n) and a full snapshot (the centre: 2n)."""
    pop = w.city.pop
    rng = np.random.default_rng(23)
    phones = np.nonzero(~pop.screen)[0]
    candidates = rng.choice(phones, min(len(phones), 20 * w.n), replace=False)
    around = sorted((in_radius(w.city, float(pop.lat[i]), float(pop.lon[i]),
                               float(pop.radius[i]) * 1.001 + 1), int(i))
                    for i in candidates)
    return [i for _, i in around[:w.n]], [i for _, i in around[-2 * w.n:]]


async def _feed_read(w: _WebProbe) -> None:
    """A feed entry read and dispatched with nobody to deliver to (one socket, far away),
    from a shop of its own (its posts must not weigh on the console's reads after)."""
    from storage import keys
    from storage.live import LiveIndex

    region = SETTINGS.region
    await w.open_one(int(np.nonzero(~w.city.pop.screen)[0][0]), lat_shift=0.5)
    index = LiveIndex(w.redis, region, SETTINGS)
    shop = w.city.shops[-1]
    entry = w.sync.hget(keys.post(region, w.city.post_ids[0][0]), "json")
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    for j in range(400):
        await index.publish(post_id=f"p_probe{j:04d}", source=f"9{j:05d}-0", post_json=entry,
                            kind="new_arrival", lat=shop.lat + 0.6, lon=shop.lon,
                            expires_ts=time.time() + 3600, shop_id="probe-reader",
                            raw=b"{}")
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.5)
    w.out["gw_read_us"] = round(w.busy(c0, t0) / 400 * 1e6, 1)


async def _heard(w: _WebProbe, message: bytes, count: int, every_s: float) -> float:
    """The web process's CPU per report received, `count` of them `every_s` apart."""
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    for _ in range(count):
        await w.redis.publish(w.channel, message)
        await asyncio.sleep(every_s)
    await asyncio.sleep(0.5)
    return w.busy(c0, t0) / count


async def _presence_heard(w: _WebProbe) -> None:
    """A fake gateway publishes reports of the city's cells on the region's channel, the
    shop's own cell with 7 watchers among them, 5 reports a second (a listener in the city
    hears ~21): the listening web process's CPU to receive, decode and keep them."""
    shop = w.city.shops[w.typical]
    shop_cell = int(presence_cells(np.array([shop.lat]), np.array([shop.lon]))[0])
    report, n_cells = probe_report(w.city, "probe-fake", extra=(shop_cell, 7))
    per_big = await _heard(w, report, 30, 0.2)
    status, body = w.http.exchange("GET", f"/api/v1/shops/{w.shop_id}/stats",
                                   headers={"Authorization": f"Bearer {w.token}"})
    nearest = json.loads(body)["watching"][0] if status == 200 else {}
    if not (nearest.get("count") or 0) >= 7:
        raise SystemExit(f"probe: the fake gateway's report was not folded in ({nearest})")
    # The per-report part: 1-cell reports of another fake gateway, 200 a second.
    small, _ = probe_report(w.city, "probe-small", limit=1)
    per_report = await _heard(w, small, 600, 0.005)
    for gateway in ("probe-small", "probe-fake"):
        await w.redis.publish(w.channel, encode_empty_report(gateway))
    decode_s = (per_big - per_report) / n_cells
    w.out["listener_us_per_report"] = round(per_report * 1e6, 1)
    w.out["listener_decode_us_per_cell"] = round(decode_s * 1e6, 4)


async def _reach_reads(w: _WebProbe) -> None:
    """A console's reach read (feed/stats.py reach_of: every live post of its shop in one
    pipeline), done 3 times after each of its shop's posts: the reading process's CPU (this
    one's, the same code) and Valkey's."""
    from feed.stats import reach_of
    from storage import keys

    shop_id = w.shop_id
    ids = [p for p, s in w.city.post_ids if s == shop_id]
    region = SETTINGS.region
    for post_id in ids:
        await w.redis.hincrby(keys.reach(region, post_id), "phone", 7)
    await reach_of(w.redis, region, ids)
    rounds = 300
    t0, v0 = time.process_time(), cpu_s(w.valkey)
    for _ in range(rounds):
        await reach_of(w.redis, region, ids)
    w.out["console_reach_posts"] = len(ids)
    w.out["console_reach_read_us"] = round((time.process_time() - t0) / rounds * 1e6, 1)
    w.out["valkey_reach_read_us"] = round((cpu_s(w.valkey) - v0) / rounds * 1e6, 1)


def _profiles_and_posts(w: _WebProbe) -> None:
    shops = w.city.shops
    # Shop profiles, as the passer-by page fetches them: the first fetch of each computes it
    # (services.profiles), the next ones find it in the process's cache.
    some = shops[:300]
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    for s in some:
        w.http.get(f"/api/v1/shops/{s.id}")
    w.out["profile_miss_ms"] = round(w.busy(c0, t0) / len(some) * 1e3, 3)
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    for _ in range(3):
        for s in some:
            w.http.get(f"/api/v1/shops/{s.id}")
    w.out["profile_ms"] = round(w.busy(c0, t0) / (3 * len(some)) * 1e3, 3)
    # Posts, as a shopkeeper sends them (one per shop: the per-shop limit is 30 a minute).
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    for s, tok in list(zip(shops, w.city.tokens, strict=True))[1:301]:
        status = w.http.request(
            "POST", f"/api/v1/shops/{s.id}/posts",
            body=json.dumps({"kind": "new_arrival", "title": "Arrivage : asperges",
                             "text": "Des Landes, ce matin.", "price": 6.5}),
            headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
        if status != 202:
            raise SystemExit(f"probe: POST -> {status}")
    w.out["post_ms"] = round(w.busy(c0, t0) / min(300, len(shops) - 1) * 1e3, 3)
    w.http.conn.close()


async def _opens(w: _WebProbe, sparse: list[int], dense: list[int]) -> float:
    """Sockets opened: few posts around (sparse) and a full snapshot (dense). Returns the
    web process's CPU-s per snapshot frame (the difference between the two)."""
    n, out = w.n, w.out
    t0, c0 = time.perf_counter(), cpu_s(w.web)
    frames_a = await _batch(sparse, w.open_one)
    cpu_a = w.busy(c0, t0) / len(sparse)
    t0, c0, v0 = time.perf_counter(), cpu_s(w.web), cpu_s(w.valkey)
    frames_b = await _batch(dense[:n], w.open_one)
    cpu_b = w.busy(c0, t0) / n
    out["valkey_open_us_dense"] = round((cpu_s(w.valkey) - v0) / n * 1e6, 1)
    fa, fb = float(np.mean(frames_a)), float(np.mean(frames_b))
    frame = (cpu_b - cpu_a) / (fb - fa) if fb - fa >= 5 else float("nan")
    out["gw_frame_us"] = round(frame * 1e6, 2)
    out["gw_open_ms"] = round((cpu_a - fa * frame) * 1e3, 3)
    out["frames_sparse"] = round(fa, 1)
    out["frames_dense"] = round(fb, 1)
    return frame


async def _moves(w: _WebProbe, dense: list[int], frame: float) -> None:
    """Moves of the dense sockets to other dense places."""
    pop = w.city.pop
    movers = w.sockets[-w.n:]

    async def move(pair: tuple[Any, int]) -> int:
        ws, i = pair
        await ws.send(json.dumps({"type": "subscribe", "lat": float(pop.lat[i]),
                                  "lon": float(pop.lon[i]),
                                  "radius_m": float(pop.radius[i])}))
        return await _post_frames(ws)

    t0, c0 = time.perf_counter(), cpu_s(w.web)
    frames_m = await _batch(list(zip(movers, dense[w.n:], strict=False)), move)
    cpu_m = w.busy(c0, t0) / len(frames_m)
    w.out["gw_move_ms"] = round((cpu_m - float(np.mean(frames_m)) * frame) * 1e3, 3)
