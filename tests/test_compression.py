"""Compression of the API's JSON (issue 19, point 7), over real HTTP and WebSocket: br and
gzip as Accept-Encoding weighs them, identity otherwise, never below the size threshold,
never for an answer carrying a secret (BREACH), never for the event stream or feed frames.
Pages and files: tests/test_assets.py."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import brotli
import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from redis.asyncio import Redis
from starlette.routing import Route
from websockets.asyncio.client import connect

from rules.compression import CODINGS, DYNAMIC_MIN_BYTES, DYNAMIC_OFFLOAD_BYTES, compress
from rules.negotiation import choose_encoding
from runtime.settings import Settings
from tests.helpers import add_shop, arrival, auth, bearer, enricher, live_post, web_server
from web.app import create_app
from web.compression import is_compressed
from web.openapi import operation_of

STREET = (44.8370, -0.5735)
# Fields that carry a secret or what opens something: a hold's or a subscription's secret,
# a shop's token, a sign-in link's QR. (A hold's code, said at the till, is only in answers
# a bearer secret or the shop opens, which the test refuses by those; a category's `code`
# is public.)
SECRET_FIELDS = {"secret", "token", "qr"}


async def raw(http: httpx.AsyncClient, url: str, method: str = "GET",
              **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent on the wire (httpx would decode it)."""
    async with http.stream(method, url, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


def decoded(response: httpx.Response, body: bytes) -> bytes:
    coding = response.headers.get("content-encoding")
    if coding == "br":
        out: bytes = brotli.decompress(body)
        return out
    if coding == "gzip":
        return gzip.decompress(body)
    assert coding is None, coding
    return body


def test_accept_encoding_is_weighed_as_rfc_9110_says() -> None:
    ours = CODINGS  # ("br", "gzip"): brotli first when the client weighs both alike
    assert choose_encoding("gzip, deflate, br, zstd", ours) == "br"
    assert choose_encoding("gzip, deflate", ours) == "gzip"
    assert choose_encoding("br;q=0.5, gzip", ours) == "gzip"  # the client's weights first
    assert choose_encoding("br;q=1.0, gzip;q=0.8, *;q=0.1", ours) == "br"
    assert choose_encoding("br;q=0, gzip", ours) == "gzip"
    assert choose_encoding("br;q=0, gzip;q=0", ours) is None
    assert choose_encoding("br;q=0, *", ours) == "gzip"  # refused by name beats the wildcard
    assert choose_encoding("*", ours) == "br"
    assert choose_encoding("*;q=0", ours) is None
    assert choose_encoding("GZIP", ours) == "gzip"
    assert choose_encoding("x-gzip", ours) == "gzip"
    assert choose_encoding("gzip;q=abc", ours) is None
    assert choose_encoding("gzip;q=2", ours) is None
    assert choose_encoding("identity", ours) is None
    assert choose_encoding("identity;q=1, gzip;q=0.5", ours) is None
    assert choose_encoding("gzip, identity;q=0.5", ours) == "gzip"
    assert choose_encoding("deflate, zstd", ours) is None
    assert choose_encoding(None, ours) is None
    assert choose_encoding("", ours) is None
    assert choose_encoding("br", ("gzip",)) is None  # only what we have


def test_both_codings_give_the_bytes_back_at_both_trade_offs() -> None:
    body = json.dumps({"shops": [{"id": f"s{i}", "name": "Fournil"} for i in range(200)]})
    data = body.encode()
    for static in (True, False):
        packed_br = compress(data, "br", static=static)
        packed_gz = compress(data, "gzip", static=static)
        assert brotli.decompress(packed_br) == data
        assert gzip.decompress(packed_gz) == data
        assert len(packed_br) < len(data) / 4 and len(packed_gz) < len(data) / 4
    # Deterministic (no mtime, no name): a file's ETag outlives a restart.
    assert compress(data, "gzip", static=True) == compress(data, "gzip", static=True)


async def test_api_json_in_br_gzip_or_identity_as_asked(redis: Redis,
                                                        settings: Settings) -> None:
    for i in range(12):  # a page of shops well over the threshold
        await add_shop(redis, settings, f"Boutique numéro {i}", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        # /openapi.json is over DYNAMIC_OFFLOAD_BYTES: compressed in a worker thread.
        for route, at_least in (("/api/v1/shops", DYNAMIC_MIN_BYTES),
                                ("/openapi.json", DYNAMIC_OFFLOAD_BYTES)):
            plain, plain_body = await raw(http, route, **{"accept-encoding": "identity"})
            assert plain.status_code == 200 and len(plain_body) > at_least, route
            assert "content-encoding" not in plain.headers, route
            assert plain.headers["vary"] == "Accept-Encoding", route
            assert plain.headers["content-length"] == str(len(plain_body)), route
            for asked, coding in (("gzip, deflate, br", "br"), ("br", "br"),
                                  ("gzip", "gzip"), ("br;q=0, gzip", "gzip"),
                                  ("br;q=0.5, gzip;q=0.9", "gzip"), ("*", "br")):
                answer, body = await raw(http, route, **{"accept-encoding": asked})
                assert answer.status_code == 200, (route, asked)
                assert answer.headers.get("content-encoding") == coding, (route, asked)
                assert answer.headers["vary"] == "Accept-Encoding", (route, asked)
                assert answer.headers["content-length"] == str(len(body)), (route, asked)
                assert answer.headers["content-type"] == "application/json", (route, asked)
                assert decoded(answer, body) == plain_body, (route, asked)
                assert len(body) < len(plain_body) / 2, (route, asked)
                # Headers the other layers add are kept.
                assert answer.headers.get("content-security-policy"), (route, asked)
                assert answer.headers.get("x-request-id"), (route, asked)
            for refused in ("br;q=0, gzip;q=0", "identity", "deflate", ""):
                answer, body = await raw(http, route, **{"accept-encoding": refused})
                assert "content-encoding" not in answer.headers, (route, refused)
                assert body == plain_body, (route, refused)
            # HEAD: the headers of GET (its length, its coding), no body.
            head, head_body = await raw(http, route, "HEAD", **{"accept-encoding": "br"})
            assert head.headers.get("content-encoding") == "br" and head_body == b"", route

        # httpx itself asks for and decodes gzip (and br, with brotli installed).
        assert len((await http.get("/api/v1/shops")).json()["shops"]) == 12

        # A small answer goes as it is, still saying it could vary.
        small, small_body = await raw(http, "/api/v1/config", **{"accept-encoding": "br, gzip"})
        assert len(small_body) < DYNAMIC_MIN_BYTES
        assert "content-encoding" not in small.headers
        assert small.headers["vary"] == "Accept-Encoding"
        # An error of an allowed route is small, JSON and readable as it is.
        error, error_body = await raw(http, "/api/v1/shops?limit=0",
                                      **{"accept-encoding": "br, gzip"})
        assert error.status_code == 400 and "content-encoding" not in error.headers
        assert json.loads(error_body)["error"]["code"] == "invalid_query"


def _field_names(type_: Any, seen: set[Any] | None = None) -> set[str]:
    """Every field name in a response type, through nested Structs, lists and unions."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    info = msgspec.inspect.type_info(type_) if not isinstance(
        type_, msgspec.inspect.Type) else type_
    if isinstance(info, msgspec.inspect.StructType):
        if info.cls in seen:
            return names
        seen.add(info.cls)
        for f in info.fields:
            names.add(f.encode_name)
            names |= _field_names(f.type, seen)
    elif isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.SetType,
                           msgspec.inspect.FrozenSetType, msgspec.inspect.VarTupleType)):
        names |= _field_names(info.item_type, seen)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            names |= _field_names(member, seen)
    elif isinstance(info, msgspec.inspect.DictType):
        names |= _field_names(info.value_type, seen)
    return names


def test_no_route_answering_a_secret_may_be_compressed(settings: Settings) -> None:
    """The allow-list (web/app.py's route table) holds public GETs only: no route whose
    answer names a secret, none that a shop's token or session opens, none that reads a
    bearer secret, no stream. A route added later that answers a secret fails here."""
    routes = [r for r in create_app(settings).routes if isinstance(r, Route)]
    allowed = [r for r in routes if is_compressed(r.endpoint)]
    assert {r.path for r in allowed} >= {"/api/v1/feed", "/api/v1/shops", "/openapi.json"}
    for route in allowed:
        assert route.methods == {"GET", "HEAD"}, route.path
        assert route.path.startswith("/api/") or route.path == "/openapi.json", route.path
        if route.path == "/openapi.json":
            continue  # the document of the routes, built once from them
        operation = operation_of(route.endpoint)
        assert operation is not None and operation.media_type == "application/json", \
            route.path
        assert not operation.authenticated, route.path
        assert "bearer" not in operation.summary.lower(), route.path
        names = _field_names(operation.response)
        assert not names & SECRET_FIELDS, (route.path, names & SECRET_FIELDS)
    # The routes that answer a secret, by name: none allowed, whatever their schema says.
    secret_routes = {
        ("POST", "/api/v1/posts/{post_id}/holds"),  # the hold's secret and code
        ("GET", "/api/v1/holds/{hold_id}"), ("DELETE", "/api/v1/holds/{hold_id}"),  # code
        ("GET", "/api/v1/shops/{shop_id}/holds"),  # codes and names
        ("POST", "/api/v1/shops/{shop_id}/holds/{hold_id}/{action}"),
        ("POST", "/api/v1/shops/{shop_id}/token"),  # a shop's token
        ("POST", "/api/v1/shops/{shop_id}/signin-links"),  # a sign-in link and its QR
        ("POST", "/api/v1/push/subscriptions"),  # a subscription's secret
        ("PUT", "/api/v1/push/subscriptions/{subscription_id}"),
        ("POST", "/api/v1/session"), ("GET", "/api/v1/session"),
        ("GET", "/api/v1/feed/stream"),  # a stream
    }
    found = {(m, r.path) for r in routes for m in (r.methods or ()) if (m, r.path)
             in secret_routes and not is_compressed(r.endpoint)}
    assert found == secret_routes


def _push_subscription() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    return {"endpoint": "http://127.0.0.1:9/push/a", "keys": {"p256dh": b64(key),
                                                             "auth": b64(b"0" * 16)}}


async def test_answers_carrying_a_secret_are_never_compressed(
        redis: Redis, settings: Settings) -> None:
    """Each route answering a secret, asked with `Accept-Encoding: br, gzip` over HTTP:
    identity, and no `Vary: Accept-Encoding` either (which every answer of an allowed
    route says, however small: so this holds for answers under the threshold too)."""
    settings = settings.with_(push_allowed_hosts=("127.0.0.1:9",))
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    accept = {"Accept-Encoding": "br, gzip"}
    answers: dict[str, httpx.Response] = {}
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http, headers=accept) as http:
        post_id = await live_post(http, shop, redis, arrival(
            "Fraises", hold={"quantity": 3, "minutes": 30}))
        taken = await http.post(f"/api/v1/posts/{post_id}/holds", json={"name": "Léa " * 9})
        answers["take a hold"] = taken
        hold = taken.json()
        answers["read a hold"] = await http.get(f"/api/v1/holds/{hold['id']}",
                                                headers=bearer(hold["secret"]))
        answers["the shop's holds"] = await http.get(f"/api/v1/shops/{shop.id}/holds",
                                                     headers=auth(shop))
        answers["accept a hold"] = await http.post(
            f"/api/v1/shops/{shop.id}/holds/{hold['id']}/accept", headers=auth(shop))
        answers["cancel a hold"] = await http.delete(f"/api/v1/holds/{hold['id']}",
                                                     headers=bearer(hold["secret"]))
        link = await http.post(f"/api/v1/shops/{shop.id}/signin-links", headers=auth(shop))
        answers["a sign-in link, with its QR"] = link
        code = link.json()["url"].partition("#code=")[2]
        signed = await http.post("/api/v1/session", json={"code": code})
        answers["sign in"] = signed
        answers["the session"] = await http.get(
            "/api/v1/session", headers={"Cookie": f"sf_session={signed.cookies['sf_session']}"})
        subscribed = await http.post("/api/v1/push/subscriptions", json={
            "subscription": _push_subscription(), "shops": [shop.id]})
        answers["subscribe to alerts"] = subscribed
        answers["change alerts"] = await http.put(
            f"/api/v1/push/subscriptions/{subscribed.json()['id']}",
            json={"shops": [shop.id]}, headers=bearer(subscribed.json()["secret"]))
        answers["rotate the token"] = await http.post(f"/api/v1/shops/{shop.id}/token",
                                                      headers=auth(shop))
    for what, answer in answers.items():
        assert answer.status_code in (200, 201), (what, answer.text)
        assert "content-encoding" not in answer.headers, what
        assert "accept-encoding" not in answer.headers.get("vary", "").lower(), what
    # The QR's answer alone is over the threshold: compressed, were its route allowed.
    assert int(answers["a sign-in link, with its QR"].headers["content-length"]) \
        > DYNAMIC_MIN_BYTES


async def test_the_event_stream_is_never_compressed(redis: Redis, settings: Settings) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        url = f"/api/v1/feed/stream?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
        async with http.stream("GET", url, headers={"Accept-Encoding": "gzip, br"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers
            assert "accept-encoding" not in stream.headers.get("vary", "").lower()
            # The snapshot's end comes at once, readable as it is: nothing held back.
            first = await anext(stream.aiter_raw())
            assert first.startswith((b"event:", b":", b"retry:")), first[:40]


@pytest.mark.parametrize("path", ["/ws/feed", "/ws/shop"])
async def test_sockets_negotiate_no_permessage_deflate(redis: Redis, settings: Settings,
                                                       path: str) -> None:
    """The client offers permessage-deflate (websockets does by default); the server takes
    none: a feed frame is encoded once for every socket it goes to."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    query = (f"?lat={STREET[0]}&lon={STREET[1]}&radius_m=500" if path == "/ws/feed"
             else f"?shop={shop.id}")
    headers = {} if path == "/ws/feed" else {"Authorization": f"Bearer {shop.token}"}
    async with web_server(settings) as web, connect(
            f"{web.ws}{path}{query}", compression="deflate", additional_headers=headers) as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response.status_code == 101
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        assert json.loads(await ws.recv())["type"]  # frames flow, as text
