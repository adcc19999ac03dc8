"""The tables on stdout: results, the biggest line items, the sensitivity variants."""

from __future__ import annotations

from bench.capacity_sim.render import table_rows
from bench.capacity_sim.variants import Report


def print_report(report: Report) -> None:
    print()
    print(f"{'':64} {'city':>24} {'country':>24}")
    for (name, a), (_, b) in zip(table_rows(report.city), table_rows(report.country),
                                 strict=True):
        print(f"{name.replace('*', ''):64.64} {a.replace('*', ''):>24} {b.replace('*', ''):>24}")
    print()
    for label, s in (("city", report.city), ("country", report.country)):
        top = sorted(s.gateway_items.items(), key=lambda kv: -kv[1])[:4]
        print(f"{label} gateway CPU: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
        top = sorted(s.api_items.items(), key=lambda kv: -kv[1])[:3]
        print(f"{label} API CPU: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
        top = sorted(s.valkey_items.items(), key=lambda kv: -kv[1])[:4]
        print(f"{label} Valkey CPU: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    print()
    for name, c, k in report.sensitivity:
        country = (f"country {k.gateway_cores:>5} gw cores {k.gateway_processes:>5} procs "
                   f"{k.api_processes:>4} api {k.shards:>4} shards" if k is not None else "")
        print(f"{name:52.52} city {c.gateway_cores:>4} gw cores {c.gateway_processes:>3} procs "
              f"{c.api_processes:>4} api {c.shards:>3} shards  {country}")
    print(f"\n{report.elapsed_s:.1f} s")
