"""Feed retention by age (issue 19, point 5): a region's `feed` stream keeps the entries of
the last STREETFEED_FEED_RETENTION_S (MINID, in the scripts that append), and at most
STREETFEED_FEED_MAXLEN; a resume inside the retention is exact, one beyond it gets `reset`
and a fresh snapshot, on the socket and on the event stream alike.

Time is controlled, never slept through: the web process runs on a ManualClock (the
gateway's horizon), and the stream's own past is planted as entries with old ids (the
server's clock makes the ids of what the scripts add, and the horizon they trim at).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from rules import cursor as cursors
from rules.clock import ManualClock
from rules.errors import ConfigError
from runtime.settings import Settings, load_settings
from schemas.feed import FeedEntry
from storage import keys
from storage.live import LiveIndex
from tests.helpers import add_shop, arrival, enricher, feed_client, send_post, wait_for, web_server
from tests.test_sse import sse_client

STREET = (44.8370, -0.5735)
QUERY = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
RETENTION_S = 60


def test_retention_setting() -> None:
    assert load_settings({}).feed_retention_s == 24 * 3600
    assert load_settings({"STREETFEED_FEED_RETENTION_S": "3600"}).feed_retention_s == 3600
    # The count cap still works beside it, as operators set it.
    both = load_settings({"STREETFEED_FEED_RETENTION_S": "7200",
                          "STREETFEED_FEED_MAXLEN": "5000"})
    assert (both.feed_retention_s, both.feed_maxlen) == (7200, 5000)
    for bad in ("59", "0", "-1"):
        with pytest.raises(ConfigError, match="STREETFEED_FEED_RETENTION_S"):
            load_settings({"STREETFEED_FEED_RETENTION_S": bad})


def test_horizon_and_what_is_kept() -> None:
    assert cursors.horizon(1_700_000_060_000, 60) == "1700000000000-0"
    assert cursors.horizon(5_000, 60) == "0-0"
    kept = {"max_deleted": "0-0", "last_id": "9-0"}
    # Nothing removed: nothing lost, whatever the first entry.
    assert cursors.oldest_kept(entries_added=5, length=5, first_id="5-0", **kept) == "0-0"
    # Trimmed (MAXLEN or MINID, exact or `~`): the first entry left.
    assert cursors.oldest_kept(entries_added=9, length=5, first_id="5-0", **kept) == "5-0"
    # Deleted (XDEL) beyond the first entry left.
    assert cursors.oldest_kept(entries_added=9, length=5, first_id="5-0",
                               max_deleted="7-0", last_id="9-0") == "7-0"
    # Trimmed empty (an operator's XTRIM): only a cursor at the last id lost nothing. The
    # gateway used to take an empty stream for one never trimmed: every older cursor
    # resumed with nothing, its entries silently lost.
    empty = cursors.oldest_kept(entries_added=9, length=0, first_id=None, **kept)
    assert empty == "9-0"
    assert cursors.judge("9-0", last_id="9-0", oldest_kept=empty) is cursors.Resume.REPLAY
    assert cursors.judge("8-0", last_id="9-0", oldest_kept=empty) is cursors.Resume.RESET


def test_judged_by_the_first_entry_missed() -> None:
    # Older than the horizon: a reset, even while `~` has left it there.
    assert not cursors.within_retention("99-0", horizon="100-0")
    assert cursors.within_retention("100-0", horizon="100-0")
    assert cursors.within_retention("150-3", horizon="100-0")


def _old_entry(i: int) -> bytes:
    """A tombstone as the remove script writes it, at the street (a replay sends it)."""
    return msgspec.json.encode(FeedEntry(type="expired", id=f"p_old{i}", kind="new_arrival",
                                         lat=STREET[0], lon=STREET[1]))


async def _plant_past(redis: Any, stream: str, now_ms: int, ages_s: list[float]) -> list[str]:
    """Entries as if added `ages_s` ago (oldest first): ids carry the server's time."""
    ids = [f"{now_ms - int(age * 1000)}-{i}" for i, age in enumerate(ages_s)]
    pipe = redis.pipeline(transaction=False)
    for i, entry_id in enumerate(ids):
        pipe.xadd(stream, {"d": _old_entry(i)}, id=entry_id)
    await pipe.execute()
    return ids


