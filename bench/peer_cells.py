"""The tuned peer's cell size, chosen on the benchmark's own city.

    python -m bench.peer_cells [--n 10000] [--seed 1] [--cells 0.001,0.0015,...]

A socket.io server with rooms writes a post to every member of the room it is
emitted to; the clients then drop what is beyond their exact distance (or of a
kind they did not ask for). For each cell size this prints, on the city of
`bench/city.py` (the same subscribers, shops and kind mix as the benchmark):

- frames written per useful delivery, with rooms per cell (`peer`) and rooms per
  (cell, kind) (`peer_tuned`): the server's wasted work, posts weighted by the
  plan's kind mix and drawn uniformly over the shops, as `make_posts` draws them;
- rooms joined per client (mean), and the rooms that exist: what the join costs at
  subscribe time and in memory.

Pure computation (no server): the same `rules.geo.CellGrid.cells_covering` the peers
call when a client subscribes.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass

from bench.city import KIND_WEIGHTS, KINDS, Audience, make_shops, make_subscribers
from rules.geo import CellGrid

CELL_SIZES = (0.001, 0.0015, 0.002, 0.003, 0.004, 0.005)


@dataclass(frozen=True)
class CellCost:
    cell_deg: float
    frames_per_delivery_cell: float
    frames_per_delivery_cell_kind: float
    rooms_per_client_cell: float
    rooms_per_client_cell_kind: float
    rooms_cell_kind: int


def cell_cost(cell_deg: float, audience: Audience) -> CellCost:
    grid = CellGrid(cell_deg)
    by_cell: Counter[int] = Counter()
    by_cell_kind: Counter[tuple[int, str]] = Counter()
    joins = joins_kind = 0
    for s in audience.subscribers:
        cells = grid.cells_covering(s.lat, s.lon, s.radius_m)
        wanted = s.kinds or KINDS
        joins += len(cells)
        joins_kind += len(cells) * len(wanted)
        by_cell.update(cells)
        by_cell_kind.update((c, k) for c in cells for k in wanted)
    frames = frames_kind = useful = 0.0
    for shop in audience.shops:
        cell = grid.cell_of(shop.lat, shop.lon)
        for kind, weight in zip(KINDS, KIND_WEIGHTS, strict=True):
            frames += weight * by_cell[cell]
            frames_kind += weight * by_cell_kind[(cell, kind)]
            useful += weight * len(audience.by_shop_kind[(shop.idx, kind)])
    n = len(audience.subscribers)
    return CellCost(cell_deg, frames / useful, frames_kind / useful, joins / n,
                    joins_kind / n, len(by_cell_kind))


def table(n: int, seed: int, sizes: tuple[float, ...]) -> str:
    audience = Audience.compute(make_subscribers(n, seed), make_shops(seed=seed))
    lines = [f"N = {n:,}, seed {seed}: frames written per useful delivery, rooms joined per "
             "client", "",
             "| cell | ~m N-S | frames/delivery, room per cell | frames/delivery, room per "
             "(cell, kind) | rooms/client, per cell | rooms/client, per (cell, kind) | "
             "(cell, kind) rooms |",
             "|---|---|---|---|---|---|---|"]
    for size in sizes:
        c = cell_cost(size, audience)
        lines.append(f"| {size:g}° | {size * 111_195:,.0f} | {c.frames_per_delivery_cell:.2f} | "
                     f"{c.frames_per_delivery_cell_kind:.2f} | {c.rooms_per_client_cell:.1f} | "
                     f"{c.rooms_per_client_cell_kind:.1f} | {c.rooms_cell_kind:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cells", default=",".join(f"{c:g}" for c in CELL_SIZES),
                        help="comma-separated cell sizes in degrees")
    args = parser.parse_args()
    print(table(args.n, args.seed, tuple(float(c) for c in args.cells.split(","))))


if __name__ == "__main__":
    main()
