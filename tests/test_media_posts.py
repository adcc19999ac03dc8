"""Photos on posts, end to end (DESIGN.md section 9 "Photos", issue 15).

A real uvicorn and enricher, a real Redis-compatible server, real WebSocket clients and
the data-dir store on the real file system: upload, post with `media_ids`, the delivered
`media` over the socket and the API, the served files and their headers, edits, the
quota, and the sweeps that remove photos once their time is over.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import ExifTags, Image
from redis.asyncio import Redis

from rules.clock import ManualClock
from runtime.settings import Settings
from schemas.limits import MEDIA_AFTER_POST_KEEP_S, MEDIA_UNPOSTED_KEEP_S
from schemas.media import MediaRecord
from schemas.shops import ShopCreated
from storage import keys
from storage.media import FileMediaStore
from storage.media_index import DELETING_GRACE_S, MediaIndex
from tests.helpers import (
    FeedClient,
    add_shop,
    arrival,
    enricher,
    feed_client,
    flash,
    send_post,
    wait_for,
    web_server,
)
from workers.media_sweep import ORPHAN_GRACE, sweep_media, sweep_orphan_media
from workers.scheduler import worker_context

STREET = (44.8370, -0.5735)


def _photo(color: tuple[int, int, int], size: tuple[int, int] = (1200, 900), *,
           gps: bool = False) -> bytes:
    """A JPEG with texture (so each colour encodes to its own bytes), with a GPS tag if
    asked: what a shopkeeper's phone writes into every photo."""
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 40):
        img.paste((color[0] // 2, color[1], 255 - color[2]), (x, 0, x + 8, size[1]))
    exif = Image.Exif()
    if gps:
        info = exif.get_ifd(ExifTags.IFD.GPSInfo)
        info[ExifTags.GPS.GPSLatitudeRef] = "N"
        info[ExifTags.GPS.GPSLatitude] = (44.0, 50.0, 13.2)
        info[ExifTags.GPS.GPSLongitudeRef] = "W"
        info[ExifTags.GPS.GPSLongitude] = (0.0, 34.0, 24.6)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


async def _upload(http: httpx.AsyncClient, shop: ShopCreated, data: bytes) -> httpx.Response:
    return await http.post(f"/api/v1/shops/{shop.id}/media", content=data, headers={
        "Authorization": f"Bearer {shop.token}", "Content-Type": "image/jpeg"})


async def _uploaded(http: httpx.AsyncClient, shop: ShopCreated, data: bytes) -> str:
    response = await _upload(http, shop, data)
    assert response.status_code == 201, response.text
    media_id: str = response.json()["id"]
    return media_id


async def _frame(client: FeedClient, matches: Any) -> None:
    await wait_for(lambda: any(matches(f) for f in client.frames), message="the edit's frame")


def _patch(http: httpx.AsyncClient, shop: ShopCreated, post_id: str,
           body: dict[str, Any]) -> Any:
    return http.patch(f"/api/v1/shops/{shop.id}/posts/{post_id}", json=body,
                      headers={"Authorization": f"Bearer {shop.token}"})


async def test_post_delivers_its_photos_and_serves_them_stripped(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        first = await _uploaded(http, shop, _photo((200, 30, 40), gps=True))
        second = await _uploaded(http, shop, _photo((40, 160, 60), (900, 1200)))
        accepted = await send_post(http, shop, arrival(media_ids=[second, first]))
        assert accepted.status_code == 202, accepted.text
        post = await passer_by.wait_post(accepted.json()["id"])

        # In the order given, with the contract's fields and a srcset-style choice.
        assert [m["id"] for m in post["media"]] == [second, first]
        portrait, landscape = post["media"]
        assert (portrait["width"], portrait["height"]) == (900, 1200)
        assert (landscape["width"], landscape["height"]) == (1200, 900)
        assert landscape["url"] == f"/media/{first}/1200.webp"
        assert [(v["width"], v["height"]) for v in landscape["variants"]] == [
            (400, 300), (800, 600), (1200, 900)]
        assert landscape["variants"][-1]["url"] == landscape["url"]
        # The API's view is the socket's.
        feed = await http.get(f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        assert feed.status_code == 200, feed.text
        listed = next(p for p in feed.json()["posts"] if p["id"] == post["id"])
        assert listed["media"] == post["media"]

        for variant in landscape["variants"]:
            served = await http.get(variant["url"])
            assert served.status_code == 200
            assert served.headers["content-type"] == "image/webp"
            assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-length"] == str(len(served.content))
            image = Image.open(io.BytesIO(served.content))
            assert image.format == "WEBP"
            assert image.size == (variant["width"], variant["height"])
            # The phone's position is gone: no EXIF at all, so no GPS, nor XMP.
            assert not image.getexif()
            assert "exif" not in image.info and "xmp" not in image.info
            assert b"GPS" not in served.content and b"Exif" not in served.content
            # Revalidation costs nothing: the URL's bytes never change.
            again = await http.get(variant["url"],
                                   headers={"If-None-Match": served.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
            head = await http.head(variant["url"])
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(served.content))

        for missing in (f"/media/{first}/333.webp", f"/media/{first}/1200.png",
                        "/media/m_" + "0" * 32 + "/400.webp", f"/media/{first[:-1]}/400.webp",
                        f"/media/{first}/01200.webp", f"/media/{first}/400.webp%0A"):
            refused = await http.get(missing)
            assert refused.status_code == 404, missing
            assert refused.json()["error"]["code"] == "unknown_media", missing
        # A photo that is not there is not "unchanged", whatever the client holds.
        for tag in ("*", f'"m_{"0" * 32}-400"'):
            gone = await http.get(f"/media/m_{'0' * 32}/400.webp", headers={"If-None-Match": tag})
            assert gone.status_code == 404, tag
        # A path that climbs out matches no route at all: a plain 404 (never a file).
        assert (await http.get("/media/..%2F..%2Fetc/400.webp")).status_code == 404


async def test_media_ids_are_checked_and_nothing_accepted_is_lost(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    other = await add_shop(redis, settings, "Fleuriste", STREET[0] + 0.001, STREET[1])
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        ids = [await _uploaded(http, shop, _photo((i * 40, 90, 200 - i * 30))) for i in range(5)]
        theirs = await _uploaded(http, other, _photo((1, 2, 3)))

        async def refused(body: dict[str, Any], code: str) -> None:
            response = await send_post(http, shop, body)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == code

        await refused(arrival(media_ids=[ids[0], theirs]), "unknown_media")  # another shop's
        await refused(arrival(media_ids=["m_" + "a" * 32]), "unknown_media")  # never uploaded
        await refused(arrival(media_ids=ids), "invalid_post")  # five: four at most
        await refused(arrival(media_ids=[ids[0], ids[0]]), "invalid_post")  # twice
        await refused(arrival(media_ids=["../../etc/passwd"]), "invalid_post")
        await refused({"kind": "opening_change", "title": "Ouvert", "media_ids": [ids[0]]},
                      "invalid_post")

        offer = await send_post(http, shop, flash(media_ids=ids[:4]))
        assert offer.status_code == 202, offer.text
        post = await passer_by.wait_post(offer.json()["id"])
        assert [m["id"] for m in post["media"]] == ids[:4]

        # An edit changes the photos; one refused changes nothing.
        bad = await _patch(http, shop, post["id"], {"media_ids": [theirs]})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_media"
        edited = await _patch(http, shop, post["id"], {"media_ids": [ids[4], ids[0]]})
        assert edited.status_code == 202, edited.text
        await _frame(passer_by, lambda f: f["type"] == "post" and [
            m["id"] for m in f["post"]["media"]] == [ids[4], ids[0]])
        # Another field edited: the photos stay.
        assert (await _patch(http, shop, post["id"], {"title": "Dernières"})).status_code == 202
        await _frame(passer_by, lambda f: f["type"] == "post" and f["post"]["title"] == "Dernières")
        assert [m["id"] for m in passer_by.posts()[-1]["media"]] == [ids[4], ids[0]]
        cleared = await _patch(http, shop, post["id"], {"media_ids": []})
        assert cleared.status_code == 202
        await _frame(passer_by, lambda f: f["type"] == "post" and f["post"]["media"] == [])

        plain = await send_post(http, shop, arrival())
        assert (await passer_by.wait_post(plain.json()["id"]))["media"] == []
        # Every photo uploaded is still served: refusals lost nothing.
        for media_id in ids:
            assert (await http.head(f"/media/{media_id}/400.webp")).status_code == 200


async def test_quota_refuses_more_photos_and_keeps_those_it_has(
        redis: Redis, settings: Settings) -> None:
    quota = dataclasses.replace(settings, shop_media_quota_mb=1)
    shop = await add_shop(redis, quota, "Primeur", *STREET)
    async with web_server(quota) as web, httpx.AsyncClient(base_url=web.http) as http:
        # Noise does not compress: each photo weighs about a third of the megabyte.
        kept: list[str] = []
        uploads: list[bytes] = []
        refused = None
        for seed in range(30):
            noise = Image.effect_noise((800, 600), 80 + seed).convert("RGB")
            buf = io.BytesIO()
            noise.save(buf, "JPEG", quality=95)
            uploads.append(buf.getvalue())
            response = await _upload(http, shop, uploads[-1])
            if response.status_code != 201:
                refused = response
                break
            kept.append(response.json()["id"])
        assert refused is not None and kept, "the quota never refused"
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "media_quota_exceeded"
        total = int(await redis.hget(keys.media_bytes(shop.region), shop.id))
        assert 0 < total <= 1024 * 1024
        # A photo the shop has already takes no more room: accepted again, same id (a
        # retry after a lost answer must not fail on a full quota).
        again = await _upload(http, shop, uploads[0])
        assert again.status_code == 201 and again.json()["id"] == kept[0]
        assert int(await redis.hget(keys.media_bytes(shop.region), shop.id)) == total
        for media_id in kept:
            assert (await http.head(f"/media/{media_id}/400.webp")).status_code == 200
        # The refused photo left no file behind.
        assert {p.name for p in (Path(quota.data_dir) / "media").iterdir()} == set(kept)


async def test_sweeps_remove_photos_after_their_time_and_orphans(
        redis: Redis, settings: Settings) -> None:
    clock = ManualClock()
    start = clock.now()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    root = Path(settings.data_dir) / "media"
    async with web_server(settings, clock=clock) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        posted = await _uploaded(http, shop, _photo((220, 20, 20)))
        unposted = await _uploaded(http, shop, _photo((20, 220, 20)))
        # An offer of almost a day: its photo outlives the day an upload is kept, even
        # withdrawn at once (pages and caches may still show it until its end).
        ends = start + timedelta(hours=23, minutes=50)
        offer = await send_post(http, shop, {"kind": "flash_offer", "title": "Toute la journée",
                                             "ends_at": ends.isoformat(),
                                             "media_ids": [posted]})
        assert offer.status_code == 202, offer.text
        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{offer.json()['id']}",
                                      headers={"Authorization": f"Bearer {shop.token}"})
        assert withdrawn.status_code in (200, 404)  # 404: not yet enriched (no enricher)

    # Files an upload left without registering them (its process died in between).
    store = FileMediaStore(root)
    stray = MediaRecord(id="m_" + "b" * 32, shop_id=shop.id, width=1, height=1, widths=[1],
                        created_at=start, bytes=1)
    await store.save(stray, {1: b"x"})
    ctx = worker_context(settings, redis, clock)
    assert await sweep_media(ctx) == 0
    assert await sweep_orphan_media(ctx) == 0  # younger than the grace (by its file time)

    clock.set(start + timedelta(seconds=MEDIA_UNPOSTED_KEEP_S + 60))
    assert await sweep_media(ctx) == 1  # the unposted one, a day after its upload
    assert not (root / unposted).exists() and (root / posted).exists()
    assert await redis.hget(keys.media_owner(shop.region), unposted) is None

    clock.set(ends + timedelta(seconds=MEDIA_AFTER_POST_KEEP_S - 60))
    assert await sweep_media(ctx) == 0
    clock.set(ends + timedelta(seconds=MEDIA_AFTER_POST_KEEP_S + 60))
    assert await sweep_media(ctx) == 1
    assert not (root / posted).exists()
    assert await redis.hget(keys.media_bytes(shop.region), shop.id) is None
    assert await redis.zcard(keys.media_keep(shop.region)) == 0

    clock.set(max(clock.now(), datetime.fromtimestamp((root / stray.id).stat().st_mtime, UTC))
              + ORPHAN_GRACE + timedelta(seconds=1))
    assert await sweep_orphan_media(ctx) == 1
    assert list(root.iterdir()) == []


async def test_a_profile_change_republishes_posts_with_their_photos(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as passer_by:
        media_id = await _uploaded(http, shop, _photo((120, 60, 30)))
        accepted = await send_post(http, shop, arrival(media_ids=[media_id]))
        post = await passer_by.wait_post(accepted.json()["id"])
        renamed = await http.patch(f"/api/v1/shops/{shop.id}", json={"name": "Primeur Dupont"},
                                   headers={"Authorization": f"Bearer {shop.token}"})
        assert renamed.status_code == 200, renamed.text
        await _frame(passer_by, lambda f: f["type"] == "post"
                     and f["post"]["shop"]["name"] == "Primeur Dupont")
        republished = passer_by.posts()[-1]
        assert republished["id"] == post["id"]
        assert republished["media"] == post["media"]


async def test_an_upload_racing_the_sweep_of_the_same_photo_never_names_lost_files(
        redis: Redis, settings: Settings) -> None:
    # The sweep forgets a photo, then deletes its files. The same photo uploaded in
    # between once saved its files, registered, and then lost them to the sweep's delete:
    # the index named files that were gone (cold attack, from reading the code).
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    photo = _photo((10, 200, 90))
    index = MediaIndex(redis, shop.region)
    async with web_server(settings, clock=clock) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        media_id = await _uploaded(http, shop, photo)
        later = clock.advance(MEDIA_UNPOSTED_KEEP_S + 60).timestamp()
        record = await index.known(shop.id, media_id)
        assert record is not None
        assert await index.forget(media_id, record.bytes, later)  # the sweep, half-way
        racing = await _upload(http, shop, photo)
        assert racing.status_code == 503, racing.text
        assert racing.json()["error"]["code"] == "server_busy"
        assert racing.headers["retry-after"] == "5"
        await FileMediaStore(Path(settings.data_dir) / "media").delete(media_id)
        await index.deleted(media_id)  # the sweep, done
        again = await _upload(http, shop, photo)
        assert again.status_code == 201 and again.json()["id"] == media_id
        assert (await http.get(f"/media/{media_id}/400.webp")).status_code == 200
        # A sweep that died between the two steps does not block the photo for good.
        assert await index.forget(media_id, record.bytes, clock.advance(
            MEDIA_UNPOSTED_KEEP_S + 60).timestamp())
        clock.advance(DELETING_GRACE_S + 1)
        assert (await _upload(http, shop, photo)).status_code == 201
