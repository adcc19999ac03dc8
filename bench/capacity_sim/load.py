"""One town's load when `processes` gateway processes serve it: CPU by line item (gateway,
API, Valkey), Redis commands/s and memory, each line counted from what the code does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.inputs import (
    CONSOLE_REACH_ROUNDS,
    CONSOLE_UPDATE_S,
    MOVE_THRESHOLD_M,
    PRESENCE_FLUSH_S,
    SETTINGS,
    SWEEP_EXPIRY_S,
    probe_figures,
)
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.peak import Peak
from bench.capacity_sim.townsim import TownSim


@dataclass
class Load:
    """A town served by `processes` gateway processes that all read its region."""

    processes: int
    splits: int                      # regions the town's region is split into
    converged: bool
    gateway: dict[str, float]        # WebSocket work, cores, by line item
    api: dict[str, float]            # HTTP work (console, profiles, posts), cores
    valkey: dict[str, float]         # region shard cores, by line item
    valkey_global: dict[str, float]  # cores on keys spread over all shards (shops, limits)
    ops: dict[str, float]            # region commands/s (script-inner commands counted)
    ops_global: float
    memory: dict[str, float]         # region bytes
    memory_global: float
    rates: dict[str, float]
    cells_per_process: float
    workers_cores: float
    unsplit: tuple[float, float] = (0.0, 0.0)   # the region's (Valkey cores, commands/s), k = 1

    @property
    def gateway_cores(self) -> float:
        return sum(self.gateway.values())

    @property
    def api_cores(self) -> float:
        return sum(self.api.values())

    @property
    def valkey_cores(self) -> float:
        return sum(self.valkey.values())

    @property
    def ops_total(self) -> float:
        return sum(self.ops.values())

    @property
    def memory_total(self) -> float:
        return sum(self.memory.values())


@dataclass(frozen=True)
class Traffic:
    """The town's events per second at the design peak, and what each line item needs to
    price them (the PROBE figures, the cost of one simple command)."""

    p: dict[str, float]
    processes: int
    splits: int
    posts: float
    tombs: float
    deliveries: float
    cmd: float                   # Valkey CPU-s of one simple command
    opens: float
    moves: float
    consoles: float
    console_updates: float       # people watching counted for a console (folded per interval)
    reach_reads: float           # a console's reach read, after each of its shop's posts
    profiles: float
    cells_pp: float              # presence cells each process publishes
    region_cells: float
    with_recipients: float       # processes with at least one recipient of a post
    live_per_shop: float
    snapshot_frame_s: float      # gateway CPU-s to write one snapshot's frames
    console_cells: float         # occupied presence cells within 2 km of a shop
    presence_reports: float
    presence_cells: float


def traffic(model: Model, sim: TownSim, processes: int, process_cells: float | None,
            splits: int) -> Traffic:
    p = probe_figures()
    peak = sim.peak
    snaps = sim.snaps
    opens = sim.phones / model.session_s
    moves = sim.phones * model.walking_share * model.walk_speed_m_s / MOVE_THRESHOLD_M
    consoles = sim.town.shops * model.console_share
    posts = Peak.design(peak.posts)
    cells_pp = process_cells if process_cells is not None else sim.cells_for(processes,
                                                                              model.seed)
    region_cells = cells_pp * processes
    # Phones are spread at random over the processes.
    mean_rec = float(np.mean(peak.recipients)) if len(peak.recipients) else 0.0
    # Presence: each process PUBLISHes one report of all its cells per flush on its region's
    # channel (a district's, once split). What listening processes receive is added by
    # `listen`, once the number of API processes is known.
    return Traffic(
        p=p, processes=processes, splits=splits,
        posts=posts, tombs=Peak.design(peak.tombstones),
        deliveries=Peak.design(peak.deliveries), cmd=p["valkey_us_per_cmd"] / 1e6,
        opens=opens, moves=moves, consoles=consoles,
        # Counts are computed once an interval per shop when a report of its region changed:
        # at peak, with phones coming and going, every interval (an upper bound).
        console_updates=consoles / CONSOLE_UPDATE_S,
        reach_reads=posts * model.console_share * CONSOLE_REACH_ROUNDS,
        profiles=opens * snaps.shops_in_view + moves * snaps.new_shops_per_move,
        cells_pp=cells_pp, region_cells=region_cells,
        with_recipients=processes * (1 - (1 - 1 / processes) ** mean_rec),
        live_per_shop=float(sim.live.sum()) / max(1, sim.town.shops),
        snapshot_frame_s=snaps.frames * p["gw_frame_us"] / 1e6,
        console_cells=sim.cells_near_shop,
        presence_reports=processes / PRESENCE_FLUSH_S,
        presence_cells=region_cells / PRESENCE_FLUSH_S)


def gateway_cpu(t: Traffic, sim: TownSim, measured: Measured) -> dict[str, float]:
    p = t.p
    return {
        "live fan-out (posts + tombstones)": t.deliveries * measured.delivery_s,
        # Hub.ping writes one cached frame per socket: the ceiling scenario's bare write.
        "keepalive pings": sim.sockets / SETTINGS.gateway_ping_interval_s * measured.write_s,
        "socket opens + their snapshots": t.opens * (p["gw_open_ms"] / 1e3
                                                     + t.snapshot_frame_s),
        "subscribe moves + their snapshots": t.moves * (max(0.0, p["gw_move_ms"]) / 1e3
                                                        + t.snapshot_frame_s),
        "feed reads (every process, every entry)": (t.posts + t.tombs) * t.processes
        * p["gw_read_us"] / 1e6,
        "presence flush (report encoded, PUBLISH)": t.presence_cells
        * p["gw_presence_encode_us_per_cell"] / 1e6,
    }


def api_cpu(t: Traffic) -> dict[str, float]:
    p = t.p
    return {
        # The cells within 2 km of the shop looked up in the region's sums (feed/presence.py).
        "shop-console updates (people watching counted)": t.console_updates
        * p["console_count_us"] / 1e6,
        "shop-console reach reads (after each own post)": t.reach_reads
        * p["console_reach_read_us"] / 1e6,
        "presence reports heard (every listening process)": 0.0,   # see `listen`
        "shop-profile fetches (the process's cache)": t.profiles * p["profile_ms"] / 1e3,
        "shop-profile recomputations (cache dropped)": 0.0,        # see `listen`
        "post ingest (POST)": t.posts * p["post_ms"] / 1e3,
    }


def valkey_cpu(t: Traffic, sim: TownSim, measured: Measured) -> dict[str, float]:
    """On the region's shard: every key of the region shares its hash slot."""
    p, cmd, posts, tombs = t.p, t.cmd, t.posts, t.tombs
    snapshot_us = sim.snaps.valkey_us / 1e6 + cmd
    return {
        "posts: ingest, enricher, 1 reader (measured)": posts * measured.valkey_ms_per_post / 1e3,
        "feed reads by the other processes": (posts + tombs) * (t.processes - 1) * cmd,
        "reach counters": posts * max(0.0, t.with_recipients - 1) * 3 * cmd,
        "expiries / withdrawals (remove script)": tombs * (p["remove_us"] / 1e6 + cmd),
        "snapshots of socket opens": t.opens * snapshot_us,
        "snapshots of subscribe moves": t.moves * snapshot_us,
        "presence PUBLISH (no listener)": t.presence_reports * cmd
        + t.presence_cells * p["valkey_publish_us_per_cell"] / 1e6,
        "shop-console reach reads": t.reach_reads * p["valkey_reach_read_us"] / 1e6,
        "scheduler (opening hours, sweep)": sim.town.shops / 60.0 * 2 * cmd,
    }


