"""Resume cursors: `feed` stream entry ids, compared and judged without I/O."""

from __future__ import annotations

import re
from enum import Enum

_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")

ZERO = "0-0"


def parse(cursor: str) -> tuple[int, int] | None:
    match = _ID.match(cursor)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def key(cursor: str) -> tuple[int, int]:
    parsed = parse(cursor)
    if parsed is None:
        raise ValueError(f"expected a stream id like '1700000000000-0', got {cursor!r}")
    return parsed


class Resume(Enum):
    REPLAY = "replay"  # send what came after the cursor, then live
    RESET = "reset"  # cannot resume without a gap: `reset` frame and a fresh snapshot


def judge(cursor: str, *, last_id: str, max_deleted_id: str) -> Resume:
    """Can a client that has seen everything up to `cursor` resume without a gap?

    `last_id` is the stream's newest entry; `max_deleted_id` the newest entry
    trimmed away (retention). A cursor older than a trimmed entry, newer than
    the stream itself (a stream rebuilt from scratch) or malformed is a reset.
    """
    parsed = parse(cursor)
    if parsed is None:
        return Resume.RESET
    if parsed > key(last_id):
        return Resume.RESET
    if parsed < key(max_deleted_id):
        return Resume.RESET
    return Resume.REPLAY
