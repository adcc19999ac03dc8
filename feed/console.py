"""WS /ws/shop: what a shopkeeper's console is told, pushed when it changes.

A console socket gets a snapshot (the shop's profile, its live posts, then people
watching and reach once they can be counted) and afterwards only changes, each when
it happens, with no timer per socket:

- its own posts, made live, corrected, withdrawn or expired: taken from the feed
  entries this process's reader dispatches anyway (`on_entry`, one dict lookup per
  entry: a post is matched by its shop's position, a tombstone by its id);
- people watching: the presence board (feed.presence) says when a region's reports
  changed; the counts are then computed once per watched shop, as GET /stats does (a
  sum over presence cells, whatever the number of sockets), and sent only if what the
  shop may be told ("fewer than 5" under 5) is different;
- reach: first deliveries only grow when a post is dispatched, and every gateway adds
  its count to Redis within a presence interval, so the counts are read a little after
  each own post's entry, a few rounds in a row ("fewer than 5" under 5, as GET /stats);
- the profile (open or closed, the shop's own opening posts over its hours): at its
  `next_change`, when an own opening post comes or goes, and on every shop write, which
  storage.shops publishes on a Pub/Sub channel (a rotated token or a disabled shop ends
  the shop's console sockets);
- the producers it names and its open holds: read again on the same channel, on which
  naming or unlinking a producer, and every step of a hold, are announced too.

Everything is per shop, shared by the shop's sockets in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import msgspec
from redis.asyncio import Redis

from feed.frames import error_payload, status_payload, ws_text_frame
from feed.hub import Hub, Sink
from feed.presence import PresenceBoard, audience
from feed.reader import Readers
from feed.stats import reach_of
from rules.clock import Clock
from rules.opening import offer_closing
from rules.reach import shown_reach
from rules.shops import profile_of
from runtime.settings import Settings
from schemas.console import (
    ConsoleExpired,
    ConsoleHolds,
    ConsolePost,
    ConsolePosts,
    ConsoleProducers,
    ConsoleShop,
    ConsoleStats,
    ConsoleWithdrawn,
)
from schemas.feed import FeedEntry, Reach
from schemas.hours import OpeningOverride
from schemas.limits import AUDIENCE_RADII_M
from schemas.shops import ShopRecord
from services.holds import Holds
from services.producers import producers_of_shop
from storage import openings, shops
from storage.live import live_posts_newest_first
from storage.producers import ProducerStore

__all__ = ["ConsoleSocket", "Consoles"]

log = logging.getLogger("streetfeed.console")

_encode = msgspec.json.Encoder().encode

CLOSE_POLICY = 1008
CLOSE_LAGGING = 1013
# Reach is read this long after a post's entry (every gateway flushes its deliveries
# once a presence interval), this many times in a row.
_REACH_GRACE_S = 0.5
_REACH_ROUNDS = 3
# A post's reach before its counts are read: as a count under 5 is shown.
_NOT_COUNTED = shown_reach(0, 0)
# An opening change is looked at this long after its due time (the state has flipped).
_OPENING_GRACE_S = 1.0


class _ShopRef(msgspec.Struct):
    id: str


class _PostShop(msgspec.Struct):
    shop: _ShopRef


_decode_post_shop = msgspec.json.Decoder(_PostShop).decode


class ConsoleSocket:
    """One console socket: where to write, the token it was opened with, its shop."""

    __slots__ = ("closed", "held", "session", "sink", "token_hash", "watch")

    def __init__(self, sink: Sink, record: ShopRecord, session: str | None) -> None:
        self.sink = sink
        # A socket lives only as long as the token (hash) it was opened with, and the
        # console session (its Redis key) if it was opened with one.
        self.token_hash = record.token_hash
        self.session = session
        self.watch: _Watch | None = None
        # Frames pushed while its snapshot is read, written after it; None once live.
        self.held: list[bytes] | None = []
        self.closed = False


class _Watch:
    """A shop with console sockets in this process, and what they were last told."""

    __slots__ = ("gone", "lists", "opening_timer", "overrides", "posts", "reach",
                 "reach_rounds", "reach_timer", "record", "reload_again", "reloading",
                 "shop_frame", "sockets", "stats_frame")

    def __init__(self, record: ShopRecord) -> None:
        self.record = record
        # The shop's own opening posts, which override its hours (storage.openings).
        self.overrides: list[OpeningOverride] = []
        self.sockets: set[ConsoleSocket] = set()
        self.posts: set[str] = set()  # live post ids
        # Posts that ended while a socket's snapshot was being read.
        self.gone: set[str] = set()
        self.reach: dict[str, Reach] = {}
        self.shop_frame = b""
        # The frames of the shop's lists read with its record (producers, holds), by type.
        self.lists: dict[str, bytes] = {}
        self.stats_frame = b""
        self.opening_timer: asyncio.TimerHandle | None = None
        self.reach_timer: asyncio.TimerHandle | None = None
        self.reach_rounds = 0
        self.reloading = False  # its record is being read again (Consoles._reload)
        self.reload_again = False  # and a write came meanwhile

    @property
    def position(self) -> tuple[float, float]:
        return self.record.lat, self.record.lon


class Consoles:
    """Every console socket of this process, by shop."""

    def __init__(self, redis: Redis, settings: Settings, hub: Hub, readers: Readers,
                 presence: PresenceBoard, clock: Clock, holds: Holds) -> None:
        self.redis = redis
        self.settings = settings
        self.hub = hub
        self.readers = readers
        self.presence = presence
        self.clock = clock
        self.producers = ProducerStore(redis)
        self.holds = holds
        self.watches: dict[str, _Watch] = {}
        # Shops watched by position (a post's feed entry carries its shop's position) and
        # the shop of each of their live posts (a tombstone carries the post id).
        self._at: dict[tuple[float, float], set[str]] = {}
        self._owner: dict[str, str] = {}
        self._stats_due: set[str] = set()  # regions whose counts changed, folded
        # Sockets whose snapshot is being read (`held` is a list): a tombstone of no
        # watched post goes to these only, not to a scan of every socket.
        self._reading: set[ConsoleSocket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        hub.consoles = self
        presence.on_change = self._presence_changed

    # --- Sockets --------------------------------------------------------------------

    async def open(self, sink: Sink, record: ShopRecord,
                   session: str | None = None) -> ConsoleSocket:
        """Register a socket of `record`'s shop (opened with the console session whose key
        is `session`, if any) and send its snapshot; frames pushed meanwhile follow it. A
        socket closed meanwhile is left as `close` left it."""
        socket = ConsoleSocket(sink, record, session)
        watch = self.watches.get(record.id) or self._watch(record)
        watch.sockets.add(socket)
        socket.watch = watch
        self._reading.add(socket)
        try:
            since = self.hub.down_since([record.region])
            if since is not None:
                sink.write(ws_text_frame(status_payload(since)))
            # The reader positioned first, nothing published after the snapshot below can
            # pass unseen (if the feed cannot be read now, `status` has said so).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hub.positioned(record.region).wait(),
                                       self.settings.gateway_position_wait_s)
            posts = await live_posts_newest_first(self.redis, record.region, record.id,
                                                  self.clock.now().timestamp())
            # Withdrawn or expired while they were read: their tombstones are held.
            posts = [(post_id, json) for post_id, json in posts if post_id not in watch.gone]
            ids = [post_id for post_id, _json in posts]
            reach = await reach_of(self.redis, record.region, ids)
            if not watch.shop_frame:
                watch.overrides = await openings.of_shop(self.redis, record.region, record.id)
            lists = watch.lists or await self._lists(record)
        except BaseException:
            self.close(socket)
            raise
        if socket.closed:
            return socket
        watch.reach.update(reach)
        for post_id in ids:
            watch.posts.add(post_id)
            self._owner[post_id] = record.id
        if not watch.shop_frame:
            self._reprofile(watch)
        watch.lists = watch.lists or lists
        sink.write(watch.shop_frame)
        for frame in watch.lists.values():
            sink.write(frame)
        sink.write(ws_text_frame(_encode(ConsolePosts(
            posts=[msgspec.Raw(json) for _id, json in posts]))))
        if not watch.stats_frame:
            watch.stats_frame = self._stats_frame(watch) or b""
        if watch.stats_frame:
            sink.write(watch.stats_frame)
        held, socket.held = socket.held or [], None
        self._reading.discard(socket)
        for frame in held:
            sink.write(frame)
        if not any(s.held is not None for s in watch.sockets):
            watch.gone.clear()
        self._check_lagging(socket)
        return socket

    def close(self, socket: ConsoleSocket) -> None:
        if socket.closed:
            return
        socket.closed = True
        self._reading.discard(socket)
        watch, socket.watch = socket.watch, None
        if watch is None:
            return
        watch.sockets.discard(socket)
        if watch.sockets:
            return
        # The shop's last socket here: forget it, and what was kept for it.
        record = watch.record
        del self.watches[record.id]
        for timer in (watch.opening_timer, watch.reach_timer):
            if timer is not None:
                timer.cancel()
        ids = self._at.get(watch.position)
        if ids is not None:
            ids.discard(record.id)
            if not ids:
                del self._at[watch.position]
        for post_id in watch.posts:
            self._owner.pop(post_id, None)
        self.presence.release(record.region)
        self.hub.region_users[record.region] -= 1
        if not self.watches:
            self.presence.follow_shop_changes("consoles", None)

    def _watch(self, record: ShopRecord) -> _Watch:
        watch = self.watches[record.id] = _Watch(record)
        self._at.setdefault(watch.position, set()).add(record.id)
        # The region's feed is read, and its presence listened to, while it is watched.
        self.hub.region_users[record.region] += 1
        self.readers.ensure([record.region])
        self.presence.hold(record.region)
        if len(self.watches) == 1:
            self.presence.follow_shop_changes("consoles", self._shop_changed)
        return watch

    def _send(self, watch: _Watch, frame: bytes, *, state: bool = False) -> None:
        """To every socket of the shop; a socket still reading its snapshot holds it for
        after, unless it is `state` (the profile, the producers, the holds: what the
        snapshot ends with is the watch's latest of each already, and a copy held from a
        read begun before came after it: an older list shown last, seen under load)."""
        for socket in list(watch.sockets):
            if socket.held is not None:
                if not state:
                    socket.held.append(frame)
            else:
                socket.sink.write(frame)
                self._check_lagging(socket)

    def _check_lagging(self, socket: ConsoleSocket) -> None:
        if socket.sink.buffered() > self.settings.gateway_socket_buffer_max:
            # Not reading: it reconnects and gets a fresh snapshot.
            socket.sink.close(CLOSE_LAGGING, "lagging: reconnect")
            self.close(socket)

    def _end(self, watch: _Watch, socket: ConsoleSocket, code: str, message: str) -> None:
        socket.sink.write(ws_text_frame(error_payload(code, message)))
        socket.sink.close(CLOSE_POLICY, code)
        self.close(socket)

    # --- Own posts, from the feed entries this process reads (Hub.dispatch) ----------

    def on_entry(self, region: str, entry: FeedEntry) -> None:
        if not self.watches:
            return
        if entry.type == "post":
            if (entry.lat, entry.lon) not in self._at:
                return
            try:
                shop_id = _decode_post_shop(entry.post).shop.id
            except (msgspec.DecodeError, msgspec.ValidationError):
                return
            watch = self.watches.get(shop_id)
            if watch is None or watch.record.region != region:
                return
            watch.posts.add(entry.id)
            self._owner[entry.id] = shop_id
            self._send(watch, ws_text_frame(_encode(ConsolePost(post=entry.post))))
            self._push_stats(watch)  # a new post's reach, not counted yet
            watch.reach_rounds = _REACH_ROUNDS
            self._reach_soon(watch)
            if entry.kind == "opening_change":  # the shop's word on its opening
                self._shop_changed(shop_id)
            return
        owner = self._owner.pop(entry.id, None)
        watch = None if owner is None else self.watches.get(owner)
        if watch is None and not self._reading:
            return  # another shop's post: nothing to encode
        gone = ws_text_frame(_encode(ConsoleExpired(id=entry.id) if entry.type == "expired"
                                     else ConsoleWithdrawn(id=entry.id)))
        if watch is not None:
            watch.posts.discard(entry.id)
            watch.reach.pop(entry.id, None)
            self._send(watch, gone)
            self._push_stats(watch)
            if entry.kind == "opening_change":
                self._shop_changed(watch.record.id)
            return
        # Perhaps a post of a shop whose snapshot is being read (a tombstone has no shop
        # id): those sockets get it after their snapshot, which leaves the post out.
        for socket in self._reading:
            assert socket.watch is not None and socket.held is not None
            socket.watch.gone.add(entry.id)
            socket.held.append(gone)

    def on_liveness(self, before: dict[str, str], down: dict[str, str]) -> None:
        """Hub.set_down: a console is told when its region stops or starts being read."""
        frames: dict[str, bytes] = {}  # one encoding per region changed, not per shop
        for watch in self.watches.values():
            region = watch.record.region
            if (region in before) != (region in down):
                frame = frames.get(region)
                if frame is None:
                    frame = frames[region] = ws_text_frame(status_payload(down.get(region)))
                for socket in list(watch.sockets):
                    socket.sink.write(frame)  # not held: a status is not ordered with posts

    # --- People watching and reach ----------------------------------------------------

    def _stats_frame(self, watch: _Watch) -> bytes | None:
        record = watch.record
        counts = self.presence.counts(record.region, record.lat, record.lon, AUDIENCE_RADII_M)
        if counts is None:
            return None  # not listened to for a whole round yet: told when it is
        reach = {post_id: watch.reach.get(post_id, _NOT_COUNTED)
                 for post_id in sorted(watch.posts)}
        return ws_text_frame(_encode(ConsoleStats(watching=audience(counts), reach=reach)))

    def _push_stats(self, watch: _Watch) -> None:
        frame = self._stats_frame(watch)
        if frame is not None and frame != watch.stats_frame:
            watch.stats_frame = frame
            self._send(watch, frame)

    def _presence_changed(self, region: str) -> None:
        if not self._stats_due:
            # Reports come one gateway at a time, each once a presence interval: folded
            # over one, the counts are computed at most once an interval per shop.
            asyncio.get_running_loop().call_later(self.settings.presence_interval_s,
                                                  self._flush_stats)
        self._stats_due.add(region)

    def _flush_stats(self) -> None:
        due, self._stats_due = self._stats_due, set()
        for watch in list(self.watches.values()):
            if watch.record.region in due:
                self._push_stats(watch)

    def _reach_soon(self, watch: _Watch) -> None:
        if watch.reach_timer is None:
            delay = self.settings.presence_interval_s + _REACH_GRACE_S
            watch.reach_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self._spawn(self._read_reach(watch)))

    async def _read_reach(self, watch: _Watch) -> None:
        watch.reach_timer = None
        record = watch.record
        counts = await reach_of(self.redis, record.region, sorted(watch.posts))
        if self.watches.get(record.id) is not watch:
            return  # its sockets closed meanwhile
        watch.reach.update({i: r for i, r in counts.items() if i in watch.posts})
        self._push_stats(watch)
        watch.reach_rounds -= 1
        # A gateway may not have flushed yet. Every round, not only while the answer
        # changes: under 5 it is "fewer than 5" whatever the count, which says nothing
        # of whether counts still arrive.
        if watch.reach_rounds > 0:
            self._reach_soon(watch)

    # --- The profile ------------------------------------------------------------------

    def _reprofile(self, watch: _Watch) -> None:
        """Push the profile if it changed; look again at its next opening change."""
        now = self.clock.now()
        record, overrides = watch.record, watch.overrides
        profile = profile_of(record, self.clock, overrides)
        frame = ws_text_frame(_encode(ConsoleShop(
            shop=profile, closes_at=offer_closing(record.hours, overrides, now))))
        if frame != watch.shop_frame:
            first = not watch.shop_frame
            watch.shop_frame = frame
            if not first:
                self._send(watch, frame, state=True)
        if watch.opening_timer is not None:
            watch.opening_timer.cancel()
            watch.opening_timer = None
        if profile.next_change is not None:
            delay = (profile.next_change.at - now).total_seconds()
            watch.opening_timer = asyncio.get_running_loop().call_later(
                max(0.0, delay) + _OPENING_GRACE_S, self._reprofile, watch)

    def _shop_changed(self, shop_id: str | None) -> None:
        """A shop was written (None: perhaps any, while nobody listened)."""
        for watched in ([shop_id] if shop_id is not None else list(self.watches)):
            watch = self.watches.get(watched)
            if watch is None:
                continue
            # One read at a time per shop, again if a write came meanwhile: two reads at
            # once could end in the wrong order, and the older answer would stay shown.
            if watch.reloading:
                watch.reload_again = True
            else:
                watch.reloading = True
                self._spawn(self._reload(watch))

    async def _reload(self, watch: _Watch) -> None:
        try:
            while True:
                watch.reload_again = False
                await self._reload_once(watch.record.id)
                if not watch.reload_again or self.watches.get(watch.record.id) is not watch:
                    return
        finally:
            watch.reloading = False

    async def _reload_once(self, shop_id: str) -> None:
        """Read the shop's record, opening posts and producers again; push what changed."""
        record = await shops.get_shop(self.redis, shop_id)
        overrides = [] if record is None else await openings.of_shop(
            self.redis, record.region, shop_id)
        lists = {} if record is None else await self._lists(record)
        watch = self.watches.get(shop_id)
        if watch is None:
            return
        sessions = {s.session for s in watch.sockets if s.session is not None}
        ended = {key for key in sessions if not await self.redis.exists(key)}
        for socket in list(watch.sockets):
            if record is None or record.disabled or socket.token_hash != record.token_hash \
                    or socket.session in ended:
                self._end(watch, socket, "not_signed_in",
                          "signed out, the shop's token changed or the shop was disabled: "
                          "sign in again")
        if record is None or self.watches.get(shop_id) is not watch:
            return
        if (record.lat, record.lon) != watch.position:  # moved by the operator
            ids = self._at[watch.position]
            ids.discard(shop_id)
            if not ids:
                del self._at[watch.position]
            self._at.setdefault((record.lat, record.lon), set()).add(shop_id)
        watch.record, watch.overrides = record, overrides
        self._reprofile(watch)
        for kind, frame in lists.items():
            if watch.lists.get(kind) != frame:
                watch.lists[kind] = frame
                self._send(watch, frame, state=True)
        self._push_stats(watch)

    async def _lists(self, record: ShopRecord) -> dict[str, bytes]:
        """The shop's producers and open holds, as frames: read on connect and on each
        change the shop-changes channel announces."""
        producers = await producers_of_shop(self.producers, record)
        holds = await self.holds.of_shop(record)
        taken = await self.holds.taken_of_shop(record)
        return {"producers": ws_text_frame(_encode(ConsoleProducers(producers=producers))),
                "holds": ws_text_frame(_encode(ConsoleHolds(
                    holds=holds, held_today=await self.holds.held_today(record),
                    taken=taken or msgspec.UNSET)))}

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:
            # A console misses one change (Redis away, say); the next one, or its
            # reconnection, brings it up to date.
            log.warning("console: an update failed: %r", exc)
