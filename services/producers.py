"""Local producers (DESIGN.md section 9 "Local producers"): a shop names one, unlinks one,
a post names some, a passer-by reads one's page, the console searches those nearby.

Sameness is rules.producers' (folded name, within 2 km); storage.producers keeps the
records and links and makes "create unless a twin appeared meanwhile" one script.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from rules.clock import Clock
from rules.errors import InvalidInput, NotFound, Unavailable
from rules.moderation import Policy, check_producer
from rules.producers import distance_km, fold_name, producer_out, same_producer
from schemas.limits import (
    PRODUCER_SAME_WITHIN_M,
    PRODUCER_SEARCH_MAX,
    PRODUCERS_PER_POST_MAX,
    PRODUCERS_PER_SHOP_MAX,
)
from schemas.producers import (
    ProducerIn,
    ProducerMatch,
    ProducerOut,
    ProducerPage,
    ProducerRecord,
    ProducerRef,
    ProducerShop,
)
from schemas.shops import ShopRecord
from storage import keys
from storage.producers import LAYOUT, Added, ProducerStore, new_producer_id
from storage.redis_conn import get_many
from storage.shops import announce_change, decode_record

__all__ = ["Producers", "producers_of_shop", "unknown_producer"]

log = logging.getLogger("streetfeed.producers")

# Redis measures GEOSEARCH distances on a slightly larger sphere than rules.geo: look a bit
# wider for twins, then keep exactly what rules.producers.same_producer accepts.
_SEARCH_SLACK = 1.001
# Creations under the same name move the version a creation checks; under a burst of them
# one request may have to look again a few times. Past this many, 503 (the client retries).
_ATTEMPTS = 20
# Shops of a found producer read at a time to tell it is sold by an enabled one.
_SHOPS_READ = 4


def unknown_producer(message: str, status: int = 422) -> InvalidInput:
    return InvalidInput(message, code="unknown_producer", status=status)


def _nearest_first(outs: list[ProducerOut]) -> list[ProducerOut]:
    return sorted(outs, key=lambda p: (p.distance_km, p.name, p.id))


async def producers_of_shop(store: ProducerStore, shop: ShopRecord) -> list[ProducerOut]:
    """The producers a shop names, nearest to it first (its profile's and console's list)."""
    return _nearest_first([producer_out(r, shop.lat, shop.lon)
                           for r in await store.of_shop(shop.id)])


class Producers:
    def __init__(self, redis: Redis, clock: Clock, policy: Policy) -> None:
        self.redis = redis
        self.store = ProducerStore(redis)
        self.clock = clock
        self.policy = policy
        self._upgrade = asyncio.Lock()
        self._upgrade_done = False

    async def _upgraded(self) -> None:
        """Producer keys in storage.producers.LAYOUT, looked at once a process: the twin
        check and the search read indexes an older layout did not keep."""
        if self._upgrade_done:
            return
        async with self._upgrade:
            if not self._upgrade_done:
                if await self.store.upgrade():
                    log.info("producers: indexes built for layout %s", LAYOUT)
                self._upgrade_done = True

    async def add(self, shop: ShopRecord, new: ProducerIn) -> str:
        """The id of the producer `new` names, linked to the shop: an existing one when the
        same producer is known (rules.producers), else a new record."""
        rejection = check_producer(new.name, new.place, self.policy)
        if rejection is not None:
            raise InvalidInput(rejection.message, code=rejection.code)
        if new.lon == -180.0:
            # One meridian, two numbers: GEO sets keep them apart, and the twin check would
            # miss the same farm named at 180 (a cold attacker's).
            new = msgspec.structs.replace(new, lon=180.0)
        fold = fold_name(new.name)
        await self._upgraded()
        for _ in range(_ATTEMPTS):
            found = await self.store.candidates(
                new.lat, new.lon, PRODUCER_SAME_WITHIN_M * _SEARCH_SLACK + 1, fold)
            twins = [r for r in found.records
                     if same_producer(fold, new.lat, new.lon, fold_name(r.name), r.lat, r.lon)]
            if twins:
                # Two twins can only both be near when they are more than 2 km apart from
                # each other: the nearest (then the oldest) is the one meant.
                record = min(twins, key=lambda r: (
                    distance_km(new.lat, new.lon, r.lat, r.lon), r.created_at, r.id))
                respelled = msgspec.structs.replace(record, name=new.name, place=new.place,
                                                    lat=new.lat, lon=new.lon,
                                                    created_by=shop.id)
                outcome = await self.store.add(shop.id, record, create_at_version=None,
                                               fold=fold, fold_place=fold_name(new.place),
                                               most=PRODUCERS_PER_SHOP_MAX,
                                               respelled=respelled)
            else:
                record = ProducerRecord(id=new_producer_id(), name=new.name, place=new.place,
                                        lat=new.lat, lon=new.lon, created_at=self.clock.now(),
                                        created_by=shop.id)
                outcome = await self.store.add(shop.id, record,
                                               create_at_version=found.version, fold=fold,
                                               fold_place=fold_name(new.place),
                                               most=PRODUCERS_PER_SHOP_MAX)
            if outcome is Added.OK:
                await announce_change(self.redis, shop.id)
                return record.id
            if outcome is Added.FULL:
                raise InvalidInput(f"a shop names at most {PRODUCERS_PER_SHOP_MAX} producers: "
                                   "remove one first", code="too_many_producers")
        raise Unavailable("producers are being created too fast to check for twins: retry",
                          retry_after=1)

    async def unlink(self, shop: ShopRecord, producer_id: str) -> None:
        if not await self.store.unlink(shop.id, producer_id):
            raise NotFound(f"this shop names no producer {producer_id!r}",
                           code="unknown_producer")
        await announce_change(self.redis, shop.id)

    async def take(self, shop: ShopRecord, producer_ids: Sequence[str]) -> list[ProducerRef]:
        """A post's producers as its raw form carries them; 422 `unknown_producer` for more
        than PRODUCERS_PER_POST_MAX or one the shop does not name."""
        if len(producer_ids) > PRODUCERS_PER_POST_MAX:
            raise unknown_producer(f"a post names at most {PRODUCERS_PER_POST_MAX} producers")
        if len(set(producer_ids)) != len(producer_ids):
            raise InvalidInput("producer_ids: each producer at most once", code="invalid_post")
        taken = await self.store.take(shop.id, list(producer_ids))
        if isinstance(taken, str):
            raise unknown_producer(f"producer {taken!r} is not one this shop names "
                                   "(POST /api/v1/shops/{shop_id}/producers)")
        return [ProducerRef(id=r.id, name=r.name, place=r.place, lat=r.lat, lon=r.lon)
                for r in taken]

    async def of_shop(self, shop: ShopRecord) -> list[ProducerOut]:
        return await producers_of_shop(self.store, shop)

    async def page(self, producer_id: str) -> ProducerPage:
        """A listed producer and the enabled shops naming it, nearest to it first; 404
        `unknown_producer` when unknown, unlisted, or named only by disabled shops."""
        listed = await self.store.listed(producer_id)
        if listed is None:
            raise NotFound(f"no producer {producer_id!r}", code="unknown_producer")
        record, shop_ids = listed
        shops = [decode_record(raw) for raw in
                 await get_many(self.redis, [keys.shop(s) for s in shop_ids]) if raw is not None]
        shown = sorted((s for s in shops if not s.disabled),
                       key=lambda s: (distance_km(record.lat, record.lon, s.lat, s.lon), s.id))
        if not shown:
            raise NotFound(f"no producer {producer_id!r}", code="unknown_producer")
        return ProducerPage(id=record.id, name=record.name, place=record.place, lat=record.lat,
                            lon=record.lon,
                            shops=[ProducerShop(id=s.id, name=s.name, category=s.category,
                                                lat=s.lat, lon=s.lon) for s in shown])

    async def search(self, lat: float, lon: float, query: str,
                     radius_km: float) -> list[ProducerMatch]:
        """Listed producers within `radius_km` whose folded name or place contains the
        folded query, nearest first, at most PRODUCER_SEARCH_MAX."""
        folded = fold_name(query) if query.strip() else ""
        await self._upgraded()
        found = await self.store.search(lat, lon, radius_km * 1000, folded, PRODUCER_SEARCH_MAX)
        sold = await self._sold_by_an_enabled_shop([r.id for r in found])
        matches = [ProducerMatch(id=r.id, name=r.name, place=r.place, lat=r.lat, lon=r.lon,
                                 distance_km=distance_km(lat, lon, r.lat, r.lon))
                   for r in found if r.id in sold]
        return sorted(matches, key=lambda m: (m.distance_km, m.name, m.id))

    async def _sold_by_an_enabled_shop(self, producer_ids: list[str]) -> set[str]:
        """Those of the producers some enabled shop names: what only a disabled shop names
        is no more found than its page is (a cold try found a disabled shop's words in
        every neighbour's search). A few of each producer's shops, drawn at random, are
        read first: one round trip when one of them is enabled, as nearly always, however
        many shops sell a popular producer (the search runs as the shopkeeper types)."""
        sample = await self.store.links(producer_ids, most=_SHOPS_READ)
        sold = await self._with_an_enabled_shop(sample)
        # Only a producer whose sampled shops are all disabled, and has more, is read whole.
        rest = [pid for pid, shops in sample.items()
                if pid not in sold and len(shops) == _SHOPS_READ]
        return sold | await self._with_an_enabled_shop(await self.store.links(rest))

    async def _with_an_enabled_shop(self, links: dict[str, list[str]]) -> set[str]:
        sold: set[str] = set()
        start = 0
        while True:
            batch = {pid: shops[start:start + _SHOPS_READ] for pid, shops in links.items()
                     if pid not in sold and shops[start:start + _SHOPS_READ]}
            if not batch:
                return sold
            wanted = sorted({s for shops in batch.values() for s in shops})
            records = {s: raw for s, raw in zip(
                wanted, await get_many(self.redis, [keys.shop(s) for s in wanted]), strict=True)}
            enabled = {s for s, raw in records.items()
                       if raw is not None and not decode_record(raw).disabled}
            sold.update(pid for pid, shops in batch.items() if enabled.intersection(shops))
            start += _SHOPS_READ
