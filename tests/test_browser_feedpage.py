"""The passer-by page as people use it on a phone (issue 14), in real headless Chromium
against the real server: compact controls, "N new nearby", map clusters, the position
asked for only after a tap, and the page over compressed, validated files."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from streetfeed.demo import DEMO_SHOPS
from tests.helpers import (
    add_shop,
    arrival,
    enricher,
    flash,
    new_page,
    send_post,
    wait_for,
    web_server,
)

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)  # the settings' fallback centre too
FAR = (44.8440, -0.5560)
PHONES = ((320, 568), (360, 740), (390, 844))
LIVE = "() => window.streetfeed && window.streetfeed.state === 'live'"

BOX = """(selector) => {
  const e = document.querySelector(selector);
  if (!e) return null;
  const b = e.getBoundingClientRect();
  return {left: b.left, top: b.top, right: b.right, bottom: b.bottom,
          width: b.width, height: b.height};
}"""
TWO_FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


def north(metres: float) -> tuple[float, float]:
    return STREET[0] + metres / 111_320, STREET[1]


async def box(page: Any, selector: str) -> dict[str, float]:
    found = await page.evaluate(BOX, selector)
    assert found is not None, selector
    return found  # type: ignore[no-any-return]


async def test_controls_fit_a_phone_and_the_first_card_comes_early(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shops = [await add_shop(redis, settings, f"Boutique {i}", *north(40 * i)) for i in range(3)]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        for shop in shops:
            await send_post(http, shop, arrival(f"Arrivage chez {shop.id}"))
        for width, height in PHONES:
            page = await new_page(browser, width, height)
            # No position in the URL: the fallback street with its "Use my position" bar,
            # the tallest the top of the page gets.
            await page.goto(f"{web.http}/")
            await page.wait_for_function(LIVE)
            await page.wait_for_selector("#feed .card")
            await page.wait_for_selector("#locate", state="visible")
            for state in ("list", "filters open", "map open"):
                if state == "filters open":
                    await page.click("#filters-toggle")
                    assert await page.get_attribute("#filters-toggle",
                                                    "aria-expanded") == "true"
                if state == "map open":
                    await page.click("#filters-toggle")
                    await page.click("#view-toggle")
                    await page.wait_for_selector("#map-panel", state="visible")
                overflow = await page.evaluate(
                    "() => [document.documentElement.scrollWidth, innerWidth]")
                assert overflow[0] == overflow[1] == width, (width, state, overflow)
                toggle = await box(page, "#view-toggle")
                assert toggle["left"] >= 0 and toggle["right"] <= width, (width, state, toggle)
                assert toggle["top"] >= 0 and toggle["bottom"] <= height, (width, state, toggle)
                controls = ["#lang", "#filters-toggle", "#radius", "#view-toggle"]
                if state == "list":
                    controls.append("#locate-button")
                    first = await box(page, "#feed .card")
                    assert first["top"] <= 0.4 * height, (width, first)
                if state == "filters open":
                    controls += ["#kind-filter [data-kind='']", "#followed-only", "#category",
                                 "#kind-filter [data-kind='opening_change']"]
                for selector in controls:
                    target = await box(page, selector)
                    assert target["width"] >= 44 and target["height"] >= 44, (width, selector)
                    assert target["left"] >= 0 and target["right"] <= width, (width, selector)
            await page.click("#view-toggle")  # remembered: back to the list for the next
            await page.wait_for_selector("#map-panel", state="hidden")
            # The filters are reachable folded: one on, the button says so.
            await page.click("#filters-toggle")
            await page.click("#kind-filter [data-kind='flash_offer']")
            assert await page.text_content("#filters-count") == "1"
            assert "1 filtre actif" in (await page.get_attribute("#filters-toggle",
                                                                 "aria-label") or "")
            assert page.errors == []
            await page.close()
        # A desktop: everything shown at once (no fold), still nothing sideways.
        page = await new_page(browser, 1920, 1080)
        await page.goto(f"{web.http}/")
        await page.wait_for_selector("#feed .card")
        assert await page.is_hidden("#filters-toggle")
        assert await page.is_visible("#kind-filter") and await page.is_visible("#category")
        assert await page.evaluate("() => document.documentElement.scrollWidth") == 1920
        assert (await box(page, "#feed .card"))["top"] <= 0.4 * 1080
        assert page.errors == []


async def test_new_posts_out_of_view_show_a_pill_that_takes_you_there(
        redis: Redis, settings: Settings, browser: Any) -> None:
    near = [await add_shop(redis, settings, f"Voisin {i}", *north(100 + 20 * i))
            for i in range(8)]
    farthest = await add_shop(redis, settings, "Au bout de la rue", *north(900))
    nearest = await add_shop(redis, settings, "Juste là", *north(5))
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        for shop in near:
            await send_post(http, shop, arrival(f"Arrivage {shop.id}", text="Du nouveau. " * 8))
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=1000")
        await page.wait_for_function(LIVE)
        await page.wait_for_function("() => document.querySelectorAll('#feed .card').length === 8")
        assert await page.get_attribute(".new-pill-wrap", "aria-live") == "polite"
        assert await page.is_hidden("#new-pill")

        # Below the fold: the pill counts them, by the language's plural rules.
        first = (await send_post(http, farthest, arrival("Tout au bout"))).json()["id"]
        await page.wait_for_selector("#new-pill", state="visible")
        assert await page.text_content("#new-pill-label") == "1 nouveauté à proximité"
        second = (await send_post(http, farthest, arrival("Encore au bout"))).json()["id"]
        await page.wait_for_function(
            "() => document.querySelector('#new-pill-label').textContent"
            " === '2 nouveautés à proximité'")
        assert not await page.evaluate("() => document.querySelector('#new-pill')"
                                       ".classList.contains('is-above')")
        pill = await box(page, "#new-pill")  # one line, centred, whole
        assert pill["height"] <= 48 and pill["left"] > 0 and pill["right"] < 360, pill
        await page.click("#lang")
        assert await page.text_content("#new-pill-label") == "2 new nearby"
        await page.click("#lang")
        assert await page.text_content("#new-pill-label") == "2 nouveautés à proximité"

        # A tap scrolls to them; seen, the pill goes.
        await page.click("#new-pill")
        await page.wait_for_selector("#new-pill", state="hidden")
        for post_id in (first, second):
            card = await box(page, f'[data-post-id="{post_id}"]')
            assert card["top"] >= 0 and card["bottom"] <= 740, card

        # Scrolled down, a post lands at the top (nearest first): the pill points up.
        third = (await send_post(http, nearest, arrival("Juste à côté"))).json()["id"]
        await page.wait_for_selector("#new-pill.is-above", state="visible")
        assert await page.text_content("#new-pill-label") == "1 nouveauté à proximité"
        await page.click("#new-pill")
        await page.wait_for_selector("#new-pill", state="hidden")
        card = await box(page, f'[data-post-id="{third}"]')
        assert card["top"] >= 0 and card["bottom"] <= 740, card
        assert await page.evaluate("() => document.activeElement.dataset.postId") == third

        # A post that lands in view needs no pill.
        fourth = (await send_post(http, nearest, arrival("Sous vos yeux"))).json()["id"]
        await page.wait_for_selector(f'[data-post-id="{fourth}"]')
        await page.evaluate(TWO_FRAMES)
        assert await page.is_hidden("#new-pill")

        # Seen by scrolling there without the pill: it goes all the same.
        fifth = (await send_post(http, farthest, arrival("Dernier arrivage"))).json()["id"]
        await page.wait_for_selector("#new-pill", state="visible")
        await page.locator(f'[data-post-id="{fifth}"]').scroll_into_view_if_needed()
        await page.wait_for_selector("#new-pill", state="hidden")
        assert page.errors == []


# Counts each call into the Geolocation API, before any script of the page runs.
GEO_SPY = """(() => {
  window.geoCalls = [];
  for (const name of ["getCurrentPosition", "watchPosition"]) {
    const real = Geolocation.prototype[name];
    Geolocation.prototype[name] = function (...args) {
      window.geoCalls.push(name);
      return real.apply(this, args);
    };
  }
})()"""


async def test_position_is_asked_only_after_a_tap_then_remembered(
        redis: Redis, settings: Settings, browser: Any) -> None:
    near_shop = await add_shop(redis, settings, "Primeur", *STREET)
    far_shop = await add_shop(redis, settings, "Boucherie", *FAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        near_id = (await send_post(http, near_shop, arrival("Fraises"))).json()["id"]
        far_id = (await send_post(http, far_shop, arrival("Agneau"))).json()["id"]
        await browser.add_init_script(GEO_SPY)
        # Granted already: a page that asked on load would read the position at once.
        await browser.grant_permissions(["geolocation"], origin=web.http)
        await browser.set_geolocation({"latitude": FAR[0], "longitude": FAR[1]})
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/")
        await page.wait_for_function(LIVE)
        # The fallback centre of /api/v1/config meanwhile, and nothing asked.
        await page.wait_for_selector(f'[data-post-id="{near_id}"]')
        assert await page.evaluate("() => window.streetfeed.position") == {
            "lat": settings.fallback_centre[0], "lon": settings.fallback_centre[1]}
        assert await page.is_visible("#locate-button")
        assert await page.text_content("#locate-text") == "Ici : la rue de démonstration"
        assert await page.evaluate("() => window.geoCalls") == []

        await page.click("#locate-button")
        await page.wait_for_selector(f'[data-post-id="{far_id}"]')
        assert await page.evaluate("() => window.geoCalls[0]") == "getCurrentPosition"
        assert await page.evaluate("() => window.streetfeed.position") == {
            "lat": FAR[0], "lon": FAR[1]}
        await page.wait_for_selector(f'[data-post-id="{near_id}"]', state="detached")
        assert await page.is_hidden("#locate")

        # Chosen on this device and still granted: the next visit needs no tap.
        again = await new_page(browser, 360, 740)
        await again.goto(f"{web.http}/")
        await again.wait_for_selector(f'[data-post-id="{far_id}"]')
        assert await again.is_hidden("#locate")
        assert near_id not in await again.eval_on_selector_all(
            "#feed .card", "cards => cards.map(c => c.dataset.postId)")

        # Permission taken back in the browser: no prompt on load, the tap again, and a
        # refusal said as such.
        await browser.clear_permissions()
        refused = await new_page(browser, 360, 740)
        await refused.goto(f"{web.http}/")
        await refused.wait_for_function(LIVE)
        await refused.wait_for_selector(f'[data-post-id="{near_id}"]')
        assert await refused.evaluate("() => window.geoCalls") == []
        await refused.click("#locate-button")
        await refused.wait_for_function(
            "() => document.querySelector('#locate-text').dataset.i18n === 'locate_refused'")
        assert await refused.is_visible("#locate-button")
        assert await refused.evaluate(
            "() => localStorage.getItem('streetfeed.geo')") is None
        assert page.errors == [] and again.errors == [] and refused.errors == []


PINS = """() => [...document.querySelectorAll(
    '.leaflet-marker-pane .map-pin, .leaflet-marker-pane .map-cluster')].map((e) => {
  const b = e.getBoundingClientRect();
  return {cluster: e.classList.contains('map-cluster'), n: Number(e.textContent) || 1,
          left: b.left, top: b.top, right: b.right, bottom: b.bottom};
})"""
SETTLED = "() => !document.querySelector('.leaflet-zoom-anim')"
# The first of these markers wholly inside the map (Leaflet keeps the others drawn too).
IN_VIEW = """(selector) => {
  const map = document.querySelector('#map').getBoundingClientRect();
  return [...document.querySelectorAll(selector)].findIndex((e) => {
    const b = e.getBoundingClientRect();
    return b.left >= map.left && b.right <= map.right && b.top >= map.top
      && b.bottom <= map.bottom;
  });
}"""


async def tap_in_view(page: Any, selector: str) -> None:
    index = await page.evaluate(IN_VIEW, selector)
    assert index >= 0, f"no {selector} in view"
    await page.locator(selector).nth(index).click()


def overlapping(pins: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(i, j) for i, a in enumerate(pins) for j, b in enumerate(pins[i + 1:], i + 1)
            if a["left"] < b["right"] and b["left"] < a["right"]
            and a["top"] < b["bottom"] and b["top"] < a["bottom"]]


@pytest.mark.parametrize("viewport", [(390, 844), (1280, 720)])
async def test_map_pins_of_a_street_never_overlap(
        redis: Redis, settings: Settings, browser: Any, viewport: tuple[int, int]) -> None:
    """The demo street's 13 shops, a few metres apart: at the default zoom every tap
    target stands alone (pins or clusters), and tapping clusters opens them up."""
    shops = [await add_shop(redis, settings, name, lat, lon)
             for _, name, _, lat, lon, _ in DEMO_SHOPS]
    assert len(shops) == 13
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        for shop in shops:
            await send_post(http, shop, arrival(f"Arrivage {shop.id}"))
        page = await new_page(browser, *viewport)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=1000&view=map")
        await page.wait_for_function(LIVE)
        await page.wait_for_function(
            "() => window.streetfeed.map && window.streetfeed.map.pins === 13")
        await page.wait_for_function(SETTLED)
        pins = await page.evaluate(PINS)
        assert sum(pin["n"] for pin in pins) == 13, pins
        assert overlapping(pins) == [], pins
        assert any(pin["cluster"] for pin in pins)  # 13 shops in one street do overlap

        # Each tap on a cluster zooms closer, until every shop is a pin of its own.
        for _ in range(8):
            clusters = [pin for pin in pins if pin["cluster"]]
            if not clusters:
                break
            before = len(pins)
            await tap_in_view(page, ".leaflet-marker-pane .map-cluster")
            await page.wait_for_function(
                f"() => document.querySelectorAll('.leaflet-marker-pane .map-pin,"
                f" .leaflet-marker-pane .map-cluster').length > {before}")
            await page.wait_for_function(SETTLED)
            pins = await page.evaluate(PINS)
            assert sum(pin["n"] for pin in pins) == 13, pins
        assert not any(pin["cluster"] for pin in pins), pins
        pin = page.locator(".leaflet-marker-pane .map-pin").nth(
            await page.evaluate(IN_VIEW, ".leaflet-marker-pane .map-pin"))
        label = await pin.get_attribute("aria-label")
        await pin.click()
        popup = await page.wait_for_selector(".leaflet-popup-content")
        assert (label or "").split(" :")[0] in await popup.inner_text()
        assert page.errors == []


# How many lines each element matching the selector takes: the distinct tops of its text.
LINES = """(selector) => [...document.querySelectorAll(selector)].map((el) => {
  const tops = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  while (walker.nextNode()) {
    if (!walker.currentNode.textContent.trim()) continue;
    range.selectNodeContents(walker.currentNode);
    tops.push(...[...range.getClientRects()].map((r) => r.top));
  }
  tops.sort((a, b) => a - b);
  return tops.filter((top, i) => i === 0 || top - tops[i - 1] > 3).length;
})"""
# The right edge of the banner's text and the left edge of its button.
BANNER = """() => {
  const range = document.createRange();
  range.selectNodeContents(document.querySelector('#locate-text'));
  const text = Math.max(...[...range.getClientRects()].map((r) => r.right));
  const textBox = document.querySelector('#locate-text');
  return {text, button: document.querySelector('#locate-button').getBoundingClientRect().left,
          fits: textBox.scrollWidth <= textBox.clientWidth};
}"""
EVERY_DAY = {"timezone": "Europe/Paris", "weekly": {
    day: [{"open": "07:30", "close": "23:30"}]
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_a_narrow_phone_reads_followed_cards_the_banner_and_the_map(
        redis: Redis, settings: Settings, browser: Any, lang: str) -> None:
    """Issue 14 (cold try): at 320 and 360 px a followed shop's card squeezed its distance
    to a word a line, "démonstration" ran under the "Use my position" button, map pins
    said "7 post(s)", "List only" took a toolbar row of its own, and English times and
    dates were American ("opens at 07:30 AM")."""
    shop = await add_shop(redis, settings, "Épicerie du Marché", *north(190))
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        assert (await http.put(f"/api/v1/shops/{shop.id}/hours",
                               headers={"Authorization": f"Bearer {shop.token}"},
                               json=EVERY_DAY)).status_code == 200
        for body in (arrival("Miel de bruyère"), flash("Olives de Nyons", minutes=300)):
            assert (await send_post(http, shop, body)).status_code == 202
        for width in (320, 360):
            page = await new_page(browser, width, 740)
            await page.add_init_script(f"localStorage.setItem('streetfeed.lang', '{lang}')")
            await page.goto(f"{web.http}/")
            await page.wait_for_function(LIVE)
            await page.wait_for_selector("#feed .card.kind-flash_offer .open-state")
            await page.wait_for_selector("#feed .card.kind-new_arrival")
            if not await page.locator("#feed .card.is-followed").count():
                await page.click("#feed .card .star")
            await page.wait_for_function(
                "() => document.querySelectorAll('#feed .card.is-followed').length === 2")
            # Whole units in the card's head: the distance on its two lines (metres, then
            # minutes' walk), the kind and the "followed" mark on one each.
            assert await page.evaluate(LINES, "#feed .card .where") == [2, 2], (lang, width)
            for part in (".badge", ".followed-mark", ".distance", ".walk"):
                lines = await page.evaluate(LINES, f"#feed .card {part}")
                assert lines == [1, 1], (lang, width, part, lines)
            # The banner's text stays in its column, clear of the button.
            banner = await page.evaluate(BANNER)
            assert banner["fits"] and banner["text"] <= banner["button"], (lang, width, banner)
            # Times on 24 hours whatever the language ("until 18:40" for a long offer).
            text = await page.inner_text("#feed")
            assert not re.search(r"\b[AP]M\b", text), text
            # (with its day when that is tomorrow where the shop is: "until Tue 02:09")
            assert re.search(r"(jusqu'à|until) (\S+ )?\d\d:\d\d", text), text
            if width == 320:
                await page.click("#view-toggle")
                await page.wait_for_selector("#map-panel .map-pin")
                pin = await page.get_attribute("#map-panel .map-pin", "title") or ""
                assert re.fullmatch(
                    r"Épicerie du Marché ?: 2 (annonces|posts)", pin), pin
                toolbar = [(await box(page, sel))["top"] for sel in (
                    "#filters-toggle", "#radius", "#view-toggle")]
                assert max(toolbar) - min(toolbar) < 10, (lang, toolbar)
                await page.click("#view-toggle")  # the list again for the next width
            assert page.errors == []
            await page.close()


# Every layout shift from now on, summed as CLS counts it (none follows an input here).
WATCH_SHIFTS = """() => {
  window.shifts = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.shifts += entry.value;
  }).observe({type: "layout-shift"});
}"""
# The cards relative to the view: [id, top, bottom], in the feed's order.
CARD_BOXES = """() => [...document.querySelectorAll('#feed .card')].map((c) => {
  const b = c.getBoundingClientRect();
  return [c.dataset.postId, b.top, b.bottom];
})"""


async def test_posts_ending_above_or_in_view_do_not_move_what_the_reader_sees(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shops = [await add_shop(redis, settings, f"Voisin {i}", *north(30 + 30 * i))
             for i in range(10)]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        owner: dict[str, Any] = {}
        for shop in shops:
            post_id = (await send_post(http, shop, arrival(
                f"Arrivage {shop.id}", text="Du nouveau. " * 8))).json()["id"]
            owner[post_id] = shop
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=1000")
        await page.wait_for_function(LIVE)
        await page.wait_for_function("() => document.querySelectorAll('#feed .card').length === 10")
        await page.evaluate("() => scrollTo(0, 900)")
        await page.evaluate(TWO_FRAMES)
        await page.evaluate(WATCH_SHIFTS)
        boxes = await page.evaluate(CARD_BOXES)
        above = next(i for i, b in enumerate(boxes) if b[2] < 0)
        in_view = next(i for i, b in enumerate(boxes) if b[2] > 0)
        reader = boxes[in_view + 1]
        assert 0 < reader[1] < 740, boxes

        async def withdraw(post_id: str) -> None:
            shop = owner[post_id]
            answer = await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                       headers={"Authorization": f"Bearer {shop.token}"})
            assert answer.status_code < 300, answer.text

        await withdraw(boxes[above][0])
        await page.wait_for_selector(f'[data-post-id="{boxes[above][0]}"]', state="detached")
        await withdraw(boxes[in_view][0])
        ended = f'[data-post-id="{boxes[in_view][0]}"]'
        # Read on a screen: it stays, said over, and the card under it has not moved.
        await page.wait_for_selector(f"{ended}.is-ended")
        assert "Terminé" in await page.inner_text(ended)
        await page.evaluate(TWO_FRAMES)
        now = await box(page, f'[data-post-id="{reader[0]}"]')
        assert abs(now["top"] - reader[1]) <= 2, (now, reader)
        assert await page.evaluate("() => window.shifts") < 0.1
        # Scrolled away, the ended card goes, still without moving the one read.
        await page.evaluate("() => scrollBy(0, 800)")
        await page.wait_for_selector(ended, state="detached")
        assert page.errors == []


async def test_a_withdrawn_offer_stops_counting_down(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Its card stays in view, said ended; its "Ends in 43:55" went on beside it (a cold
    user's find). Then hidden, it left a gap while the mark covered the address (the next
    cold user): the countdown's line says "Ended" now, in its place, so nothing moves."""
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    further = await add_shop(redis, settings, "Primeur", *north(200))
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        offer = (await send_post(http, shop, flash("-20 % sur le comté", minutes=45))).json()
        # A card under it: the last card of a feed goes at once, moving nothing (app.js).
        assert (await send_post(http, further, arrival("Clémentines"))).status_code == 202
        page = await new_page(browser, 360, 740)
        await page.clock.install()  # its timers run as usual, and on when the test says
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE)
        card = f'#feed [data-post-id="{offer["id"]}"]'
        await page.wait_for_selector(f"{card} .countdown", state="visible")
        # In units: "44:59" read as a time of day beside "until 12:22" (a cold try).
        said = await page.text_content(f"{card} .countdown")
        assert re.fullmatch("Encore 4[45]\u00a0min \\d\\d\u00a0s", said or ""), said
        before = await box(page, card)
        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{offer['id']}",
                                      headers={"Authorization": f"Bearer {shop.token}"})
        assert withdrawn.status_code == 200
        await page.wait_for_selector(f"{card}.is-ended")
        mark = f"{card} .ended-mark"
        assert await page.locator(mark).count() == 1
        assert await page.inner_text(mark) == "Terminé"
        assert await page.locator(f"{card} .countdown").count() == 1  # the same line
        await page.clock.run_for(2_000)  # two ticks later: still so, no countdown back
        assert await page.inner_text(mark) == "Terminé"
        foot, said = await box(page, f"{card} .card-foot"), await box(page, mark)
        assert said["top"] + said["height"] <= foot["top"], (said, foot)  # covers nothing
        after = await box(page, card)
        assert abs(after["height"] - before["height"]) <= 1, (before, after)
        assert page.errors == []


