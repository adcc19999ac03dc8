"""How many processes: gateway processes for a town (to a fixed point), API processes for
every console, and what listening to presence costs them."""

from __future__ import annotations

import math

from bench.capacity import Model
from bench.capacity_sim.inputs import SOCKETS_PER_PROCESS, probe_figures
from bench.capacity_sim.load import Load, town_load
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.townsim import TownSim


def listen(model: Model, load: Load, api_processes: int) -> None:
    """Add to `load` what grows with the number of API processes, `api_processes` holding
    every console behind a load balancer that spreads them at random: the presence reports
    they hear, and the shop profiles each recomputes in its own cache.

    A process listens to a region while it holds a console socket of it (feed/presence.py
    `hold`), and meanwhile receives every report published on its channel: Valkey writes
    each report to each listening process, which decodes it. Per channel (a district's, once
    split), C = consoles / splits sockets spread at random over P processes leave
    P (1 - (1 - 1/P)^C) of them listening. With `presence_listeners_per_region`, that many
    processes listen to each channel instead. A shop's profile, cached in each process,
    is dropped `profile_drops_per_h` times an hour and computed again by every process
    asked for it (at most as often as it is fetched).
    """
    p = probe_figures()
    per_channel = load.rates["consoles"] / load.splits
    if not (api_processes and per_channel):
        listeners = 0.0
    elif model.presence_listeners_per_region:
        listeners = float(min(api_processes, model.presence_listeners_per_region))
    elif api_processes == 1:
        listeners = 1.0
    else:
        listeners = api_processes * -math.expm1(per_channel * math.log1p(-1.0 / api_processes))
    misses = min(load.rates["profiles"],
                 api_processes * load.rates["shops"] * model.profile_drops_per_h / 3600.0)
    load.rates["profile_misses"] = misses
    load.api["shop-profile recomputations (cache dropped)"] = misses * p["profile_miss_ms"] / 1e3
    load.valkey_global[
        "shop-profile recomputations (record, producers, holds today, openings)"] = (
        misses * 4 * p["valkey_us_per_cmd"] / 1e6)
    # Reports and cells delivered per second, over the town's channels.
    reports = listeners * load.rates["presence_reports"]
    cells = listeners * load.rates["presence_cells"]
    load.rates["presence_reports_heard"] = reports
    load.rates["presence_cells_heard"] = cells
    # Each cell heard is decoded, and summed again once a presence interval for the
    # consoles' counts (feed/presence.py `_sums_of`: a region held by a console is counted).
    load.api["presence reports heard (every listening process)"] = (
        reports * p["listener_us_per_report"]
        + cells * (p["listener_decode_us_per_cell"] + p["listener_sums_us_per_cell"])) / 1e6
    load.valkey_global["presence fan-out to listening processes (on their nodes)"] = (
        reports * p["valkey_fanout_us_per_report_per_listener"]
        + cells * p["valkey_fanout_us_per_cell_per_listener"]) / 1e6


def api_pool(model: Model, loads: list[Load]) -> tuple[int, bool]:
    """API processes for every console, profile and post, each <= 60 % busy, and `listen`
    applied with that many. Every process added listens too, so iterate to a fixed point;
    False when there is none (listening alone fills a process)."""
    processes = 1
    for _ in range(500):
        for load in loads:
            listen(model, load, processes)
        used = sum(ld.api_cores for ld in loads)
        need = max(1, math.ceil(used / model.gateway_max_core - 1e-9))
        if need <= processes:
            return processes, True
        processes = need
    return processes, False


def processes_for(model: Model, sim: TownSim, measured: Measured) -> Load:
    """Enough processes for the sockets (10,000 each) and the CPU (<= 60 % of a core each).

    Some per-process costs grow with the number of processes (every process reads every
    entry and publishes its presence cells), so iterate to a fixed
    point; `converged` is False when adding processes adds more work than it takes on.
    """
    processes = max(1, math.ceil(sim.sockets / SOCKETS_PER_PROCESS))
    load = town_load(model, sim, measured, processes)
    for _ in range(60):
        need = max(math.ceil(sim.sockets / SOCKETS_PER_PROCESS),
                   math.ceil(load.gateway_cores / model.gateway_max_core - 1e-9), 1)
        if need <= processes:
            return load
        processes = need
        load = town_load(model, sim, measured, processes)
    load.converged = False
    return load
