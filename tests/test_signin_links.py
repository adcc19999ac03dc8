"""One-time console sign-in links (issue 14): made by the operator's command line or a
signed-in console, redeemed once (also under parallel requests) for the same session
cookie token sign-in opens, within 24 h, stored only as a hash, refused for a disabled
shop or after its token was rotated, attempts rate limited per address."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import segno
from redis.asyncio import Redis

from rules.clock import SystemClock
from runtime.settings import Settings
from schemas.limits import SIGNIN_LINK_TTL_S
from schemas.shops import ShopCreated
from services.shops import set_disabled
from storage import keys
from storage.ratelimit import WINDOW_S
from streetfeed.cli import _write_served_url
from tests.helpers import add_shop, arrival, free_port, send_post, service_env, web_server
from web.pages import STATIC_DIR

STREET = (44.8370, -0.5735)
LINK = re.compile(r"^(?P<base>https?://[^/#]+)/shop#code=(?P<code>[A-Za-z0-9_-]{22,})$")
JSON_BODY = {"Content-Type": "application/json"}


def code_of(url: str) -> str:
    match = LINK.match(url)
    assert match, url
    return match["code"]


async def make_link(http: httpx.AsyncClient, shop: ShopCreated) -> dict[str, Any]:
    made = await http.post(f"/api/v1/shops/{shop.id}/signin-links",
                           headers={"Authorization": f"Bearer {shop.token}"})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def redeem(base: str, code: str, **headers: str) -> httpx.Response:
    """A fresh browser's redemption: its own connection and cookie jar."""
    async with httpx.AsyncClient(base_url=base) as http:
        return await http.post("/api/v1/session", json={"code": code},
                               headers={**JSON_BODY, **headers})


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_a_link_opens_a_console_session_once_and_is_stored_hashed(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    port = free_port()  # links name the address the server is configured for
    async with web_server(settings.with_(port=port), port=port) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        before = datetime.now(UTC)
        made = await make_link(http, shop)
        code = code_of(made["url"])
        assert made["url"] == f"{web.http}/shop#code={code}"
        assert len(base64.urlsafe_b64decode(code + "==")) >= 16  # 128 random bits at least
        expires = datetime.fromisoformat(made["expires_at"])
        assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(
            hours=24)
        prefix = "data:image/svg+xml;base64,"
        assert made["qr"].startswith(prefix)
        assert base64.b64decode(made["qr"][len(prefix):]).startswith(b"<svg")

        # Stored by the SHA-256 of the code, for 24 h: neither the key nor the record
        # holds the code.
        stored = await redis.keys("sf:signin-link:*")
        assert stored == [keys.signin_link(hashlib.sha256(code.encode()).hexdigest())
                          .encode()]
        assert code.encode() not in stored[0]
        record = await redis.hgetall(stored[0])
        assert record[b"shop_id"] == shop.id.encode()
        assert code.encode() not in b"".join([*record, *record.values()])
        assert SIGNIN_LINK_TTL_S - 5 <= await redis.ttl(stored[0]) <= SIGNIN_LINK_TTL_S

        # Redeemed: the same session cookie as token sign-in, which then speaks for the shop.
        async with httpx.AsyncClient(base_url=web.http) as phone:
            signed = await phone.post("/api/v1/session", json={"code": code},
                                      headers=JSON_BODY)
            assert signed.status_code == 200, signed.text
            assert signed.json()["id"] == shop.id
            cookie = signed.headers["set-cookie"]
            assert cookie.startswith("sf_session=") and code not in cookie
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert (await phone.get("/api/v1/session")).json()["id"] == shop.id
            posted = await phone.post(f"/api/v1/shops/{shop.id}/posts", json=arrival(),
                                      headers={"Origin": web.http})
            assert posted.status_code == 202, posted.text
        assert len(await redis.keys("sf:session:*")) == 1

        # Once only; an unknown code is told apart from a used one.
        assert error_of(await redeem(web.http, code)) == (401, "signin_link_used")
        assert error_of(await redeem(web.http, "A" * 22)) == (401, "signin_link_invalid")
        assert len(await redis.keys("sf:session:*")) == 1

        # Token sign-in and the API's bearer tokens are unchanged.
        by_token = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                             "token": shop.token})
        assert by_token.status_code == 200, by_token.text
        assert (await send_post(http, shop, arrival("encore"))).status_code == 202


async def test_parallel_redemptions_open_exactly_one_session(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for _ in range(3):  # a few links, each raced by 12 browsers at once
            code = code_of((await make_link(http, shop))["url"])
            sessions_before = len(await redis.keys("sf:session:*"))
            answers = await asyncio.gather(*(redeem(web.http, code) for _ in range(12)))
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200] + [401] * 11, [a.text for a in answers]
            assert {error_of(a) for a in answers if a.status_code == 401} == {
                (401, "signin_link_used")}
            assert len([a for a in answers if "set-cookie" in a.headers]) == 1
            assert len(await redis.keys("sf:session:*")) == sessions_before + 1


