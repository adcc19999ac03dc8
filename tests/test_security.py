"""Nobody in who shouldn't be, nothing kept that shouldn't be: limits, origins, headers,
tokens out of logs, and a passer-by's position nowhere but in the gateway's memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from rules.geo import EARTH_RADIUS_M, CellGrid, haversine_m
from runtime.settings import Settings
from schemas.limits import PRESENCE_CELL_DEG
from schemas.shops import ShopCreated
from tests.helpers import (
    Service,
    add_shop,
    arrival,
    feed_client,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
    web_server,
)

STREET = (44.8370, -0.5735)


async def test_posts_per_shop_are_rate_limited(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(shop_posts_per_minute=3)
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        statuses = [(await send_post(http, shop, arrival(f"p{i}"))).status_code
                    for i in range(3)]
        assert statuses == [202, 202, 202]
        limited = await send_post(http, shop, arrival("one too many"))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_requests_per_address_are_rate_limited(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(address_requests_per_minute=5)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        url = f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
        assert [(await http.get(url)).status_code for _ in range(5)] == [200] * 5
        limited = await http.get(url)
        assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
        assert limited.headers["retry-after"].isdigit()
        # Pages and files are not counted.
        assert (await http.get("/")).status_code == 200
        # Addresses are never stored in clear.
        counters = await redis.keys("sf:rl:*")
        assert counters
        for key in counters:
            assert b"127.0.0.1" not in key


async def test_sockets_per_address_are_limited(redis: Redis, settings: Settings) -> None:
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
    capped = settings.with_(max_sockets_per_address=2)
    async with web_server(capped) as web, feed_client(web.ws, *STREET), \
            feed_client(web.ws, *STREET):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{web.ws}/ws/feed?{query}"):
                pass
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body)["error"]["code"] == "rate_limited"
    await redis.flushall()  # a fresh minute for the per-minute counter
    rated = settings.with_(address_sockets_per_minute=2)
    async with web_server(rated) as web:
        for _ in range(2):
            async with feed_client(web.ws, *STREET):
                pass
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{web.ws}/ws/feed?{query}"):
                pass
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["retry-after"].isdigit()


async def _counter_commands(redis: Redis) -> int:
    """INCR and INCRBY calls Valkey has run, in scripts too (the rate limits' counters)."""
    stats = await redis.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("incr", "incrby"))


async def test_a_burst_of_sockets_from_one_address_is_limited_exactly_in_few_round_trips(
        redis: Redis, settings: Settings) -> None:
    """Regression (the reconnect storm, bench/storm.py): every socket's per-minute count
    was a Redis round trip of its own; a restart's 10,000 sockets behind one proxy made
    10,000. Handshakes arriving together are counted together, and the limit still lets
    in exactly as many as it allows."""
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
    rated = settings.with_(address_sockets_per_minute=25)
    async with web_server(rated) as web, contextlib.AsyncExitStack() as stack:
        # One minute's counter for the whole burst, not the end of one and a fresh one.
        await wait_for(lambda: time.time() % 60 < 50, 15, "a minute with time left")
        before = await _counter_commands(redis)

        async def one() -> int:
            try:
                await stack.enter_async_context(connect(f"{web.ws}/ws/feed?{query}"))
            except InvalidStatus as exc:
                assert exc.response.headers["retry-after"].isdigit()
                return exc.response.status_code
            return 101

        statuses = await asyncio.gather(*(one() for _ in range(40)))
        assert sorted(statuses) == [101] * 25 + [429] * 15
        counted = await _counter_commands(redis) - before
        counters = await redis.keys("sf:rl:address_sockets:*")
        assert [int(await redis.get(key)) for key in counters] == [40]
    assert counted < 20, f"{counted} counter round trips for 40 handshakes"


async def test_websocket_origin_allow_list(redis: Redis, settings: Settings) -> None:
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
    settings = settings.with_(allowed_origins=("https://screens.example",))
    async with web_server(settings) as web:
        url = f"{web.ws}/ws/feed?{query}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["error"]["code"] == "origin_not_allowed"
        for origin in (f"http://127.0.0.1:{web.port}", "https://screens.example"):
            async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                assert json.loads(await ws.recv())["type"] == "ping"


