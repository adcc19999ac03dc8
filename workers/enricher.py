"""The enricher: `in` stream -> live index and `feed` stream.

Consumes the region's `in` stream in a consumer group (several enrichers may
run at once), joins the shop, moderates, sets the expiry and publishes. A
batch's publish scripts go in one pipeline, and each acknowledges its own entry
(storage.live), so an entry is published and acknowledged in one step or stays
pending; entries pending too long on a dead consumer are reclaimed with
XAUTOCLAIM. Publishing is idempotent, so a reclaimed entry that had already been
published changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from rules.clock import Clock
from rules.enrich import Dropped, enrich, hold_offered
from rules.expiry import expires_at
from rules.moderation import Policy
from rules.opening import superseded
from runtime import metrics
from runtime.settings import Settings
from schemas.hours import OpeningOverride, ShopHours
from schemas.limits import HOLD_KEEP_AFTER_END_S
from schemas.posts import OpeningChange, Post, RawPost
from schemas.shops import ShopRecord
from services.supervision import Backoff, supervised
from storage import keys, openings
from storage.holds import HoldStore
from storage.inbox import enricher_beat
from storage.live import LiveIndex, Publication, shop_live_posts, stream_id_key
from storage.redis_conn import REDIS_DOWN, get_many, text
from storage.shops import decode_record

__all__ = ["Enricher"]

log = logging.getLogger("streetfeed.enricher")

_decode_raw = msgspec.json.Decoder(RawPost).decode
_decode_post = msgspec.json.Decoder(Post).decode
_decode_override = msgspec.json.Decoder(OpeningOverride).decode


@dataclass
class EnricherStats:
    published: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    reclaimed: int = 0


# How often an enricher beats at most, besides once per read it blocks in: a live one's
# last beat is never older than its read block plus this (the stall limit is above twice
# the block, runtime.settings).
BEAT_INTERVAL_S = 1.0


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Enricher:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock, policy: Policy,
                 name: str | None = None, region: str | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.policy = policy
        self.name = name or consumer_name()
        self.tz = ZoneInfo(settings.timezone)
        self.local_km = settings.local_km
        self.region = region or settings.region
        self.stream = keys.in_stream(self.region)
        self.live = LiveIndex(redis, self.region, settings)
        self.holds = HoldStore(redis)
        self.stats = EnricherStats()

    async def ensure_group(self) -> None:
        try:
            # From the start of the stream: posts accepted before any enricher ran count too.
            await self.redis.xgroup_create(self.stream, keys.ENRICHER_GROUP, id="0",
                                           mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; any failure (a Redis outage above all) is retried."""
        await supervised(f"enricher-{self.region}", lambda: self._consume(stop), stop,
                         backoff=Backoff(0.1, 5.0), component="enricher")

    async def _consume(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_claim = next_beat = 0.0
        next_trim = loop.time() + self.settings.enricher_trim_interval_s
        await self.ensure_group()
        # At start and after a failure: finish what this consumer had been given.
        await self.step(block_ms=None, own_pending=True)
        while not stop.is_set():
            if loop.time() >= next_beat:
                # At work: web processes tell a stuck region by its last beat (rules.pipeline).
                await enricher_beat(self.redis, self.region, self.name)
                next_beat = loop.time() + BEAT_INTERVAL_S
            if loop.time() >= next_claim:
                await self.reclaim()
                next_claim = loop.time() + self.settings.enricher_claim_idle_ms / 2000
            if loop.time() >= next_trim:
                await self.trim()
                next_trim = loop.time() + self.settings.enricher_trim_interval_s
            await self.step(block_ms=self.settings.enricher_block_ms)

    async def step(self, block_ms: int | None = None, *, own_pending: bool = False) -> int:
        """Read and process one batch (new entries, or this consumer's pending ones)."""
        reply = await self.redis.xreadgroup(keys.ENRICHER_GROUP, self.name,
                                            {self.stream: "0" if own_pending else ">"},
                                            count=self.settings.enricher_batch,
                                            block=None if own_pending else block_ms)
        entries = reply[0][1] if reply else []
        await self.process(entries)
        return len(entries)

    async def reclaim(self) -> int:
        """Take over entries left pending by a consumer that stopped answering."""
        total = 0
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.stream, keys.ENRICHER_GROUP, self.name,
                min_idle_time=self.settings.enricher_claim_idle_ms, start_id=start,
                count=self.settings.enricher_batch)
            start, entries = reply[0], [e for e in reply[1] if e and e[1]]
            if entries:
                log.info("enricher %s reclaimed %d pending entries", self.name, len(entries))
                await self.process(entries)
                total += len(entries)
            if start in (b"0-0", "0-0") or not reply[1]:
                break
        self.stats.reclaimed += total
        return total

    async def process(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        if not entries:
            return
        raws: list[tuple[bytes, RawPost | None]] = []
        raw_json: dict[bytes, bytes] = {}
        refreshes: set[bytes] = set()
        stored = await self._stored_raws(entries)
        for entry_id, fields in entries:
            try:
                if b"refresh" in fields:
                    # Publish the live post again as it stands; nothing if it is gone.
                    refreshes.add(entry_id)
                    body = stored.get(text(fields[b"refresh"]))
                    if body is None:
                        continue
                    raws.append((entry_id, _decode_raw(body)))
                    raw_json[entry_id] = body
                    continue
                raws.append((entry_id, _decode_raw(fields[b"d"])))
                raw_json[entry_id] = fields[b"d"]
            except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                # Can never succeed: park it where an operator can see it.
                log.error("enricher: undecodable entry %r: %s", entry_id, exc)
                raws.append((entry_id, None))
        shops = await self._shops({raw.shop_id for _, raw in raws if raw is not None})
        now = self.clock.now()
        # What publishes nothing is acknowledged with the batch's publications, which
        # acknowledge themselves (storage.live): one round trip for the lot.
        acks: list[bytes] = [e for e in refreshes if e not in raw_json]
        batch: list[tuple[bytes, Publication, bool]] = []
        withdrawing: list[tuple[bytes, str, bytes]] = []  # opening posts in `batch`
        for entry_id, raw in raws:
            if raw is None:
                await self._dead_letter(entry_id, entries, "undecodable")
                acks.append(entry_id)
                continue
            try:
                publication = await self._prepare(entry_id, raw, raw_json[entry_id], shops, now,
                                                  refresh=entry_id in refreshes)
            except REDIS_DOWN:
                raise
            except Exception as exc:
                await self._failed(entry_id, entries, exc, acks)
                continue
            if publication is None:
                acks.append(entry_id)
                continue
            if any(shop_id == raw.shop_id for _, shop_id, _ in withdrawing):
                # The shop's own word on its opening withdraws the posts it contradicts:
                # done before the shop's next post is published, as one by one.
                published = await self._publish(batch, acks, entries)
                await self._withdraw(withdrawing, published, shops, now)
                batch, acks, withdrawing = [], [], []
            batch.append((entry_id, publication, raw.edit or entry_id in refreshes))
            if publication.opening:
                withdrawing.append((entry_id, raw.shop_id, publication.opening))
        published = await self._publish(batch, acks, entries)
        await self._withdraw(withdrawing, published, shops, now)

    async def _withdraw(self, opening_posts: list[tuple[bytes, str, bytes]],
                        published: set[bytes], shops: dict[str, ShopRecord | Exception],
                        now: datetime) -> None:
        for entry_id, shop_id, opening in opening_posts:
            if entry_id in published:  # not when it was refused (withdrawn, gone, failed)
                shop = shops.get(shop_id)
                hours = shop.hours if isinstance(shop, ShopRecord) else None
                await self._withdraw_contradicted(shop_id, _decode_override(opening), hours,
                                                  now)

    async def _publish(self, batch: list[tuple[bytes, Publication, bool]], acks: list[bytes],
                       entries: list[tuple[bytes, dict[bytes, bytes]]]) -> set[bytes]:
        """Send the batch (storage.live.LiveIndex.publish_many); the entries published."""
        if not batch and not acks:
            return set()
        results = await self.live.publish_many([p for _, p, _ in batch],
                                               group=keys.ENRICHER_GROUP, also_ack=acks)
        late_acks: list[bytes] = []
        published: set[bytes] = set()
        for (entry_id, _, again), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                await self._failed(entry_id, entries, result, late_acks)
            elif result is None:
                self._count_drop("withdrawn" if not again else "edit_of_gone_post")
            else:
                published.add(entry_id)
                self.stats.published += 1
                metrics.POSTS_PUBLISHED.inc()
        if late_acks:
            await self.redis.xack(self.stream, keys.ENRICHER_GROUP, *late_acks)
        return published

    async def _failed(self, entry_id: bytes, entries: list[tuple[bytes, dict[bytes, bytes]]],
                      exc: Exception, acks: list[bytes]) -> None:
        # One bad entry must not hold up the others: it stays pending, is retried after
        # the claim delay, and is parked after enricher_max_attempts.
        log.error("enricher: entry %r failed: %r", entry_id, exc, exc_info=exc)
        if await self._attempts(entry_id) >= self.settings.enricher_max_attempts:
            await self._dead_letter(entry_id, entries, f"failed: {exc!r}"[:200])
            acks.append(entry_id)

    async def _stored_raws(self, entries: list[tuple[bytes, dict[bytes, bytes]]]
                           ) -> dict[str, bytes]:
        """The stored raw form of each live post a refresh entry names."""
        post_ids = sorted({text(f[b"refresh"]) for _, f in entries if b"refresh" in f})
        if not post_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for post_id in post_ids:
                pipe.hget(keys.post(self.region, post_id), "raw")
            values = await pipe.execute()
        return {p: v for p, v in zip(post_ids, values, strict=True) if v is not None}

    async def _hold_left(self, raw: RawPost, shop: ShopRecord, *, again: bool) -> int | None:
        """Say what the post offers to hold now, and read the units left (storage.holds);
        None when it offers none. A first publish offering none costs nothing."""
        offer = hold_offered(raw, shop)
        if offer is None and not again:
            return None
        expires = expires_at(raw.body, raw.posted_at or raw.accepted_at, self.tz)
        ttl_s = max(60, int(expires.timestamp() - self.clock.now().timestamp())
                    + HOLD_KEEP_AFTER_END_S)
        left = await self.holds.stock(self.region, raw.id, 0 if offer is None else offer.quantity,
                                      0 if offer is None else offer.minutes, ttl_s)
        return None if offer is None else left

    async def _prepare(self, entry_id: bytes, raw: RawPost, raw_json: bytes,
                       shops: dict[str, ShopRecord | Exception], now: datetime, *,
                       refresh: bool = False) -> Publication | None:
        """What to publish for one entry; None when it is dropped (counted here)."""
        shop = shops.get(raw.shop_id)
        if isinstance(shop, Exception):
            raise shop
        again = raw.edit or refresh
        hold_left = (None if shop is None or shop.disabled
                     else await self._hold_left(raw, shop, again=again))
        outcome = enrich(raw, shop, now=now, tz=self.tz, policy=self.policy,
                         local_km=self.local_km, hold_left=hold_left)
        if isinstance(outcome, Dropped):
            self._count_drop(outcome.reason)
            log.info("enricher: dropped %s (%s)", raw.id, outcome.reason)
            return None
        return Publication(
            post_id=raw.id, source=text(entry_id), post_json=outcome.json, kind=outcome.kind,
            lat=outcome.lat, lon=outcome.lon, expires_ts=outcome.expires_ts,
            shop_id=raw.shop_id, raw=raw_json, edit=again, local=outcome.local,
            opening=b"" if outcome.opening is None else openings.encode(outcome.opening))

    async def _withdraw_contradicted(self, shop_id: str, said: OpeningOverride,
                                     hours: ShopHours | None, now: datetime) -> None:
        """The shopkeeper has said whether the shop is open (`said`): the automatic posts
        made from its hours ("Open until 19:00") would contradict it on the street, and so
        would its own earlier words that will say nothing again (rules.opening.superseded):
        they go. When the shopkeeper's word ends, the scheduler posts the hours again."""
        # The overrides the shop's state is computed from, `said` among them (published).
        words = await openings.of_shop(self.redis, self.region, shop_id)
        gone = {o.post_id for o in superseded(said, words, hours)}
        for post_id, (kind, post_json) in await shop_live_posts(
                self.redis, self.region, shop_id, "kind", "json"):
            if kind != b"opening_change" or post_json is None:
                continue
            post = _decode_post(post_json)
            if isinstance(post, OpeningChange) and (post.auto or post.id in gone):
                await self.live.remove(post_id, "withdrawn", now_ts=now.timestamp(),
                                       shop_id=shop_id)

    async def _attempts(self, entry_id: bytes) -> int:
        info = await self.redis.xpending_range(self.stream, keys.ENRICHER_GROUP, min=entry_id,
                                               max=entry_id, count=1)
        return int(info[0]["times_delivered"]) if info else 1

    def _count_drop(self, reason: str) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + 1
        metrics.POSTS_DROPPED.labels(reason).inc()

    async def trim(self) -> None:
        """Drop `in` entries every consumer has acknowledged (never one still pending), and
        the consumers gone for a day with nothing pending."""
        groups = await self.redis.xinfo_groups(self.stream)
        group = next((g for g in groups if text(g["name"]) == keys.ENRICHER_GROUP), None)
        if group is None:
            return
        horizon = text(group["last-delivered-id"])
        pending = await self.redis.xpending(self.stream, keys.ENRICHER_GROUP)
        if pending["pending"]:
            horizon = min(horizon, text(pending["min"]), key=stream_id_key)
        await self.redis.xtrim(self.stream, minid=horizon, approximate=True)
        await self._forget_gone_consumers()

    async def _forget_gone_consumers(self) -> None:
        """Every restart leaves its consumer in the group for ever (a cold attacker counted
        five after three kills). One with nothing pending and no beat for a day (beats
        older go, storage.inbox) is forgotten: nothing is lost, and one still at work
        would only be made again by its next read."""
        beating = {text(m) for m in await self.redis.zrange(
            keys.enricher_beats(self.region), 0, -1)}
        for consumer in await self.redis.xinfo_consumers(self.stream, keys.ENRICHER_GROUP):
            name = text(consumer["name"])
            if int(consumer["pending"]) == 0 and name not in beating and name != self.name:
                await self.redis.xgroup_delconsumer(self.stream, keys.ENRICHER_GROUP, name)

    async def _shops(self, shop_ids: set[str]) -> dict[str, ShopRecord | Exception]:
        if not shop_ids:
            return {}
        ordered = sorted(shop_ids)
        values = await get_many(self.redis, [keys.shop(s) for s in ordered])
        shops: dict[str, ShopRecord | Exception] = {}
        for sid, value in zip(ordered, values, strict=True):
            if value is None:
                continue
            try:
                shops[sid] = decode_record(value)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                shops[sid] = exc  # only this shop's posts fail, not the batch
        return shops

    async def _dead_letter(self, entry_id: bytes, entries: list[tuple[bytes, dict[bytes, bytes]]],
                           reason: str) -> None:
        fields = next((f for i, f in entries if i == entry_id), {})
        # Copied into the field type xadd takes (a dict's key type is invariant).
        record: dict[FieldT, EncodableT] = {k: v for k, v in fields.items()}
        record[b"source"] = entry_id
        record[b"reason"] = reason.encode()
        await self.redis.xadd(keys.dead_letter_stream(self.region), record,
                              maxlen=self.settings.dead_letter_maxlen, approximate=True)
        self.stats.dead_letters += 1
        metrics.DEAD_LETTERS.inc()
