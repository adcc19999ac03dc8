"""Liveness told truthfully, and the web process's loops that keep it so (issue 11).

`status` frames (DESIGN.md section 9) when the feed cannot be read and again when it can,
`/readyz` reasons, supervised loops that survive error replies, and the gateway's
handling of sockets that resume ahead of it or move while their snapshot is read.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from feed.hub import Hub
from runtime.settings import Settings
from storage import keys
from tests.helpers import (
    FeedClient,
    OwnRedis,
    add_shop,
    arrival,
    enricher,
    feed_client,
    send_post,
    wait_for,
    web_server,
)

STREET = (44.8370, -0.5735)
ELSEWHERE = (44.8500, -0.5600)  # ~1.8 km away


def _restarts(task: str) -> float:
    return REGISTRY.get_sample_value("streetfeed_task_restarts_total", {"task": task}) or 0.0


async def test_reader_failing_on_an_error_reply_is_restarted_and_sockets_are_told(
        redis: Redis, settings: Settings) -> None:
    """A WRONGTYPE reply used to end the reader task silently: the street went quiet for
    good while the page said live, and nothing restarted it."""
    settings = settings.with_(gateway_ping_interval_s=0.5)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    feed = keys.feed_stream(settings.region)
    before = _restarts(f"reader-{settings.region}")
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as client:
        await redis.delete(feed)
        await redis.set(feed, "not a stream")
        await wait_for(lambda: client.of_type("status") != [], 10, "status after the failure")
        down = client.of_type("status")[0]
        assert down["live"] is False and down["since"].endswith("Z")
        pings = len(client.of_type("ping"))
        await wait_for(lambda: len(client.of_type("ping")) >= pings + 2, 5,
                       "pings go on while the reader fails")
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert any("feed reader of region main" in r for r in ready.json()["reasons"])
        assert _restarts(f"reader-{settings.region}") > before

        await redis.delete(feed)
        await wait_for(lambda: client.of_type("status")[-1]["live"] is True, 10,
                       "live again once the feed can be read")
        assert client.of_type("status")[-1] == {"type": "status", "live": True}
        answer = await send_post(http, shop, arrival("après la panne"))
        await client.wait_post(answer.json()["id"], 10)
        assert (await http.get("/readyz")).status_code == 200


async def test_socket_opened_during_an_outage_is_told_at_once_and_fed_when_back(
        own_redis: OwnRedis, settings: Settings) -> None:
    settings = settings.with_(redis_url=own_redis.url)
    redis = Redis.from_url(own_redis.url)
    shop = await add_shop(redis, settings, "Fleuriste", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        posted = (await send_post(http, shop, arrival("pivoines"))).json()["id"]
        async with feed_client(web.ws, *STREET) as watching:
            await watching.wait_post(posted)
            own_redis.kill()
            await wait_for(lambda: watching.of_type("status") != [], 10,
                           "a live socket told within seconds")
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert "Redis is unreachable" in ready.json()["reasons"]
            async with feed_client(web.ws, *STREET, wait_ready=False) as late:
                await wait_for(lambda: late.frames != [], 5, "a first frame")
                assert late.frames[0]["type"] == "status"
                assert late.frames[0]["live"] is False
                assert not late.closed.is_set()
                own_redis.start()
                await late.wait_post(posted, 20)
                await late.wait_ready()
                kinds = [f["type"] for f in late.frames]
                assert kinds == ["status", "status", "post", "ping"], kinds
                assert late.frames[1]["live"] is True
            await wait_for(lambda: watching.of_type("status")[-1]["live"] is True, 10)
    await redis.aclose()


async def test_readyz_tells_a_stuck_enricher_without_sockets_and_across_a_redis_restart(
        own_redis: OwnRedis, settings: Settings) -> None:
    """Cold attackers' finds. /readyz said "ready" for a stopped enricher from a web
    process with no socket open (the watch asked only about regions it read), so the
    answer hung on which process a probe reached. And after a Redis restart the stall was
    forgotten: every consumer's `idle` starts again at the restart (its AOF replays their
    reads), so a stopped enricher looked at work for a stall's length, "ready" and live,
    then stuck "since" the restart."""
    settings = settings.with_(redis_url=own_redis.url, enricher_stall_s=5.0)
    redis = Redis.from_url(own_redis.url)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    process = _spawn_enricher(settings)
    try:
        async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
            async def beating() -> bool:
                return await redis.zcard(keys.enricher_beats(settings.region)) > 0
            await wait_for(beating, 15, "the enricher at work")
            # A beat dated in the future (only Redis's writers can) said "at work" for
            # ever (a cold attacker's).
            await redis.zadd(keys.enricher_beats(settings.region), {"forged": 9e12})
            os.kill(process.pid, signal.SIGSTOP)
            assert (await send_post(http, shop, arrival("cerises"))).status_code == 202

            answers: list[tuple[int, list[str]]] = []

            async def stuck() -> bool:
                answer = await http.get("/readyz")
                answers.append((answer.status_code, answer.json()["reasons"]))
                return answer.status_code == 503 and any(
                    "are stuck" in reason for reason in answers[-1][1])
            await wait_for(stuck, 10, "told stuck with no socket open")
            told = next(r for r in answers[-1][1] if "are stuck" in r)

            own_redis.kill()
            own_redis.start()
            answers.clear()

            async def a_stall_after_the_restart() -> bool:
                await stuck()
                uptime = (await redis.info("server"))["uptime_in_seconds"]
                return int(uptime) * 1000 > settings.enricher_stall_s * 1000 + 2_500
            await wait_for(a_stall_after_the_restart, 20, "a stall's length after the restart")
            assert all(status == 503 for status, _ in answers), answers
            assert next(r for r in answers[-1][1] if "are stuck" in r) == told

            os.kill(process.pid, signal.SIGCONT)

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200
            await wait_for(ready, 20, "ready once it reads again")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(10)
        await redis.aclose()


async def test_enricher_failing_on_an_error_reply_is_restarted(
        redis: Redis, settings: Settings) -> None:
    """A WRONGTYPE reply used to end the enricher's loop (and with it `streetfeed up`)."""
    shop = await add_shop(redis, settings, "Caviste", *STREET)
    inbox = keys.in_stream(settings.region)
    before = _restarts(f"enricher-{settings.region}")
    async with web_server(settings) as web, enricher(redis, settings) as worker, \
            httpx.AsyncClient(base_url=web.http) as http:
        await redis.delete(inbox)
        await redis.set(inbox, "not a stream")
        await wait_for(lambda: _restarts(f"enricher-{settings.region}") > before, 10,
                       "the enricher restarted")
        await redis.delete(inbox)
        answer = await send_post(http, shop, arrival("primeurs"))
        assert answer.status_code == 202
        await wait_for(lambda: worker.stats.published == 1, 15, "published after the failure")


