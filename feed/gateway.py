"""WS /ws/feed: snapshot or resume, then live frames for one subscriber.

Per socket: validate the subscription, register it with the hub (frames are
held), send the snapshot or the replay after the client's cursor, a `ping`
carrying the cursor reached, then release held frames and go live. A
`subscribe` message moves the subscription: `reset` and a fresh snapshot of
the new area follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from urllib.parse import parse_qsl

import msgspec
from redis.asyncio import Redis

from feed.frames import (
    entry_payload,
    error_payload,
    matched_as_local,
    ping_payload,
    post_payload,
    reset_payload,
    status_payload,
    ws_text_frame,
)
from feed.hub import Connection, Hub, Sink, SocketGone
from feed.raw_ws import NativeChannel
from feed.reader import Readers
from feed.replays import ReplayEntry, ReplayReads
from feed.snapshot import snapshot_area
from feed.sse import EventStream, EventStreams
from rules import cursor as cursors
from rules.addresses import counted_address
from rules.clock import Clock
from rules.errors import ApiError, InvalidInput, RateLimited, Unavailable
from rules.json_keys import refuse_duplicate_keys
from rules.regions import regions_for
from runtime.collector import SocketCounts
from runtime.settings import Settings
from schemas.feed import ClientMessage, Subscription
from services.supervision import Backoff
from storage.live import LiveIndex
from storage.ratelimit import RateLimiter
from storage.redis_conn import REDIS_DOWN

__all__ = ["Gateway", "SubscriptionError", "parse_subscription", "same_origin"]

log = logging.getLogger("streetfeed.gateway")

_decode_message = msgspec.json.Decoder(ClientMessage).decode

CLOSE_POLICY = 1008
CLOSE_UNSUPPORTED = 1003
CLOSE_INTERNAL_ERROR = 1011


class SubscriptionError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FeedUnavailable(Exception):
    """A region's feed could not be read in time (Redis unreachable)."""


# What setting a socket up waits out (told `live: false`) and tries again.
_SETUP_RETRIED: tuple[type[Exception], ...] = (*REDIS_DOWN, FeedUnavailable)


