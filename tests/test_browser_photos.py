"""Photos on the faces (issue 15), in real headless Chromium against the real server and
enricher: the passer-by's cards, the in-shop screen at 1080p both ways up, the map popup.

Photos are made here with Pillow and uploaded through `POST /api/v1/shops/{id}/media`,
as a shopkeeper's phone would; posts name them with `media_ids`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
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
    photo_jpeg,
    posted,
    throttle_like_lighthouse,
    upload_photo,
    web_server,
)

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
NEIGHBOUR = (44.8378, -0.5735)  # ~90 m
FAR = (44.8400, -0.5735)  # ~330 m
CARD_SIZES = "(min-width: 40rem) 38rem, calc(100vw - 1.5rem)"  # cards.js CARD_PHOTO_SIZES
LIVE = "() => window.streetfeed && window.streetfeed.state === 'live'"


# What an <img> is and what the browser made of it.
IMG = """(img) => {
  const b = img.getBoundingClientRect();
  return {srcset: img.srcset, sizes: img.sizes, width: img.width, height: img.height,
          attrWidth: img.getAttribute('width'), attrHeight: img.getAttribute('height'),
          alt: img.alt, loading: img.loading, decoding: img.decoding,
          currentSrc: new URL(img.currentSrc || 'http://x/').pathname,
          complete: img.complete, natural: img.naturalWidth,
          box: {left: b.left, top: b.top, right: b.right, bottom: b.bottom,
                width: b.width, height: b.height}};
}"""
LOADED = ("(sel) => [...document.querySelectorAll(sel)].length > 0 && [...document"
          ".querySelectorAll(sel)].every((img) => img.complete && img.naturalWidth > 0)")


RECT = "(sel) => document.querySelector(sel).getBoundingClientRect().toJSON()"


def srcset(media_id: str, widths: list[int]) -> str:
    return ", ".join(f"/media/{media_id}/{w}.webp {w}w" for w in widths)


async def test_card_shows_its_photos_at_the_right_width_and_keeps_them_on_edits(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    other = await add_shop(redis, settings, "Fleuriste", *NEIGHBOUR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        wide = await upload_photo(http, shop, photo_jpeg((200, 40, 40)))
        tall = await upload_photo(http, shop, photo_jpeg((40, 140, 60), (900, 1200)))
        plain_id = await posted(http, other, arrival("Tulipes"))
        post_id = await posted(http, shop, arrival("Premières fraises", media_ids=[wide, tall]))
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE)
        await page.wait_for_selector(feed_card(post_id))
        imgs = f"{feed_card(post_id)} img.card-photo"
        await page.wait_for_function(LOADED, arg=f"{imgs}:first-child")
        first, second = await page.eval_on_selector_all(imgs, f"els => els.map({IMG})")

        assert first["srcset"] == srcset(wide, [400, 800, 1600])
        assert second["srcset"] == srcset(tall, [400, 800, 900])
        assert first["sizes"] == second["sizes"] == CARD_SIZES
        assert (first["attrWidth"], first["attrHeight"]) == ("1600", "1200")
        assert (second["attrWidth"], second["attrHeight"]) == ("900", "1200")
        assert first["alt"] == "Premières fraises (1/2)"
        assert second["alt"] == "Premières fraises (2/2)"
        assert first["decoding"] == second["decoding"] == "async"
        # The top card's photo is in the first view: not lazy. The next in the strip is.
        assert (first["loading"], second["loading"]) == ("eager", "lazy")
        # 360 px at 1x: the image is about 336 px wide, the 400 px variant is the one.
        assert first["currentSrc"] == f"/media/{wide}/400.webp"
        assert abs(first["box"]["width"] - (360 - 0.75 * 16 * 2)) <= 4, first
        # Its box has the first photo's shape (4:3), edge to edge of the card.
        assert abs(first["box"]["height"] - first["box"]["width"] * 3 / 4) <= 1, first
        card_box = await page.locator(feed_card(post_id)).bounding_box()
        assert card_box and abs(first["box"]["left"] - card_box["x"] - 1) <= 1
        assert await page.evaluate(
            "() => document.documentElement.scrollWidth === innerWidth")
        # Two photos: a strip that scrolls sideways, reachable by keyboard, counted.
        strip = page.locator(f"{feed_card(post_id)} .card-photos")
        assert await strip.get_attribute("tabindex") == "0"
        assert await strip.get_attribute("aria-label") == "2 photos"
        assert await page.inner_text(f"{feed_card(post_id)} .photo-count") == "2 photos"
        await strip.focus()
        await page.keyboard.press("ArrowRight")
        await page.wait_for_function("(sel) => document.querySelector(sel).scrollLeft > 0",
                                     arg=f"{feed_card(post_id)} .card-photos")
        # A card without photos stays as it was.
        plain = feed_card(plain_id)
        assert await page.locator(f"{plain} img, {plain} .card-media").count() == 0

        # An edit of the text keeps the very same <img> (no reload, no blink).
        await page.evaluate("(sel) => { document.querySelector(sel).__kept = true; }",
                            f"{imgs}:first-child")
        patch = {"Authorization": f"Bearer {shop.token}"}
        url = f"/api/v1/shops/{shop.id}/posts/{post_id}"
        assert (await http.patch(url, json={"title": "Fraises de Plougastel"},
                                 headers=patch)).status_code == 202
        await page.wait_for_function(
            "(sel) => document.querySelector(sel)?.textContent.includes('Plougastel')",
            arg=feed_card(post_id))
        assert await page.evaluate("(sel) => document.querySelector(sel).__kept === true",
                                   f"{imgs}:first-child")
        assert await page.get_attribute(f"{imgs}:first-child", "alt") == \
            "Fraises de Plougastel (1/2)"
        before = await page.evaluate(RECT, feed_card(plain_id))
        # Another landscape photo instead: the image changes, its box and every other
        # card stay where they were.
        other_wide = await upload_photo(http, shop, photo_jpeg((30, 60, 200)))
        assert (await http.patch(url, json={"media_ids": [other_wide]},
                                 headers=patch)).status_code == 202
        await page.wait_for_function(
            LOADED, arg=f"{feed_card(post_id)} img[data-photo='{other_wide}']")
        assert await page.locator(imgs).count() == 1
        assert await page.locator(f"{feed_card(post_id)} .photo-count").count() == 0
        after = await page.evaluate(RECT, feed_card(plain_id))
        assert after == before
        # Photos removed: the card is a text card again.
        assert (await http.patch(url, json={"media_ids": []}, headers=patch)).status_code == 202
        await page.wait_for_selector(f"{feed_card(post_id)} .card-media", state="detached")
        assert page.errors == []


async def test_planted_media_from_elsewhere_is_never_fetched(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """A post planted in the stream (or kept by an older page) naming photos on another
    origin, or in another shape: no <img>, so the page asks no other server."""
    async with web_server(settings) as web, enricher(redis, settings):
        page = await new_page(browser, 360, 740)
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE)
        bad = [{"id": "m_1", "url": "https://tracker.example/p.webp", "width": 400, "height": 300},
               {"id": "m_2", "url": "//tracker.example/p.webp", "width": 400, "height": 300},
               {"id": "m_3", "url": "/media/m_3/400.webp?x=1", "width": 400, "height": 300},
               {"id": "m_4", "url": "/media/m_4/400.webp", "width": "400", "height": 300},
               {"id": "m_5", "url": "javascript:alert(1)", "width": 400, "height": 300}]
        planted = ('{"type":"post","id":"p_bbbbbbbbbbbbbbbb","kind":"new_arrival",'
                   '"lat":44.837,"lon":-0.5735,"post":{"kind":"new_arrival",'
                   '"id":"p_bbbbbbbbbbbbbbbb","title":"Planté","posted_at":"2026-11-26T10:00:00Z",'
                   '"expires_at":"2099-01-01T00:00:00Z","shop":{"id":"x","name":"X",'
                   '"category":"c","lat":44.837,"lon":-0.5735},"media":'
                   + json.dumps(bad) + "}}")
        await redis.xadd(keys.feed_stream(settings.region), {"d": planted})
        await page.wait_for_selector(feed_card("p_bbbbbbbbbbbbbbbb"))
        assert await page.locator("#feed img, #feed .card-media").count() == 0
        assert not [u for u in asked if "tracker" in u or "/media/" in u]
        assert page.errors == []


async def test_photo_cards_arriving_and_loading_do_not_shift_the_page(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Under Lighthouse's mobile throttling: a feed of photo cards loads, their images
    arrive late, then a live one joins at the bottom; the layout shift stays under 0.1."""
    shops = [await add_shop(redis, settings, f"Boutique {i}", STREET[0] + i * 3e-4, STREET[1])
             for i in range(4)]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        for i, shop in enumerate(shops):
            media = await upload_photo(http, shop, photo_jpeg((60 * i, 120, 200 - 40 * i),
                                                   (1600, 1200) if i % 2 else (1200, 1600)))
            await posted(http, shop, (flash if i % 2 else arrival)(f"Arrivage {i}",
                                                                 media_ids=[media]))
        page = await new_page(browser, 360, 740)
        await page.add_init_script(CLS_OBSERVER)
        await throttle_like_lighthouse(page)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE, timeout=30_000)
        await page.wait_for_function("() => document.querySelectorAll('#feed .card').length === 4",
                                     timeout=30_000)
        far = await add_shop(redis, settings, "Loin", *FAR)
        media = await upload_photo(http, far, photo_jpeg((90, 90, 90)))
        far_id = await posted(http, far, arrival("Tout au bout", media_ids=[media]))
        await page.wait_for_selector(feed_card(far_id), timeout=30_000)
        # Every photo scrolled to and loaded (the lazy ones load as they come near).
        await page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        await page.wait_for_function(LOADED, arg="#feed img.card-photo", timeout=60_000)
        cls = await page.evaluate("() => window.__cls()")
        assert cls < 0.1, await page.evaluate("() => window.__shifts")
        # Every photo edge to edge of its card, portrait ones too (cropped, not narrowed).
        widths = await page.eval_on_selector_all("#feed .card-media", """els => els.map((e) =>
            [e.getBoundingClientRect().width, e.closest('.card').clientWidth])""")
        assert all(abs(media - inner) <= 0.5 for media, inner in widths), widths
        # The first two cards' photos were asked for at once; the ones below wait.
        loading = await page.eval_on_selector_all("#feed img.card-photo",
                                                  "els => els.map((e) => e.loading)")
        assert loading == ["eager", "eager", "lazy", "lazy", "lazy"], loading
        assert page.errors == []


