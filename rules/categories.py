"""Which category a shopkeeper, an operator or an old record means.

The codes and their labels are schemas.categories.CATEGORIES. Besides a code, a writer
may give its French or English label, or a name used before codes existed ("fromagerie",
"épicerie fine", "caviste"...), in any case and with or without accents: each is an
alias of one code, and the code is what gets stored and shown. Anything else is refused
with 422 `unknown_category` (the CLI prints the codes); a record stored before codes
whose category names none of them reads as `other` (`migrated`), never as an error.
"""

from __future__ import annotations

import re
import unicodedata

from rules.errors import InvalidInput
from schemas.categories import CATEGORIES, CATEGORY_CODES, FALLBACK_CATEGORY

__all__ = ["ALIASES", "category_code", "fold", "migrated", "require_category"]

# Other names of each code, beyond the code and its two labels: the French names stored
# before codes (the demo street's, the tests', the benchmark's) and what shopkeepers and
# operators commonly type, in French and English. Written as people write them; `fold`
# makes "Épicerie-Fine" and "epicerie fine" one.
ALIASES: dict[str, tuple[str, ...]] = {
    "bakery": ("boulanger", "boulangerie pâtisserie", "baker", "bakers"),
    "pastry": ("pâtissier", "cake shop"),
    "butcher": ("boucher", "boucherie charcuterie", "charcuterie", "charcutier", "butchers"),
    "fishmonger": ("poissonnier", "marée", "fish shop", "fish"),
    "cheese": ("fromager", "fromages", "crèmerie", "crémerie fromagerie", "cheesemonger"),
    "greengrocer": ("primeurs", "fruits et légumes", "maraîcher", "greengrocers"),
    "grocery": ("épicier", "épicerie de nuit", "alimentation", "alimentation générale",
                "supérette", "grocer", "grocery store", "convenience store"),
    "delicatessen": ("traiteur", "deli", "fine food"),
    "organic": ("bio", "épicerie bio", "organic food"),
    "wine": ("cave", "cave à vins", "vins", "vins et spiritueux", "wine merchant",
             "off licence"),
    "chocolate": ("chocolaterie", "chocolat", "confiserie", "confectioner", "sweet shop"),
    "coffee_tea": ("torréfacteur", "torréfaction", "cafés et thés", "thé", "thés",
                   "maison de thé", "coffee roaster", "coffee", "tea", "tea shop"),
    "cafe": ("salon de thé", "coffee shop", "tea room"),
    "restaurant": ("brasserie", "bistrot", "bistro", "crêperie", "pizzeria"),
    "bar": ("pub", "bar à vins", "wine bar"),
    "bookshop": ("libraire", "bouquiniste", "bookstore", "bookseller", "books"),
    "stationery": ("papetier", "fournitures de bureau", "stationer"),
    "newsagent": ("presse", "tabac", "tabac presse", "bureau de tabac", "maison de la presse",
                  "marchand de journaux", "kiosque", "newsagents", "tobacconist"),
    "florist": ("fleurs", "flowers", "flower shop"),
    "clothing": ("prêt-à-porter", "mode", "habillement", "boutique de vêtements", "clothes",
                 "fashion"),
    "secondhand": ("friperie", "dépôt-vente", "seconde main", "vintage", "thrift shop",
                   "charity shop"),
    "shoes": ("chausseur", "magasin de chaussures", "shoe shop"),
    "jewellery": ("bijoutier", "horlogerie", "horlogerie bijouterie", "jewelry", "jeweller",
                  "jeweler"),
    "beauty": ("beauté", "parfumerie", "institut de beauté", "esthétique", "cosmétiques",
               "perfumery", "cosmetics"),
    "hairdresser": ("coiffure", "salon de coiffure", "barbier", "barber", "hair salon"),
    "optician": ("optique", "lunetterie", "opticians"),
    "pharmacy": ("parapharmacie", "chemist", "drugstore"),
    "hardware": ("bricolage", "droguerie", "hardware store", "diy"),
    "home": ("décoration", "déco", "maison", "arts de la table", "homeware", "home decor"),
    "toys": ("jouet", "magasin de jouets", "jeux et jouets", "toy shop", "toy store"),
    "sports": ("articles de sport", "sport shop", "sporting goods"),
    "bikes": ("vélo", "cycles", "vélociste", "bike", "bicycle shop"),
    "music": ("disquaire", "instruments de musique", "record shop", "music shop"),
    "gifts": ("cadeaux", "souvenirs", "boutique de cadeaux", "gift shop", "gift"),
    "pets": ("animaux", "pet store"),
    "other": ("autre", "autres", "divers"),
}

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(name: str) -> str:
    """`name` without case, accents or punctuation: "Épicerie-Fine " -> "epicerie fine"."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NOT_ALNUM.sub(" ", bare).strip()


def _names() -> dict[str, str]:
    """Every folded name -> its code; a name given to two codes is a mistake in the table."""
    if set(ALIASES) - CATEGORY_CODES:
        raise ValueError(f"aliases of unknown codes: {sorted(set(ALIASES) - CATEGORY_CODES)}")
    names: dict[str, str] = {}
    for category in CATEGORIES:
        # A code and its labels may fold alike ("cafe", "Café"); an alias must be new.
        own = {fold(n) for n in (category.code, category.fr, category.en)}
        aliases = [fold(n) for n in ALIASES.get(category.code, ())]
        for key in [*own, *aliases]:
            if key in names or (key not in own and aliases.count(key) > 1):
                raise ValueError(f"{key!r} is named twice (for {category.code!r})")
            names[key] = category.code
    return names


_BY_NAME = _names()
_LISTED = ", ".join(c.code for c in CATEGORIES)


def category_code(value: str) -> str | None:
    """The code `value` names (a code, a label or an alias), or None."""
    return _BY_NAME.get(fold(value))


def require_category(value: str) -> str:
    """The code `value` names, or 422 `unknown_category` listing the codes."""
    code = category_code(value)
    if code is None:
        raise InvalidInput(f"unknown category {value!r}: expected one of {_LISTED} "
                           "(GET /api/v1/categories has their labels)", code="unknown_category")
    return code


def migrated(stored: str) -> str:
    """The code of a category read from storage: written before codes, it may be any text;
    what names no code becomes `other` rather than an unreadable shop."""
    if stored in CATEGORY_CODES:
        return stored
    return category_code(stored) or FALLBACK_CATEGORY