async def test_security_headers_on_every_page(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Kiosque", *STREET)
    embedded = settings.with_(screen_frame_ancestors="https://mall.example")
    async with web_server(embedded) as web, httpx.AsyncClient(base_url=web.http) as http:
        for path in ("/", "/shop", f"/screen/{shop.id}", "/static/app.js",
                     "/api/v1/config", "/healthz", "/api/v1/nothing"):
            response = await http.get(path)
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
            assert "object-src 'none'" in csp and "base-uri 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            expected = ("https://mall.example" if path.startswith("/screen/") else "'none'")
            assert f"frame-ancestors {expected}" in csp, path


async def _redis_dump(redis: Redis) -> bytes:
    """Every key and every value, whatever its type, as one blob to search."""
    parts: list[bytes] = []
    for key in await redis.keys("*"):
        parts.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(await redis.get(key) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                parts += [field, value]
        elif kind == "set":
            parts += list(await redis.smembers(key))
        elif kind == "zset":
            for member, score in await redis.zrange(key, 0, -1, withscores=True):
                parts += [member, repr(score).encode()]
        elif kind == "list":
            parts += list(await redis.lrange(key, 0, -1))
        elif kind == "stream":
            for entry_id, fields in await redis.xrange(key):
                parts.append(entry_id)
                for field, value in fields.items():
                    parts += [field, value]
    return b"\n".join(parts)


async def test_position_of_a_passer_by_is_never_stored_or_logged(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    # South-west of the demo street, ~800 m from it: no shop shares these digits.
    here, moved = (44.82917, -0.58124), (44.82863, -0.58077)
    patterns = [b"44.829", b"-0.581", b"44.828", b"-0.580", b"44.8291", b"44.8286",
                b"-0.5812", b"-0.5807"]
    port = free_port()
    service = Service(["up", "--port", str(port)],
                      service_env(settings.redis_url or "", STREETFEED_DEMO_INTERVAL_S="0.2"),
                      tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/readyz")
        async with feed_client(f"ws://127.0.0.1:{port}", *here, radius_m=1500) as client, \
                httpx.AsyncClient(base_url=base) as http:
            await wait_for(lambda: len(client.posts()) >= 3, 20, "demo posts delivered")
            await client.send({"type": "subscribe", "lat": moved[0], "lon": moved[1],
                               "radius_m": 1500})
            await wait_for(lambda: bool(client.of_type("reset")))
            feed = await http.get("/api/v1/feed", params={"lat": here[0], "lon": here[1],
                                                           "radius_m": 1500})
            assert feed.status_code == 200
            # Traffic goes on for a few stats flushes while the client watches.
            seen = len(client.posts())
            await wait_for(lambda: len(client.posts()) >= seen + 3, 20)
            metrics = (await http.get("/metrics")).content
        blob = await _redis_dump(redis)
        log = service.log().encode()
        for pattern in patterns:
            assert pattern not in blob, f"{pattern!r} found in Redis"
            assert pattern not in log, f"{pattern!r} found in the logs"
            assert pattern not in metrics, f"{pattern!r} found in the metrics"
        assert b"/ws/feed" in log or b"/api/v1/feed" in log  # the requests were logged...
    finally:
        service.terminate()


# --- A shop locating a passer-by (issue 12, finding 2) ---------------------------------------

# Nothing narrower than a disc of this radius may be learnt of where someone is.
PRIVACY_FLOOR_M = 250


async def test_shop_position_changes_only_by_the_operator(redis: Redis,
                                                         settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    url = f"/api/v1/shops/{shop.id}"
    bearer = {"Authorization": f"Bearer {shop.token}"}
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for body in ({"lat": 44.85, "lon": -0.57}, {"lat": 44.85}, {"lon": -0.58},
                     {"name": "Cave", "lat": STREET[0], "lon": STREET[1]}):
            moved = await http.patch(url, json=body, headers=bearer)
            assert moved.status_code == 403, (body, moved.text)
            assert moved.json()["error"]["code"] == "position_locked"
        # Nor with the console's session.
        signed = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                          "token": shop.token})
        assert signed.status_code == 200
        origin = {"Origin": web.http}
        moved = await http.patch(url, json={"lat": 44.85, "lon": -0.57}, headers=origin)
        assert moved.status_code == 403, moved.text
        assert moved.json()["error"]["code"] == "position_locked"
        profile = (await http.get(url)).json()
        assert (profile["lat"], profile["lon"]) == STREET
        # Name, category and address stay the shop's to change.
        edited = await http.patch(url, json={"name": "Cave à vins", "category": "caviste",
                                             "address": "3 rue du Pas"}, headers=origin)
        assert edited.status_code == 200, edited.text
        assert (edited.json()["name"], edited.json()["address"]) == ("Cave à vins",
                                                                     "3 rue du Pas")
        # The published API says so: the body of a shop's PATCH has no position.
        doc = (await http.get("/openapi.json")).json()
        ref = doc["paths"]["/api/v1/shops/{shop_id}"]["patch"]["requestBody"]["content"][
            "application/json"]["schema"]["$ref"]
        fields = set(doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])
        assert {"name", "category", "address"} <= fields and not {"lat", "lon"} & fields
    # The operator moves it, with the command line.
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streetfeed.cli", "shops", "update", shop.id, "--lat", "44.8381",
        "--lon", "-0.5741", env=service_env(settings.redis_url or ""),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await cli.communicate()
    assert cli.returncode == 0, err
    assert (json.loads(out)["lat"], json.loads(out)["lon"]) == (44.8381, -0.5741)


def _distances_m(lat: float, lon: float, lats: Any, lons: Any) -> Any:
    """haversine_m from one point to arrays of points (numpy)."""
    import numpy as np

    p1, p2 = math.radians(lat), np.radians(lats)
    h = (np.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))


def _diameter_m(grid: CellGrid, cells: set[int]) -> float:
    """The largest distance between two points of the union of `cells` (a few km at most:
    a flat projection, the widest of 180 directions)."""
    import numpy as np

    corners = []
    for cell in cells:
        lat, lon = grid.centre_of(cell)
        half_lon = 180.0 / grid.cells_in_band(cell >> 24)
        corners += [(lat + a * grid.cell_deg / 2, lon + b * half_lon)
                    for a in (-1, 1) for b in (-1, 1)]
    pts = np.radians(np.array(corners))
    xy = np.stack([(pts[:, 1] - pts[0, 1]) * math.cos(pts[0, 0]), pts[:, 0] - pts[0, 0]],
                  axis=1) * EARTH_RADIUS_M
    angles = np.radians(np.arange(180))
    projections = xy @ np.stack([np.cos(angles), np.sin(angles)])
    return float((projections.max(axis=0) - projections.min(axis=0)).max())


async def _move_shop(http: httpx.AsyncClient, shop: ShopCreated, lat: float, lon: float,
                     origin: str) -> bool:
    """Move the shop with its token, else with its console session (signed in)."""
    body = {"lat": lat, "lon": lon}
    url = f"/api/v1/shops/{shop.id}"
    with_token = await http.patch(url, json=body, headers={"Authorization":
                                                           f"Bearer {shop.token}"})
    if with_token.status_code == 200:
        return True
    with_session = await http.patch(url, json=body, headers={"Origin": origin})
    return with_session.status_code == 200


async def test_a_shop_cannot_narrow_down_where_a_passer_by_is(redis: Redis,
                                                              settings: Settings) -> None:
    """The oracle of issue 12: a shop moves itself with its own token and reads "people
    watching within R m" to corner one passer-by (246 requests found someone to 18 m, 3 km
    from the shop). This attacker does better still: it keeps four sockets of its own at
    the shop, so that any "at least 5" threshold is crossed by the passer-by alone, and it
    knows the counting rule (the code is public). Whatever it learns, the passer-by must
    not be confined to a disc of less than PRIVACY_FLOOR_M."""
    import numpy as np

    shop = await add_shop(redis, settings, "Cave", *STREET)
    passer_by = (44.8378, -0.5727)  # ~110 m from the shop: the hardest case
    grid = CellGrid(PRESENCE_CELL_DEG)
    # The attacker's prior: somewhere within 3 km of the shop (one presence cell each).
    cells = np.array([c for c in grid.cells_covering(*STREET, 3000)
                      if haversine_m(*STREET, *grid.centre_of(c)) <= 3000])
    centres = np.array([grid.centre_of(int(c)) for c in cells])
    possible = np.ones(len(cells), dtype=bool)
    own = 4
    own_centre = grid.centre_of(grid.cell_of(*STREET))
    rng = np.random.default_rng(12)
    stats_url = f"/api/v1/shops/{shop.id}/stats"
    bearer = {"Authorization": f"Bearer {shop.token}"}
    answers: list[dict[str, Any]] = []
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http, \
            contextlib.AsyncExitStack() as sockets:
        for _ in range(own):
            await sockets.enter_async_context(feed_client(web.ws, *STREET))
        await sockets.enter_async_context(feed_client(web.ws, *passer_by))

        async def all_counted() -> bool:
            widest = max((await http.get(stats_url, headers=bearer)).json()["watching"],
                         key=lambda w: w["radius_m"])
            return bool(widest["count"] == own + 1)
        await wait_for(all_counted, 10, "the five sockets counted")
        signed = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                          "token": shop.token})
        assert signed.status_code == 200
        centre, movable = STREET, True
        radii = [100, 250, 500, 1000, 2000]  # what the console offered before issue 12
        for _ in range(60):
            # The disc (centre, radius) that best halves where the passer-by may still be.
            options = [centre]
            if movable:
                picks = rng.choice(np.flatnonzero(possible), min(40, int(possible.sum())),
                                   replace=False)
                options += [tuple(centres[i]) for i in picks]
            best = (0.5, centre, radii[0])
            for lat, lon in options:
                within = _distances_m(lat, lon, centres[possible, 0], centres[possible, 1])
                for radius in radii:
                    gap = abs(float(np.mean(within <= radius)) - 0.5)
                    if gap < best[0]:
                        best = (gap, (float(lat), float(lon)), radius)
            if best[0] >= 0.5:
                break  # no question left whose answer would tell anything
            if movable and best[1] != centre:
                movable = await _move_shop(http, shop, *best[1], web.http)
                centre = best[1] if movable else centre
            body = (await http.get(stats_url, headers=bearer)).json()
            answers += body["watching"]
            radii = sorted(w["radius_m"] for w in body["watching"])
            counted = _distances_m(*centre, centres[:, 0], centres[:, 1])
            own_distance = haversine_m(*centre, *own_centre)
            for watch in body["watching"]:
                mine = own if own_distance <= watch["radius_m"] else 0
                if watch["count"] is not None:
                    inside = watch["count"] - mine
                    assert inside in (0, 1), watch
                elif mine >= watch["fewer_than"] - 1:
                    inside = 0  # fewer than `fewer_than` with all of ours in: not there
                else:
                    continue  # "fewer than 5" tells nothing about one person
                possible &= (counted <= watch["radius_m"]) == bool(inside)
    assert possible[np.flatnonzero(cells == grid.cell_of(*passer_by))[0]], \
        "the attacker's model of the counts is wrong"
    narrowed = _diameter_m(grid, {int(c) for c in cells[possible]}) / 2
    print(f"FIGURES oracle: answers={len(answers)} moved={movable} "
          f"confined_to_radius_m={narrowed:.0f}")
    assert narrowed >= PRIVACY_FLOOR_M, (
        f"a shop confined a passer-by to a disc of {narrowed:.0f} m radius "
        f"with {len(answers)} answers")
    # The rules that make it so: no radius under the floor, no exact count under 5.
    assert all(w["radius_m"] >= PRIVACY_FLOOR_M for w in answers)
    assert all(w["count"] is None or w["count"] >= 5 for w in answers)


