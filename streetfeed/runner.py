"""Runs the process kinds (web, enricher, scheduler, demo) under one supervisor.

`streetfeed up` runs all of them in one process for a laptop; the Procfile runs
each kind in its own process. Each part is `run(stop)`; the first to fail
stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

import uvicorn
from arq.connections import ArqRedis

from feed.raw_ws import RawFrameProtocol
from streetfeed import metrics
from streetfeed.clock import Clock, SystemClock
from streetfeed.moderation import Policy
from streetfeed.redis_conn import REDIS_DOWN, arq_url, open_redis
from streetfeed.settings import Settings
from web.app import create_app
from workers.enricher import Enricher
from workers.scheduler import make_worker, schedule_expiry

log = logging.getLogger("streetfeed")

Part = Callable[[asyncio.Event], Awaitable[None]]


def uvicorn_config(settings: Settings, app: object, **overrides: object) -> uvicorn.Config:
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        # Frames written straight to transports (feed.raw_ws); compression off: it
        # costs memory per socket and CPU per frame for ~300-byte JSON.
        "http": "httptools",
        "ws": RawFrameProtocol,
        "ws_max_size": settings.max_ws_frame_bytes,
        "ws_per_message_deflate": False,
        "backlog": 4096,
        "lifespan": "on",
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


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
        server = uvicorn.Server(uvicorn_config(settings, create_app(settings, clock=clock,
                                                                    policy=policy)))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        sockets = [reuse_port_socket(settings.host, settings.port)] if reuse_port else None
        serving = asyncio.create_task(server.serve(sockets=sockets))
        await asyncio.wait([serving, asyncio.create_task(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving
    return run


def web_workers_part(settings: Settings, workers: int) -> Part:
    """N web/gateway processes on one port; each needs nothing but the same Redis."""
    async def run(stop: asyncio.Event) -> None:
        env = {**os.environ}
        if settings.redis_url:
            env["REDIS_URL"] = settings.redis_url
        args = [sys.executable, "-m", "streetfeed.cli", "web", "--host", settings.host,
                "--port", str(settings.port), "--reuse-port"]
        children: list[asyncio.subprocess.Process] = []

        async def spawn() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(*args, env=env)

        children = [await spawn() for _ in range(workers)]
        try:
            while not stop.is_set():
                waits = {asyncio.create_task(c.wait()): i for i, c in enumerate(children)}
                stopping = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait([*waits, stopping],
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in waits:
                    task.cancel()
                stopping.cancel()
                for task in done:
                    if task in waits and not stop.is_set():
                        i = waits[task]
                        log.warning("web worker %d exited (%s); starting another", i,
                                    children[i].returncode)
                        metrics.process_dead(children[i].pid)
                        children[i] = await spawn()
        finally:
            for child in children:
                if child.returncode is None:
                    child.send_signal(signal.SIGTERM)
            await asyncio.gather(*(c.wait() for c in children))
    return run


def enricher_part(settings: Settings, clock: Clock, policy: Policy) -> Part:
    async def run(stop: asyncio.Event) -> None:
        redis = open_redis(settings)
        pool = ArqRedis.from_url(arq_url(settings))

        def _expiry_for(region: str):  # type: ignore[no-untyped-def]
            async def expiry(post_id: str, when):  # type: ignore[no-untyped-def]
                await schedule_expiry(pool, region, post_id, when)
            return expiry

        # One consumer per region: each region's `in` stream lives in its own slot.
        enrichers = [Enricher(redis, settings, clock, policy, schedule_expiry=_expiry_for(region),
                              region=region) for region in settings.region_names]
        try:
            await asyncio.gather(*(e.run(stop) for e in enrichers))
        finally:
            await redis.aclose()
            await pool.aclose()
    return run


def scheduler_part(settings: Settings, clock: Clock) -> Part:
    async def run(stop: asyncio.Event) -> None:
        backoff = 0.5
        data = open_redis(settings)
        while not stop.is_set():
            pool = ArqRedis.from_url(arq_url(settings))
            worker = make_worker(pool, settings, clock, data=data)
            task = asyncio.create_task(worker.async_run())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failure = task.exception() if task.done() else None
            with contextlib.suppress(*REDIS_DOWN):
                await worker.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_DOWN):
                await task
            with contextlib.suppress(*REDIS_DOWN):
                await pool.aclose()
            if stop.is_set():
                await data.aclose()
                return
            if failure is not None and not isinstance(failure, REDIS_DOWN):
                raise failure
            # arq's worker ends on a lost connection: start a fresh one, with backoff.
            metrics.REDIS_RECONNECTS.labels("scheduler").inc()
            log.warning("scheduler: Redis unavailable (%r); restarting in %.1fs", failure, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 10.0)
    return run


def demo_part(settings: Settings, clock: Clock, policy: Policy) -> Part:
    from streetfeed.demo import run_simulator

    async def run(stop: asyncio.Event) -> None:
        await run_simulator(settings, clock, policy, stop)
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
        for task in done:
            if task in tasks and task.exception() is not None:
                log.error("%s failed: %r", tasks[task], task.exception())
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def default_parts(settings: Settings, *, web: bool = True, enricher: bool = True,
                  scheduler: bool = True, demo: bool = False, workers: int = 1,
                  reuse_port: bool = False) -> dict[str, Part]:
    clock, policy = SystemClock(), Policy.from_settings(settings)
    parts: dict[str, Part] = {}
    if web and workers > 1:
        parts["web"] = web_workers_part(settings, workers)
    elif web:
        parts["web"] = web_part(settings, clock, policy, reuse_port=reuse_port)
    if enricher:
        parts["enricher"] = enricher_part(settings, clock, policy)
    if scheduler:
        parts["scheduler"] = scheduler_part(settings, clock)
    if demo:
        parts["demo"] = demo_part(settings, clock, policy)
    return parts
