"""The scheduler: an arq worker for deferred and periodic jobs.

arq is used only for what it is good at (jobs at a time, cron); posts travel on
Redis streams, not on arq's queue. Every job is idempotent: running it twice,
late, or after the worker was down leaves the same state as one on-time run.

Jobs:
- sweep_expired(): every second (and at start), expires every post already due
  (the region's expiry set, written by the publish script): on time within a second,
  and caught up after downtime, since it reads what is due rather than remembering jobs.
  It replaced a deferred arq job per post, which cost the enricher three round trips a
  post (arq's WATCH, EXISTS, then PSETEX and ZADD in a MULTI) and the scheduler a job
  run a post (docs/performance.md, "Per-post cost").
- expire_post(region, post_id): the job that did it per post; kept registered so the
  jobs an older enricher queued still run (each is a no-op once the sweep has run).
- expire_holds(): every 5 seconds (and at start), ends every open hold whose time is up
  ("Hold it for me"; services.holds): on time within 5 s, and caught up after downtime,
  since it reads what is due rather than remembering jobs.
- opening_changes(): every minute (and at start), turns each shop's opening
  hours into an automatic `opening_change` post at each opening and closing;
  after downtime only the latest change is posted (it is what is true now). The
  shop's own opening_change posts override its hours (rules.opening): nothing is
  posted while one masks a change, and the hours are posted again when it ends
  or is withdrawn, if they say otherwise.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from arq import Retry, Worker, cron
from arq.connections import ArqRedis
from redis.asyncio import Redis

from rules.clock import Clock, SystemClock
from rules.moderation import OPENING_UNTIL_MAX_AHEAD_S
from rules.opening import automatic_changes, effective_state
from runtime.settings import Settings
from schemas.hours import NextChange, OpeningOverride, ShopHours
from schemas.posts import OpeningChangeIn, RawPost
from schemas.shops import ShopRecord
from services.holds import Holds
from storage import keys, openings
from storage.inbox import Inbox, derived_post_id
from storage.live import LiveIndex
from storage.media import media_store_for
from storage.ratelimit import RateLimiter
from storage.redis_conn import REDIS_DOWN
from storage.shops import list_shops
from workers.media_sweep import sweep_media, sweep_orphan_media

__all__ = ["expire_holds", "expire_post", "make_worker", "opening_changes", "sweep_expired",
           "worker_context"]

log = logging.getLogger("streetfeed.scheduler")

# A shop's first look at its hours covers this much of the past, not more: setting
# hours must not post about an opening that happened this morning.
FIRST_LOOK_BACK = timedelta(minutes=2)
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


async def expire_post(ctx: dict[str, Any], region: str, post_id: str) -> bool:
    live: LiveIndex = ctx["live"][region]
    clock: Clock = ctx["clock"]
    try:
        feed_id = await live.remove(post_id, "expired", now_ts=clock.now().timestamp())
    except REDIS_DOWN as exc:
        # arq only retries on Retry; the sweep catches up anyway.
        raise Retry(defer=5) from exc
    return feed_id is not None


async def sweep_expired(ctx: dict[str, Any]) -> int:
    clock: Clock = ctx["clock"]
    total = 0
    try:
        for live in ctx["live"].values():
            now_ts = clock.now().timestamp()
            while True:
                due = await live.due_for_expiry(now_ts)
                total += await live.expire_many(due, now_ts=now_ts)
                if len(due) < 500:
                    break
    except REDIS_DOWN as exc:
        # Idempotent and every second: the next run catches up.
        log.warning("sweep: Redis unavailable (%s); next run catches up", exc)
    if total:
        log.info("sweep: expired %d posts", total)
    return total


async def expire_holds(ctx: dict[str, Any]) -> int:
    holds: Holds = ctx["holds"]
    settings: Settings = ctx["settings"]
    total = 0
    try:
        for region in settings.region_names:
            total += await holds.expire_due(region)
    except REDIS_DOWN as exc:
        log.warning("holds: Redis unavailable (%s); next run catches up", exc)
    if total:
        log.info("holds: %d expired", total)
    return total


def opening_post(record: ShopRecord, hours: ShopHours, change: NextChange,
                 now: datetime, overrides: list[OpeningOverride] | None = None) -> OpeningChangeIn:
    """The automatic post for one change: what is true from `change.at` until the next one.
    The title is French; pages write it in their reader's language from `status` and
    `until` (the post carries the shop's time zone), API clients get this one."""
    tz = ZoneInfo(hours.timezone)
    following = effective_state(hours, overrides or [], change.at).next_change
    until = None
    if following is not None and following.at > now:
        until = min(following.at, now + timedelta(seconds=OPENING_UNTIL_MAX_AHEAD_S - 60))
    if change.open:
        title = "Ouvert"
        if until is not None:
            title += f" jusqu'à {until.astimezone(tz):%H:%M}"
        return OpeningChangeIn(title=title, status="open_now", until=until)
    title = "Fermé"
    if until is not None:
        local = until.astimezone(tz)
        same_day = local.date() == now.astimezone(tz).date()
        day = "" if same_day else f"{_DAYS_FR[local.weekday()]} "
        title += f", réouverture {day}à {local:%H:%M}"
    return OpeningChangeIn(title=title, status="closed_now", until=until)


async def opening_changes(ctx: dict[str, Any]) -> int:
    try:
        return await _opening_changes(ctx)
    except REDIS_DOWN as exc:
        # Each shop's progress is kept in Redis: the next run resumes where this stopped.
        log.warning("opening changes: Redis unavailable (%s); next run catches up", exc)
        return 0


async def _opening_changes(ctx: dict[str, Any]) -> int:
    redis: Redis = ctx["data"]
    clock: Clock = ctx["clock"]
    settings: Settings = ctx["settings"]
    now = clock.now()
    posted = 0
    overrides: dict[str, list[OpeningOverride]] = {}
    for region in settings.region_names:
        found = await openings.of_region(redis, region)
        for shop_id, own in found.items():  # every shop's, with hours or not
            await openings.prune(redis, region, shop_id, own, now.timestamp())
        overrides.update(found)
    for record in await list_shops(redis):
        if record.hours is None:
            continue
        own = overrides.get(record.id, [])
        checked_key = keys.hours_checked(record.region, record.id)
        checked = await redis.get(checked_key)
        since = (datetime.fromtimestamp(float(checked), UTC) if checked is not None
                 else now - FIRST_LOOK_BACK)
        latest = next(reversed(automatic_changes(record.hours, own, since, now)), None)
        if latest is not None:
            body = opening_post(record, record.hours, latest, now, own)
            stamp = str(int(latest.at.timestamp()))
            raw = RawPost(id=derived_post_id(record.id, "hours", stamp), shop_id=record.id,
                          accepted_at=now, body=body, posted_at=latest.at, auto=True)
            inbox = Inbox(redis, record.region, settings)
            await inbox.append_once(raw, f"hours:{stamp}", stamp)
            posted += 1
        await redis.set(checked_key, repr(now.timestamp()))
    return posted


def worker_context(settings: Settings, data: Redis, clock: Clock) -> dict[str, Any]:
    """What jobs use: `data` is the product's Redis (a cluster, maybe), not arq's queue;
    `media` the photo store the web processes write to."""
    return {"live": {region: LiveIndex(data, region, settings)
                     for region in settings.region_names},
            "clock": clock, "settings": settings, "data": data,
            "media": media_store_for(settings),
            "holds": Holds(data, settings, clock, settings.moderation_policy(),
                           RateLimiter(data, settings.secret))}


async def _close_media(ctx: dict[str, Any]) -> None:
    # An S3 store's client threads must be done before the process may exit (media_s3).
    await ctx["media"].close()


def make_worker(pool: ArqRedis, settings: Settings, clock: Clock | None = None, *,
                data: Redis | None = None, burst: bool = False) -> Worker:
    # A burst run ends once arq's queue is empty, which a job every second (queued ahead of
    # its time) never lets it be: it sweeps at start-up, then at each minute.
    sweep_seconds = {0} if burst else set(range(60))
    return Worker(
        functions=[expire_post],
        cron_jobs=[cron(sweep_expired, second=sweep_seconds, run_at_startup=True),
                   cron(opening_changes, second=0, run_at_startup=True),
                   cron(expire_holds, second=set(range(0, 60, 5)), run_at_startup=True),
                   cron(sweep_media, minute=set(range(0, 60, 5)), second=30,
                        run_at_startup=True),
                   cron(sweep_orphan_media, minute=17, second=45)],
        redis_pool=pool,
        queue_name=keys.arq_queue(),
        burst=burst,
        handle_signals=False,
        keep_result=60,
        poll_delay=0.2,
        on_shutdown=_close_media,
        ctx=worker_context(settings, data if data is not None else pool, clock or SystemClock()),
    )
