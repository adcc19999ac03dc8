"""Photos in the shopkeeper console (issue 15), in real headless Chromium, real server.

Pick photos with the phone's file chooser (images drawn here with Pillow), see them in
the card preview with their upload's progress, reorder and remove them, publish: the
street receives the post with its `media` in that order and the served files load. A
file of the wrong type is refused in words, counts for nothing, and holds the post until
removed (never published without it unsaid); a phone's photo too heavy or too large is
shrunk in the browser before its upload.
Editing a live post changes its photos. Four photos fit a 320 px phone.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.limits import MEDIA_PER_POST_MAX, MEDIA_UPLOAD_MAX_BYTES
from tests.helpers import (
    add_shop,
    arrival,
    enricher,
    feed_client,
    photo_jpeg,
    send_post,
    upload_photo,
    wait_for,
    web_server,
)
from tests.test_browser_console import console_at, layout_faults

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
TRAY = "#post-photos"


def chosen(name: str, data: bytes, mime: str = "image/jpeg") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


async def pick(page: Any, files: list[dict[str, Any]], tray: str = TRAY,
               camera: bool = False) -> None:
    """What a shopkeeper does: tap "choose from the gallery" (several at once) or "take a
    photo" (one), and give the chooser the files."""
    async with page.expect_file_chooser() as chooser_info:
        await page.click(f"{tray} {'.photo-camera' if camera else '.photo-gallery'}")
    chooser = await chooser_info.value
    assert chooser.is_multiple() is not camera
    await chooser.set_files(files)


async def tray_state(page: Any, tray: str = TRAY) -> list[dict[str, str]]:
    return await page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"{tray} .photo-item",
        "items => items.map(li => ({status: li.dataset.status, id: li.dataset.mediaId,"
        " text: li.querySelector('.photo-state').textContent,"
        " src: li.querySelector('.photo-thumb').getAttribute('src')}))")


def all_done(n: int, tray: str = TRAY) -> str:
    """The tray holds n photos, each uploaded and shown from the server's copy."""
    return (f"() => {{ const items = [...document.querySelectorAll('{tray} .photo-item')];"
            f" return items.length === {n} && items.every(li => li.dataset.status === 'done'"
            " && li.querySelector('.photo-thumb').getAttribute('src').startsWith('/media/')); }")