async def test_tokens_never_reach_logs_metrics_or_errors(redis: Redis, settings: Settings,
                                                         tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port)],
                      service_env(settings.redis_url or ""), tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    wrong = "WRONG" + shop.token[5:]
    try:
        await wait_http(f"{base}/readyz")
        async with httpx.AsyncClient(base_url=base) as http:
            bodies = []
            for token in (shop.token, wrong):
                for _ in range(2):
                    r = await http.post(f"/api/v1/shops/{shop.id}/posts",
                                        json=arrival("<script>x</script>"),
                                        headers={"Authorization": f"Bearer {token}"})
                    bodies.append(r.text)
            signin = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                              "token": wrong})
            bodies.append(signin.text)
            rotated = await http.post(f"/api/v1/shops/{shop.id}/token",
                                      headers={"Authorization": f"Bearer {shop.token}"})
            new_token = rotated.json()["token"]
            metrics = (await http.get("/metrics")).text
    finally:
        service.terminate()
    log = service.log()
    for token in (shop.token, wrong, new_token, shop.token[:16]):
        assert token not in log
        assert token not in metrics
        assert all(token not in body for body in bodies)
    stored = await _redis_dump(redis)
    assert shop.token.encode() not in stored and new_token.encode() not in stored


async def test_deployment_moderation_policy(redis: Redis, settings: Settings,
                                            tmp_path: Path) -> None:
    from runtime.settings import load_settings

    words = tmp_path / "banned.txt"
    words.write_text("casino\nloterie\n")
    configured = load_settings({"STREETFEED_BANNED_WORDS_FILE": str(words),
                                "STREETFEED_MAX_LINKS": "0"}, redis_url=settings.redis_url,
                               shop_posts_per_minute=1000)
    shop = await add_shop(redis, configured, "Tabac", *STREET)
    async with web_server(configured) as web, httpx.AsyncClient(base_url=web.http) as http:
        banned = await send_post(http, shop, arrival("Grand CASINO ce soir"))
        assert (banned.status_code, banned.json()["error"]["code"]) == (422, "content_rejected")
        link = await send_post(http, shop, arrival("Voir www.exemple.fr"))
        assert (link.status_code, link.json()["error"]["code"]) == (422, "too_many_links")
        assert (await send_post(http, shop, arrival("Journaux du jour"))).status_code == 202


