"""Experiment: a gateway change measured before anyone makes it (docs/performance.md).

Not the product: the benchmark's `patched` scenario runs `streetfeed web` with
this module installed first, to measure what the change would buy before
anyone edits feed/. The product's files are untouched. Measured on ed20a2e:
no gain, worse tail latency (docs/performance.md, "Measured and rejected").

1. Coalesced writes (feed/hub.py `Connection.deliver`): frames for a live socket are
   appended to a per-socket list, and all lists are flushed once per event-loop
   iteration (`loop.call_soon`) with one `transport.write(b"".join(frames))` per
   socket. The feed reader dispatches a whole XREAD reply without awaiting, so under
   load a socket gets one write (one send() syscall) per batch instead of one per
   post; at light load a batch is one post and nothing changes. Order per socket is
   kept; every frame is still its own WebSocket message.

(Matching with the post's trigonometry done once per post, proposed too, is in the
product since 31f8b67; this module no longer patches it.)

    python -c "import bench.experiments.gateway_patch as p; p.run(['web', '--port', 'P'])"
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

_out: dict[Any, list[bytes]] = {}
_hub: list[Any] = []


def _flush() -> None:
    out = dict(_out)
    _out.clear()
    lagging = []
    for conn, frames in out.items():
        sink = conn.sink
        sink.write(frames[0] if len(frames) == 1 else b"".join(frames))
        if sink.buffered() > conn._buffer_max:
            lagging.append(conn)
    if lagging and _hub:
        for conn in lagging:
            _hub[0].drop_lagging(conn)


def install() -> None:
    from feed import hub as hub_module

    connection = hub_module.Connection
    pending_max = hub_module.PENDING_MAX

    def deliver(self: Any, frame: bytes) -> bool:
        if not self.live:
            self.pending.append(frame)
            return len(self.pending) <= pending_max
        frames = _out.get(self)
        if frames is None:
            if not _out:
                asyncio.get_running_loop().call_soon(_flush)
            _out[self] = [frame]
        else:
            frames.append(frame)
        return True  # the buffer is checked at the flush

    connection.deliver = deliver

    original_init = hub_module.Hub.__init__

    def hub_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _hub.append(self)

    hub_module.Hub.__init__ = hub_init


def run(argv: list[str]) -> None:
    install()
    from streetfeed.cli import main

    sys.exit(main(argv))
