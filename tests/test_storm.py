"""A reconnect storm's resumes read the feed stream together (feed/replays.py).

After a gateway restart every socket resumes at once, each with the cursor of the last
frame it had. Read per socket, that was an XINFO STREAM and an XRANGE each; now the
resumes that arrive together share one pipelined read: one XINFO per region and one
XRANGE per distinct cursor, and each socket still gets exactly what came after its own
cursor, up to where it subscribed, no more, no less. bench/storm.py measures the storm.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

from runtime.settings import Settings
from tests.helpers import FeedClient, feed_client, plant_feed_entries, wait_for, web_server

STREET = (44.8370, -0.5735)
SOCKETS = 60


async def _plant(redis: Redis, region: str, first: int, count: int) -> None:
    await plant_feed_entries(redis, region, first, count, *STREET)


async def _calls(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
            for name in ("xrange", "xinfo|stream")}


async def test_sockets_resuming_at_once_share_their_reads_and_each_gets_its_own_gap(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(address_sockets_per_minute=100_000,
                              max_sockets_per_address=1_000)
    region = settings.region
    async with web_server(settings) as web:
        # Three cursors, as sockets that last heard the feed at three moments hold them.
        cursors: list[str] = []
        async with feed_client(web.ws, *STREET) as watcher:
            for step in range(3):
                await _plant(redis, region, 10 * step, 10)
                await wait_for(lambda s=step: len(watcher.posts()) == 10 * (s + 1),
                               message="the watcher's posts")
                assert watcher.cursor is not None
                cursors.append(watcher.cursor)
        await _plant(redis, region, 30, 5)
        replays = web.state.gateway.replays
        reads_before, calls_before = replays.reads, await _calls(redis)
        async with contextlib.AsyncExitStack() as stack:
            clients: list[tuple[int, FeedClient]] = []

            async def resume(k: int) -> None:
                step = k % 3
                client = await stack.enter_async_context(
                    feed_client(web.ws, *STREET, cursor=cursors[step]))
                clients.append((step, client))

            await asyncio.gather(*(resume(k) for k in range(SOCKETS)))
            reads = replays.reads - reads_before
            calls = await _calls(redis)
            for step, client in clients:
                # Exactly the entries after its own cursor: no gap, no duplicate, no reset.
                assert not client.of_type("reset")
                assert [p["title"] for p in client.posts()] == [
                    f"filler {i}" for i in range(10 * (step + 1), 35)]
            # Shared: far fewer reads than sockets, one XINFO per read, one XRANGE per
            # distinct cursor of each read.
            print(f"FIGURES storm resumes: sockets={SOCKETS} reads={reads} calls={calls}")
            assert 1 <= reads < SOCKETS // 2, reads
            assert calls["xinfo|stream"] - calls_before["xinfo|stream"] == reads
            assert calls["xrange"] - calls_before["xrange"] <= 3 * reads
            # Live after the replay, as any socket.
            await _plant(redis, region, 35, 1)
            for _step, client in clients:
                await client.wait_post("p_0000000000000035")
