"""Pages and static files over real HTTP: gzip once, strong ETags, 304, Vary, HEAD
(issue 14: every asset was served uncompressed and without validators)."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from rules.negotiation import accepts_gzip, etag_matches
from runtime.settings import Settings
from tests.helpers import add_shop, web_server
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
    """The response and its body as sent on the wire (httpx would decode gzip)."""
    async with http.stream(method, url, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


def test_accept_encoding_and_if_none_match_are_read_as_rfc_9110_says() -> None:
    assert accepts_gzip("gzip, deflate, br, zstd")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8, *;q=0.1")
    assert accepts_gzip("*")
    assert accepts_gzip("GZIP")
    assert accepts_gzip("x-gzip")
    assert not accepts_gzip(None)
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("br")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=0.000, *")  # refused by name beats the wildcard
    assert not accepts_gzip("*;q=0")
    assert not accepts_gzip("gzip;q=abc")
    assert not accepts_gzip("gzip;q=2")
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('"x", W/"abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abcd"', '"abc"')
    assert not etag_matches(None, '"abc"')
    assert not etag_matches("", '"abc"')


async def test_every_file_gzipped_once_validated_and_secured(
        redis: Redis, settings: Settings) -> None:
    routes = {f"/static/{p.relative_to(STATIC_DIR).as_posix()}": p for p in static_files()}
    routes |= {route: STATIC_DIR / name for route, name in PAGES.items()}
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for route, path in routes.items():
            file = path.read_bytes()
            text = path.suffix in TEXT_SUFFIXES
            zipped, body = await raw_get(http, route, **{"accept-encoding": "gzip, br"})
            assert zipped.status_code == 200, route
            for header in SECURITY_HEADERS:
                assert zipped.headers.get(header), (route, header)
            assert zipped.headers["cache-control"] == "no-cache", route
            etag = zipped.headers["etag"]
            assert etag.startswith('"') and not etag.startswith("W/"), route  # strong
            if text and len(file) > 1000:
                assert zipped.headers["content-encoding"] == "gzip", route
                assert gzip.decompress(body) == file, route
                assert len(body) < len(file), route
            if zipped.headers.get("content-encoding") == "gzip":
                assert zipped.headers["vary"] == "Accept-Encoding", route
            else:
                assert body == file, route

            # The same bytes again: compressed once, the same representation.
            again, again_body = await raw_get(http, route, **{"accept-encoding": "gzip"})
            assert again_body == body and again.headers["etag"] == etag, route

            # Without gzip: the file itself, under another ETag.
            plain, plain_body = await raw_get(http, route, **{"accept-encoding": "identity"})
            assert plain_body == file and "content-encoding" not in plain.headers, route
            if zipped.headers.get("content-encoding") == "gzip":
                assert plain.headers["etag"] != etag, route
                assert plain.headers["vary"] == "Accept-Encoding", route

            # The browser's copy is current: 304, no body, validators and headers kept.
            same, same_body = await raw_get(http, route, **{"accept-encoding": "gzip",
                                                            "if-none-match": etag})
            assert same.status_code == 304 and same_body == b"", route
            assert same.headers["etag"] == etag, route
            assert same.headers["cache-control"] == "no-cache", route
            for header in SECURITY_HEADERS:
                assert same.headers.get(header), (route, header)
            stale, _ = await raw_get(http, route, **{"accept-encoding": "gzip",
                                                     "if-none-match": '"stale"'})
            assert stale.status_code == 200, route

            # HEAD: the headers of GET, no body.
            head, head_body = await raw_get(http, route, "HEAD", **{"accept-encoding": "gzip"})
            assert head.status_code == 200 and head_body == b"", route
            assert head.headers["etag"] == etag, route
            assert head.headers["content-length"] == str(len(body)), route
            assert head.headers.get("content-encoding") == zipped.headers.get(
                "content-encoding"), route

        sw, _ = await raw_get(http, "/sw.js")
        assert sw.headers["service-worker-allowed"] == "/"
        assert sw.headers["content-type"].startswith("text/javascript")


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
        assert known.status_code == 200 and known.headers["content-encoding"] == "gzip"
        unknown = await http.get("/screen/s_nobody")
        assert unknown.status_code == 404
        assert unknown.text == (STATIC_DIR / "screen-unknown.html").read_text()
        again = await http.get("/screen/s_nobody",
                               headers={"if-none-match": unknown.headers["etag"]})
        assert again.status_code == 404 and again.text == unknown.text


async def test_api_answers_are_not_compressed(redis: Redis, settings: Settings) -> None:
    """Small JSON on the hot path stays as it is (docs/performance.md, "Page weight")."""
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        response, _ = await raw_get(http, "/api/v1/config", **{"accept-encoding": "gzip"})
        assert response.status_code == 200
        assert "content-encoding" not in response.headers


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