async def test_pick_preview_reorder_remove_and_publish(redis: Redis, settings: Settings,
                                                       browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur du Marché", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        page = await console_at(browser, web.http, shop, 390)
        # The phone's back camera, or its gallery (several at once), images only; "take a
        # photo" only where there is a touch screen (a computer's `capture` does nothing).
        camera = page.locator(f"{TRAY} input[type=file][capture=environment]")
        assert await camera.get_attribute("accept") == "image/*"
        assert await page.locator(f"{TRAY} input[type=file]:not([capture])").get_attribute(
            "accept") == "image/*"
        assert await page.is_hidden(f"{TRAY} .photo-camera")
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True,
                                                              "maxTouchPoints": 5})
        assert await page.is_visible(f"{TRAY} .photo-camera")
        await page.fill("#title", "Fraises de Plougastel")

        # Uploads held at the server's door until the test has seen them under way.
        release = asyncio.Event()
        uploads: list[str] = []

        async def hold(route: Any) -> None:
            uploads.append(route.request.headers.get("content-type", ""))
            await release.wait()
            await route.continue_()

        await page.route("**/api/v1/shops/*/media", hold)
        red, green = photo_jpeg((200, 30, 40), (900, 600)), photo_jpeg((40, 160, 60), (600, 900))
        await pick(page, [chosen("rouge.jpg", red)], camera=True)
        await pick(page, [chosen("vert.jpg", green)])
        # At once: both previewed from the local files, in the card preview too, uploading,
        # and "Publish" waits for them, saying why.
        await page.wait_for_function(f"() => document.querySelectorAll('{TRAY} "
                                     ".photo-item[data-status=uploading]').length === 2")
        previews = await page.eval_on_selector_all(
            "#preview .card .preview-photo", "imgs => imgs.map(i => [i.src, i.alt])")
        assert [src.startswith("blob:") for src, _ in previews] == [True, True]
        assert [alt for _, alt in previews] == ["Fraises de Plougastel",
                                                "Fraises de Plougastel, photo 2"]
        assert await page.is_visible(f"{TRAY} .photo-progress")
        assert await page.is_disabled("#publish")
        assert "photos" in (await page.inner_text("#photos-wait"))
        await page.wait_for_function("() => document.querySelector('#publish')"
                                     ".getAttribute('aria-describedby') === 'photos-wait'")
        release.set()
        await page.wait_for_function(all_done(2), timeout=10_000)
        assert uploads == ["image/jpeg", "image/jpeg"]  # the file's own type
        await page.unroute("**/api/v1/shops/*/media")
        assert await page.is_enabled("#publish") and await page.is_hidden("#photos-wait")
        state = await tray_state(page)
        assert [s["text"] for s in state] == ["Prête", "Prête"]
        red_id, green_id = (s["id"] for s in state)
        # The tray now shows the server's narrowest copy, the local file released; the
        # preview, the street's card itself: its strip of served copies, numbered.
        srcs = await page.eval_on_selector_all(f"{TRAY} .photo-thumb",
                                               "imgs => imgs.map(i => i.getAttribute('src'))")
        assert srcs == [f"/media/{red_id}/400.webp", f"/media/{green_id}/400.webp"]
        previews = await page.eval_on_selector_all(
            "#preview .card .card-media .card-photos .card-photo",
            "imgs => imgs.map(i => [i.dataset.photo, i.alt, i.srcset.split(' ')[0]])")
        assert previews == [
            [red_id, "Fraises de Plougastel (1/2)", f"/media/{red_id}/400.webp"],
            [green_id, "Fraises de Plougastel (2/2)", f"/media/{green_id}/400.webp"]]
        assert await page.locator("#preview .preview-photo").count() == 0
        # Typing keeps the same images (no reload, no blink).
        first = await page.query_selector("#preview .card-photo")
        await page.type("#title", " !")
        assert await first.evaluate("i => i.isConnected")  # type: ignore[union-attr]
        await page.fill("#title", "Fraises de Plougastel")

        # A third, then: moved first with the keyboard, and the red one removed.
        blue = photo_jpeg((30, 60, 210))
        await pick(page, [chosen("bleu.jpg", blue)])
        await page.wait_for_function(all_done(3), timeout=10_000)
        blue_id = (await tray_state(page))[2]["id"]
        third_left = f"{TRAY} .photo-item:nth-child(3) .photo-left"
        assert await page.get_attribute(third_left, "aria-label") == "Mettre la photo 3 avant"
        await page.focus(third_left)
        await page.keyboard.press("Enter")
        await page.keyboard.press("Enter")  # the focus followed the photo
        assert [s["id"] for s in await tray_state(page)] == [blue_id, red_id, green_id]
        assert await page.evaluate("() => document.activeElement.closest('.photo-item')"
                                   ".dataset.mediaId") == blue_id
        assert await page.is_disabled(f"{TRAY} .photo-item:nth-child(1) .photo-left")
        await page.click(f"{TRAY} .photo-item:nth-child(2) .photo-remove")
        assert [s["id"] for s in await tray_state(page)] == [blue_id, green_id]
        assert await page.get_attribute(f"{TRAY} .photo-item:nth-child(2) .photo-remove",
                                        "aria-label") == "Retirer la photo 2"

        await page.click("#publish")
        await page.wait_for_selector("#post-ok", state="visible")
        assert await page.locator(f"{TRAY} .photo-item").count() == 0  # the next post starts bare

        # The street gets the post with its photos in the tray's order, served and loadable.
        await _wait(lambda: any(p["title"] == "Fraises de Plougastel" for p in passer_by.posts()))
        post = next(p for p in passer_by.posts() if p["title"] == "Fraises de Plougastel")
        assert [m["id"] for m in post["media"]] == [blue_id, green_id]
        for media in post["media"]:
            served = await http.get(media["url"])
            assert served.status_code == 200
            assert served.headers["content-type"] == "image/webp"
            assert Image.open(io.BytesIO(served.content)).size == (media["width"],
                                                                   media["height"])
        # The console's own list shows its first photo as a small thumbnail.
        thumb = page.locator(f'#own-posts [data-post-id="{post["id"]}"] img.own-thumb')
        await thumb.wait_for()
        assert await thumb.get_attribute("src") == f"/media/{blue_id}/400.webp"
        assert (await thumb.get_attribute("width"), await thumb.get_attribute("height")) == (
            "64", "64")
        assert await thumb.get_attribute("alt") == "Fraises de Plougastel"
        await page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=await thumb.element_handle())
        assert page.errors == []


