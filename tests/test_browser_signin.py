"""Sign-in links in real headless Chromium on a 360 px phone (issue 14): the link the
operator's command prints signs the phone in and leaves the address bar; opened again
it is refused in words, in French and in English; a signed-in console makes a link for
another device, with its QR code."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from tests.helpers import add_shop, free_port, web_server
from tests.test_browser_console import watch_errors
from tests.test_signin_links import LINK, cli, code_of

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
PHONE = {"width": 360, "height": 740}
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
# The console's own header still overflows a phone (issue 14, its phone layout is fixed
# apart): here, the sign-in link panel and everything in it fit the screen.
PANEL_FITS = """() => { const panel = document.querySelector('#device-panel');
  return panel.getBoundingClientRect().right <= window.innerWidth
    && panel.scrollWidth <= panel.clientWidth; }"""


async def phone_page(browser: Any, requested: list[str]) -> Any:
    page = watch_errors(await browser.new_page())
    await page.set_viewport_size(PHONE)
    page.on("request", lambda request: requested.append(request.url))
    return page


async def test_a_printed_link_signs_a_phone_in_once_and_the_console_makes_another(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Boulangerie du Coin", *STREET)
    port = free_port()
    printed = await asyncio.to_thread(cli, settings, "link", shop.id, "--base-url",
                                      f"http://127.0.0.1:{port}")
    assert printed.returncode == 0, printed.stderr
    link = next(line for line in printed.stdout.splitlines() if LINK.match(line))
    code = code_of(link)
    requested: list[str] = []
    async with web_server(settings.with_(port=port), port=port) as web:
        page = await phone_page(browser, requested)
        await page.goto(link)
        await page.wait_for_selector("#post-form", state="visible")
        # Signed in, and the code is gone from the address bar (and so from history).
        assert await page.evaluate("() => location.href") == f"{web.http}/shop"
        assert await page.text_content("#shop-name") == "Boulangerie du Coin"

        # "Sign in on another device": a fresh link and its QR code, drawn in the page.
        await page.click("#device-link-make")
        await page.wait_for_selector("#device-link-qr", state="visible")
        await page.wait_for_function(
            "() => document.querySelector('#device-link-qr').naturalWidth > 0")
        other = await page.text_content("#device-link-url") or ""
        assert LINK.match(other) and code_of(other) != code
        assert other.startswith(f"{web.http}/shop#code=")
        assert "une seule fois" in (await page.text_content("#device-link-expires") or "")
        # In English too, dated the British way on 24 hours (not "Dec 1, 2026, 6:36 AM").
        await page.click("#lang")
        await page.wait_for_selector("#device-link-expires:has-text('Works once')")
        expires = await page.text_content("#device-link-expires") or ""
        assert re.fullmatch(r"Works once, until \d{1,2} \w{3} \d{4}, \d\d:\d\d\.", expires), expires
        await page.click("#lang")
        assert await page.get_attribute("#device-link-qr", "alt") == (
            "QR code du lien de connexion")
        assert await page.evaluate(PANEL_FITS)

        # The printed link opened again, in a browser with no session: refused in words,
        # with the way out, in the page's language and after a switch.
        await browser.clear_cookies()
        again = await phone_page(browser, requested)
        await again.goto(link)
        await again.wait_for_selector("#link-error", state="visible")
        refusal = await again.text_content("#link-error") or ""
        assert "déjà servi" in refusal and "Demandez-en un nouveau à qui vous l'a donné" in refusal
        assert await again.evaluate("() => location.href") == f"{web.http}/shop"
        assert await again.is_hidden("#console")
        # The page leads with links; the token form waits behind its disclosure.
        assert await again.is_visible("#token-signin > summary")
        assert await again.is_hidden("#shop-id")
        assert await again.evaluate(NO_SIDEWAYS_SCROLL)
        await again.click("#lang")
        await again.wait_for_selector("#link-error:has-text('already been used')")
        refusal = await again.text_content("#link-error") or ""
        assert "Ask whoever gave it to you for a new one" in refusal
        await again.set_viewport_size({"width": 320, "height": 640})
        assert await again.evaluate(NO_SIDEWAYS_SCROLL)

        # The console's link, opened in that tab (only the fragment changes: no reload).
        await again.goto(other)
        await again.wait_for_selector("#post-form", state="visible")
        assert await again.is_hidden("#link-error")
        assert await again.evaluate("() => location.href") == f"{web.http}/shop"
        assert await again.text_content("#shop-name") == "Boulangerie du Coin"
        assert page.errors == [] and again.errors == []
    # No request the pages made carried a code.
    assert requested and not [url for url in requested if code in url or code_of(other) in url]
