""""Hold it for me" in the shopkeeper console (issue 17), in real headless Chromium, with a
real server, enricher and WebSocket clients.

The new-post form offers holds (how many, each kept how long) on a new arrival or a flash
offer, previewed as the street shows it, and the delivered post carries `hold`; an edit
changes the offer (its quantity counting the units already taken) or stops it, sent only
when changed. Holds asked over the API are pushed to the console (no request): a sound,
the count on the panel's heading and in the tab title, an announcement; none of that for
the holds already there when the console (re)connects. Accept and decline in one tap,
collected at the till by the code typed any way. A shop turns holds off from its profile.
French and English; a 320 px phone does not scroll sideways.

Not testable headless: the camera scanner (Chromium has no BarcodeDetector there: the
button stays hidden, which is checked) and hearing the beep (the page counts the beeps it
played through Web Audio).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    enricher,
    feed_client,
    flash,
    live_post,
    wait_for,
    web_server,
)
from tests.test_browser_console import console_at, layout_faults

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)  # rue Sainte-Catherine, Bordeaux


# The elements of a panel drawn past its content box (its padding is its margin).
OUTSIDE_PANEL = """(selector) => {
  const panel = document.querySelector(selector);
  const box = panel.getBoundingClientRect();
  const style = getComputedStyle(panel);
  const left = box.left + parseFloat(style.paddingLeft) - 0.5;
  const right = box.right - parseFloat(style.paddingRight) + 0.5;
  return [...panel.querySelectorAll("*")].filter((n) => n.getClientRects().length)
    .map((n) => [n.id || n.className, n.getBoundingClientRect()])
    .filter(([, r]) => r.width && (r.left < left || r.right > right))
    .map(([name, r]) => `${name} ${Math.round(r.left)}-${Math.round(r.right)}`);
}"""


async def ask(http: httpx.AsyncClient, post_id: str, name: str) -> dict[str, Any]:
    answer = await http.post(f"/api/v1/posts/{post_id}/holds", json={"name": name})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def status_of(http: httpx.AsyncClient, hold: dict[str, Any]) -> str:
    answer = await http.get(f"/api/v1/holds/{hold['id']}",
                            headers={"Authorization": f"Bearer {hold['secret']}"})
    status: str = answer.json()["status"]
    return status


def last_version(street: Any, post_id: str) -> dict[str, Any] | None:
    versions = [p for p in street.posts() if p["id"] == post_id]
    return versions[-1] if versions else None


def patches(requests: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.post_data) for r in requests if r.method == "PATCH"]


async def test_offer_on_a_new_post_then_change_and_stop_it(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur des Halles", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        page = await console_at(browser, web.http, shop, 390)
        # Off by default; none on opening hours.
        assert not await page.is_checked("#post-hold-on")
        assert not await page.is_visible("#post-hold-quantity")
        await page.click("label[for='kind-opening_change']")
        assert not await page.is_visible("#post-hold")
        await page.click("label[for='kind-new_arrival']")

        await page.fill("#title", "Fraises de Plougastel")
        await page.click("label[for='post-hold-on']")
        assert await page.input_value("#post-hold-quantity") == "3"
        assert await page.input_value("#post-hold-minutes") == "60"
        assert await page.get_attribute(".hold-preset[data-minutes='60']", "aria-pressed") == "true"
        await page.click(".hold-preset[data-minutes='30']")
        assert await page.input_value("#post-hold-minutes") == "30"
        # The preview says it as the street will.
        await expect(page.locator("#preview [class*='hold']").first).to_contain_text("3")
        await page.fill("#post-hold-quantity", "60")
        await page.click("#publish")
        await expect(page.locator("#post-error")).to_have_text(
            "Combien mettre de côté : un nombre entier de 1 à 50.")
        assert await page.evaluate("() => document.activeElement.id") == "post-hold-quantity"
        await page.fill("#post-hold-quantity", "3")
        await page.click("#publish")
        await page.wait_for_selector("#post-ok:not([hidden])")
        await wait_for(lambda: any(p["title"] == "Fraises de Plougastel"
                                   for p in street.posts()), message="post delivered")
        delivered = next(p for p in street.posts() if p["title"] == "Fraises de Plougastel")
        assert delivered["hold"] == {"left": 3, "minutes": 30}
        post_id = delivered["id"]
        # The form starts the next post without the offer.
        assert not await page.is_checked("#post-hold-on")
        own = page.locator(f'#own-posts [data-post-id="{post_id}"]')
        # From the shop's side (a cold try read the passer-by's "Hold it for me · 3 left"
        # on the shop's own post): how many are held, how many left of how many.
        offer_line = own.locator(".own-hold:visible")
        await expect(offer_line).to_have_text("Rien de réservé · encore 3 sur 3 · gardé 30 min")
        assert await own.locator(".hold-line").count() == 0

        # A passer-by holds one, the shop gives it: the quantity still counts it.
        held = await ask(http, post_id, "Léa")
        await expect(offer_line).to_have_text("1 réservé · encore 2 sur 3 · gardé 30 min")
        assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{held['id']}/collected",
                                headers=auth(shop))).status_code == 200
        await page.wait_for_function("() => window.streetfeedConsole.holds.count === 0")

        requests: list[Any] = []
        page.on("request", lambda request: requests.append(request))
        await own.locator(".edit").click()
        quantity = f"#edit-hold-{post_id}-quantity"
        assert await page.is_checked(f"#edit-hold-{post_id}-on")
        assert await page.input_value(quantity) == "3"  # 2 left + 1 taken
        # An edit that leaves the offer alone does not send it.
        await page.fill(f"#edit-title-{post_id}", "Fraises de Plougastel, extra")
        await own.locator("button[type='submit']").click()
        await wait_for(lambda: (last_version(street, post_id) or {}).get("title")
                       == "Fraises de Plougastel, extra", message="title edited")
        assert patches(requests) == [{"title": "Fraises de Plougastel, extra"}]
        assert last_version(street, post_id)["hold"] == {"left": 2, "minutes": 30}  # type: ignore[index]

        await own.locator(".edit").click()
        await page.fill(quantity, "6")
        await own.locator(".hold-preset[data-minutes='120']").click()
        await own.locator("button[type='submit']").click()
        await wait_for(lambda: (last_version(street, post_id) or {}).get("hold")
                       == {"left": 5, "minutes": 120}, message="offer changed")
        assert patches(requests)[-1] == {"hold": {"quantity": 6, "minutes": 120}}
        await expect(offer_line).to_have_text("1 réservé · encore 5 sur 6 · gardé 2 h")
        # Every unit asked for: all held, from the shop's side too.
        for name in ("Marc", "Zoé", "Noé", "Inès", "Hugo"):  # 3 open a person: each given
            given = await ask(http, post_id, name)
            assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{given['id']}/collected",
                                    headers=auth(shop))).status_code == 200
        await expect(offer_line).to_have_text("Tout est réservé : 6 sur 6 · gardé 2 h")
        await page.click("#lang")
        await expect(offer_line).to_have_text("All held: 6 of 6 · kept 2 h")
        await page.click("#lang")

        await own.locator(".edit").click()
        await page.click(f"label[for='edit-hold-{post_id}-on']")
        await own.locator("button[type='submit']").click()
        await wait_for(lambda: (last_version(street, post_id) or {"hold": 1}).get("hold")
                       is None, message="offer stopped")
        assert patches(requests)[-1] == {"hold": None}
        await expect(offer_line).to_have_count(0)
        refused = await http.post(f"/api/v1/posts/{post_id}/holds", json={"name": "Marc"})
        assert refused.json()["error"]["code"] == "not_holdable"

        # A flash offer offers it too.
        await page.click("label[for='kind-flash_offer']")
        await page.fill("#title", "Melons -30 %")
        await page.click("label[for='post-hold-on']")
        await page.fill("#post-hold-minutes", "45")
        await page.click("#publish")
        await wait_for(lambda: any(p["title"] == "Melons -30 %" for p in street.posts()),
                       message="offer delivered")
        offer = next(p for p in street.posts() if p["title"] == "Melons -30 %")
        assert offer["kind"] == "flash_offer" and offer["hold"] == {"left": 3, "minutes": 45}
        assert page.errors == []


async def test_holds_are_pushed_then_answered_and_collected_at_the_till(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, flash(
            "Brie de Meaux", minutes=120, hold={"quantity": 5, "minutes": 45}))
        page = await console_at(browser, web.http, shop, 390, clock=True)
        await page.click("#lang")  # English; a gesture too, which lets the page beep
        assert await page.get_attribute("html", "lang") == "en"
        await expect(page.locator("#holds-empty")).to_have_text("No hold open.")
        assert await page.is_hidden("#holds-count")
        assert await page.title() == "Streetfeed — shop console"
        # Headless Chromium has no BarcodeDetector: no scanner button.
        assert await page.is_hidden("#till-scan")

        # API calls only: Chromium fetches the tab's icon again as the title changes.
        requests: list[str] = []
        browser.on("request", lambda request: requests.append(request.url)
                   if "/api/" in request.url else None)
        lea = await ask(http, post_id, "Léa")
        item = page.locator(f'#holds-list [data-hold-id="{lea["id"]}"]')
        await expect(item.locator(".hold-name")).to_have_text("Léa")
        await expect(item.locator(".hold-code")).to_have_text(lea["code"])
        await expect(item.locator(".hold-post")).to_have_text("Brie de Meaux")
        await expect(item.locator(".hold-status")).to_have_text("Waiting for your answer")
        await expect(page.locator("#holds-count")).to_have_text("1")
        assert await page.title() == "(1) Streetfeed — shop console"
        await expect(page.locator("#announcer")).to_have_text(
            f"New hold: Léa, Brie de Meaux (code {lea['code']})")
        assert await page.evaluate("() => window.streetfeedConsole.holds.beeps") == 1
        # Asked, not yet put aside: not counted in "held today" (asking is anyone's).
        await expect(page.locator("#holds-today")).to_have_text("0 holds today")
        # The time left, to the minute, follows the clock.
        left = await page.evaluate(
            f"() => Math.ceil((Date.parse({json.dumps(lea['expires_at'])}) - Date.now()) / 60000)")
        await expect(item.locator(".hold-time")).to_have_text(f"{left} min left")
        await page.clock.run_for(10 * 60 * 1000)
        await expect(item.locator(".hold-time")).to_have_text(f"{left - 10} min left")

        # A second hold: counted, and beeped, too.
        marc = await ask(http, post_id, "Marc")
        await expect(page.locator("#holds-count")).to_have_text("2")
        assert await page.title() == "(2) Streetfeed — shop console"
        assert await page.evaluate("() => window.streetfeedConsole.holds.beeps") == 2
        assert requests == []  # all pushed over the console's socket

        # Accept one in a tap: it stays, put aside, after the pending one.
        await item.locator("button[data-action='accept']").click()
        await expect(item.locator(".hold-status")).to_have_text("Put aside")
        await expect(page.locator("#holds-count")).to_have_text("1")
        await expect(page.locator("#holds-today")).to_have_text("1 hold today")
        assert await status_of(http, lea) == "accepted"
        ids = await page.eval_on_selector_all("#holds-list [data-hold-id]",
                                              "nodes => nodes.map(n => n.dataset.holdId)")
        assert ids == [marc["id"], lea["id"]]  # pending first
        # Decline the other in a tap: it goes.
        await page.click(f'#holds-list [data-hold-id="{marc["id"]}"] '
                         "button[data-action='decline']")
        await page.wait_for_selector(f'#holds-list [data-hold-id="{marc["id"]}"]',
                                     state="detached")
        assert await status_of(http, marc) == "declined"
        await expect(page.locator("#holds-count")).to_be_hidden()
        await expect(page.locator("#holds-today")).to_have_text("1 hold today")
        assert await page.title() == "Streetfeed — shop console"

        # At the till: a code nobody holds, then Léa's typed lower case with a dash.
        await page.fill("#till-code", "zzzz")
        await page.click("#till-find")
        await expect(page.locator("#till-error")).to_have_text("No open hold with the code ZZZZ.")
        code = lea["code"]
        await page.fill("#till-code", f" {code[:2].lower()}-{code[2:].lower()} ")
        await page.press("#till-code", "Enter")
        await expect(page.locator("#till-found-text")).to_have_text(
            f"Léa — Brie de Meaux ({code}, Put aside)")
        assert await page.evaluate("() => document.activeElement.id") == "till-confirm"
        await page.click("#till-confirm")
        await expect(page.locator("#till-ok")).to_have_text(f"Collected by Léa ({code}).")
        assert await status_of(http, lea) == "collected"
        # The next lookup's answer replaces it: one message at a time (a cold try saw the
        # green "Collected" stay above a red "No open hold").
        await page.fill("#till-code", "zzzz")
        await page.click("#till-find")
        await expect(page.locator("#till-error")).to_have_text("No open hold with the code ZZZZ.")
        await expect(page.locator("#till-ok")).to_be_hidden()
        await page.wait_for_selector(f'#holds-list [data-hold-id="{lea["id"]}"]',
                                     state="detached")

        # Sound off, remembered on the device: a new hold counts, and does not beep.
        await page.click("#holds-sound")
        await expect(page.locator("#holds-sound")).to_have_text("Sound: off")
        zoe = await ask(http, post_id, "Zoé")
        await expect(page.locator("#holds-count")).to_have_text("1")
        assert await page.evaluate("() => window.streetfeedConsole.holds.beeps") == 2

        # Reloaded (a new socket): what is there makes no sound, and is counted.
        await page.reload()
        await page.wait_for_function("() => window.streetfeedConsole.live")
        await expect(page.locator("#holds-sound")).to_have_text("Sound: off")
        await page.click("#holds-sound")  # on again (a gesture too)
        await expect(page.locator(f'#holds-list [data-hold-id="{zoe["id"]}"]')).to_be_visible()
        await expect(page.locator("#holds-count")).to_have_text("1")
        assert await page.title() == "(1) Streetfeed — shop console"
        assert await page.evaluate("() => window.streetfeedConsole.holds.beeps") == 0
        await ask(http, post_id, "Noé")
        await expect(page.locator("#holds-count")).to_have_text("2")
        assert await page.evaluate("() => window.streetfeedConsole.holds.beeps") == 1
        # French: every word follows.
        await page.click("#lang")
        await expect(page.locator("#holds-heading")).to_contain_text("Réservations")
        assert await page.title() == "(2) Streetfeed — console commerçant"
        assert page.errors == []


async def test_a_shop_turns_holds_off_from_its_profile(
        redis: Redis, settings: Settings, browser: Any) -> None:
    # Profile changes republish posts at most once a minute by default: not to wait here.
    settings = dataclasses.replace(settings, profile_republish_interval_s=0.2)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        post_id = await live_post(http, shop, redis, arrival(
            "Cerises", hold={"quantity": 3, "minutes": 30}))
        page = await console_at(browser, web.http, shop, 390)
        assert await page.is_checked("#profile-holds")
        await page.click("label[for='profile-holds']")
        await expect(page.locator("#profile-holds-ok")).to_have_text(
            "Les réservations sont désactivées : vos annonces en ligne ne proposent plus la "
            "mise de côté d'ici une minute.")
        assert (await http.get(f"/api/v1/shops/{shop.id}")).json()["holds"] is False
        await wait_for(lambda: (last_version(street, post_id) or {"hold": 1}).get("hold")
                       is None, message="offer gone from the street")
        # The new post's offer says why it will not show.
        await page.click("label[for='post-hold-on']")
        await expect(page.locator("#post-hold .hold-off-note")).to_be_visible()
        # Another screen of the shop turns it back on: this one follows (the `shop` frame).
        on = await http.patch(f"/api/v1/shops/{shop.id}", json={"holds": True},
                              headers=auth(shop))
        assert on.status_code == 200
        await expect(page.locator("#profile-holds")).to_be_checked()
        await expect(page.locator("#post-hold .hold-off-note")).to_be_hidden()
        assert page.errors == []


async def test_holds_fit_a_320px_phone(redis: Redis, settings: Settings,
                                       browser: Any) -> None:
    shop = await add_shop(redis, settings, "Épicerie fine du Grand-Théâtre", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, arrival(
            "Clémentines de Corse extra-juteuses avec leurs feuilles",
            hold={"quantity": 50, "minutes": 240}))
        await ask(http, post_id, "Marie-Christine-Bernadette")
        accepted = await ask(http, post_id, "Jean-Baptiste")
        await http.post(f"/api/v1/shops/{shop.id}/holds/{accepted['id']}/accept",
                        headers=auth(shop))
        faults: list[str] = []
        for width in (320, 360, 390):
            await browser.clear_cookies()  # signed out: console_at signs in
            page = await console_at(browser, web.http, shop, width)
            await page.wait_for_selector(f'#holds-list [data-hold-id="{accepted["id"]}"]')
            await page.click("label[for='post-hold-on']")
            await page.click(f'#own-posts [data-post-id="{post_id}"] .edit')
            await page.wait_for_selector(f"#edit-hold-{post_id}-quantity")
            await page.fill("#till-code", "ACDE")
            await page.click("#till-find")
            for lang in ("fr", "en"):
                if await page.get_attribute("html", "lang") != lang:
                    await page.click("#lang")
                faults += await layout_faults(page, f"{width}px {lang} holds")
            # Every hold button is a 44 px target.
            heights = await page.eval_on_selector_all(
                "#holds-panel button:not([hidden]), .hold-preset, .hold-switch label",
                "nodes => nodes.filter(n => n.offsetParent)"
                ".map(n => n.getBoundingClientRect().height)")
            assert heights and min(heights) >= 44, heights
            # Nothing of the panel passes its padding (the till's button once did).
            outside = await page.evaluate(OUTSIDE_PANEL, "#holds-panel")
            assert outside == [], (width, outside)
            assert page.errors == []
            await page.close()
        assert not faults, "\n".join(faults)


async def test_the_till_reads_as_a_form_and_a_held_post_is_withdrawn_knowingly(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """A cold try: the till's lookup looked like one more text line, its "Cancel" beside
    holds read as cancelling one, the "take holds" switch sat in "Your shop", and a post
    with open holds went in two taps without a word about them."""
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, arrival(
            "Comté 24 mois", hold={"quantity": 5, "minutes": 60}))
        other = await live_post(http, shop, redis, arrival("Beurre cru"))
        lea = await ask(http, post_id, "Léa")
        marc = await ask(http, post_id, "Marc")
        zoe = await ask(http, post_id, "Zoé")
        for hold in (lea, marc):
            assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{hold['id']}/accept",
                                    headers=auth(shop))).status_code == 200
        page = await console_at(browser, web.http, shop, 360)
        await page.wait_for_selector(f'#holds-list [data-hold-id="{zoe["id"]}"]')

        # The till: a form of its own, named, its field labelled, its button beside it.
        till = page.get_by_role("form", name="Code en caisse")
        await expect(till).to_be_visible()
        await expect(till.get_by_role("textbox", name="Le code du client")).to_be_visible()
        await expect(till.get_by_role("button", name="Trouver la réservation")).to_be_visible()
        code = page.locator("#till-code")
        await code.fill(zoe["code"].lower())
        await page.click("#till-find")
        await expect(page.locator("#till-found")).to_be_visible()
        # Its second button says what it does, and does it: the code goes, nothing else.
        await expect(page.locator("#till-cancel")).to_have_text("Effacer le code")
        await page.click("#till-cancel")
        await expect(page.locator("#till-found")).to_be_hidden()
        assert await code.input_value() == ""
        assert await page.evaluate("() => document.activeElement.id") == "till-code"
        assert await status_of(http, zoe) == "pending"

        # Turning holds off is with the holds, and says what it does, as a condition: under
        # a ticked switch, "Désactivé : …" read as the state (a cold try).
        panel = page.locator("#holds-panel")
        await expect(panel.locator("#profile-holds")).to_be_checked()
        await expect(panel.locator("#profile-holds-help")).to_have_text(
            "Si vous le désactivez : vos annonces ne proposent plus de mise de côté et "
            "personne ne peut en demander de nouvelle ; les réservations en cours restent, "
            "à traiter et à remettre.")
        assert await page.locator("#profile-panel #profile-holds").count() == 0

        # Withdrawing a post with open holds: asked first, with what becomes of them.
        own = page.locator(f'#own-posts [data-post-id="{post_id}"]')
        await own.locator(".withdraw").click()
        warning = own.locator(".withdraw-warning")
        await expect(warning).to_have_text(re.compile(
            r"^Cette annonce a 3 réservations en cours : 1 en attente sera refusée ; "
            r"2 mises de côté restent gardées pour leurs clients\."))
        assert await page.evaluate("() => document.activeElement.textContent") == \
            "Garder l'annonce"
        faults = await layout_faults(page, "360px fr withdraw warning")
        await page.set_viewport_size({"width": 320, "height": 740})
        faults += await layout_faults(page, "320px fr withdraw warning")
        assert faults == [], faults
        # Kept: nothing happens to the post.
        await warning.get_by_role("button", name="Garder l'annonce").click()
        await expect(warning).to_be_hidden()
        assert await redis.exists(keys.post("main", post_id))
        # In English too, then withdrawn anyway: the pending one declined, the others kept.
        await page.click("#lang")
        await own.locator(".withdraw").click()
        await expect(warning).to_contain_text(
            "This post has 3 open holds: 1 waiting for your answer will be declined; "
            "2 put aside stay kept for their customers.")
        await warning.get_by_role("button", name="Withdraw anyway").click()
        await expect(own).to_have_count(0)
        async def declined() -> bool:
            return await status_of(http, zoe) == "declined"

        await wait_for(declined, message="the pending hold declined")
        assert await status_of(http, lea) == "accepted"
        assert await status_of(http, marc) == "accepted"

        # A post without holds: the two taps as before, no warning.
        plain = page.locator(f'#own-posts [data-post-id="{other}"]')
        await plain.locator(".withdraw").click()
        await expect(plain.locator(".withdraw")).to_have_text("Confirm withdrawal")
        await expect(plain.locator(".withdraw-warning")).to_be_hidden()
        await plain.locator(".withdraw").click()
        await expect(plain).to_have_count(0)
        assert page.errors == []
