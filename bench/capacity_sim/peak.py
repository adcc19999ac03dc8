"""The evening peak hour, second by second: posts, bursts, tombstones, deliveries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.town import Town
from bench.city import KIND_WEIGHTS


@dataclass
class Peak:
    posts: np.ndarray          # posts per second, over the hour
    tombstones: np.ndarray     # expiries + withdrawals per second
    deliveries: np.ndarray     # frames of posts and tombstones per second
    recipients: np.ndarray     # per post

    @staticmethod
    def design(series: np.ndarray, window: int = 10) -> float:
        """The 99th percentile of `window`-second averages: what the peak hour asks for."""
        avg = np.convolve(series, np.ones(window) / window, mode="valid")
        return float(np.percentile(avg, 99))

    @property
    def posts_mean(self) -> float:
        return float(self.posts.mean())

    @property
    def deliveries_mean(self) -> float:
        return float(self.deliveries.mean())


def peak_hour(model: Model, town: Town, counts: np.ndarray) -> Peak:
    rng = np.random.default_rng([model.seed, town.rank, 3])
    seconds = 3600
    shops = counts.shape[0]
    kind_p = np.array(KIND_WEIGHTS) / sum(KIND_WEIGHTS)
    # Baseline posting: Poisson, each post from a random shop, kind by the benchmark's shares.
    n_base = rng.poisson(shops * model.peak_rate_per_shop_s * seconds)
    t_base = rng.integers(0, seconds, n_base)
    s_base = rng.integers(0, shops, n_base)
    k_base = rng.choice(3, n_base, p=kind_p)
    # Flash-offer bursts: a share of the shops posts within a minute (a street-wide sale).
    t_parts = [t_base]
    s_parts = [s_base]
    k_parts = [k_base]
    for _ in range(rng.poisson(model.bursts_per_h)):
        begin = rng.integers(0, seconds - int(model.burst_s))
        size = rng.poisson(model.burst_share * shops)
        t_parts.append(begin + rng.integers(0, int(model.burst_s), size))
        s_parts.append(rng.integers(0, shops, size))
        k_parts.append(np.full(size, 1))
    t = np.concatenate(t_parts)
    s = np.concatenate(s_parts)
    k = np.concatenate(k_parts)
    recipients = counts[s, k]
    # Tombstones (expired / withdrawn frames go to the same sockets): flash offers ending
    # (steady state: as many as are posted) and withdrawals of any kind.
    flash_rate = shops * (model.peak_rate_per_shop_s * kind_p[1]
                          + model.bursts_per_h * model.burst_share / 3600)
    withdraw_rate = shops * model.peak_rate_per_shop_s * model.withdraw_share
    n_tomb = rng.poisson((flash_rate + withdraw_rate) * seconds)
    t_tomb = rng.integers(0, seconds, n_tomb)
    is_flash = rng.random(n_tomb) < flash_rate / (flash_rate + withdraw_rate)
    k_tomb = np.where(is_flash, 1, rng.choice(3, n_tomb, p=kind_p))
    tomb_recipients = counts[rng.integers(0, shops, n_tomb), k_tomb]
    deliveries = (np.bincount(t, weights=recipients, minlength=seconds)
                  + np.bincount(t_tomb, weights=tomb_recipients, minlength=seconds))
    return Peak(posts=np.bincount(t, minlength=seconds).astype(float),
                tombstones=np.bincount(t_tomb, minlength=seconds).astype(float),
                deliveries=deliveries, recipients=recipients.astype(float))
