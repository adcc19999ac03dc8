"""Summaries over repetitions, ratios, targets, the markdown tables and the plot."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from bench.stats import summary

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance.png"
BEGIN = "<!-- bench:generated:begin (python -m bench rewrites this part) -->"
END = "<!-- bench:generated:end -->"

# The keys the issue asks for, per scenario.
KEYS = ("deliveries_per_s", "p50_ms", "p95_ms", "p99_ms", "cpu_s_per_100k",
        "cpu_s_per_100k_all", "rss_kib_per_socket", "missing", "extra")
EXTRA_KEYS = ("loadgen_cpu_s_per_100k", "deliveries_per_s_wall", "duplicates",
              "latency_load_deliveries_per_s", "saturation_p99_ms", "post_errors", "connect_s",
              "frames_per_delivery", "busy_p50_ms", "busy_p99_ms", "busy_profile_p99_ms",
              "busy_consoles_updated", "busy_profile_errors")
# Runs written before issue 19 call `cpu_s_per_100k_all` by its old name: read either, so
# that `python -m bench report` still redraws them.
OLD_NAMES = {"cpu_s_per_100k_all": "cpu_s_per_100k_all_server"}
COUNTS = ("missing", "extra", "duplicates", "post_errors", "busy_profile_errors")
LABELS = {
    "ceiling": "ceiling (bare asyncio, pre-encoded frame per transport)",
    "broadcast": "websockets broadcast() (reference)",
    "streetfeed": "streetfeed (full path)",
    "naive": "naive (streetfeed, index bypassed)",
    "peer": "peer (python-socketio, room per cell)",
    "peer_tuned": "peer_tuned (python-socketio, room per (cell, kind), in memory)",
}
ORDER = ("ceiling", "broadcast", "streetfeed", "naive", "peer", "peer_tuned")


def clean(value: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _f(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def one_line(run: dict[str, Any]) -> str:
    if "error" in run:
        return f"{run['scenario']}: error {run['error']}"
    return (f"{run['scenario']}: {_f(run.get('deliveries_per_s'))} deliveries/s, "
            f"p50/p99 {_f(run.get('p50_ms'), 1)}/{_f(run.get('p99_ms'), 1)} ms "
            f"at {_f(run.get('latency_load_deliveries_per_s'))}/s"
            f"{' (own half-saturation)' if run.get('latency_overloaded') else ''}, "
            f"{_f(run.get('cpu_s_per_100k'), 2)} CPU-s/100k "
            f"({_f(_get(run, 'cpu_s_per_100k_all'), 2)} all server), "
            f"{_f(run.get('rss_kib_per_socket'), 1)} KiB/socket, "
            + (f"{run['frames_per_delivery']:.2f} frames per kept post, "
               if run.get("frames_per_delivery", 1.0) > 1.0 else "") +
            f"missing {run.get('missing')} extra {run.get('extra')} dup {run.get('duplicates')}"
            + (f", busy p99 {_f(run['busy_p99_ms'], 1)} ms ({run.get('busy_consoles_updated')}/"
               f"{run.get('busy_consoles')} consoles updated, profile GET p99 "
               f"{_f(run.get('busy_profile_p99_ms'), 1)} ms)" if "busy_p99_ms" in run else "")
            + f", others used {run.get('foreign_cores', {}).get('saturation', '?')}/"
            f"{run.get('foreign_cores', {}).get('latency', '?')} cores"
            f"{' (PERTURBED)' if run.get('perturbed') else ''}, {run.get('elapsed_s', '?')} s")


def _get(run: dict[str, Any], key: str) -> Any:
    value = run.get(key)
    return run.get(OLD_NAMES[key]) if value is None and key in OLD_NAMES else value


def storm_line(storm: dict[str, Any]) -> str:
    if "error" in storm:
        return f"storm: error {storm['error']}"
    return (f"storm: {storm['sockets']:,} sockets resumed in {_f(storm.get('resumed_s'), 2)} s "
            f"(listening after {_f(storm.get('listening_s'), 2)} s, per socket p50/p99 "
            f"{_f(storm.get('resume_p50_s'), 2)}/{_f(storm.get('resume_p99_s'), 2)} s), "
            f"ceiling accepted them in {_f(storm.get('ceiling_accept_s'), 2)} s "
            f"(x{_f(storm.get('resumed_over_ceiling'), 2)}), new web process "
            f"{_f(storm.get('cpu_s'), 2)} CPU-s, missing {storm.get('missing')} extra "
            f"{storm.get('extra')} resets {storm.get('resets')}, attempts mean/max "
            f"{storm.get('attempts_mean')}/{storm.get('attempts_max')}, open timeouts "
            f"{storm.get('open_timeouts')}, {storm.get('elapsed_s', '?')} s")


STORM_BOUND = 3.0


def storm_target(storm: dict[str, Any]) -> dict[str, Any]:
    """resumed_s <= 3 x ceiling_accept_s with missing = extra = 0 (issue 19)."""
    n = storm.get("sockets")
    if "error" in storm:
        return {"target": "storm: resumed_s / ceiling_accept_s, missing = extra = 0",
                "value": "error", "bound": f"<= {STORM_BOUND}", "met": False, "n": n}
    ratio = storm.get("resumed_over_ceiling")
    exact = storm.get("missing") == 0 and storm.get("extra") == 0
    ok = ratio is not None and not math.isnan(ratio) and ratio <= STORM_BOUND and exact
    return {"target": "storm: resumed_s / ceiling_accept_s, missing = extra = 0",
            "value": (f"{_f(ratio, 2)} ({_f(storm.get('resumed_s'), 2)} s / "
                      f"{_f(storm.get('ceiling_accept_s'), 2)} s), missing "
                      f"{storm.get('missing')}, extra {storm.get('extra')}"),
            "bound": f"<= {STORM_BOUND}", "met": bool(ok), "n": n}


def render_storm(storm: dict[str, Any]) -> list[str]:
    n = storm.get("sockets", 0)
    lines = [f"#### Reconnect storm: N = {n:,} sockets, `streetfeed web` killed and restarted",
             ""]
    if "error" in storm:
        return [*lines, f"Failed: {storm['error']}", ""]
    rows = [
        ("sockets resumed", f"{_f(storm.get('resumed_sockets'))} of {n:,}", ""),
        ("every socket resumed, from the kill (`resumed_s`)", _f(storm.get("resumed_s"), 2),
         "s"),
        ("new process accepting, from the kill", _f(storm.get("listening_s"), 2), "s"),
        ("per socket, p50 / p99 from the kill",
         f"{_f(storm.get('resume_p50_s'), 2)} / {_f(storm.get('resume_p99_s'), 2)}", "s"),
        ("per socket, handshake answered from the kill, p50 / p99",
         f"{_f(storm.get('answered_p50_s'), 2)} / {_f(storm.get('answered_p99_s'), 2)}", "s"),
        ("per socket, answer to end of replay, p50 / p99",
         f"{_f(storm.get('setup_p50_s'), 2)} / {_f(storm.get('setup_p99_s'), 2)}", "s"),
        ("ceiling: N fresh handshakes at once, all open (`ceiling_accept_s`)",
         _f(storm.get("ceiling_accept_s"), 2), "s"),
        ("resumed_s / ceiling_accept_s", _f(storm.get("resumed_over_ceiling"), 2), ""),
        ("CPU of the new web process, start to all resumed (`cpu_s`)",
         _f(storm.get("cpu_s"), 2), "CPU-s"),
        ("connection attempts per socket, mean / max",
         f"{storm.get('attempts_mean')} / {storm.get('attempts_max')}", ""),
        ("handshakes given up (the page's `wsOpenTimeout`: 15 s once a socket worked)",
         str(storm.get("open_timeouts")), ""),
        ("missing / extra (duplicates counted) / resets",
         f"{storm.get('missing')} / {storm.get('extra')} / {storm.get('resets')}", ""),
        ("posts accepted over the run (before, during, after)",
         f"{storm.get('posts_sent')} ({_f(storm.get('posts_per_s'), 0)}/s)", ""),
    ]
    lines += ["| | measured | |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {unit} |" for what, value, unit in rows]
    if storm.get("note"):
        lines += ["", storm["note"] + "."]
    return [*lines, ""]


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


RATIOS = {
    # name: (numerator scenario, denominator scenario, metric)
    "streetfeed/ceiling": ("streetfeed", "ceiling", "deliveries_per_s"),
    "streetfeed/peer": ("streetfeed", "peer", "deliveries_per_s"),
    "streetfeed/peer_tuned": ("streetfeed", "peer_tuned", "deliveries_per_s"),
    "streetfeed/broadcast": ("streetfeed", "broadcast", "deliveries_per_s"),
    # The web process alone, for information; the target is on all server processes.
    "cpu streetfeed/ceiling": ("streetfeed", "ceiling", "cpu_s_per_100k"),
    "cpu all streetfeed/ceiling": ("streetfeed", "ceiling", "cpu_s_per_100k_all"),
    "cpu naive/streetfeed": ("naive", "streetfeed", "cpu_s_per_100k"),
    "deliveries naive/streetfeed": ("naive", "streetfeed", "deliveries_per_s"),
}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    runs = [r for r in results["runs"] if "error" not in r]
    ns = sorted({r["n"] for r in results["runs"]})
    by_n: dict[str, Any] = {}
    for n in ns:
        scen: dict[str, Any] = {}
        for name in ORDER:
            mine = [r for r in runs if r["n"] == n and r["scenario"] == name]
            if not mine:
                continue
            entry: dict[str, Any] = {}
            for key in (*KEYS, *EXTRA_KEYS):
                values = [_get(r, key) for r in mine]
                if key in COUNTS:
                    entry[key] = sum(int(v or 0) for v in values)
                else:
                    entry[key] = summary([v for v in values if v is not None])
            entry["latency_overloaded"] = any(r.get("latency_overloaded") for r in mine)
            entry["reps"] = len(mine)
            entry["perturbed_runs"] = sum(bool(r.get("perturbed")) for r in mine)
            scen[name] = entry
        ratios: dict[str, Any] = {}
        for rname, (num, den, metric) in RATIOS.items():
            per_rep = []
            for rep in sorted({r["rep"] for r in runs if r["n"] == n}):
                a = next((_get(r, metric) for r in runs
                          if r["n"] == n and r["rep"] == rep and r["scenario"] == num), None)
                b = next((_get(r, metric) for r in runs
                          if r["n"] == n and r["rep"] == rep and r["scenario"] == den), None)
                per_rep.append(_ratio(a, b))
            ratios[rname] = summary(per_rep)
        failed = [f"{r['scenario']} rep {r['rep']}: {r['error']}" for r in results["runs"]
                  if r["n"] == n and "error" in r]
        by_n[str(n)] = {"scenarios": scen, "ratios": ratios, "failed": failed}
    top = str(max(ns)) if ns else None
    flat: dict[str, Any] = {}
    flat_ratios: dict[str, Any] = {}
    if top is not None:
        for name, entry in by_n[top]["scenarios"].items():
            flat[name] = {k: (entry[k] if k in COUNTS else entry[k]["median"]) for k in KEYS}
        flat_ratios = {k: v["median"] for k, v in by_n[top]["ratios"].items()}
    goals = targets(by_n)
    if "storm" in results:
        goals.append(storm_target(results["storm"]))
    return {"n_for_headline": int(top) if top else None, "scenarios": flat,
            "ratios": flat_ratios, "by_n": by_n, "targets": goals}


def targets(by_n: dict[str, Any]) -> list[dict[str, Any]]:
    if not by_n:
        return []
    top = max(by_n, key=int)
    scen = by_n[top]["scenarios"]
    ratios = by_n[top]["ratios"]

    def med(name: str, key: str) -> float:
        return scen.get(name, {}).get(key, {}).get("median", math.nan)

    out = []

    def check(name: str, value: float, op: str, bound: float) -> None:
        ok = (value >= bound if op == ">=" else value <= bound if op == "<=" else value < bound)
        out.append({"target": name, "value": value, "bound": f"{op} {bound}",
                    "met": bool(ok) if not math.isnan(value) else None, "n": int(top)})

    def information(name: str, value: float) -> None:
        out.append({"target": name, "value": value, "bound": "information, not a target",
                    "met": None, "information": True, "n": int(top)})

    check("streetfeed/ceiling deliveries/s", ratios["streetfeed/ceiling"]["median"], ">=", 0.6)
    check("streetfeed/peer deliveries/s", ratios["streetfeed/peer"]["median"], ">=", 8)
    check("streetfeed/peer_tuned deliveries/s", ratios["streetfeed/peer_tuned"]["median"], ">=",
          10)
    check("streetfeed/ceiling CPU-s per 100k (all server processes)",
          ratios["cpu all streetfeed/ceiling"]["median"], "<=", 1.5)
    information("streetfeed/ceiling CPU-s per 100k (web process alone)",
                ratios["cpu streetfeed/ceiling"]["median"])
    # Issue 19: in each repetition, not only the median.
    check("streetfeed p99 ms at half saturation, the largest of the repetitions",
          scen.get("streetfeed", {}).get("p99_ms", {}).get("max", math.nan), "<", 50)
    check("streetfeed p99 ms with 50 consoles and 1,000 profile GETs a minute",
          med("streetfeed", "busy_p99_ms"), "<", 50)
    check("streetfeed KiB RSS per idle socket", med("streetfeed", "rss_kib_per_socket"), "<=", 16)
    wrong = sum(e.get("missing", 0) + e.get("extra", 0) + e.get("duplicates", 0)
                for n in by_n.values() for e in n["scenarios"].values())
    out.append({"target": "missing = extra = 0 (all scenarios, all N, all reps)",
                "value": wrong, "bound": "== 0", "met": wrong == 0, "n": None})
    series = [(int(n), by_n[n]["ratios"]["cpu naive/streetfeed"]["median"])
              for n in sorted(by_n, key=int)]
    values = [v for _, v in series if not math.isnan(v)]
    grows = len(values) >= 2 and all(b > a for a, b in itertools.pairwise(values))
    out.append({"target": "naive/streetfeed CPU ratio grows with N",
                "value": {str(n): v for n, v in series}, "bound": "increasing",
                "met": grows if len(values) >= 2 else None, "n": None})
    return out


def render_tables(results: dict[str, Any]) -> str:
    lines: list[str] = []
    by_n = results.get("by_n", {})
    for n in sorted(by_n, key=int):
        entry = by_n[n]
        reps = max((e["reps"] for e in entry["scenarios"].values()), default=0)
        lines += [f"#### N = {int(n):,} sockets ({reps} repetition{'s' if reps != 1 else ''}; "
                  "median, [min–max])", "",
                  "| scenario | deliveries/s | p50 ms | p95 ms | p99 ms | CPU-s/100k "
                  "(main process) | CPU-s/100k (all server procs) | KiB RSS/socket | "
                  "missing | extra |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name in ORDER:
            e = entry["scenarios"].get(name)
            if e is None:
                continue

            def m(key: str, digits: int = 0, rng: bool = False, e: dict[str, Any] = e) -> str:
                s = e[key]
                text = _f(s["median"], digits)
                if rng and s["n"] > 1:
                    text += f" [{_f(s['min'], digits)}–{_f(s['max'], digits)}]"
                return text

            note = " ¹" if e["latency_overloaded"] else ""
            lines.append(
                f"| {LABELS[name]} | {m('deliveries_per_s', 0, True)} | {m('p50_ms', 1)}{note} "
                f"| {m('p95_ms', 1)}{note} | {m('p99_ms', 1, True)}{note} | "
                f"{m('cpu_s_per_100k', 2, True)} | {m('cpu_s_per_100k_all', 2, True)} | "
                f"{m('rss_kib_per_socket', 1)} | {e['missing']} | {e['extra']} |")
        lines.append("")
        r = entry["ratios"]

        def rr(key: str, r: dict[str, Any] = r) -> str:
            s = r[key]
            if s["n"] > 1:
                return f"{_f(s['median'], 2)} [{_f(s['min'], 2)}–{_f(s['max'], 2)}]"
            return _f(s["median"], 2)

        lines.append("Ratios, per repetition then median: "
                     f"streetfeed/ceiling deliveries/s **{rr('streetfeed/ceiling')}**, "
                     f"streetfeed/peer **{rr('streetfeed/peer')}**, "
                     f"streetfeed/peer_tuned **{rr('streetfeed/peer_tuned')}**, "
                     f"streetfeed/broadcast {rr('streetfeed/broadcast')}, "
                     "CPU streetfeed/ceiling, all server processes "
                     f"**{rr('cpu all streetfeed/ceiling')}** (web process alone "
                     f"{rr('cpu streetfeed/ceiling')}), "
                     f"CPU naive/streetfeed **{rr('cpu naive/streetfeed')}**.")
        perturbed = {k: e["perturbed_runs"] for k, e in entry["scenarios"].items()
                     if e.get("perturbed_runs")}
        if perturbed:
            lines += ["", "Measured while other work used more than 0.35 cores of the machine "
                      "(after retries): " + ", ".join(f"{k} {v}×" for k, v in perturbed.items())
                      + "."]
        if any(e["latency_overloaded"] for e in entry["scenarios"].values()):
            lines += ["", "¹ could not carry half of Streetfeed's saturation: latency measured "
                      "at half of its own saturation instead."]
        for failure in entry["failed"]:
            lines += ["", f"Failed: {failure}"]
        lines.append("")
    if results.get("storm"):
        lines += render_storm(results["storm"])
    if results.get("targets"):
        lines += ["#### Targets", "", "| target | measured | bound | met |", "|---|---|---|---|"]
        for t in results["targets"]:
            value = t["value"]
            if isinstance(value, dict):
                shown = ", ".join(f"N={int(k):,}: {_f(v, 2)}" for k, v in value.items())
            elif isinstance(value, float):
                shown = _f(value, 2)
            else:
                shown = str(value)
            met = ("information" if t.get("information")
                   else {True: "yes", False: "**no**", None: "n/a"}[t["met"]])
            name = t["target"]
            if t.get("n"):
                # "... (all server processes)" -> "... (all server processes, N = 10,000)"
                name = (f"{name[:-1]}, N = {t['n']:,})" if name.endswith(")")
                        else f"{name} (N = {t['n']:,})")
            lines.append(f"| {name} | {shown} | {t['bound']} | {met} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path = PLOT) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_n = results["by_n"]
    ns = sorted(by_n, key=int)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for name in ORDER:
        xs, ys, lo, hi, ps = [], [], [], [], []
        for n in ns:
            e = by_n[n]["scenarios"].get(name)
            if e is None or e["deliveries_per_s"]["n"] == 0:
                continue
            s = e["deliveries_per_s"]
            xs.append(int(n))
            ys.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
            ps.append(e["p99_ms"]["median"])
        if not xs:
            continue
        ax1.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=name)
        ax2.plot(xs, ps, marker="o", label=name + (" ¹" if any(
            by_n[n]["scenarios"].get(name, {}).get("latency_overloaded") for n in ns) else ""))
    ax1.set_title("Deliveries per second at saturation (median, min–max)")
    ax1.set_xlabel("N sockets")
    ax1.set_ylabel("deliveries/s")
    ax1.set_xscale("log")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_title("p99 post → receive at half Streetfeed saturation")
    ax2.set_xlabel("N sockets")
    ax2.set_ylabel("p99 ms (log)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.axhline(50, color="grey", linestyle="--", linewidth=1)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xticks([int(n) for n in ns])
        ax.set_xticklabels([f"{int(n):,}" for n in ns])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_doc(results: dict[str, Any], source: Path) -> None:
    plot(results)
    meta = results["meta"]
    try:
        shown_source = source.resolve().relative_to(ROOT)
    except ValueError:
        shown_source = source
    body = "\n".join([
        BEGIN, "",
        f"Generated from `{shown_source}`: `{meta['command']}` on product commit "
        f"`{meta.get('git', {}).get('commit', '?')[:8]}` ({meta.get('product', '?')}), "
        f"started {meta['started']}, "
        f"{meta.get('elapsed_s', '?')} s; {meta['machine']['cpus']} CPUs, Python "
        f"{meta['machine']['python']}, Node.js {meta['machine']['node']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".", "",
        "![deliveries/s and p99 against N](performance.png)", "",
        render_tables(results), END])
    text = DOC.read_text() if DOC.exists() else "# Performance\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + body + tail
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    DOC.write_text(text)
