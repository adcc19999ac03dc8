"""The pusher: alerts for followed shops (Web Push: RFC 8030 delivery, RFC 8291 aes128gcm
payload, RFC 8292 VAPID), sent from its own process, never from a gateway's loop.

Two loops. The *consumer*, per region, reads the region's `feed` stream in the consumer
group "pushers" (storage.push.ensure_groups): a group rather than arq jobs because the
feed stream already is the ordered, durable record of every publication, the group keeps
its place across a crash (an entry is acknowledged only once queued for every follower;
one left pending by a dead pusher is taken over with XAUTOCLAIM, as the enricher does),
and nothing has to be added to the publish path. Only a post's first publication counts:
edits, hold refreshes and republishes are `edit` entries, and automatic opening changes
(a shop's hours, every day) alert nobody. For each follower of the post's shop that wants
its kind, the post is queued (storage.push: once per subscription and post, whatever is
redelivered).

The *sender* takes subscriptions whose turn came (a due set, each leased to one pusher),
asks rules.push.plan what may go now (good manners), re-reads the live post (an ended or
withdrawn post is dropped; an edited one goes as it now stands), records the alert as sent
and only then sends it (at most once: a pusher dying mid-send loses that alert rather than
showing it twice), encrypted for the browser's keys, signed with the VAPID key, to an
endpoint checked again (rules.push_endpoint). 201/202: sent; 404/410: the subscription is
deleted; 429, 5xx or no answer: the alert waits again with backoff (Retry-After honoured,
bounded attempts), other subscriptions' sends going on meanwhile; any other answer: dropped
and logged by host only (an endpoint URL is a capability: never logged whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import cast

import http_ece
import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from redis.asyncio import Redis

from rules.clock import Clock
from rules.errors import InvalidInput
from rules.push import alert_body, plan, retry_delay, topic_for, ttl_for, urgency_for
from rules.push_endpoint import PushTarget, check_endpoint, decode_keys, parse_allowed_hosts
from runtime import metrics
from runtime.settings import Settings
from schemas.feed import FeedEntry
from schemas.posts import Kind
from schemas.push import PushRecord, Waiting
from services.supervision import Backoff, supervised
from storage import keys
from storage.push import Claimed, PushStore, ensure_groups
from storage.redis_conn import REDIS_DOWN
from storage.vapid import VapidKey
from workers.enricher import consumer_name

__all__ = ["Outcome", "Pusher"]

log = logging.getLogger("streetfeed.pusher")
# httpx logs every request's URL at INFO: an endpoint is a capability, never logged.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

_decode_entry = msgspec.json.Decoder(FeedEntry).decode
# A VAPID JWT is valid this long (RFC 8292: at most 24 h); signed again well before.
_JWT_LIFETIME_S = 12 * 3600
_JWT_REUSE_S = 3600
_JWT_CACHE_MAX = 256
_KINDS: frozenset[str] = frozenset({"new_arrival", "flash_offer", "opening_change"})


class _PostShop(msgspec.Struct, frozen=True):
    id: str


class _PostHead(msgspec.Struct, frozen=True):
    """What queueing needs of a published post."""

    id: str
    shop: _PostShop
    expires_at: datetime
    auto: bool = False


_decode_head = msgspec.json.Decoder(_PostHead).decode


class Outcome(msgspec.Struct, frozen=True):
    """What a push service answered: `status` (0: no answer), and its Retry-After."""

    status: int
    retry_after_s: float | None = None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


class Pusher:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock, vapid: VapidKey, *,
                 name: str | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.name = name or consumer_name()
        self.store = PushStore(redis)
        self.allowed = parse_allowed_hosts(settings.push_allowed_hosts)
        self.vapid = Vapid02(vapid.private)
        self.subject = settings.push_subject
        self._jwts: dict[str, tuple[float, str]] = {}
        self._wake = asyncio.Event()
        # Subscriptions whose turn runs now: at most push_concurrency (one request each).
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # No redirects (a push service answers, it does not send us elsewhere: a redirect
        # to an internal address would pass the endpoint check), no proxy or certificates
        # from the environment, short timeouts.
        self.client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(settings.push_timeout_s),
            limits=httpx.Limits(max_connections=settings.push_concurrency,
                                max_keepalive_connections=settings.push_concurrency))

    async def run(self, stop: asyncio.Event) -> None:
        """Consume every region's feed and send, until `stop`; failures are retried."""
        def consume(region: str) -> Callable[[], Awaitable[None]]:
            return lambda: self._consume(region, stop)

        loops = [supervised(f"pusher-{region}", consume(region), stop,
                            backoff=Backoff(0.1, 5.0), component="pusher")
                 for region in self.settings.region_names]
        loops.append(supervised("pusher-send", lambda: self._send_loop(stop), stop,
                                backoff=Backoff(0.1, 5.0), component="pusher"))
        try:
            await asyncio.gather(*loops)
        finally:
            # Sends under way are let finish (each has push_timeout_s at most): cancelled,
            # an alert recorded as sent before its request would be lost (a deploy's stop
            # lost up to push_concurrency of them).
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=self.settings.push_timeout_s + 1)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.client.aclose()

    # --- The consumer -----------------------------------------------------------------

    async def _consume(self, region: str, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        await ensure_groups(self.redis, [region])
        await self.step(region, own_pending=True)
        next_claim = 0.0
        while not stop.is_set():
            if loop.time() >= next_claim:
                await self.reclaim(region)
                next_claim = loop.time() + self.settings.pusher_claim_idle_ms / 2000
            await self.step(region, block_ms=self.settings.pusher_block_ms)

    async def step(self, region: str, block_ms: int | None = None, *,
                   own_pending: bool = False) -> int:
        """Read and queue one batch (new entries, or this consumer's pending ones)."""
        stream = keys.feed_stream(region)
        reply = await self.redis.xreadgroup(keys.PUSHER_GROUP, self.name,
                                            {stream: "0" if own_pending else ">"},
                                            count=self.settings.pusher_batch,
                                            block=None if own_pending else block_ms)
        entries = reply[0][1] if reply else []
        await self.process(region, entries)
        return len(entries)

    async def reclaim(self, region: str) -> int:
        """Take over entries left pending by a pusher that stopped answering."""
        stream, start, total = keys.feed_stream(region), "0-0", 0
        while True:
            reply = await self.redis.xautoclaim(
                stream, keys.PUSHER_GROUP, self.name,
                min_idle_time=self.settings.pusher_claim_idle_ms, start_id=start,
                count=self.settings.pusher_batch)
            start, entries = reply[0], list(reply[1])
            if entries:
                await self.process(region, entries)
                total += len(entries)
            if start in (b"0-0", "0-0") or not entries:
                return total

    async def process(self, region: str,
                      entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
        if not entries:
            return
        for _entry_id, fields in entries:
            if not fields or b"d" not in fields:
                continue  # trimmed away while pending, or not a post's entry
            try:
                entry = _decode_entry(fields[b"d"])
                if entry.type != "post" or entry.edit or entry.was_local:
                    continue
                head = _decode_head(entry.post)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("pusher: undecodable feed entry in %s: %s", region, exc)
                continue
            if head.auto or entry.kind not in _KINDS:
                continue
            await self._queue(region, cast(Kind, entry.kind), head)
        await self.redis.xack(keys.feed_stream(region), keys.PUSHER_GROUP,
                              *[entry_id for entry_id, _ in entries])

    async def _queue(self, region: str, kind: Kind, head: _PostHead) -> None:
        followers = await self.store.followers(head.shop.id)
        if not followers:
            return
        now_ts = self.clock.now().timestamp()
        waiting = Waiting(post_id=head.id, region=region, shop_id=head.shop.id, kind=kind,
                          expires_ts=head.expires_at.timestamp(), queued_ts=now_ts)
        records = await self.store.records(followers)
        for sub_id, record in zip(followers, records, strict=True):
            if record is None:
                await self.store.unfollow(head.shop.id, sub_id)
                continue
            if kind not in record.kinds or head.shop.id not in record.shops:
                continue
            if await self.store.enqueue(sub_id, waiting, now_ts) == 1:
                self._wake.set()

    # --- The sender -------------------------------------------------------------------

    async def _send_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            free = self.settings.push_concurrency - len(self._busy)
            claimed = (await self.store.claim(self.clock.now().timestamp(),
                                              self.settings.push_lease_s, free)
                       if free > 0 else [])
            for one in claimed:
                if one.id in self._busy:
                    continue
                self._busy.add(one.id)
                task = asyncio.create_task(self._turn(one))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(claimed) < max(1, free):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.push_poll_s)

    async def _turn(self, claimed: Claimed) -> None:
        try:
            await self.turn(claimed)
        except Exception as exc:
            # The lease lapses and the turn is taken again: nothing is lost.
            log.warning("pusher: turn of a subscription failed: %r", type(exc).__name__)
        finally:
            self._busy.discard(claimed.id)
            self._wake.set()

    async def turn(self, claimed: Claimed) -> None:
        """One subscription's turn: send at most one alert, then say when to look again."""
        record, waiting, sent = await self.store.state(claimed.id)
        if record is None:
            await self.store.forget(claimed.id)
            return
        try:
            target = check_endpoint(record.endpoint, self.allowed)
        except InvalidInput:
            # Allowed when it subscribed, not now (the allowed hosts changed).
            log.warning("pusher: subscription %s: endpoint no longer allowed; deleted",
                        record.id)
            metrics.PUSH_FAILED.labels("endpoint_refused").inc()
            await self.store.delete(record)
            return
        now = self.clock.now()
        # Queued before a PUT that stopped following the shop or wanting the kind.
        unwanted = [w.post_id for w in waiting
                    if w.shop_id not in record.shops or w.kind not in record.kinds]
        decided = plan(now, [w for w in waiting if w.post_id not in unwanted], sent,
                       quiet_hours=record.quiet_hours, zone=record.timezone)
        dropped = [*unwanted, *(w.post_id for w in decided.dropped)]
        for w in decided.dropped:
            if w.attempts:
                metrics.PUSH_FAILED.labels("gave_up").inc()
            else:
                metrics.PUSH_DROPPED.inc()
        next_ts = decided.next_ts
        if decided.send is not None:
            post_json = await self.redis.hget(  # type: ignore[misc]
                keys.post(decided.send.region, decided.send.post_id), "json")
            if post_json is None:
                # Withdrawn or ended meanwhile: never alerted.
                metrics.PUSH_DROPPED.inc()
                dropped.append(decided.send.post_id)
            elif await self._send(record, target, decided.send, post_json, now):
                return  # the subscription is gone
            next_ts = self.clock.now().timestamp()
        await self.store.settle(claimed, next_ts, dropped)

    async def _send(self, record: PushRecord, target: PushTarget, waiting: Waiting,
                    post_json: bytes, now: datetime) -> bool:
        """Send one alert; True when the subscription is gone (deleted)."""
        now_ts = now.timestamp()
        if not await self.store.mark_sent(record.id, waiting, now_ts):
            return False  # another pusher's turn took it
        try:
            outcome = await self.deliver(record, target, waiting,
                                         alert_body(post_json, waiting.post_id), now_ts)
        except asyncio.CancelledError:
            # Stopped mid-send past the graceful wait: back in the queue as it was.
            with contextlib.suppress(*REDIS_DOWN):
                await self.store.requeue(record.id, msgspec.structs.replace(
                    waiting, not_before_ts=self.clock.now().timestamp()))
            raise
        if 200 <= outcome.status < 300:
            metrics.PUSH_SENT.inc()
            return False
        if outcome.status in (404, 410):
            log.info("pusher: %s answered %d for subscription %s: deleted", target.host,
                     outcome.status, record.id)
            metrics.PUSH_DELETED.inc()
            await self.store.delete(record)
            return True
        if outcome.status == 0 or outcome.status == 429 or outcome.status >= 500:
            attempts = waiting.attempts + 1
            delay = retry_delay(attempts, outcome.retry_after_s)
            log.info("pusher: %s answered %s for subscription %s: retry %d in %.0f s",
                     target.host, outcome.status or "nothing", record.id, attempts, delay)
            metrics.PUSH_FAILED.labels("retry").inc()
            await self._put_back(record.id, msgspec.structs.replace(
                waiting, attempts=attempts, not_before_ts=self.clock.now().timestamp() + delay))
            return False
        log.warning("pusher: %s answered %d for subscription %s: alert dropped", target.host,
                    outcome.status, record.id)
        metrics.PUSH_FAILED.labels("refused").inc()
        return False

    async def _put_back(self, sub_id: str, waiting: Waiting) -> None:
        """Requeue an alert whose send failed for now, through a Redis outage: it is
        recorded as sent already, so a requeue given up would lose it (and count it
        against the subscription's limits). Tried for twice a lease, as long as a Redis
        restart takes many times over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * self.settings.push_lease_s
        backoff = Backoff(0.1, 2.0)
        while True:
            try:
                await self.store.requeue(sub_id, waiting)
                return
            except REDIS_DOWN:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(backoff.next())

    def _authorization(self, audience: str, now_ts: float) -> str:
        """The VAPID header for a push service's origin, signed again every hour."""
        cached = self._jwts.get(audience)
        if cached is not None and now_ts - cached[0] < _JWT_REUSE_S:
            return cached[1]
        header = self.vapid.sign({"aud": audience, "sub": self.subject,
                                  "exp": int(now_ts) + _JWT_LIFETIME_S})["Authorization"]
        if len(self._jwts) >= _JWT_CACHE_MAX:
            # Microsoft's and Apple's services have a host per data centre, and any such
            # name passes: subscriptions naming new ones must not grow this for ever.
            self._jwts.clear()
        self._jwts[audience] = (now_ts, header)
        return header

    async def deliver(self, record: PushRecord, target: PushTarget, waiting: Waiting,
                      body: bytes, now_ts: float) -> Outcome:
        """Encrypt `body` for the browser (RFC 8291, a fresh ephemeral key and salt each
        time) and POST it; the push service's answer, never its body."""
        point, auth = decode_keys(record.p256dh, record.auth)
        encrypted = http_ece.encrypt(body, private_key=ec.generate_private_key(ec.SECP256R1()),
                                     dh=point, auth_secret=auth, version="aes128gcm")
        headers = {
            "Authorization": self._authorization(target.origin, now_ts),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl_for(waiting.expires_ts, now_ts)),
            "Topic": topic_for(waiting.shop_id),
            "Urgency": urgency_for(waiting.kind),
        }
        try:
            # httpx's timeout is per read: a push service sending a byte every few seconds
            # held a send (one of push_concurrency) for 90 s. This one is for the whole
            # request, up to its status line and headers.
            async with asyncio.timeout(self.settings.push_timeout_s):
                # Streamed and closed unread: a push service's body is never needed, and
                # a hostile endpoint cannot make us read megabytes.
                async with self.client.stream("POST", target.url, content=encrypted,
                                              headers=headers) as response:
                    return Outcome(response.status_code, _retry_after(response.headers))
        except (httpx.HTTPError, TimeoutError) as exc:
            log.info("pusher: no answer from %s: %s", target.host, type(exc).__name__)
            return Outcome(0)
