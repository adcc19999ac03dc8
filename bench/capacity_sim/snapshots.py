"""Live posts at the peak and what one snapshot costs (GEOSEARCH work, frames, shops seen)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.capacity import PROBE, Model
from bench.capacity_sim.inputs import MOVE_THRESHOLD_M, SETTINGS
from bench.capacity_sim.town import Population, Town
from bench.city import KIND_WEIGHTS
from rules.geo import EARTH_RADIUS_M


@dataclass(frozen=True)
class Snapshots:
    """What one snapshot costs, on average over the town's phones."""

    live_posts: int
    live_kind_share: tuple[float, float, float]
    posts_in_radius: float          # live posts within the search radius (GEOSEARCH work)
    returned: float                 # posts the script returns (<= snapshot_limit)
    frames: float                   # post frames the socket gets (kinds filtered)
    shops_in_view: float            # distinct shops among them (profile fetches per session)
    new_shops_per_move: float       # shops entering the view at one move
    valkey_us: float                # Valkey CPU of one snapshot script (PROBE regression)
    valkey_us_p99: float


def live_posts_per_shop(model: Model, rng: np.random.Generator, shops: int) -> np.ndarray:
    """(shops, 3) live posts at 19:00 by kind: the day's arrivals (live until midnight),
    flash offers of the last `flash_lifetime_h` hours, one opening change for shops with hours."""
    shares = np.array(KIND_WEIGHTS)
    arrivals = model.daily_posts * shares[0] * model.day_share_by_peak
    flash = (model.peak_posts_per_h * shares[1]
             + model.bursts_per_h * model.burst_share) * model.flash_lifetime_h
    return np.stack([rng.poisson(arrivals, shops), rng.poisson(flash, shops),
                     (rng.random(shops) < model.hours_share).astype(np.int64)], axis=1)


def snapshot_costs(model: Model, town: Town, pop: Population, live: np.ndarray) -> Snapshots:
    rng = np.random.default_rng([model.seed, town.rank, 7])
    phones = np.nonzero(~pop.screen)[0]
    sample = rng.choice(phones, min(len(phones), model.snapshot_sample), replace=False)
    per_shop = live.sum(axis=1)
    kind_share = live.sum(axis=0) / max(1, int(live.sum()))
    limit = SETTINGS.snapshot_limit
    s_lat = np.radians(pop.shop_lat)
    s_lon = np.radians(pop.shop_lon)
    in_radius = np.empty(len(sample))
    returned = np.empty(len(sample))
    frames = np.empty(len(sample))
    shops_seen = np.empty(len(sample))
    new_per_move = np.empty(len(sample))
    for start in range(0, len(sample), 256):
        idx = sample[start:start + 256]
        la = np.radians(pop.lat[idx])[:, None]
        lo = np.radians(pop.lon[idx])[:, None]
        h = (np.sin((s_lat[None, :] - la) / 2) ** 2
             + np.cos(la) * np.cos(s_lat)[None, :] * np.sin((s_lon[None, :] - lo) / 2) ** 2)
        dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
        # feed/snapshot.py asks GEOSEARCH for radius * 1.001 + 1 m.
        reach = (pop.radius[idx] * 1.001 + 1.0)[:, None]
        inside = dist <= reach
        n_in = (inside * per_shop[None, :]).sum(axis=1)
        order = np.argsort(np.where(inside, dist, np.inf), axis=1)
        cum = np.cumsum(np.take_along_axis(np.where(inside, per_shop[None, :], 0), order, axis=1),
                        axis=1)
        k = np.minimum(n_in, limit)
        # Shops needed (nearest first) to fill the snapshot, and how far the last one is.
        needed = np.minimum((cum < np.maximum(k, 1)[:, None]).sum(axis=1) + 1, inside.sum(axis=1))
        last = np.take_along_axis(order, np.maximum(needed - 1, 0)[:, None], axis=1)[:, 0]
        rho = np.where(needed > 0, dist[np.arange(len(idx)), last], pop.radius[idx])
        want_share = (pop.wants[idx] * kind_share[None, :]).sum(axis=1)
        sl = slice(start, start + len(idx))
        in_radius[sl] = n_in
        returned[sl] = k
        frames[sl] = k * want_share
        shops_seen[sl] = needed * want_share
        new_per_move[sl] = needed * want_share * np.minimum(
            1.0, 2 * MOVE_THRESHOLD_M / (math.pi * np.maximum(rho, MOVE_THRESHOLD_M)))
    valkey = (float(PROBE["snapshot_us_fixed"])
              + float(PROBE["snapshot_us_per_post_in_radius"]) * in_radius
              + float(PROBE["snapshot_us_per_returned"]) * returned)
    return Snapshots(
        live_posts=int(live.sum()),
        live_kind_share=(float(kind_share[0]), float(kind_share[1]), float(kind_share[2])),
        posts_in_radius=float(in_radius.mean()), returned=float(returned.mean()),
        frames=float(frames.mean()), shops_in_view=float(shops_seen.mean()),
        new_shops_per_move=float(new_per_move.mean()), valkey_us=float(valkey.mean()),
        valkey_us_p99=float(np.percentile(valkey, 99)))