def valkey_global_cpu(t: Traffic) -> dict[str, float]:
    """Keys outside the region's slot (shop records, rate limits, sessions): spread by hash.

    Per post: address limit, shop GET, shop limit (API) and shop GET (enricher); per open:
    the socket limit. A profile found in the process's cache reads nothing (its
    recomputations: see `listen`).
    """
    return {
        "rate limits, auth, shop records (keys outside regions)": (
            t.posts * 4 + t.opens) * t.cmd,
        "shop-profile recomputations (record, producers, holds today, openings)": 0.0,
        # Each listening process subscribes on one node (storage.redis_conn.pubsub_client),
        # any node of the cluster: its share of the fan-out lands there. See `listen`.
        "presence fan-out to listening processes (on their nodes)": 0.0,
    }


def region_ops(t: Traffic, sim: TownSim) -> dict[str, float]:
    """Commands per second on the region's shard (each command inside a script counts)."""
    posts, tombs = t.posts, t.tombs
    return {
        # ingest XADD; enricher XREADGROUP, publish script (1 + 7), XACK; one reader's XREAD
        "posts": posts * 12,
        "feed reads by the other processes": (posts + tombs) * (t.processes - 1),
        "reach": posts * t.with_recipients * 3,
        "tombstones (remove script 1 + 6)": tombs * 7,
        # script + XREVRANGE + GEOSEARCH + one HMGET per post returned
        "snapshots": (t.opens + t.moves) * (3 + sim.snaps.returned),
        "presence PUBLISH": t.presence_reports,
        # reach_of: one HMGET per live post of the shop, in one pipeline (presence is in
        # memory, never in Redis)
        "console reach reads": t.reach_reads * t.live_per_shop,
        "scheduler": sim.town.shops / 60.0 * 2,
    }


