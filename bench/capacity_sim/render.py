"""The generated part of docs/capacity.md: tables, the city as simulated, the breakdown,
the sensitivity variants and the assumptions."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from bench.capacity import PROBE, Model
from bench.capacity_sim.inputs import (
    BEGIN,
    CONSOLE_REACH_ROUNDS,
    CONSOLE_UPDATE_S,
    DOC,
    END,
    GIB,
    MOVE_THRESHOLD_M,
    PHONE_DEFAULT_RADIUS_M,
    PRESENCE_FLUSH_S,
    SCREEN_RADIUS_M,
    SETTINGS,
    SWEEP_EXPIRIES_PER_S,
    probe_figures,
)
from bench.capacity_sim.measured import Measured
from bench.capacity_sim.sizing import Sizing
from bench.capacity_sim.townsim import TownSim
from bench.capacity_sim.variants import Report
from schemas.limits import PRESENCE_CELL_DEG


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _gib(x: float) -> str:
    return f"{x / GIB:,.1f} GiB" if x >= 0.1 * GIB else f"{x / 1024**2:,.0f} MiB"


def table_rows(s: Sizing) -> list[tuple[str, str]]:
    return [
        ("towns (one region each before any split)", _n(s.towns)),
        ("phones watching at peak / in-shop screens", f"{_n(s.phones)} / {_n(s.screens)}"),
        ("shops", _n(s.shops)),
        ("posts/s at peak: mean / design (p99 of 10-s windows)",
         f"{_f(s.posts_mean)} / {_f(s.posts_design)}"),
        ("deliveries/s (post + expiry/withdrawal frames): mean / design",
         f"{_n(s.deliveries_mean)} / {_n(s.deliveries_design)}"),
        ("recipients per post: mean / p99", f"{_n(s.recipients_mean)} / {_n(s.recipients_p99)}"),
        ("snapshot frames/s (socket opens + moves)", _n(s.rates.get("snapshot_frames", 0.0))),
        ("gateway CPU used at peak", f"{_f(s.gateway_cores_used)} cores"
         + ("" if s.converged else " (no fixed point)")),
        ("**gateway cores** (<= 60 % busy each)", f"**{_n(s.gateway_cores)}**"),
        ("**gateway processes** (<= 10,000 sockets each)", f"**{_n(s.gateway_processes)}**"),
        ("**gateway memory** (RSS)", f"**{_gib(s.gateway_memory)}**"),
        ("API processes (console, profiles, posts): CPU used / processes / memory",
         f"{_f(s.api_cores_used)} cores / {_n(s.api_processes)} / {_gib(s.api_memory)}"
         + ("" if s.api_converged else " (no fixed point)")),
        ("Valkey CPU, all shards", f"{_f(s.valkey_cores, 2)} cores"),
        ("Redis commands/s (each command inside a script counted)", _n(s.ops)),
        ("biggest town's region, unsplit: Valkey CPU / commands/s",
         f"{_f(s.biggest_region_cores, 2)} cores / {_n(s.biggest_region_ops)}"),
        ("extra regions from splitting regions too big for a shard", _n(s.region_splits)),
        ("**Redis shards** (primaries; one replica each on top)", f"**{_n(s.shards)}**"),
        ("**Redis memory** (data, steady state)", f"**{_gib(s.redis_memory)}**"),
        ("city's p99 post: spread over its processes / all on one process",
         f"{_f(s.latency_spread_ms)} / {_f(s.latency_one_process_ms)} ms"),
        ("a process's ping turn, one slice (event loop busy)", f"{_f(s.ping_sweep_ms)} ms"),
        ("workers (enricher, scheduler) CPU", f"{_f(s.workers_cores, 2)} cores"),
    ]


def breakdown(city: Sizing, country: Sizing) -> list[str]:
    lines = ["| gateway (WebSocket) CPU, cores | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v, 2)} | {_f(country.gateway_items[k], 2)} |"
              for k, v in city.gateway_items.items()]
    lines += ["", "| API (HTTP) CPU, cores | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v, 2)} | {_f(country.api_items[k], 2)} |"
              for k, v in city.api_items.items()]
    lines += ["", "| Valkey CPU, cores | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v, 3)} | {_f(country.valkey_items[k], 3)} |"
              for k, v in city.valkey_items.items()]
    lines += ["", "| Redis memory | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_gib(v)} | {_gib(country.memory_items[k])} |"
              for k, v in city.memory_items.items()]
    return lines


def presence_lines(label: str, s: Sizing, model: Model) -> str:
    """What presence over Pub/Sub amounts to, and what a cluster adds (not in the tables)."""
    p = probe_figures()
    r = s.rates
    per_listener = r["presence_cells_heard"] / max(1, s.api_processes)
    reports_per_listener = r["presence_reports_heard"] / max(1, s.api_processes)
    listener_cores = (reports_per_listener * p["listener_us_per_report"]
                      + per_listener * p["listener_decode_us_per_cell"]) / 1e6
    mb = p["presence_bytes_per_cell"] / 1e6
    # Classic PUBLISH on a cluster reaches every node over the cluster bus (streetfeed/
    # redis_conn.py publish): each other node's copy priced as one more fan-out from the
    # channel's node and, on the node, as the cells of a PUBLISH nobody listens to.
    bus = max(0, s.shards - 1) * (
        r["presence_reports"] * p["valkey_fanout_us_per_report_per_listener"]
        + r["presence_cells"] * (p["valkey_publish_us_per_cell"]
                                 + p["valkey_fanout_us_per_cell_per_listener"])) / 1e6
    return (f"- Presence, {label}: gateway processes publish {r['presence_reports']:,.0f} "
            f"reports/s, {r['presence_cells']:,.0f} cells/s ({r['presence_cells'] * mb:,.1f} "
            f"MB/s); the {s.api_processes:,} API processes listen, each receiving "
            f"{reports_per_listener:,.0f} reports/s, {per_listener:,.0f} cells/s "
            f"({per_listener * mb:,.1f} MB/s) on average: {listener_cores:.2f} cores each, "
            f"out of {model.gateway_max_core:.2f}; Valkey sends "
            f"{r['presence_cells_heard'] * mb:,.0f} MB/s of presence in all. Not in the "
            f"tables: on a cluster every report also crosses the bus to each of the "
            f"{max(0, s.shards - 1):,} other nodes, ~{bus:.2f} cores in all (estimate). Redis "
            f"memory: none (Pub/Sub stores nothing).")


def render(report: Report) -> str:
    m, ms = report.model, report.measured
    out: list[str] = [
        f"Generated by `python -m bench.capacity` (seed {m.seed}) "
        f"from `{ms.path}` (`{ms.command}`, started {ms.started}) and the `PROBE` figures "
        f"({PROBE['measured']}).", "",
        "![recipients per post in the city; load per town](capacity.png)", "",
        "#### Results", "", "| | city | country |", "|---|---|---|"]
    for (name, a), (_, b) in zip(table_rows(report.city), table_rows(report.country),
                                 strict=True):
        out.append(f"| {name} | {a} | {b} |")
    out += ["", "#### Measured figures used", "", "| figure | value | from |", "|---|---|---|"]
    out += measured_rows(ms)
    out += ["", "#### The city, as simulated", ""]
    out += city_lines(report)
    out += ["", "#### Where the cores and the bytes go", ""]
    out += breakdown(report.city, report.country)
    out += sensitivity_lines(report)
    out += assumption_lines(m)
    return "\n".join(out)


def measured_rows(ms: Measured) -> list[str]:
    """Every measured figure the model uses, with where it comes from."""
    key = f'by_n["{ms.n}"].scenarios.streetfeed'
    runs = f'runs[streetfeed, n={ms.n}]'
    return [
        f"| gateway CPU per delivery | {ms.cpu_s_per_100k:.3f} CPU-s per 100k = "
        f"{ms.delivery_s * 1e6:.1f} µs | `{ms.path}`: `{key}.cpu_s_per_100k.median` |",
        f"| RSS per idle socket | {ms.rss_kib_per_socket:.1f} KiB | "
        f"`{key}.rss_kib_per_socket.median` |",
        f"| RSS of an idle `streetfeed web` process | {ms.rss_kib_base / 1024:.1f} MiB | median "
        f"of `{runs}.rss_kib_before` ({ms.runs} runs) |",
        f"| Valkey CPU per post, full path | {ms.valkey_ms_per_post:.3f} ms | median of "
        f"`{runs}.cpu_s_saturation.valkey / saturation_posts` |",
        f"| bare frame write (pings) | {ms.write_cpu_s_per_100k:.3f} CPU-s per 100k | "
        f"`by_n[\"{ms.n}\"].scenarios.ceiling.cpu_s_per_100k.median` |",
        f"| enricher CPU per post | {ms.enricher_ms_per_post:.2f} ms | "
        f"`{runs}.cpu_s_saturation[\"streetfeed-enricher\"] / saturation_posts` |",
        f"| (context) deliveries/s at saturation, one process | {ms.deliveries_per_s:,.0f} | "
        f"`{key}.deliveries_per_s.median` |",
        f"| (context) deliveries per post in the benchmark | {ms.deliveries_per_post:,.0f} | "
        f"`{runs}.saturation_deliveries / saturation_posts` |",
        *(f"| probe: `{k}` | {v:g} | `PROBE`, bench/capacity.py |"
          for k, v in PROBE.items() if not isinstance(v, str)),
    ]


def index_lines(sim: TownSim) -> list[str]:
    """The recipients' cross-check with the real SubscriberIndex (city only)."""
    if sim.check is None:
        return []
    c = sim.check
    ratio = c.candidates_per_post / max(1.0, c.recipients_per_post)
    return [
        f"- Recipients counted for all {sim.town.shops:,} shops x 3 kinds; {c.checked} "
        f"(shop, kind) pairs re-counted with the real `SubscriberIndex` over the same "
        f"{sim.sockets:,} subscribers: **{c.mismatches} "
        f"mismatches**.",
        f"- Index work: a post scans the {c.candidates_per_post:,.0f} subscribers of its "
        f"cell for {c.recipients_per_post:,.0f} recipients, {ratio:.2f} per recipient "
        f"(the benchmark's city at N = 10,000: {c.bench_ratio:.2f}).",
    ]