async def test_shops_pooling_their_counts_cannot_tell_apart_two_places_250_m_apart(
        redis: Redis, settings: Settings) -> None:
    """Cold try of issue 12: twelve shop tokens pooling their audience answers located a
    passer-by to 66 m (~110 m presence cells). Every count is a sum over whole presence
    cells, so two places in one cell give every shop the same answers; a cell now spans
    more than the privacy floor both ways, so pooling cannot beat it."""
    grid = CellGrid(PRESENCE_CELL_DEG)
    centre = grid.centre_of(grid.cell_of(*STREET))
    half = PRESENCE_CELL_DEG * 0.45
    north, south = (centre[0] + half, centre[1]), (centre[0] - half, centre[1])
    east = next((centre[0], centre[1] + d / 10_000) for d in range(1, 100)
                if grid.cell_of(centre[0], centre[1] + (d + 1) / 10_000) != grid.cell_of(*centre))
    west = next((centre[0], centre[1] - d / 10_000) for d in range(1, 100)
                if grid.cell_of(centre[0], centre[1] - (d + 1) / 10_000) != grid.cell_of(*centre))
    assert grid.cell_of(*north) == grid.cell_of(*south) == grid.cell_of(*centre)
    assert haversine_m(*north, *south) >= PRIVACY_FLOOR_M * 0.9  # the cell's height, nearly
    assert haversine_m(*east, *west) >= PRIVACY_FLOOR_M * 0.9  # and its width
    shops = [await add_shop(redis, settings, f"Boutique {i}",
                            STREET[0] + dlat, STREET[1] + dlon)
             for i, (dlat, dlon) in enumerate([(0, 0), (0.002, 0), (-0.002, 0), (0, 0.003),
                                               (0, -0.003), (0.0015, 0.0015)])]

    def auth(shop: ShopCreated) -> dict[str, str]:
        return {"Authorization": f"Bearer {shop.token}"}

    async def answers(spot: tuple[float, float], web: Any, http: httpx.AsyncClient,
                      ) -> list[Any]:
        async with contextlib.AsyncExitStack() as sockets:
            for _ in range(6):
                await sockets.enter_async_context(feed_client(web.ws, *spot))

            async def counted() -> bool:
                body = (await http.get(f"/api/v1/shops/{shops[0].id}/stats",
                                       headers=auth(shops[0]))).json()
                return max(w["count"] or 0 for w in body["watching"]) == 6
            await wait_for(counted, 10, "six sockets counted")
            return [(await http.get(f"/api/v1/shops/{s.id}/stats", headers=auth(s))).json()
                    ["watching"] for s in shops]

    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        at_north = await answers(north, web, http)
        await wait_for(lambda: len(web.state.hub.index) == 0, 5, "the first six gone")
        at_south = await answers(south, web, http)
    assert at_north == at_south
