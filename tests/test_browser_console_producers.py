"""Producers in the shopkeeper console (issue 16), in real headless Chromium, real server.

"My producers": the search as you type finds a producer another shop named (accents and
case folded, word by word), and picking it links that very record (the same id, checked
over the API); a producer nobody named yet is added with a tap on the map or typed
coordinates; one named the same within 2 km by the form is the known one; removing takes
two taps; one named or removed on another screen of the shop shows at once (pushed by
the console's socket). A new post names up to three of them: the preview shows their badges, the
delivered post (WebSocket) carries them, and an edit changes them (sent only when
changed). French and English; a 320 px phone does not scroll sideways.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.shops import ShopCreated
from tests.helpers import add_shop, auth, enricher, feed_client, wait_for, web_server
from tests.test_browser_console import console_at, layout_faults

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)  # rue Sainte-Catherine, Bordeaux
NEIGHBOUR = (44.8390, -0.5735)
MILL = (44.8940, -0.1550)  # Saint-Émilion, 33.6 km from STREET
DAIRY = (44.775, -0.348)  # Créon, 19.1 km
GARDEN = (44.800, -0.530)  # Bègles, 5.4 km
ROASTER = (44.860, -0.600)  # 3.3 km


async def name(http: httpx.AsyncClient, shop: ShopCreated, producer: str, place: str,
               at: tuple[float, float]) -> str:
    response = await http.post(f"/api/v1/shops/{shop.id}/producers", headers=auth(shop),
                               json={"name": producer, "place": place, "lat": at[0], "lon": at[1]})
    assert response.status_code == 201, response.text
    producer_id: str = response.json()["id"]
    return producer_id


async def linked(http: httpx.AsyncClient, shop: ShopCreated) -> list[dict[str, Any]]:
    producers: list[dict[str, Any]] = (await http.get(f"/api/v1/shops/{shop.id}")).json()[
        "producers"]
    return producers


async def texts(page: Any, selector: str) -> list[str]:
    return await page.eval_on_selector_all(  # type: ignore[no-any-return]
        selector, "nodes => nodes.map(n => n.textContent.trim())")


def no_map_tiles(settings: Settings) -> Settings:
    """Nothing fetched from a tile server: the map still draws and takes taps."""
    return dataclasses.replace(settings, tile_url="")


async def test_search_links_the_known_producer_new_ones_are_added_and_removed(
        redis: Redis, settings: Settings, browser: Any) -> None:
    settings = no_map_tiles(settings)
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    grocer = await add_shop(redis, settings, "Épicerie Fine", *NEIGHBOUR)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        mill = await name(http, grocer, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        dairy = await name(http, grocer, "Laiterie Lagarde", "Créon", DAIRY)
        page = await console_at(browser, web.http, baker, 390)
        await page.wait_for_selector("#own-producers-empty:not([hidden])")
        assert await page.inner_text("#own-producers-empty") == "Aucun producteur pour le moment."
        assert "Mes producteurs" in await texts(page, "#producers-heading")
        # The post form says where to add them while the shop names none.
        assert await page.is_visible("#post-producers .prod-pick-empty")

        # Typed as a shopkeeper types: no accents, no hyphen, no "de".
        search = page.locator("#prod-search")
        await search.press_sequentially("moulin saint emilion")
        await page.wait_for_selector("#prod-results:not([hidden]) .prod-option")
        assert await search.get_attribute("aria-expanded") == "true"
        options = await texts(page, "#prod-results .prod-option")
        assert options == ["Moulin de Saint-ÉmilionSaint-Émilion · 34 km",
                           "Nouveau producteur « moulin saint emilion »…"]
        await page.wait_for_function("() => document.querySelector('#prod-search-status')"
                                     ".textContent === '1 producteur trouvé près d\\'ici'")
        # The keyboard: the arrow moves the active option (focus stays in the field),
        # Enter picks it.
        await search.press("ArrowDown")
        assert await search.get_attribute("aria-activedescendant") == "prod-option-0"
        assert await page.get_attribute("#prod-option-0", "aria-selected") == "true"
        assert await page.evaluate("() => document.activeElement.id") == "prod-search"
        await search.press("Enter")
        await page.wait_for_selector(f'#own-producers [data-producer-id="{mill}"]')
        # The very producer the grocer named: one record, linked to both shops.
        assert [p["id"] for p in await linked(http, baker)] == [mill]
        page_shops = (await http.get(f"/api/v1/producers/{mill}")).json()["shops"]
        assert {s["id"] for s in page_shops} == {baker.id, grocer.id}
        await expect(page.locator("#producers-ok")).to_have_text(
            "Vos producteurs comptent désormais Moulin de Saint-Émilion.")
        assert await search.input_value() == ""
        assert await texts(page, "#own-producers .own-producer-info") == [
            "Moulin de Saint-ÉmilionSaint-Émilion · 34 km"]
        # The new post's picker offers it at once.
        await page.wait_for_selector(f"#post-producers input[value='{mill}']")
        # Searching it again says it is already there, and picking it changes nothing.
        await search.fill("MOULIN")
        await page.wait_for_selector("#prod-option-0 .prod-option-mine")
        assert await page.get_attribute("#prod-option-0", "aria-disabled") == "true"
        await search.press("ArrowDown")
        await search.press("Enter")
        await page.wait_for_function(
            "() => document.querySelector('#producers-ok').textContent"
            " === 'Moulin de Saint-Émilion est déjà dans vos producteurs.'")
        await search.press("Escape")
        await search.press("Escape")  # closed, then emptied
        assert await search.input_value() == ""

        # Not known nearby: the last option opens the new producer's form with the name.
        await search.fill("Ferme des Jonquilles")
        await page.wait_for_function("() => document.querySelector('#prod-search-status')"
                                     ".textContent.startsWith('Aucun producteur connu')")
        await page.click("#prod-results .prod-option-new")
        await page.wait_for_selector("#prod-form:not([hidden])")
        assert await page.input_value("#prod-name") == "Ferme des Jonquilles"
        assert await page.get_attribute("#prod-new", "aria-expanded") == "true"
        await page.fill("#prod-place", "Carignan")
        # No position yet: said, and the latitude field takes the focus.
        await page.click("#prod-add")
        assert await page.inner_text("#prod-form-error") == (
            "Touchez la carte à son emplacement, ou tapez sa latitude et sa longitude.")
        assert await page.evaluate("() => document.activeElement.id") == "prod-lat"
        # A tap on the map, north-east of the shop (the map opens around it).
        await page.wait_for_selector("#prod-map .place-shop")
        box = await page.locator("#prod-map").bounding_box()
        await page.locator("#prod-map").click(
            position={"x": box["width"] * 0.8, "y": box["height"] * 0.3})
        await page.wait_for_function("() => document.querySelector('#prod-lat').value !== ''")
        lat = float(await page.input_value("#prod-lat"))
        lon = float(await page.input_value("#prod-lon"))
        assert lat > STREET[0] and lon > STREET[1]
        assert await page.is_visible("#prod-map .place-point")
        assert (await page.inner_text("#prod-distance")).startswith("À ")
        await page.click("#prod-add")
        await page.wait_for_selector("#prod-form", state="hidden")
        producers = await linked(http, baker)
        farm = next(p for p in producers if p["name"] == "Ferme des Jonquilles")
        record = (await http.get(f"/api/v1/producers/{farm['id']}")).json()
        assert (record["place"], record["lat"], record["lon"]) == ("Carignan", lat, lon)

        # Typed coordinates (a decimal comma), for a dairy the grocer named 100 m away
        # under another case: the server says it is the same, and the console says so.
        await page.click("#prod-new")
        await page.fill("#prod-name", "LAITERIE LAGARDE")
        await page.fill("#prod-place", "Créon")
        await page.fill("#prod-lat", "44,7759")
        await page.fill("#prod-lon", "-0,348")
        await page.click("#prod-add")
        await page.wait_for_selector(f'#own-producers [data-producer-id="{dairy}"]')
        await expect(page.locator("#producers-ok")).to_have_text(
            "Vos producteurs comptent désormais Laiterie Lagarde, déjà sur la carte près d'ici.")
        assert {p["id"] for p in await linked(http, baker)} == {mill, dairy, farm["id"]}

        # A name is counted as it is typed, and cut at 60 where the counter says so (it
        # was cut silently: a cold try).
        await page.click("#prod-new")
        assert await page.inner_text("#prod-name-count") == "0/60"
        await page.fill("#prod-name", "Domaine viticole des très longues appellations de la "
                                      "rive droite")
        assert await page.inner_text("#prod-name-count") == "60/60"
        assert len(await page.input_value("#prod-name")) == 60
        # A bad coordinate is refused before anything is sent.
        await page.fill("#prod-name", "Domaine X")
        await page.fill("#prod-place", "Pessac")
        await page.fill("#prod-lat", "95")
        await page.fill("#prod-lon", "-0.6")
        await page.click("#prod-add")
        assert (await page.inner_text("#prod-form-error")).startswith("Latitude non valable")
        # A refusal of the server, in words of the producer (not "in a post").
        await page.fill("#prod-lat", "44.8")
        await page.fill("#prod-name", "<b>Domaine</b>")
        await page.click("#prod-add")
        await page.wait_for_function("() => document.querySelector('#prod-form-error')"
                                     ".textContent.includes('nom ou le lieu d\\'un producteur')")
        await page.click("#prod-cancel")
        assert await page.is_hidden("#prod-form")

        # Removing: two taps (the first asks), then it is gone, here and on the server.
        remove = f'#own-producers [data-producer-id="{mill}"] .own-producer-remove'
        assert await page.get_attribute(remove, "aria-label") == (
            "Retirer Moulin de Saint-Émilion de vos producteurs")
        await page.click(remove)
        assert await page.inner_text(remove) == "Confirmer ?"
        assert mill in [p["id"] for p in await linked(http, baker)]
        await page.click(remove)
        await page.wait_for_selector(f'#own-producers [data-producer-id="{mill}"]',
                                     state="detached")
        assert mill not in [p["id"] for p in await linked(http, baker)]
        await expect(page.locator("#producers-ok")).to_have_text(
            "Moulin de Saint-Émilion est retiré de vos producteurs.")
        # The focus went to the producer that took its place, not to the page's top.
        assert await page.evaluate(
            "() => document.activeElement.classList.contains('own-producer-remove')")
        await page.wait_for_selector(f"#post-producers input[value='{mill}']", state="detached")

        # Another screen of the shop (here an API client) names and unlinks one: this
        # console is told by its socket, with no reload and no request of its own.
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        await name(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        await page.wait_for_selector(f'#own-producers [data-producer-id="{mill}"]')
        await page.wait_for_selector(f"#post-producers input[value='{mill}']")
        gone = await http.delete(f"/api/v1/shops/{baker.id}/producers/{dairy}",
                                 headers=auth(baker))
        assert gone.status_code == 204
        await page.wait_for_selector(f'#own-producers [data-producer-id="{dairy}"]',
                                     state="detached")
        assert requests == []
        assert page.errors == []


async def test_a_post_names_producers_in_preview_delivery_and_edits(
        redis: Redis, settings: Settings, browser: Any) -> None:
    baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        mill = await name(http, baker, "Moulin de Saint-Émilion", "Saint-Émilion", MILL)
        dairy = await name(http, baker, "Laiterie Lagarde", "Créon", DAIRY)
        garden = await name(http, baker, "Les Jardins de Bègles", "Bègles", GARDEN)
        roaster = await name(http, baker, "Torréfaction Sainte-Croix", "Bordeaux", ROASTER)
        page = await console_at(browser, web.http, baker, 390)
        bodies: list[dict[str, Any]] = []
        page.on("request", lambda r: bodies.append({"method": r.method, **json.loads(
            r.post_data)}) if "/posts" in r.url and r.post_data else None)
        # The shop's producers, nearest first, with their distance.
        await page.wait_for_selector("#post-producers .prod-chip >> nth=3")
        assert await texts(page, "#post-producers .prod-chip") == [
            "Torréfaction Sainte-Croix · 3,3 km", "Les Jardins de Bègles · 5,4 km",
            "Laiterie Lagarde · 19 km", "Moulin de Saint-Émilion · 34 km"]
        await page.fill("#title", "Pain de seigle")

        def chip(pid: str) -> str:
            return f"#post-producers label[for$='-{pid}']"

        # Ticked in this order: the card shows them so.
        await page.click(chip(mill))
        await page.click(chip(dairy))
        assert await texts(page, "#preview .card .producer") == [
            "Moulin de Saint-Émilion · 34 km", "Laiterie Lagarde · 19 km"]
        assert await page.get_attribute("#preview .card .producers", "aria-label") == (
            "D'où ça vient")
        assert await page.locator("#preview a.producer").count() == 0
        assert await page.inner_text("#post-producers .prod-pick-counter") == "2/3"
        # A third: the fourth waits (three at most), and is free again once one is let go.
        await page.click(chip(garden))
        assert await page.is_disabled(f"#post-producers input[value='{roaster}']")
        await page.click(chip(garden))
        assert await page.is_enabled(f"#post-producers input[value='{roaster}']")
        # The keyboard ticks a chip too.
        await page.focus(f"#post-producers input[value='{garden}']")
        await page.keyboard.press("Space")
        await page.keyboard.press("Space")
        assert len(await texts(page, "#preview .card .producer")) == 2
        # A template writes the words and keeps the producers ticked.
        await page.click("#tpl-arrival")
        assert len(await texts(page, "#preview .card .producer")) == 2
        await page.fill("#title", "Pain de seigle")
        await page.click("#publish")

        post = await wait_for_producers(passer_by, "Pain de seigle", [mill, dairy])
        assert post["producers"] == [
            {"id": mill, "name": "Moulin de Saint-Émilion", "place": "Saint-Émilion",
             "distance_km": 33.6},
            {"id": dairy, "name": "Laiterie Lagarde", "place": "Créon", "distance_km": 19.1}]
        assert bodies[-1]["producer_ids"] == [mill, dairy]
        # The form is ready for the next post (once the 202 is in): nothing ticked.
        await page.wait_for_selector("#post-ok:not([hidden])")
        assert await page.inner_text("#post-producers .prod-pick-counter") == "0/3"
        assert await texts(page, "#preview .card .producer") == []

        # Editing the live post: its producers ticked as it names them; changed, sent.
        row = f'#own-posts [data-post-id="{post["id"]}"]'
        await page.click(f"{row} .edit")
        await page.wait_for_selector(f"{row} .edit-form .prod-pick")
        ticked = f"{row} .edit-form .prod-pick input:checked"
        assert await page.eval_on_selector_all(ticked, "ns => ns.map(n => n.value)") == [
            dairy, mill]  # as the list orders them; the post's own order is kept if unchanged
        await page.click(f"{row} .edit-form label[for$='-{dairy}']")
        await page.click(f"{row} .edit-form label[for$='-{garden}']")
        await page.click(f"{row} .edit-form button[type=submit]")
        # The form closes once the 202 is in (a tap on "edit" before that would close it).
        await page.wait_for_selector(f"{row} .edit[aria-expanded=false]")
        await wait_for_producers(passer_by, "Pain de seigle", [mill, garden])
        assert bodies[-1] == {"method": "PATCH", "producer_ids": [mill, garden]}
        # The console's own card shows them as the street does, as text (not links that
        # would leave the console).
        await expect(page.locator(f"{row} .own-card .producer")).to_have_text([
            "Moulin de Saint-Émilion · 34 km", "Les Jardins de Bègles · 5,4 km"])
        assert await page.locator(f"{row} a.producer").count() == 0
        # An edit of the title alone leaves them out (the post keeps its own).
        await page.click(f"{row} .edit")
        await page.fill(f"#edit-title-{post['id']}", "Pain de seigle au levain")
        await page.click(f"{row} .edit-form button[type=submit]")
        # The form closes once the 202 is in (a tap on "edit" before that would close it).
        await page.wait_for_selector(f"{row} .edit[aria-expanded=false]")
        edited = await wait_for_producers(passer_by, "Pain de seigle au levain", [mill, garden])
        assert bodies[-1] == {"method": "PATCH", "title": "Pain de seigle au levain"}
        assert edited["id"] == post["id"]
        # And none at all: [] removes them.
        await page.click(f"{row} .edit")
        await page.click(f"{row} .edit-form label[for$='-{mill}']")
        await page.click(f"{row} .edit-form label[for$='-{garden}']")
        await page.click(f"{row} .edit-form button[type=submit]")
        # The form closes once the 202 is in (a tap on "edit" before that would close it).
        await page.wait_for_selector(f"{row} .edit[aria-expanded=false]")
        await wait_for_producers(passer_by, "Pain de seigle au levain", [])
        assert bodies[-1] == {"method": "PATCH", "producer_ids": []}
        assert page.errors == []


async def wait_for_producers(passer_by: Any, title: str, ids: list[str]) -> dict[str, Any]:
    """The last version of the post titled `title` the street received names `ids`."""
    def last() -> dict[str, Any] | None:
        return next((p for p in reversed(passer_by.posts()) if p["title"] == title), None)

    await wait_for(lambda: (post := last()) is not None
                   and [p["id"] for p in post.get("producers", [])] == ids,
                   message=f"{title!r} naming {ids}")
    post = last()
    assert post is not None
    return post


async def test_producers_in_english_and_on_a_320px_phone(
        redis: Redis, settings: Settings, browser: Any) -> None:
    settings = no_map_tiles(settings)
    baker = await add_shop(redis, settings, "Boulangerie-Pâtisserie du Grand-Théâtre", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        # Long names, the longest the contract takes among them.
        long_ids = [await name(http, baker, "Domaine" + "x" * 53, "Saint-Christophe-des-Bardes",
                               MILL),
                    await name(http, baker, "Coopérative laitière des coteaux de l'Entre-deux-Mers",
                               "Créon", DAIRY),
                    await name(http, baker, "Les Jardins de Bègles", "Bègles", GARDEN)]
        page = await console_at(browser, web.http, baker, 320)
        await page.wait_for_selector("#post-producers .prod-chip >> nth=2")
        faults = await layout_faults(page, "320px fr, producers listed")
        for pid in long_ids:
            await page.click(f"#post-producers label[for$='-{pid}']")
        await page.fill("#title", "Pain de campagne")
        await page.click("#prod-new")
        await page.wait_for_selector("#prod-map .place-shop")
        await page.fill("#prod-search", "d")  # its answers open over the form
        await page.wait_for_selector("#prod-results:not([hidden])")
        for lang in ("fr", "en"):
            if await page.get_attribute("html", "lang") != lang:
                await page.click("#lang")
            faults += await layout_faults(page, f"320px {lang}, three producers, form open")
            assert await page.evaluate(
                "() => document.documentElement.scrollWidth === innerWidth"), lang
        assert not faults, "\n".join(faults)

        # In English, every text of the section and of the picker.
        assert await page.inner_text("#producers-heading") == "My producers"
        assert await page.inner_text("#prod-search-label") == "Add a producer known nearby"
        assert await page.inner_text("#prod-new") == "New producer"
        assert await page.inner_text("#prod-add") == "Add this producer"
        assert (await page.inner_text("#post-producers legend")).startswith("Where it comes from")
        assert await page.inner_text("#post-producers .prod-pick-help") == (
            "Up to 3 of your producers, shown on the post.")
        assert await page.inner_text("#prod-map-note") == (
            "Map background unavailable: the map still takes a tap, or type the latitude "
            "and longitude.")
        assert (await texts(page, "#preview .card .producer"))[2] == (
            "Les Jardins de Bègles · 5.4 km")
        assert await page.get_attribute(
            f"#own-producers [data-producer-id='{long_ids[2]}'] .own-producer-remove",
            "aria-label") == "Remove Les Jardins de Bègles from your producers"
        await page.fill("#prod-search", "jardins begles")
        await page.wait_for_function("() => document.querySelector('#prod-search-status')"
                                     ".textContent === '1 producer found nearby'")
        assert (await texts(page, "#prod-results .prod-option-mine")) == ["already in your list"]
        assert page.errors == []
