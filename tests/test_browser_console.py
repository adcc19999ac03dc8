"""The shopkeeper console in real headless Chromium, against the real server.

A post typed into the console reaches the passer-by page and the shop's screen, and
not a page across town; the live counter sees a passer-by arrive; withdraw, edit,
sign out and the opening hours editor work end to end; the hours a shop keeps show
on the passer-by cards, next to the passer-by's own follows, filters and map. And
(issue 14) at 320, 360 and 390 px: nothing wider than the screen, an idle console that
makes no request yet shows changes live, every field editable, honest notes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.shops import ShopCreated
from tests.helpers import (
    add_shop,
    arrival,
    enricher,
    feed_client,
    flash,
    send_post,
    wait_for,
    web_server,
)

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
FAR = (44.8510, -0.5735)  # ~1.6 km north


def watch_errors(page: Any) -> Any:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


async def open_feed(browser: Any, base: str, lat: float, lon: float, radius: int = 500) -> Any:
    page = watch_errors(await browser.new_page())
    await page.goto(f"{base}/?lat={lat}&lon={lon}&radius_m={radius}")
    await page.wait_for_function("() => window.streetfeed && window.streetfeed.state === 'live'")
    return page


async def open_screen(browser: Any, base: str, shop_id: str) -> Any:
    page = watch_errors(await browser.new_page())
    await page.goto(f"{base}/screen/{shop_id}?radius_m=500")
    await page.wait_for_function(
        "() => window.streetfeedScreen && window.streetfeedScreen.state === 'live'")
    return page


async def sign_in(page: Any, base: str, shop: ShopCreated) -> None:
    """The console's sign-in with the shop's token, as a shopkeeper types it."""
    await page.goto(f"{base}/shop")
    await page.click("#token-signin > summary")  # the page leads with sign-in links
    await page.fill("#shop-id", shop.id)
    await page.fill("#token", shop.token)
    await page.click("#signin-submit")


async def signed_in_console(browser: Any, base: str, shop: ShopCreated) -> Any:
    page = watch_errors(await browser.new_page())
    await sign_in(page, base, shop)
    await page.wait_for_selector("#post-form", state="visible")
    assert await page.input_value("#token") == ""  # the page does not keep the token
    return page


async def five_passers_by_come_and_go(page: Any, ws_base: str) -> None:
    """Five feed sockets open near STREET: the page's audience reads 5 (a count at last);
    they close: "moins de 5" again."""
    async with contextlib.AsyncExitStack() as street:
        for _ in range(5):
            await street.enter_async_context(feed_client(ws_base, *STREET))
        await page.wait_for_function(
            "() => document.querySelector('#watching-count').textContent === '5'",
            timeout=5000)
    await page.wait_for_function(
        "() => document.querySelector('#watching-count').textContent === 'moins de 5'",
        timeout=8000)


def has_title(title: str) -> str:
    """A JS predicate: the passer-by page holds a post with this title."""
    return ("() => [...window.streetfeed.posts.values()].some(p => p.title === "
            f"{title!r})")


async def test_console_post_reaches_street_and_screen_then_withdraw_and_sign_out(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur du Marché", *STREET)
    far_shop = await add_shop(redis, settings, "Boucherie du Nord", *FAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        console = await signed_in_console(browser, web.http, shop)
        assert "Primeur du Marché" in (await console.text_content("#shop-name") or "")

        # Nobody around yet: under 5 the console says so in words, never a number, in
        # either language; five passers-by nearby make it a count (pushed over the
        # console's socket, presence published every second).
        await console.wait_for_function(
            "() => document.querySelector('#watching-count').textContent === 'moins de 5'")
        assert "personnes regardent" in (await console.text_content("#watching-label") or "")
        await console.click("#lang")
        await console.wait_for_function(
            "() => document.querySelector('#watching-count').textContent === 'fewer than 5'")
        assert "people watching" in (await console.text_content("#watching-label") or "")
        await console.click("#lang")
        options = await console.eval_on_selector_all("#watching-radius option",
                                                     "os => os.map(o => Number(o.value))")
        assert options == [250, 500, 1000, 2000]  # no radius under 250 m
        await five_passers_by_come_and_go(console, web.ws)
        near = await open_feed(browser, web.http, *STREET)
        far = await open_feed(browser, web.http, *FAR)
        screen = await open_screen(browser, web.http, shop.id)
        # The shopkeeper looks at the console (a background tab paints, hence clicks, slowly).
        await console.bring_to_front()

        # Post a new arrival with the form.
        await console.click("label[for='kind-new_arrival']")
        await console.fill("#title", "Clémentines de Corse")
        await console.fill("#text", "Avec les feuilles <3")
        # As a French shopkeeper types it (a number field once turned "3,50" into 350 €).
        await console.fill("#price", "3,90 €")
        await console.fill("#tags", "corse, hiver")
        preview = await console.inner_text("#preview .card")
        assert "Clémentines de Corse" in preview and "3,90" in preview
        await console.click("#publish")
        await near.wait_for_function(has_title("Clémentines de Corse"), timeout=1000)
        await screen.wait_for_selector("#own-posts .card:has-text('Clémentines de Corse')",
                                       timeout=1000)
        await console.wait_for_selector("#post-ok", state="visible")
        post_id = await near.evaluate(
            "() => [...window.streetfeed.posts.values()]"
            ".find(p => p.title === 'Clémentines de Corse').id")
        card = await near.inner_text(f'#feed [data-post-id="{post_id}"]')
        assert "Avec les feuilles <3" in card and "3,90" in card and "corse" in card

        # The page 1.6 km away got nothing: a later post from its own street arrives alone.
        far_id = (await send_post(http, far_shop, arrival("Agneau de lait"))).json()["id"]
        await far.wait_for_selector(f'[data-post-id="{far_id}"]', timeout=1000)
        assert await far.eval_on_selector_all(
            "#feed .card", "cards => cards.map(c => c.dataset.postId)") == [far_id]

        # The console lists it with its reach: one phone and one screen got it, which a
        # shop is only told as "fewer than 5" (exact counts: tests/test_reach_privacy.py).
        own = f'#own-posts [data-post-id="{post_id}"]'
        await console.wait_for_selector(own, timeout=5000)
        await console.wait_for_function(
            f"() => document.querySelector('#reach-{post_id}').textContent"
            " === 'Reçue en direct par moins de 5 téléphones et moins de 5 écrans'", timeout=5000)

        # A correction of the title reaches the street.
        await console.click(f"{own} .edit")
        await console.fill(f"#edit-title-{post_id}", "Clémentines de Corse, feuilles comprises")
        await console.click(f"{own} .edit-form button[type=submit]")
        await near.wait_for_function(has_title("Clémentines de Corse, feuilles comprises"),
                                     timeout=2000)

        # Withdraw: two taps, then it leaves the street and the screen.
        await console.click(f"{own} .withdraw")
        await console.click(f"{own} .withdraw.confirming")
        await near.wait_for_selector(f'#feed [data-post-id="{post_id}"]', state="detached",
                                     timeout=2000)
        await screen.wait_for_selector(f'#own-posts [data-post-id="{post_id}"]',
                                       state="detached", timeout=2000)
        await console.wait_for_selector(own, state="detached")

        # Sign out: back to the form, and the session is gone.
        await console.click("#signout")
        await console.wait_for_selector("#signin-form", state="visible")
        assert await console.is_hidden("#console")
        assert await console.evaluate(
            "() => fetch('/api/v1/session').then(r => r.status)") == 401
        for page in (console, near, far, screen):
            assert page.errors == []


async def test_errors_are_shown_in_words(redis: Redis, settings: Settings,
                                         browser: Any) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, enricher(redis, settings):
        page = watch_errors(await browser.new_page())
        await page.goto(f"{web.http}/shop")
        await page.click("#token-signin > summary")
        await page.fill("#shop-id", shop.id)
        await page.fill("#token", "not-the-token")
        await page.click("#signin-submit")
        await page.wait_for_selector("#signin-error:has-text('jeton incorrect')")
        assert await page.is_hidden("#console")

        page = await signed_in_console(browser, web.http, shop)
        # Markup is refused by the server (422 markup_not_allowed), and said so in French.
        await page.fill("#title", "Promo <script>alert(1)</script>")
        await page.click("#publish")
        await page.wait_for_selector("#post-error:has-text('HTML')")
        # A template fills the form: a flash offer, -20 %, ending later today or in 2 h.
        await page.click("#tpl-discount")
        assert await page.is_checked("#kind-flash_offer")
        assert await page.input_value("#discount") == "20"
        assert await page.input_value("#title") == "-20 % jusqu'à la fermeture"
        assert await page.input_value("#ends-at") != ""
        await page.click("#publish")
        await page.wait_for_selector("#post-ok", state="visible")
        assert await page.is_hidden("#post-error")
        assert page.errors == []


async def test_opening_hours_editor_saves(redis: Redis, settings: Settings,
                                          browser: Any) -> None:
    shop = await add_shop(redis, settings, "Fleuriste", *STREET)
    holiday = (date.today() + timedelta(days=30)).isoformat()
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        page = await signed_in_console(browser, web.http, shop)
        await page.wait_for_selector("#hours-mon-add")
        await page.click("#hours-mon-add")
        await page.fill("#hours-mon-0-open", "08:30")
        await page.fill("#hours-mon-0-close", "12:30")
        await page.click("#hours-mon-add")  # a second range, after lunch: 14:00-19:00
        await page.click("[data-day='tue'] .day-actions button:has-text('Comme la veille')")
        await page.click("#hours-sat-add")
        await page.fill("#hours-sat-0-open", "22:00")
        await page.fill("#hours-sat-0-close", "02:00")  # past midnight
        await page.click("#add-exception")
        await page.fill("#exception-0-date", holiday)
        await page.fill("#exception-0-note", "Inventaire")
        await page.click("#save-hours")
        await page.wait_for_selector("#hours-ok", state="visible")

        hours = (await http.get(f"/api/v1/shops/{shop.id}/hours")).json()
        monday = [{"open": "08:30", "close": "12:30"}, {"open": "14:00", "close": "19:00"}]
        assert hours["weekly"]["mon"] == monday
        assert hours["weekly"]["tue"] == monday
        assert hours["weekly"]["sat"] == [{"open": "22:00", "close": "02:00"}]
        assert hours["weekly"].get("wed", []) == []
        assert hours["exceptions"] == [{"date": holiday, "ranges": [], "note": "Inventaire"}]

        # An incomplete range is caught before sending.
        await page.click("#hours-wed-add")
        await page.fill("#hours-wed-0-open", "")
        await page.click("#save-hours")
        await page.wait_for_selector("#hours-error", state="visible")

        # What was saved is what the editor shows next time.
        await page.reload()
        await page.wait_for_selector("#hours-mon-1-close")
        assert await page.input_value("#hours-mon-1-close") == "19:00"
        assert await page.input_value("#exception-0-date") == holiday
        assert page.errors == []


TWO_PINS = "() => window.streetfeed.map && window.streetfeed.map.pins === 2"


async def test_passer_by_sees_hours_follows_filters_and_map(
        redis: Redis, settings: Settings, browser: Any) -> None:
    # Tiles from nowhere: the map must still place the shops.
    settings = dataclasses.replace(settings, tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
    bakery = await add_shop(redis, settings, "Boulangerie", *STREET, category="boulangerie")
    cheese = await add_shop(redis, settings, "Fromagerie", 44.8375, -0.5735,
                            category="fromagerie")
    now = datetime.now(ZoneInfo("Europe/Paris"))
    opens, closes = (now - timedelta(hours=1)).strftime("%H:%M"), \
        (now + timedelta(hours=2)).strftime("%H:%M")
    week = {day: [{"open": opens, "close": closes}]
            for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        put = await http.put(f"/api/v1/shops/{bakery.id}/hours",
                             json={"timezone": "Europe/Paris", "weekly": week},
                             headers={"Authorization": f"Bearer {bakery.token}"})
        assert put.status_code == 200, put.text
        bread = (await send_post(http, bakery, arrival("Baguettes chaudes"))).json()["id"]
        offer = (await send_post(http, cheese, flash("-20 % sur le brie"))).json()["id"]
        page = await open_feed(browser, web.http, *STREET)
        bread_card = f'#feed [data-post-id="{bread}"]'
        offer_card = f'#feed [data-post-id="{offer}"]'
        await page.wait_for_selector(bread_card)
        await page.wait_for_selector(offer_card)

        # "Open · closes at" from the shop's hours; nothing for a shop without hours.
        await page.wait_for_selector(f"{bread_card} .open-state.is-open")
        assert f"ferme à {closes}" in await page.inner_text(f"{bread_card} .open-state")
        assert await page.locator(f"{offer_card} .open-state").count() == 0

        # Follow the cheese shop: marked, remembered in this browser only.
        await page.click(f"{offer_card} .star")
        await page.wait_for_selector(f"{offer_card}.is-followed .star[aria-pressed='true']")
        assert await page.evaluate("() => window.streetfeed.follows") == [cheese.id]
        assert "Suivi" in await page.inner_text(offer_card)

        async def visible() -> list[str]:
            return await page.eval_on_selector_all(  # type: ignore[no-any-return]
                "#feed .card:not([hidden])", "cards => cards.map(c => c.dataset.postId)")

        await page.click("#followed-only")
        assert await visible() == [offer]
        await page.click("#followed-only")
        await page.click("#kind-filter [data-kind='new_arrival']")
        assert await visible() == [bread]
        await page.click("#kind-filter [data-kind='']")
        await page.select_option("#category", "cheese")
        assert await visible() == [offer]
        await page.select_option("#category", "")
        assert sorted(await visible()) == sorted([bread, offer])

        # The map shows the same posts, one pin per shop, though no tile loads.
        await page.click("#view-toggle")
        await page.wait_for_function(TWO_PINS)
        await page.wait_for_selector("#map-note", state="visible", timeout=5000)
        await page.click(".map-pin.pin-flash_offer.pin-followed")
        popup = await page.wait_for_selector(".leaflet-popup-content")
        popup_text = await popup.inner_text()
        assert "Fromagerie" in popup_text and "-20 % sur le brie" in popup_text
        assert await visible()  # the list is still there

        # Follows and the chosen view survive a reload.
        await page.reload()
        await page.wait_for_selector(f"{offer_card} .star[aria-pressed='true']")
        await page.wait_for_function(TWO_PINS)
        assert page.errors == []


# --- Issue 14: the console on a phone, pushed not polled, every field editable ---------

PHONES = (320, 360, 390)

# Everything that sticks out of the viewport or overlaps another control, in words.
LAYOUT_FAULTS = """() => {
  const W = window.innerWidth;
  const faults = [];
  const root = document.documentElement;
  if (root.scrollWidth !== W) faults.push(`scrollWidth ${root.scrollWidth} != ${W}`);
  const shown = (e) => {
    if (e.closest('[hidden], .visually-hidden, .skip')) return false;
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ')[0] : '');
  for (const e of document.querySelectorAll('body *')) {
    // A card's strip of photos scrolls sideways in its own box (the preview's, as the
    // street's): the photos past its edge are its content, not the page's.
    if (!shown(e) || e.parentElement.closest('.card-photos')) continue;
    const r = e.getBoundingClientRect();
    if (r.right > W + 0.5 || r.left < -0.5) {
      faults.push(`${name(e)} spans ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  const controls = [...document.querySelectorAll(
    'input:not([type=radio]), select, textarea, button, .kind-picker label')].filter(shown);
  for (let i = 0; i < controls.length; i++) {
    for (let j = i + 1; j < controls.length; j++) {
      const a = controls[i].getBoundingClientRect(), b = controls[j].getBoundingClientRect();
      const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (x > 1 && y > 1) faults.push(`${name(controls[i])} overlaps ${name(controls[j])}`);
    }
  }
  return faults;
}"""


async def layout_faults(page: Any, what: str) -> list[str]:
    faults = await page.evaluate(LAYOUT_FAULTS)
    return [f"{what}: {fault}" for fault in faults]


async def test_console_fits_phones_and_desktop(redis: Redis, settings: Settings,
                                               browser: Any) -> None:
    shop = await add_shop(redis, settings, "Épicerie fine du Grand-Théâtre", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        # Opening hours with two ranges a day and an exception: the hours editor at its
        # widest.
        week = {day: [{"open": "09:00", "close": "12:30"}, {"open": "14:00", "close": "19:30"}]
                for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
        holiday = (date.today() + timedelta(days=30)).isoformat()
        hours = await http.put(f"/api/v1/shops/{shop.id}/hours",
                               headers={"Authorization": f"Bearer {shop.token}"},
                               json={"timezone": "Europe/Paris", "weekly": week,
                                     "exceptions": [{"date": holiday, "ranges": [],
                                                     "note": "Inventaire annuel"}]})
        assert hours.status_code == 200, hours.text
        # One live post of each kind, with long words and every field: the list and the
        # edit forms at their widest.
        posts = [
            (await send_post(http, shop, arrival(
                "Clémentines de Corse extra-juteuses", text="Cueillies hier, avec leurs feuilles",
                price=3.9, tags=["corse", "agrumes", "hiver"]))).json()["id"],
            (await send_post(http, shop, flash(
                "-30 % sur les fromages affinés", price=12.5, discount_pct=30))).json()["id"],
            (await send_post(http, shop, {
                "kind": "opening_change", "title": "Ouvert tard ce soir",
                "status": "open_late"})).json()["id"],
        ]
        faults: list[str] = []
        for width in (*PHONES, 1280):
            await browser.clear_cookies()  # signed out again
            page = watch_errors(await browser.new_page())
            await page.set_viewport_size({"width": width, "height": 800 if width > 400 else 740})
            await page.goto(f"{web.http}/shop")
            await page.click("#token-signin > summary")  # the token form, unfolded
            for lang in ("fr", "en"):
                if await page.get_attribute("html", "lang") != lang:
                    await page.click("#lang")
                faults += await layout_faults(page, f"{width}px {lang} signed out")
            if await page.get_attribute("html", "lang") != "fr":
                await page.click("#lang")
            await page.fill("#shop-id", shop.id)
            await page.fill("#token", shop.token)
            await page.click("#signin-submit")
            await page.wait_for_function("() => window.streetfeedConsole.live")
            for post_id in posts:
                await page.wait_for_selector(f'#own-posts [data-post-id="{post_id}"]')
            await page.wait_for_selector("#hours-sat-1-close")
            for lang in ("fr", "en"):
                if await page.get_attribute("html", "lang") != lang:
                    await page.click("#lang")
                for kind in ("new_arrival", "flash_offer", "opening_change"):
                    await page.click(f"label[for='kind-{kind}']")
                    faults += await layout_faults(page, f"{width}px {lang} {kind}")
                for post_id in posts:  # every edit form open at once
                    await page.click(f'#own-posts [data-post-id="{post_id}"] .edit')
                    await page.wait_for_selector(f"#edit-title-{post_id}")
                faults += await layout_faults(page, f"{width}px {lang} editing")
            assert page.errors == []
            await page.close()
        assert not faults, "\n".join(faults)


async def console_at(browser: Any, base: str, shop: ShopCreated, width: int,
                     clock: bool = False) -> Any:
    """A console signed in on a phone `width` px wide, live over its socket (with
    Playwright's clock installed first, when `clock`)."""
    page = watch_errors(await browser.new_page())
    await page.set_viewport_size({"width": width, "height": 740})
    if clock:
        await page.clock.install()
    await sign_in(page, base, shop)
    await page.wait_for_function("() => window.streetfeedConsole.live")
    return page


async def test_idle_console_makes_no_request_yet_shows_changes_live(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """It used to poll /posts and /stats every 2 s and the profile every minute: several
    minutes of its timers now make no request, and changes still arrive, pushed."""
    shop = await add_shop(redis, settings, "Cave du Marché", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        page = await console_at(browser, web.http, shop, 360, clock=True)
        await page.wait_for_function(
            "() => document.querySelector('#watching-count').textContent === 'moins de 5'")
        requests: list[str] = []
        browser.on("request", lambda request: requests.append(request.url))
        await page.clock.run_for(5 * 60 * 1000)  # five minutes of the page's timers
        assert requests == []

        # A post made through the API with the token appears, withdrawn it goes.
        post_id = (await send_post(http, shop, arrival("Saint-Émilion 2019"))).json()["id"]
        own = f'#own-posts [data-post-id="{post_id}"]'
        await page.wait_for_selector(own, timeout=3000)
        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                      headers={"Authorization": f"Bearer {shop.token}"})
        assert withdrawn.status_code == 200
        await page.wait_for_selector(own, state="detached", timeout=3000)
        assert await page.is_visible("#own-empty")

        # Passers-by arriving within range change the audience (5: a count, at last).
        await five_passers_by_come_and_go(page, web.ws)
        # Everything came over the socket: still not one HTTP request.
        assert requests == []
        assert page.errors == []


async def test_a_console_back_from_an_outage_does_not_wait_out_its_backoff(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Its socket, refused a few times over (an outage), waits longer each time (up to
    30 s). Once the server answers a request again (a post published) it comes back at
    once: the cold user's post reached "Your live posts" 6.8 s late, the backoff's."""
    shop = await add_shop(redis, settings, "Cave du Marché", *STREET)
    async with web_server(settings) as web, enricher(redis, settings):
        page = watch_errors(await browser.new_page())
        await page.set_viewport_size({"width": 360, "height": 740})
        await page.clock.install()
        outage = False
        refused = 0
        sockets: list[Any] = []

        async def route(ws: Any) -> None:
            nonlocal refused
            if outage:
                refused += 1
                await ws.close()
            else:
                ws.connect_to_server()
                sockets.append(ws)
        await page.route_web_socket("**/ws/shop", route)
        await sign_in(page, web.http, shop)
        await page.wait_for_function("() => window.streetfeedConsole.live")
        # From here the page's timers run only as the test says: its backoff too.
        now = await page.evaluate("() => Date.now()")
        await page.clock.pause_at(datetime.fromtimestamp(now / 1000 + 1, ZoneInfo("UTC")))

        async def retry_scheduled() -> bool:
            # The page learns of a close a moment after the route counted it: the clock
            # run before its retry is scheduled would leave that retry to never fire.
            return bool(await page.evaluate("() => window.streetfeedConsole.reconnecting"))

        outage = True
        await sockets[-1].close()
        for attempt in range(1, 4):  # refused after ~1, ~2, ~4 s: ~8 s (4 to 12) next
            await wait_for(retry_scheduled, message=f"retry {attempt} scheduled")
            await page.clock.run_for(6_000 * 2 ** (attempt - 1))
            # At least: a request the page's own timers make, answered in the meantime,
            # brings a retry forward (serverAnswered) and it is refused too.
            await wait_for(lambda attempt=attempt: refused >= attempt,
                           message=f"refused attempt {attempt}")
        await wait_for(retry_scheduled, message="retry 4 scheduled")
        outage = False
        await page.fill("#title", "Saint-Émilion 2019")
        await page.click("#publish")
        await page.wait_for_selector("#post-ok", state="visible")
        # Nothing runs the page's clock from here: only a socket opened at once brings it.
        await page.wait_for_selector('#own-posts .own-post:has-text("Saint-Émilion 2019")',
                                     timeout=10_000)
        assert refused >= 3 and len(sockets) == 2
        assert page.errors == []


async def test_posting_is_one_tap_from_the_first_screen_of_a_phone(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """At 360 px the form starts a few screens down, under the holds (a cold user had to
    scroll for it): the first screen has a button that takes the shopkeeper to the title,
    ready to type. On a till PC the form is beside the panel, and the button is not shown."""
    shop = await add_shop(redis, settings, "Cave du Marché", *STREET)
    async with web_server(settings) as web, enricher(redis, settings):
        page = await console_at(browser, web.http, shop, 360)
        button = await page.query_selector("#to-compose")
        assert button is not None
        box = await button.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 740, box
        assert await button.text_content() == "Publier une annonce"
        form = await page.query_selector("#compose")
        assert form is not None
        form_box = await form.bounding_box()
        assert form_box is not None and form_box["y"] > 740  # below the first screen
        await button.click()
        await page.wait_for_function("() => document.activeElement?.id === 'title'")
        assert await page.evaluate(
            "() => document.querySelector('#title').getBoundingClientRect().bottom") <= 740
        await page.keyboard.type("Beaujolais nouveau")
        await page.click("#publish")
        await page.wait_for_selector('#own-posts .own-post:has-text("Beaujolais nouveau")')
        await page.set_viewport_size({"width": 1280, "height": 800})
        assert not await page.is_visible("#to-compose")
        assert page.errors == []


async def test_the_audience_not_known_yet_reads_as_a_placeholder(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Before the first count arrives the number is "–", and the French label read
    "– personne regarde…" ("nobody watches", French's singular for 0: a cold user's find)."""
    shop = await add_shop(redis, settings, "Cave du Marché", *STREET)
    async with web_server(settings) as web:
        page = watch_errors(await browser.new_page())
        await page.set_viewport_size({"width": 360, "height": 740})

        async def silent(ws: Any) -> None:
            pass  # never answered: no count ever comes
        await page.route_web_socket("**/ws/shop", silent)
        await sign_in(page, web.http, shop)
        await page.wait_for_selector("#post-form", state="visible")
        assert await page.text_content("#watching-count") == "–"
        label = await page.text_content("#watching-label") or ""
        assert label.startswith("personnes regardent le fil"), label
        await page.click("#lang")
        assert (await page.text_content("#watching-label") or "").startswith("people watching")
        assert page.errors == []


async def test_edit_corrects_every_field_and_clears(redis: Redis, settings: Settings,
                                                   browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    auth = {"Authorization": f"Bearer {shop.token}"}
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        arrival_id = (await send_post(http, shop, arrival(
            "Clémentines", price=3.9, tags=["corse"]))).json()["id"]
        offer_id = (await send_post(http, shop, flash(
            "Brie", price=12.5, discount_pct=30))).json()["id"]
        opening_id = (await send_post(http, shop, {"kind": "opening_change",
                                                   "title": "Fermé ce midi",
                                                   "status": "closed_now"})).json()["id"]
        page = await console_at(browser, web.http, shop, 360)

        async def live() -> dict[str, dict[str, Any]]:
            answer = await http.get(f"/api/v1/shops/{shop.id}/posts")
            return {p["id"]: p for p in answer.json()["posts"]}

        async def edit(post_id: str, fields: dict[str, str], check: Any) -> None:
            own = f'#own-posts [data-post-id="{post_id}"]'
            await page.click(f"{own} .edit")
            for name, value in fields.items():
                selector = f"#edit-{name}-{post_id}"
                if name == "status":
                    await page.select_option(selector, value)
                else:
                    await page.fill(selector, value)
            await page.click(f"{own} .edit-form button[type=submit]")
            await page.wait_for_selector(f"{own} .edit-form", state="detached")
            await wait_for(lambda: _checked(live, post_id, check), 5, f"edit of {post_id}")

        # Prices show as a price is written, two decimals ("3,9" read as 3 € 9).
        for post_id, shown in ((arrival_id, "3,90"), (offer_id, "12,50")):
            own = f'#own-posts [data-post-id="{post_id}"]'
            await page.click(f"{own} .edit")
            assert await page.input_value(f"#edit-price-{post_id}") == shown
            await page.click(f"{own} .edit")  # folded again
        # A new arrival: price and tags corrected, then the price removed.
        await page.wait_for_selector(f'#own-posts [data-post-id="{arrival_id}"]')
        await edit(arrival_id, {"price": "4,20", "tags": "corse, bio, hiver"},
                   lambda p: p["price"] == 4.2 and p["tags"] == ["corse", "bio", "hiver"])
        await edit(arrival_id, {"price": ""}, lambda p: p.get("price") is None)
        # The console shows what the street sees (pushed back over the socket).
        await page.wait_for_function(
            f"() => !document.querySelector('[data-post-id=\"{arrival_id}\"] .card')"
            ".textContent.includes('€')")
        # A flash offer: the discount removed, the price changed, the end moved.
        paris = ZoneInfo("Europe/Paris")  # the browser's time zone (conftest)
        ends = (datetime.now(paris) + timedelta(hours=3)).replace(second=0, microsecond=0)
        await edit(offer_id, {"discount_pct": "", "price": "9,90",
                              "ends_at": ends.strftime("%Y-%m-%dT%H:%M")},
                   lambda p: p.get("discount_pct") is None and p["price"] == 9.9
                   and datetime.fromisoformat(p["ends_at"]) == ends)
        # An opening change: status and until, then the until removed.
        until = (datetime.now(paris) + timedelta(hours=2)).replace(second=0, microsecond=0)
        await edit(opening_id, {"status": "open_late",
                                "until": until.strftime("%Y-%m-%dT%H:%M")},
                   lambda p: p["status"] == "open_late"
                   and datetime.fromisoformat(p["until"]) == until)
        await edit(opening_id, {"until": ""}, lambda p: p.get("until") is None)
        # A price that is not one is caught before sending.
        own = f'#own-posts [data-post-id="{offer_id}"]'
        await page.click(f"{own} .edit")
        await page.fill(f"#edit-price-{offer_id}", "douze")
        await page.click(f"{own} .edit-form button[type=submit]")
        await page.wait_for_selector(f"{own} .form-error:has-text('Prix invalide')")
        assert (await live())[offer_id]["price"] == 9.9
        assert (await http.patch(f"/api/v1/shops/{shop.id}/posts/{offer_id}", headers=auth,
                                 json={"title": "Brie de Meaux"})).status_code == 202
        await page.wait_for_function(
            f"() => document.querySelector('[data-post-id=\"{offer_id}\"] .card')"
            ".textContent.includes('Brie de Meaux')")
        assert page.errors == []


async def _checked(live: Any, post_id: str, check: Any) -> bool:
    post = (await live()).get(post_id)
    return post is not None and bool(check(post))


async def test_published_note_follows_language_and_goes_with_the_next_post(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings):
        page = await console_at(browser, web.http, shop, 390)
        await page.fill("#title", "Comté 24 mois")
        await page.click("#publish")
        await page.wait_for_selector("#post-ok:has-text('Publié')")
        await page.click("#lang")
        await page.wait_for_selector("#post-ok:has-text('Published!')")
        await page.click("#lang")
        await page.wait_for_selector("#post-ok:has-text('Publié')")
        # Starting the next post (typing, or a quick end time) hides it.
        await page.fill("#title", "Mont d'Or")
        await page.wait_for_selector("#post-ok", state="hidden")
        await page.click("#publish")
        await page.wait_for_selector("#post-ok", state="visible")
        await page.click("label[for='kind-flash_offer']")
        await page.wait_for_selector("#post-ok", state="hidden")
        assert page.errors == []


async def test_at_closing_is_the_real_closing_or_disabled(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """It filled now + 2 h whatever the shop's hours: now the closing time the server
    computes from them, or a disabled button that says why."""
    shop = await add_shop(redis, settings, "Caviste", *STREET)
    auth = {"Authorization": f"Bearer {shop.token}"}
    closing = '[data-ends="closing"]'
    paris = ZoneInfo("Europe/Paris")
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        page = await console_at(browser, web.http, shop, 320)
        await page.click("label[for='kind-flash_offer']")
        # No hours: nothing to go by.
        await page.wait_for_selector("#closing-note:has-text('indiquez d')")
        assert await page.is_disabled(closing)

        # Open now, closing in two hours: pushed to the open console, and used.
        now = datetime.now(paris)
        opens, closes = (now - timedelta(hours=1)).strftime("%H:%M"), \
            (now + timedelta(hours=2)).strftime("%H:%M")
        week = {day: [{"open": opens, "close": closes}]
                for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        put = await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth,
                             json={"timezone": "Europe/Paris", "weekly": week})
        assert put.status_code == 200, put.text
        await page.wait_for_selector(f"{closing}:not([disabled])")
        assert await page.is_hidden("#closing-note")
        await page.click(closing)
        assert (await page.input_value("#ends-at")).endswith(f"T{closes}")
        # The quick end chosen shows as pressed, until the time is typed by hand.
        pressed = "els => els.filter(e => e.ariaPressed === 'true').map(e => e.dataset.ends)"
        assert await page.eval_on_selector_all("[data-ends]", pressed) == ["closing"]
        await page.click('[data-ends="60"]')
        assert await page.eval_on_selector_all("[data-ends]", pressed) == ["60"]
        await page.fill("#ends-at", f"{now.date().isoformat()}T{closes}")
        assert await page.eval_on_selector_all("[data-ends]", pressed) == []

        # Closed for the rest of today (an exceptional closure, yesterday's too: its range
        # may run past midnight): disabled, and said so.
        closed = [{"date": (now.date() - timedelta(days=d)).isoformat(), "ranges": []}
                  for d in (1, 0)]
        put = await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth,
                             json={"timezone": "Europe/Paris", "weekly": week,
                                   "exceptions": closed})
        assert put.status_code == 200, put.text
        await page.wait_for_selector(f"{closing}[disabled]")
        await page.wait_for_selector("#closing-note:has-text('pas de fermeture prévue')")
        # The "until closing" template invents no closing either: the usual hour's end
        # stays for the shopkeeper to change, with the note saying why.
        await page.click("#tpl-discount")
        ends = datetime.fromisoformat(await page.input_value("#ends-at")).replace(tzinfo=paris)
        assert timedelta(minutes=55) <= ends - datetime.now(paris) <= timedelta(minutes=62)
        assert await page.is_visible("#closing-note")
        assert page.errors == []