async def test_an_ended_card_without_a_countdown_says_so_over_nothing(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """A withdrawn "closed now" (a later "open late" supersedes it): its mark lay over the
    card's foot, "31 rue Sainte-Ca[Terminé]enant" (a cold user's find). It takes the foot's
    line instead: nothing covered, the card as tall within 2 px."""
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    further = await add_shop(redis, settings, "Primeur", *north(200))
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        news = (await send_post(http, shop, arrival("Comté 24 mois"))).json()
        assert (await send_post(http, further, arrival("Clémentines"))).status_code == 202
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE)
        card = f'#feed [data-post-id="{news["id"]}"]'
        await page.wait_for_selector(f"{card} .card-foot", state="visible")
        before = await box(page, card)
        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{news['id']}",
                                      headers={"Authorization": f"Bearer {shop.token}"})
        assert withdrawn.status_code == 200
        await page.wait_for_selector(f"{card}.is-ended")
        assert await page.inner_text(f"{card} .ended-mark") == "Terminé"
        covered = await page.evaluate("""(sel) => {
          const card = document.querySelector(sel);
          const mark = card.querySelector('.ended-mark').getBoundingClientRect();
          return [...card.querySelectorAll('*')].filter((el) => {
            if (el.closest('.ended-mark') || el.contains(card.querySelector('.ended-mark')))
              return false;
            const r = el.getBoundingClientRect();
            return r.width > 0 && r.height > 0 && r.left < mark.right && r.right > mark.left
              && r.top < mark.bottom && r.bottom > mark.top;
          }).map((el) => el.className);
        }""", card)
        assert covered == [], covered
        after = await box(page, card)
        assert abs(after["height"] - before["height"]) <= 2, (before, after)
        assert page.errors == []


