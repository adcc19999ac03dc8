"""The answer for a set of towns: cores, processes, shards, memory and latency (`Sizing`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.inputs import KIB, SOCKETS_PER_PROCESS
from bench.capacity_sim.load import Load
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.peak import Peak
from bench.capacity_sim.townsim import TownSim
from feed.hub import PING_SLICES


@dataclass
class Sizing:
    label: str
    towns: int
    phones: int
    screens: int
    shops: int
    posts_mean: float
    posts_design: float
    deliveries_mean: float
    deliveries_design: float
    recipients_mean: float
    recipients_p99: float
    gateway_cores_used: float
    gateway_cores: int
    gateway_processes: int
    gateway_memory: float
    api_cores_used: float
    api_processes: int
    api_memory: float
    api_converged: bool
    converged: bool
    shards: int
    region_splits: int
    redis_memory: float
    valkey_cores: float
    ops: float
    biggest_region_cores: float
    biggest_region_ops: float
    latency_spread_ms: float
    latency_one_process_ms: float
    ping_sweep_ms: float
    workers_cores: float
    # Per town: (rank, gateway CPU, Valkey CPU of its region unsplit, regions it is split into).
    per_town: list[tuple[int, float, float, int]] = field(default_factory=list)
    gateway_items: dict[str, float] = field(default_factory=dict)
    api_items: dict[str, float] = field(default_factory=dict)
    valkey_items: dict[str, float] = field(default_factory=dict)
    memory_items: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)


def summarise(model: Model, label: str, sims: list[TownSim], loads: list[Load], measured: Measured,
            shards: int, splits: int, processes: int, api_processes: int,
            api_converged: bool) -> Sizing:
    cores_used = sum(ld.gateway_cores for ld in loads)
    api_used = sum(ld.api_cores for ld in loads)
    sockets = sum(s.sockets for s in sims)
    all_posts = np.sum([s.peak.posts for s in sims], axis=0)
    all_del = np.sum([s.peak.deliveries for s in sims], axis=0)
    recipients = np.concatenate([s.peak.recipients for s in sims])
    biggest = max(range(len(sims)), key=lambda i: loads[i].unsplit[0])
    c_del = measured.delivery_s
    p99 = float(np.percentile(recipients, 99)) if len(recipients) else 0.0
    city = loads[0]
    # Latency: the p99 post of the biggest place, its recipients spread over its processes.
    p99_city = float(np.percentile(sims[0].peak.recipients, 99))

    def total(attr: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for ld in loads:
            for k, v in getattr(ld, attr).items():
                out[k] = out.get(k, 0.0) + v
        return out

    memory_items = total("memory")
    memory_items["shops, console sessions (keys outside regions)"] = sum(
        ld.memory_global for ld in loads)
    valkey_items = total("valkey")
    valkey_items.update(total("valkey_global"))
    return Sizing(
        label=label, towns=len(sims), phones=sum(s.phones for s in sims),
        screens=sum(s.screens for s in sims), shops=sum(s.town.shops for s in sims),
        posts_mean=float(all_posts.mean()), posts_design=Peak.design(all_posts),
        deliveries_mean=float(all_del.mean()), deliveries_design=Peak.design(all_del),
        recipients_mean=float(recipients.mean()) if len(recipients) else 0.0,
        recipients_p99=p99, gateway_cores_used=cores_used,
        gateway_cores=math.ceil(cores_used / model.gateway_max_core - 1e-9),
        gateway_processes=processes,
        gateway_memory=processes * measured.rss_kib_base * KIB
        + sockets * measured.rss_kib_per_socket * KIB,
        api_cores_used=api_used, api_processes=api_processes, api_converged=api_converged,
        api_memory=api_processes * measured.rss_kib_base * KIB,
        converged=all(ld.converged for ld in loads),
        shards=shards, region_splits=splits,
        redis_memory=sum(memory_items.values()),
        valkey_cores=sum(valkey_items.values()),
        ops=sum(ld.ops_total + ld.ops_global for ld in loads),
        biggest_region_cores=loads[biggest].unsplit[0],
        biggest_region_ops=loads[biggest].unsplit[1],
        latency_spread_ms=p99_city / city.processes * c_del * 1e3,
        latency_one_process_ms=min(p99_city, SOCKETS_PER_PROCESS) * c_del * 1e3,
        # Hub.ping writes one slice of a process's sockets per turn.
        ping_sweep_ms=(min(sockets / processes, SOCKETS_PER_PROCESS) / PING_SLICES
                       * measured.write_s * 1e3),
        workers_cores=sum(ld.workers_cores for ld in loads),
        per_town=[(s.town.rank, ld.gateway_cores, ld.unsplit[0], ld.splits)
                  for s, ld in zip(sims, loads, strict=True)],
        gateway_items=total("gateway"), api_items=total("api"), valkey_items=valkey_items,
        memory_items=memory_items, rates=total("rates"))