def city_lines(report: Report) -> list[str]:
    m, city, country, sim = report.model, report.city, report.country, report.city_sim
    sn = sim.snaps
    r = city.rates
    split = [t for t in country.per_town if t[3] > 1]
    return [
        *index_lines(sim),
        f"- Live posts at 19:00: {sn.live_posts:,} ({sn.live_kind_share[0]:.0%} arrivals, "
        f"{sn.live_kind_share[1]:.0%} flash offers, {sn.live_kind_share[2]:.0%} opening "
        f"changes). A snapshot's GEOSEARCH meets {sn.posts_in_radius:,.0f} live posts on "
        f"average and returns {sn.returned:,.0f} (limit {SETTINGS.snapshot_limit}); the phone "
        f"gets {sn.frames:,.0f} frames from {sn.shops_in_view:,.0f} shops; Valkey spends "
        f"{sn.valkey_us:,.0f} µs on it (p99 {sn.valkey_us_p99:,.0f} µs).",
        f"- At peak: {r['opens']:,.0f} socket opens/s, {r['moves']:,.0f} `subscribe` moves/s, "
        f"{r['pings']:,.0f} pings/s; {r['consoles']:,.0f} shop consoles open, their people "
        f"watching counted up to {r['console_updates']:,.0f} times/s (each over the "
        f"{PROBE['console_count_cells']:,.0f} presence cells within 2 km of the shop, of "
        f"which {r['console_cells']:,.0f} occupied, among {len(np.unique(sim.cells)):,} in "
        f"the city) and their reach read {r['reach_reads']:,.1f} times/s; "
        f"{r['profiles']:,.0f} shop-profile fetches/s, of which "
        f"{r.get('profile_misses', 0.0):,.0f}/s recomputed (each API process's cache).",
        *(presence_lines(label, s, m) for label, s in (("city", city), ("country", country))),
        f"- Country: {len(split)} towns have a region too big for one shard and are split "
        f"(ranks {', '.join(str(t[0]) for t in split)} into "
        f"{', '.join(str(t[3]) for t in split)} regions).",
        f"- Midnight: {report.midnight['city']:,.0f} posts (city), "
        f"{report.midnight['country']:,.0f} (country) end in the same second (end of the local "
        f"day), each a remove script of the scheduler's every-second sweep and a tombstone "
        f"frame: at ~{SWEEP_EXPIRIES_PER_S:,.0f} a second (bench.sweepcost) one scheduler needs "
        f"{report.midnight['country'] / SWEEP_EXPIRIES_PER_S / 60:,.1f} min to expire the "
        f"country's.",
        f"- Feed history (retention {SETTINGS.feed_retention_s / 3600:g} h, at most "
        f"{SETTINGS.feed_maxlen:,} entries a region): the city keeps {r['feed_entries']:,.0f} "
        f"entries (posts and their ends), the country {country.rates['feed_entries']:,.0f}; "
        f"{PROBE['feed_post_entry_bytes']:,.0f} bytes a post's entry, "
        f"{PROBE['feed_tombstone_entry_bytes']:,.0f} an end's (probe).",
    ]


