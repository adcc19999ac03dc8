"""A resume replays at most STREETFEED_REPLAY_MAX feed entries (issue 12, finding 8).

The attack: keep a cursor from long ago and reconnect with it. Before the cap, one
handshake after a day of traffic replayed 97,994 frames (52 MB): the gateway read and
wrote the whole stream since the cursor. Now a resume further back than the cap gets
`reset` and a fresh snapshot, like a cursor past retention.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from rules.errors import ConfigError
from runtime.settings import Settings, load_settings
from tests.helpers import feed_client, plant_feed_entries, wait_for, web_server

STREET = (44.8370, -0.5735)


def test_replay_max_setting() -> None:
    assert load_settings({}).replay_max == 500
    assert load_settings({"STREETFEED_REPLAY_MAX": "20"}).replay_max == 20
    for bad in ("0", "-3", "many"):
        with pytest.raises(ConfigError, match="STREETFEED_REPLAY_MAX"):
            load_settings({"STREETFEED_REPLAY_MAX": bad})


async def _plant(redis: Redis, region: str, first: int, count: int) -> None:
    await plant_feed_entries(redis, region, first, count, *STREET)


async def test_resume_past_replay_max_gets_reset_and_snapshot(redis: Redis,
                                                              settings: Settings) -> None:
    # The documented default and its environment variable, as a deployment sets them.
    capped = load_settings({"STREETFEED_REPLAY_MAX": "50"}, redis_url=settings.redis_url,
                           address_sockets_per_minute=100_000)
    assert settings.replay_max == 500
    async with web_server(capped) as web:
        async with feed_client(web.ws, *STREET) as first:
            old_cursor = first.cursor
            await _plant(redis, capped.region, 0, 50)
            await wait_for(lambda: len(first.posts()) == 50, message="50 live posts")
            fifty_back = first.cursor
        # Exactly the cap behind: replayed, no reset.
        async with feed_client(web.ws, *STREET, cursor=old_cursor) as resumed:
            assert not resumed.of_type("reset")
            assert len(resumed.posts()) == 50
        async with feed_client(web.ws, *STREET, cursor=fifty_back) as watcher:
            await _plant(redis, capped.region, 50, 2_000)
            await wait_for(lambda: len(watcher.posts()) == 2_000, 20, "2,000 more posts")
            recent = watcher.cursor
        # 2,050 entries behind: a reset and the snapshot (the live index is empty here),
        # not 2,050 frames.
        async with feed_client(web.ws, *STREET, cursor=old_cursor) as resumed:
            assert resumed.frames[0]["type"] == "reset"
            before_ping = resumed.frames[:next(i for i, f in enumerate(resumed.frames)
                                               if f["type"] == "ping")]
            assert len(before_ping) <= 1 + capped.snapshot_limit
            assert resumed.posts() == []
        # A recent cursor still resumes without a gap or a reset.
        await _plant(redis, capped.region, 2_050, 3)
        async with feed_client(web.ws, *STREET, cursor=recent) as resumed:
            assert not resumed.of_type("reset")
            assert [p["title"] for p in resumed.posts()] == [
                "filler 2050", "filler 2051", "filler 2052"]