async def _wait(condition: Any) -> None:
    await wait_for(condition, message="the post on the street, or the edit sent")


async def test_refused_files_are_said_in_words_and_hold_the_post(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            feed_client(web.ws, *STREET) as passer_by:
        page = await console_at(browser, web.http, shop, 360)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url) if "/media" in r.url else None)
        await page.fill("#title", "Comté 24 mois")
        too_big = b"\xff\xd8\xff" + bytes(MEDIA_UPLOAD_MAX_BYTES)  # one byte more than allowed
        png = io.BytesIO()
        Image.new("RGB", (300, 200), (10, 20, 30)).save(png, "PNG")
        not_jpeg = png.getvalue()  # a PNG named and typed as a JPEG
        good = photo_jpeg((220, 190, 60))
        await pick(page, [chosen("grosse.jpg", too_big), chosen("faux.jpg", not_jpeg),
                          chosen("bonne.jpg", good)])
        await page.wait_for_function(
            f"() => [...document.querySelectorAll('{TRAY} .photo-item')]"
            ".map(li => li.dataset.status).join() === 'error,error,done'", timeout=10_000)
        state = await tray_state(page)
        assert state[0]["text"] == "Photo trop lourde : 10 Mo au plus."
        assert state[1]["text"] == "Le fichier n'est pas du type d'image annoncé."
        # The oversize file never left the phone; only two uploads were made.
        assert len([u for u in requests if u.endswith("/media")]) == 2
        # A refusal about the file itself is not retried; removed, the others move up.
        assert await page.is_hidden(f"{TRAY} .photo-item:nth-child(1) .photo-retry")
        # The card preview leaves refused photos out.
        assert await page.locator("#preview .card .card-photo").count() == 1
        # The same photo again is the same media: not added twice (a post names each once).
        await page.click(f"{TRAY} .photo-item:nth-child(1) .photo-remove")
        await pick(page, [chosen("encore.jpg", good)])
        await page.wait_for_selector(f"{TRAY} .photo-note:has-text('déjà dans l')")
        assert [s["status"] for s in await tray_state(page)] == ["error", "done"]
        await pick(page, [chosen("grosse.jpg", too_big)])  # back where it was, for below
        await page.click(f"{TRAY} .photo-item:nth-child(3) .photo-left")
        await page.click(f"{TRAY} .photo-item:nth-child(2) .photo-left")
        # In English, from the error code.
        await page.click("#lang")
        state = await tray_state(page)
        assert state[0]["text"] == "Photo too large: 10 MB at most."
        assert state[2]["text"] == "Ready"
        await page.click("#lang")

        # Not published without the refused photos unsaid: removed first.
        assert await page.is_disabled("#publish")
        for _ in range(2):
            await page.click(f"{TRAY} .photo-item[data-status=error] .photo-remove")
        await page.click("#publish")
        await page.wait_for_selector("#post-ok", state="visible")
        await _wait(lambda: any(p["title"] == "Comté 24 mois" for p in passer_by.posts()))
        post = next(p for p in passer_by.posts() if p["title"] == "Comté 24 mois")
        assert [m["id"] for m in post["media"]] == [state[2]["id"]]

        # Opening hours carry no photo: the tray is hidden for them.
        await page.click("label[for='kind-opening_change']")
        assert await page.is_hidden(TRAY)
        assert page.errors == []


