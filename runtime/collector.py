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
- `Collector` freezes (`gc.freeze()`) what survives start-up and each full
  collection: long-lived objects (modules, the app, open sockets) are never walked
  again, so a full collection costs what changed since the last one. A frozen object
  is still freed when its count falls to zero; one in a reference cycle (the two above,
  of a socket frozen while open) is kept until the hourly thaw lets the next full
  collection free it.
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

    def __init__(self, thaw_interval_s: float = 3600.0) -> None:
        self.thaw_interval_s = thaw_interval_s
        # Per generation: collections seen, their total and longest pause, in seconds.
        self.collections = [0, 0, 0]
        self.pause_s = [0.0, 0.0, 0.0]
        self.max_pause_s = [0.0, 0.0, 0.0]
        self.freezes = self.thaws = 0
        # Pauses past LONG_PAUSE_S not logged yet: (time.time(), generation, seconds).
        self.long_pauses: list[tuple[float, int, float]] = []
        self._started = 0.0
        self._full_seen = 0

    def install(self) -> None:
        """Freeze what start-up made, and measure collections from now on."""
        gc.collect()
        self._freeze()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.unfreeze()

    def _freeze(self) -> None:
        self._full_seen = gc.get_stats()[2]["collections"]
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

    def after_full_collections(self) -> bool:
        """Freeze what survived the full collections since the last freeze; whether any ran.

        Not from the collector's callback, which runs in the middle of some allocation: on
        the event loop, between callbacks. What is frozen then is alive (the collection's
        survivors and the young objects since), and what dies later is still freed by
        reference counting; only an object that ends in a reference cycle stays, until
        the next thaw."""
        if gc.get_stats()[2]["collections"] == self._full_seen:
            return False
        self._freeze()
        return True

    def thaw(self) -> None:
        """Unfreeze everything: the next full collection walks it all once (one long pause
        an hour by default) and frees what froze in a reference cycle; its survivors are
        frozen again after it."""
        gc.unfreeze()
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
            self.after_full_collections()
            self.log_long_pauses()
            if self.thaw_interval_s > 0 and loop.time() - thawed_at >= self.thaw_interval_s:
                thawed_at = loop.time()
                self.thaw()
