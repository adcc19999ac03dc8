"""What resuming sockets read of the feed streams, read once for all of them.

A gateway restart (a deploy, a crash) makes every socket of the process resume at once
with its cursor. Read per socket, that was an XINFO STREAM and an XRANGE each (10,000
sockets: 20,000 round trips, the same entries fetched and decoded thousands of times),
and the process spent the storm in redis-py (bench/storm.py, docs/performance.md).

Here the requests that arrive while a read is under way wait for the next one, which
serves them all in one pipelined round trip: per region one XINFO STREAM, and one XRANGE
per distinct cursor (sockets resume with the cursor of the last frame they had: a few
hundred distinct ones at most, however many sockets), each entry decoded once. A read
starts after every request it serves was made, so what it says of the stream (retention,
newest entry) is as fresh as a read of the socket's own would have been.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from feed.frames import decode_entry
from rules import cursor as cursors
from schemas.feed import FeedEntry
from storage import keys
from storage.redis_conn import text

__all__ = ["ReplayEntry", "ReplayRead", "ReplayReads", "StreamEnds"]

# An entry of a region's feed stream after a cursor: its id's sort key, its id, and the
# entry (None when it cannot be decoded: skipped, as the live reader skips it).
ReplayEntry = tuple[tuple[int, int], str, FeedEntry | None]


@dataclass(frozen=True, slots=True)
class StreamEnds:
    """What a region's stream says of resuming, from one XINFO STREAM shared by every
    socket of the read: its newest entry id and the oldest a resume may rely on
    (rules.cursor.oldest_kept); both "0-0" when there is no such stream yet."""

    last_id: str
    oldest_kept: str

    def judge(self, cursor: str) -> cursors.Resume:
        """Whether `cursor` can be resumed without a gap (rules.cursor.judge)."""
        return cursors.judge(cursor, last_id=self.last_id, oldest_kept=self.oldest_kept)


@dataclass(frozen=True, slots=True)
class ReplayRead:
    """A region's stream as one resuming socket needs it."""

    ends: StreamEnds
    # The entries after the cursor, oldest first, at most `count` of them, and up to at
    # least the requested `upto` (possibly further: filter by your own bound).
    entries: list[ReplayEntry]


@dataclass(slots=True)
class _Request:
    region: str
    after: str
    upto: str
    future: asyncio.Future[ReplayRead] = field(repr=False)


class ReplayReads:
    """Resume reads of every socket of a process, batched: one read under way at a time."""

    def __init__(self, redis: Redis, count: int) -> None:
        self.redis = redis
        # Entries read after each cursor: the replay limit plus one, so that a cursor further
        # back than the limit shows as more entries than it allows.
        self.count = count
        self._queue: list[_Request] = []
        self._task: asyncio.Task[None] | None = None
        # Round trips made (tests: resumes arriving together share them).
        self.reads = 0

    async def ends(self, region: str) -> StreamEnds:
        """`region`'s stream's ends, read with the resumes under way (a storm's sockets each
        ask whether their cursor is in the stream's future)."""
        return (await self.read(region, cursors.ZERO, cursors.ZERO)).ends

    async def read(self, region: str, after: str, upto: str) -> ReplayRead:
        """`region`'s stream ends and its entries in (after, upto] (see ReplayRead)."""
        loop = asyncio.get_running_loop()
        request = _Request(region, after, upto, loop.create_future())
        self._queue.append(request)
        if self._task is None:
            # Its own context: started from one socket's setup, it serves them all.
            self._task = asyncio.create_task(self._drain(), name="replay-reads",
                                             context=contextvars.Context())
        return await request.future

    async def _drain(self) -> None:
        batch: list[_Request] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                batch = [r for r in batch if not r.future.done()]  # gone while waiting
                if not batch:
                    continue
                try:
                    results = await self._fetch(batch)
                except Exception as exc:  # each socket's setup decides (retried if Redis is down)
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    continue
                for request, result in zip(batch, results, strict=True):
                    if not request.future.done():
                        request.future.set_result(result)
                batch = []
        finally:
            self._task = None
            for request in (*batch, *self._queue):  # only if this task was cancelled
                if not request.future.done():
                    request.future.cancel()
            if self._queue:
                self._queue = []

    async def _fetch(self, batch: list[_Request]) -> list[ReplayRead]:
        regions = sorted({r.region for r in batch})
        # One XRANGE per (region, cursor), up to the furthest bound asked with it.
        ranges: dict[tuple[str, str], str] = {}
        for r in batch:
            if cursors.key(r.after) >= cursors.key(r.upto):
                continue  # nothing after the cursor: the stream's info is enough
            bound = ranges.get((r.region, r.after))
            if bound is None or cursors.key(r.upto) > cursors.key(bound):
                ranges[(r.region, r.after)] = r.upto
        async with self.redis.pipeline(transaction=False) as pipe:
            for region in regions:
                pipe.xinfo_stream(keys.feed_stream(region))
            for (region, after), upto in ranges.items():
                pipe.xrange(keys.feed_stream(region), min=f"({after}", max=upto,
                            count=self.count)
            replies = await pipe.execute(raise_on_error=False)
        self.reads += 1
        ends: dict[str, StreamEnds] = {}
        for region, reply in zip(regions, replies, strict=False):
            if isinstance(reply, ResponseError):
                ends[region] = _NO_STREAM
            elif isinstance(reply, Exception):
                raise reply
            else:
                # redis-py parses XINFO STREAM into a dict (str keys) and types it Any.
                ends[region] = _stream_ends(cast("dict[str, Any]", reply))
        decoded: dict[tuple[str, bytes], ReplayEntry] = {}
        read: dict[tuple[str, str], list[ReplayEntry]] = {}
        for (region, after), reply in zip(ranges, replies[len(regions):], strict=True):
            if isinstance(reply, Exception):
                raise reply
            entries = []
            for entry_id, fields in reply:
                entry = decoded.get((region, entry_id))
                if entry is None:
                    entry = decoded[(region, entry_id)] = _decoded(entry_id, fields)
                entries.append(entry)
            read[(region, after)] = entries
        return [ReplayRead(ends=ends[r.region], entries=read.get((r.region, r.after), []))
                for r in batch]


_NO_STREAM = StreamEnds(last_id=cursors.ZERO, oldest_kept=cursors.ZERO)


def _stream_ends(info: dict[str, Any]) -> StreamEnds:
    first = info.get("first-entry")
    last_id = text(info["last-generated-id"])
    oldest_kept = cursors.oldest_kept(
        entries_added=info["entries-added"], length=info["length"],
        first_id=text(first[0]) if first else None,
        max_deleted=text(info.get("max-deleted-entry-id", b"0-0")), last_id=last_id)
    return StreamEnds(last_id=last_id, oldest_kept=oldest_kept)


def _decoded(entry_id: bytes, fields: dict[bytes, bytes]) -> ReplayEntry:
    ident = text(entry_id)
    try:
        entry: FeedEntry | None = decode_entry(fields.get(b"d", b""))
    except (msgspec.DecodeError, msgspec.ValidationError):
        entry = None
    return cursors.key(ident), ident, entry