async def test_a_timed_out_wait_leaves_no_waiter(settings: Settings) -> None:
    """Every waiter left behind was walked for every feed entry, for ever."""
    hub = Hub(settings)
    hub.set_position("main", "100-0")
    assert not await hub.wait_position("main", lambda p: p >= "200-0", 0.01)
    waiting = asyncio.create_task(hub.wait_position("main", lambda p: p >= "300-0", 10))
    await wait_for(lambda: hub.waiting() == 1, message="a waiter")
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert hub.waiting() == 0


async def test_a_cursor_newer_than_the_stream_is_reset_without_waiting(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        posted = (await send_post(http, shop, arrival("polars"))).json()["id"]
        async with feed_client(web.ws, *STREET) as first:
            await first.wait_post(posted)
        forged = f"{int(time.time() * 1000) + 10**9}-0"
        started = time.monotonic()
        async with feed_client(web.ws, *STREET, cursor=forged) as client:
            answered_s = time.monotonic() - started
            assert [f["type"] for f in client.frames] == ["reset", "post", "ping"]
            assert web.state.hub.waiting() == 0
        # No reader will ever reach it: the old code waited its 2 s for nothing.
        assert answered_s < 1.5, answered_s
        # Cursors that are no stream id at all (other scripts' digits, past 64 bits) are
        # malformed: a reset too, not a Redis error and a close (cold try).
        for malformed in ("0-99999999999999999999", "١-٠"):
            async with feed_client(web.ws, *STREET, cursor=malformed) as client:
                assert [f["type"] for f in client.frames] == ["reset", "post", "ping"]


async def test_subscribe_sent_while_the_snapshot_is_read_is_honoured(
        redis: Redis, settings: Settings) -> None:
    """The page sends `subscribe` on its first GPS fix, right after the handshake: it used
    to be dropped while the snapshot was read (0 of 20 honoured)."""
    here = await add_shop(redis, settings, "Ici", *STREET)
    there = await add_shop(redis, settings, "Là-bas", *ELSEWHERE)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        near = (await send_post(http, here, arrival("ici"))).json()["id"]
        far = (await send_post(http, there, arrival("là-bas"))).json()["id"]
        async with feed_client(web.ws, *STREET) as probe:
            await probe.wait_post(near)
        clients = [feed_client(web.ws, *STREET, radius_m=300, wait_ready=False)
                   for _ in range(20)]
        opened = [await c.__aenter__() for c in clients]
        try:
            for client in opened:
                await client.send({"type": "subscribe", "lat": ELSEWHERE[0],
                                   "lon": ELSEWHERE[1], "radius_m": 300})
            for client in opened:
                await wait_for(lambda c=client: c.of_type("reset") != [], 10, "moved")
                await client.wait_ready(pings=2)
                assert client.post_ids()[-1] == far
            later = (await send_post(http, there, arrival("là-bas encore"))).json()["id"]
            for client in opened:
                await client.wait_post(later)
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)