async def _server_ms(redis: Any, stream: str) -> int:
    # TIME is keyless (a cluster would ask any node): the time the stream's own node gives
    # a new id is what counts, read from a throwaway id on that node.
    probe = await redis.xadd(stream + ":clock", {"t": "1"})
    await redis.delete(stream + ":clock")
    return int(cursors.key(probe.decode())[0])


@pytest.fixture(params=["plain", "cluster"])
def any_redis(request: pytest.FixtureRequest) -> Any:
    """The test's server, then the shared Valkey Cluster (a region's keys on one slot)."""
    return request.getfixturevalue("redis" if request.param == "plain" else "cluster_redis")


@pytest.mark.parametrize("script", ["publish", "remove"])
async def test_the_scripts_trim_by_age_and_keep_all_within_retention(
        any_redis: Any, settings: Settings, script: str) -> None:
    redis = any_redis
    stream = keys.feed_stream(settings.region)
    now_ms = await _server_ms(redis, stream)
    # 400 entries from 2-3 retentions ago, then 20 inside the retention.
    old = [3 * RETENTION_S - i * 0.1 for i in range(400)]
    inside = [RETENTION_S - 10 - i * 0.1 for i in range(20)]
    planted = await _plant_past(redis, stream, now_ms, old + inside)
    # The default retention (a day) keeps all of them.
    published = await LiveIndex(redis, settings.region, settings).publish(
        post_id="p_new", source="s-1", post_json=b'{"id":"p_new"}', kind="new_arrival",
        lat=STREET[0], lon=STREET[1], expires_ts=now_ms / 1000 + 3600, shop_id="s_x",
        raw=b"{}")
    assert published is not None
    assert await redis.xlen(stream) == len(planted) + 1
    live = LiveIndex(redis, settings.region, settings.with_(feed_retention_s=RETENTION_S))
    if script == "publish":  # an edit: the same post again, from another source entry
        added = await live.publish(
            post_id="p_new", source="s-2", post_json=b'{"id":"p_new"}', kind="new_arrival",
            lat=STREET[0], lon=STREET[1], expires_ts=now_ms / 1000 + 3600, shop_id="s_x",
            raw=b"{}", edit=True)
    else:
        added = await live.remove("p_new", "withdrawn", now_ts=now_ms / 1000)
    assert added is not None
    kept = [e[0].decode() for e in await redis.xrange(stream)]
    horizon = cursors.key(cursors.horizon(cursors.key(added)[0], RETENTION_S))
    # Everything inside the retention is there, in order; what `~` left of the past is
    # a tail of it (whole nodes trimmed: no hole in the middle).
    assert kept[-22:] == [*planted[400:], published, added]
    assert kept == [*planted[len(planted) - len(kept) + 2:], published, added]
    assert len(kept) < 150  # most of the 400 old entries are gone
    assert all(cursors.key(k) >= horizon for k in kept[-22:])


