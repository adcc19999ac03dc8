"""GET /api/v1/feed/stream: the feed socket's frames as Server-Sent Events (DESIGN.md 9).

For clients whose WebSocket cannot be opened (proxies that strip `Upgrade`). A stream is
one more subscriber of the gateway: the same subscription, admission and per-address
count (Gateway.admit/opened/closed), snapshot or replay after a cursor, live fan-out,
`status` frames and presence as a socket. Only the bytes differ, and they are made from
the WebSocket frame the hub encoded once (`sse_event`): the frame's JSON is the event's
`data:`, its `type` the event's name, its `cursor` the event's `id:` from the `ping` that
ends the snapshot or replay on. Before that ping, events carry no `id:`: a client cut in
the middle resumes with the id it came with and gets all of it again (`_opening_event`).

A stream is a `Sink` (feed.hub) whose writes queue events for the HTTP response (web.stream
sends them); its `buffered()` is that queue, so the hub's slow-consumer rule drops a
stream whose client stops reading as it drops a socket. A reader that never reads but
never fills a buffer either (a quiet street: a ping every 25 s) is what the WebSocket's
protocol ping (closed after its timeout) catches and an event stream cannot: each stream
ends after `sse_max_life_s` instead, and a client that reads resumes at once with its
Last-Event-ID, nothing lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, MutableSet

import msgspec

__all__ = ["EventStream", "EventStreams", "sse_event"]


class _Head(msgspec.Struct):
    """What an event needs of a frame: its type and cursor (the rest is skipped)."""

    type: str
    cursor: str | None = None


_decode_head = msgspec.json.Decoder(_Head).decode

# Frames the hub writes to many subscribers are one bytes object each: its events are made
# once (a bytes object caches its hash, and equal bytes make equal events).
_CACHE_MAX = 256
_events: dict[bytes, bytes] = {}


def _payload(frame: bytes) -> bytes:
    """The payload of an unmasked, unfragmented WebSocket frame (feed.frames.ws_text_frame)."""
    n = frame[1] & 0x7F
    return frame[2:] if n < 126 else frame[4:] if n == 126 else frame[10:]


def _frames(chunk: bytes) -> Iterator[bytes]:
    """The frames of `chunk`: whole unmasked frames back to back (the hub writes the
    frames of one XREAD to a socket in one call, Hub.dispatch_many). A chunk of one frame
    is yielded as itself (the events' cache is keyed by frames)."""
    start, end = 0, len(chunk)
    while start < end:
        n = chunk[start + 1] & 0x7F
        if n < 126:
            stop = start + 2 + n
        elif n == 126:
            stop = start + 4 + int.from_bytes(chunk[start + 2:start + 4], "big")
        else:
            stop = start + 10 + int.from_bytes(chunk[start + 2:start + 10], "big")
        yield chunk if start == 0 and stop == end else chunk[start:stop]
        start = stop


def sse_event(frame: bytes) -> bytes:
    """A WebSocket text frame as one event: `event:` its type, `id:` its cursor (a frame
    without one, `status`, leaves the client's last event id as it was), `data:` its JSON
    (one line: msgspec escapes every line break inside strings).

    `ping` is also a comment line, the keep-alive proxies know, and an event: a comment
    reaches no script, and the page needs the ping's cursor and the end of the snapshot it
    marks. `error` frames are for sockets only (a stream's query is checked before it
    starts) and would be taken for EventSource's own `error` event: nothing is written.

    This is the form of a live stream (from the ping that ends its snapshot or replay on:
    EventStream); the frames before that ping are `_opening_event`s, not cached here."""
    event = _events.get(frame)
    if event is not None:
        return event
    payload = _payload(frame)
    event = _encode(payload, _decode_head(payload), with_id=True)
    if len(_events) >= _CACHE_MAX:
        _events.clear()
    _events[frame] = event
    return event


def _opening_event(frame: bytes) -> tuple[bytes, bool]:
    """A frame of a stream's snapshot or replay as an event without `id:`, and False; the
    `ping` that ends it as `sse_event` does, and True.

    Every frame of a snapshot (and the `reset` before it) carries the cursor the snapshot
    ends at: an EventSource cut in the middle resumed after it, and the rest of the
    snapshot was lost, without a `reset`. A replay's frame carries its own entry's position
    in its region but the others' where the replay ends, and regions are replayed one
    after the other: with several, a cut one would skip the regions not yet replayed.
    Without an id, the client keeps the one it came with (none, or an older cursor) and
    gets the whole snapshot or replay again (at most `replay_max` entries); a post it had
    already is an upsert of the same post. These frames are one stream's (the hub holds
    live frames until after the ping; `status` frames carry no cursor): not cached."""
    payload = _payload(frame)
    head = _decode_head(payload)
    ping = head.type == "ping"
    return _encode(payload, head, with_id=ping), ping


def _encode(payload: bytes, head: _Head, *, with_id: bool) -> bytes:
    if head.type == "error":
        return b""
    parts = [b": ping\n" if head.type == "ping" else b"", b"event: ", head.type.encode(), b"\n"]
    if with_id and head.cursor is not None:
        parts += [b"id: ", head.cursor.encode(), b"\n"]
    parts += [b"data: ", payload, b"\n\n"]
    return b"".join(parts)


class EventStream:
    """One stream's queue of events, as the hub's Sink."""

    __slots__ = ("_high_water", "_on_lagging", "_queue", "_size", "_wake", "closed", "live",
                 "sending")

    def __init__(self, first: bytes = b"") -> None:
        self._queue: list[bytes] = [first] if first else []
        self._size = len(first)
        self._wake = asyncio.Event()
        self._high_water = 0
        self._on_lagging: Callable[[], object] | None = None
        self.closed = False
        # The response is waiting for the client to take what it sent (set by web.stream
        # around each send). Only then is what queues up "unsent" in the hub's sense: the
        # snapshot, queued in one go while the response waits for it, is not a lagging
        # client, as it is not on a socket, whose transport takes it at once.
        self.sending = False
        # The ping that ends the snapshot or replay has been written: events carry their
        # cursor as `id:` from it on, and none before it (`_opening_event`).
        self.live = False

    # --- Sink (feed.hub) ---------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if self.live:
            event = sse_event(frame)
        else:
            event, self.live = _opening_event(frame)
        if not event:
            return
        before = self._size
        self._queue.append(event)
        self._size += len(event)
        self._wake.set()
        # Once, as a transport calls pause_writing once per crossing of its high-water mark.
        if self.sending and self._on_lagging is not None \
                and before <= self._high_water < self._size:
            self._on_lagging()

    def write_many(self, frames: list[bytes]) -> None:
        # Each frame is an event of its own (its `id:` is its own cursor).
        for frame in frames:
            self.write(frame)

    def _write_chunk(self, chunk: bytes) -> None:
        for frame in _frames(chunk):
            self.write(frame)

    def buffered(self) -> int:
        return self._size if self.sending else 0

    def close(self, code: int, reason: str = "") -> None:
        """Ends the response (a Sink's close; codes and reasons are a socket's)."""
        if not self.closed:
            self.closed = True
            self._queue.clear()
            self._size = 0
            self._wake.set()

    def fast_path(self, high_water: int,
                  on_lagging: Callable[[], object]) -> Callable[[bytes], object]:
        self._high_water = high_water
        self._on_lagging = on_lagging
        return self._write_chunk

    # --- The response's side -----------------------------------------------------------

    async def next_events(self) -> bytes | None:
        """Every event queued since the last call, once there is one; None once closed."""
        while not self._queue and not self.closed:
            self._wake.clear()
            await self._wake.wait()
        if self.closed:
            return None
        events = b"".join(self._queue)
        self._queue.clear()
        self._size = 0
        return events


class EventStreams:
    """This process's open streams, closed at once when the server stops.

    uvicorn's Server asks every object in its `server_state.connections` to `shutdown()`
    when it stops, then waits (up to its graceful timeout) for them to leave the set; a
    response being streamed is never told. The HTTP protocol (web/http_protocol.py)
    registers this object there, so streams end with a `1001` close at once instead of
    being cut after the grace time, and new ones are refused."""

    __slots__ = ("_registered", "open", "stopping")

    def __init__(self) -> None:
        self.open: set[EventStream] = set()
        self.stopping = False
        self._registered: MutableSet[object] | None = None

    def register(self, connections: MutableSet[object]) -> None:
        if self._registered is None and not self.stopping:
            self._registered = connections
            connections.add(self)

    def shutdown(self) -> None:
        self.stopping = True
        for stream in list(self.open):
            stream.close(1001, "server restarting")
        if self._registered is not None:
            self._registered.discard(self)