def sensitivity_lines(report: Report) -> list[str]:
    out = ["", "#### Sensitivity", "",
           "| variant | city: gateway cores / processes / memory; API processes | city: "
           "shards (regions added) / Valkey cores / Redis memory | country: gateway cores / "
           "processes / memory; API processes | country: shards / Redis memory |",
           "|---|---|---|---|---|"]
    for name, c, k in report.sensitivity:
        country_cells = (f"{k.gateway_cores:,} / {k.gateway_processes:,} / "
                         f"{_gib(k.gateway_memory)}; {k.api_processes:,} | {k.shards:,} / "
                         f"{_gib(k.redis_memory)}" if k is not None else "(city only) | ")
        out.append(f"| {name} | {c.gateway_cores:,} / {c.gateway_processes:,} / "
                   f"{_gib(c.gateway_memory)}; {c.api_processes:,} | {c.shards:,} "
                   f"(+{c.region_splits}) / {c.valkey_cores:.2f} / {_gib(c.redis_memory)} | "
                   f"{country_cells} |")
    return out


def assumption_lines(m: Model) -> list[str]:
    out = ["", "#### Assumptions (`Model` in bench/capacity.py)", "", "| parameter | value |",
           "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in asdict(m).items()]
    out.append(
        f"| read from the code | ping every {SETTINGS.gateway_ping_interval_s:g} s; presence "
        f"flush every {PRESENCE_FLUSH_S:g} s per process; a move every {MOVE_THRESHOLD_M:g} m; "
        f"a console's counts at most every {CONSOLE_UPDATE_S:g} s, its reach read "
        f"{CONSOLE_REACH_ROUNDS} times after each own post (no polling); "
        f"snapshot limit {SETTINGS.snapshot_limit}; feed retention "
        f"{SETTINGS.feed_retention_s / 3600:g} h, feed_maxlen {SETTINGS.feed_maxlen:,}; "
        f"cells {SETTINGS.geo_cell_deg}°, presence cells {PRESENCE_CELL_DEG}°; screen radius "
        f"{SCREEN_RADIUS_M:g} m; phone default radius {PHONE_DEFAULT_RADIUS_M:g} m |")
    return out


def write_doc(text: str) -> None:
    if DOC.exists():
        doc = DOC.read_text(encoding="utf-8")
        if BEGIN in doc and END in doc:
            head, rest = doc.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            DOC.write_text(f"{head}{BEGIN}\n\n{text}\n\n{END}{tail}", encoding="utf-8")
            return
        raise SystemExit(f"capacity: {DOC} lacks the generated-part markers")
    DOC.write_text(f"# Capacity\n\n{BEGIN}\n\n{text}\n\n{END}\n", encoding="utf-8")
