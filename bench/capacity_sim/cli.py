"""`python -m bench.capacity` (bench/capacity.py runs this `main`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import bench.capacity
from bench.capacity import Model
from bench.capacity_sim.inputs import DOC, PLOT, RESULTS, ROOT
from bench.capacity_sim.measured import load_measured
from bench.capacity_sim.plot import plot
from bench.capacity_sim.printout import print_report
from bench.capacity_sim.probe import probe
from bench.capacity_sim.render import render, write_doc
from bench.capacity_sim.variants import run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity",
                                     description=bench.capacity.__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/capacity.md")
    parser.add_argument("--no-plot", action="store_true", help="do not redraw docs/capacity.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the sizing as JSON")
    parser.add_argument("--probe", action="store_true",
                        help="measure the PROBE figures on a local Valkey + streetfeed web")
    parser.add_argument("--probe-memory", action="store_true",
                        help="measure only the Redis memory figures of PROBE (no web process)")
    parser.add_argument("--probe-town", type=int, default=1,
                        help="load the probe with this town's posts (1: the city)")
    parser.add_argument("--probe-sockets", type=int, default=300,
                        help="sockets per probe batch")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.probe or args.probe_memory:
        print(json.dumps(probe(args.probe_town, args.probe_sockets,
                               memory_only=args.probe_memory), indent=2))
        return 0
    measured = load_measured(args.results)
    model = Model(seed=args.seed)

    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[capacity {time.perf_counter() - started:5.1f} s] {text}", file=sys.stderr,
              flush=True)

    report = run(model, measured, progress=progress)
    print_report(report)
    if not args.no_doc:
        write_doc(render(report))
        print(f"wrote the generated part of {DOC.relative_to(ROOT)}")
    if not args.no_plot:
        plot(report)
        print(f"wrote {PLOT.relative_to(ROOT)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"city": asdict(report.city),
                                         "country": asdict(report.country)}, indent=1,
                                        default=float), encoding="utf-8")
    return 0
