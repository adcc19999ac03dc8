"""Capacity model: from the benchmark's per-core figures to a city and a country, by simulation.

    .venv/bin/python -m bench.capacity            # simulate, print the tables, rewrite the
                                                  # generated part of docs/capacity.md (+ plot)
    .venv/bin/python -m bench.capacity --probe    # re-measure the figures the benchmark does
                                                  # not give (PROBE below), on a local Valkey

What it does (docs/capacity.md explains the why):

1. Reads the measured figures from `bench/results/latest.json` (gateway CPU-s per 100,000
   deliveries and KiB RSS per idle socket at N = 10,000, the idle RSS of a `streetfeed web`
   process, Valkey and enricher CPU per post of the full-path benchmark).
2. Builds a city (default 200,000 phones watching at peak, 5,000 shops; the benchmark's
   density model of bench/city.py scaled up) and counts, for every shop and post kind,
   the exact recipients of a post: the real `feed.index.SubscriberIndex` for the city
   (cells, then the exact check), and a vectorised copy of the same check elsewhere,
   validated against the index on a sample.
3. Simulates the evening peak hour second by second (Poisson posting, flash-offer bursts,
   expiries and withdrawals) -> posts/s, deliveries/s, recipients per post.
4. Adds what else a socket costs, counted from the code: keepalive pings, snapshots at
   each (re)connection and each `subscribe` move, presence flushes -> gateway cores,
   processes and memory; shop consoles (people watching counted over the cells within 2 km
   of the shop, reach read after each own post), shop-profile fetches (from each process's
   cache) and what the API processes holding consoles pay to hear every gateway's presence
   report (Pub/Sub) -> API processes.
5. Counts the Redis commands of each event from the code (ingest, enricher, readers,
   snapshots, presence, reach, rate limits, scheduler) -> ops/s and Valkey CPU per region,
   memory per region, shards (one region = one hash slot = one shard).
6. Repeats it for a country of 300 towns (Zipf sizes), packs towns onto gateway processes
   and regions onto shards, and runs the sensitivity variants.

Deterministic: every draw comes from a seeded numpy Generator.
"""

# The code behind it is bench/capacity_sim/ (one module a step; its __init__ lists them).
# This file keeps what a person edits: the PROBE figures pasted from `--probe`, and every
# assumption of the model (`Model`), where docs/capacity.md says they are.

from __future__ import annotations

import sys
from dataclasses import dataclass

GIB = 1024.0**3

