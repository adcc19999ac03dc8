"""The demo street: a dozen shops on Rue Sainte-Catherine (Bordeaux) and a simulator
that posts through the real ingest path every few seconds, so a newcomer
opening the page sees life at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis

from rules.clock import Clock
from rules.hours import parse_weekly
from rules.moderation import Policy
from rules.shops import hash_token, new_token
from runtime.settings import Settings
from schemas.hours import ShopHours
from schemas.shops import ShopRecord
from services.ingest import Ingest
from services.shops import home_region
from storage import keys
from storage.live import LiveIndex, shop_live_posts, stream_id_key
from storage.redis_conn import async_reply, open_redis

__all__ = ["DEMO_SHOPS", "run_simulator"]

log = logging.getLogger("streetfeed.demo")

# (id, name, category, lat, lon, address): north (Place de la Comédie) to south.
DEMO_SHOPS: list[tuple[str, str, str, float, float, str]] = [
    ("au-pain-dore", "Au Pain Doré", "boulangerie", 44.84115, -0.57392, "2 rue Sainte-Catherine"),
    ("cafe-le-comptoir", "Café Le Comptoir", "café", 44.84041, -0.57380, "18 rue Sainte-Catherine"),
    ("fromagerie-sainte-catherine", "Fromagerie Sainte-Catherine", "fromagerie", 44.83962,
     -0.57371, "31 rue Sainte-Catherine"),
    ("librairie-la-page-blanche", "Librairie La Page Blanche", "librairie", 44.83890, -0.57362,
     "47 rue Sainte-Catherine"),
    ("les-jardins-de-gironde", "Les Jardins de Gironde", "primeur", 44.83811, -0.57353,
     "64 rue Sainte-Catherine"),
    ("boucherie-martin", "Boucherie Martin", "boucherie", 44.83735, -0.57345,
     "80 rue Sainte-Catherine"),
    ("l-atelier-des-fleurs", "L'Atelier des Fleurs", "fleuriste", 44.83660, -0.57336,
     "97 rue Sainte-Catherine"),
    ("cave-le-bouchon", "Cave Le Bouchon", "caviste", 44.83581, -0.57327,
     "115 rue Sainte-Catherine"),
    ("cacao-et-co", "Cacao & Co", "chocolatier", 44.83504, -0.57318, "132 rue Sainte-Catherine"),
    ("le-garde-manger", "Le Garde-Manger", "épicerie fine", 44.83428, -0.57309,
     "150 rue Sainte-Catherine"),
    ("deuxieme-vie", "Deuxième Vie", "friperie", 44.83352, -0.57300, "168 rue Sainte-Catherine"),
    ("quincaillerie-du-centre", "Quincaillerie du Centre", "quincaillerie", 44.83275, -0.57291,
     "185 rue Sainte-Catherine"),
]

_ARRIVALS: dict[str, list[tuple[str, str, float, list[str]]]] = {
    "boulangerie": [("Pain de seigle au levain, tout chaud", "Farine du moulin de Saint-Émilion.",
                     4.2, ["local", "bio"])],
    "café": [("Nouveau café d'Éthiopie torréfié ce matin", "Torréfacteur bordelais.", 3.5,
              ["local"])],
    "fromagerie": [("Ossau-Iraty fermier arrivé", "Affiné 10 mois, direct du producteur.", 32.0,
                    ["producteur"])],
    "librairie": [("Le nouveau roman de la rentrée est là", "Dédicace samedi 15h.", 22.0, [])],
    "primeur": [("Premières fraises de Gironde", "Cueillies ce matin à Saint-Médard.", 5.5,
                 ["local", "circuit court"])],
    "boucherie": [("Agneau de Pauillac", "Élevé en Médoc, label rouge.", 28.9, ["local"])],
    "fleuriste": [("Pivoines de saison", "Producteur de Blaye.", 4.0, ["local"])],
    "caviste": [("Côtes-de-Bourg 2022 en dégustation", "Petit domaine familial.", 12.5, ["bio"])],
    "chocolatier": [("Tablettes noisette du Lot-et-Garonne", "Fabriquées à l'atelier.", 6.8,
                     ["artisanal"])],
    "épicerie fine": [("Huile d'olive nouvelle", "Moulin coopératif, première pression.", 18.0,
                       ["bio"])],
    "friperie": [("Arrivage vestes en laine", "Pièces uniques, bon état.", 35.0, ["seconde main"])],
    "quincaillerie": [("Pots en terre cuite émaillée", "Fabrication française.", 9.9, [])],
}
# (title, text, discount): the title's figure and discount_pct always agree.
_OFFERS = [("-{pct} % jusqu'à {end}", "Sur tout le rayon, dans la limite des stocks.", None),
           ("2 achetés, le 3e offert", "Jusqu'à {end} seulement.", 33),
           ("-{pct} % sur la vitrine", "Profitez-en avant {end} !", None)]
_OPENINGS = [("Ouvert tard ce soir", "open_late"),
             ("Fermé pour le déjeuner, retour à 14h", "closed_now"),
             ("Ouvert maintenant", "open_now")]
LIVE_POSTS_PER_SHOP = 3


# Typical town-centre hours, so that "open now" means something on the demo street.
_DEMO_HOURS = {
    "boulangerie": "tue-sun 07:00-13:30,15:30-19:30",
    "café": "mon-sun 07:30-22:00",
    "caviste": "tue-sat 10:00-13:00,15:00-20:30",
}
_DEFAULT_HOURS = "tue-sat 09:30-19:00"


async def seed(redis: Redis, settings: Settings, clock: Clock) -> dict[str, str]:
    """Create (or refresh) the demo shops; a fresh token for each, written to the data dir.

    Hours already set (from the console or CLI) are kept.
    """
    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder(ShopRecord).decode
    tokens: dict[str, str] = {}
    for shop_id, name, category, lat, lon, address in DEMO_SHOPS:
        token = new_token()
        existing = await redis.get(keys.shop(shop_id))
        hours = decode(existing).hours if existing else None
        if hours is None:
            hours = ShopHours(timezone=settings.timezone, weekly=parse_weekly(
                _DEMO_HOURS.get(category, _DEFAULT_HOURS)))
        record = ShopRecord(id=shop_id, name=name, category=category, lat=lat, lon=lon,
                            address=address, region=home_region(settings, lat, lon), hours=hours,
                            token_hash=hash_token(token), created_at=clock.now())
        await redis.set(keys.shop(shop_id), encode(record))
        await async_reply(redis.sadd(keys.shops_index(), shop_id))
        tokens[shop_id] = token
    path = Path(settings.data_dir) / "demo-tokens.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2, ensure_ascii=False)
    return tokens


def random_post(category: str, clock: Clock, rng: random.Random,
                tz: ZoneInfo) -> dict[str, object]:
    roll = rng.random()
    if roll < 0.45:
        title, text, price, tags = rng.choice(_ARRIVALS.get(category, _ARRIVALS["quincaillerie"]))
        return {"kind": "new_arrival", "title": title, "text": text, "price": price, "tags": tags}
    if roll < 0.85:
        ends = clock.now() + timedelta(minutes=rng.randint(3, 40))
        end_text = ends.astimezone(tz).strftime("%H:%M")  # the street's time, not the host's
        title, text, fixed_pct = rng.choice(_OFFERS)
        pct = fixed_pct or rng.choice([10, 20, 30])
        return {"kind": "flash_offer", "title": title.format(end=end_text, pct=pct)[:80],
                "text": text.format(end=end_text), "ends_at": ends.isoformat(),
                "discount_pct": pct}
    title, status = rng.choice(_OPENINGS)
    return {"kind": "opening_change", "title": title, "status": status,
            "until": (clock.now() + timedelta(hours=2)).isoformat()}


async def _live_titles(redis: Redis, region: str, shop_id: str) -> set[str]:
    posts = await shop_live_posts(redis, region, shop_id, "json")
    return {json.loads(raw)["title"] for _, (raw,) in posts if raw}


async def _oldest_posts(redis: Redis, region: str, shop_id: str) -> list[str]:
    """The shop's live posts beyond LIVE_POSTS_PER_SHOP - 1, oldest first (by feed id)."""
    posts = await shop_live_posts(redis, region, shop_id, "feed_id")
    order = sorted(posts, key=lambda post: stream_id_key(post[1][0] or "0-0"))
    return [i for i, _ in order[:max(0, len(order) - LIVE_POSTS_PER_SHOP + 1)]]


