"""Writing pre-encoded frames straight to a socket's transport.

uvicorn's sans-I/O WebSocket protocol, extended to hand the ASGI app a
`RawChannel` (scope extension `streetfeed.raw`): a synchronous write of ready
frame bytes, the transport's buffered size and a close that never waits.
Going through ASGI `send` costs a coroutine, a dict and a per-socket encode for
every delivery; BENCH-NOTES measured ~45k deliveries/s that way against ~67k
writing one pre-encoded frame per transport. See docs/performance.md.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION = "streetfeed.raw"
GOING_AWAY_REASON = "server restarting: reconnect with your cursor"
# A closed socket that does not answer the closing handshake is dropped after this.
_CLOSE_GRACE_S = 1.0


class RawChannel:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: RawFrameProtocol) -> None:
        self._protocol = protocol

    @property
    def open(self) -> bool:
        p = self._protocol
        return not p.close_sent and not p.transport.is_closing()

    def write(self, frame: bytes) -> None:
        p = self._protocol
        if not p.close_sent and not p.transport.is_closing():
            p.transport.write(frame)

    def buffered(self) -> int:
        return self._protocol.transport.get_write_buffer_size()

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake now; drop the connection if the peer stays silent."""
        p = self._protocol
        if p.close_sent or p.transport.is_closing():
            return
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        if p.read_paused:
            p.read_paused = False
            p.transport.resume_reading()
        p.close_timer = p.loop.call_later(_CLOSE_GRACE_S, p.transport.abort)


class RawFrameProtocol(WebSocketsSansIOProtocol):
    def shutdown(self) -> None:
        """Server stopping: "going away" (1001) with a resume hint, not uvicorn's bare 1012."""
        if self.handshake_complete and not self.close_sent and not self.transport.is_closing():
            self.stop_keepalive()
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1001})
            self.conn.send_close(1001, GOING_AWAY_REASON)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()
            return
        super().shutdown()

    async def send(self, message: Any) -> None:
        await super().send(message)
        # A refusal answered as plain HTTP (429, 403) ends the exchange: without this,
        # uvicorn logs "returned without completing handshake" as if the app had failed.
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        # The ASGI task was created above but has not run yet: it will see the channel.
        if scope is not None and not self.close_sent:
            scope["extensions"][EXTENSION] = RawChannel(self)