def parse_subscription(pairs: Iterable[tuple[str, str]]) -> Subscription:
    """A query string's (name, value) pairs -> Subscription, strict about names, ranges
    and a name given twice (which one would count? `lat` twice read as the last)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise SubscriptionError("invalid_subscription", f"{name!r} given more than once")
        params[name] = value
    values: dict[str, object] = {k: v for k, v in params.items() if k != "cursor"}
    kinds = params.get("kinds")
    if kinds is not None:
        values["kinds"] = [k for k in kinds.split(",") if k] or None
    try:
        return msgspec.convert(values, Subscription, strict=False)
    except msgspec.ValidationError as exc:
        raise SubscriptionError("invalid_subscription", str(exc)) from None


def same_origin(origin: str, host: str, scheme: str) -> bool:
    """Whether `origin` is the page's own (an https page may reach an http listener: TLS
    ends at a proxy that does not say so)."""
    same = {f"http://{host}", f"https://{host}"} if scheme in ("ws", "http") else {
        f"https://{host}"}
    return origin in same


def origin_allowed(origin: str, host: str, scheme: str, allowed: tuple[str, ...]) -> bool:
    """Same origin always; other origins only when listed (exactly, scheme included)."""
    return same_origin(origin, host, scheme) or origin in allowed


class Gateway:
    def __init__(self, redis: Redis, settings: Settings, hub: Hub, readers: Readers,
                 clock: Clock, limiter: RateLimiter,
                 counts: SocketCounts | None = None) -> None:
        self.redis = redis
        self.clock = clock
        self.limiter = limiter
        self.per_address: Counter[str] = Counter()
        # `open` is the sum of per_address, kept beside it (checked at every handshake: a
        # storm); `closed` is read by the garbage collector's policy (runtime/collector.py).
        self.counts = counts if counts is not None else SocketCounts()
        self.settings = settings
        self.hub = hub
        self.readers = readers
        self.lives = {r: LiveIndex(redis, r, settings)
                      for r in settings.region_names}
        # Resuming sockets' reads of the feed streams, made together (a restart's storm).
        self.replays = ReplayReads(redis, settings.replay_max + 1)
        # GET /api/v1/feed/stream's open streams (feed.sse), counted with the sockets.
        self.streams = EventStreams()

    async def admit(self, origin: str | None, host: str, scheme: str,
                     address: str) -> ApiError | None:
        """Refusals made before the handshake completes (answered as plain HTTP); console
        sockets (web.console) pass the same ones, counted with feed sockets."""
        if origin is not None and not origin_allowed(origin, host, scheme,
                                                     self.settings.allowed_origins):
            return ApiError("this origin may not open the feed", code="origin_not_allowed",
                            status=403)
        refusal = self._over_caps(address)
        if refusal is not None:
            return refusal
        try:
            subject = await self.limiter.address_key(address)
            await self.limiter.hit("address_sockets", subject,
                                   self.settings.address_sockets_per_minute)
        except RateLimited as exc:
            return exc
        except REDIS_DOWN:
            pass  # no Redis, no shared counter: the per-process cap still holds
        # Again: handshakes admitted while this one waited on Redis may have filled the
        # process (second cold attacker of issue 19: 1,000 admitted at a cap of 900 when
        # they came at 250 a second). A socket is counted (`opened`) with no wait after this.
        return self._over_caps(address)

    def _over_caps(self, address: str) -> ApiError | None:
        if self.per_address[counted_address(address)] >= self.settings.max_sockets_per_address:
            return RateLimited("too many open sockets from this address", retry_after=30)
        if self.counts.open >= self.settings.max_sockets:
            return Unavailable("this server has too many open sockets; retry shortly",
                               code="server_busy", retry_after=5)
        return None

    def attach(self, channel: NativeChannel, query: str, origin: str | None, host: str,
               address: str, scheme: str) -> NativeSocket:
        """A feed socket whose handshake feed.raw_ws has parsed; we answer it. `address`
        and `scheme` are the client's, behind a trusted proxy too (rules/proxies.py)."""
        socket = NativeSocket(self, channel, address)
        socket.setup = asyncio.create_task(socket.open(query, origin, host, scheme))
        return socket

    # --- Per socket ---------------------------------------------------------------------

    def opened(self, address: str) -> None:
        self.per_address[counted_address(address)] += 1
        self.counts.open += 1

    def closed(self, conn: Connection | None, address: str) -> None:
        if conn is not None:
            self.hub.unsubscribe(conn)
            conn.release()
        counted = counted_address(address)
        self.per_address[counted] -= 1
        self.counts.open -= 1
        self.counts.closed += 1
        if not self.per_address[counted]:
            del self.per_address[counted]

    async def open(self, conn: Connection, query: str) -> bool:
        """Subscribe as the query says, send the snapshot or replay; False if refused.

        During an outage the socket stays open: it is told `live: false` at once, and its
        snapshot or replay follows once the feed can be read again."""
        pairs = parse_qsl(query, keep_blank_values=True)
        try:
            sub = parse_subscription(pairs)
        except SubscriptionError as exc:
            self._refuse(conn.sink, exc.code, str(exc), CLOSE_POLICY)
            return False
        await self.follow(conn, sub, dict(pairs).get("cursor"))
        return True

    async def follow(self, conn: Connection, sub: Subscription, cursor: str | None) -> None:
        """Subscribe a socket or an event stream to `sub`, and send its snapshot or its
        replay after `cursor` (kept waiting during an outage, as `open` says)."""
        self._locate(conn, sub)

        async def first() -> None:
            await self._wait_positioned(conn)
            await self._start(conn, cursor)
        await self._until_set_up(conn, first)

    @contextlib.asynccontextmanager
    async def event_stream(self, sub: Subscription, cursor: str | None,
                           address: str) -> AsyncIterator[EventStream]:
        """An event stream subscribed to `sub` (feed.sse), admitted already (`admit`) and
        counted as a socket of `address` while the caller sends its events."""
        stream = EventStream(b"retry: %d\n\n" % self.settings.sse_retry_ms)
        self.opened(address)
        self.streams.open.add(stream)
        conn = self.hub.connect(stream)
        setup = asyncio.create_task(self._set_up_stream(conn, sub, cursor))
        life = asyncio.get_running_loop().call_later(self.settings.sse_max_life_s,
                                                     stream.close, 1000, "reconnect")
        try:
            yield stream
        finally:
            life.cancel()
            setup.cancel()
            self.streams.open.discard(stream)
            stream.close(1000)
            self.closed(conn, address)

    async def _set_up_stream(self, conn: Connection, sub: Subscription,
                             cursor: str | None) -> None:
        try:
            await self.follow(conn, sub, cursor)
        except SocketGone:
            pass  # the client left while its snapshot was read
        except Exception:
            # As a socket's (NativeSocket.open): never left open but unfed.
            log.exception("gateway: setting up an event stream failed")
            conn.sink.close(CLOSE_INTERNAL_ERROR, "internal error: reconnect")

    async def _until_set_up(self, conn: Connection,
                            attempt: Callable[[], Awaitable[None]]) -> None:
        """Run `attempt` (subscribe, snapshot or replay, go live) until it succeeds. While
        the socket's regions cannot be read it is told `live: false` once, waits for the
        feed, is told `live: true`, and tries again: it is never closed for an outage."""
        told_down = self._tell_if_down(conn, False)
        backoff = Backoff(0.2, 2.0)
        while True:
            try:
                await attempt()
                if told_down and self.hub.down_since(conn.regions) is None:
                    # The feed came back while this socket was not subscribed, so the
                    # hub's `live: true` went to the others only.
                    conn.sink.write(ws_text_frame(status_payload(None)))
                return
            except _SETUP_RETRIED:
                self.hub.unsubscribe(conn)
                conn.pending.clear()
                conn.hold()
            told_down = self._tell_if_down(conn, told_down)
            if told_down:
                await self.hub.wait_live(conn.regions)
                conn.sink.write(ws_text_frame(status_payload(None)))
                told_down = False
            else:  # a blip the liveness check has not seen (yet): try again shortly
                await asyncio.sleep(backoff.next())

    def _tell_if_down(self, conn: Connection, told: bool) -> bool:
        """Say `live: false` to a socket being set up while its regions cannot be read
        (once); whether it has been told."""
        since = self.hub.down_since(conn.regions)
        if since is not None and not told:
            conn.sink.write(ws_text_frame(status_payload(since)))
            return True
        return told

    def parse_message(self, conn: Connection, text: str) -> Subscription | None:
        """A client message, or None after answering it with an error frame."""
        try:
            message = _decode_message(text)
            # Which `lat` of two would count? The last, here: refused as on every edge.
            refuse_duplicate_keys(text.encode())
            return message
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            conn.sink.write(ws_text_frame(error_payload("invalid_message", str(exc))))
        except InvalidInput as exc:
            conn.sink.write(ws_text_frame(error_payload(exc.code, exc.message)))
        return None

    async def move(self, conn: Connection, request: Subscription) -> None:
        try:
            await self._move(conn, request)
        except SocketGone:
            pass  # closed while moving
        except Exception:
            log.exception("gateway: moving a feed socket failed")
            self.hub.unsubscribe(conn)
            conn.sink.close(CLOSE_INTERNAL_ERROR, "internal error: reconnect")

    def refuse_moves(self, conn: Connection) -> None:
        self.hub.unsubscribe(conn)
        self._refuse(conn.sink, "too_many_moves",
                     f"more than {self.settings.moves_per_minute} subscribe messages a minute",
                     CLOSE_POLICY)

    def on_binary(self, conn: Connection) -> None:
        self._refuse(conn.sink, "binary_not_supported", "send JSON text frames",
                     CLOSE_UNSUPPORTED)

    def _locate(self, conn: Connection, sub: Subscription) -> None:
        """Set where the socket watches, and make sure its regions are being read."""
        conn.sub.place(sub.lat, sub.lon, sub.radius_m, sub.kinds, sub.local)
        conn.screen = sub.client == "screen"
        conn.regions = regions_for(self.settings.all_regions, sub.lat, sub.lon, sub.radius_m)
        conn.regions_key = self.hub.regions_key(conn.regions)
        self.readers.ensure(conn.regions)

    async def _wait_positioned(self, conn: Connection) -> None:
        for region in conn.regions:
            positioned = self.hub.positioned(region)
            if positioned.is_set():
                continue  # as it is once the reader started: no task and timer per socket
            try:
                await asyncio.wait_for(positioned.wait(), self.settings.gateway_position_wait_s)
            except TimeoutError:
                raise FeedUnavailable(region) from None

    def _refuse(self, sink: Sink, code: str, message: str, close_code: int) -> None:
        sink.write(ws_text_frame(error_payload(code, message)))
        sink.close(close_code, code)

    async def _start(self, conn: Connection, cursor: str | None) -> None:
        wanted = None if cursor is None else cursors.decode(cursor, self.settings.region)
        if wanted is not None and set(conn.regions) <= set(wanted):
            for region in conn.regions:
                target = cursors.key(wanted[region])
                position = self.hub.positions.get(region)
                if position is not None and cursors.key(position) >= target:
                    continue
                # Resumed on a process whose reader is a little behind the last one: wait
                # until it has read as far as the client had, so nothing comes twice. A
                # cursor newer than the stream itself (forged, or a Redis restored from an
                # older AOF) is no reader's future: it is a reset, answered at once.
                if target > cursors.key((await self.replays.ends(region)).last_id):
                    continue
                def reached(p: str, t: tuple[int, int] = target) -> bool:
                    return cursors.key(p) >= t

                await self.hub.wait_position(region, reached,
                                             self.settings.gateway_resume_wait_s)
        start = self.hub.subscribe(conn)
        backlog = None
        if wanted is not None:
            backlog = await self._backlog(conn.regions, wanted, start)
        ping = ws_text_frame(ping_payload(self._cursor(start)))
        if backlog is not None and wanted is not None:
            frames = [frame for region, entries in backlog.items()
                      for frame in self._replay(conn, region, wanted[region], start, entries)]
            frames.append(ping)
            conn.sink.write_many(frames)  # the replay and the ping that ends it at once
        else:
            if cursor is not None:
                conn.sink.write(ws_text_frame(reset_payload(self._cursor(start))))
            await self._snapshot(conn, start)
            conn.sink.write(ping)
        if not conn.go_live():
            self.hub.drop_lagging(conn)

    def _cursor(self, positions: dict[str, str]) -> str:
        return cursors.encode(positions, self.settings.region)

    async def _snapshot(self, conn: Connection, start: dict[str, str]) -> None:
        snap = await snapshot_area({r: self.lives[r] for r in conn.regions}, conn.sub,
                                   now_ts=self.clock.now().timestamp(),
                                   limit=self.settings.snapshot_limit, upto=start)
        cursor = self._cursor(start)
        for post_json in snap.posts:
            conn.sink.write(ws_text_frame(post_payload(post_json, cursor)))

    async def _backlog(self, regions: list[str], wanted: dict[str, str],
                       start: dict[str, str]) -> dict[str, list[ReplayEntry]] | None:
        """The feed entries a resume replays, region by region; None when the cursor cannot
        be resumed (past retention, newer than the stream, another area's) or there are
        more than `replay_max` entries after it in all (the client gets `reset` and a
        snapshot instead). Read with every other resuming socket's (feed.replays): bounded
        XRANGEs, so a day-old cursor costs what a fresh one does. None too when the first
        entry missed in a region is past retention."""
        for region in regions:
            if region not in wanted or cursors.key(wanted[region]) > cursors.key(start[region]):
                return None
        if len(regions) == 1:  # most sockets: no task and gathering future of their own
            reads = [await self.replays.read(regions[0], wanted[regions[0]], start[regions[0]])]
        else:
            reads = await asyncio.gather(*(self.replays.read(r, wanted[r], start[r])
                                           for r in regions))
        budget = self.settings.replay_max
        # This process's clock, not the server's that made the ids: a skew only moves
        # which cursors near the horizon get a reset, since what was trimmed is judged
        # from the stream itself (_judge).
        horizon = cursors.horizon(int(self.clock.now().timestamp() * 1000),
                                  self.settings.feed_retention_s)
        backlog: dict[str, list[ReplayEntry]] = {}
        for region, read in zip(regions, reads, strict=True):
            if read.ends.judge(wanted[region]) is not cursors.Resume.REPLAY:
                return None
            bound = cursors.key(start[region])
            entries = [entry for entry in read.entries if entry[0] <= bound]
            budget -= len(entries)
            if budget < 0 or (entries and not cursors.within_retention(entries[0][1],
                                                                       horizon)):
                return None
            backlog[region] = entries
        return backlog

    def _replay(self, conn: Connection, region: str, cursor: str, start: dict[str, str],
                entries: list[ReplayEntry]) -> list[bytes]:
        """The frames of a region's entries after `cursor` that the socket wants."""
        sub = conn.sub
        frames = []
        for _key, entry_id, entry in entries:
            if entry is None:
                continue  # not decodable: skipped, as the live reader skips it
            if (sub.wants(entry.kind, entry.lat, entry.lon, matched_as_local(entry))
                    and not self.hub.sent_before(region, entry, cursor)):
                payload = entry_payload(entry, self._cursor({**start, region: entry_id}))
                if payload is not None:
                    frames.append(ws_text_frame(payload))
        return frames

    async def _move(self, conn: Connection, request: Subscription) -> None:
        self.hub.unsubscribe(conn)
        conn.hold()
        self._locate(conn, request)

        async def moved() -> None:
            await self._wait_positioned(conn)
            start = self.hub.subscribe(conn)
            conn.sink.write(ws_text_frame(reset_payload(self._cursor(start))))
            await self._snapshot(conn, start)
            conn.sink.write(ws_text_frame(ping_payload(self._cursor(start))))
            if not conn.go_live():
                self.hub.drop_lagging(conn)
        # During an outage a move waits for the feed, as a new socket does (it used to
        # close the socket 1013 while new sockets were kept open).
        await self._until_set_up(conn, moved)


