"""Category labels in the page's language, in real headless Chromium (issue 14).

A shop's category is a code ("bakery"); a French page says "Boulangerie", an English one
"Bakery": on the passer-by cards and their filter, on the in-shop screen, and in the
console's "Your shop" form, where the category is a choice among labels.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
from tests.helpers import add_shop, arrival, enricher, send_post, web_server

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)


def watch_errors(page: Any) -> Any:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


async def test_cards_filter_and_screen_say_the_label_in_the_page_language(
        redis: Redis, settings: Settings, browser: Any) -> None:
    settings = dataclasses.replace(settings, tile_url="")
    bakery = await add_shop(redis, settings, "Au Pain", *STREET, category="bakery")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = (await send_post(http, bakery, arrival("Baguettes chaudes"))).json()["id"]
        page = watch_errors(await browser.new_page())  # the browser's locale is fr-FR
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        category = f'#feed [data-post-id="{post_id}"] .shop-category'
        await page.wait_for_selector(category)
        assert await page.inner_text(category) == "Boulangerie"
        option = "#category option[value='bakery']"
        assert await page.inner_text(option) == "Boulangerie"
        await page.select_option("#category", "bakery")  # the filter holds the code

        await page.click("#lang")
        await page.wait_for_function("() => document.documentElement.lang === 'en'")
        await page.wait_for_function(
            "s => document.querySelector(s)?.textContent === 'Bakery'", arg=category)
        assert await page.inner_text(option) == "Bakery"
        assert await page.input_value("#category") == "bakery"

        # A post published before codes keeps its text: shown as it came, as the shop's.
        legacy = {"type": "post", "id": "p_legacylegacy0001", "kind": "new_arrival",
                  "lat": STREET[0], "lon": STREET[1], "post": {
                      "kind": "new_arrival", "id": "p_legacylegacy0001", "title": "Ancienne",
                      "posted_at": "2026-11-26T10:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
                      "shop": {"id": "x", "name": "X", "category": "épicerie fine",
                               "lat": STREET[0], "lon": STREET[1]}}}
        await redis.xadd(keys.feed_stream(settings.region), {"d": json.dumps(legacy)})
        await page.select_option("#category", "")
        old = '#feed [data-post-id="p_legacylegacy0001"] .shop-category'
        await page.wait_for_selector(old)
        assert await page.inner_text(old) == "épicerie fine"

        screen = watch_errors(await browser.new_page())
        await screen.goto(f"{web.http}/screen/{bakery.id}?radius_m=500&lang=en")
        own = f'#own-posts [data-post-id="{post_id}"] .shop-category'
        await screen.wait_for_selector(own)
        assert await screen.inner_text(own) == "Bakery"
        assert page.errors == [] and screen.errors == []


async def test_console_chooses_the_category_among_labels(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Au Pain", *STREET, category="bakery")
    async with web_server(settings) as web:
        page = watch_errors(await browser.new_page())
        signed = await page.request.post(
            f"{web.http}/api/v1/session", data=json.dumps({"shop_id": shop.id,
                                                           "token": shop.token}),
            headers={"Content-Type": "application/json", "Origin": web.http})
        assert signed.ok, await signed.text()
        await page.goto(f"{web.http}/shop")
        await page.wait_for_function(
            "() => window.streetfeedConsole && window.streetfeedConsole.shop")
        select = "#profile-category"
        assert await page.input_value(select) == "bakery"
        chosen = f"{select} option:checked"
        assert await page.inner_text(chosen) == "Boulangerie"
        labels = await page.eval_on_selector_all(f"{select} option",
                                                 "os => os.map(o => o.textContent)")
        assert "Fromagerie" in labels and labels[-1] == "Autre commerce"
        assert await page.input_value("#profile-name") == "Au Pain"

        await page.select_option(select, "cheese")
        await page.click("#save-profile")
        await page.wait_for_selector("#profile-ok:not([hidden])")
        stored = await redis.get(keys.shop(shop.id))
        assert stored is not None and json.loads(stored)["category"] == "cheese"
        assert await page.evaluate("() => window.streetfeedConsole.shop.category") == "cheese"

        await page.click("#lang")
        await page.wait_for_function("() => document.documentElement.lang === 'en'")
        assert await page.inner_text(chosen) == "Cheese shop"
        assert await page.input_value(select) == "cheese"
        assert page.errors == []
