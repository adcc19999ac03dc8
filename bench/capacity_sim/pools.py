"""How many processes: gateway processes for a town (to a fixed point), API processes for
every console, and what listening to presence costs them."""

from __future__ import annotations

import math

from bench.capacity import Model
from bench.capacity_sim.inputs import SETTINGS, SOCKETS_PER_PROCESS, probe_figures
from bench.capacity_sim.load import Load, town_load
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.townsim import TownSim


def listen(model: Model, load: Load, api_processes: int) -> None:
    """Add to `load` what its presence reports cost once received, with `api_processes`
    answering every console behind a load balancer that spreads requests at random.

    A process listens to a region from a console's request about it until none has come for
    `presence_idle_s` (feed/presence.py), and meanwhile receives every report published on
    its channel: Valkey writes each report to each listening process, which decodes it.
    Per channel (a district's, once split), a given process gets polls / splits / processes
    requests a second; it listens unless none came within `presence_idle_s`. With
    `presence_listeners_per_region`, that many processes listen to each channel instead.
    """
    p = probe_figures()
    per_channel = load.rates["polls"] / load.splits
    if not (api_processes and per_channel):
        listeners = 0.0
    elif model.presence_listeners_per_region:
        listeners = float(min(api_processes, model.presence_listeners_per_region))
    else:
        listeners = api_processes * -math.expm1(-per_channel * SETTINGS.presence_idle_s
                                                / api_processes)
    # Reports and cells delivered per second, over the town's channels.
    reports = listeners * load.rates["presence_reports"]
    cells = listeners * load.rates["presence_cells"]
    load.rates["presence_reports_heard"] = reports
    load.rates["presence_cells_heard"] = cells
    load.api["presence reports heard (every listening process)"] = (
        reports * p["listener_us_per_report"] + cells * p["listener_decode_us_per_cell"]) / 1e6
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
    entry; a console poll reads every process's presence cells), so iterate to a fixed
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
