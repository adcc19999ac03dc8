"""Pages and static files over real HTTP: brotli and gzip made once before they are asked
for, strong ETags per representation, 304, Vary, HEAD (issue 14: every asset was served
uncompressed and without validators; issue 19: brotli, and compressed ahead of time)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
from pathlib import Path

import brotli
import httpx
import pytest
from redis.asyncio import Redis

from rules.negotiation import etag_matches
from runtime.settings import Settings
from tests.helpers import add_shop, web_server
from web.assets import Assets
from web.pages import STATIC_DIR

# Every page route and the file it serves.
PAGES = {"/": "index.html", "/shop": "shop.html", "/sw.js": "sw.js",
         "/manifest.webmanifest": "manifest.webmanifest"}
TEXT_SUFFIXES = {".js", ".css", ".html", ".svg", ".webmanifest"}
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy",
                    "permissions-policy")


def static_files() -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*") if p.is_file() and p.name != "LICENSE"
                  and p.name != "VERSION" and "__pycache__" not in p.parts)


async def raw_get(http: httpx.AsyncClient, url: str, method: str = "GET",
                  **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent on the wire (httpx would decode it)."""
    async with http.stream(method, url, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


def test_if_none_match_is_read_as_rfc_9110_says() -> None:
    # Accept-Encoding: tests/test_compression.py.
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('"x", W/"abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abcd"', '"abc"')
    assert not etag_matches(None, '"abc"')
    assert not etag_matches("", '"abc"')


async def test_every_file_precompressed_validated_and_secured(
        redis: Redis, settings: Settings) -> None:
    """Each page and file in br, gzip and identity as asked; each representation's own
    strong ETag, a 304 for it and for no other; HEAD; the security headers on all."""
    routes = {f"/static/{p.relative_to(STATIC_DIR).as_posix()}": p for p in static_files()}
    routes |= {route: STATIC_DIR / name for route, name in PAGES.items()}
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for route, path in routes.items():
            file = path.read_bytes()
            text = path.suffix in TEXT_SUFFIXES
            seen: dict[str | None, tuple[str, bytes]] = {}  # coding -> (etag, body)
            for asked in ("gzip, deflate, br", "gzip", "identity"):
                answer, body = await raw_get(http, route, **{"accept-encoding": asked})
                assert answer.status_code == 200, (route, asked)
                for header in SECURITY_HEADERS:
                    assert answer.headers.get(header), (route, asked, header)
                assert answer.headers["cache-control"] == "no-cache", route
                etag = answer.headers["etag"]
                assert etag.startswith('"') and not etag.startswith("W/"), route  # strong
                coding = answer.headers.get("content-encoding")
                seen[coding] = (etag, body)
                if coding == "br":
                    assert brotli.decompress(body) == file, route
                elif coding == "gzip":
                    assert gzip.decompress(body) == file, route
                else:
                    assert coding is None and body == file, (route, asked)
                if coding is not None:
                    assert len(body) < len(file), route
                if text and len(file) > 1000:
                    assert coding == {"gzip, deflate, br": "br", "gzip": "gzip"}.get(asked), \
                        (route, asked)
                if (text and len(file) > 1000) or coding is not None:
                    assert answer.headers["vary"] == "Accept-Encoding", (route, asked)
                # The same bytes again: compressed once, the same representation.
                again, again_body = await raw_get(http, route, **{"accept-encoding": asked})
                assert again_body == body and again.headers["etag"] == etag, route
            # One ETag per representation.
            assert len({etag for etag, _ in seen.values()}) == len(seen), route

            for coding, (etag, body) in seen.items():
                asked = coding or "identity"
                # The browser's copy is current: 304, no body, validators and headers kept.
                same, same_body = await raw_get(http, route, **{"accept-encoding": asked,
                                                                "if-none-match": etag})
                assert same.status_code == 304 and same_body == b"", (route, asked)
                assert same.headers["etag"] == etag, route
                assert same.headers["cache-control"] == "no-cache", route
                for header in SECURITY_HEADERS:
                    assert same.headers.get(header), (route, header)
                # Another representation's ETag is not this one's: the body, in full.
                for other, (other_etag, _) in seen.items():
                    if other != coding:
                        stale, stale_body = await raw_get(
                            http, route, **{"accept-encoding": asked,
                                            "if-none-match": other_etag})
                        assert stale.status_code == 200 and stale_body == body, route
                stale, _ = await raw_get(http, route, **{"accept-encoding": asked,
                                                         "if-none-match": '"stale"'})
                assert stale.status_code == 200, route

                # HEAD: the headers of GET, no body.
                head, head_body = await raw_get(http, route, "HEAD",
                                                **{"accept-encoding": asked})
                assert head.status_code == 200 and head_body == b"", route
                assert head.headers["etag"] == etag, route
                assert head.headers["content-length"] == str(len(body)), route
                assert head.headers.get("content-encoding") == coding, route

        sw, _ = await raw_get(http, "/sw.js")
        assert sw.headers["service-worker-allowed"] == "/"
        assert sw.headers["content-type"].startswith("text/javascript")


async def test_files_compressed_before_asked_kept_for_the_next_process_and_again_once_changed(
        tmp_path: Path) -> None:
    """warm() compresses every file and keeps the copies in the cache dir, where the next
    process reads them back (checked: a damaged one is made again); an edit on disk is
    seen on the next request (size or mtime), compressed again once, and served in its
    new bytes; copies of versions gone are forgotten at the next warm()."""
    root, cache = tmp_path / "static", tmp_path / ".compressed"
    (root / "vendor").mkdir(parents=True)
    (root / "app.js").write_text("export const a = 1;\n" * 200)
    (root / "vendor" / "lib.css").write_text("body { margin: 0 }\n" * 200)
    (root / "icon.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 4)
    assets = Assets(root, cache=cache)
    await asyncio.to_thread(assets.warm)
    first = await assets.get("app.js")
    assert first is not None and set(first.packed) == {"br", "gzip"}
    assert brotli.decompress(first.packed["br"].body) == (root / "app.js").read_bytes()
    png = await assets.get("icon.png")
    assert png is not None and png.packed == {}  # not text: as it is
    assert await assets.get("app.js") is first  # kept, not compressed again
    kept = sorted(p.name for p in cache.iterdir())
    assert kept == sorted(f"{a.digest.hex()}.{c}" for a in (first, await assets.get(
        "vendor/lib.css")) if a is not None for c in ("br", "gzip"))

    # The next process reads them back; a damaged copy is made again, not served.
    (cache / f"{first.digest.hex()}.br").write_bytes(b"not brotli")
    (cache / f"{first.digest.hex()}.gzip").write_bytes(b"\x1f\x8b-damaged")
    again = Assets(root, cache=cache)
    await asyncio.to_thread(again.warm)
    second = await again.get("app.js")
    assert second is not None and second.packed == first.packed
    assert brotli.decompress((cache / f"{first.digest.hex()}.br").read_bytes()) == \
        (root / "app.js").read_bytes()

    (root / "app.js").write_text("export const b = 2;\n" * 300)
    changed = await assets.get("app.js")
    assert changed is not None and changed is not first
    assert brotli.decompress(changed.packed["br"].body) == (root / "app.js").read_bytes()
    assert gzip.decompress(changed.packed["gzip"].body) == (root / "app.js").read_bytes()
    assert changed.packed["br"].etag != first.packed["br"].etag
    assert changed.identity.etag != first.identity.etag
    # Many asking at once for a changed file: loaded once, the same Asset for all.
    (root / "app.js").write_text("export const c = 3;\n" * 400)
    together = await asyncio.gather(*(assets.get("app.js") for _ in range(8)))
    assert len({id(a) for a in together}) == 1 and together[0] is not None
    await asyncio.to_thread(assets.warm)
    assert not any(p.name.startswith(first.digest.hex()) for p in cache.iterdir())
    assert any(p.name.startswith(together[0].digest.hex()) for p in cache.iterdir())
    (root / "app.js").unlink()
    assert await assets.get("app.js") is None


async def test_unknown_and_escaping_paths_are_a_json_404(
        redis: Redis, settings: Settings) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for route in ("/static/nope.js", "/static/../pages.py", "/static/%2e%2e/pages.py",
                      "/static/vendor/../../app.py", "/static/", "/static/vendor"):
            response = await http.get(route)
            assert response.status_code == 404, route
            assert response.json()["error"]["code"] == "not_found", route
            assert response.headers.get("content-security-policy"), route


async def test_unknown_screen_is_a_404_page_never_a_304(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fournil")
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        known = await http.get(f"/screen/{shop.id}")
        assert known.status_code == 200 and known.headers["content-encoding"] == "br"
        unknown = await http.get("/screen/s_nobody")
        assert unknown.status_code == 404
        assert unknown.text == (STATIC_DIR / "screen-unknown.html").read_text()
        again = await http.get("/screen/s_nobody",
                               headers={"if-none-match": unknown.headers["etag"]})
        assert again.status_code == 404 and again.text == unknown.text


async def test_paths_the_os_refuses_are_a_json_404_without_a_traceback(
        redis: Redis, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """A name over the file system's 255 bytes (ENAMETOOLONG), a whole path over PATH_MAX,
    a file taken for a directory (ENOTDIR): each was a 500 in text/plain and a traceback in
    the log per request, for anyone with curl."""
    long_name = "a" * 256
    routes = (f"/static/{long_name}", f"/static/{long_name}.js", f"/static/vendor/{long_name}",
              f"/static/{long_name}/app.js", "/static/" + "a/" * 2100 + "app.js",
              "/static/" + "é" * 200, "/static/app.js/x", "/static/app.js/",
              f"/screen/{long_name}")
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        with caplog.at_level(logging.WARNING):
            for route in routes:
                response = await http.get(route)
                assert response.status_code == 404, (route[:40], response.text[:200])
                if route.startswith("/static/"):
                    assert response.json()["error"]["code"] == "not_found", route[:40]
                assert response.headers.get("content-security-policy"), route[:40]
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], \
            [r.getMessage()[:200] for r in caplog.records]


def test_the_service_worker_keeps_every_module_of_the_passer_by_page() -> None:
    """The page starts offline from the service worker's shell: a module it imports that
    the shell lacks (alerts.js, postview.js) would stop it there."""
    shell = set(re.findall(r'"(/static/[^"]+)"', (STATIC_DIR / "sw.js").read_text()))
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += re.findall(r'from "\./([\w.-]+\.js)"', (STATIC_DIR / name).read_text())
    assert {"alerts.js", "postview.js"} <= seen
    assert {f"/static/{name}" for name in seen} <= shell



def test_a_copy_that_cannot_be_written_leaves_no_partial_file(tmp_path: Path) -> None:
    """A cold attacker's: with the cache's disk full, every start left its half-written
    copies behind (82 files, then 162). The write is made to fail as a full disk fails
    (the partial name is /dev/full); the copy is still served, and nothing is left."""
    import hashlib
    import os
    import threading

    from web.assets import _packed

    body = b"const street = 'feed';\n" * 200
    digest = hashlib.sha256(body).digest()
    cache = tmp_path / "compressed"
    cache.mkdir()
    partial = cache / f"{digest.hex()}.br.{os.getpid()}.{threading.get_ident()}"
    partial.symlink_to("/dev/full")
    out = _packed(body, digest, "br", cache)
    assert brotli.decompress(out) == body
    assert list(cache.iterdir()) == []
