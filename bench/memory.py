"""Where a gateway socket's memory goes: tracemalloc around N idle Streetfeed sockets.

    python -m bench.memory [--n 3000] [--product REF] [--churn ROUNDS [--churn-n 1000]]

Runs the real app (create_app + the product's uvicorn config) in this process,
connects N load-generator subscribers, and prints the Python allocations that
appeared, per socket, grouped by source file. tracemalloc itself inflates RSS:
read the "traced" figures, not the RSS. Then it counts the objects the cyclic
garbage collector tracks and times two full collections (tracemalloc stopped):
what one costs the gateway with N sockets: all of them walked, as before the product
froze long-lived objects, and as the product's collector policy leaves it
(runtime/collector.py: frozen after start-up and after each full collection).

With --churn, ROUNDS times CHURN_N sockets open and close, the cyclic collector off: after
each round, the reference cycles closed sockets left (what only the cyclic collector
frees, and what a frozen object in a cycle would leak), the tracked and frozen objects
and the RSS (psutil).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import psutil


def _collector() -> Any:
    """The product's collector policy (runtime/collector.py), or None before it existed."""
    try:
        from runtime.collector import Collector
    except ImportError:
        return None
    return Collector()


async def measure(n: int, top: int, churn: int, churn_n: int) -> None:
    import uvicorn

    from bench import procs
    from bench.city import make_subscribers
    from bench.loadgen import LoadGen
    from runtime.settings import load_settings
    from streetfeed.runner import uvicorn_config
    from web.app import create_app

    work = Path(tempfile.mkdtemp(prefix="streetfeed-memory-"))
    valkey = procs.Valkey(work)
    try:
        settings = load_settings(procs.BENCH_LIMITS, redis_url=valkey.url,
                                 port=procs.free_port(), demo=False)
        server = uvicorn.Server(uvicorn_config(settings, create_app(settings),
                                               log_level="warning"))
        task = asyncio.create_task(server.serve())
        for _ in range(300):
            if server.started:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        if churn:
            await _churn(server, settings.port, work, churn, churn_n)
        gc.collect()
        tracked0 = len(gc.get_objects())
        loadgen = LoadGen(work, "raw", f"ws://127.0.0.1:{settings.port}", "/ws/feed", True,
                          make_subscribers(n))
        gc.collect()
        rss0 = psutil.Process().memory_info().rss
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        await loadgen.start()
        for _ in range(1200):
            if (await loadgen.stats())["subscribed"] >= n:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        gc.collect()
        after = tracemalloc.take_snapshot()
        rss1 = psutil.Process().memory_info().rss
        tracemalloc.stop()
        by_file = after.compare_to(before, "filename")
        traced = sum(s.size_diff for s in by_file)
        print(f"{n} idle sockets: traced Python allocations {traced / n / 1024:.1f} KiB per "
              f"socket (RSS +{(rss1 - rss0) / n / 1024:.1f} KiB, tracemalloc included)")
        for stat in by_file[:top]:
            name = stat.traceback[0].filename
            for marker in ("site-packages/", "/lib/python3.11/", str(procs.PRODUCT_DIR) + "/"):
                if marker in name:
                    name = name.split(marker, 1)[1]
            print(f"{stat.size_diff / n:8.0f} B/socket  {name}")
        _garbage_collection(n, tracked0)
        await loadgen.close()
        server.should_exit = True
        await task
    finally:
        valkey.stop()
        shutil.rmtree(work, ignore_errors=True)


def _garbage_collection(n: int, tracked0: int) -> None:
    """What a full collection costs with N sockets: every tracked object is walked, unless
    frozen."""
    tracked = gc.get_objects()
    by_type = Counter(type(o).__name__ for o in tracked)
    del tracked
    total = sum(by_type.values())
    print(f"GC-tracked objects: {total:,} ({total / n:.1f} per socket; "
          f"{(total - tracked0) / n:.1f} per socket over the {tracked0:,} before the sockets); "
          "most common per socket: "
          + ", ".join(f"{name} {count / n:.1f}" for name, count in by_type.most_common(8)))
    for _ in range(2):
        started = time.perf_counter()
        gc.collect()
        print(f"full collection, nothing frozen: {(time.perf_counter() - started) * 1000:.0f} ms")
    collector = _collector()
    if collector is None:
        return
    # As the product runs (streetfeed/runner.py): frozen at start-up, then what survives a
    # full collection. Here the sockets are in the second freeze.
    collector.install()
    try:
        for _ in range(2):
            started = time.perf_counter()
            gc.collect()
            print(f"full collection, long-lived objects frozen (runtime/collector.py): "
                  f"{(time.perf_counter() - started) * 1000:.1f} ms "
                  f"({len(gc.get_objects()):,} walked, {gc.get_freeze_count():,} frozen)")
    finally:
        collector.uninstall()


async def _churn(server: Any, port: int, work: Path, rounds: int, n: int) -> None:
    """Sockets opened and closed in rounds, frozen while open (as the product's collector
    does when a full collection runs): whatever of theirs stays frozen once they closed is
    leaked for the life of the process."""
    from bench.city import make_subscribers
    from bench.loadgen import LoadGen

    gc.collect()
    gc.freeze()
    frozen0, blocks0 = gc.get_freeze_count(), sys.getallocatedblocks()
    rss0 = psutil.Process().memory_info().rss
    try:
        for r in range(rounds):
            loadgen = LoadGen(work, "raw", f"ws://127.0.0.1:{port}", "/ws/feed", True,
                              make_subscribers(n, seed=r + 1))
            await loadgen.start()
            await loadgen.wait_subscribed(120)
            gc.freeze()
            await loadgen.close()
            for _ in range(600):  # feed sockets gone (the event streams' registry stays)
                if not any(hasattr(c, "native") for c in server.server_state.connections):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # closing handshakes' grace (feed/raw_ws.py)
            found = gc.collect()  # the load generator's pipes and processes: a few dozen
            frozen = gc.get_freeze_count() - frozen0
            # Frozen too: tuples and dicts of atoms a collection would have stopped tracking,
            # alive or not. Python's allocated blocks say whether anything stays alive.
            blocks = sys.getallocatedblocks() - blocks0
            print(f"churn round {r + 1}/{rounds}: {n} sockets opened, frozen, closed; frozen "
                  f"+{frozen:,}, {found} in unfrozen cycles, allocated blocks +{blocks:,} "
                  f"({blocks / n / (r + 1):.2f} per closed socket), RSS "
                  f"+{(psutil.Process().memory_info().rss - rss0) / 2**20:.1f} MiB", flush=True)
    finally:
        # What stayed frozen in reference cycles, and what it kept alive: unfrozen, found
        # by one collection (by type: the product's, or the load generator's own pipes).
        gc.unfreeze()
        gc.set_debug(gc.DEBUG_SAVEALL)
        found = gc.collect()
        kinds = Counter(type(o).__name__ for o in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        gc.collect()
        print(f"after {rounds} rounds, unfrozen: {found} objects were in reference cycles ("
              + ", ".join(f"{name} {count}" for name, count in kinds.most_common(12))
              + f"); with them freed, allocated blocks +{sys.getallocatedblocks() - blocks0:,}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--churn", type=int, default=0, metavar="ROUNDS")
    parser.add_argument("--churn-n", type=int, default=1000)
    parser.add_argument("--product", default=None, metavar="REF")
    args = parser.parse_args()
    from bench import procs

    if args.product:
        procs.use_product(args.product)
    try:
        asyncio.run(measure(args.n, args.top, args.churn, args.churn_n))
    finally:
        procs.drop_product()


if __name__ == "__main__":
    main()
