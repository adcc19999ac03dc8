"""Resume cursors: `feed` stream entry ids (one per region), compared and judged without I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum

__all__ = ["ZERO", "Resume", "decode", "encode", "judge", "key", "parse"]

# ASCII digits only (\d takes any script's) and each part within Redis's unsigned 64 bits:
# anything else is a malformed cursor (a reset), never a stream id Redis refuses.
_ID = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
_U64_MAX = 2**64 - 1

ZERO = "0-0"


def encode(positions: Mapping[str, str], default_region: str) -> str:
    """One region's position is the bare stream id (the v1 form); several are
    `region:id` joined by `~`, so a cursor covers every region a client reads."""
    if set(positions) == {default_region}:
        return positions[default_region]
    return "~".join(f"{region}:{positions[region]}" for region in sorted(positions))


def decode(cursor: str, default_region: str) -> dict[str, str] | None:
    if parse(cursor) is not None:
        return {default_region: cursor}
    positions: dict[str, str] = {}
    for part in cursor.split("~"):
        region, _, entry_id = part.partition(":")
        if not region or parse(entry_id) is None or region in positions:
            return None
        positions[region] = entry_id
    return positions or None


def parse(cursor: str) -> tuple[int, int] | None:
    match = _ID.fullmatch(cursor)
    if match is None:
        return None
    ms, seq = int(match.group(1)), int(match.group(2))
    return (ms, seq) if ms <= _U64_MAX and seq <= _U64_MAX else None


def key(cursor: str) -> tuple[int, int]:
    parsed = parse(cursor)
    if parsed is None:
        raise ValueError(f"expected a stream id like '1700000000000-0', got {cursor!r}")
    return parsed


class Resume(Enum):
    REPLAY = "replay"  # send what came after the cursor, then live
    RESET = "reset"  # cannot resume without a gap: `reset` frame and a fresh snapshot


def judge(cursor: str, *, last_id: str, oldest_kept: str) -> Resume:
    """Can a client that has seen everything up to `cursor` resume without a gap?

    `last_id` is the stream's newest entry id; `oldest_kept` the oldest entry
    still there if any entry was ever trimmed (retention), else "0-0". Entries
    older than it are gone, so a cursor before it may have missed some. A
    cursor newer than the stream (a stream rebuilt from scratch) or malformed
    is a reset too.
    """
    parsed = parse(cursor)
    if parsed is None or parsed > key(last_id) or parsed < key(oldest_kept):
        return Resume.RESET
    return Resume.REPLAY
