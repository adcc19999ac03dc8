"""Where a gateway socket's memory goes: tracemalloc around N idle Streetfeed sockets.

    python -m bench.memory [--n 3000] [--product REF]

Runs the real app (create_app + the product's uvicorn config) in this process,
connects N load-generator subscribers, and prints the Python allocations that
appeared, per socket, grouped by source file. tracemalloc itself inflates RSS:
read the "traced" figures, not the RSS. Then it counts the objects the cyclic
garbage collector tracks and times two full collections (tracemalloc stopped):
what one costs the gateway with N sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import psutil


async def measure(n: int, top: int) -> None:
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
        _garbage_collection(n)
        await loadgen.close()
        server.should_exit = True
        await task
    finally:
        valkey.stop()
        shutil.rmtree(work, ignore_errors=True)


def _garbage_collection(n: int) -> None:
    """What a full collection costs with N sockets: every tracked object is walked."""
    tracked = gc.get_objects()
    by_type = Counter(type(o).__name__ for o in tracked)
    del tracked
    print(f"GC-tracked objects: {sum(by_type.values()):,} ({sum(by_type.values()) / n:.1f} per "
          "socket); most common per socket: "
          + ", ".join(f"{name} {count / n:.1f}" for name, count in by_type.most_common(8)))
    for _ in range(2):
        started = time.perf_counter()
        gc.collect()
        print(f"full collection: {(time.perf_counter() - started) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--product", default=None, metavar="REF")
    args = parser.parse_args()
    from bench import procs

    if args.product:
        procs.use_product(args.product)
    try:
        asyncio.run(measure(args.n, args.top))
    finally:
        procs.drop_product()


if __name__ == "__main__":
    main()
