"""The gateway's in-memory side: connections, the subscriber index and dispatch.

Each feed entry is encoded once into complete frame bytes and written to every
matching socket without awaiting. A socket still receiving its snapshot queues
frames (bounded); a socket whose transport buffer grows past the limit is
closed with a resumable code rather than slowing the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from feed.frames import (
    carries_frame,
    decode_entry,
    entry_payload,
    matched_as_local,
    ping_payload,
    status_payload,
    ws_text_frame,
)
from feed.index import Subscriber, SubscriberIndex
from rules import cursor as cursors
from rules.geo import CellGrid
from runtime import metrics
from runtime.settings import Settings
from schemas.feed import FeedEntry
from schemas.limits import PRESENCE_CELL_DEG

__all__ = ["PING_SLICES", "Connection", "ConsoleFeed", "Hub", "Sink", "SocketGone"]

log = logging.getLogger("streetfeed.gateway")

# Close code for a socket that fell behind: "try again later", with its cursor.
CLOSE_LAGGING = 1013
# Each ping interval is cut in this many turns, each pinging one slice of the sockets.
PING_SLICES = 25


class Sink(Protocol):
    def write(self, frame: bytes) -> None: ...
    def write_many(self, frames: list[bytes]) -> None:
        """`write` each, as the sink can do it at once (a socket: one write)."""
        ...
    def buffered(self) -> int: ...
    def close(self, code: int, reason: str = "") -> None: ...
    def fast_path(self, high_water: int,
                  on_lagging: Callable[[], object]) -> Callable[[bytes], object]:
        """The hub's write once the socket is live: it takes one or more whole frames
        back to back (Hub.dispatch_many writes the frames of one XREAD at once)."""
        ...


class ConsoleFeed(Protocol):
    """The console sockets of this process (feed.console): told of every feed entry
    dispatched and of liveness changes."""

    def on_entry(self, region: str, entry: FeedEntry) -> None: ...
    def on_liveness(self, before: dict[str, str], down: dict[str, str]) -> None: ...


class SocketGone(Exception):
    """The socket ended while its subscription was being set up or moved."""


class Connection:
    __slots__ = ("_buffer_max", "_lagged", "_transport_write", "closed", "pending",
                 "ping_slice", "presence_cell", "regions", "regions_key", "screen", "send",
                 "since", "sink", "sub", "subscribed")

    def __init__(self, sink: Sink, buffer_max: int, lagged: list[Connection]) -> None:
        self.sink = sink
        # A delivery is only the transport's own write: no buffer-size query and no check
        # per write (the hot path, docs/performance.md). Past `buffer_max` the transport's
        # high-water mark puts the socket on `lagged`, which the hub drops after the
        # writes at hand. The hub stops writing to a socket before closing it.
        self._lagged = lagged
        self._transport_write = sink.fast_path(buffer_max, self._fell_behind)
        # The transport's write once live; None while the snapshot is read (held).
        self.send: Callable[[bytes], object] | None = None
        self.sub: Subscriber[Connection] = Subscriber(self)
        self.pending: list[bytes] = []
        self.screen = False
        self.regions: list[str] = []
        self.regions_key: tuple[str, ...] = ()
        self.subscribed = False
        # The socket has ended: it may never be subscribed again (its setup or move may
        # still be running: a cancellation can be lost, see Hub.subscribe).
        self.closed = False
        self.presence_cell: int | None = None
        self.ping_slice = 0
        # Hub.dispatched when this socket (last) subscribed.
        self.since = 0
        self._buffer_max = buffer_max

    def _fell_behind(self) -> None:
        self._lagged.append(self)

    def go_live(self) -> bool:
        pending, self.pending = self.pending, []
        for frame in pending:
            self.sink.write(frame)
        self.send = self._transport_write
        return self.sink.buffered() <= self._buffer_max

    def hold(self) -> None:
        self.send = None

    def release(self) -> None:
        """The socket has ended: its subscriber lets go of it. conn <-> sub is a cycle, and
        one that holds the transport and the protocols behind it (through `sink` and the
        transport's write) until the cyclic collector runs: broken, a closed socket is
        freed by reference counting (runtime/collector.py). Only the index reads a
        subscriber's target, and a closed connection never enters it again."""
        self.closed = True
        del self.sub.target


class Hub:
    """Every socket of this process, whatever regions it reads, in one cell index.

    Each region's reader dispatches that region's feed entries here; `positions`
    holds the last entry dispatched per region, and the cursor a client gets is
    their encoding (a bare stream id when there is one region).
    """

    def __init__(self, settings: Settings) -> None:
        self.index: SubscriberIndex[Connection] = SubscriberIndex(
            CellGrid(settings.geo_cell_deg), use_cells=settings.gateway_use_index)
        self.buffer_max = settings.gateway_socket_buffer_max
        self.pending_max = settings.socket_pending_max
        self.recent_max = settings.recent_posts_max
        self.default_region = settings.region
        self.positions: dict[str, str] = {}
        self._positioned: dict[str, asyncio.Event] = {}
        self.deliveries = 0
        # Feed entries dispatched so far, and the posts among the last of them:
        # post id -> (hash of its content, `dispatched` then, region, feed entry id).
        self.dispatched = 0
        self.recent: dict[str, tuple[int, int, str, str]] = {}
        self.dropped_slow = 0
        # Sockets past their buffer limit since the last writes, to be closed.
        self.lagged: list[Connection] = []
        # Sockets per region they read: the readers this process needs.
        self.region_users: Counter[str] = Counter()
        self._regions_keys: dict[tuple[str, ...], tuple[str, ...]] = {}
        # Watchers per small cell (counts only: positions never leave this process) and
        # first deliveries per (region, post) since the last flush: [phones, screens].
        self.presence_grid = CellGrid(PRESENCE_CELL_DEG)
        self.presence: Counter[int] = Counter()
        self.reach: dict[tuple[str, str], list[int]] = {}
        # Sockets in slices pinged in turn, so that no one loop writes to all of them.
        self.ping_slices: list[set[Connection]] = [set() for _ in range(PING_SLICES)]
        self._next_ping_slice = 0
        # Sockets resuming ahead of this process's reader, per region: (reached?, future).
        self._waiters: dict[str, list[tuple[Callable[[str], bool], asyncio.Future[None]]]] = {}
        # Regions whose feed cannot be read now, each with the RFC 3339 time it last was;
        # the event is set (and replaced) whenever that changes.
        self.down: dict[str, str] = {}
        self._liveness_changed = asyncio.Event()
        # The shop consoles' sockets, told of each entry once (not per socket).
        self.consoles: ConsoleFeed | None = None

    @property
    def position(self) -> str | None:
        """The cursor of everything dispatched so far (None before any reader started)."""
        return cursors.encode(self.positions, self.default_region) if self.positions else None

    def regions_key(self, regions: list[str]) -> tuple[str, ...]:
        """The one tuple object for this set of regions, shared by all its sockets."""
        key = tuple(regions)
        return self._regions_keys.setdefault(key, key)

    def positioned(self, region: str) -> asyncio.Event:
        event = self._positioned.get(region)  # called per feed entry: no Event made in vain
        if event is None:
            event = self._positioned[region] = asyncio.Event()
        return event

    def connect(self, sink: Sink) -> Connection:
        return Connection(sink, self.buffer_max, self.lagged)

    def subscribe(self, conn: Connection) -> dict[str, str]:
        """Start delivering to `conn` (held until go_live); the positions it starts after.

        A socket that has ended is refused (SocketGone): its setup or move task is
        cancelled when it closes, but asyncio.wait_for (3.11) can swallow a cancellation
        that arrives as what it waits for completes, and the task then goes on to here:
        each such socket stayed in the index for ever, written to on every post."""
        if conn.closed:
            raise SocketGone
        self.index.add(conn.sub)
        if not conn.screen:  # "people watching": in-shop screens are not people
            conn.presence_cell = self.presence_grid.cell_of(conn.sub.lat, conn.sub.lon)
            self.presence[conn.presence_cell] += 1
        self.region_users.update(conn.regions)
        conn.since = self.dispatched
        conn.ping_slice = self._next_ping_slice
        self._next_ping_slice = (self._next_ping_slice + 1) % PING_SLICES
        self.ping_slices[conn.ping_slice].add(conn)
        conn.subscribed = True
        return {r: self.positions[r] for r in conn.regions}

    def unsubscribe(self, conn: Connection) -> None:
        if not conn.subscribed:
            return
        conn.subscribed = False
        self.index.remove(conn.sub)
        self.ping_slices[conn.ping_slice].discard(conn)
        self.region_users.subtract(conn.regions)
        cell, conn.presence_cell = conn.presence_cell, None
        if cell is not None:
            self.presence[cell] -= 1
            if not self.presence[cell]:
                del self.presence[cell]

    def set_position(self, region: str, entry_id: str) -> None:
        self.positions[region] = entry_id
        self.positioned(region).set()
        waiters = self._waiters.get(region)
        if waiters:  # only a region's own waiters are looked at, per feed entry
            still = []
            for reached, fut in waiters:
                if reached(entry_id):
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((reached, fut))
            if still:
                self._waiters[region] = still
            else:
                del self._waiters[region]

    def waiting(self) -> int:
        return sum(map(len, self._waiters.values()))

    async def wait_position(self, region: str, reached: Callable[[str], bool],
                            timeout: float) -> bool:
        current = self.positions.get(region)
        if current is not None and reached(current):
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (reached, fut)
        self._waiters.setdefault(region, []).append(waiter)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            # Timed out or cancelled (the socket closed): a waiter left behind would be
            # walked for every feed entry of the region for ever.
            waiters = self._waiters.get(region)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[region]

    # --- Liveness (DESIGN.md section 9: `status` frames) ---------------------------------

    def down_since(self, regions: list[str]) -> str | None:
        """When the first of these regions stopped being read, or None if all are live."""
        times = [self.down[r] for r in regions if r in self.down]
        return min(times) if times else None

    def set_down(self, down: dict[str, str]) -> None:
        """Regions that cannot be read now; every socket whose liveness changes is told."""
        before, self.down = self.down, down
        if before.keys() == down.keys():
            return
        event, self._liveness_changed = self._liveness_changed, asyncio.Event()
        event.set()
        if self.consoles is not None:
            self.consoles.on_liveness(before, down)
        frames: dict[str | None, bytes] = {}
        for sub in self.index.all():
            conn = sub.target
            was = any(r in before for r in conn.regions)
            since = self.down_since(conn.regions)
            if was != (since is not None):
                frame = frames.get(since)
                if frame is None:
                    frame = frames[since] = ws_text_frame(status_payload(since))
                # Not through `send`: a status is not ordered with posts, so a socket still
                # receiving its snapshot is told at once too.
                conn.sink.write(frame)
        if self.lagged:
            self.drop_lagged()

    async def wait_live(self, regions: list[str]) -> None:
        while self.down_since(regions) is not None:
            await self._liveness_changed.wait()

    def dispatch(self, region: str, entry_id: str, data: bytes) -> None:
        """One feed entry (see dispatch_many)."""
        self.dispatch_many(region, [(entry_id, data)])

    def dispatch_many(self, region: str, entries: Sequence[tuple[str, bytes]]) -> None:
        """Feed entries read together, in order: each socket gets the frames of all of them
        it wants in one write. The ceiling of this machine is the transport's write (a
        send() a call: ~70 % of the gateway's time at saturation, docs/performance.md):
        a socket near two posts read in one batch costs one. Nothing waits for a batch:
        a reader hands over what one XREAD returned."""
        writes: dict[Connection, bytes] = {}
        for entry_id, data in entries:
            self._dispatch(region, entry_id, data, writes)
        for conn, frames in writes.items():
            send = conn.send
            if send is not None:  # never changed while a batch is dispatched: belt and braces
                send(frames)
        if self.lagged:
            self.drop_lagged()

    def _dispatch(self, region: str, entry_id: str, data: bytes,
                  writes: dict[Connection, bytes]) -> None:
        self.set_position(region, entry_id)
        try:
            entry = decode_entry(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("gateway: skipping undecodable feed entry %s: %s", entry_id, exc)
            return
        if not carries_frame(entry):
            return
        if self.consoles is not None:
            self.consoles.on_entry(region, entry)
        self.dispatched += 1
        republished_at = self._remember(region, entry_id, entry)
        # One encoding per set of regions read (one set in a one-region deployment): a
        # client's cursor names exactly the regions it reads, so resuming with more
        # regions is a reset, never a silent gap.
        frames: dict[tuple[str, ...], bytes] = {}
        screens = 0
        key: tuple[str, ...] | None = None
        frame = b""
        recipients = self.index.recipients(entry.kind, entry.lat, entry.lon,
                                           matched_as_local(entry))
        if republished_at is not None:
            # Only sockets that subscribed since can lack it: the others had it live.
            recipients = [conn for conn in recipients if conn.since >= republished_at]
        for conn in recipients:
            if conn.regions_key is not key:  # keys are interned: `is` is enough
                key = conn.regions_key
                cached = frames.get(key)
                if cached is None:
                    payload = entry_payload(entry, self.cursor_for(key))
                    assert payload is not None  # carries_frame(entry), checked above
                    cached = frames[key] = ws_text_frame(payload)
                frame = cached
            screens += conn.screen
            # This loop is most of the gateway's time: nothing in it that can be elsewhere.
            if conn.send is None:
                conn.pending.append(frame)
                if len(conn.pending) == self.pending_max + 1:
                    self.lagged.append(conn)
            else:
                before = writes.get(conn)
                writes[conn] = frame if before is None else before + frame
        sent = len(recipients)
        self.deliveries += sent
        metrics.DELIVERIES.inc(sent)
        # Reach counts a post's first delivery only: an edit or republish (`entry.edit`)
        # or a replay goes to the same sockets again, and counting it would give the shop
        # a fresh count of the sockets around it at every edit. No state per socket or per
        # post, nothing more in the loop above.
        if entry.type == "post" and sent and not entry.edit and republished_at is None:
            counts = self.reach.setdefault((region, entry.id), [0, 0])
            counts[0] += sent - screens
            counts[1] += screens

    def _remember(self, region: str, entry_id: str, entry: FeedEntry) -> int | None:
        """Note a post as dispatched; if this very post (same id, same content) was already
        dispatched, when (`dispatched` then) instead.

        A Redis crash loses up to its last second of writes (AOF fsync once a second):
        the enricher then publishes the posts of that second again, under new feed ids,
        and sockets that received them the first time must not get them twice. An edit
        changes the content, so it is dispatched as usual."""
        if entry.type != "post":
            return None
        digest = hash(bytes(entry.post))
        seen = self.recent.get(entry.id)
        if seen is not None and seen[0] == digest:
            return seen[1]
        self.recent.pop(entry.id, None)
        self.recent[entry.id] = (digest, self.dispatched, region, entry_id)
        if len(self.recent) > self.recent_max:
            del self.recent[next(iter(self.recent))]
        return None

    def sent_before(self, region: str, entry: FeedEntry, cursor: str) -> bool:
        """Whether a client at `cursor` (in `region`) already had this post: the same post,
        same content, was dispatched at or before its cursor (replays after a crash)."""
        seen = self.recent.get(entry.id) if entry.type == "post" else None
        return (seen is not None and seen[0] == hash(bytes(entry.post)) and seen[2] == region
                and cursors.key(seen[3]) <= cursors.key(cursor))

    def cursor_for(self, regions: tuple[str, ...]) -> str:
        return cursors.encode({r: self.positions[r] for r in regions}, self.default_region)

    def ping(self, part: int) -> None:
        """Ping one of the PING_SLICES slices of the sockets: 10,000 pings written in one
        go stall dispatch for ~100 ms (docs/performance.md), a slice at a time does not."""
        frames: dict[tuple[str, ...], bytes] = {}
        for conn in self.ping_slices[part]:
            if conn.send is None:
                continue
            frame = frames.get(conn.regions_key)
            if frame is None:
                frame = frames[conn.regions_key] = ws_text_frame(
                    ping_payload(self.cursor_for(conn.regions_key)))
            conn.send(frame)
        if self.lagged:
            self.drop_lagged()

    def drop_lagged(self) -> None:
        """Close the sockets that fell behind during the writes just made (after them: a
        slice or a recipient list is never changed while it is walked)."""
        lagged = self.lagged[:]
        self.lagged.clear()  # the list every Connection appends to: emptied, not replaced
        for conn in lagged:
            # Still behind? (It may have drained, or moved and started afresh, meanwhile.)
            if conn.sink.buffered() > self.buffer_max or len(conn.pending) > self.pending_max:
                self.drop_lagging(conn)

    def drop_lagging(self, conn: Connection) -> None:
        if not conn.subscribed:
            return  # already dropped, or never subscribed
        self.dropped_slow += 1
        metrics.DROPPED_SLOW.inc()
        self.unsubscribe(conn)
        conn.sink.close(CLOSE_LAGGING, "lagging: reconnect with your cursor")

    def close_all(self, code: int, reason: str) -> None:
        for sub in list(self.index.all()):
            self.unsubscribe(sub.target)
            sub.target.sink.close(code, reason)
