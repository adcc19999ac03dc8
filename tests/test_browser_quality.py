"""Browser quality of every page, as issue 14 measured it, in real headless Chromium.

For the passer-by page, a producer's page (issue 16), the shop console (signed out, in,
in with four photos attached to a new post, and in with three producers named and "My
producers" open) and the in-shop screen, at three phone sizes and a 1080p screen both ways
up, with posts carrying photos and naming producers:
  - no horizontal overflow (the page never scrolls sideways: scrollWidth == innerWidth);
  - no axe-core violation of serious or critical impact (axe-core from the pinned
    `axe-playwright-python` wheel, which bundles it: nothing fetched at test time);
  - cumulative layout shift under 0.1 while the page loads under Lighthouse's mobile
    throttling, measured as Lighthouse does (PerformanceObserver on `layout-shift`,
    shifts without recent input, largest session window).

One server and one street for the whole module, in a thread of its own (its own event
loop). Each page is loaded and measured once per size, in a fresh context of the
session's one Chromium; the three checks read that measurement.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import load_settings
from schemas.limits import MEDIA_PER_POST_MAX
from schemas.shops import ShopCreated
from tests.conftest import chromium_context
from tests.helpers import (
    CLS_OBSERVER,
    add_shop,
    arrival,
    enricher,
    flash,
    photo_jpeg,
    send_post,
    throttle_like_lighthouse,
    upload_photo,
    web_server,
)

pytestmark = pytest.mark.browser
# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
on_the_session_loop = pytest.mark.asyncio(loop_scope="session")

SHOP = (44.8370, -0.5735)

SIZES = {
    "320x568": (320, 568),
    "360x740": (360, 740),
    "390x844": (390, 844),
    "1920x1080": (1920, 1080),
    "1080x1920": (1080, 1920),
}

# What "ready" means on each page: its data is in (the layout it will keep), and the
# photos in its first view have arrived.
PAGES = {
    "feed": ("/?lat={lat}&lon={lon}&radius_m=500",
             "() => window.streetfeed?.state === 'live'"
             " && !!document.querySelector('#feed .card img.card-photo')"
             " && [...document.querySelectorAll('#feed img[loading=eager]')]"
             ".every((img) => img.complete)"),
    "producer": ("/?lat={lat}&lon={lon}&radius_m=500&producer={producer}",
                 "() => window.streetfeed?.state === 'live'"
                 " && document.querySelectorAll('.producer-shop .card').length === 2"
                 " && !!document.querySelector('.producer-map .producer-pin')"),
    "console-signed-out": ("/shop",
                           "() => !!document.querySelector('#signin:not([hidden])')"),
    "console-signed-in": ("/shop", "() => !!window.streetfeedConsole?.shop"),
    # Issue 16: the shop names three producers; once loaded, the new post names them all,
    # the producer search shows its answers and the new producer's form is open.
    "console-producers": ("/shop", "() => !!window.streetfeedConsole?.shop"
                          " && document.querySelectorAll('#post-producers .prod-chip').length"
                          " === 3"),
    "screen": ("/screen/{shop}?radius_m=500",
               "() => window.streetfeedScreen?.state === 'live'"
               " && !!document.querySelector('#neighbours .card')"
               " && !!document.querySelector('#own-posts img.card-photo')?.complete"),
}

# States measured on the page of another once that one is measured: the signed-in console
# with four photos picked for a new post (its load, hence its layout shift, is the
# signed-in console's: it was loaded and measured twice before).
LATER_STATES = {"console-photos": "console-signed-in"}


@dataclass(frozen=True)
class Site:
    base: str
    shop: ShopCreated
    producer: str  # named by the shop and a neighbour, on their posts


@pytest.fixture(scope="module")
def site(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A street of five shops with live posts, served by one web process and one
    enricher running in a thread of their own until the module is done."""
    settings = load_settings({}, redis_url=redis_server,
                             data_dir=tmp_path_factory.mktemp("quality") / "var", port=0,
                             demo=False, shop_posts_per_minute=100_000,
                             address_requests_per_minute=100_000,
                             address_sockets_per_minute=100_000,
                             max_sockets_per_address=20_000)
    started = threading.Event()
    shared: dict[str, Any] = {}

    async def serve() -> None:
        redis = Redis.from_url(settings.redis_url)  # type: ignore[arg-type]
        await redis.flushall()
        stop = asyncio.Event()
        try:
            async with web_server(settings) as web, enricher(redis, settings), \
                    httpx.AsyncClient(base_url=web.http) as http:
                shop = await add_shop(redis, settings, "Au Pain Doré", *SHOP)
                # Photos (issue 15): the screen's own post, and two of the neighbours'
                # (one of them two photos, portrait first), arrive and load late too.
                bread = await upload_photo(http, shop, photo_jpeg((180, 120, 40)))
                # Producers (issue 16): a mill the baker and the cheese shop name, and a
                # dairy 200 km away.
                mill = {"name": "Moulin de Saint-Émilion", "place": "Saint-Émilion",
                        "lat": 44.894, "lon": -0.155}
                dairy = {"name": "Fromagerie de la vallée d'Ossau", "place": "Laruns",
                         "lat": 42.988, "lon": -0.424}

                async def named(who: ShopCreated, producer: dict[str, Any]) -> str:
                    response = await http.post(
                        f"/api/v1/shops/{who.id}/producers", json=producer,
                        headers={"Authorization": f"Bearer {who.token}"})
                    assert response.status_code == 201, response.text
                    return str(response.json()["id"])

                mill_id = await named(shop, mill)
                posts = [(shop, arrival("Pain de seigle au levain", text="Farine de Saint-Émilion.",
                                        price=4.2, media_ids=[bread], producer_ids=[mill_id]))]
                for i, (name, category) in enumerate([("Fromagerie Lucas", "cheese"),
                                                      ("Café Le Comptoir", "cafe"),
                                                      ("Librairie Mollat", "bookshop"),
                                                      ("Boucherie Martin", "butcher")]):
                    neighbour = await add_shop(redis, settings, name, SHOP[0] + (i + 1) * 4e-4,
                                               SHOP[1], category=category)
                    photos: dict[str, Any] = {"media_ids": [
                        await upload_photo(http, neighbour, photo_jpeg((40 * i, 140, 90), size))
                        for size in [(900, 1200), (1600, 1200)][i:2]]} if i < 2 else {}
                    if i == 0:
                        photos["producer_ids"] = [await named(neighbour, mill),
                                                  await named(neighbour, dairy)]
                    posts.append((neighbour, flash(f"-{10 * (i + 1)} % sur la sélection",
                                                   minutes=60, discount_pct=10 * (i + 1),
                                                   text="Jusqu'à épuisement du stock.", **photos)
                                  if i % 2 else arrival("Arrivage du jour", price=12.5, **photos)))
                for who, body in posts:
                    assert (await send_post(http, who, body)).status_code == 202
                shared["site"] = Site(web.http, shop, mill_id)
                shared["stop"] = (asyncio.get_running_loop(), stop)
                started.set()
                await stop.wait()
        finally:
            await redis.aclose()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # told to the fixture, not lost in the thread
            shared["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="quality-site", daemon=True)
    thread.start()
    assert started.wait(60), "the module's server did not start"
    if "error" in shared:
        raise shared["error"]
    try:
        yield shared["site"]
    finally:
        loop, stop = shared["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    if "error" in shared:
        raise shared["error"]


async def _attach_photos(page: Any) -> None:
    """A shopkeeper's four photos, picked from the gallery and uploaded."""
    await page.wait_for_function("() => !document.querySelector('#post-photos .photo-gallery')"
                                 ".disabled", timeout=30_000)
    await page.set_input_files("#post-photos input[type=file][multiple]", [
        {"name": f"{i}.jpg", "mimeType": "image/jpeg",
         "buffer": photo_jpeg((60 * i, 120, 200), (480, 360))} for i in range(MEDIA_PER_POST_MAX)])
    await page.wait_for_function(
        "(n) => [...document.querySelectorAll('#post-photos .photo-item')]"
        ".filter(li => li.dataset.status === 'done').length === n",
        arg=MEDIA_PER_POST_MAX, timeout=60_000)


# Long names among them: the widest the console's producer lists get.
PRODUCERS = [("Moulin de Saint-Émilion", "Saint-Émilion", 44.894, -0.155),
             ("Coopérative laitière des coteaux de l'Entre-deux-Mers", "Créon", 44.775, -0.348),
             ("Les Jardins de Bègles", "Bègles", 44.800, -0.530)]


async def _name_producers(page: Any, site: Site) -> None:
    """The shop names three producers (the same ids again on every call: dedupe)."""
    for name, place, lat, lon in PRODUCERS:
        response = await page.request.post(
            f"{site.base}/api/v1/shops/{site.shop.id}/producers",
            data={"name": name, "place": place, "lat": lat, "lon": lon},
            headers={"Origin": site.base})
        assert response.status == 201, await response.text()


async def _producers_open(page: Any) -> None:
    """All three named by the new post, the search's answers shown, the new producer's
    form open with its map."""
    for i in range(len(PRODUCERS)):
        await page.locator("#post-producers .prod-chip").nth(i).click()
    await page.click("#prod-new")
    await page.wait_for_selector("#prod-map .place-shop", timeout=30_000)
    await page.fill("#prod-search", "de")  # focused last: its answers stay open
    await page.wait_for_selector("#prod-results:not([hidden])", timeout=10_000)


@dataclass(frozen=True)
class Measure:
    scroll_width: int
    inner_width: int
    serious: list[str]  # axe violations of serious or critical impact: "id (impact): nodes"
    cls: float
    shifts: list[dict[str, Any]]
    errors: list[str]


_measured: dict[tuple[str, str], Measure] = {}


async def measure(chromium: Any, site: Site, page_name: str, size: str) -> Measure:
    """The page at this size, loaded and measured once (by the first test that asks) in a
    fresh browser context of its own: no cookie, storage or cache from another page."""
    key = (page_name, size)
    if key not in _measured:
        async with chromium_context(chromium) as context:
            loaded = LATER_STATES.get(page_name, page_name)
            for name, measured in (await _measure(context, site, loaded, size)).items():
                _measured[(name, size)] = measured
    return _measured[key]


# Finite animations only: a pulsing "live" dot runs for ever.
SETTLED = ("() => document.getAnimations().every((a) => "
           "a.effect.getComputedTiming().endTime === Infinity)")


async def _measure(browser: Any, site: Site, page_name: str, size: str,
                   ) -> dict[str, Measure]:
    """`page_name` and the states of LATER_STATES measured on it, by name."""
    path, ready = PAGES[page_name]
    width, height = SIZES[size]
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.set_viewport_size({"width": width, "height": height})
    if page_name in ("console-signed-in", "console-producers"):
        response = await page.request.post(
            f"{site.base}/api/v1/session", data={"shop_id": site.shop.id, "token": site.shop.token},
            headers={"Origin": site.base})
        assert response.ok, await response.text()
    if page_name == "console-producers":
        await _name_producers(page, site)
    await page.add_init_script(CLS_OBSERVER)
    await throttle_like_lighthouse(page)
    await page.goto(site.base + path.format(lat=SHOP[0], lon=SHOP[1], shop=site.shop.id,
                                            producer=site.producer))
    await page.wait_for_function(ready, timeout=30_000)
    await page.wait_for_function(SETTLED, timeout=30_000)
    cls = float(await page.evaluate("() => window.__cls()"))
    shifts = await page.evaluate("() => window.__shifts")
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    if page_name == "console-producers":
        await _producers_open(page)
    measured = {page_name: await _overflow_and_axe(page, cls, shifts, errors)}
    if page_name == "console-signed-in":  # after the load's shifts are measured
        await _attach_photos(page)
        measured["console-photos"] = await _overflow_and_axe(page, cls, shifts, errors)
    await page.close()
    return measured


async def _overflow_and_axe(page: Any, cls: float, shifts: list[dict[str, Any]],
                            errors: list[str]) -> Measure:
    """The page as it is now: its width and axe-core's serious violations, with the load's
    layout shift and the errors so far."""
    from axe_playwright_python.async_playwright import Axe

    scroll_width, inner_width = await page.evaluate(
        "() => [document.documentElement.scrollWidth, innerWidth]")
    results = await Axe().run(page)
    serious = [f"{v['id']} ({v['impact']}): "
               + "; ".join(str(n["target"]) for n in v["nodes"][:5])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    return Measure(scroll_width, inner_width, serious, cls, shifts, list(errors))


# Every page and state at every size.
CASES = [pytest.param(page_name, size, id=f"{page_name}-{size}")
         for page_name in [*PAGES, *LATER_STATES] for size in SIZES]


@on_the_session_loop
@pytest.mark.parametrize(("page_name", "size"), CASES)
async def test_no_horizontal_overflow(site: Site, chromium: Any, page_name: str,
                                      size: str) -> None:
    m = await measure(chromium, site, page_name, size)
    assert m.scroll_width == m.inner_width, (m.scroll_width, m.inner_width)
    assert m.errors == []


@on_the_session_loop
@pytest.mark.parametrize(("page_name", "size"), CASES)
async def test_no_serious_axe_violation(site: Site, chromium: Any, page_name: str,
                                        size: str) -> None:
    m = await measure(chromium, site, page_name, size)
    assert m.serious == []


@on_the_session_loop
@pytest.mark.parametrize(("page_name", "size"), CASES)
async def test_layout_shift_under_a_tenth(site: Site, chromium: Any, page_name: str,
                                          size: str) -> None:
    m = await measure(chromium, site, page_name, size)
    assert m.cls < 0.1, m.shifts


def test_axe_core_comes_from_the_pinned_wheel() -> None:
    """No download at test time: the axe-core the harness injects is the wheel's file."""
    from axe_playwright_python import base

    assert Path(base.AXE_FILE_PATH).is_file()
    assert "axe v4." in Path(base.AXE_FILE_PATH).read_text()[:200]