@pytest.mark.parametrize(("lang", "locale"), [("fr", "fr-FR"), ("en", "en-GB")])
async def test_an_offer_ending_another_day_says_which(
        redis: Redis, settings: Settings, browser: Any, lang: str, locale: str) -> None:
    """Regression: "until 15:57" for an offer ending tomorrow afternoon read as today's (the
    alert's notification said the day, the card did not)."""
    shop = await add_shop(redis, settings, "Librairie La Page Blanche", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        answer = await send_post(http, shop, flash("Beaux livres -30 %", minutes=180))
        post_id = answer.json()["id"]
        ends_at = await wait_for_end(http, post_id)
        page = await new_page(browser, 360, 740, lang=lang)
        # The page's clock a day and an hour before the end: another day, whatever the hour.
        await page.clock.install(time=ends_at - 25 * 3600)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        countdown = f'#feed [data-post-id="{post_id}"] .countdown'
        await page.wait_for_selector(countdown)
        expected = await page.evaluate(
            "([ms, locale]) => new Intl.DateTimeFormat(locale, {weekday: 'short', hour: "
            "'2-digit', minute: '2-digit', timeZone: 'Europe/Paris'}).format(ms)",
            [ends_at * 1000, locale])
        text = await page.inner_text(countdown)
        assert text == {"fr": f"jusqu'à {expected}", "en": f"until {expected}"}[lang], text
        await page.close()


async def wait_for_end(http: httpx.AsyncClient, post_id: str) -> float:
    """The live post's end (s since the epoch), once it is live."""
    found: list[float] = []

    async def live() -> bool:
        answer = await http.get(f"/api/v1/posts/{post_id}")
        if answer.status_code == 200:
            found.append(datetime.fromisoformat(answer.json()["ends_at"]).timestamp())
        return bool(found)
    await wait_for(live, message="the offer live")
    return found[0]