async def test_the_count_cap_still_applies(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(feed_maxlen=100)
    stream = keys.feed_stream(settings.region)
    now_ms = await _server_ms(redis, stream)
    await _plant_past(redis, stream, now_ms, [10 - i * 0.001 for i in range(1000)])
    live = LiveIndex(redis, settings.region, settings)
    await live.publish(post_id="p_new", source="s-1", post_json=b'{"id":"p_new"}',
                       kind="new_arrival", lat=STREET[0], lon=STREET[1],
                       expires_ts=now_ms / 1000 + 3600, shop_id="s_x", raw=b"{}")
    # All of them inside the retention, but a runaway region keeps about maxlen (`~`).
    assert 100 <= await redis.xlen(stream) < 300


@contextlib.asynccontextmanager
async def _resumed(transport: str, web: Any, cursor: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The frames of a feed resumed at `cursor` up to the ping that ends its snapshot or
    replay, by WebSocket or by Server-Sent Events."""
    if transport == "ws":
        async with feed_client(web.ws, *STREET, cursor=cursor) as ws:
            yield ws.frames
    else:
        async with sse_client(web.http, QUERY, last_event_id=cursor) as sse:
            yield sse.frames()


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_resume_inside_retention_is_exact_and_beyond_it_a_reset(
        redis: Redis, settings: Settings, transport: str) -> None:
    settings = settings.with_(feed_retention_s=RETENTION_S)
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings, clock=clock) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        async with feed_client(web.ws, *STREET) as client:
            first = (await send_post(http, shop, arrival("first"))).json()["id"]
            await client.wait_post(first)
            cursor = client.cursor
        assert cursor is not None
        missed = [(await send_post(http, shop, arrival(f"missed {i}"))).json()["id"]
                  for i in range(3)]

        async def published() -> bool:
            return await redis.xlen(keys.feed_stream(settings.region)) == 4
        await wait_for(published)
        # Inside the retention: exactly what was missed, in order, no reset.
        async with _resumed(transport, web, cursor) as frames:
            assert [f["type"] for f in frames] == ["post"] * 3 + ["ping"]
            assert [f["post"]["id"] for f in frames[:3]] == missed
        # The cursor ages past the retention (nothing was trimmed: `~` keeps a small
        # stream whole): `reset`, then the street as it is now.
        clock.advance(RETENTION_S + 1)
        async with _resumed(transport, web, cursor) as frames:
            assert frames[0]["type"] == "reset"
            assert frames[-1]["type"] == "ping"
            snapshot = {f["post"]["id"] for f in frames if f["type"] == "post"}
            assert snapshot == {first, *missed}


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_a_cursor_the_trim_went_past_is_reset_whatever_the_gateways_clock(
        redis: Redis, settings: Settings, transport: str) -> None:
    """`~` trims whole nodes at the server's horizon; a gateway whose clock is behind the
    server's takes more cursors for young enough. What the stream itself says was trimmed
    decides: a cursor whose next entries are gone gets `reset`, one whose next entries
    are all there gets them all, exactly."""
    settings = settings.with_(feed_retention_s=RETENTION_S)
    stream = keys.feed_stream(settings.region)
    shop = await add_shop(redis, settings, "Poissonnerie", *STREET)
    now_ms = await _server_ms(redis, stream)
    planted = await _plant_past(redis, stream, now_ms,
                                [3 * RETENTION_S - i * 0.1 for i in range(400)])
    # A gateway clock far behind: by age, every planted cursor would be young enough.
    clock = ManualClock()
    clock.advance(-3 * RETENTION_S)
    async with web_server(settings, clock=clock) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post = (await send_post(http, shop, arrival("fresh"))).json()["id"]

        async def published() -> bool:
            entries = await redis.xrevrange(stream, count=1)
            return bool(entries) and entries[0][0].decode() not in planted
        await wait_for(published)
        kept = [e[0].decode() for e in await redis.xrange(stream)]
        assert len(kept) < len(planted)  # the publish script trimmed the past
        first_kept = planted.index(kept[0])
        async with _resumed(transport, web, planted[first_kept - 1]) as frames:
            assert frames[0]["type"] == "reset"
            assert post in {f["post"]["id"] for f in frames if f["type"] == "post"}
        async with _resumed(transport, web, kept[0]) as frames:
            replayed = [f.get("id") or f["post"]["id"] for f in frames[:-1]]
            assert replayed == [f"p_old{i}" for i in range(first_kept + 1, 400)] + [post]
            assert frames[-1]["type"] == "ping"


async def test_a_stream_trimmed_empty_resets_the_cursors_behind_it(
        redis: Redis, settings: Settings) -> None:
    """An operator's `XTRIM ... MAXLEN 0` left a stream with no first entry: the gateway
    took it for one never trimmed, and a cursor behind its last id resumed with nothing,
    the posts in between silently lost."""
    shop = await add_shop(redis, settings, "Droguerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        async with feed_client(web.ws, *STREET) as client:
            first = (await send_post(http, shop, arrival("first"))).json()["id"]
            await client.wait_post(first)
            cursor = client.cursor
            missed = (await send_post(http, shop, arrival("missed"))).json()["id"]
            await client.wait_post(missed)
            last = client.cursor
        assert cursor is not None and last is not None
        await redis.xtrim(keys.feed_stream(settings.region), maxlen=0, approximate=False)
        async with feed_client(web.ws, *STREET, cursor=cursor) as behind:
            assert behind.frames[0]["type"] == "reset"
            assert {first, missed} <= set(behind.post_ids())
        async with feed_client(web.ws, *STREET, cursor=last) as current:
            assert [f["type"] for f in current.frames] == ["ping"]