# Retention by age (storage/live.py: XTRIM MINID ~ in the scripts that append), capped by
# count: the stream holds the entries of the last feed_retention_s, at most feed_maxlen.
FEED_STREAM = (f"feed stream (last {SETTINGS.feed_retention_s / 3600:g} h, at most "
               f"{SETTINGS.feed_maxlen:,} entries)")


def retained_entries(entries_per_day: float, peak_entries_per_s: float) -> float:
    """A region's feed entries in steady state: a day or more of retention keeps whole days
    of entries; less keeps at most the peak rate throughout (an upper bound: the evening
    holds more than the day's average), never more than a day's. `~` trimming also keeps
    the part of one macro node that straddles the horizon (a few entries: not counted)."""
    days = SETTINGS.feed_retention_s / 86_400
    entries = (entries_per_day * days if days >= 1
               else min(entries_per_day, peak_entries_per_s * SETTINGS.feed_retention_s))
    return min(float(SETTINGS.feed_maxlen), entries)


def region_memory(t: Traffic, model: Model, sim: TownSim) -> tuple[dict[str, float], float]:
    """The region's bytes in steady state (the feed stream holding its retention's entries),
    and the feed entries that takes."""
    p = t.p
    day_posts = sim.town.shops * model.daily_posts
    feed_entries = retained_entries(day_posts * 2, t.posts + t.tombs)
    entry_bytes = (p["feed_post_entry_bytes"] + p["feed_tombstone_entry_bytes"]) / 2
    return {
        "live posts (hash, GEO, expiry, shop set)": float(sim.live.sum()) * p["live_post_bytes"],
        FEED_STREAM: feed_entries * entry_bytes,
        "reach hashes (3 days)": day_posts * SETTINGS.reach_ttl_s / 86_400 * p["reach_bytes"],
        "withdrawn ids (48 h)": (day_posts * model.withdraw_share * SETTINGS.withdrawn_ttl_s
                                 / 86_400 * 90.0),
        # Presence: none. Pub/Sub stores nothing: a report exists only in the output buffers
        # of the connections it is being sent to (client memory, not data).
    }, feed_entries


def rates(t: Traffic, model: Model, sim: TownSim, feed_entries: float) -> dict[str, float]:
    peak = sim.peak
    return {"posts_design": t.posts, "posts_mean": peak.posts_mean,
            "tombstones_design": t.tombs, "deliveries_design": t.deliveries,
            "deliveries_mean": peak.deliveries_mean, "opens": t.opens, "moves": t.moves,
            "consoles": t.consoles, "console_updates": t.console_updates,
            "reach_reads": t.reach_reads, "profiles": t.profiles, "shops": sim.town.shops,
            "snapshot_frames": (t.opens + t.moves) * sim.snaps.frames,
            "pings": sim.sockets / SETTINGS.gateway_ping_interval_s,
            "feed_entries": feed_entries,
            "feed_entries_per_day": 2 * (sim.town.shops * model.daily_posts),
            "feed_entries_peak_per_s": t.posts + t.tombs,
            "console_cells": t.console_cells, "presence_reports": t.presence_reports,
            "presence_cells": t.presence_cells, "presence_reports_heard": 0.0,
            "presence_cells_heard": 0.0}


def town_load(model: Model, sim: TownSim, measured: Measured, processes: int, *,
              process_cells: float | None = None, splits: int = 1) -> Load:
    """The town's load when `processes` gateway processes serve it.

    `process_cells`: presence cells each of them publishes, when they also serve other
    towns (a process writes its whole map under every region it reads). `splits`: the
    town's region split into that many regions, each served by its own processes (the load
    balancer routes by position), so a console hears only its district's gateways.
    """
    t = traffic(model, sim, processes, process_cells, splits)
    memory, feed_entries = region_memory(t, model, sim)
    # Workers: the enricher (measured per post) and the scheduler's expiry sweep and minute
    # runs (estimates: ~0.5 ms per post expired, ~50 µs per shop and minute for opening
    # hours).
    workers = (t.posts * measured.enricher_ms_per_post / 1e3 + t.tombs * SWEEP_EXPIRY_S
               + sim.town.shops * 50e-6 / 60)
    return Load(processes=processes, splits=splits, converged=True,
                gateway=gateway_cpu(t, sim, measured), api=api_cpu(t),
                valkey=valkey_cpu(t, sim, measured), valkey_global=valkey_global_cpu(t),
                ops=region_ops(t, sim),
                ops_global=t.posts * 8 + t.opens * 3,
                memory=memory, memory_global=sim.town.shops * t.p["shop_bytes"]
                + t.consoles * 250.0,
                rates=rates(t, model, sim, feed_entries), cells_per_process=t.cells_pp,
                workers_cores=workers)
