"""The media stores (storage.media, storage.media_s3) against one contract, on real backends.

Each contract test runs on the data dir (a real tmp dir) and on an S3-compatible bucket of a
real server (moto's, tests/s3.py, which checks every request's signature), and reads what
was written with that backend's own tools (files; boto3), not only through the store.
Then a web server started with STREETFEED_MEDIA_URL keeps an upload in the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import obstore.exceptions
import pytest
from PIL import Image
from redis.asyncio import Redis

from rules.clock import ManualClock
from rules.errors import ConfigError
from rules.media_url import S3Location, parse_media_url
from runtime.settings import Settings, load_settings
from schemas.limits import MEDIA_UNPOSTED_KEEP_S
from schemas.media import MediaRecord
from storage import media_s3
from storage.media import CHUNK_BYTES, FileMediaStore, MediaStore, is_media_id
from storage.media_s3 import S3MediaStore
from tests.helpers import add_shop, arrival, enricher, feed_client, free_port, send_post, web_server
from workers.media_sweep import ORPHAN_GRACE, sweep_media, sweep_orphan_media
from workers.scheduler import worker_context

ROOT = Path(__file__).resolve().parent.parent
ID_A = "m_" + "a" * 32
ID_B = "m_" + "b" * 32
# Shapes a request path or a forged record could carry: none may become a key or a path.
BAD_IDS = ["", "m_", "../" + ID_A, ID_A + "/../" + ID_B, ID_A + "\n", ID_A.upper(),
           "m_" + "a" * 31, "m_" + "a" * 33, ID_A + "/", "/" + ID_A, "m_%2e%2e",
           "m_" + "g" * 32]


def _record(media_id: str, widths: list[int], sizes: list[int]) -> MediaRecord:
    return MediaRecord(id=media_id, shop_id="boulangerie", width=widths[-1],
                       height=widths[-1] * 3 // 4, widths=widths,
                       created_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC), bytes=sum(sizes))


def _variants(seed: int, sizes: dict[int, int]) -> dict[int, bytes]:
    # Distinct bytes per width and media, not one repeated byte: a piece put back in the
    # wrong order or from the wrong object shows.
    return {width: (bytes(range(256)) * (size // 256 + 1))[seed:seed + size]
            for width, size in sizes.items()}


@dataclass
class Backend:
    """A store, and that backend's own view of what it holds (paths under its root)."""

    kind: str
    store: MediaStore
    keys: Callable[[], set[str]]
    put_raw: Callable[[str, bytes], None]
    # A store of the same kind whose backend fails on any touch.
    unreachable: Callable[[], MediaStore]


def _file_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "media"

    def keys() -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    def put_raw(key: str, data: bytes) -> None:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)

    def unreachable() -> MediaStore:
        # Under a regular file: any stat, open, mkdir or removal there fails.
        (tmp_path / "a-file").write_bytes(b"")
        return FileMediaStore(tmp_path / "a-file" / "media")

    return Backend("file", FileMediaStore(root), keys, put_raw, unreachable)


def _s3_backend(server: Any) -> Backend:
    bucket = server.new_bucket()
    prefix = "photos/main"
    client = server.client()

    def keys() -> set[str]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        assert all(o["Key"].startswith(prefix + "/") for o in listed), listed
        return {o["Key"].removeprefix(prefix + "/") for o in listed}

    def put_raw(key: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)

    def unreachable() -> MediaStore:
        # Nothing listens on the port: a request would fail to connect (and retry first).
        return S3MediaStore(S3Location(bucket, f"http://127.0.0.1:{free_port()}",
                                       "us-east-1", prefix))

    store = S3MediaStore(parse_media_url(server.url(bucket, prefix)))
    return Backend("s3", store, keys, put_raw, unreachable)


