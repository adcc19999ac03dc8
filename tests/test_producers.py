"""Local producers end to end (DESIGN.md section 9 "Local producers", issue 16).

A real uvicorn and enricher, a real Redis-compatible server and real WebSocket clients:
naming producers (dedupe by folded name within 2 km, also under concurrent requests),
unlinking, the public producer page, the shop profile, the console's search, posts that
name producers (all kinds, edits, republishes) and the `local` filter on GET /feed, on a
socket's connect and through `subscribe`.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis

from rules.clock import SystemClock
from rules.geo import EARTH_RADIUS_M
from rules.producers import fold_name
from runtime.settings import Settings
from schemas.limits import PRODUCER_SEARCH_MAX, PRODUCER_SEARCH_SCAN
from schemas.producers import ProducerRecord
from schemas.shops import ShopCreated
from services.shops import set_disabled
from storage import keys
from storage.producers import LAYOUT, ProducerStore
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    enricher,
    feed_client,
    flash,
    send_post,
    wait_for,
    web_server,
)

STREET = (44.8370, -0.5735)  # rue Sainte-Catherine, Bordeaux
MILL = (44.8940, -0.1550)  # Saint-Émilion, 33.6 km away


def offset(lat: float, lon: float, dist_m: float, bearing: float = 1.0) -> tuple[float, float]:
    d = dist_m / EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


async def name_producer(http: httpx.AsyncClient, shop: ShopCreated, name: str, place: str,
                        lat: float, lon: float) -> httpx.Response:
    return await http.post(f"/api/v1/shops/{shop.id}/producers", headers=auth(shop),
                           json={"name": name, "place": place, "lat": lat, "lon": lon})


async def named(http: httpx.AsyncClient, shop: ShopCreated, name: str, place: str,
                lat: float, lon: float) -> str:
    response = await name_producer(http, shop, name, place, lat, lon)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id"}
    producer_id: str = response.json()["id"]
    return producer_id


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_same_producer_is_one_record_linked_to_every_shop(
        redis: Redis, settings: Settings) -> None:
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    grocer = await add_shop(redis, settings, "Épicerie Fine", *offset(*STREET, 200))
    stranger = await add_shop(redis, settings, "Cave", *offset(*STREET, 400))
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        mill = await named(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", *MILL)
        # Case, accents and punctuation folded, 1.9 km away: the same producer.
        twin = await named(http, grocer, "MOULIN DE SAINT EMILION", "St-Émilion",
                           *offset(*MILL, 1900))
        assert twin == mill
        # Past 2 km it is another producer, and so is another name at the same place.
        other = await named(http, stranger, "Moulin de Saint-Émilion", "Libourne",
                            *offset(*MILL, 2100))
        assert other != mill
        assert await named(http, stranger, "Moulin de Libourne", "Libourne", *MILL) != mill
        # Naming it again is idempotent.
        assert await named(http, baker, "moulin de saint-emilion", "x", *MILL) == mill

        page = (await http.get(f"/api/v1/producers/{mill}")).json()
        # As the first shop sent it; every shop naming it, nearest to it first.
        assert page == {
            "id": mill, "name": "Moulin de Saint-Émilion", "place": "Saint-Émilion",
            "lat": MILL[0], "lon": MILL[1],
            "shops": [
                {"id": grocer.id, "name": "Épicerie Fine", "category": "bakery",
                 "lat": page["shops"][0]["lat"], "lon": page["shops"][0]["lon"]},
                {"id": baker.id, "name": "Au Pain Doré", "category": "bakery",
                 "lat": STREET[0], "lon": STREET[1]},
            ]}

        profile = (await http.get(f"/api/v1/shops/{baker.id}")).json()
        assert profile["name"] == "Au Pain Doré" and "open_now" in profile
        assert profile["producers"] == [{"id": mill, "name": "Moulin de Saint-Émilion",
                                         "place": "Saint-Émilion", "distance_km": 33.6}]
        # The shop list is unchanged: producers are the single profile's.
        listed = (await http.get("/api/v1/shops")).json()["shops"]
        assert all("producers" not in s for s in listed)

        # A disabled shop is left out of the page.
        secret = await named(http, grocer, "Cave secrète", "Créon", 44.775, -0.348)
        await set_disabled(redis, grocer.id, True, SystemClock(), settings)
        page = (await http.get(f"/api/v1/producers/{mill}")).json()
        assert [s["id"] for s in page["shops"]] == [baker.id]
        # And what only disabled shops name is no more found by the search than its page
        # (a cold try found a disabled shop's producer in every neighbour's search).
        search = f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}&q="
        assert (await http.get(search + "secrete")).json() == {"producers": []}
        assert (await http.get(f"/api/v1/producers/{secret}")).status_code == 404
        assert mill in [p["id"] for p in (await http.get(search + "moulin")).json()["producers"]]
        await set_disabled(redis, grocer.id, False, SystemClock(), settings)
        assert [p["id"] for p in (await http.get(search + "secrete")).json()["producers"]] == [
            secret]
        # Sold by many shops, a few read at random first: found while one of them is
        # enabled, whichever the draw, and not once all are disabled.
        many = [await add_shop(redis, settings, f"Cave {i}", *offset(*STREET, 60 * i))
                for i in range(6)]
        cellar = await named(http, many[0], "Chai caché", "Créon", 44.776, -0.349)
        for shop in many[1:]:
            assert await named(http, shop, "Chai caché", "Créon", 44.776, -0.349) == cellar
        for shop in many[1:]:
            await set_disabled(redis, shop.id, True, SystemClock(), settings)
        for _ in range(5):
            assert [p["id"] for p in (await http.get(search + "chai")).json()[
                "producers"]] == [cellar]
        await set_disabled(redis, many[0].id, True, SystemClock(), settings)
        assert (await http.get(search + "chai")).json() == {"producers": []}


async def test_concurrent_creations_of_one_producer_make_one_record(
        redis: Redis, settings: Settings) -> None:
    shops = [await add_shop(redis, settings, f"Boutique {i}", *offset(*STREET, 50 * i))
             for i in range(8)]
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for round_ in range(3):
            # Spellings and positions differ, within 2 km of the first: one producer.
            answers = await asyncio.gather(*(
                name_producer(http, shop, ["Laiterie Lagarde", "laiterie lagarde",
                                           "LAITERIE-LAGARDE"][i % 3] + f" {round_}",
                              "Créon", *offset(44.775, -0.348, 100 * i, 0.5 * i))
                for i, shop in enumerate(shops)))
            assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
            assert len({a.json()["id"] for a in answers}) == 1
            page = (await http.get(f"/api/v1/producers/{answers[0].json()['id']}")).json()
            assert {s["id"] for s in page["shops"]} == {s.id for s in shops}


async def test_unlinking_the_last_shop_unlists_the_producer(
        redis: Redis, settings: Settings) -> None:
    baker = await add_shop(redis, settings, "Boulangerie", *STREET)
    grocer = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill = await named(http, baker, "Moulin", "Saint-Émilion", *MILL)
        await named(http, grocer, "Moulin", "Saint-Émilion", *MILL)
        accepted = await send_post(http, baker, arrival("Pain au levain", producer_ids=[mill]))
        assert accepted.status_code == 202, accepted.text
        post_id = accepted.json()["id"]
        feed_url = f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"

        async def delivered() -> bool:
            return any(p["id"] == post_id for p in (await http.get(feed_url)).json()["posts"])
        await wait_for(delivered, message="the post")

        gone = await http.delete(f"/api/v1/shops/{grocer.id}/producers/{mill}",
                                 headers=auth(grocer))
        assert gone.status_code == 204 and gone.content == b""
        again = await http.delete(f"/api/v1/shops/{grocer.id}/producers/{mill}",
                                  headers=auth(grocer))
        assert again.status_code == 404 and error_code(again) == "unknown_producer"
        assert (await http.get(f"/api/v1/producers/{mill}")).status_code == 200
        search = f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}&q=moulin"
        assert [p["id"] for p in (await http.get(search)).json()["producers"]] == [mill]

        last = await http.delete(f"/api/v1/shops/{baker.id}/producers/{mill}",
                                 headers=auth(baker))
        assert last.status_code == 204
        unlisted = await http.get(f"/api/v1/producers/{mill}")
        assert unlisted.status_code == 404 and error_code(unlisted) == "unknown_producer"
        assert (await http.get(search)).json() == {"producers": []}
        assert (await http.get(f"/api/v1/shops/{baker.id}")).json()["producers"] == []
        # The post already out keeps its text...
        post = next(p for p in (await http.get(feed_url)).json()["posts"] if p["id"] == post_id)
        assert post["producers"] == [{"id": mill, "name": "Moulin", "place": "Saint-Émilion",
                                      "distance_km": 33.6}]
        # ...but a new post may not name it.
        refused = await send_post(http, baker, arrival(producer_ids=[mill]))
        assert refused.status_code == 422 and error_code(refused) == "unknown_producer"
        # Named again near where it was, it is the same record, listed again, and written
        # as the shop naming it now spells and places it: a shop that named it (in capitals,
        # "closed for good") then dropped it does not fix its words for the next one.
        moved = offset(*MILL, 1900)
        assert await named(http, baker, "MOULIN !!!", "FERMÉ DÉFINITIVEMENT", *MILL) == mill
        await http.delete(f"/api/v1/shops/{baker.id}/producers/{mill}", headers=auth(baker))
        assert await named(http, grocer, "moulin", "Saint-Émilion", *moved) == mill
        page = (await http.get(f"/api/v1/producers/{mill}")).json()
        assert (page["name"], page["place"], page["lat"], page["lon"]) == (
            "moulin", "Saint-Émilion", moved[0], moved[1])
        # Named by one now, its words stay as they are for another.
        assert await named(http, baker, "MOULIN", "St-Émilion", *MILL) == mill
        page = (await http.get(f"/api/v1/producers/{mill}")).json()
        assert (page["name"], page["place"]) == ("moulin", "Saint-Émilion")
        # The search reads it where it is now.
        near = f"/api/v1/producers?lat={moved[0]}&lon={moved[1]}&q=moulin"
        assert [p["distance_km"] for p in (await http.get(near)).json()["producers"]] == [0.0]


async def test_bad_producers_are_refused(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Boulangerie", *STREET)
    other = await add_shop(redis, settings, "Voisin", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        url = f"/api/v1/shops/{shop.id}/producers"
        good = {"name": "Moulin", "place": "Saint-Émilion", "lat": MILL[0], "lon": MILL[1]}
        assert (await http.post(url, json=good)).status_code == 401
        assert (await http.post(url, json=good, headers=auth(other))).status_code == 401
        for body, code in [
            ({**good, "name": "x" * 61}, "invalid_producer"),
            ({**good, "place": ""}, "invalid_producer"),
            ({**good, "lat": 89.0}, "invalid_producer"),  # beyond GEO's latitudes
            ({**good, "extra": 1}, "invalid_producer"),
            ({k: v for k, v in good.items() if k != "lon"}, "invalid_producer"),
            ({**good, "name": "<script>alert(1)</script>"}, "markup_not_allowed"),
            ({**good, "place": "https://moulin.example"}, "too_many_links"),
            ({**good, "name": "\u200b \u200b"}, "blank_text"),
            ({**good, "name": "Moulin\u202e"}, "bidi_control"),
            ({**good, "name": "Ferme\nInjected: yes"}, "control_characters"),
            ({**good, "name": "o" + "\u0301" * 59}, "stacked_marks"),
            ({**good, "name": "Moulin\U000e0041"}, "control_characters"),
            ({**good, "name": "Moulin de Saint-Émiliоn"}, "mixed_scripts"),  # Cyrillic о
        ]:
            refused = await http.post(url, json=body, headers=auth(shop))
            assert refused.status_code == 422, (body, refused.text)
            assert error_code(refused) == code, body
        assert (await http.post(url, content=b"{", headers=auth(shop))).status_code == 400
        # 60 code points fit.
        assert (await http.post(url, json={**good, "name": "é" * 60},
                                headers=auth(shop))).status_code == 201
        unknown = await http.get("/api/v1/producers/pr_aaaaaaaaaaaaaaaa")
        assert unknown.status_code == 404 and error_code(unknown) == "unknown_producer"
        # The antimeridian has two numbers: one farm named at either is one record.
        east = await named(http, shop, "Ferme Date", "Taveuni", 10.0, 180.0)
        assert await named(http, shop, "Ferme Date", "Taveuni", 10.0, -180.0) == east


async def test_the_search_finds_listed_producers_nearby(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        mill = await named(http, shop, "Moulin de Saint-Émilion", "Saint-Émilion", *MILL)
        dairy = await named(http, shop, "Laiterie Lagarde", "Créon", 44.775, -0.348)
        larzac = await named(http, shop, "Ferme du Larzac", "Millau", 44.10, 3.08)  # ~300 km
        far = await named(http, shop, "Fromagerie Alpine", "Chamonix", 45.92, 6.87)  # ~600 km
        too_far = await named(http, shop, "Ferme de Vik", "Vik", 63.42, -19.0)  # Iceland

        async def found(query: str) -> list[str]:
            response = await http.get(
                f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}{query}")
            assert response.status_code == 200, response.text
            return [p["id"] for p in response.json()["producers"]]

        # Nearest first, within PRODUCER_SEARCH_KM: a neighbour selling the Larzac's cheese
        # finds it (only 100 km and less were found: they named a twin 3 km off instead).
        assert await found("") == [dairy, mill, larzac, far]
        assert await found("&q=larzac") == [larzac]
        assert await found("&q=vik") == [] and too_far
        assert await found("&q=SAINT%20EMIL") == [mill]  # folded, inside the name
        assert await found("&q=saint-%C3%A9milion") == [mill]
        assert await found("&q=cr%C3%A9on") == [dairy]  # the place too
        # Word by word, each in the name or the place, never across the two.
        assert await found("&q=moulin%20saint%20emilion") == [mill]
        assert await found("&q=laiterie%20creon") == [dairy]
        assert await found("&q=moulin%20creon") == []
        assert await found("&q=lagarde%20cr") == [dairy]
        assert await found("&q=lagardecreon") == []
        assert await found("&q=boulangerie") == []
        # From the poles too (beyond GEO's latitudes: a 500 before, found by the fuzzer).
        for pole in ("lat=-90&lon=-180", "lat=90&lon=0"):
            assert (await http.get(f"/api/v1/producers?{pole}")).json() == {"producers": []}
        answer = (await http.get(f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}"
                                 "&q=lait")).json()["producers"]
        assert answer == [{"id": dairy, "name": "Laiterie Lagarde", "place": "Créon",
                           "lat": 44.775, "lon": -0.348, "distance_km": 19.1}]
        for bad in ("lat=91&lon=0", "lon=0", f"lat=0&lon=0&q={'x' * 61}", "lat=0&lon=0&z=1",
                    "lat=44.84&lat=0&lon=-0.57"):
            refused = await http.get(f"/api/v1/producers?{bad}")
            assert refused.status_code == 400 and error_code(refused) == "invalid_query", bad

        # At most 20 answers.
        for i in range(22):
            await named(http, shop, f"Maraîcher {i}", "Bègles", *offset(44.80, -0.54, 3000 * i))
        assert len(await found("&q=maraicher")) == 20


async def _listed_geo(redis: Redis) -> set[str]:
    return {m.decode() for m in await redis.zrange(keys.producers_listed_geo(), 0, -1)}


async def test_churned_producers_leave_the_set_the_search_reads(
        redis: Redis, settings: Settings) -> None:
    """Naming then unlinking producers in a loop made every search read them all (a cold
    attacker try: 100k of them, 300 ms a search, Redis frozen by 10 at once)."""
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        kept = await named(http, shop, "Moulin", "Saint-Émilion", *MILL)
        churned = []
        for i in range(200):
            producer_id = await named(http, shop, f"Ferme {i}", "Créon", 44.775, -0.348)
            gone = await http.delete(f"/api/v1/shops/{shop.id}/producers/{producer_id}",
                                     headers=auth(shop))
            assert gone.status_code == 204, gone.text
            churned.append(producer_id)
        assert await _listed_geo(redis) == {kept}
        # Every record stays (a twin named again keeps its id)...
        assert await redis.zcard(keys.producers_geo()) == 201
        # ...and one named again is listed again, and found.
        assert await named(http, shop, "Ferme 7", "Créon", 44.775, -0.348) == churned[7]
        assert await _listed_geo(redis) == {kept, churned[7]}
        found = (await http.get(f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}"
                                "&q=ferme")).json()["producers"]
        assert [p["id"] for p in found] == [churned[7]]


async def _seed(redis: Redis, count: int, name: str, lat: float, lon: float, *,
                listed_by: str | None) -> None:
    """`count` producers around (lat, lon) (within about 1 km), written as the scripts of
    storage.producers leave them, without going through the API a few thousand times;
    linked to the shop `listed_by`, or unlisted."""
    created = SystemClock().now()
    for start in range(0, count, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(count, start + 1000)):
                plat, plon = offset(lat, lon, 1000 * i / count, bearing=i)
                record = ProducerRecord(id=f"pr_{name[:4].lower()}{i:012d}", name=f"{name} {i}",
                                        place="Créon", lat=plat, lon=plon, created_at=created)
                pipe.hset(keys.producer(record.id), mapping={
                    "json": msgspec.json.encode(record), "fold": fold_name(record.name),
                    "fold_place": fold_name(record.place)})
                pipe.geoadd(keys.producers_geo(), (plon, plat, record.id))
                pipe.geoadd(keys.producers_named(fold_name(record.name)),
                            (plon, plat, record.id))
                if listed_by is not None:
                    pipe.sadd(keys.producer_shops(record.id), listed_by)
                    pipe.geoadd(keys.producers_listed_geo(), (plon, plat, record.id))
            await pipe.execute()
    await redis.set(keys.producers_layout(), LAYOUT)


async def test_a_search_reads_a_bounded_number_of_producers(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    await _seed(redis, 20_000, "Ferme", *STREET, listed_by=None)
    await _seed(redis, 20_000, "Verger", *offset(*STREET, 1500), listed_by=shop.id)
    store = ProducerStore(redis)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        mill = await named(http, shop, "Moulin Zéta", "Saint-Émilion", *MILL)
        radius_m = settings.local_km * 1000
        # The unlisted are not read at all, the listed at most PRODUCER_SEARCH_SCAN, nearest
        # first: asking for every match answers that many, not 20,000.
        everything = await store.search(*STREET, radius_m, "", most=10**6)
        assert len(everything) == PRODUCER_SEARCH_SCAN
        assert all(r.name.startswith("Verger ") for r in everything)
        # The trade-off: a producer behind more than PRODUCER_SEARCH_SCAN nearer listed ones
        # is not found by the search (it is when the scan reaches it)...
        assert await store.search(*STREET, radius_m, "zeta", most=20) == []
        wide = await store.search(*STREET, radius_m, "zeta", most=20, scan=20_001)
        assert [r.id for r in wide] == [mill]
        search = f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}"
        assert len((await http.get(search)).json()["producers"]) == PRODUCER_SEARCH_MAX
        assert (await http.get(search + "&q=zeta")).json() == {"producers": []}
        # ...nearer to it, it is; and naming it again still links the same record.
        near_mill = f"/api/v1/producers?lat={MILL[0]}&lon={MILL[1]}&q=zeta"
        assert [p["id"] for p in (await http.get(near_mill)).json()["producers"]] == [mill]
        assert await named(http, shop, "Moulin Zeta", "Saint-Émilion", *MILL) == mill


async def test_unlinking_counts_against_the_shops_write_allowance(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(shop_posts_per_minute=3)
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        statuses = []
        for _ in range(20):  # at most 2 windows' allowance (6) can pass in any 20
            response = await http.delete(
                f"/api/v1/shops/{shop.id}/producers/pr_aaaaaaaaaaaaaaaa", headers=auth(shop))
            statuses.append(response.status_code)
        assert set(statuses) == {404, 429}
        assert statuses.count(429) >= 14


async def _post(http: httpx.AsyncClient, shop: ShopCreated, body: dict[str, Any]) -> str:
    accepted = await send_post(http, shop, body)
    assert accepted.status_code == 202, accepted.text
    post_id: str = accepted.json()["id"]
    return post_id


async def test_posts_carry_producers_on_every_kind(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    other = await add_shop(redis, settings, "Voisin", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        mill = await named(http, shop, "Moulin de Saint-Émilion", "Saint-Émilion", *MILL)
        dairy = await named(http, shop, "Laiterie Lagarde", "Créon", 44.775, -0.348)
        roaster = await named(http, shop, "Torréfaction Garonne", "Bègles", 44.80, -0.54)
        theirs = await named(http, other, "Ferme Voisine", "Cenon", 44.857, -0.53)
        expected = [{"id": dairy, "name": "Laiterie Lagarde", "place": "Créon",
                     "distance_km": 19.1},
                    {"id": mill, "name": "Moulin de Saint-Émilion", "place": "Saint-Émilion",
                     "distance_km": 33.6}]
        bodies = [arrival(producer_ids=[dairy, mill]), flash(producer_ids=[dairy, mill]),
                  {"kind": "opening_change", "title": "Ouvert", "status": "open_now",
                   "producer_ids": [dairy, mill]}]
        for body in bodies:
            post = await passer_by.wait_post(await _post(http, shop, body))
            assert post["producers"] == expected, body["kind"]  # in the order named
        feed = (await http.get(f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}"
                               "&radius_m=500")).json()["posts"]
        assert all(p["producers"] == expected for p in feed)
        plain = await passer_by.wait_post(await _post(http, shop, arrival()))
        assert plain["producers"] == []

        for producer_ids, code in [
            ([theirs], "unknown_producer"),  # another shop's
            ([mill, "pr_aaaaaaaaaaaaaaaa"], "unknown_producer"),  # never created
            ([mill, dairy, roaster, theirs], "unknown_producer"),  # more than 3
            ([mill, mill], "invalid_post"),
            (["../etc"], "invalid_post"),
            ([mill + "\n"], "invalid_post"),
        ]:
            refused = await send_post(http, shop, arrival(producer_ids=producer_ids))
            assert refused.status_code == 422, refused.text
            assert error_code(refused) == code, producer_ids
        assert (await send_post(http, shop, arrival(
            producer_ids=[mill, dairy, roaster]))).status_code == 202

        # An edit may change them; an edit of something else keeps them.
        post_id = await _post(http, shop, arrival(producer_ids=[mill]))
        await passer_by.wait_post(post_id)
        edit_url = f"/api/v1/shops/{shop.id}/posts/{post_id}"

        async def edited(body: dict[str, Any]) -> dict[str, Any]:
            before = len(passer_by.posts())
            response = await http.patch(edit_url, json=body, headers=auth(shop))
            assert response.status_code == 202, response.text
            await wait_for(lambda: any(p["id"] == post_id for p in passer_by.posts()[before:]),
                           message="the edit")
            return next(p for p in passer_by.posts()[before:] if p["id"] == post_id)

        assert [p["id"] for p in (await edited({"producer_ids": [roaster]}))["producers"]] == [
            roaster]
        assert [p["id"] for p in (await edited({"title": "Autre titre"}))["producers"]] == [
            roaster]
        refused = await http.patch(edit_url, json={"producer_ids": [theirs]}, headers=auth(shop))
        assert refused.status_code == 422 and error_code(refused) == "unknown_producer"
        assert (await edited({"producer_ids": []}))["producers"] == []

        # A profile change republishes posts with their producers (services.republish).
        post_id = await _post(http, shop, arrival(producer_ids=[mill]))
        await passer_by.wait_post(post_id)
        before = len(passer_by.posts())
        renamed = await http.patch(f"/api/v1/shops/{shop.id}", json={"name": "Épicerie Fine"},
                                   headers=auth(shop))
        assert renamed.status_code == 200, renamed.text
        await wait_for(lambda: any(p["id"] == post_id and p["shop"]["name"] == "Épicerie Fine"
                                   for p in passer_by.posts()[before:]), message="republish")
        republished = [p for p in passer_by.posts()[before:] if p["id"] == post_id][-1]
        assert [p["id"] for p in republished["producers"]] == [mill]


async def test_local_filter_on_the_feed_api_connect_and_subscribe(
        redis: Redis, settings: Settings) -> None:
    """`local=1` keeps posts naming a producer within STREETFEED_LOCAL_KM (here 50 km) of
    their shop: GET /feed, a socket's snapshot and live frames, `subscribe` with `local`."""
    settings = settings.with_(local_km=50.0)
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill = await named(http, shop, "Moulin", "Saint-Émilion", *MILL)  # 33.6 km
        far = await named(http, shop, "Domaine Lointain", "Cahors", 44.45, 1.44)  # ~165 km
        local_before = await _post(http, shop, arrival("Local", producer_ids=[far, mill]))
        far_before = await _post(http, shop, arrival("Loin", producer_ids=[far]))
        none_before = await _post(http, shop, arrival("Rien"))
        area = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"

        async def feed_ids(query: str) -> set[str]:
            response = await http.get(f"/api/v1/feed?{area}{query}")
            assert response.status_code == 200, response.text
            return {p["id"] for p in response.json()["posts"]}

        async def all_published() -> bool:
            return await feed_ids("") == {local_before, far_before, none_before}
        await wait_for(all_published, message="the first posts")
        assert await feed_ids("&local=1") == {local_before}
        assert await feed_ids("&local=0") == {local_before, far_before, none_before}
        assert await feed_ids("&local=1&kinds=flash_offer") == set()
        bad = await http.get(f"/api/v1/feed?{area}&local=maybe")
        assert bad.status_code == 400 and error_code(bad) == "invalid_subscription"

        async with feed_client(web.ws, *STREET, local="1") as local, \
                feed_client(web.ws, *STREET) as everyone, \
                feed_client(web.ws, *STREET) as mover:
            assert set(local.post_ids()) == {local_before}  # the snapshot
            assert set(everyone.post_ids()) == {local_before, far_before, none_before}
            await mover.send({"type": "subscribe", "lat": STREET[0], "lon": STREET[1],
                              "radius_m": 500, "local": True})
            await mover.wait_ready(pings=2)
            assert mover.of_type("reset")
            after_reset = mover.frames[mover.frames.index(mover.of_type("reset")[0]):]
            assert {f["post"]["id"] for f in after_reset if f["type"] == "post"} == {
                local_before}

            far_live = await _post(http, shop, flash("Loin", producer_ids=[far]))
            local_live = await _post(http, shop, flash("Local", producer_ids=[mill]))
            # Posts are published in order: once `everyone` has the second, `local` has
            # had every frame meant for it before.
            await everyone.wait_post(local_live)
            await local.wait_post(local_live)
            await mover.wait_post(local_live)
            assert far_live in everyone.post_ids()
            assert far_live not in local.post_ids() and far_live not in mover.post_ids()

            # An edit that ends a post's locality reaches local sockets (they hold its
            # card), then its withdrawal too.
            response = await http.patch(f"/api/v1/shops/{shop.id}/posts/{local_live}",
                                        json={"producer_ids": [far]}, headers=auth(shop))
            assert response.status_code == 202
            await wait_for(lambda: any(p["id"] == local_live and p["producers"][0]["id"] == far
                                       for p in local.posts()), message="the edit")
            assert await feed_ids("&local=1") == {local_before}
            withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{local_live}",
                                          headers=auth(shop))
            assert withdrawn.status_code == 200
            await wait_for(lambda: any(f["id"] == local_live for f in local.of_type("withdrawn")),
                           message="the withdrawal")


