"""What user text is, for every field a passer-by sees (pure; used by rules.moderation).

A shop's name and address, a post's title, text and tags, an opening-hours note:
shopkeepers type them, passers-by read them on cards, screens and map popups (a shop's
category is not among them: it is a code, rules.categories).
The rules here are the ones every such field shares:

- Length is counted in Unicode code points (`len(str)`), the unit of the contract's
  "title (1-80 chars)", of msgspec's `max_length` and of JSON Schema's `maxLength` in
  /openapi.json; the console counts the same way (`[...s].length` in web/static/shop.js).
  Graphemes were the other choice: they need the same Unicode version on both sides,
  and a browser's and Python's differ, so a title could pass one and fail the other.
- Blank: nothing but white space, default-ignorable characters (zero-width space and
  joiners, soft hyphen, variation selectors, Hangul fillers...), combining marks with
  nothing to sit on, or the braille blank. Such a title shows nothing on a card.
- Bidi controls: overrides (U+202D, U+202E) are refused: they reverse the letters they
  cover, so a word can be stored backwards and shown forwards (past the word list), and
  an unterminated RIGHT-TO-LEFT OVERRIDE in a shop's name reverses the text after it on
  the card. Embeddings and isolates (U+202A, U+202B, U+2066-U+2068) only set a
  direction, and phones paste them around numbers copied from contacts: they are kept
  when each is closed, in order, within the field (U+202C, U+2069), refused otherwise.
  The implicit marks (LRM, RLM, ALM) stay: they open no scope and mixed Arabic or Hebrew
  text needs them. Pages render every field isolated (`<bdi>`) besides.
- What checks read (`shown_form`): NFKC, so that fullwidth `＜ｓｃｒｉｐｔ＞` or `ｗｗｗ．`
  are markup and links like their ASCII twins, with default-ignorables removed, so that a
  zero-width space inside `www.example.fr` does not hide a link a passer-by still sees.
- The word list compares `fold`ed words: the shown form with confusables folded by
  decancer (Cyrillic and Greek homoglyphs, mathematical and enclosed letters, accents,
  zalgo), then case-folded: `ϲаѕіnо`, `ＣＡＳＩＮＯ` and `cas<ZWSP>ino` all fold to `casino`.

- Tag characters (U+E0000-U+E007F) print as nothing and carry hidden ASCII: refused,
  but in the one place they are text, an emoji subdivision flag (U+1F3F4, tags, CANCEL
  TAG: the flag of Scotland).
- Names (a shop's, a producer's name and place) are one line (no line feed, carriage
  return, line or paragraph separator: a name spanning lines forges a line of the card,
  "Ferme\nInjected: yes"), stack at most NAME_MARKS_MAX combining marks on a letter (the
  most a language needs: Vietnamese two; zalgo stacks dozens that paint over the lines
  around), and write each word in one script (`mixed_script_word`).

Stored text stays as the shopkeeper typed it: NFKC would also turn `m²` into `m2` and
narrow no-break spaces into spaces. Only the checks read the normalised forms.
"""

from __future__ import annotations

import unicodedata

import decancer_py
import regex

__all__ = ["BIDI_CONTROLS", "CONTROL_CHARACTERS", "LINE_BREAKS", "NAME_MARKS_MAX",
           "bidi_unsafe", "fold", "has_odd_characters", "has_tag_characters", "is_blank",
           "length", "mixed_script_word", "script_of", "shown_form",
           "stacked_marks", "words"]

