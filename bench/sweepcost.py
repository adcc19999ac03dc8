"""What the scheduler's expiry sweep costs a post, one by one against a batch.

    python -m bench.sweepcost [--posts 5000]

Fills a fresh Valkey (as the benchmark runs it) with `--posts` live posts already due,
ends them the way workers/scheduler.py's sweep does (LiveIndex.expire_many, 500 a batch),
then fills it again and ends them one `LiveIndex.remove` at a time (the sweep before issue
19's last session); prints wall time, this process's CPU and Valkey's per post for each.
The figures feed bench/capacity_sim/inputs.py (SWEEP_EXPIRY_S, SWEEP_EXPIRIES_PER_S).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench import procs

BATCH = 500  # workers/scheduler.py: due_for_expiry's limit


async def measure(posts: int) -> None:
    from redis.asyncio import Redis

    from runtime.settings import load_settings
    from storage.live import LiveIndex

    work = Path(tempfile.mkdtemp(prefix="streetfeed-sweepcost-"))
    valkey = procs.Valkey(work)
    redis = Redis.from_url(valkey.url)
    try:
        settings = load_settings({"REDIS_URL": valkey.url})
        live = LiveIndex(redis, settings.region, settings)
        now = time.time()

        async def fill(prefix: str) -> None:
            for i in range(posts):
                post_id = f"{prefix}{i}"
                await live.publish(post_id=post_id, source=f"{i + 1}-0",
                                   post_json=b'{"id":"%s","title":"t"}' % post_id.encode(),
                                   kind="flash_offer", lat=44.837 + i * 1e-6, lon=-0.5735,
                                   expires_ts=now - 1, shop_id=f"s{i % 50}", raw=b"")

        async def batched() -> int:
            ended = 0
            while due := await live.due_for_expiry(time.time(), BATCH):
                ended += await live.expire_many(due, now_ts=time.time())
            return ended

        async def one_by_one() -> int:
            ended = 0
            while due := await live.due_for_expiry(time.time(), BATCH):
                for post_id in due:
                    ended += await live.remove(post_id, "expired", now_ts=time.time()) is not None
            return ended

        for name, sweep in (("batched (expire_many)", batched),
                            ("one by one (remove)", one_by_one)):
            await fill(name[:3])
            cpu, server, wall = time.process_time(), valkey.proc.cpu_s(), time.perf_counter()
            ended = await sweep()
            wall = time.perf_counter() - wall
            cpu, server = time.process_time() - cpu, valkey.proc.cpu_s() - server
            assert ended == posts, (name, ended)
            print(f"{name:24} {posts:,} posts: {wall / posts * 1e6:6.0f} us wall, "
                  f"{cpu / posts * 1e6:5.0f} us scheduler CPU, {server / posts * 1e6:5.0f} us "
                  f"Valkey CPU a post; {posts / wall:,.0f} posts/s")
    finally:
        await redis.aclose()
        valkey.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    asyncio.run(measure(parser.parse_args().posts))


if __name__ == "__main__":
    main()
