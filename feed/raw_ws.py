"""Feed sockets on uvicorn's sans-I/O WebSocket protocol, without ASGI in the way.

`WS /ws/feed` handshakes are answered here and handed to the gateway
(`Gateway.attach`): no ASGI task, scope or Starlette object lives for the life
of a socket, and frames are written pre-encoded, synchronously, straight to the
transport. Going through ASGI `send` costs a coroutine, a dict and a per-socket
encode for every delivery (BENCH-NOTES: ~45k deliveries/s against ~67k), and a
task with its frames per socket costs memory (docs/performance.md). Every other
path goes through ASGI as usual.

ASGI's access-log middleware never sees these sockets either, so each one writes
its own access line when it ends (runtime.logs.log_access: method "WS", the
path without its query string, where positions live, 101 or the refusal's status,
the socket's life in duration_ms) under a request id from a well-formed
`X-Request-ID` or made here, echoed in the handshake's answer. One tuple per socket
holds what that line needs; the frame-writing path does not touch it.

uvicorn's proxy-headers middleware never sees these sockets: the client's address and
scheme behind a trusted proxy are read here, once, from the handshake's
X-Forwarded-For/-Proto by the rule HTTP requests follow (rules/proxies.py), and
handed to the gateway for its per-address limits and its same-origin check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import (
    STATUS_PHRASES,
    WebSocketsSansIOProtocol,
)
from websockets.datastructures import Headers
from websockets.http11 import Response
from websockets.protocol import Protocol as SansIOProtocol
from websockets.protocol import State

from rules.proxies import Client, TrustedProxies, resolve
from runtime.lifespan import STATE_KEY
from runtime.logs import REQUEST_ID, log_access, request_id_from

FEED_PATH = "/ws/feed"


class NativeHandler(Protocol):
    def on_message(self, data: bytes, text: bool) -> None: ...
    def on_closed(self) -> None: ...


class Attacher(Protocol):
    def attach(self, channel: NativeChannel, query: str, origin: str | None, host: str,
               address: str, scheme: str) -> NativeHandler: ...
GOING_AWAY_REASON = "server restarting: reconnect with your cursor"
# The access line's status for a peer that left before it was answered.
CLIENT_CLOSED = 499
# A closed socket that does not answer the closing handshake is dropped after this.
_CLOSE_GRACE_S = 1.0


class RawChannel:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: RawFrameProtocol) -> None:
        self._protocol = protocol

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
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        if p.read_paused:
            p.read_paused = False
            p.transport.resume_reading()
        p.close_timer = p.loop.call_later(_CLOSE_GRACE_S, p.transport.abort)


class NativeChannel(RawChannel):
    """A RawChannel that also completes (or refuses) the handshake it was handed."""

    __slots__ = ()

    def fast_path(self, high_water: int, on_lagging: Callable[[], object]) -> Any:
        """transport.write, with `on_lagging` called once the buffer passes `high_water`.

        Frames written this way skip RawChannel.write's checks: the hub stops writing
        to a socket before closing it, and a peer's close ends in connection_lost."""
        p = self._protocol
        p.on_lagging = on_lagging
        p.transport.set_write_buffer_limits(high=high_water)
        return p.transport.write

    def accept(self) -> bool:
        p = self._protocol
        if p.transport.is_closing():
            return False
        p.handshake_complete = True
        p.conn.send_response(p.response)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.answered(101)
        # The handshake's request and response (headers and all) are not needed again.
        p.request = p.response = None
        _restart_frame_parser(p.conn)
        p.start_keepalive()
        return True

    def reject(self, status: int, body: bytes, headers: Sequence[tuple[str, str]]) -> None:
        p = self._protocol
        response = Response(status, STATUS_PHRASES[status], Headers(headers), body)
        response.headers.setdefault("Connection", "close")
        response.headers.setdefault("Content-Length", str(len(body)))
        if p.access is not None:
            response.headers["X-Request-ID"] = p.access[0]
        p.handshake_complete = p.close_sent = True
        p.conn.send_response(response)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.answered(status)
        p.transport.close()