# Explicit bidi embeddings, overrides, pops and isolates: each opens or closes a scope
# that can reach past the field it was typed in.
BIDI_CONTROLS = regex.compile(r"[\u202a-\u202e\u2066-\u2069]")
# C0 (but tab, line feed, carriage return), DEL and C1.
CONTROL_CHARACTERS = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What breaks a line, for fields that are one (C1's NEXT LINE is a control already).
LINE_BREAKS = regex.compile(r"[\n\r\u2028\u2029]")
_TAGS = regex.compile(r"[\U000e0000-\U000e007f]")
_TAG_FLAG = regex.compile(r"\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
NAME_MARKS_MAX = 3
# Marks drawn over or under their letter (nonspacing, enclosing), after canonical
# decomposition so that a precomposed letter counts its accents. Spacing marks (the vowel
# signs of Indic scripts) take their own room and are not counted.
_STACKED = regex.compile(rf"[\p{{Mn}}\p{{Me}}]{{{NAME_MARKS_MAX + 1},}}")
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
# Anything a reader would see as a mark on the card. U+2800 BRAILLE PATTERN BLANK is a
# symbol, not a space, yet prints as nothing: the favourite filler of "invisible" names.
# U+FFF9-U+FFFB (interlinear annotation anchors) print as nothing either.
_VISIBLE = regex.compile(
    r"[^\p{White_Space}\p{Default_Ignorable_Code_Point}\p{M}\u2800\ufff9-\ufffb]")
# Spaces too thin to see (six-per-em, thin, hair): inside a word they still read as one
# word ("cas<HAIR SPACE>ino" shows "casino"), so the word list reads through them.
_THIN_SPACES = regex.compile(r"[\u2006\u2009\u200a\ufff9-\ufffb]")
_WORD = regex.compile(r"\w+")


_OVERRIDES = frozenset("\u202d\u202e")
_OPENERS = {"\u202a": "\u202c", "\u202b": "\u202c",  # embeddings, closed by PDF
            "\u2066": "\u2069", "\u2067": "\u2069", "\u2068": "\u2069"}  # isolates, PDI


def bidi_unsafe(text: str) -> bool:
    """An override, or an embedding or isolate not closed in order within the text."""
    if BIDI_CONTROLS.search(text) is None:
        return False
    open_: list[str] = []
    for char in text:
        if char in _OVERRIDES:
            return True
        if char in _OPENERS:
            open_.append(_OPENERS[char])
        elif char in ("\u202c", "\u2069") and (not open_ or open_.pop() != char):
            return True
    return bool(open_)


def length(text: str) -> int:
    """The contract's length of a text: code points, as typed (before any normalisation)."""
    return len(text)


def is_blank(text: str) -> bool:
    """True when the text would show nothing (see the module docstring)."""
    return _VISIBLE.search(text) is None


def shown_form(text: str) -> str:
    """NFKC without default-ignorables: what a reader takes the text to say."""
    return _IGNORABLE.sub("", unicodedata.normalize("NFKC", text))


def fold(text: str) -> str:
    """The shown form, case-folded, with confusables folded to their plain letters."""
    # decancer reads letters as they look, so it goes before case folding: casefold()
    # turns the lunate sigma of `ϲаѕіnо` into a σ, which looks like an o, not a c.
    # disable_bidi: the word list compares words as sets, and reordering right-to-left
    # runs (which decancer would otherwise do) only moves letters between them.
    # Before NFKC, which turns these spaces into plain ones.
    return str(decancer_py.parse(shown_form(_THIN_SPACES.sub("", text)),
                                 disable_bidi=True)).casefold()


def words(text: str) -> list[str]:
    """The folded words of a text, in order, as the word list compares them."""
    return _WORD.findall(fold(text))


def has_tag_characters(text: str) -> bool:
    """A tag character outside an emoji subdivision flag."""
    return _TAGS.search(text) is not None and _TAGS.search(_TAG_FLAG.sub("", text)) is not None


def stacked_marks(text: str) -> bool:
    """More than NAME_MARKS_MAX combining marks drawn on one letter."""
    return _STACKED.search(unicodedata.normalize("NFD", text)) is not None


# Scripts told apart, by the word of a letter's Unicode name that names them (unicodedata
# has no Script property): those whose letters pass for Latin ones, and the big ones
# written next to Latin. A letter of an unlisted script (or a name word unknown here:
# mathematical and enclosed letters) is not judged, as UTS #39 treats Common letters.
# Japanese and Korean write Han, kana and Hangul in one word: one family here.
_SCRIPTS: dict[str, str] = {name: name for name in (
    "LATIN", "GREEK", "COPTIC", "CYRILLIC", "ARMENIAN", "HEBREW", "ARABIC", "SYRIAC",
    "THAANA", "NKO", "DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL",
    "TELUGU", "KANNADA", "MALAYALAM", "SINHALA", "THAI", "LAO", "TIBETAN", "MYANMAR",
    "GEORGIAN", "ETHIOPIC", "CHEROKEE", "CANADIAN", "OGHAM", "RUNIC", "KHMER", "MONGOLIAN",
    "TIFINAGH", "VAI", "GLAGOLITIC", "GOTHIC", "LISU", "OSAGE", "ADLAM")}
_SCRIPTS.update(dict.fromkeys(("CJK", "HIRAGANA", "KATAKANA", "BOPOMOFO", "HANGUL"), "HAN"))
# The first word of a few letters' names that is not their script ("FULLWIDTH LATIN ...").
_NOT_A_SCRIPT = frozenset({"FULLWIDTH", "HALFWIDTH", "MODIFIER", "SMALL", "CAPITAL"})
_NAME_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def script_of(char: str) -> str | None:
    """The script of a letter (one of _SCRIPTS' values), None for what is not judged."""
    if not unicodedata.category(char).startswith("L"):
        return None
    for word in unicodedata.name(char, "").split()[:3]:
        if word in _SCRIPTS:
            return _SCRIPTS[word]
        if word not in _NOT_A_SCRIPT:
            return None
    return None


def mixed_script_word(text: str) -> str | None:
    """The first word whose letters come from more than one script (UTS #39 "single
    script" per word, Common and Inherited allowed): a Cyrillic `е` or a Greek `ο` inside
    a Latin word makes a twin of a name that looks the same. A word wholly in look-alike
    letters of one other script (Cyrillic `Сео`) is one script and passes."""
    for word in _NAME_WORD.findall(text):
        if len({s for s in map(script_of, word) if s is not None}) > 1:
            return str(word)
    return None


# Characters a name never needs, that shown text hides or draws as anything: a tab,
# private-use characters (a vendor's logo in some fonts), noncharacters, and the
# interlinear annotation marks some renderers use to hide what follows.
_NAME_ODD = regex.compile(r"[\t\p{Co}\p{Noncharacter_Code_Point}\ufff9-\ufffb]")


def has_odd_characters(text: str) -> bool:
    return _NAME_ODD.search(text) is not None
