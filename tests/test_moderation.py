"""One moderation policy for every field a passer-by reads (issue 12, finding 6).

Pure rules first (length, blank, folding of confusables; hypothesis where it pays),
then the attacks as a shopkeeper would make them against a real server: the shop's
own profile fields, disguised banned words, titles of invisible characters, bidi
overrides, and the same through the CLI. Every refusal is a 4xx with a code, and
Redis is left exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from rules import text as texts
from rules.moderation import Policy, check_post, check_shop
from runtime.settings import Settings, load_settings
from schemas.limits import TITLE_MAX
from schemas.posts import NewArrivalIn, PostIn
from tests.helpers import add_shop, arrival, send_post, service_env, web_server
from tests.test_bad_input import _snapshot_keys

STREET = (44.8370, -0.5735)
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)

# Characters a reader does not see: zero-width space, joiners, word joiner, BOM, soft
# hyphen, Mongolian vowel separator, Hangul fillers, variation selector, braille blank,
# ideographic space, no-break space, a lone combining accent.
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u3164",
             "\u115f", "\uffa0", "\ufe0f", "\u2800", "\u3000", "\u00a0", " ", "\u0301")
# Lookalikes of the letters of "casino", one table per trick.
LOOKALIKES = {
    "c": ("с", "ϲ", "ｃ", "𝐜", "ⓒ", "Ｃ"),  # Cyrillic es, Greek lunate sigma, fullwidth, ...
    "a": ("а", "ａ", "𝐚", "ⓐ", "Ａ", "á"),
    "s": ("ѕ", "ｓ", "𝐬", "ⓢ", "Ｓ", "ś"),
    "i": ("і", "ｉ", "𝐢", "ⓘ", "Ｉ", "ï"),
    "n": ("ｎ", "𝐧", "ⓝ", "Ｎ", "ñ"),
    "o": ("о", "ο", "ｏ", "𝐨", "ⓞ", "Ｏ", "ö"),
}
BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
        "\u2069")


# --- Pure rules ---------------------------------------------------------------------------


@given(st.text(alphabet=st.sampled_from(INVISIBLE), min_size=1, max_size=TITLE_MAX))
def test_text_of_invisible_characters_is_blank(value: str) -> None:
    assert texts.is_blank(value)
    rejection = check_post(NewArrivalIn(title=value), NOW, Policy())
    assert rejection is not None and rejection.code == "invalid_title"


@given(st.text(alphabet=st.sampled_from(INVISIBLE), max_size=20),
       st.characters(categories=["L", "N", "S", "P"], exclude_characters="\u2800"),
       st.text(alphabet=st.sampled_from(INVISIBLE), max_size=20))
def test_one_visible_character_is_not_blank(before: str, visible: str, after: str) -> None:
    assert not texts.is_blank(before + visible + after)


@given(st.lists(st.tuples(st.sampled_from(sorted(LOOKALIKES)), st.integers(0, 6),
                          st.sampled_from(("", "\u200b", "\u200d", "\u00ad", "\u2060"))),
                min_size=6, max_size=6))
@example([("c", 1, ""), ("a", 0, ""), ("s", 0, ""), ("i", 0, ""), ("n", 0, ""), ("o", 0, "")])
def test_disguised_banned_word_folds_to_the_word(choices: list[Any]) -> None:
    # Each letter of "casino" as itself or a lookalike, with invisible characters between.
    spelled = ""
    for letter, (_, pick, glue) in zip("casino", choices, strict=True):
        options = (letter, *LOOKALIKES[letter])
        spelled += options[pick % len(options)] + glue
    assert "casino" in texts.words(f"Grand {spelled} ce soir")
    rejection = check_post(NewArrivalIn(title=f"Grand {spelled}"), NOW,
                           Policy(banned_words=frozenset({"casino"})))
    assert rejection is not None and rejection.code == "content_rejected"


def test_word_list_matches_words_not_parts_of_words() -> None:
    policy = Policy(banned_words=frozenset({"CON"}))  # folded however the list spells it
    assert check_post(NewArrivalIn(title="Confiture maison, second arrivage"), NOW,
                      policy) is None
    assert check_post(NewArrivalIn(title="Quel ｃｏｎ"), NOW, policy) is not None
    # An entry of several words is a phrase, not each of its words.
    phrase = Policy(banned_words=frozenset({"Casino-Royal"}))
    assert check_post(NewArrivalIn(title="Royal gala, casino fermé"), NOW, phrase) is None
    rejection = check_post(NewArrivalIn(title="Soirée ᴄasino royal"), NOW, phrase)
    assert rejection is not None and rejection.code == "content_rejected"


def test_closed_embeddings_and_isolates_are_kept() -> None:
    """Phones paste numbers from contacts wrapped in LRE ... PDF (cold try: such a post was
    refused with a message a shopkeeper could not act on)."""
    for text in ("Par téléphone au +33 \u202a5 56 12 34 56\u202c, merci !",
                 "\u2067مرحبا\u2069 et bienvenue", "\u2066a \u202bb\u202c\u2069"):
        assert check_post(NewArrivalIn(title="Commandes", text=text), NOW, Policy()) is None
        assert check_shop({"address": text[:80]}, Policy()) is None
    for text in ("\u202da\u202c", "\u2066a\u202c", "\u2066\u202ab\u2069\u202c"):
        rejection = check_post(NewArrivalIn(title="x", text=text), NOW, Policy())
        assert rejection is not None and rejection.code == "bidi_control", text


def test_ordinary_french_text_is_left_alone() -> None:
    for title in ("Fraises de Plougastel -30 % < 5 €", "Pâtisserie « L'Épi d'or » ouvre à 7h",
                  "Surface 40 m² — ½ prix", "Ouvert jusqu'à 20 h", "🍓🍓🍓 arrivage",
                  # Not markup (cold try: both were refused as HTML): no tag, no handler.
                  "Pose d'ongles = 35 € aujourd'hui", "onctueux = cacao 70 % + lait entier",
                  "שלום \u200fעולם", "مرحبا"):
        assert check_post(NewArrivalIn(title=title), NOW, Policy()) is None, title


_NO_BIDI = st.text(st.characters(blacklist_characters=BIDI), max_size=30)


@given(_NO_BIDI, st.sampled_from(BIDI), _NO_BIDI)
def test_a_lone_bidi_control_is_refused_in_every_field(before: str, control: str,
                                                       after: str) -> None:
    """An override anywhere, or an embedding or isolate never closed (or a closer never
    opened): each can reorder the text around it."""
    value = (before + control + after)[:TITLE_MAX] or control
    for rejection in (check_post(NewArrivalIn(title=value), NOW, Policy()),
                      check_shop({"name": value}, Policy()),
                      check_shop({"address": value}, Policy())):
        assert rejection is not None
        # Whatever else is wrong with it, it is refused; a bidi control, or an earlier rule.
        assert rejection.code in {"bidi_control", "control_characters"}


def test_fullwidth_markup_and_links_are_what_they_look_like() -> None:
    policy = Policy(max_links=0)
    for title, code in (("＜ｓｃｒｉｐｔ＞alert(1)", "markup_not_allowed"),
                        ("voir ｗｗｗ．exemple．fr", "too_many_links"),
                        ("voir www\u200b.exemple.fr", "too_many_links"),
                        ("C1 control \x85 here", "control_characters")):
        rejection = check_post(NewArrivalIn(title=title), NOW, policy)
        assert rejection is not None and rejection.code == code, title


_decode_post = msgspec.json.Decoder(PostIn).decode


@given(st.lists(st.sampled_from(("🍓", "👨‍👩‍👧", "é", "e\u0301", "中", "😀")), max_size=60))
def test_title_length_is_code_points(parts: list[str]) -> None:
    """One definition: the schema's limit is code points, as the console counts them."""
    title = "".join(parts)
    body = json.dumps({"kind": "new_arrival", "title": title}).encode()
    fits = 1 <= texts.length(title) <= TITLE_MAX
    try:
        _decode_post(body)
        accepted = True
    except msgspec.ValidationError:
        accepted = False
    assert accepted == fits


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_folding_never_fails_and_is_stable(value: str) -> None:
    folded = texts.fold(value)
    assert texts.fold(folded) == folded  # idempotent: a folded list folds to itself
    assert isinstance(texts.words(value), list)


