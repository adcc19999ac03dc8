"""The run: the city, the country, and the sensitivity variants of the model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.packing import place
from bench.capacity_sim.peak import peak_hour
from bench.capacity_sim.sizing import Sizing
from bench.capacity_sim.snapshots import live_posts_per_shop, snapshot_costs
from bench.capacity_sim.town import country_towns
from bench.capacity_sim.townsim import TownSim, simulate_town


@dataclass
class Report:
    model: Model
    measured: Measured
    city: Sizing
    country: Sizing
    city_sim: TownSim
    country_sims: list[TownSim]
    sensitivity: list[tuple[str, Sizing, Sizing | None]]
    midnight: dict[str, float]
    elapsed_s: float


@dataclass(frozen=True)
class Variant:
    name: str
    model: Model
    population: bool = False   # radii change: recount recipients
    posting: bool = False      # posting changes: new peak hour and live posts
    country: bool = True       # size the country too


def variants(model: Model) -> list[Variant]:
    return [
        Variant("posting x2 (once per 10 min, bursts x2, 16 posts a day)",
                replace(model, peak_posts_per_h=model.peak_posts_per_h * 2,
                        bursts_per_h=model.bursts_per_h * 2, daily_posts=model.daily_posts * 2),
                posting=True),
        Variant("radius up to 2 km (30 % at 2,000 m)",
                replace(model, radius_mix=((2_000.0, 0.30), (1_000.0, 0.45), (500.0, 0.15),
                                           (250.0, 0.10))), population=True, country=False),
        Variant("radius uniform 200-1,000 m (the benchmark's)",
                replace(model, radius_uniform=(200.0, 1_000.0)), population=True, country=False),
        Variant("sockets reopened every 2.5 min", replace(model, session_s=model.session_s / 2)),
        Variant("nobody walking (no moves)", replace(model, walking_share=0.0)),
        Variant("40 % walking", replace(model, walking_share=0.4)),
        Variant("consoles routed by region, 2 API processes listening to each (a fix)",
                replace(model, presence_listeners_per_region=2)),
        Variant("no shop console open", replace(model, console_share=0.0)),
    ]


def _resimulate(v: Variant, base: TownSim) -> TownSim:
    if v.population:
        return simulate_town(v.model, base.town)
    if not v.posting:
        return base
    rng = np.random.default_rng([v.model.seed, base.town.rank, 5])
    live = live_posts_per_shop(v.model, rng, base.town.shops)
    return replace(base, peak=peak_hour(v.model, base.town, base.counts), live=live,
                   snaps=snapshot_costs(v.model, base.town, base.pop, live))


def run(model: Model, measured: Measured, *, progress: Callable[[str], None]) -> Report:
    started = time.perf_counter()
    towns = country_towns(model)
    progress("city: population, recipients (checked with the real SubscriberIndex), peak hour")
    city_sim = simulate_town(model, towns[0], with_index=True)
    city = place(model, [city_sim], measured, "city")
    progress(f"country: {len(towns) - 1} more towns")
    sims = [city_sim] + [simulate_town(model, t) for t in towns[1:]]
    country = place(model, sims, measured, "country")
    sensitivity: list[tuple[str, Sizing, Sizing | None]] = [("base", city, country)]
    for v in variants(model):
        progress(f"variant: {v.name}")
        v_sims = [_resimulate(v, sims[0])]
        v_city = place(v.model, v_sims, measured, "city")
        v_country = None
        if v.country:
            v_sims += [_resimulate(v, s) for s in sims[1:]]
            v_country = place(v.model, v_sims, measured, "country")
        sensitivity.append((v.name, v_city, v_country))
    # Midnight: every new arrival and opening change of the day ends at the end of the local
    # day (rules/expiry.py), in the same second, in every town of the time zone.
    def at_midnight(sim: TownSim) -> float:
        return float(sim.live[:, 0].sum()) / model.day_share_by_peak + float(sim.live[:, 2].sum())

    midnight = {"city": at_midnight(city_sim), "country": sum(at_midnight(s) for s in sims)}
    return Report(model=model, measured=measured, city=city, country=country, city_sim=city_sim,
                  country_sims=sims, sensitivity=sensitivity,
                  midnight=midnight, elapsed_s=time.perf_counter() - started)
