"""Frames encoded once per event, as complete WebSocket frames ready to write.

A server-to-client frame is never masked, so the same bytes (header and JSON
payload) can be written to every socket that should receive an event.
"""

from __future__ import annotations

import msgspec

from schemas.common import ErrorDetail
from schemas.feed import (
    ErrorFrame,
    ExpiredFrame,
    FeedEntry,
    PingFrame,
    PostFrame,
    ResetFrame,
    StatusFrame,
    WithdrawnFrame,
)

__all__ = ["carries_frame", "decode_entry", "entry_payload", "error_payload",
           "matched_as_local", "ping_payload", "post_payload", "reset_payload",
           "status_payload", "ws_text_frame"]

_encoder = msgspec.json.Encoder()
_entry_decoder = msgspec.json.Decoder(FeedEntry)


class PingWithCursor(PingFrame, frozen=True, tag="ping"):
    """A `ping` that also tells the client how far the feed has been read for it."""

    cursor: str


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65_536:
        header = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        header = b"\x81\x7f" + n.to_bytes(8, "big")
    return header + payload


def decode_entry(data: bytes) -> FeedEntry:
    return _entry_decoder.decode(data)


def matched_as_local(entry: FeedEntry) -> bool:
    """Whether `local=1` subscribers may take the entry (with the kind and place matched as
    for everyone): a local post, an edit that ended a post's locality (they may hold its
    card), and tombstones (likewise; a client ignores an id it does not hold)."""
    return entry.local or entry.was_local or entry.type != "post"


def carries_frame(entry: FeedEntry) -> bool:
    return entry.type in ("expired", "withdrawn") or (entry.type == "post" and
                                                      bool(len(entry.post)))


def entry_payload(entry: FeedEntry, cursor: str) -> bytes | None:
    """The JSON frame a client gets for one feed entry (None if it carries nothing to send)."""
    if entry.type == "post":
        if not len(entry.post):
            return None
        return _encoder.encode(PostFrame(post=entry.post, cursor=cursor))
    if entry.type == "expired":
        return _encoder.encode(ExpiredFrame(id=entry.id, cursor=cursor))
    if entry.type == "withdrawn":
        return _encoder.encode(WithdrawnFrame(id=entry.id, cursor=cursor))
    return None


def post_payload(post_json: bytes, cursor: str) -> bytes:
    return _encoder.encode(PostFrame(post=msgspec.Raw(post_json), cursor=cursor))


def reset_payload(cursor: str) -> bytes:
    return _encoder.encode(ResetFrame(cursor=cursor))


def ping_payload(cursor: str) -> bytes:
    return _encoder.encode(PingWithCursor(cursor=cursor))


def error_payload(code: str, message: str) -> bytes:
    return _encoder.encode(ErrorFrame(error=ErrorDetail(code=code, message=message)))


def status_payload(since: str | None) -> bytes:
    """`live: true`, or `live: false` with the moment the feed was last read (`since`)."""
    return _encoder.encode(StatusFrame(live=since is None, since=since))