# --- Against a real server ------------------------------------------------------------------


def _strict(settings_: Settings, tmp_path: Path) -> Settings:
    words = tmp_path / "banned.txt"
    words.write_text("casino\n")
    return load_settings({"STREETFEED_BANNED_WORDS_FILE": str(words)},
                         redis_url=settings_.redis_url, shop_posts_per_minute=100_000,
                         address_requests_per_minute=100_000)


BAD_PROFILES: list[tuple[dict[str, str], str]] = [
    ({"name": "<script>alert(1)</script>"}, "markup_not_allowed"),
    ({"name": "Chez Paul<img src=x onerror=alert(1)>"}, "markup_not_allowed"),
    ({"name": "Evil\u202e shop"}, "bidi_control"),
    ({"address": "12 rue\u2067 Sainte-Catherine"}, "bidi_control"),
    ({"name": "Le ＣＡＳＩＮＯ"}, "content_rejected"),
    ({"name": "Le cas\u200bino"}, "content_rejected"),
    ({"address": "www.promo.example"}, "too_many_links"),
    ({"name": "\u200b\u200d\u3164"}, "blank_text"),
    ({"name": "Tabac\x07"}, "control_characters"),
    # Names (cold try of issue 16): one line, no stacked marks, one script per word.
    ({"name": "Tabac\nInjected: yes"}, "control_characters"),
    ({"name": "Tabac\r\nLe Khédive"}, "control_characters"),
    ({"name": "Tabac\U000e0041\U000e0042"}, "control_characters"),
    ({"name": "Ta" + "\u0301" * 59 + "bac"}, "stacked_marks"),
    ({"name": "Tabac Lе Khédive"}, "mixed_scripts"),  # a Cyrillic е
    # A category is a code (tests/test_categories.py), never text of the shop's own.
    ({"category": "ϲаѕіnо"}, "unknown_category"),
    ({"category": "https://promo.example"}, "unknown_category"),
    ({"category": "\u2800\u2800"}, "unknown_category"),
]


