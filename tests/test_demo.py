"""The demo street (`./dev up`) behaves as honest shopkeepers would: it never withdraws a post
it did not make (also after a restart on the same data), posts offers and arrivals only from
shops open now, opening news that fits the hour, and one live offer per shop at most."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from PIL import Image
from redis.asyncio import Redis

from rules.clock import ManualClock
from rules.moderation import Policy
from runtime.settings import Settings
from schemas.feed import FeedEntry
from schemas.posts import RawPost
from schemas.shops import ShopRecord
from services.ingest import Ingest
from services.producers import Producers
from storage import keys
from storage.live import shop_live_posts
from storage.media import FileMediaStore
from streetfeed import demo, demo_photos
from streetfeed.demo import (
    ARRIVAL_SCENES,
    DEMO_PRODUCER_LINKS,
    DEMO_PRODUCERS,
    DEMO_SHOPS,
    DemoStreet,
    demo_post,
    run_simulator,
    seed,
)
from tests.helpers import enricher, wait_for

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_MORNING = datetime(2026, 12, 1, 10, 30, tzinfo=PARIS)  # every demo shop is open
# Only the café (until 22:00) and the night grocery (day and night) are open.
TUESDAY_NIGHT = datetime(2026, 12, 1, 21, 30, tzinfo=PARIS)
CAFE = "cafe-le-comptoir"
NIGHT = "epicerie-de-nuit"
BAKERY = "au-pain-dore"  # tue-sun 07:00-13:30,15:30-19:30
BOOKSHOP = "librairie-la-page-blanche"  # tue-sat 09:30-19:00


@asynccontextmanager
async def demo_running(settings: Settings, clock: ManualClock, seed: int) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulator(settings, clock, Policy(), stop, seed_value=seed))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def accepted(redis: Redis, settings: Settings) -> list[RawPost]:
    entries = await redis.xrange(keys.in_stream(settings.region))
    return [msgspec.json.decode(fields[b"d"], type=RawPost) for _, fields in entries]


async def record(redis: Redis, shop_id: str) -> ShopRecord:
    return msgspec.json.decode(await redis.get(keys.shop(shop_id)), type=ShopRecord)


MIN_LIFE_TURNS = demo.MIN_LIFE_TURNS


@pytest.fixture(autouse=True)
def posts_make_way_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clocks of these tests stand still while the demo turns many times: its posts
    make way as soon as there are too many (a test below keeps MIN_LIFE_TURNS)."""
    monkeypatch.setattr(demo, "MIN_LIFE_TURNS", 0)


