"""Content policy for everything a passer-by reads: pure checks, run at the API edge
(posts, shop profiles, opening-hours notes), by the CLI, and again in the enricher.

Size limits are in the schemas; this adds what a schema cannot say, the same for every
field (rules.text says what text is): no control or bidi control characters, no
markup or script, links only where a post allows them, required fields that are more
than blanks, and the deployment's own word list compared on folded words (confusables,
fullwidth and zero-width spellings included).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import regex

from rules import text as texts
from schemas.hours import ShopHours
from schemas.limits import FLASH_OFFER_MAX_AHEAD_S
from schemas.posts import FlashOfferIn, OpeningChangeIn, PostIn

__all__ = ["OPENING_UNTIL_MAX_AHEAD_S", "Policy", "Rejection", "check_hold_name", "check_hours",
           "check_name", "check_post", "check_producer", "check_shop"]

# A tag (`<b>`, `<div onclick=...>`), a dangerous tag left open, or a javascript: URL.
# Not a bare `word=`: "onctueux = cacao 70 %" or "Pose d'ongles = 35 €" are French, and an
# event handler runs only inside a tag (pages render text as text besides).
_MARKUP = re.compile(r"<\s*/?\s*[a-z][a-z0-9-]*(\s[^<>]*)?/?\s*>|"
                     r"<\s*/?\s*(script|iframe|object|embed|style|svg|img|a|link|meta|math)\b|"
                     r"javascript:", re.IGNORECASE)
_LINK = re.compile(r"\bhttps?://|\bwww\.", re.IGNORECASE)
# An opening change announces the near future; a week covers "closed until Monday".
OPENING_UNTIL_MAX_AHEAD_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Policy:
    max_links: int = 1
    # As the deployment lists them (any case or spelling: they are folded like the text).
    banned_words: frozenset[str] = frozenset()
    # Each entry folded into its words: one word, or a phrase ("casino-royal") matched
    # as consecutive words, never as its parts.
    _banned: frozenset[tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = (tuple(texts.words(entry)) for entry in self.banned_words)
        object.__setattr__(self, "_banned", frozenset(f for f in folded if f))

    def allows(self, value: str) -> bool:
        """No entry of the word list among the text's words (folded on both sides)."""
        if not self._banned:
            return True
        found = texts.words(value)
        for size in {len(entry) for entry in self._banned}:
            for i in range(len(found) - size + 1):
                if tuple(found[i:i + size]) in self._banned:
                    return False
        return True


def check_text(value: str, what: str, policy: Policy, *, required: bool = False,
               blank_code: str = "blank_text") -> Rejection | None:
    """One field's text: the rules every field shares (links are counted by the caller).

    `what` names the field in the message ("title", "shop name"...)."""
    if texts.CONTROL_CHARACTERS.search(value):
        return Rejection("control_characters", f"{what} contains control characters")
    if texts.bidi_unsafe(value):
        return Rejection("bidi_control",
                         f"{what} contains a direction override (U+202D, U+202E) or a "
                         "direction embedding or isolate left open, which can reorder the "
                         "text around it: retype the text without them")
    if texts.has_tag_characters(value):
        return Rejection("control_characters",
                         f"{what} contains invisible tag characters (U+E0000-U+E007F)")
    if required and texts.is_blank(value):
        return Rejection(blank_code, f"{what} must contain more than blanks")
    shown = texts.shown_form(value)
    if _MARKUP.search(shown):
        return Rejection("markup_not_allowed",
                         f"{what}: HTML markup and scripts are not allowed")
    if not policy.allows(value):
        return Rejection("content_rejected",
                         f"{what} contains words this street does not allow")
    return None


def check_name(value: str, what: str, policy: Policy) -> Rejection | None:
    """A name's text (a shop's, a producer's name or place: rules.text says why): every
    field's rules, then one line, no stacked marks, one script per word, and no links."""
    rejection = check_text(value, what, policy, required=True)
    if rejection is not None:
        return rejection
    if texts.LINE_BREAKS.search(value):
        return Rejection("control_characters", f"{what} must be one line")
    if texts.has_odd_characters(value):
        return Rejection("control_characters",
                         f"{what} contains a tab, a private-use or a hidden character")
    if texts.stacked_marks(value):
        return Rejection("stacked_marks",
                         f"{what}: at most {texts.NAME_MARKS_MAX} accents on one letter")
    word = texts.mixed_script_word(value)
    if word is not None:
        return Rejection("mixed_scripts",
                         f"{what}: the word {word!r} mixes letters of different alphabets "
                         "(a Cyrillic or Greek letter that looks Latin?): retype it")
    return _no_links(value, what)


def links_in(value: str) -> int:
    return len(_LINK.findall(texts.shown_form(value)))


def _no_links(value: str, what: str) -> Rejection | None:
    if links_in(value):
        return Rejection("too_many_links", f"{what}: links are not allowed here")
    return None


def check_post(post: PostIn, now: datetime, policy: Policy) -> Rejection | None:
    rejection = (check_text(post.title, "title", policy, required=True,
                            blank_code="invalid_title")
                 or check_text(post.text, "text", policy))
    if rejection is not None:
        return rejection
    for tag in getattr(post, "tags", ()):
        rejection = (check_text(tag, "tag", policy, required=True)
                     or _no_links(tag, "tag"))
        if rejection is not None:
            return rejection
    if links_in(post.title) + links_in(post.text) > policy.max_links:
        return Rejection("too_many_links", f"at most {policy.max_links} link(s) per post")
    if isinstance(post, FlashOfferIn):
        if post.ends_at <= now:
            return Rejection("ends_at_in_past", "ends_at must be in the future")
        if post.ends_at > now + timedelta(seconds=FLASH_OFFER_MAX_AHEAD_S):
            return Rejection("ends_at_too_far", "ends_at must be at most 24 hours ahead")
    if isinstance(post, OpeningChangeIn) and post.until is not None:
        if post.until <= now:
            return Rejection("until_in_past", "until must be in the future")
        if post.until > now + timedelta(seconds=OPENING_UNTIL_MAX_AHEAD_S):
            return Rejection("until_too_far", "until must be at most 7 days ahead")
    return None


