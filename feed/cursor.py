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
