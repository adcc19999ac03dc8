"""Shop categories as codes with French and English labels (issue 14).

Category names were raw lowercase French, also on English pages ("boulangerie",
"épicerie fine"). A category is now a code of one list (schemas/categories.py), served
by GET /api/v1/categories; the labels, the former French names and a few synonyms are
taken for their code (case, accents and punctuation folded), anything else is refused
(422 `unknown_category`, the CLI lists the codes); records stored before codes read as
codes; the pages show the label in their language.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from rules.categories import ALIASES, category_code, fold, migrated, require_category
from rules.errors import InvalidInput
from rules.shops import hash_token, new_token
from runtime.settings import Settings
from schemas.categories import CATEGORIES, CATEGORY_CODES
from schemas.shops import ShopRecord
from storage import keys
from streetfeed.demo import DEMO_SHOPS
from tests.helpers import (
    add_shop,
    arrival,
    enricher,
    send_post,
    service_env,
    wait_for,
    web_server,
)
from web.category_table import TABLE_PATH, render

STREET = (44.8370, -0.5735)
CODES = [c.code for c in CATEGORIES]

# --- The list and its names (pure) --------------------------------------------------------


def test_the_list_has_the_issues_codes_and_a_few_more_trades_with_other_last() -> None:
    asked = {"bakery", "butcher", "cheese", "greengrocer", "grocery", "wine", "bookshop",
             "florist", "clothing", "shoes", "cafe", "restaurant", "pharmacy", "hardware",
             "toys", "jewellery", "beauty", "hairdresser", "optician", "sports", "music",
             "gifts", "other"}
    more = {"fishmonger", "delicatessen", "coffee_tea", "bikes", "stationery", "pets"}
    assert asked | more <= CATEGORY_CODES
    assert len(CODES) == len(set(CODES)) and CODES[-1] == "other"
    for category in CATEGORIES:
        assert re.fullmatch(r"[a-z][a-z_]*", category.code), category
        assert category.fr.strip() and category.en.strip(), category
    assert set(ALIASES) <= CATEGORY_CODES


@pytest.mark.parametrize(("name", "code"), [
    ("bakery", "bakery"), ("Boulangerie", "bakery"), ("BOULANGERIE ", "bakery"),
    ("Bakery", "bakery"), ("boulangerie", "bakery"),
    ("épicerie fine", "delicatessen"), ("Epicerie-Fine", "delicatessen"),
    ("ÉPICERIE", "grocery"), ("épicerie", "grocery"), ("epicerie", "grocery"),
    ("fromagerie", "cheese"), ("Fromagerie", "cheese"), ("Cheese shop", "cheese"),
    ("café", "cafe"), ("Cafe", "cafe"), ("caviste", "wine"), ("Cave à vins", "wine"),
    ("coffee_tea", "coffee_tea"), ("Coffee and tea", "coffee_tea"),
    ("Torréfacteur, thés", "coffee_tea"), ("prêt-à-porter", "clothing"),
    ("Jewelry", "jewellery"), ("tabac", "newsagent"), ("quincaillerie", "hardware"),
    ("friperie", "secondhand"), ("chocolatier", "chocolate"), ("primeur", "greengrocer"),
    ("librairie", "bookshop"), ("disquaire", "music"), ("fleuriste", "florist"),
    ("boucherie", "butcher"), ("Poissonnerie", "fishmonger"), ("vélociste", "bikes"),
    ("Autre commerce", "other"),
])
def test_codes_labels_and_former_names_name_their_code(name: str, code: str) -> None:
    assert category_code(name) == code
    assert require_category(name) == code


def test_every_label_names_its_own_code_in_either_language() -> None:
    for category in CATEGORIES:
        for name in (category.code, category.fr, category.en, category.fr.upper(),
                     category.en.lower()):
            assert category_code(name) == category.code, name


@pytest.mark.parametrize("name", ["", "   ", "poterie", "bakery2", "c", "test",
                                  "ϲаѕіnо", "boulangerie fine"])
def test_other_names_are_refused_with_the_codes(name: str) -> None:
    assert category_code(name) is None
    with pytest.raises(InvalidInput) as refused:
        require_category(name)
    assert refused.value.code == "unknown_category" and refused.value.status == 422
    assert all(code in refused.value.message for code in CODES)


def test_the_demo_street_uses_codes() -> None:
    assert {category for _, _, category, *_ in DEMO_SHOPS} <= CATEGORY_CODES


def test_folding() -> None:
    assert fold("  Épicerie-FINE ") == "epicerie fine"
    assert fold("Prêt-à-porter") == "pret a porter"
    assert fold("Torréfacteur, thés") == "torrefacteur thes"
    assert fold("coffee_tea") == "coffee tea"


def test_a_stored_category_migrates_to_a_code_and_never_fails() -> None:
    assert migrated("bakery") == "bakery"
    assert migrated("épicerie fine") == "delicatessen"
    assert migrated("Boulangerie") == "bakery"
    assert migrated("magasin de trucs") == "other"
    assert migrated("") == "other"


def test_the_pages_table_is_the_python_table() -> None:
    """The pages ship the labels as a module (web/static/category-table.js), generated from
    schemas/categories.py: regenerate it (`python -m web.category_table`) after a change."""
    shipped = TABLE_PATH.read_text(encoding="utf-8")
    assert shipped == render()
    rows = re.search(r"Object\.freeze\((\[.*\])\);", shipped, re.S)
    assert rows is not None
    as_js = json.loads(re.sub(r",\s*\]$", "]", rows.group(1)))  # JS allows a trailing comma
    assert as_js == [[c.code, c.fr, c.en] for c in CATEGORIES]


def test_the_documented_table_is_the_python_table() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "categories.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \| (.+?) \| (.*?) \|$", doc, re.M)
    assert [(code, fr, en) for code, fr, en, _ in rows] == [
        (c.code, c.fr, c.en) for c in CATEGORIES]
    assert {code: tuple(a for a in also.split(", ") if a) for code, _, _, also in rows} == {
        c.code: ALIASES.get(c.code, ()) for c in CATEGORIES}


# --- Over HTTP ------------------------------------------------------------------------------


async def test_the_list_is_served_cacheable_and_documented(settings: Settings) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        response = await http.get("/api/v1/categories")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert "public" in response.headers["cache-control"]
        assert "max-age" in response.headers["cache-control"]
        assert response.json() == {"categories": [msgspec.to_builtins(c) for c in CATEGORIES]}
        doc = (await http.get("/openapi.json")).json()
        answer = doc["paths"]["/api/v1/categories"]["get"]["responses"]["200"]
        ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert "categories" in doc["components"]["schemas"][ref]["properties"]


async def _published(http: httpx.AsyncClient, path: str, post_id: str) -> dict[str, Any]:
    """The post as `path` lists it, once the enricher has published it."""
    found: list[dict[str, Any]] = []

    async def listed() -> bool:
        posts = (await http.get(path)).json()["posts"]
        found[:] = [p for p in posts if p["id"] == post_id]
        return bool(found)

    await wait_for(listed, message=f"post {post_id} in {path}")
    return found[0]


async def test_a_label_or_former_name_is_stored_and_delivered_as_its_code(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Au Pain", *STREET, category="Boulangerie")
    stored = await redis.get(keys.shop(shop.id))
    assert stored is not None and json.loads(stored)["category"] == "bakery"
    auth = {"Authorization": f"Bearer {shop.token}"}
    url = f"/api/v1/shops/{shop.id}"
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        assert (await http.get(url)).json()["category"] == "bakery"
        changed = await http.patch(url, json={"category": "Épicerie Fine"}, headers=auth)
        assert changed.status_code == 200, changed.text
        assert changed.json()["category"] == "delicatessen"
        stored = await redis.get(keys.shop(shop.id))
        assert stored is not None and json.loads(stored)["category"] == "delicatessen"
        post_id = (await send_post(http, shop, arrival("Huile d'olive nouvelle"))).json()["id"]

        post = await _published(http, "/api/v1/feed?lat=44.837&lon=-0.5735&radius_m=500",
                                post_id)
        assert post["shop"]["category"] == "delicatessen"
        listed = (await http.get("/api/v1/shops")).json()["shops"]
        assert [s["category"] for s in listed if s["id"] == shop.id] == ["delicatessen"]

        # Anything else: 422 with a code, the codes listed, the record untouched.
        before = await redis.get(keys.shop(shop.id))
        for category in ("poterie", "ϲаѕіnо", "<b>bakery</b>"):
            refused = await http.patch(url, json={"category": category}, headers=auth)
            assert refused.status_code == 422, (category, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "unknown_category"
            assert "bakery" in error["message"] and "other" in error["message"]
        assert await redis.get(keys.shop(shop.id)) == before


async def test_a_record_stored_before_codes_reads_as_a_code(redis: Redis,
                                                            settings: Settings) -> None:
    """Records written with free-text French categories are migrated as they are read
    (storage.shops.decode_record): the profile, the list and the posts say the code, an
    unknown old value says `other`, and the next change stores the code."""
    token = new_token()
    old = {"garde-manger": "épicerie fine", "bazar": "Magasin de trucs"}
    for shop_id, category in old.items():
        record = ShopRecord(id=shop_id, name=shop_id.title(), category=category,
                            lat=STREET[0], lon=STREET[1], token_hash=hash_token(token),
                            created_at=datetime.now(UTC))
        await redis.set(keys.shop(shop_id), msgspec.json.encode(record))
        await redis.sadd(keys.shops_index(), shop_id)  # type: ignore[misc]
    await redis.incr(keys.shops_version())
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        assert (await http.get("/api/v1/shops/garde-manger")).json()["category"] == \
            "delicatessen"
        assert (await http.get("/api/v1/shops/bazar")).json()["category"] == "other"
        listed = {s["id"]: s["category"] for s in (await http.get("/api/v1/shops")).json()[
            "shops"]}
        assert listed == {"garde-manger": "delicatessen", "bazar": "other"}
        auth = {"Authorization": f"Bearer {token}"}
        posted = await http.post("/api/v1/shops/garde-manger/posts", json=arrival("Miel"),
                                 headers=auth)
        assert posted.status_code == 202, posted.text
        post_id = posted.json()["id"]
        post = await _published(http, "/api/v1/shops/garde-manger/posts", post_id)
        assert post["shop"]["category"] == "delicatessen"
        # Stored as it was until the record next changes; then with its code.
        raw = await redis.get(keys.shop("bazar"))
        assert raw is not None and json.loads(raw)["category"] == "Magasin de trucs"
        renamed = await http.patch("/api/v1/shops/bazar", json={"name": "Le Bazar"},
                                   headers=auth)
        assert renamed.status_code == 200, renamed.text
        raw = await redis.get(keys.shop("bazar"))
        assert raw is not None and json.loads(raw)["category"] == "other"


# --- The command line -------------------------------------------------------------------


async def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streetfeed.cli", *args, env=service_env(settings.redis_url or ""),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_refuses_an_unknown_category_and_lists_the_codes(
        redis: Redis, settings: Settings) -> None:
    where = ("--lat", str(STREET[0]), "--lon", str(STREET[1]))
    code, out, err = await _cli(settings, "shops", "add", "--name", "Poterie",
                                "--category", "poterie", *where)
    assert code == 2 and out == "", err
    assert "unknown_category" in err and "Traceback" not in err
    assert all(c in err for c in CODES)
    assert await redis.keys("sf:shop*") == []

    code, out, err = await _cli(settings, "shops", "add", "--name", "Le Garde-Manger",
                                "--category", "Épicerie fine", *where)
    assert code == 0, err
    shop_id = json.loads(out)["id"]
    stored = await redis.get(keys.shop(shop_id))
    assert stored is not None and json.loads(stored)["category"] == "delicatessen"

    code, out, err = await _cli(settings, "shops", "update", shop_id, "--category", "nope")
    assert code != 0 and all(c in err for c in CODES), err
    assert await redis.get(keys.shop(shop_id)) == stored
    code, out, err = await _cli(settings, "shops", "update", shop_id, "--category", "fromagerie")
    assert code == 0 and json.loads(out)["category"] == "cheese", err

    code, out, err = await _cli(settings, "shops", "categories")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        msgspec.to_builtins(c) for c in CATEGORIES]
