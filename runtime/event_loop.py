"""The event loop a serving process runs on: uvloop's by default.

The gateway's time is the transport's write (docs/performance.md): uvloop's transports
are libuv's, written in C, and keep no Python objects per socket for the collector to
walk. In one benchmark sitting (N = 10,000, three repetitions each, uvloop beside a
uvloop ceiling) it brought the half-saturation p99 from 77.5/77.7/43.9 ms to
93.2/31.7/24.7 and 80.0/33.8/44.5 ms, and the busy p99's median from 64.7 to 45 ms.
A well-kept library (MagicStack, the loop uvicorn itself prefers) over tuning asyncio's
selector loop by hand. STREETFEED_EVENT_LOOP=asyncio runs asyncio's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runtime.settings import Settings

__all__ = ["loop_factory"]


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """For `asyncio.Runner(loop_factory=...)`: None is asyncio's default loop."""
    if settings.event_loop == "asyncio":
        return None
    import uvloop  # only where it runs: the test suite's own loop is asyncio's

    return uvloop.new_event_loop