# Figures the benchmark does not measure, measured on this 2-core machine by
# `python -m bench.capacity --probe` (a local Valkey from streetfeed.embedded and one
# `streetfeed web` process, loopback only; the probe prints this dict). Re-run the probe
# and paste its output after a change to the snapshot, presence or console code.
PROBE: dict[str, float | str] = {
    "measured": "2026-11-26, median of 3 runs on this 2-core VM, quiet; presence figures "
                "2026-11-30, median of 3 runs, VM busy with other work (that day GET measured "
                "26 µs of Valkey CPU, not 17.75); memory figures 2026-11-30 "
                "(`--probe-memory`, two runs: per live post 1,951 and 1,961 bytes by INFO "
                "used_memory deltas over 5,000 posts through the real scripts, 1,887 twice by "
                "MEMORY USAGE; stream entries the same both ways within a byte); console and "
                "profile figures 2026-11-30 (issue 19), mean of 2 runs, VM busy (GET 18-26 µs, "
                "POST 2.0-2.7 ms of web CPU against 1.26 quiet)",
    # Valkey CPU per simple command (GET) awaited alone, 16 clients at once, incl. syscalls;
    # and (reference) from one client, one at a time: every command wakes the server.
    "valkey_us_per_cmd": 17.75,
    "valkey_us_per_cmd_sequential": 29.5,
    # Snapshot script (storage/live.py _SNAPSHOT), commandstats usec per call:
    # fixed + per live post within the search radius (GEOSEARCH) + per post returned (HMGET).
    "snapshot_us_fixed": 31.9,
    "snapshot_us_per_post_in_radius": 1.0613,
    "snapshot_us_per_returned": 8.505,
    # Cross-check: Valkey process CPU per socket opened where the snapshot is full (200 posts).
    "valkey_open_us_dense": 4600.0,
    # Publish and remove scripts (the post path; expiry / withdrawal), usec per call.
    "publish_us": 29.2,
    "remove_us": 49.6,
    # Presence (feed/stats.py, feed/presence.py): each gateway process PUBLISHes a
    # PresenceReport of all its cells once a second on the region's channel; every process
    # listening to the region (those answering its consoles) gets every report.
    "presence_bytes_per_cell": 18.2,           # a report's JSON bytes per (cell, count)
    "gw_presence_encode_us_per_cell": 0.1734,  # gateway CPU to build and encode a report
    "valkey_publish_us_per_cell": 0.004,       # Valkey CPU of a PUBLISH nobody listens to
    # (per report: one command, valkey_us_per_cmd) and for each listening process:
    "valkey_fanout_us_per_report_per_listener": 8.75,
    "valkey_fanout_us_per_cell_per_listener": 0.0183,
    # A listening process's CPU per report received (redis-py's get_message, the board's
    # loop: mostly per wake-up), and per cell decoded and kept (feed/presence.py _take):
    "listener_us_per_report": 352.5,
    "listener_decode_us_per_cell": 0.2593,
    # ... and per cell heard, the region's reports summed again for the consoles' counts,
    # once a presence interval (feed/presence.py _sums_of; 4 gateways' reports):
    "listener_sums_us_per_cell": 0.167,
    # Gateway process (`streetfeed web`) CPU:
    "gw_open_ms": 1.162,         # one socket opened: handshake, rate limit, place, snapshot call
    "gw_frame_us": 12.55,        # one snapshot frame (encoded per socket) written
    "gw_move_ms": 0.627,         # one `subscribe` move, excluding its snapshot frames
    "gw_read_us": 262.1,         # one feed entry read with no recipient (XREAD, decode, lookup)
    # A console's people watching, counted (feed/presence.py PresenceBoard.counts) with the
    # city's cells heard: it looks up the ~160 cells within 2 km of the shop in the region's
    # sums, whatever the number of cells heard (in-process, CPU per count). Reference: the
    # walk over every cell of every report it replaced (issue 19), on the same report.
    "console_count_us": 29.6,        # 20.7 and 38.5 (busy VM), 20,000 cells heard
    "console_count_walk_us": 28977.0,  # 26,039 and 31,914 on the same report
    "console_count_cells": 162.7,
    # A console's reach read (feed/stats.py reach_of: one pipeline over its shop's live
    # posts, 3 times after each own post): the reading process's CPU, and Valkey's.
    "console_reach_read_us": 272.0,  # 7 live posts (302 and 242)
    "valkey_reach_read_us": 33.3,
    # One GET /api/v1/shops/{id} found in the process's cache, and one not found (read in 4
    # round trips and computed, as every GET was before issue 19). Measured 1.156 / 2.844
    # and 1.077 / 1.623 ms on the busy VM, scaled here to the quiet day by the POST measured
    # in the same runs (2.706 and 2.049 ms against post_ms's 1.262).
    "profile_ms": 0.60,
    "profile_miss_ms": 1.16,
    "post_ms": 1.262,            # one POST /api/v1/shops/{id}/posts (auth, limits, XADD)
    # Memory of keys written by the real scripts: INFO memory's used_memory per post over
    # 5,000 posts (allocator and keyspace overhead included), and MEMORY USAGE of the keys:
    "live_post_bytes": 1951.0,   # post hash + GEO member + expiry member + shop-posts member
    "feed_post_entry_bytes": 738.0,       # one post entry of the region's feed stream
    "feed_tombstone_entry_bytes": 115.0,  # one expired / withdrawn entry
    "memory_usage_live_post_bytes": 1887.0,
    "memory_usage_feed_post_entry_bytes": 738.0,
    "memory_usage_feed_tombstone_entry_bytes": 115.0,
    # MEMORY USAGE:
    "reach_bytes": 96.0,         # one post's reach hash
    # (no presence figure: Pub/Sub stores nothing, presence takes 0 bytes of Redis data)
    "shop_bytes": 462.0,
    "web_rss_kib_idle": 41100.0,  # cross-check of latest.json's rss_kib_before
}