async def test_an_expired_link_is_refused(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        code = code_of((await make_link(http, shop))["url"])
        key = keys.signin_link(hashlib.sha256(code.encode()).hexdigest())
        # Its 24 h run out: Redis drops the key, and nothing tells it from a wrong code.
        await redis.pexpire(key, 1)
        answer = await redeem(web.http, code)
        assert error_of(answer) == (401, "signin_link_invalid")
        assert "set-cookie" not in answer.headers
        assert await redis.exists(key) == 0  # no key left behind without expiry


async def test_a_disabled_shop_or_a_rotated_token_refuses_outstanding_links(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        before_disable = code_of((await make_link(http, shop))["url"])
        before_rotation = code_of((await make_link(http, shop))["url"])
        await set_disabled(redis, shop.id, True, SystemClock(), settings)
        assert error_of(await redeem(web.http, before_disable)) == (401, "signin_link_invalid")
        await set_disabled(redis, shop.id, False, SystemClock(), settings)

        # Rotating the token refuses every link made with the old one (they carry the
        # token's hash, as sessions do), and a link made after works.
        rotated = await http.post(f"/api/v1/shops/{shop.id}/token",
                                  headers={"Authorization": f"Bearer {shop.token}"})
        assert rotated.status_code == 200
        assert error_of(await redeem(web.http, before_rotation)) == (401, "signin_link_invalid")
        fresh = ShopCreated(id=shop.id, token=rotated.json()["token"], name=shop.name,
                            region=shop.region)
        after = code_of((await make_link(http, fresh))["url"])
        assert (await redeem(web.http, after)).status_code == 200
        assert len(await redis.keys("sf:session:*")) == 1


async def test_a_link_tried_while_its_shop_is_disabled_works_once_it_is_enabled(
        redis: Redis, settings: Settings) -> None:
    """The link was marked used before its shop was checked: tried once during a
    disable, it was `signin_link_used` for good although nobody had signed in with it."""
    shop = await add_shop(redis, settings, "Torréfacteur", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        tried = code_of((await make_link(http, shop))["url"])
        untried = code_of((await make_link(http, shop))["url"])
        await set_disabled(redis, shop.id, True, SystemClock(), settings)
        for _ in range(2):
            refused = await redeem(web.http, tried)
            assert error_of(refused) == (401, "signin_link_invalid")
            assert "set-cookie" not in refused.headers
        await set_disabled(redis, shop.id, False, SystemClock(), settings)
        for code in (tried, untried):
            signed = await redeem(web.http, code)
            assert signed.status_code == 200, signed.text
            assert signed.json()["id"] == shop.id
            assert error_of(await redeem(web.http, code)) == (401, "signin_link_used")
        assert len(await redis.keys("sf:session:*")) == 2


async def test_a_console_session_makes_links_for_its_own_shop_only(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fleuriste", *STREET)
    other = await add_shop(redis, settings, "Voisin", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as till:
        path = f"/api/v1/shops/{shop.id}/signin-links"
        assert error_of(await till.post(path)) == (401, "missing_token")
        signed = await till.post("/api/v1/session", json={"shop_id": shop.id,
                                                          "token": shop.token})
        assert signed.status_code == 200
        made = await till.post(path, headers={"Origin": web.http})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        assert error_of(await till.post(path, headers={"Origin": "https://evil.example"})) \
            == (403, "cross_origin")
        assert error_of(await till.post(f"/api/v1/shops/{other.id}/signin-links",
                                        headers={"Origin": web.http})) == (401, "invalid_token")
        # The phone that scans it lands signed in to that shop.
        phone = await redeem(web.http, code_of(made.json()["url"]))
        assert phone.json()["id"] == shop.id


async def test_bad_link_bodies_are_refused_without_burning_the_link(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Caviste", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        code = code_of((await make_link(http, shop))["url"])

        async def post(body: bytes, **headers: str) -> httpx.Response:
            return await http.post("/api/v1/session", content=body,
                                   headers={**JSON_BODY, **headers})

        both = json.dumps({"code": code, "shop_id": shop.id, "token": shop.token}).encode()
        assert error_of(await post(both)) == (422, "invalid_sign_in")
        assert error_of(await post(b'{"code": "not a code!"}')) == (422, "invalid_sign_in")
        assert error_of(await post(f'{{"code":"x","code":"{code}"}}'.encode())) == (
            400, "duplicate_key")
        # A page elsewhere cannot spend it either (login CSRF with a link's code).
        good = json.dumps({"code": code}).encode()
        assert error_of(await post(good, Origin="https://evil.example")) == (403, "cross_origin")
        assert error_of(await http.post("/api/v1/session", content=good,
                                        headers={"Content-Type": "text/plain"})) == (
            415, "unsupported_media_type")
        assert await redis.keys("sf:session:*") == []
        assert (await post(good)).status_code == 200


def windows_between(start: float, end: float) -> int:
    """Rate-limit windows (fixed minutes) that [start, end] touches."""
    return int(end // WINDOW_S) - int(start // WINDOW_S) + 1


async def test_redemption_attempts_and_link_making_are_rate_limited(
        redis: Redis, settings: Settings) -> None:
    limit = 5
    settings = settings.with_(address_requests_per_minute=limit, signin_links_per_minute=2)
    shop = await add_shop(redis, settings, "Quincaillerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        start = time.time()
        # Guessing codes from one address: limited like token sign-in (the address's API
        # requests per minute), whatever the code.
        statuses = [(await redeem(web.http, f"{i:022d}")).status_code for i in range(30)]
        assert set(statuses) == {401, 429}
        assert statuses.count(401) <= limit * windows_between(start, time.time())
    settings = settings.with_(address_requests_per_minute=100_000)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        start = time.time()
        made = [(await http.post(f"/api/v1/shops/{shop.id}/signin-links",
                                 headers={"Authorization": f"Bearer {shop.token}"}))
                for _ in range(10)]
        assert {m.status_code for m in made} == {201, 429}
        assert [m.status_code for m in made].count(201) <= 2 * windows_between(start,
                                                                                time.time())
        assert error_of(next(m for m in made if m.status_code == 429)) == (429, "rate_limited")


# --- The command line -------------------------------------------------------------------

def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streetfeed.cli", "shops", *args],
                          env=service_env(settings.redis_url or "", **env),
                          capture_output=True, text=True, timeout=60)


async def test_cli_prints_a_link_its_qr_and_expiry_and_refuses_unknown_shops(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Boucherie Sainte-Catherine", *STREET)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    printed = await asyncio.to_thread(cli, settings, "link", shop.id, "--base-url", base)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    url = next(line for line in lines if LINK.match(line))
    assert LINK.match(url)["base"] == base  # type: ignore[index]
    assert "valid once, until" in printed.stdout and "Boucherie Sainte-Catherine" in lines[0]
    # The QR printed is the link's, readable as text in a terminal.
    expected = segno.make(url, error="m")
    qr = [line for line in lines if set(line) <= set("█▀▄ ") and line.strip()]
    assert len(qr) == (expected.symbol_size(border=2)[1] + 1) // 2
    assert "\n".join(qr) in printed.stdout
    # It works, once, against the server that address names.
    async with web_server(settings.with_(port=port), port=port) as web:
        assert (await redeem(web.http, code_of(url))).status_code == 200
        assert error_of(await redeem(web.http, code_of(url))) == (401, "signin_link_used")

    # The base URL: STREETFEED_PUBLIC_URL when set, else the default local address.
    public = await asyncio.to_thread(cli, settings, "link", shop.id,
                                     STREETFEED_PUBLIC_URL="https://rue.example")
    assert "https://rue.example/shop#code=" in public.stdout, public.stderr
    default = await asyncio.to_thread(cli, settings, "link", shop.id)
    assert "http://127.0.0.1:8000/shop#code=" in default.stdout, default.stderr
    # With `up --port 8765` running on the data dir, the link names the port in use (it
    # named the dead default; cold try), unless STREETFEED_PUBLIC_URL says otherwise.
    _write_served_url(settings.with_(port=8765))
    data_dir = str(settings.data_dir)
    served = await asyncio.to_thread(cli, settings, "link", shop.id,
                                     STREETFEED_DATA_DIR=data_dir)
    assert "http://127.0.0.1:8765/shop#code=" in served.stdout, served.stderr
    public = await asyncio.to_thread(cli, settings, "link", shop.id, STREETFEED_DATA_DIR=data_dir,
                                     STREETFEED_PUBLIC_URL="https://rue.example")
    assert "https://rue.example/shop#code=" in public.stdout, public.stderr

    unknown = await asyncio.to_thread(cli, settings, "link", "no-such-shop")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no shop with id 'no-such-shop'" in unknown.stderr
    await set_disabled(redis, shop.id, True, SystemClock(), settings)
    disabled = await asyncio.to_thread(cli, settings, "link", shop.id)
    assert disabled.returncode == 1 and disabled.stdout == ""
    assert "disabled" in disabled.stderr
    bad_base = await asyncio.to_thread(cli, settings, "link", shop.id, "--base-url",
                                       "ftp://x/y")
    assert bad_base.returncode == 2 and "expected https://host[:port]" in bad_base.stderr
    # Five links were made, none for the unknown or the disabled shop.
    assert len(await redis.keys("sf:signin-link:*")) == 5


def test_the_service_worker_keeps_every_console_module() -> None:
    """The console starts offline from the service worker's shell: a module it imports
    and the shell lacks (signin.js) would stop the whole page there."""
    shell = set(re.findall(r'"(/static/[^"]+)"', (STATIC_DIR / "sw.js").read_text()))
    seen: set[str] = set()
    todo = ["shop.js"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += re.findall(r'from "\./([\w.-]+\.js)"', (STATIC_DIR / name).read_text())
    assert "signin.js" in seen
    assert {f"/static/{name}" for name in seen} <= shell