async def test_sockets_closed_during_setup_or_a_move_leave_nothing_behind(
        redis: Redis, settings: Settings) -> None:
    """Cold try of issue 11: sockets closed right after the handshake, or right after a
    `subscribe`, stayed in the index for ever (a cancellation lost in asyncio.wait_for),
    counted as people watching and written to on every post."""
    from websockets.asyncio.client import connect

    shop = await add_shop(redis, settings, "Primeur", *STREET)
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
    move = {"type": "subscribe", "lat": ELSEWHERE[0], "lon": ELSEWHERE[1], "radius_m": 300}
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        for i in range(30):  # a snapshot of some length: setup has several steps to be in
            await send_post(http, shop, arrival(f"fraises {i}"))

        async def quick(moves: int) -> None:
            async with connect(f"{web.ws}/ws/feed?{query}", max_size=2**22) as ws:
                for _ in range(moves):
                    await ws.send(json.dumps(move))

        for moves in (0, 1, 40):
            await asyncio.gather(*(quick(moves) for _ in range(100)))
        hub = web.state.hub
        await wait_for(lambda: len(hub.index) == 0 and not web.state.gateway.per_address, 10,
                       "every closed socket gone from the index")
        assert not hub.presence and sum(hub.region_users.values()) == 0
        async with feed_client(web.ws, *STREET) as client:
            later = (await send_post(http, shop, arrival("cerises"))).json()["id"]
            await client.wait_post(later)
            assert len(hub.index) == 1


async def test_a_stalled_redis_is_told_within_seconds(own_redis: OwnRedis,
                                                      settings: Settings) -> None:
    """A stopped (SIGSTOP), not dead, Redis: nothing fails, reads just stop coming back.
    Sockets are told within the contract's 5 s (plus the test's margin), and the probes
    answer 503 with the reason instead of hanging for the client's 10 s socket timeout
    (cold try: /readyz and /healthz took 10.0 s)."""
    import os
    import signal

    settings = settings.with_(redis_url=own_redis.url)
    async with web_server(settings) as web, feed_client(web.ws, *STREET) as client, \
            httpx.AsyncClient(base_url=web.http, timeout=4) as http:
        assert own_redis.process is not None
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            await wait_for(lambda: client.of_type("status") != [], 7, "told not live")
            ready = await http.get("/readyz")  # within the client's 4 s, or it raises
            assert ready.status_code == 503
            assert "Redis does not answer within 2 s" in ready.json()["reasons"]
            health = await http.get("/healthz")
            assert health.status_code == 503
            assert health.json()["error"]["code"] == "redis_unavailable"
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        await wait_for(lambda: client.of_type("status")[-1]["live"] is True, 15,
                       "live again once Redis answers")
        assert (await http.get("/readyz")).status_code == 200


async def test_a_move_during_an_outage_waits_for_the_feed(own_redis: OwnRedis,
                                                         settings: Settings) -> None:
    """Cold try of issue 11: a `subscribe` on a live socket during an outage closed it
    (1013) while a new socket was kept open and told `live: false`; now both wait."""
    settings = settings.with_(redis_url=own_redis.url)
    redis = Redis.from_url(own_redis.url)
    there = await add_shop(redis, settings, "Là-bas", *ELSEWHERE)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        far = (await send_post(http, there, arrival("là-bas"))).json()["id"]
        async with feed_client(web.ws, *STREET) as client:
            own_redis.kill()
            await wait_for(lambda: client.of_type("status") != [], 10, "told not live")
            await client.send({"type": "subscribe", "lat": ELSEWHERE[0],
                               "lon": ELSEWHERE[1], "radius_m": 300})
            own_redis.start()
            await client.wait_post(far, 20)
            await wait_for(lambda: client.of_type("status")[-1]["live"] is True, 10,
                           "told live again")
            assert client.of_type("reset") and not client.closed.is_set()
    await redis.aclose()


