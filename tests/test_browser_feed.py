"""The passer-by page in real headless Chromium, against the real server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
from tests.conftest import chromium_context
from tests.helpers import add_shop, arrival, enricher, send_post, web_server

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
FAR = (44.8440, -0.5560)
PARIS = ZoneInfo("Europe/Paris")  # the browser fixture's time zone


async def open_feed(browser: Any, base: str, lat: float, lon: float, radius: int = 500) -> Any:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(f"{base}/?lat={lat}&lon={lon}&radius_m={radius}")
    await page.wait_for_function("() => window.streetfeed && window.streetfeed.state === 'live'")
    return page


async def card_titles(page: Any) -> list[str]:
    return await page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#feed .card", "cards => cards.map(c => c.dataset.postId)")


async def test_live_post_near_not_far_and_rendered_as_text(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        near = await open_feed(browser, web.http, *STREET)
        far = await open_feed(browser, web.http, *FAR)
        post_id = (await send_post(http, shop, arrival(
            "Fraises 1 < 2 & \"quotes\"", text="Not a tag: &lt;b&gt;"))).json()["id"]
        await near.wait_for_selector(f'[data-post-id="{post_id}"]', timeout=1000)
        card_text = await near.inner_text(f'[data-post-id="{post_id}"]')
        assert 'Fraises 1 < 2 & "quotes"' in card_text and "&lt;b&gt;" in card_text
        assert "Primeur" in card_text
        # Markup is refused at the door (422), so plant a hostile post straight in the
        # feed stream: the page must show it as text and run nothing.
        hostile = (
            '{"type":"post","id":"p_aaaaaaaaaaaaaaaa","kind":"new_arrival",'
            '"lat":44.837,"lon":-0.5735,"post":{"kind":"new_arrival","id":"p_aaaaaaaaaaaaaaaa",'
            '"title":"<img src=x onerror=window.pwned=1><script>window.pwned=2</script>",'
            '"text":"<b>bold?</b>","posted_at":"2026-11-26T10:00:00Z",'
            '"expires_at":"2099-01-01T00:00:00Z","shop":{"id":"x","name":"<i>X</i>",'
            '"category":"c","lat":44.837,"lon":-0.5735}}}')
        await redis.xadd(keys.feed_stream(settings.region), {"d": hostile})
        await near.wait_for_selector('[data-post-id="p_aaaaaaaaaaaaaaaa"]', timeout=1000)
        text = await near.inner_text('[data-post-id="p_aaaaaaaaaaaaaaaa"]')
        assert "<script>window.pwned=2</script>" in text and "<b>bold?</b>" in text
        assert await near.evaluate("() => window.pwned === undefined")
        assert await near.eval_on_selector_all("#feed img, #feed script, #feed b, #feed i",
                                               "els => els.length") == 0
        # The far page got nothing: a later post from its own street arrives alone.
        far_shop = await add_shop(redis, settings, "Boucherie", *FAR)
        far_id = (await send_post(http, far_shop, arrival("Agneau"))).json()["id"]
        await far.wait_for_selector(f'[data-post-id="{far_id}"]', timeout=1000)
        assert await card_titles(far) == [far_id]
        assert near.errors == [] and far.errors == []


async def test_countdown_reaches_zero_and_card_leaves(redis: Redis, settings: Settings,
                                                      browser: Any) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        page = await open_feed(browser, web.http, *STREET)
        ends = datetime.now(UTC) + timedelta(seconds=3)
        post_id = (await send_post(http, shop, {"kind": "flash_offer", "title": "-50 %",
                                                "ends_at": ends.isoformat()})).json()["id"]
        selector = f'[data-post-id="{post_id}"]'
        await page.wait_for_selector(selector, timeout=1000)
        # "Encore 2 s" or "Encore 3 s" (in units: "0:03" read as a time of day).
        assert re.search(r"Encore [1-3]\ss\b", await page.inner_text(selector))
        await page.wait_for_selector(selector, state="detached", timeout=5000)


async def test_page_resumes_after_server_restart(redis: Redis, settings: Settings,
                                                 browser: Any) -> None:
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    async with enricher(redis, settings), httpx.AsyncClient() as http:
        async with web_server(settings) as web:
            port = web.port
            http.base_url = httpx.URL(web.http)
            page = await open_feed(browser, web.http, *STREET)
            first = (await send_post(http, shop, arrival("avant"))).json()["id"]
            await page.wait_for_selector(f'[data-post-id="{first}"]', timeout=1000)
        await page.wait_for_function(
            "() => window.streetfeed.state !== 'live'", timeout=5000)
        async with web_server(settings, port=port) as web:
            http.base_url = httpx.URL(web.http)
            second = (await send_post(http, shop, arrival("après"))).json()["id"]
            await page.wait_for_selector(f'[data-post-id="{second}"]', timeout=20_000)
            await page.wait_for_function("() => window.streetfeed.state === 'live'")
            assert sorted(await card_titles(page)) == sorted([first, second])


async def test_offline_reload_shows_the_kept_posts_marked_seen_at(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """A reload with no network: the last posts, kept on the device with when they were
    last seen live, and the page says it is offline (not 'looking...' forever). Expired
    posts are not shown from that copy, and the passer-by's position is never stored."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    me = (44.83712, -0.57341)  # the passer-by, a few metres from the shop
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        page = await open_feed(browser, web.http, *me)
        # The service worker keeps the page itself, for an offline start.
        await page.wait_for_function("() => navigator.serviceWorker.controller !== null")

        # Nothing kept yet: offline, the page says so rather than looking forever.
        await browser.set_offline(True)
        await page.reload()
        await page.wait_for_selector("#offline", state="visible")
        await page.wait_for_function(
            "() => document.querySelector('#empty').textContent.startsWith('Hors ligne')")
        assert await page.is_visible("#empty")
        await browser.set_offline(False)
        await page.wait_for_function("() => window.streetfeed.state === 'live'",
                                     timeout=20_000)

        kept_id = (await send_post(http, shop, arrival("Fraises gardées"))).json()["id"]
        card = f'[data-post-id="{kept_id}"]'
        await page.wait_for_selector(card)
        await page.wait_for_function(
            f"() => (localStorage.getItem('streetfeed.posts') || '').includes('{kept_id}')")
        seen = datetime.now(PARIS)
        # A post kept on an earlier visit that has expired since: never shown again.
        await page.evaluate("""() => {
            const saved = JSON.parse(localStorage.getItem('streetfeed.posts'));
            const post = {...saved.posts[0].post, id: 'p_expiredexpired00', title: 'Fini',
                          expires_at: new Date(Date.now() - 1000).toISOString()};
            saved.posts.push({post, seenAt: Date.now() - 60000});
            localStorage.setItem('streetfeed.posts', JSON.stringify(saved));
        }""")

        await browser.set_offline(True)
        await page.reload()
        await page.wait_for_selector(card, timeout=10_000)
        text = await page.inner_text(card)
        assert "Fraises gardées" in text
        assert any(f"vu à {at:%H:%M}" in text
                   for at in (seen, seen - timedelta(minutes=1), datetime.now(PARIS))), text
        await page.wait_for_selector("#offline", state="visible")
        assert await page.get_attribute("#status", "data-state") == "offline"
        assert await page.locator('[data-post-id="p_expiredexpired00"]').count() == 0
        assert await page.is_hidden("#empty")

        # Posts only: neither the position nor anything worked out from it is stored,
        # in localStorage or in the service worker's caches.
        stored = await page.evaluate("""async () => {
            const out = Object.entries(localStorage).map(([k, v]) => k + '=' + v);
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) out.push(request.url);
            }
            return out.join('\\n');
        }""")
        assert kept_id in stored
        for fragment in ("44.83712", "-0.57341", "lat=", "dist"):
            assert fragment not in stored, fragment

        # Back online: live again, and the card is the server's, no longer 'seen at'.
        await browser.set_offline(False)
        await page.wait_for_function("() => window.streetfeed.state === 'live'",
                                     timeout=20_000)
        await page.wait_for_selector(card)
        assert "vu à" not in await page.inner_text(card)
        assert await page.is_hidden("#offline")
        assert page.errors == []


async def test_times_on_cards_are_in_the_shops_zone_on_a_device_in_utc(
        redis: Redis, settings: Settings, chromium: Any) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            chromium_context(chromium, timezone_id="UTC") as context:
        page = await open_feed(context, web.http, *STREET)
        ends = datetime.now(UTC) + timedelta(hours=3)
        post_id = (await send_post(http, shop, {"kind": "flash_offer", "title": "-50 %",
                                                "ends_at": ends.isoformat()})).json()["id"]
        selector = f'[data-post-id="{post_id}"] .countdown'
        await page.wait_for_selector(selector)
        zone = await page.evaluate(
            f"() => window.streetfeed.posts.get('{post_id}').shop.timezone")
        assert zone == settings.timezone == "Europe/Paris"
        paris = ends.astimezone(PARIS).strftime("%H:%M")
        assert paris != ends.strftime("%H:%M")  # the device's zone would say otherwise
        assert paris in await page.inner_text(selector)
        assert page.errors == []
