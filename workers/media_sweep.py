"""Photos whose time is over leave the store (arq cron jobs of the scheduler).

- `sweep_media`: every photo the index keeps no longer (a day after an upload never
  posted; the lifetime of the last post that showed it, plus a margin) is forgotten by
  the index, then its files deleted. Forgetting first: a post taking the photo meanwhile
  either kept it (the sweep leaves it) or is refused `unknown_media`; never a post
  naming deleted files.
- `sweep_orphan_media`: files no region's index knows (a process that died between
  writing an upload's files and registering it, an index lost with its Redis) are
  deleted once older than ORPHAN_GRACE, longer than any upload takes to register.
Both are idempotent: a run that fails half-way is finished by the next.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from rules.clock import Clock
from runtime.settings import Settings
from storage.media import MediaStore
from storage.media_index import MediaIndex
from storage.redis_conn import REDIS_DOWN

__all__ = ["ORPHAN_GRACE", "sweep_media", "sweep_orphan_media"]

log = logging.getLogger("streetfeed.media_sweep")

ORPHAN_GRACE = timedelta(hours=1)
_BATCH = 500


async def sweep_media(ctx: dict[str, Any]) -> int:
    redis: Redis = ctx["data"]
    store: MediaStore = ctx["media"]
    clock: Clock = ctx["clock"]
    settings: Settings = ctx["settings"]
    removed = 0
    try:
        for region in settings.region_names:
            index = MediaIndex(redis, region)
            while True:
                now = clock.now().timestamp()
                due = await index.due(now, _BATCH)
                for item in due:
                    media_id, size = (item, 0) if isinstance(item, str) else (item.id, item.bytes)
                    if await index.forget(media_id, size, now):
                        await store.delete(media_id)
                        await index.deleted(media_id)
                        removed += 1
                if len(due) < _BATCH:
                    break
    except REDIS_DOWN as exc:
        log.warning("media sweep: Redis unavailable (%s); next run catches up", exc)
    if removed:
        log.info("media sweep: removed %d photos", removed)
    return removed


async def sweep_orphan_media(ctx: dict[str, Any]) -> int:
    redis: Redis = ctx["data"]
    store: MediaStore = ctx["media"]
    clock: Clock = ctx["clock"]
    settings: Settings = ctx["settings"]
    older_than = clock.now() - ORPHAN_GRACE
    indexes = [MediaIndex(redis, region) for region in settings.region_names]
    removed = 0
    batch: list[str] = []

    async def flush() -> None:
        nonlocal removed
        known: set[str] = set()
        for index in indexes:
            known |= await index.kept(batch)
        for media_id in batch:
            if media_id not in known:
                await store.delete(media_id)
                removed += 1
        batch.clear()

    try:
        async for found in store.list():
            if found.modified_at < older_than:
                batch.append(found.id)
                if len(batch) >= _BATCH:
                    await flush()
        await flush()
    except REDIS_DOWN as exc:
        log.warning("orphan media sweep: Redis unavailable (%s); next run catches up", exc)
    if removed:
        log.info("orphan media sweep: removed %d unregistered photos", removed)
    return removed
