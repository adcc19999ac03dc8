"""One town simulated: population, recipients, peak hour, snapshots and presence cells."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.peak import Peak, peak_hour
from bench.capacity_sim.presence import cells_near_shops, cells_per_process, presence_cells
from bench.capacity_sim.recipients import IndexCheck, check_with_index, count_recipients
from bench.capacity_sim.snapshots import Snapshots, live_posts_per_shop, snapshot_costs
from bench.capacity_sim.town import Population, Town, make_population


@dataclass
class TownSim:
    """Everything simulated for one town (independent of how many processes serve it)."""

    town: Town
    pop: Population
    sockets: int
    phones: int
    screens: int
    counts: np.ndarray
    peak: Peak
    snaps: Snapshots
    cells: np.ndarray
    cells_near_shop: float           # occupied presence cells within 2 km of a shop
    live: np.ndarray
    check: IndexCheck | None = None
    cell_cache: dict[int, float] = field(default_factory=dict)

    def cells_for(self, processes: int, seed: int) -> float:
        """Distinct presence cells per process, phones spread at random over `processes`."""
        if processes not in self.cell_cache:
            self.cell_cache[processes] = cells_per_process(
                self.cells, processes, np.random.default_rng([seed, self.town.rank, 11]))
        return self.cell_cache[processes]


def simulate_town(model: Model, town: Town, *, with_index: bool = False) -> TownSim:
    pop = make_population(model, town)
    counts = count_recipients(pop)
    check = check_with_index(pop, counts, model) if with_index else None
    rng = np.random.default_rng([model.seed, town.rank, 5])
    live = live_posts_per_shop(model, rng, town.shops)
    cells = presence_cells(pop.lat[~pop.screen], pop.lon[~pop.screen])
    return TownSim(town=town, pop=pop, sockets=len(pop.lat), phones=pop.phones,
                   screens=int(pop.screen.sum()), counts=counts,
                   peak=peak_hour(model, town, counts),
                   snaps=snapshot_costs(model, town, pop, live), cells=cells,
                   cells_near_shop=cells_near_shops(pop, cells, model, town), live=live,
                   check=check)
