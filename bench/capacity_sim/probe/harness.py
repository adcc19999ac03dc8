"""The probe's run: a Valkey, the steps against it, then one `streetfeed web` process."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.capacity_sim.probe.city import populate
from bench.capacity_sim.probe.common import cpu_s, free_port, say, started
from bench.capacity_sim.probe.gateway import probe_gateway
from bench.capacity_sim.probe.presence import presence_publish, probe_console_counts
from bench.capacity_sim.probe.store import probe_memory, probe_memory_deltas, probe_snapshots


def probe(rank: int = 1, sockets: int = 300,
          memory_only: bool = False) -> dict[str, float | str]:  # pragma: no cover
    """Measure PROBE's figures against a local Valkey and one `streetfeed web` process,
    loaded with the live posts of the country's town of that rank (1: the city);
    `memory_only`: the Redis memory figures alone (no process CPU, no web process)."""
    workdir = Path(tempfile.mkdtemp(prefix="capacity-probe-"))
    try:
        return asyncio.run(_probe(workdir, rank, sockets, memory_only))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _probe(workdir: Path, rank: int, n_sockets: int,
                 memory_only: bool) -> dict[str, float | str]:
    # pragma: no cover
    import socket as socketlib

    from redis import Redis as SyncRedis
    from redis.asyncio import Redis

    from streetfeed.embedded import server_binary

    sock = workdir / "redis.sock"
    args = [server_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(workdir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "no", "--loglevel", "warning"]
    out: dict[str, float | str] = {"measured": time.strftime("%Y-%m-%d") + ", "
                                   f"{os.cpu_count()} CPUs, `python -m bench.capacity "
                                   f"{'--probe-memory' if memory_only else '--probe'}`"}
    with started(args) as valkey:
        for _ in range(100):
            if sock.exists():
                break
            await asyncio.sleep(0.05)
        sync = SyncRedis(unix_socket_path=str(sock))
        redis = Redis(unix_socket_path=str(sock))
        for _ in range(100):
            try:
                if sync.ping():
                    break
            except Exception:
                await asyncio.sleep(0.05)
        try:
            if not memory_only:
                await _command_cost(sync, sock, valkey, out)
            say("loading the town's shops and live posts")
            city = await populate(redis, sync, out, rank)
            if memory_only:
                say("memory (MEMORY USAGE, then INFO memory deltas)")
                await probe_memory(redis, sync, city, out)
                await probe_memory_deltas(redis, sync, city, out)
                return out
            say("snapshot script")
            probe_snapshots(sync, redis, city, out)
            say("memory, remove script")
            await probe_memory(redis, sync, city, out)
            await probe_memory_deltas(redis, sync, city, out)
            say("presence PUBLISH")
            await presence_publish(sock, valkey, city, out)
            say("console: people watching counted")
            await probe_console_counts(city, out)
            port = free_port(socketlib)
            env = {**os.environ, "REDIS_URL": f"unix://{sock}",
                   "STREETFEED_ADDRESS_SOCKETS_PER_MINUTE": "10000000",
                   "STREETFEED_MAX_SOCKETS_PER_ADDRESS": "1000000",
                   "STREETFEED_ADDRESS_REQUESTS_PER_MINUTE": "10000000"}
            web_args = [sys.executable, "-m", "streetfeed.cli", "web", "--port", str(port)]
            with started(web_args, env) as web:
                await probe_gateway(redis, sync, sock, valkey, web, port, city, out,
                                    n_sockets)
        finally:
            await redis.aclose()
            sync.close()
    return out


async def _command_cost(sync: Any, sock: Path, valkey: Any,
                        out: dict[str, float | str]) -> None:  # pragma: no cover
    """One simple command, awaited alone as the product does, from 16 clients at once (a
    busy shard serves many); and from one client, one at a time, where every command wakes
    the server (the worst case, for reference)."""
    from redis.asyncio import Redis

    sync.set("probe:k", "v")
    before = cpu_s(valkey)
    for _ in range(20_000):
        sync.get("probe:k")
    out["valkey_us_per_cmd_sequential"] = round((cpu_s(valkey) - before) / 20_000 * 1e6, 2)
    clients = Redis(unix_socket_path=str(sock), max_connections=16)

    async def gets(n: int) -> None:
        for _ in range(n):
            await clients.get("probe:k")

    before = cpu_s(valkey)
    await asyncio.gather(*(gets(2_500) for _ in range(16)))
    out["valkey_us_per_cmd"] = round((cpu_s(valkey) - before) / 40_000 * 1e6, 2)
    await clients.aclose()
