"""Runs the process kinds (web, enricher, scheduler, pusher, demo) under one supervisor.

`streetfeed up` runs web and the demo in its own process and the enricher, the
scheduler, the pusher and any further web workers as child processes, each started again
whenever it dies, each dying with it; the Procfile runs each kind on its own.
Each part is `run(stop)` and restarts what it runs by itself (`supervised`);
a part that ends or fails anyway stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
from arq.connections import ArqRedis
from starlette.types import ASGIApp

from feed.raw_ws import RawFrameProtocol
from rules.clock import Clock, SystemClock
from rules.moderation import Policy
from runtime import metrics
from runtime.collector import Collector, SocketCounts
from runtime.processes import PARENT_ENV
from runtime.settings import Settings
from services.supervision import Backoff, sleep_or_stop, supervised
from storage.redis_conn import REDIS_DOWN, arq_url, open_redis
from storage.vapid import load_vapid_key
from streetfeed.embedded import EmbeddedServer
from web.app import create_app
from web.http_protocol import GuardedHttpProtocol
from workers.enricher import Enricher
from workers.pusher import Pusher
from workers.scheduler import make_worker

__all__ = ["default_parts", "embedded_server_part", "supervise", "uvicorn_config"]

log = logging.getLogger("streetfeed")

# A part of a run (a coroutine function: supervise() makes each a task).
Part = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
# How often we look whether the embedded server still runs.
EMBEDDED_WATCH_S = 0.5


def uvicorn_config(settings: Settings, app: ASGIApp, *, port: int | None = None,
                   log_level: str | None = None) -> uvicorn.Config:
    """uvicorn's configuration for our app; `port` (else settings') and `log_level` (else
    uvicorn's default) are what tests and benchmarks change."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port if port is None else port,
        # uvicorn's httptools protocol with connection caps and head/body time limits.
        http=GuardedHttpProtocol,
        timeout_keep_alive=settings.keepalive_timeout_s,
        # Off: X-Forwarded-For/-Proto are read by our own rule (rules/proxies.py,
        # web/forwarded.py), the one feed sockets follow too (they bypass ASGI).
        proxy_headers=False,
        # Frames written straight to transports (feed.raw_ws); compression off: it
        # costs memory per socket and CPU per frame for ~300-byte JSON.
        ws=RawFrameProtocol,
        ws_max_size=settings.max_ws_frame_bytes,
        ws_per_message_deflate=False,
        backlog=4096,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        log_level=log_level,
    )


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket several processes can bind at once: the kernel spreads
    connections over them (SO_REUSEPORT), so N gateways share one port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def web_part(settings: Settings, clock: Clock, policy: Policy, *,
             reuse_port: bool = False) -> Part:
    async def run(stop: asyncio.Event) -> None:
        counts = SocketCounts()
        app = create_app(settings, clock=clock, policy=policy, socket_counts=counts)
        server = uvicorn.Server(uvicorn_config(settings, app))
        sockets = [reuse_port_socket(settings.host, settings.port)] if reuse_port else None
        serving = asyncio.create_task(server.serve(sockets=sockets))
        collecting = asyncio.create_task(_collector(settings, server, counts, stop))
        await asyncio.wait([serving, asyncio.create_task(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        try:
            await serving
        finally:
            collecting.cancel()
            await asyncio.gather(collecting, return_exceptions=True)
    return run


async def _collector(settings: Settings, server: uvicorn.Server, counts: SocketCounts,
                     stop: asyncio.Event) -> None:
    """Once the app has started (modules, app state, libraries: all long-lived), freeze it
    and keep full collections short while it serves (runtime/collector.py)."""
    if not settings.gc_freeze:
        return
    while not server.started:
        if await sleep_or_stop(stop, 0.05):
            return
    collector = Collector(settings.gc_thaw_interval_s, settings.gc_thaw_after_closed, counts)
    collector.install()
    try:
        await supervised("gc", lambda: collector.run(stop), stop)
    finally:
        log.info("garbage collection: %s", collector.summary())
        collector.uninstall()


def child_part(name: str, settings: Settings, args: list[str]) -> Part:
    """A `streetfeed` child process, started again whenever it exits while we run (with
    backoff), and dying with us however we end (runtime.processes.die_with_parent)."""
    # Our secret, so that every process of the run keys client addresses alike (shared
    # rate limits): in their environment only, never on disk.
    env = {**os.environ, PARENT_ENV: str(os.getpid()), **settings.child_environment()}

    async def run(stop: asyncio.Event) -> None:
        async def once() -> None:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "streetfeed.cli", *args, env=env,
                # Its own session: Ctrl-C reaches us only, and we stop it in order.
                start_new_session=True)
            try:
                exited = asyncio.create_task(child.wait())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
            finally:
                if child.returncode is None:
                    child.send_signal(signal.SIGTERM)
                    await child.wait()
                # Its live gauges (sockets_open) stop counting; its counters stay summed.
                metrics.process_dead(child.pid)
            if not stop.is_set():
                log.error("%s (pid %d) exited with status %s", name, child.pid,
                          child.returncode)
        await supervised(name, once, stop, backoff=Backoff(0.5, 10.0))
    return run


def embedded_server_part(server: EmbeddedServer) -> Part:
    """While we run, start the embedded server again from its AOF whenever it dies (a
    crash, kill -9, the OOM killer), with jittered backoff, logged and counted; the rest
    reconnects by itself. Only for a server this process started (and stops, last)."""
    async def run(stop: asyncio.Event) -> None:
        backoff = Backoff(0.5, 10.0)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            while server.exit_status() is None:
                if await sleep_or_stop(stop, EMBEDDED_WATCH_S):
                    return
            if loop.time() - started > backoff.cap:
                backoff.reset()
            delay = backoff.next()
            log.error("embedded server exited (status %s); starting it again from its AOF "
                      "in %.1fs", server.exit_status(), delay)
            metrics.TASK_RESTARTS.labels("redis").inc()
            if await sleep_or_stop(stop, delay):
                return
            # Spawned from this (the main) thread: the parent-death signal follows the thread.
            server.respawn()
            deadline = loop.time() + 10.0
            while server.exit_status() is None and not server.answers():
                if loop.time() > deadline or await sleep_or_stop(stop, 0.02):
                    break
            if server.answers():
                log.warning("embedded server running again")
    return run


def web_workers_part(settings: Settings, workers: int) -> Part:
    """N web/gateway processes on one port; each needs nothing but the same Redis."""
    args = ["web", "--host", settings.host, "--port", str(settings.port), "--reuse-port"]
    parts = [child_part(f"web-{i}", settings, args) for i in range(workers)]

    async def run(stop: asyncio.Event) -> None:
        await asyncio.gather(*(part(stop) for part in parts))
    return run


def enricher_part(settings: Settings, clock: Clock, policy: Policy) -> Part:
    async def run(stop: asyncio.Event) -> None:
        redis = open_redis(settings)
        # One consumer per region: each region's `in` stream lives in its own slot.
        enrichers = [Enricher(redis, settings, clock, policy, region=region)
                     for region in settings.region_names]
        try:
            await asyncio.gather(*(e.run(stop) for e in enrichers))
        finally:
            await redis.aclose()
    return run


def scheduler_part(settings: Settings, clock: Clock) -> Part:
    async def run(stop: asyncio.Event) -> None:
        data = open_redis(settings)

        async def once() -> None:
            # arq's worker ends on a lost connection: each run is a fresh one.
            pool = ArqRedis.from_url(arq_url(settings))
            worker = make_worker(pool, settings, clock, data=data)
            task = asyncio.create_task(worker.async_run())
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                with contextlib.suppress(*REDIS_DOWN):
                    await worker.close()
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, *REDIS_DOWN):
                    await pool.aclose()
            if task.done() and not task.cancelled():
                task.result()  # its failure, for `supervised` to log and retry

        try:
            await supervised("scheduler", once, stop, backoff=Backoff(0.5, 10.0),
                             component="scheduler")
        finally:
            await data.aclose()
    return run


def pusher_part(settings: Settings, clock: Clock) -> Part:
    """Alerts for followed shops (workers.pusher), signed with the deployment's VAPID key
    (the same the web processes hand out: the data dir's, or the environment's)."""
    async def run(stop: asyncio.Event) -> None:
        redis = open_redis(settings)
        try:
            await Pusher(redis, settings, clock, load_vapid_key(settings)).run(stop)
        finally:
            await redis.aclose()
    return run


def demo_part(settings: Settings, clock: Clock, policy: Policy) -> Part:
    from streetfeed.demo import run_simulator

    async def run(stop: asyncio.Event) -> None:
        await supervised("demo", lambda: run_simulator(settings, clock, policy, stop), stop,
                         backoff=Backoff(1.0, 10.0), component="demo")
    return run


async def supervise(parts: dict[str, Part]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = {asyncio.create_task(part(stop), name=name): name for name, part in parts.items()}
    try:
        done, _ = await asyncio.wait([*tasks, asyncio.create_task(stop.wait())],
                                     return_when=asyncio.FIRST_COMPLETED)
        for task, name in tasks.items():
            if task in done and task.exception() is not None:
                log.error("%s failed: %r", name, task.exception())
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def default_parts(settings: Settings, *, web: bool = True, enricher: bool = True,
                  scheduler: bool = True, pusher: bool = True, demo: bool = False,
                  workers: int = 1, reuse_port: bool = False,
                  children: bool = False) -> dict[str, Part]:
    """The parts of one command. `children`: the enricher, scheduler and pusher run as
    supervised child processes (`streetfeed up`), so that one crashing is restarted on its
    own."""
    clock, policy = SystemClock(), settings.moderation_policy()
    parts: dict[str, Part] = {}
    if web and workers > 1:
        parts["web"] = web_workers_part(settings, workers)
    elif web:
        parts["web"] = web_part(settings, clock, policy, reuse_port=reuse_port)
    if enricher:
        parts["enricher"] = (child_part("enricher", settings, ["enricher"]) if children
                             else enricher_part(settings, clock, policy))
    if scheduler:
        parts["scheduler"] = (child_part("scheduler", settings, ["scheduler"]) if children
                              else scheduler_part(settings, clock))
    if pusher:
        parts["pusher"] = (child_part("pusher", settings, ["pusher"]) if children
                           else pusher_part(settings, clock))
    if demo:
        parts["demo"] = demo_part(settings, clock, policy)
    return parts
