"""What the store costs: the snapshot script against the live posts around, memory per
key (MEMORY USAGE, and INFO memory deltas over many posts), the remove script."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.capacity_sim.inputs import SETTINGS
from bench.capacity_sim.probe.city import ProbeCity, in_radius
from bench.capacity_sim.probe.common import commandstats


def probe_snapshots(sync: Any, redis: Any, city: ProbeCity,
                     out: dict[str, float | str]) -> None:  # pragma: no cover
    """The snapshot script's cost against the number of live posts around the phone."""
    from storage import keys

    script = sync.register_script(_snapshot_source())
    rng = np.random.default_rng(17)
    phones = rng.choice(np.nonzero(~city.pop.screen)[0], 500)
    rows = []
    for i in phones:
        lat, lon = float(city.pop.lat[i]), float(city.pop.lon[i])
        radius = float(city.pop.radius[i]) * 1.001 + 1
        sync.config_resetstat()
        reply = script(keys=[keys.active_geo(SETTINGS.region), keys.feed_stream(SETTINGS.region)],
                       args=[repr(lon), repr(lat), repr(radius), SETTINGS.snapshot_limit,
                             keys.post(SETTINGS.region, "")])
        _, usec = commandstats(sync, "evalsha")
        rows.append((1.0, in_radius(city, lat, lon, radius), len(reply) - 1, usec))
    a = np.array(rows)
    coef, *_ = np.linalg.lstsq(a[:, :3], a[:, 3], rcond=None)
    out["snapshot_us_fixed"] = round(float(coef[0]), 1)
    out["snapshot_us_per_post_in_radius"] = round(float(coef[1]), 4)
    out["snapshot_us_per_returned"] = round(float(coef[2]), 3)
    out["snapshot_us_mean"] = round(float(a[:, 3].mean()), 1)
    out["snapshot_in_radius_mean"] = round(float(a[:, 1].mean()), 1)


def _snapshot_source() -> str:
    from storage import live

    return live._SNAPSHOT


async def probe_memory(redis: Any, sync: Any, city: ProbeCity,
                        out: dict[str, float | str]) -> None:  # pragma: no cover
    from storage import keys
    from storage.live import LiveIndex

    region = SETTINGS.region
    n_live = len(city.post_ids)
    rng = np.random.default_rng(5)
    sample = rng.choice(n_live, min(400, n_live), replace=False)
    post_hash = np.mean([sync.memory_usage(keys.post(region, city.post_ids[i][0]), samples=0)
                         for i in sample])
    geo = sync.memory_usage(keys.active_geo(region), samples=0) / n_live
    expiry = sync.memory_usage(keys.expiry_zset(region), samples=0) / n_live
    shop_sets = [keys.shop_posts(region, s.id) for s in city.shops[:500]]
    in_sets = sum(int(sync.scard(k)) for k in shop_sets)
    per_set = sum(int(sync.memory_usage(k, samples=0) or 0) for k in shop_sets) / max(1, in_sets)
    out["live_post_bytes"] = round(float(post_hash + geo + expiry + per_set))
    feed = keys.feed_stream(region)
    out["feed_post_entry_bytes"] = round(sync.memory_usage(feed, samples=0) / sync.xlen(feed))
    # Tombstones: withdraw 1,000 posts through the real remove script.
    index = LiveIndex(redis, region, SETTINGS)
    stream_before = sync.memory_usage(feed, samples=0)
    sync.config_resetstat()
    for post_id, shop_id in city.post_ids[-1000:]:
        await index.remove(post_id, "withdrawn", now_ts=time.time(), shop_id=shop_id)
    calls, usec = commandstats(sync, "evalsha")
    out["remove_us"] = round(usec / max(1, calls), 1)
    out["feed_tombstone_entry_bytes"] = round(
        (sync.memory_usage(feed, samples=0) - stream_before) / 1000)
    del city.post_ids[-1000:]
    reach = keys.reach(region, "p_probe")
    sync.hincrby(reach, "phone", 4321)
    sync.hincrby(reach, "screen", 12)
    sync.expire(reach, 3600)
    out["reach_bytes"] = int(sync.memory_usage(reach, samples=0))
    out["shop_bytes"] = round(float(np.mean([sync.memory_usage(keys.shop(s.id), samples=0)
                                             for s in city.shops[:300]])) + 16)
    # Presence has no memory to measure: it is published (Pub/Sub), never written to a key.


async def probe_memory_deltas(redis: Any, sync: Any, city: ProbeCity,
                              out: dict[str, float | str], n: int = 5_000) -> None:
    # pragma: no cover
    """MEMORY USAGE's figures checked against the server's own account (INFO memory's
    used_memory, allocator overhead included): `n` of the town's posts published again
    through the real scripts, in a region of their own, then its feed stream emptied;
    withdrawn, then emptied again. Each step's delta over `n`: bytes per live post, per
    post entry, per tombstone of the feed (what retention keeps). They replace probe_memory's
    figures, which stay as `memory_usage_*`."""
    from datetime import UTC, datetime

    from bench.capacity_sim.probe.city import _enriched_posts, _publish
    from storage import keys
    from storage.live import LiveIndex

    region = "probe-memory"
    feed = keys.feed_stream(region)
    index = LiveIndex(redis, region, SETTINGS)
    jobs = _enriched_posts(city.shops, city.live, datetime.now(UTC))[:n]
    n = len(jobs)

    def used() -> int:
        sync.execute_command("MEMORY", "PURGE")
        return int(sync.info("memory")["used_memory"])

    start = used()
    posted = await _publish(index, jobs)
    with_posts = used()
    sync.xtrim(feed, maxlen=0, approximate=False)
    posts_only = used()
    for post_id, shop_id in posted:
        await index.remove(post_id, "withdrawn", now_ts=time.time(), shop_id=shop_id)
    with_tombs = used()
    sync.xtrim(feed, maxlen=0, approximate=False)
    emptied = used()
    # The server's account is what sizes a shard; MEMORY USAGE's stays beside it.
    for name, value in (("live_post_bytes", posts_only - start),
                        ("feed_post_entry_bytes", with_posts - posts_only),
                        ("feed_tombstone_entry_bytes", with_tombs - emptied)):
        out[f"memory_usage_{name}"] = out[name]
        out[name] = round(value / n)
