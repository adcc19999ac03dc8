"""The demo street: a dozen shops on Rue Sainte-Catherine (Bordeaux) and a simulator
that posts through the real ingest path every few seconds, so a newcomer
opening the page sees life at once.

The simulator behaves like the shopkeepers it stands for: it posts arrivals and flash
offers only from shops open now (each shop's hours, in the street's time), opening news
that fits the hour, at most one live post of a kind per shop, and it withdraws only the
posts it made itself (remembered in Redis, keys.demo_posts, so also after a restart):
a post made from the console with a demo shop's token is never touched.

Its shops have photos, drawn at start-up (streetfeed/demo_photos.py, no download) and
uploaded through the media library as a shopkeeper's would be; most arrivals and offers
carry one or two of their shop's.

Its shops name the producers they sell (DEMO_PRODUCERS: a mill, farms, estates, a roaster,
an oyster farm...), named at start-up through the producers service as a shopkeeper's
console would; most arrivals and offers of those shops name one or two of them. A few are
more than STREETFEED_LOCAL_KM (100 km) away, so the "Local" filter visibly filters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from rules.clock import Clock
from rules.hours import parse_weekly
from rules.moderation import Policy
from rules.opening import effective_state
from rules.shops import hash_token, new_token
from runtime.settings import Settings
from schemas.hours import OpeningOverride, ShopHours
from schemas.producers import ProducerIn
from schemas.shops import ShopRecord
from services.image_pool import ImagePool
from services.ingest import Ingest
from services.media import MediaLibrary
from services.producers import Producers
from services.shops import home_region
from storage import keys, openings
from storage.holds import HoldStore
from storage.live import LiveIndex, shop_live_posts, stream_id_key
from storage.media import media_store_for
from storage.redis_conn import async_reply, get_many, open_redis, text
from storage.shops import decode_record, encode_record
from streetfeed import demo_photos

__all__ = ["ARRIVAL_SCENES", "DEMO_PRODUCERS", "DEMO_PRODUCER_LINKS", "DEMO_SHOPS",
           "run_simulator", "seed_producers"]

log = logging.getLogger("streetfeed.demo")

# (id, name, category code (schemas.categories), lat, lon, address): north (Place de la
# Comédie) to south.
DEMO_SHOPS: list[tuple[str, str, str, float, float, str]] = [
    ("au-pain-dore", "Au Pain Doré", "bakery", 44.84115, -0.57392, "2 rue Sainte-Catherine"),
    ("cafe-le-comptoir", "Café Le Comptoir", "cafe", 44.84041, -0.57380, "18 rue Sainte-Catherine"),
    ("fromagerie-sainte-catherine", "Fromagerie Sainte-Catherine", "cheese", 44.83962,
     -0.57371, "31 rue Sainte-Catherine"),
    ("librairie-la-page-blanche", "Librairie La Page Blanche", "bookshop", 44.83890, -0.57362,
     "47 rue Sainte-Catherine"),
    ("les-jardins-de-gironde", "Les Jardins de Gironde", "greengrocer", 44.83811, -0.57353,
     "64 rue Sainte-Catherine"),
    ("boucherie-martin", "Boucherie Martin", "butcher", 44.83735, -0.57345,
     "80 rue Sainte-Catherine"),
    ("l-atelier-des-fleurs", "L'Atelier des Fleurs", "florist", 44.83660, -0.57336,
     "97 rue Sainte-Catherine"),
    ("cave-le-bouchon", "Cave Le Bouchon", "wine", 44.83581, -0.57327,
     "115 rue Sainte-Catherine"),
    ("cacao-et-co", "Cacao & Co", "chocolate", 44.83504, -0.57318, "132 rue Sainte-Catherine"),
    ("le-garde-manger", "Le Garde-Manger", "delicatessen", 44.83428, -0.57309,
     "150 rue Sainte-Catherine"),
    ("deuxieme-vie", "Deuxième Vie", "secondhand", 44.83352, -0.57300, "168 rue Sainte-Catherine"),
    ("quincaillerie-du-centre", "Quincaillerie du Centre", "hardware", 44.83275, -0.57291,
     "185 rue Sainte-Catherine"),
    # Open day and night, as town-centre night groceries are: the street a newcomer opens
    # at 3 a.m. is quiet but not dead, and nothing on it pretends to be open.
    ("epicerie-de-nuit", "L'Épicerie de Nuit", "grocery", 44.83199, -0.57282,
     "203 rue Sainte-Catherine"),
]

# (key, name, place, lat, lon): producers around Bordeaux, and a few farther than 100 km
# (the Pyrenees, the Basque Country, Lot-et-Garonne).
DEMO_PRODUCERS: list[tuple[str, str, str, float, float]] = [
    ("moulin", "Moulin de Saint-Émilion", "Saint-Émilion", 44.8945, -0.1553),
    ("ferme-jalles", "Ferme laitière des Jalles", "Saint-Médard-en-Jalles", 44.8967, -0.7197),
    ("maraichers", "Les Maraîchers d'Eysines", "Eysines", 44.8836, -0.6503),
    ("domaine-bourg", "Domaine des Coteaux de Bourg", "Bourg", 45.0404, -0.5592),
    ("vignoble-abbaye", "Vignoble de l'Abbaye", "La Sauve", 44.7690, -0.3140),
    ("brulerie", "Brûlerie des Chartrons", "Bordeaux", 44.8560, -0.5690),
    ("huitres", "Parc ostréicole du Bassin", "Arcachon", 44.6586, -1.1689),
    ("miellerie", "Miellerie de la Lande", "Captieux", 44.2925, -0.2622),
    ("bergerie-medoc", "Bergerie du Médoc", "Pauillac", 45.1990, -0.7480),
    ("elevage-bazas", "Élevage bazadais Lacoste", "Bazas", 44.4320, -0.2130),
    ("pepiniere-blaye", "Pépinière de la Citadelle", "Blaye", 45.1280, -0.6620),
    ("fromagerie-ossau", "Fromagerie de la vallée d'Ossau", "Laruns", 42.9880, -0.4240),
    ("bergerie-basque", "Bergerie Etxeberria", "Saint-Jean-Pied-de-Port", 43.1630, -1.2370),
    ("piment", "Piments Bidegain", "Espelette", 43.3400, -1.4470),
    ("noiseraie", "Noiseraie de Tournon", "Tournon-d'Agenais", 44.4000, 0.9970),
]
# shop id -> the producers (keys of DEMO_PRODUCERS) it names.
DEMO_PRODUCER_LINKS: dict[str, list[str]] = {
    "au-pain-dore": ["moulin"],
    "cafe-le-comptoir": ["brulerie", "ferme-jalles"],
    "fromagerie-sainte-catherine": ["fromagerie-ossau", "bergerie-basque", "ferme-jalles"],
    "les-jardins-de-gironde": ["maraichers"],
    "boucherie-martin": ["bergerie-medoc", "elevage-bazas"],
    "l-atelier-des-fleurs": ["pepiniere-blaye"],
    "cave-le-bouchon": ["domaine-bourg", "vignoble-abbaye"],
    "cacao-et-co": ["noiseraie"],
    "le-garde-manger": ["huitres", "miellerie", "piment"],
    "epicerie-de-nuit": ["maraichers", "ferme-jalles", "huitres"],
}

_ARRIVALS: dict[str, list[tuple[str, str, float, list[str]]]] = {
    "bakery": [
        ("Pain de seigle au levain, tout chaud", "Farine du moulin de Saint-Émilion.", 4.2,
         ["local", "bio"]),
        ("Cannelés tout juste sortis du four", "Recette bordelaise, rhum et vanille.", 1.6,
         ["artisanal"]),
        ("Fougasse aux olives sortie du four", "Olives de Nyons.", 3.9, [])],
    "cafe": [
        ("Nouveau café d'Éthiopie torréfié ce matin", "Torréfacteur bordelais.", 3.5, ["local"]),
        ("Chocolat chaud à l'ancienne", "Lait entier de la ferme, cacao pur.", 4.0, []),
        ("Tarte du jour : citron meringuée", "Faite maison ce matin.", 4.5, ["maison"])],
    "cheese": [
        ("Ossau-Iraty fermier arrivé", "Affiné 10 mois, direct du producteur.", 32.0,
         ["producteur"]),
        ("Brebis frais du Pays basque", "Arrivé ce matin.", 24.0, ["producteur"]),
        ("Comté 24 mois", "Fruitier du Jura, affinage en cave.", 29.5, [])],
    "bookshop": [
        ("Le nouveau roman de la rentrée est là", "Dédicace samedi 15h.", 22.0, []),
        ("Rayon BD : les nouveautés du mois", "Conseils de l'équipe en vitrine.", 14.5, []),
        ("Guides de randonnée en Gironde", "Cartes et itinéraires locaux.", 12.9, ["local"])],
    "greengrocer": [
        ("Premières fraises de Gironde", "Cueillies ce matin à Eysines.", 5.5,
         ["local", "circuit court"]),
        ("Asperges blanches du Blayais", "Botte d'un kilo.", 8.9, ["local"]),
        ("Pommes Reinette du Limousin", "Croquantes, idéales en tarte.", 2.9, [])],
    "butcher": [
        ("Agneau de Pauillac", "Élevé en Médoc, label rouge.", 28.9, ["local"]),
        ("Bœuf de Bazas", "Race bazadaise, maturé 3 semaines.", 34.0, ["local"]),
        ("Saucisses maison aux herbes", "Préparées ce matin.", 16.5, ["maison"])],
    "florist": [
        ("Pivoines de saison", "Producteur de Blaye.", 4.0, ["local"]),
        ("Bouquets de renoncules", "Couleurs pastel.", 18.0, []),
        ("Plants d'aromatiques", "Basilic, thym, romarin.", 3.5, ["bio"])],
    "wine": [
        ("Côtes-de-Bourg 2022 en dégustation", "Petit domaine familial.", 12.5, ["bio"]),
        ("Entre-deux-Mers blanc, nouveau millésime", "Frais et fruité.", 9.8, ["local"]),
        ("Crémant de Bordeaux rosé", "Parfait pour l'apéritif.", 11.5, [])],
    "chocolate": [
        ("Tablettes noisette du Lot-et-Garonne", "Fabriquées à l'atelier.", 6.8, ["artisanal"]),
        ("Pralinés à l'ancienne", "Amandes grillées à l'atelier.", 9.5, ["artisanal"]),
        ("Orangettes confites maison", "Oranges de Valence, chocolat noir.", 7.2, [])],
    "delicatessen": [
        ("Huîtres du Bassin, bourriche de 24", "Arrivées ce matin d'Arcachon.", 19.0,
         ["local"]),
        ("Piment d'Espelette AOP", "Récolte de l'année.", 7.5, []),
        ("Miel de bruyère des Landes", "Apiculteur de Captieux.", 9.0, ["local"])],
    "grocery": [
        ("Fraises de Gironde, cueillies ce matin", "Maraîchers d'Eysines.", 4.5,
         ["local"]),
        ("Lait frais de la ferme", "Bouteilles consignées.", 1.4, ["local"]),
        ("Glaces artisanales du glacier d'à côté", "Vanille, caramel au beurre salé.", 6.0,
         ["artisanal"])],
    "secondhand": [
        ("Arrivage vestes en laine", "Pièces uniques, bon état.", 35.0, ["seconde main"]),
        ("Jeans vintage, toutes tailles", "Triés et lavés.", 25.0, ["seconde main"]),
        ("Foulards en soie des années 70", "Pièces uniques.", 15.0, ["seconde main"])],
    "hardware": [
        ("Pots en terre cuite émaillée", "Fabrication française.", 9.9, []),
        ("Couteaux de Thiers", "Manche en bois d'olivier.", 29.0, []),
        ("Arrosoirs en zinc", "Modèle traditionnel, 5 litres.", 24.5, [])],
}
# The producers an arrival names (keys of DEMO_PRODUCERS, those its shop names); [] for
# none (Comté from the Jura). An arrival not here, and an offer, names one or two of its
# shop's producers, _PRODUCER_SHARE of the time.
_ARRIVAL_PRODUCERS: dict[str, list[str]] = {
    "Pain de seigle au levain, tout chaud": ["moulin"],
    "Cannelés tout juste sortis du four": ["moulin"],
    "Nouveau café d'Éthiopie torréfié ce matin": ["brulerie"],
    "Chocolat chaud à l'ancienne": ["ferme-jalles"],
    "Ossau-Iraty fermier arrivé": ["fromagerie-ossau"],
    "Brebis frais du Pays basque": ["bergerie-basque"],
    "Comté 24 mois": [],
    "Premières fraises de Gironde": ["maraichers"],
    "Asperges blanches du Blayais": ["maraichers"],
    "Pommes Reinette du Limousin": [],
    "Agneau de Pauillac": ["bergerie-medoc"],
    "Bœuf de Bazas": ["elevage-bazas"],
    "Pivoines de saison": ["pepiniere-blaye"],
    "Côtes-de-Bourg 2022 en dégustation": ["domaine-bourg"],
    "Entre-deux-Mers blanc, nouveau millésime": ["vignoble-abbaye"],
    "Tablettes noisette du Lot-et-Garonne": ["noiseraie"],
    "Orangettes confites maison": [],
    "Huîtres du Bassin, bourriche de 24": ["huitres"],
    "Piment d'Espelette AOP": ["piment"],
    "Miel de bruyère des Landes": ["miellerie"],
    "Fraises de Gironde, cueillies ce matin": ["maraichers"],
    "Lait frais de la ferme": ["ferme-jalles"],
    "Glaces artisanales du glacier d'à côté": [],
}
_PRODUCER_SHARE = 0.7
# Arrivals and offers a passer-by may ask the shop to hold.
_HOLD_SHARE = 0.5
# (title, text, discount): the title's figure and discount_pct always agree. None names a
# time of day: the demo posts around the clock ("fournée de l'après-midi" and "Happy
# hour" at 08:40 read wrong to a cold user).
_OFFERS = [("-{pct} % jusqu'à {end}", "Sur tout le rayon, dans la limite des stocks.", None),
           ("2 achetés, le 3e offert", "Jusqu'à {end} seulement.", 33),
           ("-{pct} % sur la vitrine", "Profitez-en avant {end} !", None),
           ("Offre du moment : -{pct} % jusqu'à {end}", "En boutique uniquement.", None),
           ("Fins de série à -{pct} %", "Jusqu'à {end}, tant qu'il en reste.", None),
           ("Le 2e article à moitié prix", "Jusqu'à {end}.", 25)]
LIVE_POSTS_PER_SHOP = 3
# A demo post stays at least this many of the demo's turns (STREETFEED_DEMO_INTERVAL_S
# each: 4 s, so 200 s) before it makes way for the shop's next one: with two shops open,
# posts lived 20-40 s, and the street flickered (a cold try). Until then the shop's turn
# posts nothing. In turns, so that a demo sped up for a test keeps its pace.
MIN_LIFE_TURNS = 50
# A flash offer runs at least this long, and ends by closing time.
_OFFER_MIN = timedelta(minutes=10)
_OFFER_MAX = timedelta(minutes=40)
# The share of turns given to any shop, open or not (the others go to shops open now).
_ANY_SHOP_SHARE = 0.25
# A post the demo made that is still not live after this (refused, expired, withdrawn
# elsewhere) is forgotten.
_PENDING_GRACE = timedelta(minutes=5)
# Which drawn scene shows which arrival (streetfeed/demo_photos.py): an arrival carries
# its own photo, and only a photo of what it announces (a coffee cup under "Tarte du
# jour" or a vegetable crate under "Glaces artisanales" looked broken: cold try). Offers
# ("-20 % until 18:00", "2 bought, the 3rd free") are about no one thing: no photo.
ARRIVAL_SCENES = {
    "Pain de seigle au levain, tout chaud": "bread",
    "Fougasse aux olives sortie du four": "bread",
    "Nouveau café d'Éthiopie torréfié ce matin": "coffee",
    "Ossau-Iraty fermier arrivé": "cheese", "Brebis frais du Pays basque": "cheese",
    "Comté 24 mois": "cheese",
    "Le nouveau roman de la rentrée est là": "books",
    "Rayon BD : les nouveautés du mois": "books",
    "Guides de randonnée en Gironde": "books",
    "Premières fraises de Gironde": "strawberries",
    "Fraises de Gironde, cueillies ce matin": "strawberries",
    "Asperges blanches du Blayais": "vegetables",
    "Saucisses maison aux herbes": "sausages",
    "Pivoines de saison": "flowers", "Bouquets de renoncules": "flowers",
    "Côtes-de-Bourg 2022 en dégustation": "wine",
    "Entre-deux-Mers blanc, nouveau millésime": "wine",
    "Crémant de Bordeaux rosé": "wine",
    "Tablettes noisette du Lot-et-Garonne": "chocolate",
    "Pralinés à l'ancienne": "chocolate",
    "Piment d'Espelette AOP": "jars", "Miel de bruyère des Landes": "jars",
    "Arrivage vestes en laine": "jackets",
    "Pots en terre cuite émaillée": "pots",
}
# The photos are uploaded again this often: the library keeps an unposted photo a day
# (an upload it already has only extends that, content-addressed: nothing new is stored);
# after a failure (the shop's quota full of the shopkeeper's own photos), sooner.
_PHOTOS_REFRESH = timedelta(hours=6)
_PHOTOS_RETRY = timedelta(minutes=10)


# Typical town-centre hours, so that "open now" means something on the demo street.
_DEMO_HOURS = {
    "bakery": "tue-sun 07:00-13:30,15:30-19:30",
    "cafe": "mon-sun 07:30-22:00",
    "wine": "tue-sat 10:00-13:00,15:00-20:30",
    "grocery": "mon-sun 00:00-24:00",
}
_DEFAULT_HOURS = "tue-sat 09:30-19:00"


def _known_tokens(path: Path) -> dict[str, str]:
    """The tokens the previous run wrote, if it did (a damaged file counts as none)."""
    try:
        known = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {k: v for k, v in known.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(known, dict) else {}


async def seed(redis: Redis, settings: Settings, clock: Clock) -> dict[str, str]:
    """Create the demo shops that are missing, each with a fresh token, and write the
    tokens to the data dir.

    A demo shop already there is left as it is: what was changed from the console or the
    CLI (its name, hours, holds turned off, a photo, disabled) survives a restart, and so
    does its token when the previous run's file still holds it (a restart used to give
    every shop a new token, signing out each console and breaking each integration). A
    shop whose token was changed since (`streetfeed shops rotate-token`) keeps it, out of the file.
    """
    path = Path(settings.data_dir) / "demo-tokens.json"
    known = _known_tokens(path)
    tokens: dict[str, str] = {}
    for shop_id, name, category, lat, lon, address in DEMO_SHOPS:
        existing = await redis.get(keys.shop(shop_id))
        if existing is not None:
            token = known.get(shop_id)
            if token is not None and decode_record(existing).token_hash == hash_token(token):
                tokens[shop_id] = token
            else:
                log.info("demo: %s keeps the token it was given since", shop_id)
            await async_reply(redis.sadd(keys.shops_index(), shop_id))
            continue
        token = new_token()
        hours = ShopHours(timezone=settings.timezone, weekly=parse_weekly(
            _DEMO_HOURS.get(category, _DEFAULT_HOURS)))
        record = ShopRecord(id=shop_id, name=name, category=category, lat=lat, lon=lon,
                            address=address, region=home_region(settings, lat, lon), hours=hours,
                            token_hash=hash_token(token), created_at=clock.now())
        await redis.set(keys.shop(shop_id), encode_record(record))
        await async_reply(redis.sadd(keys.shops_index(), shop_id))
        tokens[shop_id] = token
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2, ensure_ascii=False)
    return tokens


def demo_post(shop: ShopRecord, now: datetime, rng: random.Random, tz: ZoneInfo,
              taken_kinds: set[str], taken_titles: set[str],
              overrides: Sequence[OpeningOverride] = (),
              photos: Mapping[str, str] | None = None,
              producers: Mapping[str, str] | None = None) -> dict[str, object] | None:
    """What this shop could post now, as its shopkeeper would; None when nothing fits.

    Arrivals and flash offers only while the shop is open (a flash offer ends by closing
    time), an arrival with the photo of what it announces among the shop's `photos`
    (scene -> media id), most with one or two of its `producers`
    (key in DEMO_PRODUCERS -> producer id, those the shop names now); opening news that
    fits the hour; nothing of a kind the shop already has live (`taken_kinds`: flash offers
    and opening news), no arrival already live (`taken_titles`).
    """
    # Open as passers-by see it: the hours, or the shopkeeper's own "open late" post.
    state = effective_state(shop.hours, overrides, now)
    is_open = state.open_now is not False  # a shop without hours is taken as open
    change = state.next_change
    local = now.astimezone(tz)
    choices: list[dict[str, object]] = []
    weights: list[float] = []
    if is_open:
        fresh = [a for a in _ARRIVALS.get(shop.category, _ARRIVALS["hardware"])
                 if a[0] not in taken_titles]
        if fresh:
            title, body, price, tags = rng.choice(fresh)
            choices.append({"kind": "new_arrival", "title": title, "text": body, "price": price,
                            "tags": tags})
            weights.append(0.45)
        closes = change.at if change is not None and not change.open else None
        latest_end = now + _OFFER_MAX if closes is None else min(now + _OFFER_MAX, closes)
        if "flash_offer" not in taken_kinds and latest_end - now >= _OFFER_MIN:
            span = (latest_end - now - _OFFER_MIN).total_seconds()
            ends = now + _OFFER_MIN + timedelta(seconds=rng.uniform(0, span))
            ends = ends.replace(second=0, microsecond=0)
            end_text = ends.astimezone(tz).strftime("%H:%M")  # the street's time, not the host's
            title, body, fixed_pct = rng.choice(_OFFERS)
            pct = fixed_pct or rng.choice([10, 15, 20, 30])
            choices.append({"kind": "flash_offer",
                            "title": title.format(end=end_text, pct=pct)[:80],
                            "text": body.format(end=end_text), "ends_at": ends.isoformat(),
                            "discount_pct": pct})
            weights.append(0.4)
    if "opening_change" not in taken_kinds:
        opening = _opening_news(is_open, change.at if change is not None else None, now, local,
                                rng, tz)
        if opening is not None:
            choices.append(opening)
            weights.append(0.15)
    if not choices:
        return None
    post = rng.choices(choices, weights)[0]
    scene = ARRIVAL_SCENES.get(str(post["title"])) if post["kind"] == "new_arrival" else None
    if photos and scene is not None and scene in photos:
        post["media_ids"] = [photos[scene]]
    if producers and post["kind"] != "opening_change":
        named = _ARRIVAL_PRODUCERS.get(str(post["title"])) if post["kind"] == "new_arrival" \
            else None
        if named is None:
            have = sorted(producers)
            named = (rng.sample(have, rng.randint(1, min(2, len(have))))
                     if rng.random() < _PRODUCER_SHARE else [])
        ids = [producers[key] for key in named if key in producers]
        if ids:
            post["producer_ids"] = ids
    # "Hold it for me" on about half the arrivals and offers: a few units, kept a while.
    if post["kind"] != "opening_change" and rng.random() < _HOLD_SHARE:
        post["hold"] = {"quantity": rng.choice((2, 3, 5, 8)), "minutes": rng.choice((30, 60, 120))}
    return post


def _opening_news(is_open: bool, change_at: datetime | None, now: datetime, local: datetime,
                  rng: random.Random, tz: ZoneInfo) -> dict[str, object] | None:
    """Opening news that makes sense at this hour: closed for lunch around midday (until it
    reopens), open late in the evening (an hour past usual closing), open until closing."""
    hour = local.hour + local.minute / 60
    same_day = change_at is not None and change_at.astimezone(tz).date() == local.date()
    if change_at is None or not same_day:
        return None
    at = change_at.astimezone(tz).strftime("%H:%M")
    if not is_open:
        if 11.5 <= hour < 15.5 and change_at - now <= timedelta(hours=3):
            title = rng.choice([f"Fermé pour le déjeuner, retour à {at}",
                                f"Pause déjeuner, on rouvre à {at}"])
            return {"kind": "opening_change", "title": title, "status": "closed_now",
                    "until": change_at.isoformat()}
        return None
    if 17 <= hour < 20.5:
        late = change_at + timedelta(hours=1)
        if late.astimezone(tz).date() == local.date():
            late_text = late.astimezone(tz).strftime("%H:%M")
            title = rng.choice([f"Ouvert tard ce soir, jusqu'à {late_text}",
                                f"Nocturne ce soir : ouvert jusqu'à {late_text}"])
            return {"kind": "opening_change", "title": title, "status": "open_late",
                    "until": late.isoformat()}
    title = rng.choice([f"Ouvert, on vous attend jusqu'à {at}", f"Ouvert en continu jusqu'à {at}"])
    return {"kind": "opening_change", "title": title, "status": "open_now",
            "until": change_at.isoformat()}


async def seed_producers(redis: Redis, clock: Clock, policy: Policy) -> dict[str, str]:
    """Name the demo shops' producers through the producers service, as their consoles
    would: the same producer named by several shops is one record (its key -> its id).
    Run at every start, so a link removed from a demo shop's console comes back, as the
    shops' own names and hours do."""
    producers = Producers(redis, clock, policy)
    found = {key: ProducerIn(name=name, place=place, lat=lat, lon=lon)
             for key, name, place, lat, lon in DEMO_PRODUCERS}
    ids: dict[str, str] = {}
    for shop_id, named in DEMO_PRODUCER_LINKS.items():
        raw = await redis.get(keys.shop(shop_id))
        if raw is None:
            continue
        shop = decode_record(raw)
        for key in named:
            ids[key] = await producers.add(shop, found[key])
    return ids


