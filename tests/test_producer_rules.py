"""Local producers' pure rules (rules/producers.py, rules/moderation.py): name folding, the
2 km sameness boundary, the delivered one-decimal distance, what "local" means."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rules.enrich import Enriched, enrich
from rules.geo import EARTH_RADIUS_M, haversine_m
from rules.moderation import Policy, check_producer
from rules.producers import any_local, distance_km, fold_name, same_producer
from schemas.limits import PRODUCER_SAME_WITHIN_M
from schemas.posts import NewArrivalIn, RawPost
from schemas.producers import ProducerRef
from tests.test_pure import NOW, PARIS, _shop

MILL = (44.8940, -0.1550)  # Saint-Émilion


def offset(lat: float, lon: float, dist_m: float, bearing: float) -> tuple[float, float]:
    """The point `dist_m` from (lat, lon) along `bearing` (radians)."""
    d = dist_m / EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize(("a", "b"), [
    ("Moulin de Saint-Émilion", "moulin de saint emilion"),
    ("MOULIN DE SAINT-ÉMILION", "Moulin  de Saint Emilion "),
    ("Moulin de Saint–Émilion.", "moulin de saint emilion"),  # en dash, full stop
    ("L'Épi d'Or", "L’Épi d’Or"),  # ASCII and typographic apostrophes
    ("Ferme du Bœuf", "ferme du boeuf"),
    ("Château Lafleur", "CHATEAU LAFLEUR"),
    ("Brasserie Straße", "brasserie strasse"),
    ("Ｆｅｒｍｅ　Ｌａｇｕｅ", "ferme lague"),  # fullwidth
    ("Cave\u200b Dubois", "cave dubois"),  # a zero-width space inside
    ("Maraîcher_Garonne", "maraicher garonne"),
    # The dotless ı: typed without a Turkish keyboard, and a twin that looks the same.
    ("Kırmızı Çiftlik", "Kirmizi Ciftlik"),
    ("Ferme des Troıs Chênes", "Ferme des Trois Chênes"),
    # A whole word of Cyrillic or Greek look-alikes beside Latin ones (a cold attacker's
    # twin of the mill: its "de" in Cyrillic, and in Greek capitals).
    ("Moulin \u0501\u0435 Saint-Émilion", "Moulin de Saint-Émilion"),
    ("Ferme ΚΟΡΑ", "Ferme kopa"),
])
def test_the_same_producer_folds_alike(a: str, b: str) -> None:
    assert fold_name(a) == fold_name(b)


@pytest.mark.parametrize(("a", "b"), [
    ("Ferme 2", "Ferme 3"),  # digits name different producers
    ("Moulin de St-Émilion", "Moulin de Saint-Émilion"),  # abbreviations are not guessed
    ("Moulin du Lac", "Lac du Moulin"),  # word order is not folded
    ("Cave & Co", "Cave et Co"),
    ("!!!", "???"),  # nothing but punctuation keeps its own text
    ("Ферма", "фepma"),  # a name wholly in Cyrillic keeps its letters
])
def test_other_producers_stay_apart(a: str, b: str) -> None:
    assert fold_name(a) != fold_name(b)


latin = st.text(st.sampled_from("abcdeéèêëàâîïôöùûüçœæABCDEÉÈÀÇŒ -'’.,0123"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(latin)
def test_folding_is_idempotent_and_ignores_case_and_separators(name: str) -> None:
    folded = fold_name(name)
    assert fold_name(folded) == folded
    assert fold_name(name.upper()) == folded or not folded.strip()
    spaced = " - ".join(name.split(" "))
    assume(any(c.isalnum() for c in name))
    assert fold_name(spaced) == folded


def test_two_km_apart_is_the_boundary() -> None:
    name = fold_name("Moulin de Saint-Émilion")
    near = offset(*MILL, 1900, 1.0)
    far = offset(*MILL, 2100, 1.0)
    assert same_producer(name, *MILL, name, *near)
    assert not same_producer(name, *MILL, name, *far)
    # The same place under another name is another producer.
    assert not same_producer(name, *MILL, fold_name("Moulin de Libourne"), *MILL)


@settings(max_examples=300, deadline=None)
@given(st.floats(1990, 2010), st.floats(0, 2 * math.pi))
def test_within_two_km_includes_the_edge(dist: float, bearing: float) -> None:
    """Exactly the rule: at most PRODUCER_SAME_WITHIN_M by rules.geo, the edge included."""
    other = offset(*MILL, dist, bearing)
    measured = haversine_m(*MILL, *other)
    assert same_producer("x", *MILL, "x", *other) == (measured <= PRODUCER_SAME_WITHIN_M)


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 400_000), st.floats(0, 2 * math.pi))
def test_distance_has_one_decimal_half_up(dist: float, bearing: float) -> None:
    other = offset(*MILL, dist, bearing)
    km = distance_km(*MILL, *other)
    exact = haversine_m(*MILL, *other) / 1000
    assert round(km, 1) == km
    assert exact - 0.05 - 1e-9 <= km <= exact + 0.05 + 1e-9


def test_distance_examples() -> None:
    assert distance_km(*MILL, *MILL) == 0.0
    assert distance_km(*MILL, *offset(*MILL, 34_949, 0.3)) == 34.9
    assert distance_km(*MILL, *offset(*MILL, 34_951, 0.3)) == 35.0


def test_local_is_judged_on_the_delivered_distance() -> None:
    assert any_local([150.0, 100.0], 100)
    assert not any_local([100.1], 100)
    assert not any_local([], 100)


def test_enrichment_delivers_producers_and_decides_local() -> None:
    shop = _shop()
    near = offset(shop.lat, shop.lon, 35_000, 2.0)
    far = offset(shop.lat, shop.lon, 150_000, 2.0)
    refs = [ProducerRef(id="pr_aaaaaaaaaaaaaaaa", name="Ferme Loin", place="Loin", lat=far[0],
                        lon=far[1]),
            ProducerRef(id="pr_bbbbbbbbbbbbbbbb", name="Moulin", place="Près", lat=near[0],
                        lon=near[1])]

    def enriched(producers: list[ProducerRef], local_km: float = 100.0) -> Enriched:
        raw = RawPost(id="p_abcdefghijklmnop", shop_id=shop.id, accepted_at=NOW,
                      body=NewArrivalIn(title="Farine"), producers=producers)
        out = enrich(raw, shop, now=NOW, tz=PARIS, policy=Policy(), local_km=local_km)
        assert isinstance(out, Enriched)
        return out

    both = enriched(refs)
    assert [(p.id, p.name, p.place, p.distance_km) for p in both.post.producers] == [
        ("pr_aaaaaaaaaaaaaaaa", "Ferme Loin", "Loin", 150.0),
        ("pr_bbbbbbbbbbbbbbbb", "Moulin", "Près", 35.0)]
    assert both.local
    assert b'"producers":[{"id":"pr_aaaaaaaaaaaaaaaa","name":"Ferme Loin"' in both.json
    assert not enriched(refs[:1]).local
    assert enriched(refs[:1], local_km=150).local
    assert not enriched([]).local


@pytest.mark.parametrize(("name", "place", "code"), [
    ("<b>Moulin</b>", "Saint-Émilion", "markup_not_allowed"),
    ("Moulin", "www.moulin.fr", "too_many_links"),
    ("\u200b\u200b", "Saint-Émilion", "blank_text"),
    ("Moulin", "Saint\u202eÉmilion", "bidi_control"),
    ("Moulin\x07", "Saint-Émilion", "control_characters"),
    ("Moulin casino", "Saint-Émilion", "content_rejected"),
    # Cold try of issue 16: each was accepted.
    ("Ferme\nInjected: yes", "Saint-Émilion", "control_characters"),
    ("Moulin", "Saint-Émilion\r", "control_characters"),
    ("Moulin\U000e0049\U000e0067", "Saint-Émilion", "control_characters"),
    ("o" + "\u0301" * 59, "Saint-Émilion", "stacked_marks"),
    ("Ferme des Trois Chênеs", "Saint-Émilion", "mixed_scripts"),  # Cyrillic е
    ("Moulin", "Saint-Émiliοn", "mixed_scripts"),  # Greek ο
])
def test_producer_text_follows_the_text_policy(name: str, place: str, code: str) -> None:
    rejection = check_producer(name, place, Policy(banned_words=frozenset({"casino"})))
    assert rejection is not None and rejection.code == code
    assert check_producer("Moulin de Saint-Émilion", "Saint-Émilion", Policy()) is None