# A shop's public text: (field, words for messages, must it show something?). Not its
# category: a code of schemas.categories (rules.categories), never the shop's own words.
SHOP_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("name", "shop name", True), ("address", "address", False))


def check_shop(fields: dict[str, object], policy: Policy) -> Rejection | None:
    """The public text of a shop profile (only the fields given, for an update)."""
    for name, what, required in SHOP_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            rejection = (check_name(value, what, policy) if name == "name"
                         else (check_text(value, what, policy, required=required)
                               or _no_links(value, what)))
            if rejection is not None:
                return rejection
    return None


def check_hours(hours: ShopHours, policy: Policy) -> Rejection | None:
    """Opening-hours notes are public (GET .../hours) like the rest of the profile."""
    notes: Iterable[str] = (e.note for e in hours.exceptions if e.note)
    for note in notes:
        rejection = check_text(note, "note", policy) or _no_links(note, "note")
        if rejection is not None:
            return rejection
    return None


def check_producer(name: str, place: str, policy: Policy) -> Rejection | None:
    """A producer's name and place, shown on cards and its page: a shop's name's rules
    (check_name)."""
    for value, what in ((name, "producer name"), (place, "producer place")):
        rejection = check_name(value, what, policy)
        if rejection is not None:
            return rejection
    return None


# A first name is letters and their marks, and what joins them: spaces, hyphens,
# apostrophes, a dot after an initial ("J.P.", "Jr."), the Catalan "l·l", the Hebrew
# geresh and the katakana middle dot. Nothing else: no symbol, bracket, comma or "blank"
# that prints as nothing (the braille blank U+2800, U+FFFC, U+FFFD, U+1D159 passed a cold
# attacker's try as a 30-wide gap), no number of any script (fullwidth digits, ①Ⅻ²).
_NAME_CHARS = regex.compile(
    r"[\p{L}\p{M} \u00a0\-\u2010\u2011'\u2019\u02bc.\u00b7\u05f3\u30fb]+")
# The Catalan middle dot sits between two l's ("Gal·la"), never anywhere else.
_STRAY_MIDDLE_DOT = regex.compile(r"(?<![lL])\u00b7|\u00b7(?![lL])")
# Contact details spelled in letters (after NFKC, which folds the fullwidth ＠ and the
# small ﹫ to "@" and fullwidth letters to ASCII; compared case-folded): an "at" sign; a
# word that looks like a domain, a dot between letters and two or more letters after it
# ("gmail.com", "marie.dupont.fr"; "Jr." and "J.P." are no domain) or a spaced dot
# before a top-level domain ("marie gmail . fr", "gmail. com"; not "J. De La Cruz");
# "arobase", the French "at"; "at" or "chez" before a mail provider; "dot" or "point"
# before a top-level domain; a mail provider's own name. Numbers spelled out in words
# ("zéro six douze...") cannot be told from names and pass.
_TLD = r"(com|fr|net|org|eu|be|ch|de|es|it|uk|io|info|me|biz|co)"
_PROVIDERS = (r"(gmail|googlemail|hotmail|yahoo|outlook|live|msn|icloud|orange|free|sfr|"
              r"laposte|wanadoo|gmx|aol|proton|protonmail|yandex|mail|email|skynet|bluewin)")
_CONTACT = regex.compile(
    r"@|\w[.。][^\W\d_]{2,}|\s[.。]\s*" + _TLD + r"\b|[.。]\s+(com|net|org)\b|\barobase\b"
    r"|\b(at|chez|a)\s+" + _PROVIDERS + r"\b|\b(dot|point)\s+" + _TLD + r"\b"
    r"|\b(gmail|googlemail|hotmail|yahoo|outlook|icloud|wanadoo|laposte|protonmail)\b")
# Invisible characters a name never needs: format characters (zero-width spaces and
# joiners, soft hyphens, word joiners...) and what else shown text hides (fillers,
# variation selectors), which would otherwise stay in the stored name.
_INVISIBLE = regex.compile(r"[\p{Cf}\p{Default_Ignorable_Code_Point}]")


def check_hold_name(name: str, policy: Policy) -> Rejection | None:
    """A hold's first name, shown in the shop's console and said at the till: a name's
    rules (check_name), nothing invisible, only what names are written with, and no
    contact details (a first name, not a phone number or an address left with the shop)."""
    rejection = check_name(name, "first name", policy)
    if rejection is not None:
        return rejection
    if _INVISIBLE.search(name):
        return Rejection("control_characters",
                         "first name contains invisible characters (zero-width or format)")
    if not _NAME_CHARS.fullmatch(name) or _STRAY_MIDDLE_DOT.search(name):
        return Rejection("invalid_name", "a first name only: letters, spaces, hyphens and "
                         "apostrophes; no digits, no e-mail or web address")
    if _CONTACT.search(unicodedata.normalize("NFKC", name).casefold()):
        return Rejection("invalid_name", "a first name only: no digits, no e-mail or web "
                         "address")
    return None