async def test_editing_a_live_post_changes_its_photos(redis: Redis, settings: Settings,
                                                     browser: Any) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        first = await upload_photo(http, shop, photo_jpeg((200, 30, 40)))
        second = await upload_photo(http, shop, photo_jpeg((40, 160, 60)))
        post_id = (await send_post(http, shop, arrival("Clémentines",
                                                       media_ids=[first, second]))).json()["id"]
        page = await console_at(browser, web.http, shop, 360)
        own = f'#own-posts [data-post-id="{post_id}"]'
        await page.wait_for_selector(f"{own} img.own-thumb[src='/media/{first}/400.webp']")
        patches: list[dict[str, Any]] = []
        page.on("request", lambda r: patches.append(json.loads(r.post_data or "{}"))
                if r.method == "PATCH" else None)

        # A title alone: the photos are not sent again.
        await page.click(f"{own} .edit")
        tray = f"{own} .edit-form .photos"
        await page.wait_for_function(all_done(2, tray))
        assert [s["id"] for s in await tray_state(page, tray)] == [first, second]
        await page.fill(f"#edit-title-{post_id}", "Clémentines de Corse")
        await page.click(f"{own} .edit-form button[type=submit]")
        await page.wait_for_selector(f"{own} .edit-form", state="detached")
        await _wait(lambda: patches == [{"title": "Clémentines de Corse"}])

        # Remove the first, add a new one and move it first: saved in that order.
        await page.click(f"{own} .edit")
        await page.wait_for_function(all_done(2, tray))
        await page.click(f"{tray} .photo-item:nth-child(1) .photo-remove")
        await pick(page, [chosen("nouvelle.jpg", photo_jpeg((30, 60, 210)))], tray)
        await page.wait_for_function(all_done(2, tray), timeout=10_000)
        new = (await tray_state(page, tray))[1]["id"]
        await page.click(f"{tray} .photo-item:nth-child(2) .photo-left")
        await page.click(f"{own} .edit-form button[type=submit]")
        await page.wait_for_selector(f"{own} .edit-form", state="detached")

        def edited() -> bool:
            latest = [p for p in passer_by.posts() if p["id"] == post_id]
            return bool(latest) and [m["id"] for m in latest[-1]["media"]] == [new, second]

        await _wait(edited)
        assert patches[-1] == {"media_ids": [new, second]}
        await page.wait_for_selector(f"{own} img.own-thumb[src='/media/{new}/400.webp']")

        # All removed: [] takes them off the post.
        await page.click(f"{own} .edit")
        await page.wait_for_function(all_done(2, tray))
        await page.click(f"{tray} .photo-item:nth-child(1) .photo-remove")
        await page.click(f"{tray} .photo-item:nth-child(1) .photo-remove")
        await page.click(f"{own} .edit-form button[type=submit]")
        await _wait(lambda: [p for p in passer_by.posts() if p["id"] == post_id][-1]["media"]
                    == [])
        await page.wait_for_selector(f"{own} img.own-thumb", state="detached")
        assert page.errors == []


