"""The one way every component opens Redis: a server, or a Redis Cluster.

Everything written here is cluster-safe: a region's keys share a hash tag
(one slot per Lua script), multi-key reads of shops are pipelined GETs rather
than MGET, and no MULTI/WATCH is used (the cluster client has none).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    MovedError,
    ReadOnlyError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
    WatchError,
)

from rules.errors import ConfigError
from runtime.settings import Settings

__all__ = ["REDIS_DOWN", "REDIS_UNAVAILABLE", "acknowledged", "aof_of", "arq_url", "async_reply",
           "get_many", "hmget_many", "open_redis", "publish", "pubsub_client", "replicas_of",
           "text", "write_then_wait"]

T = TypeVar("T")

# Redis cannot serve now but will: no connection, or a cluster failing over (a replica
# refusing writes, slots moving or uncovered). Answered 503 + Retry-After, retried by loops.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError, TimeoutError, ClusterDownError, TryAgainError, MovedError, AskError,
    MasterDownError, ReadOnlyError, SlotNotCoveredError)
# What long-running loops retry with backoff: the above, a connection lost inside a WATCH
# (arq's enqueue reports it as WatchError), and socket errors.
REDIS_DOWN: tuple[type[Exception], ...] = (*REDIS_UNAVAILABLE, WatchError, OSError)
# A node that a pipeline sent to directly (bypassing the cluster client) failed on.
_NODE_DOWN: tuple[type[Exception], ...] = (*REDIS_UNAVAILABLE, OSError)


def async_reply(command: Awaitable[T] | T) -> Awaitable[T]:
    """A command of the asyncio client, typed as what it returns: an awaitable.

    redis-py 5 types its commands once for the sync and asyncio clients, many as
    `Awaitable[T] | T` (smembers, hmget, sadd...), which cannot be awaited as typed; on
    redis.asyncio they always return the awaitable. `await async_reply(redis.smembers(k))`
    """
    return cast("Awaitable[T]", command)


def open_redis(settings: Settings) -> Redis:
    # Timeouts above the longest blocking read (XREAD BLOCK) so only a dead link times out.
    timeout = max(10.0, settings.gateway_block_ms / 1000 + 5)
    if settings.redis_cluster_url:
        cluster: RedisCluster = RedisCluster.from_url(
            settings.redis_cluster_url, socket_connect_timeout=5, socket_timeout=timeout)
        # Every component holds its client as a `Redis`: the cluster client answers the
        # same commands, and the few places where they differ branch on isinstance
        # (publish, pubsub_client, _on_node, _info_of_master here).
        return cast(Redis, cluster)
    if not settings.redis_url:
        raise ConfigError("no Redis URL: set REDIS_URL or start through `streetfeed up`")
    # redis-py 5 leaves Redis.from_url's return unannotated.
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5,
                                   socket_timeout=timeout, health_check_interval=30)
    return client


async def publish(redis: Redis, channel: str, message: bytes) -> None:
    """PUBLISH, on a server or a cluster. The cluster client refuses it without a node to
    send it to: the node of the channel's slot does (a classic PUBLISH reaches the
    subscribers of every node of the cluster)."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()  # no-op unless a failure dropped the node map
        await redis.execute_command("PUBLISH", channel, message,
                                    target_nodes=redis.get_node_from_key(channel))
    else:
        await redis.publish(channel, message)


