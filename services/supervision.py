"""One way to keep a long-running task alive: every loop of every process runs under it.

A task that ends or fails while its process is not stopping is logged (a Redis
outage as a warning, anything else with its traceback), counted in
`streetfeed_task_restarts_total{task}`, and started again after a jittered,
growing delay. Screens run for weeks with nobody watching: no error may end a
loop silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from runtime import metrics
from storage.redis_conn import REDIS_DOWN

__all__ = ["Backoff", "sleep_or_stop", "supervised"]

log = logging.getLogger("streetfeed.supervision")


class Backoff:
    """Jittered exponential delays: `first`, doubling up to `cap`, each times 0.5-1.5 so
    that processes restarted together do not retry in step."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next * random.uniform(0.5, 1.5)
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop` is set; True if stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def supervised(name: str, body: Callable[[], Awaitable[object]], stop: asyncio.Event, *,
                     backoff: Backoff | None = None, component: str | None = None) -> None:
    """Run `body()` until `stop` is set, starting it again whenever it ends or fails.

    `component` names the part in `streetfeed_redis_reconnects_total` when the cause is
    a Redis outage. The delay grows while the body keeps failing, and starts small
    again once a run lasted longer than the largest delay (it had recovered).
    """
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        failure: BaseException | None = None
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = exc
        if stop.is_set():
            return
        if loop.time() - started > backoff.cap:
            backoff.reset()
        delay = backoff.next()
        metrics.TASK_RESTARTS.labels(name).inc()
        if isinstance(failure, REDIS_DOWN):
            if component is not None:
                metrics.REDIS_RECONNECTS.labels(component).inc()
            log.warning("%s: Redis unavailable (%r); restarting in %.1fs", name, failure, delay)
        elif failure is not None:
            log.error("%s failed; restarting in %.1fs", name, delay, exc_info=failure)
        else:
            log.error("%s ended unexpectedly; restarting in %.1fs", name, delay)
        if await sleep_or_stop(stop, delay):
            return
