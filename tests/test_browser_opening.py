"""Opening truth and the reader's language in real headless Chromium (issue 14).

- A shop closed by its hours posts "open late": the open/closed line of its cards (feed
  page, in-shop screen, console) says open while the post is live, closed once withdrawn.
- The console's own cards and its preview follow the pushed profile too, with no reload
  (they kept the open line they were drawn with), and an "open late" post being typed
  previews as open.
- Automatic opening posts are written in the page's language at the shop's local time
  (the server's title is French, the browser's zone Paris, the shop's London).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.shops import ShopCreated
from storage import keys
from tests.helpers import (
    RunningServer,
    add_shop,
    arrival,
    enricher,
    feed_entry,
    send_post,
    web_server,
)
from tests.test_browser_console import console_at, open_feed, open_screen, signed_in_console

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
# Closed every Monday and on no other day: a shop closed whatever the day the test runs.
CLOSED = {"timezone": "Europe/Paris", "weekly": {"mon": []}}

_LINE = """([selector, want]) => {
  const el = document.querySelector(selector);
  return el !== null && el.textContent.startsWith(want);
}"""


@contextlib.asynccontextmanager
async def closed_shop_with_news(redis: Redis, settings: Settings) -> AsyncIterator[
        tuple[ShopCreated, RunningServer, httpx.AsyncClient, str]]:
    """A street served (web, enricher), a shop whose hours say closed, and the id of its
    one post (news, no opening)."""
    shop = await add_shop(redis, settings, "Cave du coin", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        auth = {"Authorization": f"Bearer {shop.token}"}
        assert (await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth,
                               json=CLOSED)).status_code == 200
        news = await send_post(http, shop, arrival("Beaujolais nouveau"))
        assert news.status_code == 202
        yield shop, web, http, news.json()["id"]


async def test_the_open_line_says_open_while_the_open_late_post_is_live(
        redis: Redis, settings: Settings, browser: Any) -> None:
    async with closed_shop_with_news(redis, settings) as (shop, web, http, news_id):
        auth = {"Authorization": f"Bearer {shop.token}"}
        feed = await open_feed(browser, web.http, *STREET)
        screen = await open_screen(browser, web.http, shop.id)
        console = await signed_in_console(browser, web.http, shop)
        card = f'#feed [data-post-id="{news_id}"] .open-state'
        lines = [(feed, card), (screen, "#screen-open"), (console, "#shop-open")]
        for page, selector in lines:
            await page.wait_for_function(_LINE, arg=[selector, "Fermé"])

        until = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
        late = await send_post(http, shop, {
            "kind": "opening_change", "title": "Ouvert tard ce soir", "status": "open_late",
            "until": until.isoformat()})
        assert late.status_code == 202
        closes = until.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M")
        for page, selector in lines:
            await page.wait_for_function(_LINE, arg=[selector, f"Ouvert · ferme à {closes}"])
        assert "is-open" in await feed.get_attribute(card, "class")

        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{late.json()['id']}",
                                      headers=auth)
        assert withdrawn.status_code == 200
        await feed.wait_for_function(_LINE, arg=[card, "Fermé"])
        await screen.wait_for_function(_LINE, arg=["#screen-open", "Fermé"])

        # "Open late" with no time: open, and no closing time (it said "ferme à 00:00",
        # when the post lapses; a cold user's find).
        untimed = await send_post(http, shop, {
            "kind": "opening_change", "title": "Ouvert tard ce soir", "status": "open_late"})
        assert untimed.status_code == 202
        for page, selector in lines:
            await page.wait_for_function(_LINE, arg=[selector, "Ouvert"])
        profile = (await http.get(f"/api/v1/shops/{shop.id}")).json()
        assert profile["open_now"] is True and profile["next_change"]["estimated"] is True
        assert feed.errors == [] and screen.errors == [] and console.errors == []


async def test_console_cards_and_preview_follow_the_open_line_without_reload(
        redis: Redis, settings: Settings, browser: Any) -> None:
    async with closed_shop_with_news(redis, settings) as (shop, web, _, news_id):
        console = await console_at(browser, web.http, shop, 360)
        await console.evaluate("() => { window.noReload = true; }")
        news = f'#own-posts [data-post-id="{news_id}"] .open-state'
        preview = "#preview .open-state"
        for selector in ("#shop-open", news, preview):
            await console.wait_for_function(_LINE, arg=[selector, "Fermé"])

        # Typed: the preview shows the shop as the post will make it.
        paris = ZoneInfo("Europe/Paris")  # the browser's time zone (conftest)
        until = (datetime.now(paris) + timedelta(hours=2)).replace(second=0, microsecond=0)
        closes = until.strftime("%H:%M")
        open_line = f"Ouvert · ferme à {closes}"
        await console.click("label[for='kind-opening_change']")
        # What no time means, said under the field (a cold user read "closed now" without
        # one as a moment: it lasts the day).
        assert await console.is_visible("#until-hint")
        assert await console.inner_text("#until-hint") == \
            "Sans heure : pour le reste de la journée."
        assert await console.get_attribute("#until", "aria-describedby") == "until-hint"
        await console.select_option("#status", "open_late")
        await console.fill("#until", until.strftime("%Y-%m-%dT%H:%M"))
        await console.fill("#title", "Ouvert tard ce soir")
        await console.wait_for_function(_LINE, arg=[preview, open_line])

        # Published: the header, every own card, the preview of the next post say open.
        await console.click("#publish")
        await console.wait_for_function("() => window.streetfeedConsole.posts.length === 2")
        late_id = next(i for i in await console.evaluate("() => window.streetfeedConsole.posts")
                       if i != news_id)
        late = f'#own-posts [data-post-id="{late_id}"] .open-state'
        await console.click("label[for='kind-new_arrival']")
        for selector in ("#shop-open", news, late, preview):
            await console.wait_for_function(_LINE, arg=[selector, open_line])

        # Withdrawn from the console: closed again everywhere on the page.
        own = f'#own-posts [data-post-id="{late_id}"]'
        await console.click(f"{own} .withdraw")
        await console.click(f"{own} .withdraw.confirming")
        await console.wait_for_selector(own, state="detached")
        for selector in ("#shop-open", news, preview):
            await console.wait_for_function(_LINE, arg=[selector, "Fermé"])
        assert await console.evaluate("() => window.noReload") is True
        assert console.errors == []


async def test_a_post_that_no_longer_governs_does_not_say_now(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """"Open now until 22:00", then "Closed, back at 14:00": the first stays (it governs
    again at 14:00), and its card read "Closed · opens at 14:00" above "Open now · until
    22:00" on the feed, the console and the screen (a cold try). It says "Open" only, and
    "now" again once it governs."""
    async with closed_shop_with_news(redis, settings) as (shop, web, http, _):
        paris = ZoneInfo("Europe/Paris")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        late = await send_post(http, shop, {
            "kind": "opening_change", "title": "Ouvert jusqu'à ce soir", "status": "open_now",
            "until": (now + timedelta(hours=3)).isoformat()})
        assert late.status_code == 202
        feed = await open_feed(browser, web.http, *STREET)
        screen = await open_screen(browser, web.http, shop.id)
        console = await signed_in_console(browser, web.http, shop)
        late_id = late.json()["id"]
        chips = [(feed, f'#feed [data-post-id="{late_id}"] .opening'),
                 (screen, f'#own-posts [data-post-id="{late_id}"] .opening'),
                 (console, f'#own-posts [data-post-id="{late_id}"] .opening')]
        for page, selector in chips:
            await page.wait_for_function(_LINE, arg=[selector, "Ouvert maintenant"])
        # The console's list is the shop's own posts: no "80 m · 1 min à pied" (the
        # preview's example distance) on each (a cold try).
        assert await console.locator("#own-posts .distance").count() == 0

        back = now + timedelta(hours=1)
        closed = await send_post(http, shop, {
            "kind": "opening_change", "title": "Fermé, retour bientôt", "status": "closed_now",
            "until": back.isoformat()})
        assert closed.status_code == 202
        opens = back.astimezone(paris).strftime("%H:%M")
        await feed.wait_for_function(_LINE, arg=[
            f'#feed [data-post-id="{late_id}"] .open-state', f"Fermé · ouvre à {opens}"])
        for page, selector in chips:
            await page.wait_for_function(
                "(sel) => document.querySelector(sel)?.textContent === 'Ouvert'", arg=selector)

        # Withdrawn, the "closed" one: the first governs again, "now" again.
        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{closed.json()['id']}",
                                      headers={"Authorization": f"Bearer {shop.token}"})
        assert withdrawn.status_code == 200
        for page, selector in chips:
            await page.wait_for_function(_LINE, arg=[selector, "Ouvert maintenant"])
        assert feed.errors == [] and screen.errors == [] and console.errors == []


def _auto_post(post_id: str, shop_id: str, until: datetime) -> bytes:
    post = {"kind": "opening_change", "id": post_id, "auto": True, "status": "closed_now",
            "title": "Fermé (titre du serveur)", "until": until.isoformat(),
            "timezone": "Europe/London",
            "posted_at": datetime.now(UTC).isoformat(), "expires_at": until.isoformat(),
            "shop": {"id": shop_id, "name": "Chez Londres", "category": "épicerie",
                     "lat": STREET[0], "lon": STREET[1]}}
    return feed_entry(post)


async def test_automatic_opening_posts_in_the_readers_language_and_the_shops_time(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Chez Londres", *STREET)
    london = ZoneInfo("Europe/London")
    until = (datetime.now(UTC) + timedelta(days=3)).astimezone(london).replace(
        hour=9, minute=0, second=0, microsecond=0)
    day_fr = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi",
              "dimanche")[until.weekday()]
    async with web_server(settings) as web:
        feed = await open_feed(browser, web.http, *STREET)
        screen = await open_screen(browser, web.http, shop.id)
        english = await open_screen(browser, web.http, shop.id)
        await english.goto(f"{web.http}/screen/{shop.id}?radius_m=500&lang=en")
        await english.wait_for_function(
            "() => window.streetfeedScreen && window.streetfeedScreen.state === 'live'")
        post_id = "p_autoautoautoauto"
        await redis.xadd(keys.feed_stream(settings.region),
                         {"d": _auto_post(post_id, shop.id, until)})
        title = f'[data-post-id="{post_id}"] .card-title'
        # 09:00 in London, although the browser's zone is Paris (10:00 there).
        await feed.wait_for_function(_LINE, arg=[f"#feed {title}",
                                                 f"Fermé, réouverture {day_fr} à 09:00"])
        await screen.wait_for_function(_LINE, arg=[title, f"Fermé, réouverture {day_fr} à 09:00"])
        await feed.click("#lang")
        await feed.wait_for_function(_LINE, arg=[
            f"#feed {title}", f"Closed, reopens {until.strftime('%A')} at 09:00"])
        await english.wait_for_function(_LINE, arg=[
            title, f"Closed, reopens {until.strftime('%A')} at 09:00"])
        assert feed.errors == [] and screen.errors == [] and english.errors == []