async def pubsub_client(redis: Redis) -> Redis:
    """A client of one server to SUBSCRIBE on (close it after): the cluster client has no
    Pub/Sub (redis-py 5), so it is a client of one of the cluster's nodes, which gets
    every node's classic PUBLISH over the cluster bus."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        node = redis.get_random_node()
        return Redis(connection_pool=ConnectionPool(connection_class=node.connection_class,
                                                    **node.connection_kwargs))
    return Redis(connection_pool=ConnectionPool(
        connection_class=redis.connection_pool.connection_class,
        **redis.connection_pool.connection_kwargs))


def arq_url(settings: Settings) -> str:
    """arq's queue: its own URL when given; with a cluster it must be given (arq's keys
    are not hash-tagged and its client is not cluster-aware)."""
    if settings.arq_redis_url:
        return settings.arq_redis_url
    if settings.redis_cluster_url:
        raise ConfigError("with REDIS_CLUSTER_URL, set ARQ_REDIS_URL to a plain Redis for arq")
    if not settings.redis_url:
        raise ConfigError("no Redis URL: set REDIS_URL or start through `streetfeed up`")
    return settings.redis_url


async def get_many(redis: Redis, keys: list[str]) -> list[bytes | None]:
    """GET of many keys in one round trip per node (MGET would cross slots in a cluster)."""
    if not keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())


async def hmget_many(redis: Redis, keys: list[str], *fields: str) -> list[list[bytes | None]]:
    """HMGET of the same fields from many hashes, in one round trip per node."""
    if not keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, list(fields))
        return list(await pipe.execute())


def acknowledged(reply: int | list[int] | Exception) -> bool:
    """Whether a WAIT reply (replicas) or a WAITAOF reply ([local, replicas]: the local
    fsync is what we ask of it) counts at least one acknowledgement; an error reply (e.g.
    WAITAOF on a server without AOF) counts none."""
    if isinstance(reply, Exception):
        return False
    return (reply[0] if isinstance(reply, list) else reply) >= 1


async def write_then_wait(redis: Redis, key: str, command: tuple[Any, ...],
                          wait: tuple[Any, ...],
                          fallback: tuple[tuple[Any, ...], ...] | None = None,
                          ) -> tuple[Any, Any, Any]:
    """Run a write, then WAIT/WAITAOF on the same connection (they only cover writes made
    on their own connection), on the node that holds `key`. When `wait` acknowledged
    nothing and `fallback` commands are given (a write in the same slot, then another
    wait), they run next, as a pipeline of their own: their write comes after ours in
    the node's replication stream and AOF, so a wait that covers it covers ours too.
    Returns the write's result, `wait`'s reply and the fallback's last reply (or None);
    a wait answered with an error (the write itself went through) has it as its reply."""
    result, reply = await _on_node(redis, key, [command, wait])
    if isinstance(result, Exception):
        raise result
    later = None
    if fallback is not None and not acknowledged(reply):
        later = (await _on_node(redis, key, list(fallback)))[-1]
    return result, reply, later


async def _on_node(redis: Redis, key: str, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Commands in one pipeline on one connection of the node that holds `key`; each
    reply in its place, an error reply as the exception."""
    if isinstance(redis, RedisCluster):
        node = redis.get_node_from_key(key)
        pipeline = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
        try:
            await node.execute_pipeline(pipeline)
        except _NODE_DOWN:
            # Bypassing the cluster client, we also bypass its recovery: as it does on
            # these errors, drop the node map so the next command learns the new one
            # (a replica promoted after a failover). The caller answers 503 meanwhile.
            redis.nodes_manager.startup_nodes.pop(node.name, None)
            await redis.aclose()
            raise
        return [c.result for c in pipeline]
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


async def _info_of_master(redis: Redis, key: str, section: str) -> dict[str, Any]:
    """One INFO section of the master that holds `key`."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()  # no-op unless a failure dropped the node map
        info = await redis.info(section, target_nodes=redis.get_node_from_key(key))
    else:
        info = await redis.info(section)
    # redis-py parses INFO into a dict whose values are numbers, strings or dicts (one per
    # replica, say), and types the reply Any.
    return cast("dict[str, Any]", info)


async def replicas_of(redis: Redis, key: str) -> int:
    """How many replicas are online (synced, streaming) with the master that holds `key`."""
    info = await _info_of_master(redis, key, "replication")
    return sum(1 for name, value in info.items()
               if name.startswith("slave") and isinstance(value, dict)
               and value.get("state") == "online")


async def aof_of(redis: Redis, key: str) -> bool:
    """Whether the master that holds `key` writes an AOF (what WAITAOF 1 0 waits for)."""
    return bool((await _info_of_master(redis, key, "persistence")).get("aof_enabled"))


def text(value: bytes | str) -> str:
    """A reply that is bytes or str depending on the client's decoding: as str."""
    return value.decode() if isinstance(value, bytes) else value
