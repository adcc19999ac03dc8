"""The OpenAPI document, built from the route table, and the HTTP API fuzzed from it: no
5xx, no answer off the spec."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.settings import Settings, load_settings
from storage import keys
from tests.helpers import add_shop, arrival, enricher, send_post, wait_for, web_server
from web import api
from web.app import create_app
from web.openapi import SHOP_ID, Operation, openapi_document, operation_of

STREET = (44.8370, -0.5735)
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
])


async def test_openapi_document_is_generated_from_the_schemas(redis: Redis,
                                                              settings: Settings) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        document = (await http.get("/openapi.json")).json()
        assert document["openapi"] == "3.1.0"
        post = document["paths"]["/api/v1/shops/{shop_id}/posts"]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        union = document["components"]["schemas"]
        assert body["discriminator"]["propertyName"] == "kind"
        assert set(body["discriminator"]["mapping"]) == {"new_arrival", "flash_offer",
                                                         "opening_change"}
        assert union["FlashOfferIn"]["properties"]["title"]["maxLength"] == 80
        assert union["FlashOfferIn"]["additionalProperties"] is False


def test_every_route_is_described_and_every_description_routed() -> None:
    """/openapi.json is built from the route table: a route without an Operation (or an
    explicit outside_api) stops create_app, and no Operation waits in web/api.py for a
    route that is not there."""
    app = create_app(load_settings({}))
    routes = [route for route in app.routes if isinstance(route, Route)]
    described = [route for route in routes if operation_of(route.endpoint) is not None]
    document = openapi_document(app.routes)
    assert sum(len(methods) for methods in document["paths"].values()) == len(described)
    routed = {route.endpoint for route in routes}
    orphans = [name for name, value in vars(api).items()
               if inspect.isfunction(value) and _described(value) and value not in routed]
    assert not orphans, f"described in web/api.py but not routed: {orphans}"


def _described(function: Callable[..., Any]) -> bool:
    try:
        return operation_of(function) is not None
    except ValueError:  # neither described nor outside the API
        return False


async def _endpoint(request: Request) -> Response:
    return Response()


async def _other_endpoint(request: Request) -> Response:
    return Response()


def test_a_route_without_a_description_is_refused() -> None:
    with pytest.raises(ValueError, match="has no Operation"):
        openapi_document([*create_app(load_settings({})).routes,
                          Route("/api/v1/new", _endpoint, methods=["GET"])])
    # Nor may a description leave out one of its route's path parameters.
    shop_only = Operation(summary="A shop's post", parameters=(SHOP_ID,))(_other_endpoint)
    with pytest.raises(ValueError, match="path parameters"):
        openapi_document([Route("/api/v1/shops/{shop_id}/x/{post_id}", shop_only)])


async def test_schemathesis_finds_no_server_error_and_no_answer_off_spec(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Fuzz", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = (await send_post(http, shop, arrival("une vraie annonce"))).json()["id"]

        async def live() -> bool:
            return await redis.exists(keys.post(settings.region, post_id)) == 1
        await wait_for(live)
        # Fixed ids and token for the authenticated paths, so the fuzzer reaches the
        # validation behind authentication instead of stopping at 401/404.
        config = tmp_path / "schemathesis.toml"
        # A body over the size limit is refused with 413 before it is read: a rejection too.
        config.write_text(
            f'[parameters]\n"path.shop_id" = "{shop.id}"\n"path.post_id" = "{post_id}"\n'
            "[checks.negative_data_rejection]\n"
            "expected-statuses = [400, 401, 403, 404, 405, 409, 413, 415, 422, 429]\n")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            f"{web.http}/openapi.json", "--checks", CHECKS, "--max-examples", "25",
            "--seed", "20261126", "--workers", "1", "--phases", "examples,coverage,fuzzing",
            "--header", f"Authorization: Bearer {shop.token}",
            # Posting rotates nothing, but rotating the token would lock the fuzzer out.
            "--exclude-path", "/api/v1/shops/{shop_id}/token",
            # A valid request there streams until the server ends it (tests/test_sse.py).
            "--exclude-path", "/api/v1/feed/stream",
            "--request-timeout", "10",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
        out, _ = await asyncio.wait_for(process.communicate(), 300)
        report = out.decode(errors="replace")
        assert process.returncode == 0, report[report.find("FAILURES"):][:8000]
