"""Shopkeepers' text on the pages, in real headless Chromium (issue 12: finding 6 and the
title limit).

- An unterminated RIGHT-TO-LEFT OVERRIDE in a shop's name or address used to reverse
  the text after it on the card (the category, the "posted ... ago"). The API refuses
  bidi controls now, so the test plants such a post straight in the feed stream (as a
  post older than the rule would be) and reads where the letters are drawn.
- The console counted the title in UTF-16 units (`s.length`, and the input's
  maxlength), so 40 emoji filled an 80-character title the server would take.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.limits import TITLE_MAX
from storage import keys
from tests.helpers import add_shop, enricher, feed_entry, web_server
from tests.test_browser_console import has_title, open_feed, open_screen, signed_in_console

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
RLO = "\u202e"

# Whether a text node's first letter is drawn left of its last one (LTR reading order),
# for the first element matching the selector inside the card.
_DRAWN_IN_ORDER = """([card, selector]) => {
  const node = [...document.querySelector(card).querySelector(selector).childNodes]
    .find((n) => n.nodeType === Node.TEXT_NODE);
  const x = (i) => {
    const range = document.createRange();
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    return range.getBoundingClientRect().left;
  };
  return x(0) < x(node.length - 1);
}"""


def _planted(post_id: str, shop_id: str) -> bytes:
    post = {"kind": "new_arrival", "id": post_id, "title": "Pain au levain",
            "posted_at": "2026-11-26T10:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
            "shop": {"id": shop_id, "name": f"Boulangerie{RLO}", "category": "boulangerie",
                     "lat": STREET[0], "lon": STREET[1], "address": f"12 rue Neuve{RLO}"}}
    return feed_entry(post)


async def test_a_bidi_override_in_shop_text_cannot_reorder_the_card(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Fournil", *STREET)
    async with web_server(settings) as web:
        feed = await open_feed(browser, web.http, *STREET)
        screen = await open_screen(browser, web.http, shop.id)
        post_id = "p_bidibidibidibidi"
        await redis.xadd(keys.feed_stream(settings.region), {"d": _planted(post_id, shop.id)})
        for page, card in ((feed, f'#feed [data-post-id="{post_id}"]'),
                           (screen, f'[data-post-id="{post_id}"]')):
            await page.wait_for_selector(card, timeout=2000)
            # The category follows the name, the posted time follows the address: both
            # still read left to right, the override stays inside its own field.
            assert await page.evaluate(_DRAWN_IN_ORDER, [card, ".shop-category"])
            assert await page.eval_on_selector(
                f"{card} .shop-name", "e => getComputedStyle(e).unicodeBidi") == "isolate"
            if page is screen:
                # The wall shows neither address nor age: nothing after the address to
                # reorder.
                assert await page.is_hidden(f"{card} .card-foot")
                continue
            await page.wait_for_function(
                "(card) => document.querySelector(card).querySelector('.posted').textContent",
                arg=card)
            assert await page.evaluate(_DRAWN_IN_ORDER, [card, ".posted"])
        assert feed.errors == [] and screen.errors == []


async def test_console_counts_the_title_as_the_server_does(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http):
        near = await open_feed(browser, web.http, *STREET)
        console = await signed_in_console(browser, web.http, shop)
        await console.bring_to_front()
        await console.click("label[for='kind-new_arrival']")
        # 50 emoji: 50 characters of the contract, 100 UTF-16 units.
        await console.fill("#title", "🍓" * 50)
        assert await console.input_value("#title") == "🍓" * 50
        assert await console.text_content("#title-count") == f"50/{TITLE_MAX}"
        # Past the limit the field keeps exactly TITLE_MAX characters, and the server
        # takes them.
        await console.fill("#title", "🍒" * (TITLE_MAX + 5))
        assert await console.input_value("#title") == "🍒" * TITLE_MAX
        assert await console.text_content("#title-count") == f"{TITLE_MAX}/{TITLE_MAX}"
        await console.click("#publish")
        await near.wait_for_function(has_title("🍒" * TITLE_MAX), timeout=3000)
        assert console.errors == [] and near.errors == []
