"""Packing: small towns onto shared gateway processes, regions (split when too big for one
shard) onto shards."""

from __future__ import annotations

from bench.capacity import Model
from bench.capacity_sim.inputs import SOCKETS_PER_PROCESS, probe_figures
from bench.capacity_sim.load import FEED_STREAM, Load, retained_entries, town_load
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.pools import api_pool, processes_for
from bench.capacity_sim.sizing import Sizing, summarise
from bench.capacity_sim.townsim import TownSim


def split_region(model: Model, sim: TownSim, measured: Measured, processes: int,
                 process_cells: float | None = None) -> tuple[Load, list[tuple[float, ...]]]:
    """The town's load and its (Valkey cores, commands/s, bytes) per region, its region
    split into as many as it takes for each to fit one shard (a region's keys share one
    hash slot, hence one shard)."""
    # 5 % of each budget is left for the keys outside regions, spread over every shard.
    max_core, max_ops, max_bytes = (0.95 * model.shard_max_core, 0.95 * model.shard_max_ops,
                                    0.95 * model.shard_max_bytes)
    unsplit = (0.0, 0.0)
    for k in range(1, 10_000):
        load = town_load(model, sim, measured, processes, process_cells=process_cells, splits=k)
        if k == 1:
            unsplit = (load.valkey_cores, load.ops_total)
        load.unsplit = unsplit
        snap = (load.valkey["snapshots of socket opens"]
                + load.valkey["snapshots of subscribe moves"])
        # Split k ways: the rest divides; snapshots near the new borders read two regions.
        overlap = 1 + model.region_split_overlap if k > 1 else 1.0
        cores = (load.valkey_cores - snap + snap * overlap) / k
        ops = load.ops_total / k
        # Each region keeps its own feed stream: its share of the entries, by age and count.
        p = probe_figures()
        entries = retained_entries(load.rates["feed_entries_per_day"] / k,
                                   load.rates["feed_entries_peak_per_s"] / k)
        stream = entries * (p["feed_post_entry_bytes"] + p["feed_tombstone_entry_bytes"]) / 2
        key = FEED_STREAM
        mem = (load.memory_total - load.memory[key]) / k + stream
        if cores <= max_core and ops <= max_ops and mem <= max_bytes:
            load.memory[key] = stream * k
            load.rates["feed_entries"] = entries * k
            return load, [(cores, ops, mem)] * k
    raise SystemExit("capacity: a region that 10,000 shards cannot hold")


def pack(items: list[tuple[float, ...]], caps: tuple[float, ...]) -> list[list[int]]:
    """First-fit decreasing bin packing of multi-dimensional items (indices per bin)."""
    order = sorted(range(len(items)),
                   key=lambda i: -max(v / c for v, c in zip(items[i], caps, strict=True)))
    bins: list[list[int]] = []
    used: list[list[float]] = []
    for i in order:
        for b, u in enumerate(used):
            if all(u[d] + items[i][d] <= caps[d] * (1 + 1e-9) for d in range(len(caps))):
                bins[b].append(i)
                for d in range(len(caps)):
                    u[d] += items[i][d]
                break
        else:
            bins.append([i])
            used.append(list(items[i]))
    return bins


def place(model: Model, sims: list[TownSim], measured: Measured, label: str) -> Sizing:
    """Gateway processes for every town, then every region (split if needed) onto shards."""
    loads: list[Load] = []
    shared: list[int] = []
    for i, sim in enumerate(sims):
        alone = town_load(model, sim, measured, 1)
        if (len(sims) > 1 and sim.sockets <= SOCKETS_PER_PROCESS / 2
                and alone.gateway_cores <= model.gateway_max_core / 2):
            shared.append(i)      # small: shares a process with other towns
            loads.append(alone)
        else:
            loads.append(processes_for(model, sim, measured))
    dedicated = sum(ld.processes for i, ld in enumerate(loads) if i not in set(shared))
    bins = pack([(sims[i].sockets / SOCKETS_PER_PROCESS, loads[i].gateway_cores) for i in shared],
                (1.0, model.gateway_max_core))
    processes = dedicated + len(bins)
    # A process serving several towns writes its whole presence map under each one's region.
    process_cells: dict[int, float] = {}
    for b in bins:
        total = sum(sims[shared[j]].cells_for(1, model.seed) for j in b)
        for j in b:
            process_cells[shared[j]] = total
    caps = (model.shard_max_core, model.shard_max_ops, model.shard_max_bytes)
    parts: list[tuple[float, ...]] = []
    for i, sim in enumerate(sims):
        converged = loads[i].converged
        loads[i], town_parts = split_region(model, sim, measured, loads[i].processes,
                                            process_cells.get(i))
        loads[i].converged = converged
        parts += town_parts
    splits = len(parts) - len(loads)
    api_processes, api_converged = api_pool(model, loads)
    # Shop records, sessions and rate-limit counters hash over every shard, and listening
    # processes subscribe on any node (the presence fan-out): share them out.
    global_cores = sum(sum(ld.valkey_global.values()) for ld in loads)
    global_ops = sum(ld.ops_global for ld in loads)
    global_bytes = sum(ld.memory_global for ld in loads)
    least = len(pack(parts, caps))
    shards = least
    for n in range(least, 100 * least + 10):  # the first count that holds everything
        share = (global_cores / n, global_ops / n, global_bytes / n)
        room = tuple(c - g for c, g in zip(caps, share, strict=True))
        if all(r > 0 for r in room) and len(pack(parts, room)) <= n:
            shards = n
            break
    return summarise(model, label, sims, loads, measured, shards, splits, processes,
                   api_processes, api_converged)
