"""web/static/category-table.js, generated from schemas.categories.CATEGORIES.

The pages need the labels as they draw a card, offline too (the service worker keeps
the shell), so the table ships as a module rather than a request; it is written from
the Python table, never by hand, and tests/test_categories.py fails when the file and
the table differ. After changing the table: `python -m web.category_table`.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.categories import CATEGORIES

__all__ = ["TABLE_PATH", "render", "write"]

TABLE_PATH = Path(__file__).parent / "static" / "category-table.js"


def render() -> str:
    rows = "".join(f"  {json.dumps([c.code, c.fr, c.en], ensure_ascii=False)},\n"
                   for c in CATEGORIES)
    return ("// Generated from schemas/categories.py by `python -m web.category_table`: "
            "do not edit.\n"
            "// [code, French label, English label], in the documented order "
            "(docs/categories.md).\n"
            f"export const CATEGORIES = Object.freeze([\n{rows}]);\n")


def write() -> None:
    TABLE_PATH.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    write()
