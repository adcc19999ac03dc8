"""The probed town's shops and live posts, written through the product's own code
(create_shop, enrich, the real publish script)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.inputs import SETTINGS
from bench.capacity_sim.probe.common import commandstats
from bench.capacity_sim.snapshots import live_posts_per_shop
from bench.capacity_sim.town import Population, Town, country_towns, make_population
from rules.geo import EARTH_RADIUS_M

SHOP_CATEGORIES = ("boulangerie", "fromagerie", "librairie", "fleuriste", "epicerie",
                   "caviste", "primeur", "boucherie", "disquaire", "quincaillerie")
_TEXT = ("Arrivage du jour, directement du producteur : quantités limitées, "
         "venez tôt. Paiement sans contact accepté.")


@dataclass
class ProbeCity:
    pop: Population
    live: np.ndarray
    shops: list[Any]             # ShopRecord
    tokens: list[str]
    post_ids: list[tuple[str, str]]  # (post id, shop id)


async def populate(redis: Any, sync: Any, out: dict[str, float | str],
                   rank: int) -> ProbeCity:
    """The city's shops and live posts, through create_shop and the real publish script."""
    from datetime import UTC

    from storage.live import LiveIndex
    from storage.shops import get_shop

    model = Model()
    town = country_towns(model)[rank - 1]
    pop = make_population(model, town)
    live = live_posts_per_shop(model, np.random.default_rng([model.seed, town.rank, 5]),
                               town.shops)
    created = await _create_shops(redis, town, pop)
    shops = [await get_shop(redis, c.id) for c in created]
    index = LiveIndex(redis, SETTINGS.region, SETTINGS)
    jobs = _enriched_posts(shops, live, datetime.now(UTC))
    sync.config_resetstat()
    post_ids = await _publish(index, jobs)
    calls, usec = commandstats(sync, "evalsha")
    out["publish_us"] = round(usec / max(1, calls), 1)
    return ProbeCity(pop=pop, live=live, shops=shops, tokens=[c.token for c in created],
                     post_ids=post_ids)


async def _create_shops(redis: Any, town: Town, pop: Population) -> list[Any]:
    from rules.clock import SystemClock
    from schemas.shops import NewShop
    from services.shops import create_shop

    clock = SystemClock()
    created: list[Any] = []
    for start in range(0, town.shops, 200):
        created += await asyncio.gather(*(
            create_shop(redis, NewShop(
                name=f"{SHOP_CATEGORIES[i % 10].capitalize()} de la rue {i:04d}",
                category=SHOP_CATEGORIES[i % 10], lat=float(pop.shop_lat[i]),
                lon=float(pop.shop_lon[i]), address=f"{i % 120 + 1} rue du Marché"),
                region=SETTINGS.region, clock=clock)
            for i in range(start, min(town.shops, start + 200))))
    return created


def _post_body(kind: int, n: int, now: datetime) -> Any:
    """A post of that kind (KINDS order), as a shopkeeper would write it."""
    from datetime import timedelta

    from schemas.posts import FlashOfferIn, NewArrivalIn, OpeningChangeIn

    if kind == 0:
        return NewArrivalIn(title=f"Fraises de Plougastel, barquette 500 g ({n})",
                            text=_TEXT, price=4.5, tags=["local", "bio"])
    if kind == 1:
        return FlashOfferIn(title=f"-20 % sur les fromages de chèvre ({n})", text=_TEXT,
                            ends_at=now + timedelta(hours=2), price=3.2, discount_pct=20)
    return OpeningChangeIn(title="Ouvert jusqu'à 21:00", status="open_late",
                           until=now + timedelta(hours=3))


def _enriched_posts(shops: list[Any], live: np.ndarray,
                    now: datetime) -> list[tuple[Any, Any]]:
    """(RawPost, Enriched) for every live post of every shop, enriched by the worker's code."""
    from zoneinfo import ZoneInfo

    from rules.enrich import Enriched, enrich
    from schemas.posts import RawPost
    from storage.inbox import new_post_id

    policy = SETTINGS.moderation_policy()
    tz = ZoneInfo(SETTINGS.timezone)
    jobs = []
    for s, shop in enumerate(shops):
        for kind in range(3):
            for n in range(int(live[s, kind])):
                raw = RawPost(id=new_post_id(), shop_id=shop.id, accepted_at=now,
                              body=_post_body(kind, n, now))
                enriched = enrich(raw, shop, now=now, tz=tz, policy=policy,
                                  local_km=SETTINGS.local_km)
                assert isinstance(enriched, Enriched)
                jobs.append((raw, enriched))
    return jobs


async def _publish(index: Any, jobs: list[tuple[Any, Any]]) -> list[tuple[str, str]]:
    """Every post through the real publish script; their (post id, shop id)."""
    import msgspec

    seq = 0
    post_ids = []
    for start in range(0, len(jobs), 200):
        batch = jobs[start:start + 200]
        await asyncio.gather(*(
            index.publish(post_id=raw.id, source=f"{seq + j + 1}-0", post_json=e.json,
                          kind=e.kind, lat=e.lat, lon=e.lon, expires_ts=e.expires_ts,
                          shop_id=raw.shop_id, raw=msgspec.json.encode(raw))
            for j, (raw, e) in enumerate(batch)))
        seq += len(batch)
        post_ids += [(raw.id, raw.shop_id) for raw, _ in batch]
    return post_ids


def in_radius(city: ProbeCity, lat: float, lon: float, radius: float) -> int:
    s_lat = np.radians(city.pop.shop_lat)
    h = (np.sin((s_lat - math.radians(lat)) / 2) ** 2 + math.cos(math.radians(lat))
         * np.cos(s_lat) * np.sin((np.radians(city.pop.shop_lon) - math.radians(lon)) / 2) ** 2)
    dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return int(city.live.sum(axis=1)[dist <= radius].sum())
