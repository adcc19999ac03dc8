"""The cyclic garbage collector against the gateway's tail latency.

A full collection walks every object the collector tracks: with 10,000 feed sockets
that took ~330 ms of the event loop, and one landing in a latency window made its
p99 (docs/performance.md, "Garbage collection and the tail"). Two things keep it off
the loop here:

- A closed socket's own objects are freed by reference counting alone: the protocols
  break the cycles they would leave (feed/raw_ws.py, feed/hub.py, web/http_protocol.py).
  Two small cycles belong to the libraries under them and are left: CPython's selector
  transport keeps a bound method of itself as its read callback, and websockets' frame
  parser is a generator holding its protocol. Breaking them would take those libraries'
  private attributes; they hold no product object (the transport drops its protocol
  when the connection is lost) and are freed by the next collection of their generation.
- `Collector` freezes (`gc.freeze()`) what survives start-up and each collection:
  long-lived objects (modules, the app, open sockets) are never walked again, so a
  collection costs what changed since the last one. A frozen object is still freed when
  its count falls to zero; one in a reference cycle (the two above, of a socket frozen
  while open) is kept until the hourly thaw collects everything once.
- The young generation's threshold is raised (settings.gc_thresholds: 20,000 tracked
  objects more allocated than freed, CPython's is 700). Serving frees what it allocates,
  so at a steady number of sockets no collection runs at all: at 700 a collection ran
  every few milliseconds, each walking what was in flight, and the survivors reached the
  older generations (issue 19's quiet run, N = 10,000: 1,582 young and 139 middle
  collections, 0.6 + 1.0 s of one web process's CPU). Collections come with new sockets
  instead: one per ~600 sockets connected, each walking those (~30 ms), then frozen
  within a second. The middle generation waits for 50 of them (CPython: 10): during a
  reconnect storm (10,000 sockets in ~10 s) one ran at 10 and walked everything not
  frozen yet, 245 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

__all__ = ["Collector"]

log = logging.getLogger("streetfeed.gc")

# A collection pausing the loop longer than this is logged (with when): a delivery's p99
# target is 50 ms.
LONG_PAUSE_S = 0.02


class Collector:
    """Freezes long-lived objects so that full collections stay short (see the module's
    docstring), unfreezes them every `thaw_interval_s`; measures each collection's pause.
    """

    def __init__(self, thaw_interval_s: float = 3600.0,
                 thresholds: tuple[int, int, int] | None = None) -> None:
        self.thaw_interval_s = thaw_interval_s
        self.thresholds = thresholds
        # Per generation: collections seen, their total and longest pause, in seconds.
        self.collections = [0, 0, 0]
        self.pause_s = [0.0, 0.0, 0.0]
        self.max_pause_s = [0.0, 0.0, 0.0]
        self.freezes = self.thaws = 0
        # Pauses past LONG_PAUSE_S not logged yet: (time.time(), generation, seconds).
        self.long_pauses: list[tuple[float, int, float]] = []
        self._started = 0.0
        self._seen = 0

    def install(self) -> None:
        """Freeze what start-up made, and measure collections from now on."""
        if self.thresholds is not None:
            gc.set_threshold(*self.thresholds)
        gc.collect()
        self._freeze()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.unfreeze()

    def _freeze(self) -> None:
        self._seen = _collections_so_far()
        gc.freeze()
        self.freezes += 1

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.pause_s[generation] += pause
        self.max_pause_s[generation] = max(self.max_pause_s[generation], pause)
        if pause > LONG_PAUSE_S and len(self.long_pauses) < 100:
            self.long_pauses.append((time.time(), generation, pause))

    def after_collections(self) -> bool:
        """Freeze what survived the collections since the last freeze; whether any ran.

        Not from the collector's callback, which runs in the middle of some allocation: on
        the event loop, between callbacks. What is frozen then is alive (the collection's
        survivors and the young objects since), and what dies later is still freed by
        reference counting; only an object that ends in a reference cycle stays, until
        the next thaw."""
        if _collections_so_far() == self._seen:
            return False
        self._freeze()
        return True

    def thaw(self) -> None:
        """Unfreeze everything and collect it all at once (one long pause an hour by default:
        ~330 ms at 10,000 sockets), which frees what froze in a reference cycle; freeze
        the survivors again. At once: with young collections this rare, a full one might
        not come for days, and the next freeze would catch the cycles again."""
        gc.unfreeze()
        gc.collect()
        self._freeze()
        self.thaws += 1

    def log_long_pauses(self) -> None:
        """Said on the loop, not from the collector's callback (logging allocates)."""
        pauses, self.long_pauses = self.long_pauses, []
        for at, generation, pause in pauses:
            log.info("garbage collection of generation %d paused the loop %.0f ms at %s",
                     generation, pause * 1000,
                     time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}")

    def summary(self) -> str:
        return ", ".join(
            f"gen{g}: {self.collections[g]} collections, {self.pause_s[g] * 1000:.0f} ms in all, "
            f"longest {self.max_pause_s[g] * 1000:.1f} ms" for g in range(3)) + \
            f"; {self.freezes} freezes, {self.thaws} thaws, {gc.get_freeze_count():,} frozen"

    async def run(self, stop: asyncio.Event, check_s: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        thawed_at = loop.time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), check_s)
            self.after_collections()
            self.log_long_pauses()
            if self.thaw_interval_s > 0 and loop.time() - thawed_at >= self.thaw_interval_s:
                thawed_at = loop.time()
                self.thaw()


def _collections_so_far() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())