def _restart_frame_parser(conn: Any) -> None:
    """Drop websockets' handshake parser for a plain frame parser.

    The handshake parser is a generator whose frame holds the parsed request (headers
    and all, ~2.2 KiB and a dozen objects for the cyclic GC to walk) for the socket's
    whole life, while it waits in the frame parser it delegates to. A fresh frame
    parser is the same state without it, as long as nothing is buffered: the client
    may not send a frame before it has our 101, so the old one waits for a frame's
    first byte too."""
    if conn.reader.buffer or conn.state is not State.OPEN:
        return
    conn.parser = SansIOProtocol.parse(conn)
    next(conn.parser)


class _Unused:
    """Stands in for the ASGI queue and write-flow event a native socket never uses:
    each costs ~2 KiB per socket, and only the ASGI path reads them."""

    __slots__ = ()

    def put_nowait(self, item: object) -> None:
        pass

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


_UNUSED = _Unused()


class RawFrameProtocol(WebSocketsSansIOProtocol):
    native: NativeHandler | None = None
    # Called by the transport past its high-water mark (the gateway's per-socket limit).
    on_lagging: Callable[[], object] | None = None
    # A feed socket's access line: (request id, time.monotonic() at the handshake,
    # status answered, 0 until then). A tuple of atoms: the cyclic GC stops tracking it.
    access: tuple[str, float, int] | None = None

    def answered(self, status: int) -> None:
        if self.access is not None:
            self.access = (self.access[0], self.access[1], status)

    def pause_writing(self) -> None:
        if self.on_lagging is not None:
            self.on_lagging()
        super().pause_writing()

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

    def send_receive_event_to_app(self) -> None:
        if self.native is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if not self.close_sent:
            self.native.on_message(bytes(data), self.curr_msg_data_type == "text")

    def connection_lost(self, exc: Exception | None) -> None:
        # The connection was counted when made (as HTTP, before its upgrade).
        guard = getattr(self.app_state.get(STATE_KEY), "guard", None)
        if guard is not None:
            guard.release(self.transport)
        super().connection_lost(exc)
        self.on_lagging = None
        native, self.native = self.native, None
        if native is not None:
            native.on_closed()
        access, self.access = self.access, None
        if access is not None:
            request_id, started, status = access
            log_access("WS", FEED_PATH, status or CLIENT_CLOSED, started, request_id)

    def _client(self, headers: Headers) -> Client:
        """Address and scheme of the client, behind a trusted proxy or not (handshake only:
        nothing of it is kept but the address string the gateway counts under)."""
        peer = self.client[0] if self.client else ""
        trusted: TrustedProxies | None = getattr(self.app_state.get(STATE_KEY), "proxies", None)
        if trusted is None:
            trusted = TrustedProxies(())  # not our app: believe no forwarding header
        return resolve(peer, self.scheme, ", ".join(headers.get_all("X-Forwarded-For")),
                       ", ".join(headers.get_all("X-Forwarded-Proto")), trusted)

    def handle_connect(self, event: Any) -> None:
        raw_path, _, query = event.path.partition("?")
        gateway: Attacher | None = getattr(self.app_state.get(STATE_KEY), "gateway", None)
        if raw_path == FEED_PATH and gateway is not None:
            request_id = request_id_from(event.headers.get("X-Request-ID"))
            self.access = (request_id, time.monotonic(), 0)
            self.request = event
            self.response = self.conn.accept(event)
            self.response.headers["X-Request-ID"] = request_id
            self.handshake_initiated = True
            if self.response.status_code != 101:  # not a valid WebSocket upgrade
                self.handshake_complete = self.close_sent = True
                self.conn.send_response(self.response)
                self.transport.write(b"".join(self.conn.data_to_send()))
                self.answered(self.response.status_code)
                self.transport.close()
                return
            self.queue = self.writable = _UNUSED  # type: ignore[assignment]
            # The socket's setup task (admission, snapshot) logs under its request id.
            client = self._client(event.headers)
            token = REQUEST_ID.set(request_id)
            try:
                self.native = gateway.attach(NativeChannel(self), query,
                                             event.headers.get("Origin"),
                                             event.headers.get("Host", ""),
                                             client.address, client.scheme)
            finally:
                REQUEST_ID.reset(token)
            return
        super().handle_connect(event)
