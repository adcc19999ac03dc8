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
  of a socket frozen while open) is kept until a thaw lets the next full collection free
  it: every hour, and as soon as `thaw_after_closed` sockets have closed since a freeze
  caught open ones. Under churn nearly every closed socket had been frozen (full
  collections come every few seconds to minutes) and leaves ~3-6 KiB frozen:
  `python -m bench.memory --churn 10 --churn-n 2000` measured +63 MiB RSS after 20,000
  (a cold attacker +127 MiB, with freezes after every collection); the count bounds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Collector", "SocketCounts"]

log = logging.getLogger("streetfeed.gc")

# A collection pausing the loop longer than this is logged (with when): a delivery's p99
# target is 50 ms.
LONG_PAUSE_S = 0.02


@dataclass(slots=True)
class SocketCounts:
    """The feed sockets and event streams open now and closed so far in this process:
    feed.gateway keeps them, the collector reads them."""

    open: int = 0
    closed: int = 0


class Collector:
    """Freezes long-lived objects so that full collections stay short (see the module's
    docstring), unfreezes them every `thaw_interval_s`; measures each collection's pause.
    """

    def __init__(self, thaw_interval_s: float = 3600.0, thaw_after_closed: int = 0,
                 sockets: SocketCounts | None = None) -> None:
        """With `sockets` (feed.gateway's counts), a thaw also comes once
        `thaw_after_closed` (> 0) have closed since the first freeze after the last thaw
        that caught open ones."""
        self.thaw_interval_s = thaw_interval_s
        self.thaw_after_closed = thaw_after_closed
        self._sockets = sockets
        # Sockets closed so far when a freeze since the last thaw first caught open ones.
        self._closed_at_freeze: int | None = None
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
        if self._sockets is not None and self._closed_at_freeze is None \
                and self._sockets.open:
            self._closed_at_freeze = self._sockets.closed

    def frozen_then_closed(self) -> int:
        """At most how many sockets have closed since a freeze caught them open (each may
        leave its transport's cycle frozen): the closes since the first freeze that caught
        open ones, since the last thaw. It counts a socket opened after that freeze too;
        with freezes every few seconds to minutes, few."""
        if self._sockets is None or self._closed_at_freeze is None:
            return 0
        return self._sockets.closed - self._closed_at_freeze

    def thaw_due(self, since_thaw_s: float) -> bool:
        if self.thaw_interval_s > 0 and since_thaw_s >= self.thaw_interval_s:
            return True
        return 0 < self.thaw_after_closed <= self.frozen_then_closed()

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
        an hour, or per `thaw_after_closed` sockets closed under churn) and frees what
        froze in a reference cycle; its survivors are frozen again after it."""
        gc.unfreeze()
        self.thaws += 1
        self._closed_at_freeze = None

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
            if self.thaw_due(loop.time() - thawed_at):
                thawed_at = loop.time()
                self.thaw()