async def test_four_photos_fit_a_320_px_phone_and_a_fifth_is_refused(
        redis: Redis, settings: Settings, browser: Any) -> None:
    shop = await add_shop(redis, settings, "Épicerie fine du Grand-Théâtre", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        media = [await upload_photo(http, shop, photo_jpeg((60 * i, 100, 200 - 40 * i)))
                 for i in range(MEDIA_PER_POST_MAX)]
        post_id = (await send_post(http, shop, arrival("Panier garni",
                                                       media_ids=media))).json()["id"]
        page = await console_at(browser, web.http, shop, 320)
        await page.fill("#title", "Coffrets de Noël")
        colours = [(250, 40 * i, 20) for i in range(MEDIA_PER_POST_MAX + 1)]
        await pick(page, [chosen(f"{i}.jpg", photo_jpeg(c, (640, 480)))
                          for i, c in enumerate(colours)])
        await page.wait_for_function(all_done(MEDIA_PER_POST_MAX), timeout=20_000)
        note = await page.inner_text(f"{TRAY} .photo-note")
        assert note.startswith(f"{MEDIA_PER_POST_MAX} photos au plus")
        assert await page.is_disabled(f"{TRAY} .photo-gallery")
        own = f'#own-posts [data-post-id="{post_id}"]'
        await page.click(f"{own} .edit")
        await page.wait_for_function(all_done(MEDIA_PER_POST_MAX, f"{own} .edit-form .photos"))
        faults: list[str] = []
        for lang in ("fr", "en"):
            if await page.get_attribute("html", "lang") != lang:
                await page.click("#lang")
                await page.click(f"{own} .edit")  # a language switch closes the edit form
                await page.wait_for_function(
                    all_done(MEDIA_PER_POST_MAX, f"{own} .edit-form .photos"))
            for kind in ("new_arrival", "flash_offer"):
                await page.click(f"label[for='kind-{kind}']")
                faults += await layout_faults(page, f"320px {lang} {kind} with 4 photos")
        assert not faults, "\n".join(faults)
        assert page.errors == []


def not_images() -> list[dict[str, Any]]:
    """What the cold try picked: a file over the limit the browser cannot read, a GIF, a
    text file renamed .jpg."""
    gif = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 0, 0)).save(gif, "GIF")
    return [chosen("lourde.jpg", b"\xff\xd8\xff" + bytes(MEDIA_UPLOAD_MAX_BYTES)),
            chosen("anim.gif", gif.getvalue(), "image/gif"),
            chosen("notes.jpg", b"Liste des courses\n" * 50)]


async def refused_hold(page: Any, button: str, note: str) -> None:
    """The button is held, its note says why and is tied to it."""
    await page.wait_for_function(
        f"() => document.querySelector({button!r}).disabled"
        f" && document.querySelector({button!r}).getAttribute('aria-describedby') === {note!r}")
    assert await page.inner_text(f"#{note}") == "Retirez les photos refusées ou réessayez."


