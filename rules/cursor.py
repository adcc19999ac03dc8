"""Resume cursors: `feed` stream entry ids (one per region), compared and judged without I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum

__all__ = ["ZERO", "Resume", "decode", "encode", "horizon", "judge", "key", "oldest_kept",
           "parse", "within_retention"]

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
    is a reset too. (Retention by age: `within_retention`, once the first entry
    missed is known.)
    """
    parsed = parse(cursor)
    if parsed is None or parsed > key(last_id) or parsed < key(oldest_kept):
        return Resume.RESET
    return Resume.REPLAY


def horizon(now_ms: int, retention_s: int) -> str:
    """The stream id below which entries are past retention at `now_ms` (an entry id's ms
    part is the server's clock when it was added). The publish and remove scripts of
    storage/live.py trim at the same horizon, from the id of the entry they add."""
    return f"{max(0, now_ms - retention_s * 1000)}-0"


def oldest_kept(*, entries_added: int, length: int, first_id: str | None, max_deleted: str,
                last_id: str) -> str:
    """The oldest entry a resume may rely on, from XINFO STREAM; "0-0" when none is gone.

    Trimming (MAXLEN or MINID, exact or `~`) does not move max-deleted-entry-id: a count
    gap shows it, and the first entry left is then the oldest kept (`~` trims whole
    nodes, so it may be older than the horizon: its entries are all there). A stream
    trimmed empty keeps only its last id: a cursor behind it has lost entries.
    """
    kept = ZERO
    if entries_added > length:
        kept = first_id if first_id is not None else last_id
    return max(kept, max_deleted, key=key)


def within_retention(first_missed: str, horizon: str) -> bool:
    """Whether a resume whose first missed entry is `first_missed` replays only entries
    within retention. One older than the horizon may still be there (`~` trims whole
    nodes) or not: the client gets `reset` either way, so what it gets does not depend on
    where a node ends (DESIGN.md: a cursor older than the retention gets a reset). A
    cursor older than the horizon with nothing missed after it, or only younger entries
    (a quiet street, a new region's "0-0"), has lost nothing and resumes."""
    return key(first_missed) >= key(horizon)
