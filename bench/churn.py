"""A real `streetfeed web`'s memory under feed-socket churn.

    python -m bench.churn [--rounds 10] [--n 2000] [--env KEY=VALUE ...] [--product REF]

ROUNDS times: N load-generator subscribers connect (the city's spread, as the fan-out
benchmark's), each gets its snapshot and first ping, and all close; once the server
counts no socket open, its RSS. At the end the process's own account of its garbage
collections (runtime/collector.py's summary, logged as it stops). `--env` sets the
server's environment, e.g. `STREETFEED_GC_THAW_AFTER_CLOSED=0` for the hourly thaw alone.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path


def _sockets_open(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        page = answer.read().decode()
    found = re.search(r"^streetfeed_sockets_open(?:\{[^}]*\})? (\S+)$", page, re.M)
    return float(found.group(1)) if found else 0.0


async def churn(rounds: int, n: int, env: dict[str, str]) -> None:
    from bench import procs
    from bench.city import make_subscribers
    from bench.loadgen import LoadGen

    work = Path(tempfile.mkdtemp(prefix="streetfeed-churn-"))
    valkey = procs.Valkey(work)
    port = procs.free_port()
    web = procs.spawn_web(work, {**procs.streetfeed_env(work, valkey), **env}, "web", port)
    try:
        procs.wait_port(port, web.popen, 30, "streetfeed web")
        group = procs.ProcGroup(web, shared=[valkey.proc])
        procs.wait_ready(port, group, "streetfeed web")
        start = web.rss_kib()
        print(f"streetfeed web started: RSS {start / 1024:.1f} MiB", flush=True)
        for r in range(rounds):
            began = time.monotonic()
            loadgen = LoadGen(work, "raw", f"ws://127.0.0.1:{port}", "/ws/feed", True,
                              make_subscribers(n, seed=r + 1))
            await loadgen.start()
            try:
                await loadgen.wait_subscribed(120)
            finally:
                await loadgen.close()
            deadline = time.monotonic() + 60
            while _sockets_open(port) > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server still counts open sockets after 60 s")
                await asyncio.sleep(0.1)
            rss = web.rss_kib()
            print(f"round {r + 1}/{rounds}: {n} sockets opened and closed in "
                  f"{time.monotonic() - began:.1f} s; RSS {rss / 1024:.1f} MiB "
                  f"(+{(rss - start) / 1024:.1f}, {(rss - start) * 1024 / n / (r + 1):,.0f} "
                  f"bytes per closed socket)", flush=True)
        group.check_alive()
    finally:
        web.stop()
        valkey.stop()
        summary = [line for line in web.log.read_text(errors="replace").splitlines()
                   if "garbage collection" in line]
        print("\n".join(summary[-3:]) or "(no garbage collection summary in the log)")
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--product", default=None, metavar="REF")
    args = parser.parse_args()
    from bench import procs

    if args.product:
        procs.use_product(args.product)
    try:
        asyncio.run(churn(args.rounds, args.n, dict(e.split("=", 1) for e in args.env)))
    finally:
        procs.drop_product()


if __name__ == "__main__":
    main()
