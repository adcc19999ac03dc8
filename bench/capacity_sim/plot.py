"""docs/capacity.png: recipients per post in the city; load per town."""

from __future__ import annotations

import numpy as np

from bench.capacity_sim.inputs import PLOT
from bench.capacity_sim.variants import Report


def plot(report: Report) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    rec = np.sort(report.city_sim.peak.recipients)
    a.plot(rec, np.linspace(0, 1, len(rec)), color="#1f6f8b")
    a.axvline(report.city.recipients_p99, color="#c0392b", ls="--", lw=1,
              label=f"p99 = {report.city.recipients_p99:,.0f}")
    a.set_xlabel("recipients of one post (city, peak hour)")
    a.set_ylabel("share of posts")
    a.legend(loc="lower right")
    a.grid(alpha=0.3)
    towns = report.country.per_town
    ranks = [t[0] for t in towns]
    b.loglog(ranks, [t[1] for t in towns], "o", ms=3, label="gateway CPU (cores)")
    b.loglog(ranks, [t[2] for t in towns], "s", ms=3,
             label="Valkey CPU of its region, unsplit (cores)")
    b.axhline(report.model.shard_max_core, color="#c0392b", ls="--", lw=1,
              label="one shard's budget")
    b.set_xlabel("town rank (1 = the city)")
    b.legend(loc="lower left", fontsize=8)
    b.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)
