"""The scheduler: an arq worker for deferred and periodic jobs.

arq is used only for what it is good at (jobs at a time, cron); posts travel on
Redis streams, not on arq's queue. Every job is idempotent: running it twice,
late, or after the worker was down changes nothing more than one on-time run.

Jobs:
- expire_post(region, post_id): deferred to the post's expiry; removes it from
  the live index and appends an `expired` tombstone, only if it is due.
- sweep_expired(): every minute, expires every post already due, catching up
  on jobs missed while the scheduler (or Redis) was down.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq import Worker, cron
from arq.connections import ArqRedis

from streetfeed.clock import Clock, SystemClock
from streetfeed.live import LiveIndex
from streetfeed.settings import Settings

log = logging.getLogger("streetfeed.scheduler")

QUEUE = "sf:arq:queue"


async def expire_post(ctx: dict[str, Any], region: str, post_id: str) -> bool:
    live: LiveIndex = ctx["live"][region]
    clock: Clock = ctx["clock"]
    feed_id = await live.remove(post_id, "expired", now_ts=clock.now().timestamp())
    return feed_id is not None


async def sweep_expired(ctx: dict[str, Any]) -> int:
    clock: Clock = ctx["clock"]
    total = 0
    for live in ctx["live"].values():
        now_ts = clock.now().timestamp()
        while True:
            due = await live.due_for_expiry(now_ts)
            for post_id in due:
                if await live.remove(post_id, "expired", now_ts=now_ts) is not None:
                    total += 1
            if len(due) < 500:
                break
    if total:
        log.info("sweep: expired %d posts", total)
    return total


async def schedule_expiry(pool: ArqRedis, region: str, post_id: str, when: datetime) -> None:
    # One job per (post, expiry time): an edit that moves the expiry adds a job for the
    # new time, and the old one finds nothing due when it runs.
    job_id = f"expire:{region}:{post_id}:{when.timestamp()}"
    await pool.enqueue_job("expire_post", region, post_id, _queue_name=QUEUE,
                           _defer_until=when, _job_id=job_id)


def make_worker(pool: ArqRedis, settings: Settings, clock: Clock | None = None, *,
                burst: bool = False) -> Worker:
    live = {settings.region: LiveIndex(pool, settings.region, feed_maxlen=settings.feed_maxlen)}
    return Worker(
        functions=[expire_post],
        cron_jobs=[cron(sweep_expired, second=0, run_at_startup=True)],
        redis_pool=pool,
        queue_name=QUEUE,
        burst=burst,
        handle_signals=False,
        keep_result=60,
        poll_delay=0.2,
        ctx={"live": live, "clock": clock or SystemClock()},
    )