class NativeSocket:
    """One feed socket served without ASGI: setup runs in a task that ends once the
    socket is live; messages arrive by callback; moves run one at a time."""

    __slots__ = ("address", "channel", "conn", "gateway", "mover", "moves", "moves_since",
                 "next_move", "setup")

    def __init__(self, gateway: Gateway, channel: NativeChannel, address: str) -> None:
        self.gateway = gateway
        self.channel = channel
        self.address = address
        self.conn: Connection | None = None
        self.setup: asyncio.Task[None] | None = None
        self.mover: asyncio.Task[None] | None = None
        self.next_move: Subscription | None = None
        # `subscribe` messages received in the minute that started at `moves_since`.
        self.moves = 0
        self.moves_since = 0.0

    async def open(self, query: str, origin: str | None, host: str, scheme: str) -> None:
        try:
            await self._open(query, origin, host, scheme)
        except SocketGone:
            self.next_move = None  # the client left while its snapshot was read
        except Exception:
            # Anything unforeseen (a Redis error reply, say): a socket left open but never
            # fed would look live to its page for ever; closed, its page reconnects.
            log.exception("gateway: setting up a feed socket failed")
            self.channel.close(CLOSE_INTERNAL_ERROR, "internal error: reconnect")
        finally:
            self.setup = None  # a finished task is ~1 KiB a socket for nothing
        if self.conn is not None and self.next_move is not None:
            # A `subscribe` sent while the snapshot was read (the page's first GPS fix).
            self.mover = asyncio.create_task(self._moves(None))

    async def _open(self, query: str, origin: str | None, host: str, scheme: str) -> None:
        gateway = self.gateway
        refusal = await gateway.admit(origin, host, scheme, self.address)
        if refusal is not None:
            self.channel.reject(refusal.status, refusal.body(),
                                [("Content-Type", "application/json"),
                                 *refusal.headers().items()])
            return
        if not self.channel.accept():
            return  # the peer left during admission
        gateway.opened(self.address)
        self.conn = gateway.hub.connect(self.channel)
        if not await gateway.open(self.conn, query):
            self.next_move = None  # refused: the socket is closing

    def on_message(self, data: bytes, text: bool) -> None:
        conn = self.conn
        if conn is None:
            return  # the client may not send before the handshake is answered
        if not text:
            self.gateway.on_binary(conn)
            return
        try:
            decoded = data.decode()
        except UnicodeDecodeError:
            self.channel.close(1007, "invalid UTF-8")
            return
        request = self.gateway.parse_message(conn, decoded)
        if request is None:
            return
        if self._too_many_moves():
            return
        if self.setup is not None or (self.mover is not None and not self.mover.done()):
            # Setting up or moving: the move waits its turn, and only the latest position
            # matters.
            self.next_move = request
            return
        self.mover = asyncio.create_task(self._moves(request))

    def _too_many_moves(self) -> bool:
        """Each move costs a reset and a whole snapshot: past the settings' moves a minute
        (a page moves when its owner walks 30 m or changes a filter), the socket is closed
        (cold try: 20 sockets moving every 50 ms took post latency from 9 to 350 ms)."""
        now = asyncio.get_running_loop().time()
        if now - self.moves_since >= 60.0:
            self.moves_since, self.moves = now, 0
        self.moves += 1
        if self.moves <= self.gateway.settings.moves_per_minute or self.conn is None:
            return False
        self.next_move = None
        self.gateway.refuse_moves(self.conn)
        return True

    async def _moves(self, request: Subscription | None) -> None:
        if request is None:
            request, self.next_move = self.next_move, None
        interval = self.gateway.settings.move_interval_s
        while request is not None and self.conn is not None:
            await self.gateway.move(self.conn, request)
            if self.next_move is not None:
                # At most one snapshot per interval: moves sent meanwhile are folded into
                # the latest.
                await asyncio.sleep(interval)
            request, self.next_move = self.next_move, None

    def on_closed(self) -> None:
        for task in (self.setup, self.mover):
            if task is not None and not task.done():
                task.cancel()
        if self.conn is not None:
            self.gateway.closed(self.conn, self.address)
            self.conn = None
