"""The HTTP API fuzzed from its own OpenAPI document: no 5xx, no answer off the spec."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
from tests.helpers import add_shop, arrival, enricher, send_post, wait_for, web_server

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
            "--request-timeout", "10",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
        out, _ = await asyncio.wait_for(process.communicate(), 300)
        report = out.decode(errors="replace")
        assert process.returncode == 0, report[report.find("FAILURES"):][:8000]
