"""POST /api/v1/shops/{shop_id}/media over real HTTP (DESIGN.md section 9 "Photos", issue 15).

A real uvicorn, a real Redis-compatible server for the shop and its session, the real file
store under the test's data dir; every stored file is read back with Pillow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from PIL import ExifTags, Image
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas import limits
from schemas.media import MediaRecord
from schemas.shops import ShopCreated
from services.media import UPLOADS_PER_WORKER
from storage.media import FileMediaStore
from tests.helpers import add_shop, feed_client, wait_for, web_server
from tests.test_images import _heic_with_gps

STREET = (44.8370, -0.5735)


def _gps_jpeg(size: tuple[int, int] = (2000, 1500)) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (44.0, 50.0, 13.2)
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 60)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _media_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "media"


async def test_upload_stores_stripped_oriented_variants(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    url = f"/api/v1/shops/{shop.id}/media"
    upload = _gps_jpeg()
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        response = await http.post(url, content=upload, headers={
            "Authorization": f"Bearer {shop.token}", "Content-Type": "image/jpeg"})
        assert response.status_code == 201, response.text
        created = response.json()
        # Orientation 6 turns the 2000x1500 sensor frame upright.
        assert {k: created[k] for k in ("id", "width", "height")} == {
            "id": created["id"], "width": 1500, "height": 2000}
        # The extension: the URLs a post will deliver, to show it before posting.
        assert created["url"] == f"/media/{created['id']}/1500.webp"
        assert [(v["width"], v["height"]) for v in created["variants"]] == [
            (400, 533), (800, 1067), (1500, 2000)]
        again = await http.post(url, content=upload, headers={
            "Authorization": f"Bearer {shop.token}", "Content-Type": "image/jpeg"})
        assert again.json() == created  # content-addressed: the same photo is one media

        # The console's session works as the token does (same origin only).
        signed = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                          "token": shop.token})
        assert signed.status_code == 200
        png = io.BytesIO()
        Image.new("RGB", (300, 200), (1, 2, 3)).save(png, "PNG")
        by_session = await http.post(url, content=png.getvalue(), headers={
            "Content-Type": "image/png", "Origin": web.http})
        assert by_session.status_code == 201, by_session.text
        assert by_session.json()["width"] == 300

    folder = _media_dir(settings) / created["id"]
    record = msgspec.json.decode((folder / "record.json").read_bytes(), type=MediaRecord)
    assert (record.shop_id, record.width, record.height) == (shop.id, created["width"],
                                                             created["height"])
    assert record.widths == [400, 800, created["width"]]
    files = sorted(folder.glob("*.webp"))
    assert record.bytes == sum(f.stat().st_size for f in files)
    assert upload not in b"".join(f.read_bytes() for f in files)  # never the upload itself
    for f in files:
        with Image.open(f) as img:
            assert img.format == "WEBP" and img.height > img.width
            assert not img.getexif() and "exif" not in img.info and "xmp" not in img.info


async def test_heic_upload_is_stored_as_webp_without_its_metadata(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Caviste", *STREET)
    upload = _heic_with_gps((640, 480))
    url = f"/api/v1/shops/{shop.id}/media"
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        as_jpeg = await http.post(url, content=upload, headers={
            "Authorization": f"Bearer {shop.token}", "Content-Type": "image/jpeg"})
        assert (as_jpeg.status_code, as_jpeg.json()["error"]["code"]) == (
            415, "image_type_mismatch")
        response = await http.post(url, content=upload, headers={
            "Authorization": f"Bearer {shop.token}", "Content-Type": "image/heic"})
        assert response.status_code == 201, response.text
        created = response.json()
        assert (created["width"], created["height"]) == (640, 480)
    files = sorted((_media_dir(settings) / created["id"]).glob("*.webp"))
    assert [f.name for f in files] == ["400.webp", "640.webp"]
    for f in files:
        data = f.read_bytes()
        with Image.open(f) as img:
            assert img.format == "WEBP"
            assert not img.getexif() and not {"exif", "xmp", "icc_profile"} & set(img.info)
        for marker in (b"EXIF", b"XMP ", b"StreetfeedPhone", b"GPS", b"xmpmeta"):
            assert marker not in data


async def test_upload_refusals(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fleuriste", *STREET)
    other = await add_shop(redis, settings, "Caviste", *STREET)
    url = f"/api/v1/shops/{shop.id}/media"
    auth = {"Authorization": f"Bearer {shop.token}"}
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    jpeg = _gps_jpeg((64, 48))
    # A valid JPEG that is also a page: its comment segment holds a script.
    polyglot = io.BytesIO()
    Image.new("RGB", (64, 48)).save(polyglot, "JPEG",
                                    comment=b"<script>fetch('/api/v1/session')</script>")
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        cases: list[tuple[bytes, dict[str, str], int, str]] = [
            (jpeg, {}, 401, "missing_token"),
            (jpeg, {"Authorization": f"Bearer {other.token}"}, 401, "invalid_token"),
            (gif.getvalue(), {**auth, "Content-Type": "image/gif"}, 415,
             "unsupported_image_type"),
            (jpeg, {**auth, "Content-Type": "image/png"}, 415, "image_type_mismatch"),
            (jpeg, {**auth}, 415, "unsupported_image_type"),
            (jpeg[: len(jpeg) // 2], {**auth, "Content-Type": "image/jpeg"}, 422,
             "undecodable_image"),
            (polyglot.getvalue(), {**auth, "Content-Type": "image/jpeg"}, 422,
             "polyglot_image"),
            (b"\xff\xd8\xff" + b"\0" * limits.MEDIA_UPLOAD_MAX_BYTES,
             {**auth, "Content-Type": "image/jpeg"}, 413, "media_too_large"),
        ]
        for body, headers, status, code in cases:
            response = await http.post(url, content=body, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), \
                (headers, response.text)
    assert not _media_dir(settings).exists() or not any(_media_dir(settings).iterdir())


async def test_the_server_keeps_answering_while_a_40_mp_photo_is_processed(
        redis: Redis, settings: Settings) -> None:
    # A liveness check, not a benchmark: while a 40 MP photo (the most accepted) is decoded
    # and encoded in a child process, the same server answers HTTP and a WebSocket's ping
    # promptly, many times over.
    shop = await add_shop(redis, settings, "Photographe", *STREET)
    big = io.BytesIO()
    Image.linear_gradient("L").resize((8000, 5000)).convert("RGB").save(big, "PNG")
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http,
                                                              timeout=60) as http, \
            feed_client(web.ws, *STREET) as feed:
        upload = asyncio.create_task(http.post(
            f"/api/v1/shops/{shop.id}/media", content=big.getvalue(),
            headers={"Authorization": f"Bearer {shop.token}", "Content-Type": "image/png"}))
        started = time.monotonic()
        slowest, rounds = 0.0, 0
        while not upload.done():
            asked = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            await asyncio.wait_for(await feed.ws.ping(), 5)
            slowest = max(slowest, time.monotonic() - asked)
            rounds += 1
        assert (await upload).status_code == 201
        processing_s = time.monotonic() - started
    # Processed on the loop, one round would wait for the whole processing; a busy machine
    # (CI, other work) may slow every round, never to a quarter of it.
    assert rounds >= 5 and slowest < max(1.0, processing_s / 4), (rounds, slowest,
                                                                   processing_s)


async def test_file_store_round_trip_and_ids_only(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path / "media")
    record = MediaRecord(id="m_" + "a" * 32, shop_id="primeur", width=500, height=250,
                         widths=[400, 500], created_at=datetime.now(UTC), bytes=6)
    assert await store.record(record.id) is None
    await store.save(record, {400: b"abc", 500: b"def"})
    assert await store.record(record.id) == record
    assert await store.variant(record.id, 500) == b"def"
    assert await store.variant(record.id, 800) is None
    assert not [p for p in (tmp_path / "media" / record.id).iterdir()
                if p.name.startswith(".tmp-")]
    # Nothing but a media id's shape is ever a path component.
    for bad in ("../media", "m_" + "A" * 32, "m_/etc/passwd", ""):
        assert await store.record(bad) is None
        assert await store.variant(bad, 400) is None


async def test_uploads_per_shop_per_hour_are_limited(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Traiteur", *STREET)
    other = await add_shop(redis, settings, "Épicerie", *STREET)
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (5, 6, 7)).save(png, "PNG")

    async def upload(http: httpx.AsyncClient, who: ShopCreated) -> httpx.Response:
        return await http.post(f"/api/v1/shops/{who.id}/media", content=png.getvalue(),
                               headers={"Authorization": f"Bearer {who.token}",
                                        "Content-Type": "image/png"})

    async with web_server(settings.with_(shop_media_per_hour=2)) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        assert [(await upload(http, shop)).status_code for _ in range(2)] == [201, 201]
        refused = await upload(http, shop)
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert (await upload(http, other)).status_code == 201  # per shop


async def test_uploads_past_the_gate_are_refused_before_their_body_is_read(
        redis: Redis, settings: Settings) -> None:
    # A burst of big uploads once queued every body in the web process (hundreds of MB):
    # past UPLOADS_PER_WORKER per child, the next is 503 server_busy, and the held ones
    # still complete once their bodies arrive.
    one_child = dataclasses.replace(settings, media_workers=1, shop_media_per_hour=1000)
    shop = await add_shop(redis, one_child, "Photographe", *STREET)
    url = f"/api/v1/shops/{shop.id}/media"
    headers = {"Authorization": f"Bearer {shop.token}", "Content-Type": "image/jpeg"}
    photo = _gps_jpeg((300, 200))
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield photo[:100]
        await release.wait()
        yield photo[100:]

    async with web_server(one_child) as web, httpx.AsyncClient(base_url=web.http,
                                                               timeout=60) as http:
        held = [asyncio.create_task(http.post(url, content=held_body(), headers=headers))
                for _ in range(UPLOADS_PER_WORKER)]

        async def all_held() -> bool:
            page = (await http.get("/metrics")).text
            return f"streetfeed_uploads_in_progress {float(UPLOADS_PER_WORKER)}" in page

        await wait_for(all_held, message="the held uploads to be inside")
        refused = await http.post(url, content=photo, headers=headers)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "server_busy"
        assert refused.headers["retry-after"] == "5"
        release.set()
        for response in await asyncio.gather(*held):
            assert response.status_code == 201, response.text
        assert (await http.post(url, content=photo, headers=headers)).status_code == 201
