"""Shop categories: the one list of codes, with their French and English labels.

A shop's `category` (DESIGN.md section 8: a string in profiles, delivered posts and
`streetfeed shops add --category C`) is one of these codes. The list is served by
`GET /api/v1/categories`, documented in docs/categories.md and shipped to the pages in
web/static/category-table.js (generated from this table by `python -m web.category_table`;
a test checks they agree). Codes are never renamed or removed, since clients we do not
see keep them; new ones may be added. Which other words name a category (the labels,
the French names used before codes, a few synonyms) is in rules/categories.py.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas import limits

__all__ = ["CATEGORIES", "CATEGORY_CODES", "FALLBACK_CATEGORY", "CategoryCode", "CategoryIn",
           "CategoryInfo", "CategoryList"]

# What a profile or a delivered post carries. A description only (for /openapi.json):
# these are written by us, from records whose category is already a code.
CategoryCode = Annotated[str, msgspec.Meta(
    description="a code of GET /api/v1/categories (e.g. bakery), which has its labels")]
# What a shop is created or changed with: a code, or a name of one, folded.
CategoryIn = Annotated[str, msgspec.Meta(
    min_length=1, max_length=limits.CATEGORY_MAX,
    description="a code of GET /api/v1/categories; its French or English label or a former "
                "French name (e.g. 'Boulangerie', 'épicerie fine'), in any case and with or "
                "without accents, is taken for its code, and the code is stored; anything "
                "else is 422 unknown_category")]


class CategoryInfo(msgspec.Struct, frozen=True):
    code: str
    fr: str
    en: str


class CategoryList(msgspec.Struct, frozen=True):
    """GET /api/v1/categories: every code in the documented order (food first, `other`
    last), each with its labels."""

    categories: list[CategoryInfo]


# Food first, then the rest of a town-centre street; `other` last.
CATEGORIES: tuple[CategoryInfo, ...] = tuple(CategoryInfo(code, fr, en) for code, fr, en in (
    ("bakery", "Boulangerie", "Bakery"),
    ("pastry", "Pâtisserie", "Pastry shop"),
    ("butcher", "Boucherie", "Butcher"),
    ("fishmonger", "Poissonnerie", "Fishmonger"),
    ("cheese", "Fromagerie", "Cheese shop"),
    ("greengrocer", "Primeur", "Greengrocer"),
    ("grocery", "Épicerie", "Grocery"),
    ("delicatessen", "Épicerie fine", "Delicatessen"),
    ("organic", "Magasin bio", "Organic shop"),
    ("wine", "Caviste", "Wine shop"),
    ("chocolate", "Chocolatier", "Chocolate shop"),
    ("coffee_tea", "Torréfacteur, thés", "Coffee and tea"),
    ("cafe", "Café", "Café"),
    ("restaurant", "Restaurant", "Restaurant"),
    ("bar", "Bar", "Bar"),
    ("bookshop", "Librairie", "Bookshop"),
    ("stationery", "Papeterie", "Stationery"),
    ("newsagent", "Presse, tabac", "Newsagent"),
    ("florist", "Fleuriste", "Florist"),
    ("clothing", "Vêtements", "Clothing"),
    ("secondhand", "Friperie, dépôt-vente", "Second-hand"),
    ("shoes", "Chaussures", "Shoes"),
    ("jewellery", "Bijouterie", "Jewellery"),
    ("beauty", "Beauté, parfumerie", "Beauty"),
    ("hairdresser", "Coiffeur", "Hairdresser"),
    ("optician", "Opticien", "Optician"),
    ("pharmacy", "Pharmacie", "Pharmacy"),
    ("hardware", "Quincaillerie", "Hardware"),
    ("home", "Maison, décoration", "Home and decor"),
    ("toys", "Jouets", "Toys"),
    ("sports", "Sport", "Sports"),
    ("bikes", "Vélos", "Bike shop"),
    ("music", "Musique", "Music"),
    ("gifts", "Cadeaux, souvenirs", "Gifts"),
    ("pets", "Animalerie", "Pet shop"),
    ("other", "Autre commerce", "Other"),
))

CATEGORY_CODES: frozenset[str] = frozenset(c.code for c in CATEGORIES)
# What a stored category that names none of the codes becomes (rules.categories.migrated).
FALLBACK_CATEGORY = "other"
