"""Pages that tell the truth when not live (issue 11, DESIGN section 9).

Redis is killed under a running server: within seconds both the passer-by page and the
in-shop screen say "not live since HH:MM" and keep their cards; once Redis is back they
go live again by themselves. The Redis here is this test's own server (not the shared
one), killed with SIGKILL and restarted on the same port from its AOF.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import load_settings
from tests.helpers import OwnRedis, add_shop, arrival, enricher, send_post, web_server

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
PARIS = ZoneInfo("Europe/Paris")  # the browser fixture's time zone
# The shop's, another: a screen is often a kiosk left in another zone (UTC), and the
# banner's time sat an hour off the clock beside it (a cold user's find).
SHOP_ZONE = ZoneInfo("Asia/Tokyo")
NOT_LIVE = re.compile(r"Pas en direct depuis (\d\d:\d\d), dernières annonces affichées")



def minutes_between(start: datetime, end: datetime) -> set[str]:
    """Every HH:MM (the shop's time) from start to end."""
    out = set()
    moment = start.astimezone(SHOP_ZONE).replace(second=0, microsecond=0)
    while moment <= end:
        out.add(moment.strftime("%H:%M"))
        moment += timedelta(minutes=1)
    return out


async def test_pages_say_not_live_while_redis_is_down_and_recover(
        own_redis: OwnRedis, tmp_path: Path, browser: Any) -> None:
    settings = load_settings({}, redis_url=own_redis.url, data_dir=tmp_path / "var", port=0,
                             demo=False)
    redis = Redis.from_url(own_redis.url)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        zoned = await http.put(f"/api/v1/shops/{shop.id}/hours",
                               headers={"Authorization": f"Bearer {shop.token}"},
                               json={"timezone": SHOP_ZONE.key, "weekly": {}})
        assert zoned.status_code == 200, zoned.text
        feed = await browser.new_page()
        screen = await browser.new_page()
        errors: list[str] = []
        for page in (feed, screen):
            page.on("pageerror", lambda exc: errors.append(str(exc)))
        await feed.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await screen.goto(f"{web.http}/screen/{shop.id}?radius_m=500")
        await feed.wait_for_function("() => window.streetfeed?.state === 'live'")
        await screen.wait_for_function("() => window.streetfeedScreen?.state === 'live'")
        before = (await send_post(http, shop, arrival("Avant la panne"))).json()["id"]
        card = f'[data-post-id="{before}"]'
        await feed.wait_for_selector(f"#feed {card}")
        await screen.wait_for_selector(f"#own-posts {card}")
        await redis.execute_command("WAITAOF", 1, 0, 0)  # the shop and post survive kill -9

        killed_at = datetime.now(PARIS)
        own_redis.kill()
        # Within 10 s (the gateway says so within 5 s): not live since HH:MM, cards kept.
        await feed.wait_for_selector("#not-live", state="visible", timeout=10_000)
        notice = NOT_LIVE.fullmatch(await feed.inner_text("#not-live"))
        assert notice, await feed.inner_text("#not-live")
        # HH:MM in the shop's time zone (not the browser's), around when Redis died.
        assert notice[1] in minutes_between(killed_at - timedelta(minutes=1),
                                            datetime.now(PARIS)), notice[0]
        assert await feed.get_attribute("#status", "data-state") == "not_live"
        assert await feed.inner_text("#status-label") != "En direct"
        assert await feed.locator(f"#feed {card}").count() == 1
        await screen.wait_for_function(
            "() => document.querySelector('#stale-banner').textContent"
            ".startsWith('Pas en direct depuis')", timeout=10_000)
        assert await screen.is_visible("#stale-banner")
        banner = await screen.inner_text("#stale-banner")
        said = NOT_LIVE.fullmatch(banner.removeprefix("⚠ "))
        assert said and said[1] in minutes_between(killed_at - timedelta(minutes=1),
                                                   datetime.now(PARIS)), banner
        assert await screen.locator(f"#own-posts {card}").count() == 1

        # Redis back on the same port, from its AOF: live again, by themselves.
        own_redis.start()
        await feed.wait_for_function("() => window.streetfeed.state === 'live'", timeout=30_000)
        await screen.wait_for_function("() => window.streetfeedScreen.state === 'live'",
                                       timeout=30_000)
        assert await feed.is_hidden("#not-live")
        assert await feed.inner_text("#status-label") == "En direct"
        await screen.wait_for_selector("#stale-banner", state="hidden")
        after = (await send_post(http, shop, arrival("Après la panne"))).json()["id"]
        # The enricher may still be in its backoff (up to 7.5 s) when Redis comes back.
        await feed.wait_for_selector(f'#feed [data-post-id="{after}"]', timeout=20_000)
        await screen.wait_for_selector(f'#own-posts [data-post-id="{after}"]', timeout=20_000)
        assert await feed.locator(f"#feed {card}").count() == 1
        assert errors == []
    await redis.aclose()

