"""The `in` stream: the only way a post (new, edited or automatic) enters Streetfeed.

Appends are never trimmed by length (the enricher trims what it has
acknowledged). With an idempotency key the check and the append are one
script: a retry gets the first answer and never a second entry.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import weakref
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from rules.errors import Unavailable
from runtime import metrics
from runtime.settings import Settings
from schemas.posts import RawPost
from storage import keys
from storage.redis_conn import (
    acknowledged,
    aof_of,
    async_reply,
    replicas_of,
    text,
    write_then_wait,
)

__all__ = ["Inbox", "derived_post_id", "durability_check", "enricher_activity",
           "enricher_beat", "new_post_id"]

log = logging.getLogger("streetfeed.inbox")
_encode = msgspec.json.Encoder().encode

_IDEMPOTENT_APPEND = """
-- KEYS: idempotency key, in stream; ARGV: answer, ttl_s, entry
local previous = redis.call('GET', KEYS[1])
if previous then return previous end
redis.call('XADD', KEYS[2], '*', 'd', ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""


def new_post_id() -> str:
    return "p_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def derived_post_id(*parts: str) -> str:
    """A stable post id for posts the system makes (one per shop and opening change)."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return "p_" + base64.b32encode(digest[:10]).decode().lower()


class Inbox:
    def __init__(self, redis: Redis, region: str, settings: Settings) -> None:
        self.redis = redis
        self.region = region
        self.ttl = settings.idempotency_ttl_s
        self.durability = settings.durability
        self.wait_ms = settings.durability_timeout_ms

    async def append(self, raw: RawPost) -> None:
        stream = keys.in_stream(self.region)
        await self._durably(stream, ("XADD", stream, "*", "d", _encode(raw)))

    async def append_once(self, raw: RawPost, key: str, fingerprint: str) -> tuple[str, str]:
        """Append unless `key` was used before; the (post id, fingerprint) of the first use."""
        stream = keys.in_stream(self.region)
        answer = await self._durably(stream, (
            "EVAL", _IDEMPOTENT_APPEND, 2, keys.idempotency(self.region, raw.shop_id, key),
            stream, f"{raw.id} {fingerprint}", self.ttl, _encode(raw)))
        first_id, _, first_fingerprint = text(answer).partition(" ")
        return first_id, first_fingerprint

    async def _durably(self, key: str, command: tuple[Any, ...]) -> Any:
        """Run the write, made as durable as `durability` promises, or answer 503.

        "aof": in Redis with AOF on (fsync every second); "fsync": fsynced to the local
        AOF (WAITAOF 1 0); "replica": also received by a replica (WAIT 1), so that a
        failover keeps it; "replica-preferred": the same, but when no replica acknowledges
        in time (a shard whose replica is gone or was promoted), fsynced to the master's
        AOF instead (WAITAOF 1 0), and still a 202.
        """
        mode = self.durability
        if mode == "aof":
            return await self.redis.execute_command(*command)
        if mode == "fsync":
            result, reply, _ = await write_then_wait(self.redis, key, command, self._fsync)
            if not acknowledged(reply):
                raise _not_durable(f"the post was not fsynced in time{_why(reply)}")
            return result
        preferred = mode == "replica-preferred"
        without = _without_replica.setdefault(self.redis, set())
        if key in without and await replicas_of(self.redis, key):
            without.discard(key)
            log.warning("region %s: a replica is back; posts wait for it again", self.region)
        if key in without:
            # Known to have no replica: refuse before writing, or go straight to the
            # master's fsync, rather than wait for a WAIT that cannot succeed.
            if not preferred:
                metrics.DURABILITY_DEGRADED.labels(mode, "refused").inc()
                raise _not_durable("the shard of this region has no replica to keep the post")
            result, reply, _ = await write_then_wait(self.redis, key, command, self._fsync)
            return self._fell_back(result, reply)
        fallback = (("INCR", keys.fsync_marker(self.region)), self._fsync)
        result, reply, later = await write_then_wait(
            self.redis, key, command, ("WAIT", 1, self.wait_ms),
            fallback if preferred else None)
        if acknowledged(reply):
            return result
        without.add(key)
        log.warning("region %s: no replica acknowledged a post within %d ms; %s", self.region,
                    self.wait_ms, "falling back to the master's AOF fsync" if preferred
                    else "posts are refused (503 not_durable) until one does")
        if not preferred:
            metrics.DURABILITY_DEGRADED.labels(mode, "refused").inc()
            raise _not_durable("no replica received the post in time")
        return self._fell_back(result, later)

    @property
    def _fsync(self) -> tuple[Any, ...]:
        return ("WAITAOF", 1, 0, self.wait_ms)

    def _fell_back(self, result: Any, reply: Any) -> Any:
        if not acknowledged(reply):
            metrics.DURABILITY_DEGRADED.labels(self.durability, "refused").inc()
            raise _not_durable("no replica received the post and the master did not fsync "
                              f"it in time{_why(reply)}")
        metrics.DURABILITY_DEGRADED.labels(self.durability, "fsync").inc()
        return result


def _why(reply: Any) -> str:
    return f" ({reply})" if isinstance(reply, Exception) else ""


def _not_durable(message: str) -> Unavailable:
    return Unavailable(f"{message}; retry with the same Idempotency-Key",
                       code="not_durable", retry_after=1)


# Per client: the keys whose shard was last seen without a replica (shared by the Inbox
# objects, which are made per request). While a key is here each write first asks its
# master (INFO) whether a replica is back.
_without_replica: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


async def durability_check(redis: Redis, settings: Settings) -> tuple[str, bool]:
    """For /readyz: "ok", or why a 202 cannot keep its promise in some region; and
    whether this process is ready (with "replica-preferred", a region without a replica
    still takes posts, on its master's AOF fsync)."""
    if settings.durability not in ("replica", "replica-preferred"):
        return "ok", True
    lacking = [region for region in settings.region_names
               if not await replicas_of(redis, keys.in_stream(region))]
    if not lacking:
        return "ok", True
    if settings.durability == "replica":
        return (f"no replica for region {', '.join(lacking)}: "
                "posts there are refused (503 not_durable)"), False
    no_aof = [region for region in lacking if not await aof_of(redis, keys.in_stream(region))]
    if no_aof:
        return (f"no replica and no AOF for region {', '.join(no_aof)}: "
                "posts there are refused (503 not_durable)"), False
    return (f"no replica for region {', '.join(lacking)}: "
            "posts there are kept by the master's AOF fsync only"), True


def _entry_ms(entry_id: bytes | str) -> int:
    return int(text(entry_id).partition("-")[0])


# An enricher's beat, at the server's time: a key of its own, not the consumer group's
# `idle`, which a Redis restart sets to the restart for every consumer (its AOF replays
# their reads), so a stopped enricher looked at work for a stall's length after one (a
# cold try). A beat is a value: replayed, it keeps its time. Beats older than a day go,
# and any dated more than a minute ahead (none of the enrichers').
_BEAT = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - 86400000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. (ms + 60000), '+inf')
return ms
"""


async def enricher_beat(redis: Redis, region: str, consumer: str) -> None:
    """Say that `consumer` is about to try to read (rules.pipeline)."""
    await async_reply(redis.eval(_BEAT, 1, keys.enricher_beats(region), consumer))


async def enricher_activity(redis: Redis, region: str) -> tuple[int, int | None, int | None]:
    """(the server's time; when the oldest post still waiting for an enricher was
    appended, None when none waits; an enricher's last beat, None when none beat in the
    last day), in ms (rules.pipeline). Waiting: not read yet, or read and not
    acknowledged. Two round trips."""
    stream = keys.in_stream(region)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.xinfo_groups(stream)
        pipe.xpending(stream, keys.ENRICHER_GROUP)
        pipe.zrange(keys.enricher_beats(region), 0, -1, withscores=True)
        (seconds, micros), groups, pending, beats = await pipe.execute(raise_on_error=False)
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    # Only beats that have happened: one dated in the future (written by hand: beats are
    # the server's TIME) would otherwise say "at work" for ever (a cold attacker's).
    tried_ms = max((int(score) for _, score in beats if score <= now_ms), default=None) \
        if not isinstance(beats, ResponseError) else None
    if isinstance(groups, ResponseError):  # no such stream: no post ever came
        return now_ms, None, tried_ms
    group = next((g for g in groups if text(g["name"]) == keys.ENRICHER_GROUP), None)
    after = "-" if group is None else f"({text(group['last-delivered-id'])}"
    unread = await redis.xrange(stream, min=after, count=1)
    waiting = [_entry_ms(unread[0][0])] if unread else []
    if group is not None and not isinstance(pending, ResponseError) and pending["pending"]:
        waiting.append(_entry_ms(pending["min"]))
    return now_ms, min(waiting, default=None), tried_ms