async def test_shop_profile_fields_get_the_posts_policy(redis: Redis, settings: Settings,
                                                        tmp_path: Path) -> None:
    strict = _strict(settings, tmp_path)
    shop = await add_shop(redis, strict, "Tabac", *STREET)
    auth = {"Authorization": f"Bearer {shop.token}"}
    async with web_server(strict) as web, httpx.AsyncClient(base_url=web.http) as http:
        before = await _snapshot_keys(redis)
        for body, code in BAD_PROFILES:
            response = await http.patch(f"/api/v1/shops/{shop.id}", json=body, headers=auth)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["code"] == code, body
        note = {"timezone": "Europe/Paris", "exceptions": [
            {"date": "2026-12-25", "ranges": [], "note": "Noël <script>x</script>"}]}
        response = await http.put(f"/api/v1/shops/{shop.id}/hours", json=note, headers=auth)
        assert (response.status_code, response.json()["error"]["code"]) == (
            422, "markup_not_allowed")
        assert await _snapshot_keys(redis) == before
        # The control case: an ordinary change goes through.
        response = await http.patch(f"/api/v1/shops/{shop.id}",
                                    json={"name": "Tabac « Le Khédive »"}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Tabac « Le Khédive »"


BAD_POSTS: list[tuple[dict[str, Any], str]] = [
    (arrival("ϲаѕіnо ce soir"), "content_rejected"),
    (arrival("Grand ＣＡＳＩＮＯ"), "content_rejected"),
    (arrival("Grand cas\u200bi\u200dno"), "content_rejected"),
    (arrival("Soirée", text="au 𝐜𝐚𝐬𝐢𝐧𝐨 du coin"), "content_rejected"),
    (arrival("Soirée", tags=["ⓒⓐⓢⓘⓝⓞ"]), "content_rejected"),
    (arrival("\u200b\u200b\u200b"), "invalid_title"),
    (arrival("\u3164\u3164"), "invalid_title"),
    (arrival("\u2800 \ufe0f"), "invalid_title"),
    (arrival("Promo\u202e 30 %"), "bidi_control"),
    (arrival("Promo", text="fin\u2066"), "bidi_control"),
    (arrival("Promo", tags=["bio\u202d"]), "bidi_control"),
    (arrival("Promo", tags=["<svg onload=x>"]), "markup_not_allowed"),
    (arrival("Promo", tags=["www.promo.example"]), "too_many_links"),
    (arrival("Promo", tags=["\u200b"]), "blank_text"),
    (arrival("＜ｓｃｒｉｐｔ＞alert(1)＜／ｓｃｒｉｐｔ＞"), "markup_not_allowed"),
    (arrival("Promo", text="fin\U000e0069\U000e0067\U000e006e"), "control_characters"),
]


async def test_disguised_words_invisible_titles_and_bidi_are_refused(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    strict = _strict(settings, tmp_path)
    shop = await add_shop(redis, strict, "Tabac", *STREET)
    async with web_server(strict) as web, httpx.AsyncClient(base_url=web.http) as http:
        before = await _snapshot_keys(redis)
        for body, code in BAD_POSTS:
            response = await send_post(http, shop, body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["code"] == code, body
            assert response.json()["error"]["message"]
        assert await _snapshot_keys(redis) == before
        # 80 emoji are 80 characters of the contract (160 UTF-16 units): accepted.
        assert (await send_post(http, shop, arrival("🍓" * TITLE_MAX))).status_code == 202
        too_long = await send_post(http, shop, arrival("🍓" * (TITLE_MAX + 1)))
        assert (too_long.status_code, too_long.json()["error"]["code"]) == (422, "invalid_post")


@pytest.mark.parametrize(("name", "code"), [("Evil\u202e shop", "bidi_control"),
                                            ("\u200b\u200b", "blank_text"),
                                            ("<script>x</script>", "markup_not_allowed")])
async def test_cli_shops_add_refuses_what_the_api_refuses(redis: Redis, settings: Settings,
                                                          name: str, code: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streetfeed.cli", "shops", "add", "--name", name, "--category",
        "tabac", "--lat", str(STREET[0]), "--lon", str(STREET[1]),
        env=service_env(settings.redis_url or ""), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    stderr = err.decode()
    assert process.returncode == 2, stderr
    assert code in stderr and "Traceback" not in stderr
    assert await redis.keys("sf:shop*") == []


async def test_what_shopkeepers_really_type_is_accepted_end_to_end(
        redis: Redis, settings: Settings) -> None:
    """Cold try of issue 12 on a phone: these were refused (a number pasted from contacts
    with its direction marks; '=' after a word starting with 'on')."""
    shop = await add_shop(redis, settings, "Onglerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for body in (arrival("Commandes", text="Par téléphone au +33 \u202a5 56 12 34 56\u202c"),
                     arrival("Pose d'ongles = 35 € aujourd'hui"),
                     arrival("Chocolat chaud", text="onctueux = cacao 70 % + lait entier")):
            response = await send_post(http, shop, body)
            assert response.status_code == 202, (body, response.text)
        renamed = await http.patch(f"/api/v1/shops/{shop.id}",
                                   headers={"Authorization": f"Bearer {shop.token}"},
                                   json={"address": "Tél. \u202a+33 5 56 12 34 56\u202c"})
        assert renamed.status_code == 200, renamed.text


def test_thin_spaces_and_annotation_anchors_do_not_hide_words_or_fill_titles() -> None:
    """Cold try of issue 12: 'cas<HAIR SPACE>ino' showed 'casino' and passed the list; a
    title of U+FFF9-U+FFFB showed nothing and was accepted."""
    policy = Policy(banned_words=frozenset({"casino"}))
    for title in ("Best cas\u200aino in town", "cas\u2009ino", "ca\u2006sino"):
        rejection = check_post(NewArrivalIn(title=title), NOW, policy)
        assert rejection is not None and rejection.code == "content_rejected", title
    rejection = check_post(NewArrivalIn(title="\ufff9\ufffa\ufffb"), NOW, Policy())
    assert rejection is not None
    assert check_post(NewArrivalIn(title="Lot de 3\u202f500 bouteilles"), NOW, policy) is None


def test_names_are_one_line_one_script_per_word_without_stacked_marks() -> None:
    """Cold try of issue 16: a newline, 59 stacked accents, invisible tag characters and a
    Cyrillic or Greek letter inside a Latin word were accepted in names."""
    for name, code in (("Ferme\nInjected: yes", "control_characters"),
                       ("Ferme\u2028Injected", "control_characters"),
                       ("Fe\U000e0020rme", "control_characters"),
                       ("Fe" + "\u0301" * 59 + "rme", "stacked_marks"),
                       ("Ferme" + "\u0301\u0302\u0303\u0304", "stacked_marks"),
                       ("Ferme des Trois Chênеs", "mixed_scripts"),  # Cyrillic е
                       ("Ferme des Trοis Chênes", "mixed_scripts"),  # Greek ο
                       ("Ｆerme Ꭺbc", "mixed_scripts"),  # Cherokee A, fullwidth is Latin
                       # A cold attacker's: characters shown text hides or draws as anything
                       ("Ferme\tdes Trois", "control_characters"),
                       ("Ferme \ue000", "control_characters"),  # private use
                       ("Ferme \ufffe", "control_characters"),  # a noncharacter
                       ("Ferme\ufff9cachée\ufffb", "control_characters")):
        rejection = check_shop({"name": name}, Policy())
        assert rejection is not None and rejection.code == code, name
    for name in ("Phở Hà Nội", "Kırmızı Çiftlik", "Ферма Иванова", "Κτήμα Λάζαρη",
                 "やまだ農園", "田中ファーム", "Ferme 🏴\U000e0067\U000e0062\U000e0073"
                 "\U000e0063\U000e0074\U000e007f", "Cave L'Épi d'Or n°2", "Ｆｅｒｍｅ",
                 "Boucherie 𝐁𝐢𝐨", "Straße 12 ½", "e\u0301\u0302\u0323",
                 "Café Αλφα", "Taverne Ελληνική", "Épicerie Москва",
                 # a whole word in look-alikes is one script: the twin check folds it
                 # (rules.producers), a name is not refused for it
                 "Moulin \u0501\u0435 Saint-Émilion"):
        assert check_shop({"name": name}, Policy()) is None, name
    assert texts.script_of("е") == "CYRILLIC" and texts.script_of("ı") == "LATIN"
    assert texts.script_of("1") is None and texts.script_of("\u0301") is None
    # A post's text keeps its lines; an address too (it may be written on two).
    assert check_post(NewArrivalIn(title="Arrivage", text="Fraises\nCerises"), NOW,
                      Policy()) is None
    assert check_shop({"address": "12 rue Sainte-Catherine\n33000 Bordeaux"}, Policy()) is None