async def _hmget_calls(redis: Redis) -> int:
    """HMGETs the server ran (the producer scripts read a record with one each)."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_a_twin_check_reads_only_producers_of_the_same_name(
        redis: Redis, settings: Settings) -> None:
    """The twin check read every producer ever created within 2 km (named then unlinked
    in a loop, 20,000 of them made each naming read 20,000 records); it reads that name's
    only, of which 2 km holds a handful (two of one name are 2 km apart)."""
    await _seed(redis, 20_000, "Ferme", *MILL, listed_by=None)
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        first = await named(http, shop, "Moulin", "Saint-Émilion", *MILL)  # builds the sets
        await redis.config_resetstat()
        assert await named(http, shop, "MOULIN", "Saint-Émilion", *offset(*MILL, 1500)) == first
        assert await _hmget_calls(redis) <= 1
        # A name of the crowd is a twin of one of them: found, not created again.
        await redis.config_resetstat()
        seeded = f"pr_ferm{7:012d}"
        plat, plon = offset(*MILL, 1000 * 7 / 20_000, bearing=7)
        assert await named(http, shop, "ferme 7", "Créon", plat, plon) == seeded
        assert await _hmget_calls(redis) <= 1


async def test_producers_of_an_older_layout_are_indexed_before_use(
        redis: Redis, settings: Settings) -> None:
    """Records written before the per-name twin sets and the listed set existed (layout 1:
    only the every-producer GEO set, the records and the links) are found by the twin
    check and the search once a process first needs them, not duplicated."""
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    created = SystemClock().now()
    old = [ProducerRecord(id="pr_oldmill0000000", name="Moulin de Saint-Émilion",
                          place="Saint-Émilion", lat=MILL[0], lon=MILL[1], created_at=created),
           ProducerRecord(id="pr_oldfarm0000000", name="Ferme du Bois", place="Créon",
                          lat=44.775, lon=-0.348, created_at=created),
           # Layout 2 kept Cyrillic look-alikes as they are: folded again on upgrade.
           ProducerRecord(id="pr_oldcyri0000000", name="Cave \u0501\u0435 Gironde",
                          place="Cadillac", lat=44.637, lon=-0.318, created_at=created)]
    folds = [fold_name(old[0].name), fold_name(old[1].name), "cave \u0501\u0435 gironde"]
    for record, linked, fold in zip(old, (True, False, False), folds, strict=True):
        await redis.hset(keys.producer(record.id), mapping={
            "json": msgspec.json.encode(record), "fold": fold,
            "fold_place": fold_name(record.place)})
        await redis.geoadd(keys.producers_geo(), (record.lon, record.lat, record.id))
        if linked:
            await redis.sadd(keys.producer_shops(record.id), shop.id)
            await redis.sadd(keys.shop_producers(shop.id), record.id)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        search = f"/api/v1/producers?lat={STREET[0]}&lon={STREET[1]}"
        assert [p["id"] for p in (await http.get(search)).json()["producers"]] == [old[0].id]
        assert await named(http, shop, "ferme du bois", "Créon", *offset(44.775, -0.348, 900)) \
            == old[1].id
        assert await named(http, shop, "Moulin de Saint-Emilion", "Saint-Émilion", *MILL) \
            == old[0].id
        assert await named(http, shop, "Cave de Gironde", "Cadillac", 44.637, -0.318) \
            == old[2].id
        assert await redis.get(keys.producers_layout()) == LAYOUT.encode()
        assert await redis.zcard(keys.producers_geo()) == 3