@pytest.fixture(params=["file", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "file":
        made = _file_backend(tmp_path)
    else:
        request.getfixturevalue("s3_credentials")
        made = await asyncio.to_thread(_s3_backend, request.getfixturevalue("s3_server"))
    try:
        yield made
    finally:
        await made.store.close()


async def _keys(backend: Backend) -> set[str]:
    return await asyncio.to_thread(backend.keys)


async def test_save_then_read_back(backend: Backend) -> None:
    sizes = {400: 3_000, 800: 9_000, 1500: 20_000}  # a photo narrower than 1600 keeps 1500
    record = _record(ID_A, list(sizes), list(sizes.values()))
    variants = _variants(1, sizes)
    await backend.store.save(record, variants)

    assert await backend.store.record(ID_A) == record
    for width, data in variants.items():
        assert await backend.store.variant(ID_A, width) == data
    assert await backend.store.variant(ID_A, 1600) is None
    assert await backend.store.record(ID_B) is None
    assert await backend.store.variant(ID_B, 400) is None
    assert await _keys(backend) == {f"{ID_A}/400.webp", f"{ID_A}/800.webp",
                                    f"{ID_A}/1500.webp", f"{ID_A}/record.json"}


async def test_open_streams_the_exact_bytes_in_pieces(backend: Backend) -> None:
    sizes = {400: 1_000, 1600: 3 * CHUNK_BYTES + 123}
    variants = _variants(7, sizes)
    await backend.store.save(_record(ID_A, list(sizes), list(sizes.values())), variants)

    blob = await backend.store.open(ID_A, 1600)
    assert blob is not None and blob.size == sizes[1600]
    pieces = [piece async for piece in blob.chunks]
    assert len(pieces) > 1 and all(isinstance(p, bytes) for p in pieces)
    assert b"".join(pieces) == variants[1600]

    small = await backend.store.open(ID_A, 400)
    assert small is not None and small.size == 1_000
    assert b"".join([p async for p in small.chunks]) == variants[400]
    assert await backend.store.open(ID_A, 800) is None
    assert await backend.store.open(ID_B, 400) is None


async def test_delete_removes_every_object_of_the_id(backend: Backend) -> None:
    sizes = {400: 500, 800: 700, 1234: 900}
    await backend.store.save(_record(ID_A, list(sizes), list(sizes.values())),
                             _variants(2, sizes))
    await backend.store.save(_record(ID_B, [400], [10]), _variants(3, {400: 10}))
    # A file the record does not name (a crash between two saves) goes too.
    await asyncio.to_thread(backend.put_raw, f"{ID_A}/9.webp", b"stray")

    await backend.store.delete(ID_A)
    assert await _keys(backend) == {f"{ID_B}/400.webp", f"{ID_B}/record.json"}
    assert await backend.store.record(ID_A) is None
    assert await backend.store.open(ID_A, 400) is None
    assert [m.id async for m in backend.store.list()] == [ID_B]
    await backend.store.delete(ID_A)  # again: nothing there, no error
    assert await backend.store.record(ID_B) is not None


async def test_list_yields_every_id_with_files_and_when(backend: Backend) -> None:
    assert [m async for m in backend.store.list()] == []
    before = datetime.now(UTC)
    await backend.store.save(_record(ID_A, [400], [5]), _variants(4, {400: 5}))
    # Files without a record: a save that crashed before its record, for the sweep.
    await asyncio.to_thread(backend.put_raw, f"{ID_B}/400.webp", b"half")
    # Neither a media id nor under one: not listed.
    await asyncio.to_thread(backend.put_raw, "README", b"not a photo")
    await asyncio.to_thread(backend.put_raw, "m_notanid/400.webp", b"?")
    after = datetime.now(UTC)

    listed = sorted([m async for m in backend.store.list()], key=lambda m: m.id)
    assert [m.id for m in listed] == [ID_A, ID_B]
    for media in listed:
        # S3 keeps whole seconds; the data dir, the file system's resolution.
        assert media.modified_at.tzinfo is not None
        assert before - timedelta(seconds=1) <= media.modified_at <= after + timedelta(seconds=1)


async def test_bad_ids_never_touch_the_store(backend: Backend) -> None:
    unreachable = backend.unreachable()
    # On a backend that fails on any touch, each answer below comes without one.
    for store in (unreachable, backend.store):
        for bad in BAD_IDS:
            assert not is_media_id(bad)
            assert await store.record(bad) is None
            assert await store.variant(bad, 400) is None
            assert await store.open(bad, 400) is None
            await store.delete(bad)
            forged = msgspec.structs.replace(_record(ID_A, [400], [1]), id=bad)
            with pytest.raises(ValueError, match="not a media id"):
                await store.save(forged, {400: b"x"})
    assert await _keys(backend) == set()
    # ...while a good id does reach it: the unreachable backend is unreachable indeed.
    with pytest.raises((OSError, obstore.exceptions.BaseError)):
        await unreachable.record(ID_A)
    await unreachable.close()


async def test_concurrent_saves_of_one_id(backend: Backend) -> None:
    # Content-addressed: two uploads of one photo save the same bytes at once.
    sizes = {400: 2_000, 800: 6_000}
    record = _record(ID_A, list(sizes), list(sizes.values()))
    variants = _variants(5, sizes)
    await asyncio.gather(*(backend.store.save(record, variants) for _ in range(6)))
    assert await backend.store.record(ID_A) == record
    for width, data in variants.items():
        assert await backend.store.variant(ID_A, width) == data
    assert await _keys(backend) == {f"{ID_A}/400.webp", f"{ID_A}/800.webp",
                                    f"{ID_A}/record.json"}


# --- S3 specifics -------------------------------------------------------------------------


async def test_s3_objects_carry_their_content_type(s3_server: Any, s3_credentials: None,
                                                   ) -> None:
    bucket = await asyncio.to_thread(s3_server.new_bucket)
    store = S3MediaStore(parse_media_url(s3_server.url(bucket)))  # no prefix: bucket root
    await store.save(_record(ID_A, [400], [3]), {400: b"abc"})
    client = s3_server.client()
    webp = await asyncio.to_thread(client.head_object, Bucket=bucket, Key=f"{ID_A}/400.webp")
    record = await asyncio.to_thread(client.head_object, Bucket=bucket,
                                     Key=f"{ID_A}/record.json")
    assert (webp["ContentType"], webp["ContentLength"]) == ("image/webp", 3)
    assert record["ContentType"] == "application/json"
    assert [m.id async for m in store.list()] == [ID_A]


async def test_s3_requests_are_signed_with_the_environment_credentials(
        s3_server: Any, s3_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = await asyncio.to_thread(s3_server.new_bucket)
    location = parse_media_url(s3_server.url(bucket))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong = S3MediaStore(location)
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        await wrong.save(_record(ID_A, [400], [1]), {400: b"x"})
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    right = S3MediaStore(location)
    await right.save(_record(ID_A, [400], [1]), {400: b"x"})
    assert await right.variant(ID_A, 400) == b"x"


async def test_s3_a_photo_read_slowly_is_served_whole(
        s3_server: Any, s3_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A phone on a poor network reads a photo for longer than a bucket may stay silent: a
    # pause in reading is not a stalled bucket. (obstore's default, 30 s for the whole
    # request, cut such a body short, seen with a 2 s limit and 3 s pauses.)
    monkeypatch.setattr(media_s3, "_STALL_TIMEOUT", "1s")
    bucket = await asyncio.to_thread(s3_server.new_bucket)
    store = S3MediaStore(parse_media_url(s3_server.url(bucket)))
    data = os.urandom(1_000_000)
    await store.save(_record(ID_A, [1600], [len(data)]), {1600: data})
    blob = await store.open(ID_A, 1600)
    assert blob is not None
    pieces: list[bytes] = []
    async for piece in blob.chunks:
        pieces.append(piece)
        if len(pieces) <= 2:
            await asyncio.sleep(1.5)  # the slow reader itself, not a synchronisation
    assert b"".join(pieces) == data
    await store.close()


# A process that makes an S3 call, closes the store and exits at once (a web process stopped
# right after serving a photo): here the call fails to connect, which made a third of such
# exits abort (SIGABRT in one of obstore's threads, Python finalising) before close() let
# those threads finish.
_EXIT_RIGHT_AFTER = """
import asyncio, sys
from rules.media_url import parse_media_url
from storage import media_s3
from storage.media_s3 import S3MediaStore

async def main() -> None:
    store = S3MediaStore(parse_media_url(sys.argv[1]))
    try:
        await store.record("m_" + "c" * 32)
    except Exception:
        pass
    await store.close()

asyncio.run(main())
"""


async def test_a_process_exits_cleanly_right_after_an_s3_call() -> None:
    url = f"s3://nowhere?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1"
    # Credentials given, so the client never looks for an instance role on the network.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    runs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _EXIT_RIGHT_AFTER, url, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE) for _ in range(8)]
    errors = [(await run.communicate())[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * 8, errors


# --- STREETFEED_MEDIA_URL -----------------------------------------------------------------


def test_media_url_is_parsed_at_start() -> None:
    assert load_settings({}).media_bucket is None
    assert load_settings({"STREETFEED_MEDIA_URL": ""}).media_bucket is None
    local = load_settings({"STREETFEED_MEDIA_URL":
                           "s3://photos?endpoint=http://127.0.0.1:9000&region=garage"
                           "&prefix=/streetfeed/media/"}).media_bucket
    assert local == S3Location("photos", "http://127.0.0.1:9000", "garage",
                               "streetfeed/media")
    assert local.allow_http
    aws = parse_media_url("s3://shop-photos.example")
    assert aws == S3Location("shop-photos.example") and not aws.allow_http
    assert not parse_media_url("s3://b12?endpoint=https://s3.example:8443").allow_http


@pytest.mark.parametrize(("value", "said"), [
    ("https://bucket", "expected s3://bucket?endpoint="),
    ("s3:///", "bucket: expected 3-63 lowercase"),
    ("s3://Photos", "bucket: expected 3-63 lowercase"),
    ("s3://photos:9000", "bucket: expected 3-63 lowercase"),
    ("s3://photos/media", "nothing may follow the bucket"),
    ("s3://photos?endpoint=ftp://host", "endpoint: expected http(s)://host[:port]"),
    ("s3://photos?endpoint=http://host/path", "endpoint: expected http(s)://host[:port]"),
    ("s3://photos?endpoint=http://host:port", "endpoint: expected http(s)://host[:port]"),
    ("s3://photos?endpoint=http://a&endpoint=http://b", "endpoint is given twice"),
    ("s3://photos?region=eu%20west", "region: expected"),
    ("s3://photos?prefix=a/../b", "prefix: expected segments"),
    ("s3://photos?prefix=a//b", "prefix: expected segments"),
    ("s3://photos?bucket=x", "unknown parameter 'bucket'"),
])
def test_a_malformed_media_url_is_refused_at_start(value: str, said: str) -> None:
    with pytest.raises(ConfigError, match=r"STREETFEED_MEDIA_URL: .*" + re.escape(said)):
        load_settings({"STREETFEED_MEDIA_URL": value})


@pytest.mark.parametrize("value", [
    "s3://AKIAEXAMPLE:s3cr3t-value@photos",
    "s3://photos?endpoint=http://AKIAEXAMPLE:s3cr3t-value@127.0.0.1:9000",
    "s3://photos?endpoint=http://AKIAEXAMPLE:s3cr3t-value@127.0.0.1:port",
    "s3://AKIAEXAMPLE:s3cr3t-value@photos:port",
    "s3://photos?secret_access_key=s3cr3t-value",
])
def test_credentials_in_the_url_are_refused_without_being_echoed(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"STREETFEED_MEDIA_URL": value})
    assert "s3cr3t-value" not in str(refused.value)
    assert "AKIAEXAMPLE" not in str(refused.value)


# --- A web server keeping uploads in the bucket -------------------------------------------


@pytest.fixture
def s3_settings(settings: Settings, s3_server: Any, s3_credentials: None) -> Iterator[Settings]:
    bucket = s3_server.new_bucket()
    url = s3_server.url(bucket, "media")
    yield settings.with_(media_bucket=load_settings({"STREETFEED_MEDIA_URL": url}).media_bucket)


async def test_an_upload_lands_in_the_bucket(redis: Redis, s3_settings: Settings,
                                             s3_server: Any) -> None:
    assert s3_settings.media_bucket is not None
    bucket = s3_settings.media_bucket.bucket
    shop = await add_shop(redis, s3_settings, "Primeur", 44.8370, -0.5735)
    jpeg = io.BytesIO()
    Image.linear_gradient("L").resize((1000, 700)).convert("RGB").save(jpeg, "JPEG")
    async with web_server(s3_settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        response = await http.post(f"/api/v1/shops/{shop.id}/media", content=jpeg.getvalue(),
                                   headers={"Authorization": f"Bearer {shop.token}",
                                            "Content-Type": "image/jpeg"})
        assert response.status_code == 201, response.text
        created = response.json()
        assert isinstance(web.state.media, S3MediaStore)

    client = s3_server.client()
    listed = await asyncio.to_thread(client.list_objects_v2, Bucket=bucket)
    keys = {o["Key"]: o["Size"] for o in listed["Contents"]}
    media = created["id"]
    assert set(keys) == {f"media/{media}/400.webp", f"media/{media}/800.webp",
                         f"media/{media}/1000.webp", f"media/{media}/record.json"}
    body = await asyncio.to_thread(client.get_object, Bucket=bucket,
                                   Key=f"media/{media}/record.json")
    record = msgspec.json.decode(body["Body"].read(), type=MediaRecord)
    assert (record.shop_id, record.width, record.height) == (shop.id, 1000, 700)
    assert record.bytes == sum(size for key, size in keys.items() if key.endswith(".webp"))
    widest = await asyncio.to_thread(client.get_object, Bucket=bucket,
                                     Key=f"media/{media}/1000.webp")
    assert widest["ContentType"] == "image/webp"
    with Image.open(io.BytesIO(widest["Body"].read())) as img:
        assert (img.format, img.size) == ("WEBP", (1000, 700))
    # Nothing went to the data dir.
    assert not await asyncio.to_thread((Path(s3_settings.data_dir) / "media").exists)


async def test_a_photo_kept_in_the_bucket_is_posted_and_served(
        redis: Redis, s3_settings: Settings, s3_server: Any) -> None:
    assert s3_settings.media_bucket is not None
    bucket = s3_settings.media_bucket.bucket
    street = (44.8370, -0.5735)
    shop = await add_shop(redis, s3_settings, "Fromager", *street)
    jpeg = io.BytesIO()
    Image.linear_gradient("L").resize((900, 1200)).convert("RGB").save(jpeg, "JPEG")
    async with web_server(s3_settings) as web, enricher(redis, s3_settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *street) as passer_by:
        uploaded = await http.post(f"/api/v1/shops/{shop.id}/media", content=jpeg.getvalue(),
                                   headers={"Authorization": f"Bearer {shop.token}",
                                            "Content-Type": "image/jpeg"})
        assert uploaded.status_code == 201, uploaded.text
        media_id = uploaded.json()["id"]
        accepted = await send_post(http, shop, arrival(media_ids=[media_id]))
        assert accepted.status_code == 202, accepted.text
        post = await passer_by.wait_post(accepted.json()["id"])
        [photo] = post["media"]
        assert photo["url"] == f"/media/{media_id}/900.webp"

        client = s3_server.client()
        for variant in photo["variants"]:
            served = await http.get(variant["url"])
            assert served.status_code == 200, variant
            assert served.headers["content-type"] == "image/webp"
            assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
            kept = await asyncio.to_thread(client.get_object, Bucket=bucket,
                                           Key=f"media/{media_id}/{variant['width']}.webp")
            assert served.content == kept["Body"].read()  # the bucket's bytes, whole
            assert served.headers["content-length"] == str(len(served.content))
            head = await http.head(variant["url"])
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == served.headers["content-length"]
            again = await http.get(variant["url"],
                                   headers={"If-None-Match": served.headers["etag"]})
            assert again.status_code == 304
        missing = await http.get(f"/media/{media_id}/1600.webp")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_media")


async def test_the_sweeps_empty_the_bucket(redis: Redis, s3_settings: Settings,
                                           s3_server: Any) -> None:
    assert s3_settings.media_bucket is not None
    bucket = s3_settings.media_bucket.bucket
    client = s3_server.client()

    async def keys() -> set[str]:
        listed = await asyncio.to_thread(client.list_objects_v2, Bucket=bucket)
        return {o["Key"] for o in listed.get("Contents", [])}

    clock = ManualClock()
    start = clock.now()
    shop = await add_shop(redis, s3_settings, "Primeur", 44.8370, -0.5735)
    png = io.BytesIO()
    Image.new("RGB", (600, 450), (200, 90, 10)).save(png, "PNG")
    async with web_server(s3_settings, clock=clock) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        uploaded = await http.post(f"/api/v1/shops/{shop.id}/media", content=png.getvalue(),
                                   headers={"Authorization": f"Bearer {shop.token}",
                                            "Content-Type": "image/png"})
        assert uploaded.status_code == 201, uploaded.text
    unposted = uploaded.json()["id"]
    ctx = worker_context(s3_settings, redis, clock)
    assert isinstance(ctx["media"], S3MediaStore)
    # Objects an upload left without registering them (its process died in between).
    await ctx["media"].save(_record(ID_B, [400], [1]), {400: b"x"})
    assert {k.split("/")[1] for k in await keys()} == {unposted, ID_B}

    assert await sweep_media(ctx) == 0
    clock.set(start + timedelta(seconds=MEDIA_UNPOSTED_KEEP_S + 60))
    assert await sweep_media(ctx) == 1  # the photo never posted, a day after its upload
    assert await keys() == {f"media/{ID_B}/400.webp", f"media/{ID_B}/record.json"}
    # The orphan goes once older than the grace, by its objects' time in the bucket.
    clock.set(datetime.now(UTC) + ORPHAN_GRACE - timedelta(minutes=1))
    assert await sweep_orphan_media(ctx) == 0
    clock.set(datetime.now(UTC) + ORPHAN_GRACE + timedelta(seconds=5))
    assert await sweep_orphan_media(ctx) == 1
    assert await keys() == set()
    await ctx["media"].close()


async def test_an_unreachable_bucket_is_a_503_not_a_500(redis: Redis, settings: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    down = settings.with_(media_bucket=parse_media_url(
        f"s3://photos?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1"))
    shop = await add_shop(redis, down, "Primeur", 44.8370, -0.5735)
    png = io.BytesIO()
    Image.new("RGB", (500, 400), (9, 9, 9)).save(png, "PNG")
    async with web_server(down) as web, httpx.AsyncClient(base_url=web.http) as http:
        response = await http.post(f"/api/v1/shops/{shop.id}/media", content=png.getvalue(),
                                   headers={"Authorization": f"Bearer {shop.token}",
                                            "Content-Type": "image/png"})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "media_unavailable"
    assert response.headers["retry-after"] == "2"


async def test_a_download_dropped_while_its_file_opens_leaves_no_file_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The browser drops a photo's download while the file is being opened: the task is
    cancelled, the opening thread is not, and the file it opened was left to the garbage
    collector (a ResourceWarning failed a CI run)."""
    import threading

    from storage.media import _chunks
    from tests.helpers import wait_for

    photo = tmp_path / "480.webp"
    photo.write_bytes(b"webp" * 10)
    started, release = threading.Event(), threading.Event()
    opened: list[Any] = []
    real_open = Path.open

    def slow_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(10)
        opened.append(real_open(self, *args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(Path, "open", slow_open)
    chunks = _chunks(photo)
    first = asyncio.ensure_future(anext(chunks))
    await wait_for(started.is_set, message="the thread opening the file")
    first.cancel()
    release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await wait_for(lambda: bool(opened) and opened[0].closed, message="the file closed")