async def test_demo_withdraws_only_its_own_posts_also_after_a_restart(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(demo_interval_s=0.005)
    clock = ManualClock(TUESDAY_MORNING)
    shop_id = BOOKSHOP
    mine: list[str] = []  # the shopkeeper's posts, made with the demo shop's token

    async def demo_withdrawn() -> int:
        ids = [p.id for p in await accepted(redis, settings)
               if p.shop_id == shop_id and p.id not in mine]
        return sum([await redis.exists(keys.withdrawn(settings.region, i)) for i in ids])

    async with enricher(redis, settings, clock):
        for round_ in range(2):  # the second round is `./dev up` again on the same data
            async with demo_running(settings, clock, seed=round_):
                await wait_for(lambda: redis.exists(keys.shop(shop_id)), 20, "demo shops seeded")
                shop = await record(redis, shop_id)
                body = {"kind": "new_arrival", "title": f"Posté depuis la console {round_}"}
                mine.append(await Ingest(redis, settings, clock, Policy()).accept(
                    shop, json.dumps(body).encode(), None))
                before = await demo_withdrawn()

                async def rotated(before: int = before) -> bool:
                    return await demo_withdrawn() >= before + 3

                await wait_for(rotated, 60, "the demo to rotate its own posts of the shop")
            live = {i for i, _ in await shop_live_posts(redis, settings.region, shop_id, "json")}
            assert set(mine) <= live, "the demo withdrew a post the shopkeeper made"
            for post_id in mine:
                assert not await redis.exists(keys.withdrawn(settings.region, post_id))


async def test_demo_follows_opening_hours_and_posts_one_offer_per_shop(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(demo_interval_s=0.005)
    clock = ManualClock(TUESDAY_NIGHT)
    most_flash_offers = 0

    async def enough_posts() -> bool:
        nonlocal most_flash_offers
        live = await shop_live_posts(redis, settings.region, CAFE, "json")
        flash = sum(1 for _, (raw,) in live if raw and json.loads(raw)["kind"] == "flash_offer")
        most_flash_offers = max(most_flash_offers, flash)
        return len(await accepted(redis, settings)) >= 15

    async with enricher(redis, settings, clock), demo_running(settings, clock, seed=7):
        await wait_for(enough_posts, 60, "15 demo posts")
    posts = await accepted(redis, settings)
    assert {p.shop_id for p in posts} == {CAFE, NIGHT}, "only they are open at 21:30"
    assert most_flash_offers <= 1, "two flash offers from one shop at once"
    for post in posts:
        data = msgspec.to_builtins(post.body)
        assert "déjeuner" not in data["title"]
        if data["kind"] == "flash_offer":
            ends = datetime.fromisoformat(data["ends_at"])
            assert ends <= datetime(2026, 12, 1, 22, 0, tzinfo=PARIS)
    assert len({msgspec.to_builtins(p.body)["title"] for p in posts}) >= 6, "varied posts"


async def test_demo_posts_fit_each_shops_hours_and_the_hour(
        redis: Redis, settings: Settings) -> None:
    await seed(redis, settings, ManualClock(TUESDAY_MORNING))
    shops = {s[0]: await record(redis, s[0]) for s in DEMO_SHOPS}
    rng = random.Random(1)

    def kinds(shop_id: str, when: datetime) -> list[dict[str, object]]:
        made = [demo_post(shops[shop_id], when.astimezone(PARIS), rng, PARIS, set(), set())
                for _ in range(200)]
        return [p for p in made if p is not None]

    # 23:03: every shop is closed but the night grocery, and it is no time for lunch news
    # nor for "open late" (it is open anyway).
    for shop_id in shops:
        late = kinds(shop_id, datetime(2026, 12, 1, 23, 3, tzinfo=PARIS))
        if shop_id != NIGHT:
            assert late == [], shop_id
            continue
        assert {p["kind"] for p in late} >= {"new_arrival", "flash_offer"}
        assert not any(p.get("status") in ("closed_now", "open_late") for p in late)
    # 14:00: the bakery is closed for lunch (until 15:30); the bookshop is open all day.
    lunch = kinds(BAKERY, datetime(2026, 12, 1, 14, 0, tzinfo=PARIS))
    assert lunch and all(p["kind"] == "opening_change" and p["status"] == "closed_now"
                         for p in lunch)
    assert all("15:30" in str(p["title"]) for p in lunch)
    open_all_day = kinds(BOOKSHOP, datetime(2026, 12, 1, 14, 0, tzinfo=PARIS))
    assert {p["kind"] for p in open_all_day} == {"new_arrival", "flash_offer", "opening_change"}
    assert not any("déjeuner" in str(p["title"]) for p in open_all_day)
    # Open late is evening news; a flash offer ends by closing time (19:00).
    evening = kinds(BOOKSHOP, datetime(2026, 12, 1, 18, 30, tzinfo=PARIS))
    assert any(p.get("status") == "open_late" for p in evening)
    assert all(datetime.fromisoformat(str(p["ends_at"])) <= datetime(2026, 12, 1, 19, 0,
                                                                     tzinfo=PARIS)
               for p in evening if p["kind"] == "flash_offer")
    assert not any(p.get("status") == "open_late" for p in open_all_day)
    # No second offer of a kind the shop already has live, nor an arrival already live.
    taken = kinds(BOOKSHOP, datetime(2026, 12, 1, 11, 0, tzinfo=PARIS))
    titles = {str(p["title"]) for p in taken if p["kind"] == "new_arrival"}
    again = [demo_post(shops[BOOKSHOP], datetime(2026, 12, 1, 11, 0, tzinfo=PARIS), rng, PARIS,
                       {"flash_offer", "opening_change"}, titles) for _ in range(100)]
    assert again == [None] * 100


async def test_at_night_the_open_shops_take_most_turns(redis: Redis, settings: Settings) -> None:
    """At 03:00 only the night grocery is open: it must not wait its turn behind twelve
    closed shops (one post a minute), or a newcomer at night sees a dead street."""
    night = datetime(2026, 12, 2, 3, 0, tzinfo=PARIS)
    clock = ManualClock(night)
    await seed(redis, settings, clock)
    street = DemoStreet(redis, settings, clock, Policy(), random.Random(7))
    turns = [await street.next_shop() for _ in range(200)]
    assert turns.count(NIGHT) >= 130  # about 3 in 4 (1 in 13 before: every shop alike)
    assert len(set(turns)) > 2  # closed shops still get turns, for their opening news


async def test_demo_posts_carry_photos_of_their_shop_s_kind(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(demo_interval_s=0.005)
    clock = ManualClock(TUESDAY_MORNING)  # every shop open: arrivals and offers from all

    async def with_photos() -> list[RawPost]:
        return [p for p in await accepted(redis, settings) if p.media]

    async def enough() -> bool:
        return len({p.shop_id for p in await with_photos()}) >= 6

    async with enricher(redis, settings, clock), demo_running(settings, clock, seed=3):
        await wait_for(enough, 90, "demo posts with photos from 6 shops")
    posts = await accepted(redis, settings)
    later = [p for p in posts if p.media]
    assert later, "no demo post with photos"
    # Once a shop's photos are uploaded (in the background: the street posts meanwhile),
    # every arrival whose title a scene shows carries that scene's photo, and no other post
    # carries one (a coffee cup under "Tarte du jour" looked broken: cold try).
    since: dict[str, int] = {}
    for i, post in enumerate(posts):
        if post.media:
            since.setdefault(post.shop_id, i)
    for i, post in enumerate(posts):
        body = msgspec.to_builtins(post.body)
        scene = ARRIVAL_SCENES.get(body["title"]) if body["kind"] == "new_arrival" else None
        if scene is None:
            assert not post.media, body["title"]
        elif post.shop_id in since and i >= since[post.shop_id]:
            assert len(post.media) == 1, body["title"]
    store = FileMediaStore(settings.data_dir / "media")
    category = {shop_id: cat for shop_id, _, cat, *_ in DEMO_SHOPS}
    seen: set[str] = set()
    for post in later:
        assert len(post.media) == 1
        for media in post.media:
            assert (media.width, media.height) == demo_photos.PHOTO_SIZE
            record = await store.record(media.id)
            assert record is not None and record.shop_id == post.shop_id
            if media.id in seen:
                continue
            seen.add(media.id)
            data = await store.variant(media.id, media.width)
            assert data is not None
            with Image.open(io.BytesIO(data)) as img:
                assert img.format == "WEBP" and img.size == demo_photos.PHOTO_SIZE
                img.load()
    # Each shop's photos are drawn from its category's scenes: the greengrocer's two
    # differ from the bakery's one; one photo per scene, the same for every post showing it.
    per_shop: dict[str, set[str]] = {}
    for post in later:
        per_shop.setdefault(post.shop_id, set()).update(m.id for m in post.media)
    for shop_id, ids in per_shop.items():
        assert len(ids) <= len(demo_photos.scenes_for(category[shop_id])), shop_id


def test_demo_photos_are_deterministic_varied_and_quick() -> None:
    started = time.monotonic()
    drawn = {scene: demo_photos.draw(scene) for scene in demo_photos.SCENES}
    # A few hundred ms on a quiet core; generous here, where other work shares the machine.
    assert time.monotonic() - started < 3.0
    for scene, img in drawn.items():
        assert (img.mode, img.size) == ("RGB", demo_photos.PHOTO_SIZE)
        assert img.tobytes() == demo_photos.draw(scene).tobytes(), scene
        assert img.tobytes() != demo_photos.draw(scene, seed=1).tobytes(), scene
        # A photo, not a flat picture: many distinct colours (shading, grain).
        assert len(img.resize((300, 225)).getcolors(1 << 16) or range(1 << 16)) > 2000, scene
    every_category = {cat for _, _, cat, *_ in DEMO_SHOPS}
    assert all(set(demo_photos.scenes_for(c)) <= set(demo_photos.SCENES) for c in every_category)


async def test_demo_shops_name_producers_and_most_of_their_posts_name_them(
        redis: Redis, settings: Settings) -> None:
    """Issue 16: a dozen producers around Bordeaux named by fitting shops through the real
    service (one record for a producer several shops name), and posts naming them; some
    producers are beyond STREETFEED_LOCAL_KM, so `local=1` visibly filters."""
    settings = settings.with_(demo_interval_s=0.005)
    clock = ManualClock(TUESDAY_MORNING)  # every shop open: arrivals and offers from all
    linked = set(DEMO_PRODUCER_LINKS)

    async def entries() -> list[FeedEntry]:
        return [msgspec.json.decode(fields[b"d"], type=FeedEntry) for _, fields in
                await redis.xrange(keys.feed_stream(settings.region))]

    async def enough() -> bool:
        posts = [e for e in await entries() if e.type == "post"]
        named = [e for e in posts if b'"producers":[{' in bytes(e.post)]
        return (len(posts) >= 40 and any(e.local for e in named)
                and any(not e.local for e in named))

    async with enricher(redis, settings, clock), demo_running(settings, clock, seed=5):
        await wait_for(enough, 90, "40 demo posts, local ones and far ones among them")

    producers = Producers(redis, clock, Policy())
    names = {key: name for key, name, *_ in DEMO_PRODUCERS}
    ids_by_name: dict[str, set[str]] = {}
    for shop_id, keys_ in DEMO_PRODUCER_LINKS.items():
        named = await producers.of_shop(await record(redis, shop_id))
        assert {p.name for p in named} == {names[k] for k in keys_}, shop_id
        for p in named:
            ids_by_name.setdefault(p.name, set()).add(p.id)
    assert len(ids_by_name) == len(DEMO_PRODUCERS) >= 12
    assert all(len(ids) == 1 for ids in ids_by_name.values()), "one record per producer"
    (dairy,) = ids_by_name["Ferme laitière des Jalles"]
    assert len((await producers.page(dairy)).shops) == 3
    (mill,) = ids_by_name["Moulin de Saint-Émilion"]
    assert [s.id for s in (await producers.page(mill)).shops] == [BAKERY]
    # Most near (the Gironde), a few far (the Pyrenees, Lot-et-Garonne).
    distances = [p.distance_km for shop_id in linked
                 for p in await producers.of_shop(await record(redis, shop_id))]
    far = [d for d in distances if d > settings.local_km]
    assert 3 <= len(far) < len(distances) / 2

    # Most arrivals and offers of those shops name one or two of their own producers.
    posts = [p for p in await accepted(redis, settings) if p.shop_id in linked
             and msgspec.to_builtins(p.body)["kind"] != "opening_change"]
    assert posts
    assert sum(1 for p in posts if p.producers) >= len(posts) * 0.6, "most name producers"
    for post in posts:
        assert len(post.producers) <= 2
        assert {p.name for p in post.producers} <= {
            names[k] for k in DEMO_PRODUCER_LINKS[post.shop_id]}, post.shop_id
    assert not any(p.producers for p in await accepted(redis, settings)
                   if p.shop_id not in linked)


async def test_demo_arrivals_name_the_producer_they_speak_of(
        redis: Redis, settings: Settings) -> None:
    await seed(redis, settings, ManualClock(TUESDAY_MORNING))
    cheese = await record(redis, "fromagerie-sainte-catherine")
    rng = random.Random(2)
    ids = {"fromagerie-ossau": "pr_0000000000000001", "bergerie-basque": "pr_0000000000000002",
           "ferme-jalles": "pr_0000000000000003"}
    made = [demo_post(cheese, TUESDAY_MORNING, rng, PARIS, set(), set(), producers=ids)
            for _ in range(200)]
    by_title = {str(p["title"]): p.get("producer_ids") for p in made
                if p is not None and p["kind"] == "new_arrival"}
    assert by_title["Ossau-Iraty fermier arrivé"] == ["pr_0000000000000001"]
    assert by_title["Brebis frais du Pays basque"] == ["pr_0000000000000002"]
    assert by_title["Comté 24 mois"] is None  # from the Jura: no producer of the shop's
    offers = [p for p in made if p is not None and p["kind"] == "flash_offer"]
    assert offers and all(set(p.get("producer_ids", [])) <= set(ids.values()) for p in offers)
    assert sum(1 for p in offers if p.get("producer_ids")) >= len(offers) / 2
    # A producer the shop no longer names (unlinked from its console) is not named.
    without = [demo_post(cheese, TUESDAY_MORNING, rng, PARIS, set(), set(),
                         producers={"ferme-jalles": "pr_0000000000000003"}) for _ in range(100)]
    assert not any(p and "pr_0000000000000001" in p.get("producer_ids", []) for p in without)


async def test_a_restart_keeps_the_demo_shops_as_changed_and_their_tokens(
        redis: Redis, settings: Settings) -> None:
    """A restart used to write every demo shop again with a new token: each console was
    signed out, and holds turned off (or a name changed) came back on."""
    from storage.shops import authenticate, change_shop, rotate_token

    clock = ManualClock(TUESDAY_MORNING)
    first = await seed(redis, settings, clock)
    assert set(first) == {s[0] for s in DEMO_SHOPS}
    await change_shop(redis, BAKERY, lambda r: msgspec.structs.replace(
        r, holds=False, name="Au Pain Doré (nouveau)"))
    rotated = await rotate_token(redis, BOOKSHOP, clock)

    again = await seed(redis, settings, clock)
    bakery = await record(redis, BAKERY)
    assert (bakery.holds, bakery.name) == (False, "Au Pain Doré (nouveau)")
    # The file's tokens still sign in; the bookshop keeps the one it was given since, and
    # is left out of the file rather than given yet another.
    assert again == {k: v for k, v in first.items() if k != BOOKSHOP}
    assert json.loads((settings.data_dir / "demo-tokens.json").read_text()) == again
    for shop_id, token in again.items():
        assert (await authenticate(redis, shop_id, f"Bearer {token}")).id == shop_id
    assert (await authenticate(redis, BOOKSHOP, f"Bearer {rotated}")).id == BOOKSHOP
    # A shop missing (a wiped record) is created again with a token in the file.
    await redis.delete(keys.shop(BAKERY))
    third = await seed(redis, settings, clock)
    assert BAKERY in third and third[BAKERY] != first[BAKERY]
    assert (await record(redis, BAKERY)).holds is True


async def test_a_demo_post_lives_a_while_and_one_asked_to_hold_is_kept(
        redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """With two shops open and a turn every 4 s, demo posts lived 20-40 s and a passer-by's
    hold on one was declined before the shop could answer (a second cold user's)."""
    monkeypatch.setattr(demo, "MIN_LIFE_TURNS", MIN_LIFE_TURNS)
    min_life = timedelta(seconds=MIN_LIFE_TURNS * settings.demo_interval_s)  # 200 s
    clock = ManualClock(TUESDAY_MORNING)
    await seed(redis, settings, clock)
    street = DemoStreet(redis, settings, clock, Policy(), random.Random(3))

    async def own_live() -> list[str]:
        return [i for i, _ in await shop_live_posts(redis, settings.region, BOOKSHOP, "json")]

    async with enricher(redis, settings, clock):
        made: list[str] = []
        while len(made) < demo.LIVE_POSTS_PER_SHOP:
            post_id = await street.turn(BOOKSHOP)
            if post_id is not None:
                made.append(post_id)
                await wait_for(lambda p=post_id: redis.exists(keys.post("main", p)),
                               message="demo post live")
            clock.advance(60)
        first = made[0]
        # Full, and the oldest is younger than its least life: nothing makes way, nothing new.
        clock.set(TUESDAY_MORNING + min_life - timedelta(seconds=10))
        assert [await street.turn(BOOKSHOP) for _ in range(20)] == [None] * 20
        assert set(made) <= set(await own_live())
        # Old enough, but a passer-by asked to hold it: the next one makes way instead.
        await redis.sadd(keys.post_holds("main", first), "h_0000000000000000")
        clock.set(TUESDAY_MORNING + min_life + timedelta(minutes=4))
        for _ in range(50):  # a turn may find nothing to post; one soon does
            if await street.turn(BOOKSHOP) is not None:
                break
        live = await own_live()
        assert first in live and made[1] not in live