class DemoPhotos:
    """The demo shops' photos: drawn once (in a thread: the web process's loop may share
    this one), processed by an image pool of its own (child processes, stopped between
    rounds), registered by the media library like any upload, and uploaded again every
    _PHOTOS_REFRESH."""

    def __init__(self, redis: Redis, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.pool = ImagePool(settings.media_workers)
        self.store = media_store_for(settings)
        self.library = MediaLibrary(redis, self.store, self.pool, clock,
                                    settings.shop_media_quota_mb)
        self._uploads: dict[str, bytes] = {}  # scene -> the JPEG a phone would send
        self._ids: dict[str, dict[str, str]] = {}  # shop -> scene -> its photo's media id
        self._due: datetime | None = None  # None: now
        self._task: asyncio.Task[None] | None = None

    def of(self, shop_id: str) -> dict[str, str]:
        """The shop's photos by scene; none until they are uploaded."""
        return self._ids.get(shop_id, {})

    def refresh_if_due(self, shops: Sequence[ShopRecord]) -> None:
        """Upload the shops' photos in the background when never done or due again: the
        street posts meanwhile, without photos at first."""
        if self._task is not None and not self._task.done():
            return
        if self._due is None or self.clock.now() >= self._due:
            self._task = asyncio.create_task(self._upload(list(shops)), name="demo-photos")

    async def _upload(self, shops: list[ShopRecord]) -> None:
        started = self.clock.now()
        try:
            if not self._uploads:
                scenes = sorted({s for shop in shops
                                 for s in demo_photos.scenes_for(shop.category)})
                self._uploads = await asyncio.to_thread(
                    lambda: {s: demo_photos.jpeg(demo_photos.draw(s)) for s in scenes})
            for shop in shops:
                self._ids[shop.id] = {
                    scene: (await self.library.add(shop, self._uploads[scene], "image/jpeg")).id
                    for scene in demo_photos.scenes_for(shop.category)}
            self._due = started + _PHOTOS_REFRESH
        except Exception as exc:  # photos are a plus: the street goes on without them
            log.warning("demo: photos not uploaded: %r", exc)
            self._due = self.clock.now() + _PHOTOS_RETRY
        finally:
            await self.pool.close()  # idle for hours: its children's memory back meanwhile

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.pool.close()
        await self.store.close()


class _ShopPosts:
    """One shop's live posts and the demo's own among them."""

    def __init__(self, live: dict[str, tuple[str, str, str]], own: dict[str, tuple[str, float]]):
        self.live = live  # post id -> (kind, title, feed id)
        self.own = own  # post id -> (kind, accepted at), made by the demo

    def own_live_oldest_first(self) -> list[str]:
        ids = [i for i in self.own if i in self.live]
        return sorted(ids, key=lambda i: stream_id_key(self.live[i][2] or "0-0"))


class DemoStreet:
    """The simulator's turns, one shop at a time (run_simulator paces them)."""

    def __init__(self, redis: Redis, settings: Settings, clock: Clock, policy: Policy,
                 rng: random.Random, photos: DemoPhotos | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.photos = photos
        self.ingest = Ingest(redis, settings, clock, policy)
        # The demo's producers (key -> id), once seed_producers has named them.
        self.producer_ids: dict[str, str] = {}
        self.lives = {r: LiveIndex(redis, r, settings) for r in settings.region_names}
        self.holds = HoldStore(redis)
        self.tz = ZoneInfo(settings.timezone)

    async def next_shop(self) -> str:
        """Whose turn it is: mostly a shop open now, so that the street at night (one
        grocery open) comes alive as fast as by day; sometimes any shop, for the opening
        news of closed ones (back after lunch)."""
        every = [shop_id for shop_id, *_ in DEMO_SHOPS]
        if self.rng.random() < _ANY_SHOP_SHARE:
            return self.rng.choice(every)
        now = self.clock.now()
        records = await get_many(self.redis, [keys.shop(shop_id) for shop_id in every])
        open_now = []
        for raw in records:
            if raw is None:
                continue
            shop = decode_record(raw)
            overrides = await openings.of_shop(self.redis, shop.region, shop.id)
            if effective_state(shop.hours, overrides, now).open_now is not False:
                open_now.append(shop.id)
        return self.rng.choice(open_now or every)

    async def _posts(self, shop: ShopRecord) -> _ShopPosts:
        live: dict[str, tuple[str, str, str]] = {}
        for post_id, (raw, feed_id) in await shop_live_posts(self.redis, shop.region, shop.id,
                                                               "json", "feed_id"):
            if raw is not None:
                data = json.loads(raw)
                live[post_id] = (str(data.get("kind", "")), str(data.get("title", "")),
                                 text(feed_id) if feed_id is not None else "0-0")
        own_key = keys.demo_posts(shop.region, shop.id)
        own: dict[str, tuple[str, float]] = {}
        stale: list[str] = []
        now_ts = self.clock.now().timestamp()
        stored = await async_reply(self.redis.hgetall(own_key))
        for field, value in stored.items():
            post_id, meta = text(field), json.loads(value)
            if post_id not in live and now_ts - float(meta["at"]) > _PENDING_GRACE.total_seconds():
                stale.append(post_id)
            else:
                own[post_id] = (str(meta["kind"]), float(meta["at"]))
        if stale:
            await async_reply(self.redis.hdel(own_key, *stale))
        return _ShopPosts(live, own)

    async def _withdraw(self, shop: ShopRecord, post_id: str) -> None:
        await self.lives[shop.region].remove(post_id, "withdrawn",
                                             now_ts=self.clock.now().timestamp(), shop_id=shop.id)
        await async_reply(self.redis.hdel(keys.demo_posts(shop.region, shop.id), post_id))

    async def _producers(self, shop: ShopRecord) -> dict[str, str]:
        """The demo's producers this shop names now (its console may have unlinked one)."""
        wanted = {self.producer_ids[key]: key for key in DEMO_PRODUCER_LINKS.get(shop.id, [])
                  if key in self.producer_ids}
        if not wanted:
            return {}
        linked = {p.id for p in await self.ingest.producers.of_shop(shop)}
        return {key: producer_id for producer_id, key in wanted.items() if producer_id in linked}

    async def turn(self, shop_id: str) -> str | None:
        """One turn for one shop: make way among its own posts, then maybe post; the new id."""
        raw = await self.redis.get(keys.shop(shop_id))
        if raw is None:
            return None
        shop = decode_record(raw)
        now = self.clock.now()
        posts = await self._posts(shop)
        overrides = await openings.of_shop(self.redis, shop.region, shop.id)
        if effective_state(shop.hours, overrides, now).open_now is False:
            # Closed: its own offers and arrivals make no sense any more.
            for post_id in posts.own_live_oldest_first():
                if posts.live[post_id][0] != "opening_change":
                    await self._withdraw(shop, post_id)
                    del posts.own[post_id]
        # Keep the street lively but not cluttered: its own oldest posts make way (the
        # shopkeeper's posts are not the demo's to withdraw, and do not count here), once
        # they have lived MIN_LIFE_TURNS, and never one a passer-by asked to hold: that is for
        # the shop to answer, and the post ends on its own.
        own_live = posts.own_live_oldest_first()
        to_go = max(0, len(own_live) - LIVE_POSTS_PER_SHOP + 1)
        for post_id in own_live:
            if to_go == 0:
                break
            if (now.timestamp() - posts.own[post_id][1]
                    < MIN_LIFE_TURNS * self.settings.demo_interval_s
                    or await self.holds.open_count(shop.region, post_id)):
                continue
            await self._withdraw(shop, post_id)
            del posts.own[post_id]
            to_go -= 1
        if to_go:
            return None  # no room yet: the street keeps what it shows
        taken_kinds = {kind for kind, _, _ in posts.live.values()}
        # The demo's own posts not live yet count too: no second offer before the first shows.
        taken_kinds |= {kind for post_id, (kind, _) in posts.own.items()
                        if post_id not in posts.live}
        taken_titles = {title for _, title, _ in posts.live.values()}
        post = demo_post(shop, now, self.rng, self.tz, taken_kinds & {"flash_offer",
                                                                       "opening_change"},
                         taken_titles, overrides,
                         self.photos.of(shop.id) if self.photos is not None else None,
                         await self._producers(shop))
        if post is None:
            return None
        if post["kind"] == "new_arrival" and any(
                kind == "new_arrival" and post_id not in posts.live
                for post_id, (kind, _) in posts.own.items()):
            return None  # its previous arrival is not live yet: its title cannot be checked
        post_id = await self.ingest.accept(shop, json.dumps(post).encode(), None)
        await async_reply(self.redis.hset(
            keys.demo_posts(shop.region, shop.id), post_id,
            json.dumps({"kind": post["kind"], "at": now.timestamp()})))
        return post_id


async def run_simulator(settings: Settings, clock: Clock, policy: Policy,
                        stop: asyncio.Event, seed_value: int | None = None) -> None:
    redis = open_redis(settings)
    rng = random.Random(seed_value)
    photos = DemoPhotos(redis, settings, clock)
    street = DemoStreet(redis, settings, clock, policy, rng, photos)
    try:
        await seed(redis, settings, clock)
        try:
            street.producer_ids = await seed_producers(redis, clock, policy)
        except Exception as exc:  # producers are a plus: the street goes on without them
            log.warning("demo: producers not named: %r", exc)
        log.info("demo: %d shops on rue Sainte-Catherine; tokens in %s/demo-tokens.json",
                 len(DEMO_SHOPS), settings.data_dir)
        shops = [decode_record(raw) for raw in await get_many(
            redis, [keys.shop(shop_id) for shop_id, *_ in DEMO_SHOPS]) if raw is not None]
        while not stop.is_set():
            try:
                photos.refresh_if_due(shops)
                await street.turn(await street.next_shop())
            except Exception as exc:  # the demo must never take the service down
                log.warning("demo: %r", exc)
            with contextlib.suppress(TimeoutError):
                pause = settings.demo_interval_s * rng.uniform(0.5, 1.5)
                await asyncio.wait_for(stop.wait(), pause)
    finally:
        await photos.close()
        await redis.aclose()
