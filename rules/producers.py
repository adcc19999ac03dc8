"""Local producers without storage: when two are one, how far, and what is "local" (pure).

**Sameness.** DESIGN.md section 9: "a producer with the same name (case and accents
folded) within 2 km of an existing one is the same producer". `fold_name` is that name
key; `same_producer` adds the distance, `PRODUCER_SAME_WITHIN_M` with its boundary
included (exactly 2,000 m apart is "within 2 km", as a feed's radius includes its edge).

`fold_name` folds what two shopkeepers typing the same producer's sign differ in, and
nothing that names another producer:

- the shown form (rules.text.shown_form: NFKC, default-ignorables removed), so a
  fullwidth, ligatured (`ﬁ`) or zero-width-spaced spelling is the plain one;
- case (`casefold`, so `ß` is `ss`) and accents (canonical decomposition, combining marks
  dropped: `É` is `e`, `ç` is `c`), plus the letters French and its neighbours write with
  or without a ligature or stroke, which no decomposition splits: `œ` `oe`, `æ` `ae`,
  `ø` `o`, `ł` `l`, `đ` `d` ("Bœuf" and "Boeuf" are one farm), and the dotless `ı`
  `i` (Turkish "Kırmızı" typed on a French keyboard; and "Troıs" would otherwise be a
  twin of "Trois" that looks the same: a letter of another script inside a word is
  refused instead, rules.moderation.check_name);
- punctuation and white space: every run of characters that are neither letters nor
  digits is one space, and the ends are trimmed, so "Saint-Émilion", "Saint Émilion",
  "saint  emilion " and "Saint–Émilion" (en dash) are one, and so are the ASCII and the
  typographic apostrophe of "L'Épi d'Or" / "L’Épi d’Or";
- in a name with Latin letters, the Cyrillic and Greek letters that look Latin
  (`_LATIN_LOOKALIKES`): a whole word in them is one script, which check_name lets pass,
  and "Moulin ԁе Saint-Émilion" would otherwise be a twin of the mill that looks the same.

Not folded: abbreviations ("St" is not "Saint"), word order, `&` against "et", digits
that look like letters (decancer's folding, right for a word list, would make "0" an
"o"), and the letters of a name wholly in another script: guessing there would merge
two real producers, and a shop that misses a twin finds it in the console's search.
Digits stay ("Ferme 2" is not "Ferme 3"). A name made of nothing but punctuation keeps
its case-folded shown form, so it only matches itself.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable

import regex

from rules.geo import haversine_m
from rules.text import script_of, shown_form
from schemas.limits import PRODUCER_SAME_WITHIN_M
from schemas.producers import ProducerOut, ProducerRecord, ProducerRef

__all__ = ["any_local", "distance_km", "fold_name", "producer_out", "same_producer"]

# Letters that are a ligature or carry a stroke: no Unicode decomposition removes them.
_PLAIN_LETTERS = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d",
                                "ı": "i"})
# Runs of anything but letters, marks and digits (`_` is a word character to \w: not here).
_SEPARATORS = regex.compile(r"[^\p{L}\p{M}\p{N}]+")


# Cyrillic and Greek letters (case-folded, accents gone) that pass for Latin ones in the
# fonts phones use (Unicode's confusables): in a name that has Latin letters they are read
# as those, so that "Moulin ԁе Saint-Émilion" (its "de" in Cyrillic, each word of one
# script) is the mill it looks like, not its twin (a cold attacker's). A name with no
# Latin letter keeps its own: "Ферма" and "Ϙερμα" are not "фepma".
_LATIN_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁԛԝѵӏвкмнтαορτυνκχιβεζημ",
    "aeopcyxijsdqwvlbkmhtaoptuvkxibezhm")


def fold_name(name: str) -> str:
    """The key two names share when they name the same producer (see the module docstring)."""
    shown = shown_form(name).casefold()
    bare = "".join(c for c in unicodedata.normalize("NFD", shown)
                   if not unicodedata.combining(c))
    folded = _SEPARATORS.sub(" ", bare.translate(_PLAIN_LETTERS)).strip()
    if any(script_of(c) == "LATIN" for c in folded):
        folded = folded.translate(_LATIN_LOOKALIKES)
    return unicodedata.normalize("NFC", folded) if folded else shown


def same_producer(folded_a: str, lat_a: float, lon_a: float,
                  folded_b: str, lat_b: float, lon_b: float) -> bool:
    """Whether two producers (their `fold_name`s and positions) are one."""
    return (folded_a == folded_b
            and haversine_m(lat_a, lon_a, lat_b, lon_b) <= PRODUCER_SAME_WITHIN_M)


def distance_km(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    """The delivered `distance_km`: one decimal, half up on 100 m (34.95 km is 35.0)."""
    return math.floor(haversine_m(lat_a, lon_a, lat_b, lon_b) / 100 + 0.5) / 10


def producer_out(ref: ProducerRef | ProducerRecord, lat: float, lon: float) -> ProducerOut:
    """A producer as shown from a shop at (lat, lon)."""
    return ProducerOut(id=ref.id, name=ref.name, place=ref.place,
                       distance_km=distance_km(lat, lon, ref.lat, ref.lon))


def any_local(distances_km: Iterable[float], local_km: float) -> bool:
    """A post is "local" when one of its producers is at most `local_km` from its shop, by
    the distance it delivers: what a client reads on the card is what the filter decided."""
    return any(d <= local_km for d in distances_km)