# The screen's own photo, the QR code and the page: where they are.
SCREEN = """() => {
  const img = document.querySelector('#own-posts .card img.card-photo');
  const card = img.closest('.card');
  const rect = (el) => el.getBoundingClientRect().toJSON();
  const title = card.querySelector('.card-title');
  return {img: rect(img), card: rect(card), qr: rect(document.querySelector('#qr')),
          title: rect(title), titleWhole: title.scrollHeight <= title.clientHeight + 1,
          currentSrc: new URL(img.currentSrc).pathname, sizes: img.sizes, alt: img.alt,
          fits: card.scrollHeight <= card.clientHeight + 1,
          page: [document.documentElement.scrollWidth, innerWidth,
                 document.documentElement.scrollHeight, innerHeight]};
}"""


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)], ids=["landscape", "portrait"])
async def test_screen_shows_own_photos_large_and_nothing_overflows(
        redis: Redis, settings: Settings, browser: Any, size: tuple[int, int]) -> None:
    width, height = size
    shop = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    neighbour = await add_shop(redis, settings, "Fromagerie", *NEIGHBOUR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        own = await upload_photo(http, shop, photo_jpeg((180, 120, 40)))
        theirs = await upload_photo(http, neighbour, photo_jpeg((40, 120, 180)))
        own_id = await posted(http, shop, arrival(
            "Pain de seigle au levain, tout chaud", text="Farine du moulin de Saint-Émilion.",
            price=4.2, media_ids=[own]))
        await posted(http, neighbour, flash("-30 % sur le comté", media_ids=[theirs]))
        page = await new_page(browser, width, height)
        await page.add_init_script(CLS_OBSERVER)
        await page.goto(f"{web.http}/screen/{shop.id}?radius_m=500")
        await page.wait_for_function(
            "() => window.streetfeedScreen?.state === 'live' && window.streetfeedScreen.posts === 2"
            " && document.querySelector('#qr').complete")
        await page.wait_for_function(LOADED, arg="#own-posts img.card-photo")
        await page.wait_for_function("() => document.getAnimations().length === 0")
        m = await page.evaluate(SCREEN)
        assert m["page"][0] == m["page"][1] and m["page"][2] == m["page"][3], m
        assert inside(m["img"], m["card"]) and m["fits"] and m["titleWhole"], m
        assert apart(m["img"], m["qr"]) and apart(m["card"], m["qr"]), m
        assert m["alt"] == "Pain de seigle au levain, tout chaud"
        # Large: most of its card, a good part of the screen; the variant for its real
        # width at 1x.
        img, box = m["img"], m["card"]
        assert min(img["width"], img["height"]) >= 0.25 * min(width, height), m
        assert img["width"] * img["height"] >= 0.05 * width * height, m
        assert img["width"] * img["height"] >= 0.4 * box["width"] * box["height"], m
        # The "large": in landscape about half the screen's width, the shop, text
        # and price kept beside it; in portrait its card's whole width, a good part of
        # the height.
        if width > height:
            assert img["width"] >= 0.4 * width, m
            kept = await page.eval_on_selector_all(
                "#own-posts .card > .shop, #own-posts .card > .card-text,"
                " #own-posts .card .price", "els => els.length")
            assert kept == 3, m
        else:
            assert img["width"] >= box["width"] - 6 and img["height"] >= 0.2 * height, m
        shown = img["width"]
        widths = [400, 800, 1600]
        assert m["currentSrc"] == f"/media/{own}/{next(w for w in widths if w >= shown)}.webp"
        # The neighbours' cells keep their room for the title: no photo there.
        assert await page.locator("#neighbours img").count() == 0
        # A burst of frames draws the page again: the photo stays the same node.
        await page.evaluate("() => { document.querySelector('#own-posts img').__kept = true; }")
        await posted(http, neighbour, arrival("Ossau-Iraty"))
        await page.wait_for_function("() => window.streetfeedScreen.posts === 3")
        await page.wait_for_function(
            "() => document.querySelector('#own-posts img.card-photo')?.__kept === true")
        assert own_id in (await page.get_attribute("#own-posts .card", "data-post-id") or "")
        assert await page.evaluate("() => window.__cls()") < 0.1
        assert page.errors == []


async def test_map_popup_shows_a_thumbnail(redis: Redis, settings: Settings,
                                           browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        media = await upload_photo(http, shop, photo_jpeg((200, 40, 40)))
        await posted(http, shop, arrival("Premières fraises", media_ids=[media]))
        page = await new_page(browser, 1280, 720)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500&view=map")
        await page.wait_for_function(LIVE)
        await page.wait_for_function("() => window.streetfeed.map?.pins === 1")
        await page.locator(".leaflet-marker-pane .map-pin").click()
        thumb = ".leaflet-popup-content img.map-popup-photo"
        await page.wait_for_function(LOADED, arg=thumb)
        img = await page.eval_on_selector(thumb, IMG)
        assert img["srcset"] == srcset(media, [400])
        assert (img["attrWidth"], img["attrHeight"]) == ("400", "300")
        assert img["alt"] == "Premières fraises"
        assert img["currentSrc"] == f"/media/{media}/400.webp"
        assert img["box"]["width"] <= 281 and img["box"]["height"] <= 121, img
        popup = await page.eval_on_selector(".leaflet-popup-content-wrapper",
                                            "e => e.getBoundingClientRect().toJSON()")
        assert inside(img["box"], popup), (img, popup)
        assert page.errors == []


async def test_kept_cards_show_their_photos_offline(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """The service worker leaves /media/ to the HTTP cache: a reload with no network
    shows the kept card with its photo, from that cache (immutable, a year)."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        media = await upload_photo(http, shop, photo_jpeg((200, 40, 40)))
        post_id = await posted(http, shop, arrival("Premières fraises", media_ids=[media]))
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE)
        await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        await page.wait_for_function(LOADED, arg=f"{feed_card(post_id)} img.card-photo")
        await page.wait_for_function(
            f"() => (localStorage.getItem('streetfeed.posts') || '').includes('{post_id}')")
        await browser.set_offline(True)
        try:
            await page.reload()
            await page.wait_for_selector("#offline", state="visible")
            await page.wait_for_function(LOADED, arg=f"{feed_card(post_id)} img.card-photo")
            # Not a copy of the service worker's: its caches hold no photo.
            kept = await page.evaluate("""async () => {
                const out = [];
                for (const name of await caches.keys()) {
                    const cache = await caches.open(name);
                    for (const request of await cache.keys()) out.push(request.url);
                }
                return out;
            }""")
            assert not [url for url in kept if "/media/" in url], kept
        finally:
            await browser.set_offline(False)
        assert page.errors == []


# The rectangles a popup must stay inside or clear of, in the view's coordinates.
POPUP_PLACES = """() => {
  const r = (sel) => document.querySelector(sel).getBoundingClientRect().toJSON();
  const content = document.querySelector('.leaflet-popup-content');
  return {map: r('#map'), popup: r('.leaflet-popup-content-wrapper'),
          zoom: r('.leaflet-control-zoom'), attribution: r('.leaflet-control-attribution'),
          scrolls: content.scrollHeight > content.clientHeight + 1,
          rows: [...document.querySelectorAll('.map-popup-posts li')].map((li) => ({
            title: li.querySelector('.map-popup-title').getBoundingClientRect().toJSON(),
            img: li.querySelector('img')?.getBoundingClientRect().toJSON() ?? null}))};
}"""


async def test_map_popup_fits_a_phone_and_escape_closes_it(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur du marché couvert", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        for i in range(6):
            media = await upload_photo(http, shop, photo_jpeg((40 * i, 90, 40)))
            await posted(http, shop, arrival(f"Arrivage numéro {i} : légumes du jour, fruits "
                                           "de saison et fromages", media_ids=[media]))
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500&view=map")
        await page.wait_for_function(LIVE)
        await page.wait_for_function("() => window.streetfeed.map?.pins === 1")
        await page.locator(".leaflet-marker-pane .map-pin").click()
        await page.wait_for_selector(".leaflet-popup-content")
        # Panned into place: wait until it stops moving.
        await page.wait_for_function("""() => new Promise((done) => {
          const top = () => document.querySelector('.leaflet-popup').getBoundingClientRect().top;
          const before = top();
          setTimeout(() => done(Math.abs(top() - before) < 0.5), 300);
        })""", polling=350)
        places = await page.evaluate(POPUP_PLACES)
        popup = places["popup"]
        assert inside(popup, places["map"]), places
        assert apart(popup, places["zoom"]) or popup["top"] >= places["zoom"]["bottom"], places
        assert popup["bottom"] <= places["attribution"]["top"] + 0.5, places
        assert places["scrolls"], places  # six posts: they scroll inside the popup
        for row in places["rows"]:  # each thumbnail beside its own post
            img, title = row["img"], row["title"]
            assert img is not None and img["right"] <= title["left"], row
            assert img["top"] < title["bottom"] and title["top"] < img["bottom"], row
        await page.keyboard.press("Escape")
        await page.wait_for_selector(".leaflet-popup", state="detached")
        assert await page.evaluate("() => document.activeElement.classList.contains('map-pin')")
        assert page.errors == []


async def test_mixed_photo_shapes_keep_their_own_and_small_ones_are_not_blown_up(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    other = await add_shop(redis, settings, "Fleuriste", *NEIGHBOUR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        tall = await upload_photo(http, shop, photo_jpeg((40, 140, 60), (900, 1200)))
        wide = await upload_photo(http, shop, photo_jpeg((200, 40, 40)))
        tiny = await upload_photo(http, other, photo_jpeg((40, 40, 200), (100, 80)))
        mixed = await posted(http, shop, arrival("Fraises", media_ids=[tall, wide]))
        small = await posted(http, other, arrival("Tulipes", media_ids=[tiny]))
        page = await new_page(browser, 360, 740)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function(LIVE)
        await page.wait_for_function(LOADED, arg=f"{feed_card(mixed)} img.card-photo, "
                                                 f"{feed_card(small)} img.card-photo")
        # The landscape photo after a portrait one keeps its shape: nothing cut off.
        shown = """(img) => {
          const b = img.getBoundingClientRect();
          const scale = Math.min(b.width / img.naturalWidth, b.height / img.naturalHeight);
          return {w: b.width, h: b.height, drawnW: img.naturalWidth * scale,
                  drawnH: img.naturalHeight * scale, fit: getComputedStyle(img).objectFit};
        }"""
        second = (await page.eval_on_selector_all(f"{feed_card(mixed)} img.card-photo",
                                                  f"els => els.map({shown})"))[1]
        assert second["fit"] == "contain", second
        assert abs(second["drawnW"] / second["drawnH"] - 4 / 3) < 0.02, second
        # A 100 x 80 photo: at most 1.5 times its size, centred in the card.
        img = await page.eval_on_selector(f"{feed_card(small)} img.card-photo", IMG)
        media = await page.eval_on_selector(f"{feed_card(small)} .card-media",
                                            "e => e.getBoundingClientRect().toJSON()")
        assert img["box"]["width"] <= 151 and img["box"]["height"] <= 121, img
        left, right = img["box"]["left"] - media["left"], media["right"] - img["box"]["right"]
        assert abs(left - right) <= 1, (img, media)
        assert media["height"] <= 121, media
        assert page.errors == []
