"""What one accepted post costs each Streetfeed process, with no socket to deliver to.

    python -m bench.postcost [--posts 3000] [--product REF]

Starts `streetfeed web` and `streetfeed enricher` on a fresh Valkey (as the
benchmark does), creates the benchmark's shops, posts a warm-up, then POSTs
`--posts` posts through the real API with 8 requests in flight and prints the
CPU each process used per post (psutil, the kernel's accounting), counted until
the enricher has published them all.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench import city, httpclient, procs
from bench.scenarios import create_shops

IN_FLIGHT = 8
WARM_UP = 200


async def measure(posts: int) -> None:
    from redis.asyncio import Redis

    from runtime.settings import load_settings
    from storage import keys

    work = Path(tempfile.mkdtemp(prefix="streetfeed-postcost-"))
    valkey = procs.Valkey(work)
    group = None
    try:
        shops = city.make_shops()
        valkey.flush()
        tokens = await create_shops(valkey.url, shops)
        group = procs.start_streetfeed(work, valkey, use_index=True)
        client = httpclient.Client(group.post_url)
        feed = keys.feed_stream(load_settings({}).region)
        redis = Redis.from_url(valkey.url)
        planned = city.make_posts(WARM_UP + posts, len(shops), seed=1)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def send(post: city.PlannedPost) -> None:
            shop_id, token = tokens[post.shop]
            async with gate:
                status, body = await client.post_json(
                    f"/api/v1/shops/{shop_id}/posts", post.body(),
                    {"authorization": f"Bearer {token}"})
            if status != 202:
                raise RuntimeError(f"POST answered {status}: {body[:200]!r}")

        async def published(count: int) -> None:
            deadline = time.monotonic() + 60
            while await redis.xlen(feed) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the enricher did not publish every post within 60 s")
                await asyncio.sleep(0.05)

        await asyncio.gather(*(send(p) for p in planned[:WARM_UP]))
        await published(WARM_UP)
        before = group.cpu()
        started = time.monotonic()
        await asyncio.gather(*(send(p) for p in planned[WARM_UP:]))
        accepted_s = time.monotonic() - started
        await published(WARM_UP + posts)
        after = group.cpu()
        print(f"{posts} posts accepted in {accepted_s:.2f} s ({posts / accepted_s:.0f}/s, "
              f"{IN_FLIGHT} in flight); CPU per post:")
        for name in before:
            print(f"  {name:22s} {(after[name] - before[name]) / posts * 1e6:6.0f} us")
        await client.aclose()
        await redis.aclose()
    finally:
        if group is not None:
            group.stop()
        valkey.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--product", default=None, metavar="REF")
    args = parser.parse_args()
    if args.product:
        procs.use_product(args.product)
    try:
        asyncio.run(measure(args.posts))
    finally:
        procs.drop_product()


if __name__ == "__main__":
    main()
