"""Producers on the faces (issue 16), in real headless Chromium against the real server and
enricher: the badges on the passer-by's cards in French and English, the producer's page
(its shops nearest first with their live posts, Back to the feed), the "Local" chip (live,
kept across a reload), the in-shop screen at 1080p both ways up, and a 320 px phone.

Producers are named through `POST /api/v1/shops/{id}/producers`, as a shop's console
would; posts name them with `producer_ids`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from rules.geo import EARTH_RADIUS_M
from runtime.settings import Settings
from schemas.shops import ShopCreated
from tests.helpers import (
    CLS_OBSERVER,
    add_shop,
    apart,
    arrival,
    enricher,
    feed_card,
    flash,
    inside,
    new_page,
    posted,
    web_server,
)

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)  # rue Sainte-Catherine, Bordeaux
MILL = (44.8940, -0.1550)  # Saint-Émilion, 33.6 km from STREET
OSSAU = (42.9880, -0.4240)  # Laruns, ~206 km: beyond STREETFEED_LOCAL_KM
LIVE = "() => window.streetfeed && window.streetfeed.state === 'live'"
LONG_NAME = "Ferme maraîchère biologique et coopérative des Jalles-Est"  # 56 code points


def offset(lat: float, lon: float, dist_m: float, bearing: float = 1.0) -> tuple[float, float]:
    d = dist_m / EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


ROASTER = offset(*STREET, 800, bearing=0.3)  # 0.8 km from a shop at STREET


async def name(http: httpx.AsyncClient, shop: ShopCreated, producer: str, place: str,
               at: tuple[float, float]) -> str:
    response = await http.post(f"/api/v1/shops/{shop.id}/producers",
                               headers={"Authorization": f"Bearer {shop.token}"},
                               json={"name": producer, "place": place, "lat": at[0],
                                     "lon": at[1]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def feed_url(base: str, radius: int = 500) -> str:
    return f"{base}/?lat={STREET[0]}&lon={STREET[1]}&radius_m={radius}"


BADGES = "(sel) => [...document.querySelectorAll(sel + ' .producer')].map((b) => b.textContent)"


@pytest.mark.parametrize(("lang", "mill_km", "roaster_km"),
                         [("fr", "34 km", "0,8 km"), ("en", "34 km", "0.8 km")])
async def test_badges_say_where_it_comes_from_in_the_reader_s_language(
        redis: Redis, settings: Settings, browser: Any, lang: str, mill_km: str,
        roaster_km: str) -> None:
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill = await name(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        roaster = await name(http, baker, "Brûlerie des Chartrons", "Bordeaux", ROASTER)
        post_id = await posted(http, baker, arrival("Pain de seigle", producer_ids=[mill, roaster]))
        plain_id = await posted(http, baker, arrival("Baguette"))
        page = await new_page(browser, lang=lang)
        await page.goto(feed_url(web.http))
        await page.wait_for_function(LIVE)
        await page.wait_for_selector(f"{feed_card(post_id)} .producer")
        assert await page.evaluate(BADGES, feed_card(post_id)) == [
            f"Moulin de Saint-Émilion · {mill_km}", f"Brûlerie des Chartrons · {roaster_km}"]
        # Real links, to a page of this one: shareable, keyboard reachable.
        links = page.locator(f"{feed_card(post_id)} a.producer")
        assert await links.count() == 2
        href = await links.first.get_attribute("href")
        assert href and href.startswith("/?") and f"producer={mill}" in href
        label = await page.get_attribute(f"{feed_card(post_id)} .producers", "aria-label")
        assert label == {"fr": "D'où ça vient", "en": "Where it comes from"}[lang]
        title = await links.first.get_attribute("title")
        assert title == {"fr": f"Producteur à Saint-Émilion, à {mill_km} de la boutique",
                         "en": f"Producer in Saint-Émilion, {mill_km} from the shop"}[lang]
        assert await page.locator(f"{feed_card(plain_id)} .producers").count() == 0
        # The language switch relabels them.
        await page.click("#lang")
        other = {"fr": "0.8 km", "en": "0,8 km"}[lang]
        await page.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent.endsWith(text)",
            arg=[f"{feed_card(post_id)} .producer-item:nth-child(2) .producer", other])
        assert page.errors == []


async def test_a_badge_opens_the_producer_s_page_with_its_shops_nearest_first_and_back(
        redis: Redis, settings: Settings, browser: Any) -> None:
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    grocer = await add_shop(redis, settings, "Épicerie Fine", *offset(*STREET, 330),
                            category="grocery")
    # 3 km away: out of the feed's radius; its posts come from its public API.
    across = await add_shop(redis, settings, "Boulangerie des Chartrons",
                            *offset(*STREET, 3000, bearing=0.0))
    cheese = await add_shop(redis, settings, "Fromagerie", *offset(*STREET, 150),
                            category="cheese")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill = await name(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        assert await name(http, across, "Moulin de Saint-Émilion", "Saint-Émilion", MILL) == mill
        assert await name(http, grocer, "moulin de saint emilion", "St-Émilion", MILL) == mill
        ossau = await name(http, cheese, "Fromagerie de la vallée d'Ossau", "Laruns", OSSAU)
        bread = await posted(http, baker, arrival("Pain de seigle", producer_ids=[mill]))
        # Newer, naming no producer: the mill's page shows the bread first all the same.
        plain = await posted(http, baker, arrival("Croissants"))
        flour = await posted(http, grocer, flash("Farine T80 -20 %", producer_ids=[mill]))
        far_post = await posted(http, across, arrival("Tourte de meule", producer_ids=[mill]))
        other = await posted(http, cheese, arrival("Ossau-Iraty", producer_ids=[ossau]))
        page = await new_page(browser)
        await page.goto(feed_url(web.http))
        await page.wait_for_function(LIVE)
        await page.wait_for_selector(feed_card(flour))
        await page.wait_for_selector(feed_card(other))
        await page.evaluate("() => window.scrollTo(0, 200)")
        before = await page.evaluate("() => scrollY")

        # Keyboard: Tab reaches the badge, Enter opens the producer's page.
        badge = page.locator(f"{feed_card(bread)} a.producer")
        await badge.focus()
        await page.keyboard.press("Enter")
        await page.wait_for_function(f"() => window.streetfeed.producer === '{mill}'")
        assert f"producer={mill}" in page.url
        assert f"lat={STREET[0]}" in page.url  # the page's own address, kept
        heading = page.locator("#producer-heading")
        await page.wait_for_function(
            "() => document.querySelector('#producer-heading')?.textContent"
            " === 'Moulin de Saint-Émilion'")
        assert await page.evaluate("() => document.activeElement.id") == "producer-heading"
        assert await page.inner_text(".producer-where") == "Saint-Émilion · à 34 km d'ici"
        assert not await page.locator("#feed").is_visible()
        assert await page.inner_text(".producer-shops-heading") == "Vendu dans 3 boutiques"
        # Nearest to the passer-by first (not to the mill: across town is nearer to it),
        # each with its live posts, also the one out of the feed's radius.
        shops = page.locator(".producer-shop")
        await page.wait_for_function(
            f"() => !!document.querySelector('.producer-shop [data-post-id=\"{far_post}\"]')")
        assert await shops.evaluate_all("els => els.map((e) => e.dataset.shopId)") == [
            baker.id, grocer.id, across.id]
        names = await page.locator(".producer-shop-name").all_inner_texts()
        assert names == ["Au Pain Doré", "Épicerie Fine", "Boulangerie des Chartrons"]
        meta = await page.locator(".producer-shop-meta").all_inner_texts()
        assert meta == ["Boulangerie", "Épicerie", "Boulangerie"]
        assert await page.evaluate(  # no " · " before the first item of the line
            "() => [...document.querySelectorAll('.producer-shop-meta > :first-child')]"
            ".every((e) => getComputedStyle(e, '::before').content === 'none')")
        where = await page.locator(".producer-shop-where").all_inner_texts()
        assert where[2].startswith("3 km")
        for shop_id, post_id in [(baker.id, bread), (grocer.id, flour), (across.id, far_post)]:
            sel = f'.producer-shop[data-shop-id="{shop_id}"] [data-post-id="{post_id}"]'
            assert await page.locator(sel).count() == 1, shop_id
        assert await page.locator(f'#producer-view [data-post-id="{other}"]').count() == 0
        baker_posts = f'.producer-shop[data-shop-id="{baker.id}"] .card'
        assert await page.locator(baker_posts).evaluate_all(
            "els => els.map((e) => e.dataset.postId)") == [bread, plain]
        # A post arriving live from one of them joins its shop, newest first.
        fresh = await posted(http, grocer, arrival("Farine de seigle", producer_ids=[mill]))
        grocer_posts = f'.producer-shop[data-shop-id="{grocer.id}"] .card'
        await page.wait_for_function(
            "([sel, id]) => document.querySelector(sel)?.dataset.postId === id",
            arg=[grocer_posts, fresh])
        # Its withdrawal takes it away.
        response = await http.delete(f"/api/v1/shops/{grocer.id}/posts/{fresh}",
                                     headers={"Authorization": f"Bearer {grocer.token}"})
        assert response.status_code == 200, response.text
        await page.wait_for_selector(f'#producer-view [data-post-id="{fresh}"]', state="detached")
        # Titles' ids stay unique though the feed keeps its own cards of the same posts.
        assert await page.evaluate(
            "() => new Set([...document.querySelectorAll('[id]')].map((e) => e.id)).size"
            " === document.querySelectorAll('[id]').length")
        await heading.focus()

        # Back: the feed where it was, the focus on the badge that opened the page.
        await page.go_back()
        await page.wait_for_function("() => window.streetfeed.producer === null")
        assert "producer=" not in page.url
        assert await page.locator("#feed").is_visible()
        assert not await page.locator("#producer-view").is_visible()
        assert await page.evaluate("() => scrollY") == before
        assert await page.evaluate(
            "() => document.activeElement.classList.contains('producer')"
            f" && document.activeElement.closest('.card').dataset.postId === '{bread}'")
        # Forward opens it again; a shared link opens it on its own, and its own button
        # goes to the feed.
        await page.go_forward()
        await page.wait_for_function(f"() => window.streetfeed.producer === '{mill}'")
        shared = await new_page(browser)
        await shared.goto(f"{web.http}/?producer={mill}")
        await shared.wait_for_function(
            "() => document.querySelectorAll('.producer-shop').length === 3")
        await shared.click(".producer-back")
        await shared.wait_for_function("() => window.streetfeed.producer === null")
        assert "producer=" not in shared.url
        assert await shared.locator("#feed").is_visible()
        # A page that could not load (the network away) loads by itself once the device
        # says it is back online (Playwright's offline switch does not reach the service
        # worker's fetches again: the network is refused, and `online` sent, instead).
        await shared.wait_for_selector(feed_card(other))

        async def unreachable(route: Any) -> None:
            await route.abort("internetdisconnected")

        await shared.context.route("**/api/v1/producers/*", unreachable)
        await shared.click(f"{feed_card(other)} a.producer")
        await shared.wait_for_selector(".producer-retry")
        await shared.context.unroute("**/api/v1/producers/*", unreachable)
        await shared.evaluate("() => window.dispatchEvent(new Event('online'))")
        await shared.wait_for_function(
            "() => document.querySelector('#producer-heading')?.textContent"
            " === \"Fromagerie de la vallée d'Ossau\""
            " && !document.querySelector('.producer-retry')")
        await shared.click(".producer-back")
        await shared.wait_for_function("() => window.streetfeed.producer === null")
        # Sold by no shop any more: its badge still opens a page that names it.
        gone = await http.delete(f"/api/v1/shops/{cheese.id}/producers/{ossau}",
                                 headers={"Authorization": f"Bearer {cheese.token}"})
        assert gone.status_code == 204
        await shared.click(f"{feed_card(other)} a.producer")
        await shared.wait_for_function(
            "() => document.querySelector('#producer-heading')?.textContent"
            " === \"Fromagerie de la vallée d'Ossau\"")
        assert await shared.inner_text(".producer-where") == "Laruns"
        assert await shared.inner_text(".producer-no-post") == (
            "Ce producteur n'est plus proposé par aucune boutique.")
        # An unknown producer says so.
        await shared.goto(f"{web.http}/?producer=pr_0000000000000000")
        await shared.wait_for_function(
            "() => document.querySelector('#producer-heading')?.textContent"
            " === 'Producteur inconnu, ou proposé par aucune boutique.'")
        assert page.errors == []
        assert shared.errors == []


async def test_local_chip_filters_live_and_is_kept_across_a_reload(
        redis: Redis, settings: Settings, browser: Any) -> None:
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    cheese = await add_shop(redis, settings, "Fromagerie", *offset(*STREET, 150),
                            category="cheese")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill = await name(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        ossau = await name(http, cheese, "Fromagerie de la vallée d'Ossau", "Laruns", OSSAU)
        near = await posted(http, baker, arrival("Pain de seigle", producer_ids=[mill]))
        far = await posted(http, cheese, arrival("Ossau-Iraty fermier", producer_ids=[ossau]))
        plain = await posted(http, cheese, arrival("Comté 24 mois"))
        page = await new_page(browser, 360, 740)
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        await page.goto(feed_url(web.http))
        await page.wait_for_function(LIVE)
        for post_id in (near, far, plain):
            await page.wait_for_selector(feed_card(post_id))
        assert "local=1" not in sockets[-1]

        # Folded behind "Filters" on a phone.
        chip = page.locator("#local-only")
        await page.click("#filters-toggle")
        assert await chip.inner_text() == "Local"
        await chip.click()
        assert await chip.get_attribute("aria-pressed") == "true"
        await page.wait_for_selector(feed_card(far), state="detached")
        await page.wait_for_selector(feed_card(plain), state="detached")
        assert await page.locator(feed_card(near)).is_visible()
        assert await page.inner_text("#filters-count") == "1"
        # Live: a far producer's post does not arrive; a near one does (the feed is in
        # order: once the near one is in, the far one would have been).
        far_live = await posted(http, cheese, flash("-20 % sur l'Ossau", producer_ids=[ossau]))
        near_live = await posted(http, baker, flash("-10 % sur le seigle", producer_ids=[mill]))
        await page.wait_for_selector(feed_card(near_live))
        assert await page.locator(feed_card(far_live)).count() == 0

        # Kept across a reload: the socket asks for local posts from the start.
        await page.reload()
        await page.wait_for_function(LIVE)
        await page.wait_for_selector(feed_card(near_live))
        assert "local=1" in sockets[-1]
        assert await chip.get_attribute("aria-pressed") == "true"
        gone = f"{feed_card(far)}, {feed_card(far_live)}, {feed_card(plain)}"
        assert await page.locator(gone).count() == 0
        # Nothing local left nearby: the page says so.
        for post_id in (near, near_live):
            response = await http.delete(f"/api/v1/shops/{baker.id}/posts/{post_id}",
                                         headers={"Authorization": f"Bearer {baker.token}"})
            assert response.status_code == 200, response.text
        await page.wait_for_function(
            "() => !document.querySelector('#empty').hidden && document.querySelector('#empty')"
            ".textContent.startsWith('Aucune annonce de producteur local dans ce rayon')")
        # Off again: every post comes back.
        await page.click("#filters-toggle")
        await chip.click()
        for post_id in (far, far_live, plain):
            await page.wait_for_selector(feed_card(post_id))
        assert await page.evaluate("() => localStorage.getItem('streetfeed.local')") is None
        assert page.errors == []


# Every card on the screen: its badges' text and size, and whether they stay in the card.
SCREEN_BADGES = """() => {
  const rect = (el) => el.getBoundingClientRect().toJSON();
  const qr = document.querySelector('#qr');
  return [...document.querySelectorAll('#screen .card')].map((card) => {
    const c = rect(card);
    return {
      id: card.dataset.postId,
      own: card.closest('#own-posts') !== null,
      card: c,
      badges: [...card.querySelectorAll('.producer')].map((b) => ({
        text: b.textContent, box: rect(b),
        px: Math.min(...[b, ...b.querySelectorAll('*')].map((e) =>
          parseFloat(getComputedStyle(e).fontSize))),
        link: b.tagName === 'A'})),
      title: card.querySelector('.card-title').scrollHeight
        <= card.querySelector('.card-title').clientHeight + 1,
      qr: qr.closest('.screen-qr').hidden ? null : rect(qr),
    };
  });
}"""


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)], ids=["landscape", "portrait"])
async def test_screen_shows_the_badges_readable_without_overflow(
        redis: Redis, settings: Settings, browser: Any, size: tuple[int, int]) -> None:
    width, height = size
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    cheese = await add_shop(redis, settings, "Fromagerie", *offset(*STREET, 90),
                            category="cheese")
    grocer = await add_shop(redis, settings, "Épicerie Fine", *offset(*STREET, 200),
                            category="grocery")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill = await name(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        ossau = await name(http, cheese, "Fromagerie de la vallée d'Ossau", "Laruns", OSSAU)
        long_ = await name(http, grocer, LONG_NAME, "Saint-Médard-en-Jalles",
                           offset(*STREET, 12000))
        roaster = await name(http, grocer, "Brûlerie des Chartrons", "Bordeaux", ROASTER)
        own = await posted(http, baker, arrival(
            "Pain de seigle au levain, tout chaud", text="Farine du moulin de Saint-Émilion.",
            price=4.2, producer_ids=[mill]))
        theirs = await posted(http, cheese, flash("-30 % sur l'Ossau-Iraty fermier",
                                                producer_ids=[ossau], discount_pct=30))
        crowded = await posted(http, grocer, arrival(
            "Légumes du jour", price=3.5,
            text="Cueillis ce matin.", producer_ids=[long_, roaster]))
        page = await new_page(browser, width, height)
        await page.goto(f"{web.http}/screen/{baker.id}?radius_m=500")
        await page.wait_for_function(
            "() => window.streetfeedScreen?.state === 'live' && window.streetfeedScreen.posts === 3"
            " && document.querySelectorAll('#screen .card').length === 3"
            " && document.querySelector('#qr').complete")
        await page.wait_for_function("() => document.getAnimations().length === 0")
        cards = {c["id"]: c for c in await page.evaluate(SCREEN_BADGES)}
        assert set(cards) == {own, theirs, crowded}
        assert cards[own]["own"] and not cards[theirs]["own"]
        assert [b["text"] for b in cards[own]["badges"]] == ["Moulin de Saint-Émilion · 34 km"]
        assert [b["text"] for b in cards[theirs]["badges"]] == [
            "Fromagerie de la vallée d'Ossau · 206 km"]
        assert cards[crowded]["badges"][0]["text"].startswith(LONG_NAME)
        # An offer keeps its discount whatever it gives up for its cell (it was dropped
        # first, before the producers' badges: a cold try on a portrait screen).
        assert await page.evaluate(
            "(id) => document.querySelector(`[data-post-id='${id}'] .discount`)?.textContent",
            theirs) == "−30 %"
        scale = min(width, height) / 1080
        for c in cards.values():
            assert c["title"], c  # the title stays whole
            for b in c["badges"]:
                assert not b["link"], b  # nobody taps a wall screen
                assert b["px"] >= 27.5 * scale, b  # read from 3 m
                visible = {**b["box"], "right": min(b["box"]["right"], c["card"]["right"])}
                assert inside(visible, c["card"]), (b, c["card"])
            assert c["qr"] and apart(c["card"], c["qr"]), c
        # A long name wraps (two lines at most) and keeps its distance in view.
        first = await page.evaluate(
            "(id) => { const card = document.querySelector(`[data-post-id='${id}']`);"
            " const box = card.getBoundingClientRect();"
            " const km = card.querySelector('.producer-km').getBoundingClientRect();"
            " const name = card.querySelector('.producer-name');"
            " return km.right <= box.right + 0.5 && km.bottom <= box.bottom + 0.5"
            " && km.width > 0 && name.getClientRects().length > 0; }",
            crowded)
        assert first
        assert await page.evaluate(
            "() => document.documentElement.scrollWidth === innerWidth"
            " && document.documentElement.scrollHeight === innerHeight")
        assert page.errors == []


async def test_a_320_px_phone_never_scrolls_sideways_with_long_producer_names(
        redis: Redis, settings: Settings, browser: Any) -> None:
    grocer = await add_shop(redis, settings, "Épicerie Fine", *STREET, category="grocery")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        ids = [await name(http, grocer, LONG_NAME, "Saint-Médard-en-Jalles",
                          offset(*STREET, 12000)),
               await name(http, grocer, "Moulin de Saint-Émilion", "Saint-Émilion", MILL),
               await name(http, grocer, "Fromagerie de la vallée d'Ossau", "Laruns", OSSAU)]
        post_id = await posted(http, grocer, arrival("Panier de la semaine", producer_ids=ids))
        page = await new_page(browser, 320, 568)
        await page.goto(feed_url(web.http))
        await page.wait_for_function(LIVE)
        await page.wait_for_selector(f"{feed_card(post_id)} .producer")
        assert await page.locator(f"{feed_card(post_id)} .producer").count() == 3
        fits = """(sel) => {
          const card = document.querySelector(sel).getBoundingClientRect();
          return [...document.querySelectorAll(sel + ' .producer')].every((b) => {
            const r = b.getBoundingClientRect();
            return r.left >= card.left && r.right <= card.right && r.height >= 24;
          }) && document.documentElement.scrollWidth === innerWidth;
        }"""
        assert await page.evaluate(fits, feed_card(post_id))
        await page.click(f"{feed_card(post_id)} a.producer >> nth=0")
        await page.wait_for_function(
            "() => document.querySelectorAll('.producer-shop .card').length === 1")
        assert await page.evaluate(
            "() => document.documentElement.scrollWidth === innerWidth")
        assert await page.evaluate(fits, ".producer-shop .card")
        # Its map: the column's whole width, no wider.
        await page.wait_for_selector(".producer-map .producer-shop-pin")
        assert await page.evaluate(
            "() => { const m = document.querySelector('.producer-map').getBoundingClientRect();"
            " const c = document.querySelector('#producer-view').getBoundingClientRect();"
            " return Math.abs(m.left - c.left) < 1 && Math.abs(m.right - c.right) < 1"
            " && document.documentElement.scrollWidth === innerWidth; }")
        assert page.errors == []


# The producer page's map: its pins (with where their centre is, against the map's box),
# its label and its note.
MAP_STATE = """() => {
  const map = document.querySelector('#producer-view .producer-map');
  if (!map) return null;
  const box = map.getBoundingClientRect();
  const inView = (e) => {
    const r = e.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    return x >= box.left && x <= box.right && y >= box.top && y <= box.bottom;
  };
  const all = (sel) => [...map.querySelectorAll(sel)];
  const note = map.querySelector('.producer-map-note');
  return {
    label: map.getAttribute('aria-label'),
    producer: all('.producer-pin').map((e) => ({title: e.title, in_view: inView(e)})),
    shops: Object.fromEntries(all('.producer-shop-pin').map((e) =>
      [e.dataset.shopId, {title: e.title, in_view: inView(e), tabbable: e.tabIndex >= 0}])),
    here: all('.map-here').map(inView),
    note: note.hidden ? null : note.textContent,
    tiles: all('img.leaflet-tile-loaded').length,
    height: box.height,
  };
}"""
MAP_WORDS = {
    "fr": {"label": "Carte : Moulin de Saint-Émilion et les boutiques qui le vendent",
           "producer": "Moulin de Saint-Émilion (producteur)",
           "shop": "{} : voir dans la liste",
           "tiles": "Fond de carte indisponible : les boutiques restent à leur place.",
           "failed": "La carte n'a pas pu se charger. La liste reste à jour."},
    "en": {"label": "Map: Moulin de Saint-Émilion and the shops that sell it",
           "producer": "Moulin de Saint-Émilion (producer)",
           "shop": "{}: see it in the list",
           "tiles": "Map background unavailable: shops are still in the right place.",
           "failed": "The map could not load. The list stays up to date."},
}
# Shown as these characters: as markup it would say "Épicerie Léa & Fils".
HOSTILE_NAME = "Épicerie L&eacute;a &amp; Fils"
# Focus on a shop's section of the list, and that section in view.
SHOP_FOCUSED = """(id) => {
  const e = document.activeElement;
  if (!e || !e.matches('.producer-shop') || e.dataset.shopId !== id) return false;
  const r = e.getBoundingClientRect();
  return r.top >= 0 && r.top < innerHeight;
}"""


async def page_moved(page: Any) -> list[Any]:
    """Layout shifts of the producer page's own parts (the map filling, or its note, must
    move nothing under it; the header's own settle is the feed's, measured elsewhere)."""
    return [s for s in await page.evaluate("() => window.__shifts")
            if any("producer" in str(node) for node in s["nodes"])]


async def map_state(page: Any) -> dict[str, Any]:
    return await page.evaluate(MAP_STATE)  # type: ignore[no-any-return]


async def mill_sold_by_four(redis: Redis, settings: Settings,
                            http: httpx.AsyncClient,
                            ) -> tuple[str, list[ShopCreated], list[str]]:
    """The mill named by four shops: three within 8 km of STREET, one 80 km south of it.
    The one 8 km north stands clear of the others' pins at the zoom that shows the mill."""
    shops = [await add_shop(redis, settings, "Au Pain Doré", *STREET),
             await add_shop(redis, settings, HOSTILE_NAME, *offset(*STREET, 330),
                            category="grocery"),
             await add_shop(redis, settings, "Boulangerie du Bouscat",
                            *offset(*STREET, 8000, bearing=0.0)),
             await add_shop(redis, settings, "Boulangerie de Langon",
                            *offset(*STREET, 80000, bearing=math.pi))]
    mill, posts = "", []
    for shop in shops:
        mill = await name(http, shop, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        posts.append(await posted(http, shop, arrival("Pain de seigle", producer_ids=[mill])))
    return mill, shops, posts


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_producer_page_maps_the_producer_its_shops_and_the_passer_by(
        redis: Redis, settings: Settings, browser: Any, lang: str) -> None:
    # Tiles from our own server (no network here): a real tile layer that loads.
    settings = dataclasses.replace(settings, tile_url="/static/icons/icon-192.png?{z}/{x}/{y}",
                                   tile_attribution="Tuiles de test")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill, (baker, grocer, across, langon), (baker_post, *_) = await mill_sold_by_four(
            redis, settings, http)
        page = await new_page(browser, lang=lang)
        await page.goto(feed_url(web.http))
        await page.wait_for_function(LIVE)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        await page.click(f"{feed_card(baker_post)} a.producer")
        await page.wait_for_function(f"() => window.streetfeed.producer === '{mill}'")
        await page.wait_for_function(
            "() => document.querySelectorAll('.producer-shop .card').length === 4"
            " && document.querySelectorAll('.producer-map .producer-shop-pin').length === 4"
            " && !!document.querySelector('.producer-map img.leaflet-tile-loaded')")
        words = MAP_WORDS[lang]
        state = await map_state(page)
        assert state["label"] == words["label"]
        assert state["producer"] == [{"title": words["producer"], "in_view": True}]
        assert state["shops"] == {
            baker.id: {"title": words["shop"].format("Au Pain Doré"), "in_view": True,
                       "tabbable": False},
            grocer.id: {"title": words["shop"].format(HOSTILE_NAME), "in_view": True,
                        "tabbable": False},
            across.id: {"title": words["shop"].format("Boulangerie du Bouscat"),
                        "in_view": True, "tabbable": False},
            # The fifth-nearest is on the map, not in its first view.
            langon.id: {"title": words["shop"].format("Boulangerie de Langon"),
                        "in_view": False, "tabbable": False},
        }
        assert state["here"] == [True]
        assert state["note"] is None and state["tiles"] > 0
        assert await page.inner_text(".producer-map .leaflet-control-attribution") == (
            "Tuiles de test")
        # The position stays in the page: no request of the producer page carries it.
        assert not [url for url in requests if str(STREET[0]) in url and "producer=" not in url]

        # A tap on a shop's pin: its section of the list, in view and focused.
        container = page.locator(".producer-map .leaflet-container")
        await container.evaluate("(e) => { e.dataset.kept = 'yes'; }")
        await page.click(f'.producer-map .producer-shop-pin[data-shop-id="{across.id}"]')
        await page.wait_for_function(SHOP_FOCUSED, arg=across.id)

        # Rendered again (the other language; a click that leaves the focus where it is,
        # on a zoom button): the same map, relabelled, not a new one, with the focus kept.
        await page.focus(".producer-map .leaflet-control-zoom-in")
        await page.evaluate("() => document.querySelector('#lang').click()")
        other = MAP_WORDS["en" if lang == "fr" else "fr"]
        await page.wait_for_function(
            "(label) => document.querySelector('.producer-map')?.getAttribute('aria-label')"
            " === label", arg=other["label"])
        assert await page.locator("#producer-view .leaflet-container").count() == 1
        assert await container.evaluate("(e) => e.isConnected && e.dataset.kept") == "yes"
        assert await page.evaluate(
            "() => document.activeElement.classList.contains('leaflet-control-zoom-in')")
        state = await map_state(page)
        assert state["producer"][0]["title"] == other["producer"]
        assert state["shops"][baker.id]["title"] == other["shop"].format("Au Pain Doré")

        # The keyboard passes through: from the heading, a few Tabs reach the list.
        await page.focus("#producer-heading")
        for _ in range(6):
            await page.keyboard.press("Tab")
            if await page.evaluate("() => !!document.activeElement.closest('.producer-shops')"):
                break
        else:
            raise AssertionError("Tab never left the map for the list")

        # Back: the map goes with the page; forward: a new one.
        await page.go_back()
        await page.wait_for_function("() => window.streetfeed.producer === null")
        assert await page.locator(".producer-map, #producer-view .leaflet-container").count() == 0
        await page.go_forward()
        await page.wait_for_function(
            "() => document.querySelectorAll('.producer-map .producer-shop-pin').length === 4")
        assert await page.locator(".producer-map .leaflet-container").evaluate(
            "(e) => e.dataset.kept === undefined")
        assert page.errors == []


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_producer_page_works_without_tiles_or_without_a_map(
        redis: Redis, settings: Settings, browser: Any, lang: str) -> None:
    settings = dataclasses.replace(settings, tile_url="")  # no tile server configured
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        mill, (baker, grocer, across, langon), _ = await mill_sold_by_four(redis, settings, http)
        url = f"{feed_url(web.http)}&producer={mill}"
        words = MAP_WORDS[lang]

        # Leaflet cannot load (offline before it was ever kept): a note in the map's box,
        # and the list, whole. First, so that no service worker has kept Leaflet yet.
        async def refuse(route: Any) -> None:
            await route.abort()

        await browser.route("**/static/vendor/leaflet/leaflet.js", refuse)
        page = await new_page(browser, lang=lang)
        await page.add_init_script(CLS_OBSERVER)
        await page.goto(url)
        await page.wait_for_function(
            "(text) => document.querySelectorAll('.producer-shop .card').length === 4"
            " && document.querySelector('.producer-map-note').textContent === text",
            arg=words["failed"])
        state = await map_state(page)
        assert state["producer"] == [] and state["shops"] == {}
        assert state["height"] >= 180  # the box keeps its room
        assert await page_moved(page) == []
        await browser.unroute("**/static/vendor/leaflet/leaflet.js", refuse)
        await page.close()

        # No tiles: the pins on the plain background, said so, and still tapped.
        page = await new_page(browser, lang=lang)
        await page.add_init_script(CLS_OBSERVER)
        await page.goto(url)
        await page.wait_for_function(
            "() => document.querySelectorAll('.producer-shop .card').length === 4"
            " && document.querySelectorAll('.producer-map .producer-shop-pin').length === 4")
        state = await map_state(page)
        assert state["note"] == words["tiles"]
        assert await page_moved(page) == []
        assert len(state["producer"]) == 1 and state["tiles"] == 0
        # The note lies over the map's top: no pin of the first view is under it (the
        # producer's was, north of its shops: a cold try).
        note, pins = await page.evaluate(PINS_AND_NOTE)
        assert len(pins) >= 3 and all(apart(note, pin) for pin in pins), (note, pins)
        assert {shop.id for shop in (baker, grocer, across, langon)} == set(state["shops"])
        await page.click(f'.producer-map .producer-shop-pin[data-shop-id="{across.id}"]')
        await page.wait_for_function(SHOP_FOCUSED, arg=across.id)
        assert page.errors == []
        # A producer due north of its shop: the first view is as tall as it can be.
        north = await name(http, baker, "Ferme des Jalles", "Saint-Médard",
                           offset(*STREET, 20000, bearing=0.0))
        await page.goto(f"{feed_url(web.http)}&producer={north}")
        await page.wait_for_function(
            "() => document.querySelectorAll('.producer-map .map-pin').length === 2"
            " && !document.querySelector('.producer-map-note').hidden")
        note, pins = await page.evaluate(PINS_AND_NOTE)
        assert len(pins) == 2 and all(apart(note, pin) for pin in pins), (note, pins)
        assert page.errors == []


PINS_AND_NOTE = """() => {
            const box = (el) => el.getBoundingClientRect().toJSON();
            const map = box(document.querySelector(".producer-map"));
            const pins = [...document.querySelectorAll(".producer-map .map-pin")].map(box)
              .filter((p) => p.top >= map.top && p.bottom <= map.bottom
                             && p.left >= map.left && p.right <= map.right);
            return [box(document.querySelector(".producer-map-note")), pins];
        }"""