async def run_simulator(settings: Settings, clock: Clock, policy: Policy,
                        stop: asyncio.Event, seed_value: int | None = None) -> None:
    redis = open_redis(settings)
    rng = random.Random(seed_value)
    ingest = Ingest(redis, settings, clock, policy)
    lives = {r: LiveIndex(redis, r, settings)
             for r in settings.region_names}
    decode = msgspec.json.Decoder(ShopRecord).decode
    tz = ZoneInfo(settings.timezone)
    try:
        await seed(redis, settings, clock)
        log.info("demo: %d shops on rue Sainte-Catherine; tokens in %s/demo-tokens.json",
                 len(DEMO_SHOPS), settings.data_dir)
        while not stop.is_set():
            try:
                shop_id = rng.choice(DEMO_SHOPS)[0]
                raw = await redis.get(keys.shop(shop_id))
                if raw is not None:
                    shop = decode(raw)
                    # Keep the street lively but not cluttered: the oldest posts make way.
                    # (A shop's posts live in its own region, as seed() placed it.)
                    for old in await _oldest_posts(redis, shop.region, shop_id):
                        await lives[shop.region].remove(
                            old, "withdrawn", now_ts=clock.now().timestamp(), shop_id=shop_id)
                    post = random_post(shop.category, clock, rng, tz)
                    # The same arrival twice on one street looks broken: skip this turn.
                    repeated = post["kind"] == "new_arrival" and post["title"] in (
                        await _live_titles(redis, shop.region, shop_id))
                    if not repeated:
                        await ingest.accept(shop, json.dumps(post).encode(), None)
            except Exception as exc:  # the demo must never take the service down
                log.warning("demo: %r", exc)
            with contextlib.suppress(TimeoutError):
                pause = settings.demo_interval_s * rng.uniform(0.5, 1.5)
                await asyncio.wait_for(stop.wait(), pause)
    finally:
        await redis.aclose()