@dataclass(frozen=True)
class Model:
    """Every assumption of the model, in one place (the doc prints them from here)."""

    # City.
    watchers: int = 200_000          # phones watching at the evening peak
    shops: int = 5_000
    city_scale: float = 2.0          # bench/city.py's distances x2 (a Lyon-sized agglomeration)
    # Radii of phones: the app's default and its other choices (web/static/app.js RADII_M).
    radius_mix: tuple[tuple[float, float], ...] = ((1_000.0, 0.60), (500.0, 0.25),
                                                   (250.0, 0.15))
    radius_uniform: tuple[float, float] | None = None   # (lo, hi): uniform instead of the mix
    screen_share: float = 0.20       # shops running an in-shop screen (one socket, 500 m)
    # Posting at the evening peak (18:00-20:00), per shop.
    peak_posts_per_h: float = 3.0    # once per 20 min on average
    bursts_per_h: float = 4.0        # flash-offer bursts per town per hour...
    burst_share: float = 0.05        # ...each: this share of the town's shops posts a flash offer
    burst_s: float = 60.0            # ...within this many seconds
    flash_lifetime_h: float = 2.0    # ends_at of a flash offer (the benchmark's +2 h)
    withdraw_share: float = 0.05     # posts withdrawn before they expire
    daily_posts: float = 8.0         # posts per shop per day (retention, live posts)
    day_share_by_peak: float = 0.85  # share of the day's new arrivals posted by 19:00
    hours_share: float = 0.5         # shops with opening hours (one live opening_change each)
    # Sockets.
    session_s: float = 300.0         # a phone (re)opens its socket every 5 min on average
    walking_share: float = 0.20      # phones carried by someone walking with the page open
    walk_speed_m_s: float = 1.3      # rules.geo.walking_minutes' pace
    console_share: float = 0.40      # shops with the console open at peak (WS /ws/shop)
    # API processes listening to a region's presence: 0 = any holding one of its consoles'
    # sockets (the load balancer spreads them at random); N = the load balancer sends a
    # region's consoles to N processes only (a fix).
    presence_listeners_per_region: int = 0
    # A shop's cached profile is dropped (a write, a hold's step, its opening state or day
    # changing) this often, in every API process that has it: each recomputes it once.
    profile_drops_per_h: float = 2.0
    # Headroom and budgets.
    gateway_max_core: float = 0.60   # a gateway process runs at <= 60 % of its core
    shard_max_core: float = 0.50     # a Valkey shard's main thread at <= 50 % of a core
    shard_max_ops: float = 50_000.0  # ... and <= 50k commands/s (incl. commands inside scripts)
    shard_max_bytes: float = 4 * GIB  # ... and <= 4 GiB of data (host RAM 2x: fork, buffers)
    region_split_overlap: float = 0.25  # extra snapshot work when a region is split (borders)
    # Country.
    towns: int = 300
    zipf_s: float = 1.0              # watchers of town r = watchers / r**s
    shops_exponent: float = 0.9      # shops of a town = shops * (its watchers share)**0.9
    min_shops: int = 20
    scale_exponent: float = 0.4      # spatial scale ~ watchers**0.4 (smaller towns: less dense)
    min_scale: float = 0.25
    # Simulation.
    seed: int = 1
    snapshot_sample: int = 3_000     # phones whose snapshot is computed exactly (per town, max)
    validate_sample: int = 60        # (shop, kind) pairs checked against SubscriberIndex

    @property
    def peak_rate_per_shop_s(self) -> float:
        return self.peak_posts_per_h / 3600.0


if __name__ == "__main__":
    # Imported here: the simulation imports PROBE and Model from this module.
    from bench.capacity_sim.cli import main

    sys.exit(main())