async def test_refused_photos_hold_publish_and_do_not_count(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Regression (issue 15, a cold try): three refused photos, a title, "Publier" and the
    post went out bare with "Publié !"; the refused photos took "3/4" of the room."""
    shop = await add_shop(redis, settings, "Cave à vins", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            feed_client(web.ws, *STREET) as passer_by:
        page = await console_at(browser, web.http, shop, 360)
        await pick(page, not_images())
        await page.wait_for_function(
            f"() => [...document.querySelectorAll('{TRAY} .photo-item')]"
            ".map(li => li.dataset.status).join() === 'error,error,error'", timeout=10_000)
        await page.fill("#title", "Bordeaux primeur")
        assert await page.inner_text(f"{TRAY} .photo-counter") == "0/4"
        await refused_hold(page, "#publish", "photos-wait")
        await page.click("#lang")
        assert await page.inner_text("#photos-wait") == "Remove the refused photos or retry them."
        await page.click("#lang")

        # They leave the room to four good ones; the post still waits for them to go.
        goods = [chosen(f"{i}.jpg", photo_jpeg((50 * i, 90, 120), (640, 480)))
                 for i in range(MEDIA_PER_POST_MAX)]
        await pick(page, goods)
        await page.wait_for_function(
            f"() => document.querySelectorAll('{TRAY} .photo-item[data-status=done]').length"
            f" === {MEDIA_PER_POST_MAX}", timeout=20_000)
        assert await page.inner_text(f"{TRAY} .photo-counter") == "4/4"
        assert await page.is_disabled("#publish")
        for _ in range(3):
            await page.click(f"{TRAY} .photo-item[data-status=error] .photo-remove")
        await page.wait_for_function("() => !document.querySelector('#publish').disabled")
        assert await page.is_hidden("#photos-wait")
        assert await page.get_attribute("#publish", "aria-describedby") is None
        await page.click("#publish")
        await page.wait_for_selector("#post-ok", state="visible")
        await _wait(lambda: any(p["title"] == "Bordeaux primeur" for p in passer_by.posts()))
        post = next(p for p in passer_by.posts() if p["title"] == "Bordeaux primeur")
        assert len(post["media"]) == MEDIA_PER_POST_MAX

        # The same in the edit form: "Save" waits while a refused photo is there.
        own = f'#own-posts [data-post-id="{post["id"]}"]'
        await page.click(f"{own} .edit")
        tray = f"{own} .edit-form .photos"
        await page.wait_for_function(all_done(MEDIA_PER_POST_MAX, tray))
        await page.click(f"{tray} .photo-item:nth-child(1) .photo-remove")
        await pick(page, not_images()[2:], tray)
        await page.wait_for_selector(f"{tray} .photo-item[data-status=error]")
        save = f"{own} .edit-form button[type=submit]"
        await refused_hold(page, save, f"edit-photos-wait-{post['id']}")
        await page.click(f"{tray} .photo-item[data-status=error] .photo-remove")
        assert await page.is_enabled(save)
        assert page.errors == []


async def test_a_heavy_phone_photo_is_shrunk_before_its_upload(
        redis: Redis, settings: Settings, browser: Any, tmp_path: Any) -> None:
    """A 27 MP phone photo of 20 MB or so (over the 10 MB the server takes), turned on its
    side by its EXIF: shrunk in the browser, upright, and sent under the limit."""
    noise = [Image.effect_noise((1500, 1125), sigma) for sigma in (40, 60, 80)]
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show it
    big = tmp_path / "IMG_0001.jpg"
    Image.merge("RGB", noise).resize((6000, 4500)).save(big, "JPEG", quality=98,
                                                       exif=exif.tobytes())
    assert big.stat().st_size > MEDIA_UPLOAD_MAX_BYTES
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        page = await console_at(browser, web.http, shop, 360)
        sent: list[int] = []
        release = asyncio.Event()

        async def hold(route: Any) -> None:
            sent.append(len(route.request.post_data_buffer or b""))
            await release.wait()
            await route.continue_()

        await page.route("**/api/v1/shops/*/media", hold)
        responses: list[Any] = []
        page.on("response", lambda r: responses.append(r) if r.url.endswith("/media") else None)
        # "Shrinking…" shows while the browser works on it.
        async with page.expect_file_chooser() as chooser_info:
            await page.click(f"{TRAY} .photo-gallery")
        await (await chooser_info.value).set_files(str(big))
        await page.wait_for_selector(f"{TRAY} .photo-item[data-status=shrinking]")
        assert (await tray_state(page))[0]["text"] == "Réduction…"
        await wait_for(lambda: bool(sent), message="the upload")
        release.set()
        await page.wait_for_function(all_done(1), timeout=30_000)
        assert 0 < sent[0] < MEDIA_UPLOAD_MAX_BYTES
        assert [r.status for r in responses] == [201]
        created = await responses[0].json()
        assert (created["width"], created["height"]) == (1600, 2133)  # upright
        served = await http.get(created["url"])
        assert Image.open(io.BytesIO(served.content)).size == (1600, 2133)
        assert page.errors == []
