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
from collections.abc import Callable
from typing import Protocol

import msgspec

from feed.frames import decode_entry, entry_payload, ping_payload, ws_text_frame
from feed.geo import CellGrid
from feed.index import Subscriber, SubscriberIndex
from streetfeed import metrics
from streetfeed.settings import Settings

log = logging.getLogger("streetfeed.gateway")

# Close code for a socket that fell behind: "try again later", with its cursor.
CLOSE_LAGGING = 1013
# Frames held for a socket while its snapshot is being read.
PENDING_MAX = 5_000
# Presence is counted in cells of ~110 m: fine enough for "within R m of the shop".
PRESENCE_CELL_DEG = 0.001


class Sink(Protocol):
    @property
    def open(self) -> bool: ...
    def write(self, frame: bytes) -> None: ...
    def buffered(self) -> int: ...
    def close(self, code: int, reason: str = "") -> None: ...


class Connection:
    __slots__ = ("_buffer_max", "live", "pending", "presence_cell", "screen", "sink", "sub")

    def __init__(self, sink: Sink, buffer_max: int) -> None:
        self.sink = sink
        self.sub: Subscriber[Connection] = Subscriber(self)
        self.live = False
        self.pending: list[bytes] = []
        self.screen = False
        self.presence_cell: int | None = None
        self._buffer_max = buffer_max

    def deliver(self, frame: bytes) -> bool:
        """Write (or hold) one frame; False when the socket has fallen too far behind."""
        if not self.live:
            self.pending.append(frame)
            return len(self.pending) <= PENDING_MAX
        self.sink.write(frame)
        return self.sink.buffered() <= self._buffer_max

    def go_live(self) -> bool:
        pending, self.pending = self.pending, []
        self.live = True
        for frame in pending:
            self.sink.write(frame)
        return self.sink.buffered() <= self._buffer_max

    def hold(self) -> None:
        self.live = False


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.index: SubscriberIndex[Connection] = SubscriberIndex(
            CellGrid(settings.geo_cell_deg), use_cells=settings.gateway_use_index)
        self.buffer_max = settings.gateway_socket_buffer_max
        # The last feed entry dispatched; None until the reader knows where the stream is.
        self.position: str | None = None
        self.positioned = asyncio.Event()
        self.deliveries = 0
        self.dropped_slow = 0
        # Watchers per small cell (counts only: positions never leave this process) and
        # deliveries per post since the last flush: [phones, screens].
        self.presence_grid = CellGrid(PRESENCE_CELL_DEG)
        self.presence: Counter[int] = Counter()
        self.reach: dict[str, list[int]] = {}
        self._waiters: list[tuple[Callable[[str], bool], asyncio.Future[None]]] = []

    def connect(self, sink: Sink) -> Connection:
        return Connection(sink, self.buffer_max)

    def subscribe(self, conn: Connection) -> str:
        """Start delivering to `conn` (held until go_live); the position it starts after."""
        assert self.position is not None
        self.index.add(conn.sub)
        conn.presence_cell = self.presence_grid.cell_of(conn.sub.lat, conn.sub.lon)
        self.presence[conn.presence_cell] += 1
        return self.position

    def unsubscribe(self, conn: Connection) -> None:
        self.index.remove(conn.sub)
        cell, conn.presence_cell = conn.presence_cell, None
        if cell is not None:
            self.presence[cell] -= 1
            if not self.presence[cell]:
                del self.presence[cell]

    def set_position(self, entry_id: str) -> None:
        self.position = entry_id
        self.positioned.set()
        if self._waiters:
            still = []
            for reached, fut in self._waiters:
                if reached(entry_id):
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((reached, fut))
            self._waiters = still

    async def wait_position(self, reached: Callable[[str], bool], timeout: float) -> bool:
        if self.position is not None and reached(self.position):
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((reached, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False

    def dispatch(self, entry_id: str, data: bytes) -> None:
        try:
            entry = decode_entry(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("gateway: skipping undecodable feed entry %s: %s", entry_id, exc)
            self.set_position(entry_id)
            return
        payload = entry_payload(entry, entry_id)
        if payload is not None:
            frame = ws_text_frame(payload)
            lagging: list[Connection] = []
            sent = screens = 0
            for sub in self.index.matching(entry.kind, entry.lat, entry.lon):
                sent += 1
                screens += sub.target.screen
                if not sub.target.deliver(frame):
                    lagging.append(sub.target)
            self.deliveries += sent
            metrics.DELIVERIES.inc(sent)
            if entry.type == "post" and sent:
                counts = self.reach.setdefault(entry.id, [0, 0])
                counts[0] += sent - screens
                counts[1] += screens
            for conn in lagging:
                self.drop_lagging(conn)
        self.set_position(entry_id)

    def ping(self) -> None:
        if self.position is None:
            return
        frame = ws_text_frame(ping_payload(self.position))
        lagging = [sub.target for sub in self.index.all()
                   if sub.target.live and not sub.target.deliver(frame)]
        for conn in lagging:
            self.drop_lagging(conn)

    def drop_lagging(self, conn: Connection) -> None:
        self.dropped_slow += 1
        metrics.DROPPED_SLOW.inc()
        self.unsubscribe(conn)
        conn.sink.close(CLOSE_LAGGING, "lagging: reconnect with your cursor")

    def close_all(self, code: int, reason: str) -> None:
        for sub in list(self.index.all()):
            self.unsubscribe(sub.target)
            sub.target.sink.close(code, reason)
