"""A JSON body naming a key twice is refused: parsers disagree on which one counts
(msgspec keeps the last, others the first), so what a proxy, a log or a reviewer read
could differ from what was stored."""

from __future__ import annotations

import json
from typing import Any

from rules.errors import InvalidInput

__all__ = ["refuse_duplicate_keys"]


def refuse_duplicate_keys(body: bytes) -> None:
    """InvalidInput `duplicate_key` (400) if an object of `body`, valid JSON, names a key
    twice."""
    json.loads(body, object_pairs_hook=_unique_pairs)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidInput(f"key {key!r} appears more than once", code="duplicate_key",
                               status=400)
        seen[key] = value
    return seen
