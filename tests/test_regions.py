"""Regions: each has its own streams; a subscriber near a border gets both sides."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from rules import cursor as cursors
from rules.clock import SystemClock
from rules.errors import ConfigError, InvalidInput
from rules.regions import Region, parse_regions, region_of, regions_for
from runtime.settings import Settings, load_settings
from schemas.shops import NewShop
from services.shops import create_shop, home_region
from storage import keys
from tests.helpers import add_shop, arrival, enricher, feed_client, send_post, wait_for, web_server

# Two towns split at longitude -0.57 (a river, say).
WEST = Region("ouest", 44.80, -0.62, 44.90, -0.57)
EAST = Region("est", 44.80, -0.57, 44.90, -0.52)
BORDER = (44.8370, -0.5702)  # ~15 m west of the line
WEST_SHOP = (44.8370, -0.5750)  # ~380 m west
EAST_SHOP = (44.8370, -0.5650)  # ~410 m east


def test_pure_region_logic() -> None:
    regions = parse_regions("ouest:44.80,-0.62,44.90,-0.57; est:44.80,-0.57,44.90,-0.52")
    assert regions == (WEST, EAST)
    assert region_of(regions, *WEST_SHOP) == "ouest"
    assert region_of(regions, *EAST_SHOP) == "est"
    assert region_of(regions, 48.85, 2.35) is None
    assert regions_for(regions, *BORDER, 100) == ["ouest", "est"]
    assert regions_for(regions, *WEST_SHOP, 100) == ["ouest"]
    assert regions_for(regions, 44.85, -0.60, 5000) == ["ouest", "est"]
    # Antimeridian: a disc just east of 180° touches a box just west of it.
    fiji = (Region("west-of-line", -20, 178, -15, 180),)
    assert regions_for(fiji, -17.0, -179.99, 2000) == ["west-of-line"]
    for bad in ("x:1,2,3", "UPPER:1,2,3,4", "a:50,0,40,10", "a:1,2,3,4;a:5,6,7,8"):
        with pytest.raises(ValueError):
            parse_regions(bad)
    # STREETFEED_REGION follows the same naming rule as STREETFEED_REGIONS.
    assert load_settings({"STREETFEED_REGION": "bordeaux-centre"}).region == "bordeaux-centre"
    for bad_name in ("Main", "rive_droite", "-x"):
        with pytest.raises(ConfigError):
            load_settings({"STREETFEED_REGION": bad_name})


def test_composite_cursors_round_trip() -> None:
    assert cursors.encode({"main": "5-0"}, "main") == "5-0"
    assert cursors.decode("5-0", "main") == {"main": "5-0"}
    composite = cursors.encode({"est": "7-1", "ouest": "5-0"}, "ouest")
    assert composite == "est:7-1~ouest:5-0"
    assert cursors.decode(composite, "ouest") == {"est": "7-1", "ouest": "5-0"}
    for bad in ("", "est:", "est:x-1", "est:1-1~est:2-2", ":1-1"):
        assert cursors.decode(bad, "ouest") is None


@pytest.fixture
def two_towns(settings: Settings) -> Settings:
    return settings.with_(regions=(WEST, EAST), region="ouest")


async def test_border_subscriber_gets_both_regions_and_resumes(
        redis: Redis, two_towns: Settings) -> None:
    settings = two_towns
    west = await add_shop(redis, settings, "Boulangerie", *WEST_SHOP)
    east = await add_shop(redis, settings, "Fromagerie", *EAST_SHOP)
    with pytest.raises(InvalidInput):
        home_region(settings, 48.85, 2.35)
    with pytest.raises(InvalidInput):  # the CLI/API path refuses shops outside every region
        await create_shop(redis, NewShop(name="Paris", category="other", lat=48.85, lon=2.35),
                          region=home_region(settings, 48.85, 2.35), clock=SystemClock())
    async with web_server(settings) as web, enricher(redis, settings, region="ouest"), \
            enricher(redis, settings, region="est"), httpx.AsyncClient(base_url=web.http) as http:
        async with feed_client(web.ws, *BORDER, radius_m=500) as both, \
                feed_client(web.ws, *WEST_SHOP, radius_m=200) as west_only:
            hub = web.state.hub
            assert set(hub.positions) == {"ouest", "est"}  # only what the sockets need
            w = (await send_post(http, west, arrival("pain"))).json()["id"]
            e = (await send_post(http, east, arrival("fromage"))).json()["id"]
            await both.wait_post(e)
            await both.wait_post(w)
            await west_only.wait_post(w)
            assert e not in west_only.post_ids()
            # Each region has its own streams (and hash tag).
            assert await redis.xlen(keys.feed_stream("ouest")) == 1
            assert await redis.xlen(keys.feed_stream("est")) == 1
            cursor = both.cursor
            assert cursor is not None and set(cursors.decode(cursor, "ouest") or {}) == {
                "ouest", "est"}
            assert west_only.cursor is not None and "~" not in west_only.cursor
        missed = [(await send_post(http, shop, arrival(f"m{i}"))).json()["id"]
                  for i, shop in enumerate((west, east, west))]

        async def published() -> bool:
            return (await redis.xlen(keys.feed_stream("ouest")) == 3
                    and await redis.xlen(keys.feed_stream("est")) == 2)
        await wait_for(published)
        async with feed_client(web.ws, *BORDER, radius_m=500, cursor=cursor) as resumed:
            assert not resumed.of_type("reset")
            assert sorted(resumed.post_ids()) == sorted(missed)
        feed = (await http.get("/api/v1/feed", params={"lat": BORDER[0], "lon": BORDER[1],
                                                        "radius_m": 500})).json()
        assert len(feed["posts"]) == 5
        assert set(cursors.decode(feed["cursor"], "ouest") or {}) == {"ouest", "est"}