async def test_a_flood_of_moves_is_folded_then_closed(redis: Redis, settings: Settings) -> None:
    """Cold try of issue 12: `subscribe` had no limit; each costs a reset and a snapshot,
    and 20 sockets moving every 50 ms took everyone's post latency from 9 to 350 ms."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    move = {"type": "subscribe", "lat": ELSEWHERE[0], "lon": ELSEWHERE[1], "radius_m": 300}
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        await send_post(http, shop, arrival("fraises"))
        async with feed_client(web.ws, *STREET) as flooder, \
                feed_client(web.ws, *STREET) as bystander:
            for _ in range(settings.moves_per_minute + 20):
                await flooder.send(move)
            await flooder.closed.wait()
            assert flooder.close_code == 1008
            assert flooder.of_type("error")[-1]["error"]["code"] == "too_many_moves"
            # Folded: a snapshot per interval at most, not one per message.
            assert len(flooder.of_type("reset")) <= 3
            later = (await send_post(http, shop, arrival("cerises"))).json()["id"]
            await bystander.wait_post(later)
        await wait_for(lambda: len(web.state.hub.index) == 0, 5, "the flooder unsubscribed")


def lives(client: FeedClient) -> list[bool]:
    """Every `status` frame's `live`, in order."""
    return [frame["live"] for frame in client.of_type("status")]


def _spawn_enricher(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": settings.redis_url or "",
           "STREETFEED_ENRICHER_CLAIM_IDLE_MS": str(settings.enricher_claim_idle_ms)}
    return subprocess.Popen([sys.executable, "-m", "streetfeed.cli", "enricher"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_stuck_enricher_is_told_as_the_feed_not_being_live(
        redis: Redis, settings: Settings) -> None:
    """A stopped (SIGSTOP) enricher neither fails nor exits: posts were accepted (202) and
    shown to nobody, while /readyz said ready and every socket live (a cold attacker's
    find). Sockets are told `live: false` within the stall limit (not past the claim delay
    as well), since the first post left waiting, /readyz is 503 and says why; then live
    again once it publishes. A killed one, with nobody to read
    the posts, the same."""
    # The claim delay as deployed (15 s): a stopped enricher's posts are pending on it, not
    # unread, and were only noticed past claim delay + stall (a cold try: not before 25 s).
    settings = settings.with_(enricher_stall_s=5.0)  # the least above 2 x its 2 s block
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    # A post read long ago by an enricher killed since, still pending: it must not date
    # the stall (a cold try was told "not live since" 12 minutes before the stop).
    stream = keys.in_stream(settings.region)
    await redis.xgroup_create(stream, keys.ENRICHER_GROUP, id="0", mkstream=True)
    await redis.xadd(stream, {"d": b"{}"}, id="1000-0")
    assert await redis.xreadgroup(keys.ENRICHER_GROUP, "killed", {stream: ">"}, count=1)
    process = _spawn_enricher(settings)
    try:
        async with web_server(settings) as web, feed_client(web.ws, *STREET) as client, \
                httpx.AsyncClient(base_url=web.http) as http:
            first = (await send_post(http, shop, arrival("fraises"))).json()["id"]
            await client.wait_post(first, timeout=15)  # the enricher has started
            # A live enricher: the old post pending on the killed one is no stall.
            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200
            await wait_for(ready, 10, "ready with the old post pending")
            # (Told down while the enricher started, with nobody beating: live since.)
            await wait_for(lambda: lives(client)[-1:] != [False], 10, "live on the socket")
            told = len(lives(client))
            os.kill(process.pid, signal.SIGSTOP)
            accepted = time.time()
            # One post: the stopped enricher's blocked read takes it, so it is pending on
            # it, not unread (a cold try: a 20 s stop told to nobody).
            waiting = [(await send_post(http, shop, arrival("cerises"))).json()["id"]]
            await wait_for(lambda: lives(client)[told:] == [False], 10, "told not live")
            since = client.of_type("status")[-1]["since"]
            # When posts stopped flowing: the post, or the enricher's last beat before the
            # stop (at most its 2 s read block and 1 s beat interval earlier) when an older
            # post was already waiting (the one pending on the killed consumer).
            assert accepted - 4 <= datetime.fromisoformat(since).timestamp() <= accepted + 1, \
                since
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert any("enrichers of region" in r and "are stuck" in r
                       for r in ready.json()["reasons"]), ready.json()
            assert not set(waiting) & set(client.post_ids())

            os.kill(process.pid, signal.SIGCONT)
            await wait_for(lambda: set(waiting) <= set(client.post_ids()), 15, "published")
            await wait_for(lambda: lives(client)[-1:] == [True], 10, "live again")
            assert (await http.get("/readyz")).status_code == 200

            process.kill()
            process.wait(10)
            unread = (await send_post(http, shop, arrival("abricots"))).json()["id"]
            await wait_for(lambda: lives(client)[-1:] == [False], 10, "told not live")
            process = _spawn_enricher(settings)  # as a supervisor would
            await client.wait_post(unread, timeout=15)
            await wait_for(lambda: lives(client)[-1:] == [True], 10, "live again")
            assert lives(client)[-4:] == [False, True, False, True]
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(10)
