"""Feed sockets on websockets' public sans-I/O protocol, without ASGI in the way.

`WS /ws/feed` handshakes are answered here and handed to the gateway
(`Gateway.attach`): no ASGI task, scope or Starlette object lives for the life
of a socket, and frames are written pre-encoded, synchronously, straight to the
transport. Going through ASGI `send` costs a coroutine, a dict and a per-socket
encode for every delivery (BENCH-NOTES: ~45k deliveries/s against ~67k), and a
task with its frames per socket costs memory (docs/performance.md).

/ws/feed and the console's /ws/shop (handed to the lifespan state's `console`, which
authenticates it: web.console) are the app's only WebSocket endpoints, so nothing else
is served here: an upgrade to another path is answered 404 (`not_found`, as an HTTP
request would be), and either path under an app without its handler in its lifespan
state 503 (`feed_unavailable`); neither reaches ASGI. A handshake websockets refuses
keeps the status it chose (400, 405, 414, 431...) but gets the contract's JSON error
instead of its text/plain (`_handshake_refusal`).

What uvicorn expects of its `ws` protocol class (its public `uvicorn.Config(ws=...)`
option; nothing of `uvicorn.protocols` is imported): on an `Upgrade: websocket`
request its HTTP protocol calls `RawFrameProtocol(config=, server_state=,
app_state=)`, then `connection_made(transport)` and `data_received(head)` with the
request head it has already parsed, and only then `transport.set_protocol(it)`.
While open the protocol is in `server_state.connections`, where uvicorn's Server
calls `shutdown()` on it when it stops and waits for it to leave (connection_lost).
`app_state` is the app's lifespan state. From `config` only the public options
`ws_max_size` (settings.max_ws_frame_bytes: a larger message is closed 1009) and
`ws_ping_interval` / `ws_ping_timeout` (uvicorn's defaults, 20 s and 20 s, unless the
config sets them: a protocol-level ping per socket, closed 1011 when unanswered) are
read; `ws_per_message_deflate` is not: frames are pre-encoded uncompressed.

The handshake is parsed and answered by one `websockets.server.ServerProtocol`
(`receive_data` / `events_received` / `accept` / `send_response` /
`data_to_send`); once the 101 is written the socket's frames go through a fresh
server-side `websockets.protocol.Protocol(Side.SERVER, state=OPEN)`, the public
sans-I/O class ServerProtocol extends with the handshake. The handshake's protocol
keeps the parsed request (headers and all, ~2.2 KiB and a dozen objects for the
cyclic GC to walk) in its parser for as long as it lives, and a ServerProtocol
started OPEN still keeps that parser's frame (a generator per socket): dropping the
one and starting the other as a plain Protocol keeps nothing of the handshake.
Bytes a client sends before our 101 (it may not) wait in `pending` and are read
after it.

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

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from websockets.datastructures import Headers
from websockets.exceptions import (
    HeaderLineTooLong,
    InvalidHeader,
    InvalidMethod,
    RequestLineTooLong,
    TooManyHeaders,
)
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.protocol import Side, State
from websockets.server import ServerProtocol

from rules.errors import error_body
from rules.proxies import Client, TrustedProxies, resolve
from runtime.lifespan import STATE_KEY
from runtime.logs import REQUEST_ID, log_access, request_id_from

FEED_PATH = "/ws/feed"
# The shopkeeper console's own socket (feed.console, answered by web.console).
CONSOLE_PATH = "/ws/shop"


class NativeHandler(Protocol):
    def on_message(self, data: bytes, text: bool) -> None: ...
    def on_closed(self) -> None: ...


class Attacher(Protocol):
    def attach(self, channel: NativeChannel, query: str, origin: str | None, host: str,
               address: str, scheme: str) -> NativeHandler: ...


class ConsoleAttacher(Protocol):
    """Takes /ws/shop handshakes: as Attacher, with the headers (the session cookie or
    the bearer token say which shop it is)."""

    def attach(self, channel: NativeChannel, query: str, headers: Headers,
               origin: str | None, host: str, address: str, scheme: str) -> NativeHandler: ...


GOING_AWAY_REASON = "server restarting: reconnect with your cursor"
# The access line's status for a peer that left before it was answered.
CLIENT_CLOSED = 499
# A closed socket that does not answer the closing handshake is dropped after this.
_CLOSE_GRACE_S = 1.0


class _QuietInfo(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' logger for our sockets, without its per-socket info lines ("connection
    open", "connection rejected", "connection closed"): each socket's access line says
    as much when it ends, and a restart's storm wrote 10,000 of them while the process
    was busiest (bench/storm.py). Its errors, and its debug lines when asked, go through."""

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        pass


# websockets logs through this logger (as under uvicorn's own WebSocket protocol).
_WS_LOG = _QuietInfo(logging.getLogger("uvicorn.error"), {})


_HEAD_TOO_LARGE = "the request's head (request line and headers) is too large"


def _handshake_refusal(status: int, exc: Exception | None,
                      ) -> tuple[int, bytes, list[tuple[str, str]]]:
    """websockets' refusal of a handshake (`status` as it chose it, `exc` why), as the
    contract's JSON error instead of its text/plain "Failed to open a WebSocket
    connection: ...": (status, body, headers)."""
    headers = [("Content-Type", "application/json")]
    if isinstance(exc, RequestLineTooLong | HeaderLineTooLong | TooManyHeaders):
        return status, error_body("headers_too_large", _HEAD_TOO_LARGE), headers
    if isinstance(exc, InvalidMethod):
        return status, error_body("method_not_allowed", "a WebSocket handshake is a GET"), \
            [*headers, ("Allow", "GET")]
    if isinstance(exc, InvalidHeader) and exc.name == "Sec-WebSocket-Version":
        # RFC 6455, 4.2.2: the refusal names the versions the server speaks.
        return status, error_body("unsupported_websocket_version",
                                  "this server speaks WebSocket version 13 (RFC 6455) only"), \
            [*headers, ("Sec-WebSocket-Version", "13")]
    message = "not a valid WebSocket handshake"
    if isinstance(exc, InvalidHeader):  # its name is one of websockets' own, never input
        message += f": {exc.name} header missing or invalid"
        if status == 426:
            headers.append(("Upgrade", "websocket"))
    return status, error_body("invalid_websocket_handshake", message), headers


class RawChannel:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: RawFrameProtocol) -> None:
        self._protocol = protocol

    def write(self, frame: bytes) -> None:
        p = self._protocol
        if not p.close_sent and not p.transport.is_closing():
            p.transport.write(frame)

    def write_many(self, frames: list[bytes]) -> None:
        # A socket's stream is frames back to back: one write, where a syscall per frame
        # was the largest cost of a storm's resumes after the reads (bench/storm.py).
        self.write(b"".join(frames))

    def buffered(self) -> int:
        return self._protocol.transport.get_write_buffer_size()

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake now; drop the connection if the peer stays silent."""
        p = self._protocol
        if p.close_sent or p.transport.is_closing():
            return
        if p.conn is None:  # not answered yet: an HTTP error, not a close frame
            p.refuse(500, b"", [])
            return
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
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
        handshake, response = p.handshake, p.response
        if p.transport.is_closing() or handshake is None or response is None:
            return False
        handshake.send_response(response)
        p.transport.write(b"".join(handshake.data_to_send()))
        p.answered(101)
        p.open()
        return True

    def reject(self, status: int, body: bytes, headers: Sequence[tuple[str, str]]) -> None:
        self._protocol.refuse(status, body, headers)


class RawFrameProtocol(asyncio.Protocol):
    """One feed socket, from the handshake uvicorn hands over to connection_lost."""

    __slots__ = ("access", "app_state", "close_sent", "close_timer", "config", "conn",
                 "connections", "frames", "handshake", "handshake_complete",
                 "last_ping_rtt", "loop", "native", "on_lagging", "pending", "ping_payload",
                 "ping_sent_at", "ping_timer", "pong_timer", "response", "text", "transport")

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.config = config
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.loop = _loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        # The handshake's protocol and answer, until the socket is open (or refused).
        self.handshake: ServerProtocol | None = ServerProtocol(max_size=config.ws_max_size,
                                                               logger=_WS_LOG)
        self.response: Response | None = None
        # The open socket's protocol (frames), made once the 101 is written.
        self.conn: WebSocketProtocol | None = None
        self.native: NativeHandler | None = None
        # Called by the transport past its high-water mark (the gateway's per-socket limit).
        self.on_lagging: Callable[[], object] | None = None
        # A feed socket's access line: (request id, time.monotonic() at the handshake,
        # status answered, 0 until then, path). A tuple of atoms: the cyclic GC stops
        # tracking it.
        self.access: tuple[str, float, int, str] | None = None
        self.handshake_complete = False
        self.close_sent = False
        self.close_timer: asyncio.TimerHandle | None = None
        # Bytes received after the handshake's request, before our 101.
        self.pending = b""
        # The message being received: its fragments, and whether it is text.
        self.frames: list[bytes | bytearray | memoryview] | None = None
        self.text = False
        # Keepalive (uvicorn's ws_ping_interval / ws_ping_timeout).
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.ping_payload: bytes | None = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            self._handshake_data(data)
            return
        conn.receive_data(data)
        events = conn.events_received()
        # websockets' own answers first (a pong, the echo of a close, or the close frame
        # of a connection it failed: a protocol error, a message over max_size), as its
        # asyncio implementation does; a trailing b"" is its "now close the connection".
        out = conn.data_to_send()
        if out:
            self.transport.write(b"".join(out))
            if not out[-1]:
                self.close_sent = True  # no message is taken after this
                if self.close_timer is not None:  # our close answered
                    self.close_timer.cancel()
                    self.close_timer = None
                self.transport.close()
        for event in events:
            if isinstance(event, Frame):  # always, once open
                self._frame(event)

    def eof_received(self) -> None:
        return None  # the transport closes itself

    def pause_writing(self) -> None:
        if self.on_lagging is not None:
            self.on_lagging()

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        # The connection was counted when made (as HTTP, before its upgrade).
        guard = getattr(self.app_state.get(STATE_KEY), "guard", None)
        if guard is not None:
            guard.release(self.transport)
        self._stop_keepalive()
        self.connections.discard(self)
        self.handshake_complete = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()
        self.handshake = self.response = None
        self.on_lagging = None
        native, self.native = self.native, None
        if native is not None:
            native.on_closed()
        access, self.access = self.access, None
        if access is not None:
            request_id, started, status, path = access
            log_access("WS", path, status or CLIENT_CLOSED, started, request_id)

    # --- uvicorn's Server -------------------------------------------------------------

    def shutdown(self) -> None:
        """Server stopping: "going away" (1001) with a resume hint, not uvicorn's bare 1012;
        a handshake not answered yet gets a 500, as under uvicorn's own protocol."""
        self._stop_keepalive()
        transport = self.transport
        if self.conn is not None and not self.close_sent and not transport.is_closing():
            self.conn.send_close(1001, GOING_AWAY_REASON)
            transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        elif self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
        elif not self.handshake_complete and self.handshake is not None \
                and not transport.is_closing():
            self.handshake_complete = self.close_sent = True
            self.handshake.send_response(self.handshake.reject(500, "Internal Server Error"))
            transport.write(b"".join(self.handshake.data_to_send()))
            self.answered(500)
        transport.close()

    # --- Handshake --------------------------------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        handshake = self.handshake
        if handshake is None or self.response is not None:
            # Before our 101 a client may not send; what it sends anyway waits for it.
            if not self.close_sent:
                self.pending += data
                if len(self.pending) > self.config.ws_max_size + 14:  # a frame and its head
                    self.transport.abort()
            return
        handshake.receive_data(data)
        for event in handshake.events_received():
            if isinstance(event, Request):
                self._connect(event)
                return
        exc = handshake.handshake_exc
        if isinstance(exc, RequestLineTooLong | HeaderLineTooLong | TooManyHeaders):
            handshake.data_to_send()  # websockets' text/plain answer: ours instead
            self.refuse(*_handshake_refusal(414 if isinstance(exc, RequestLineTooLong)
                                           else 431, exc))
        elif exc is not None:  # not an HTTP request: websockets answers nothing, nor do we
            self.handshake_complete = self.close_sent = True
            self.transport.write(b"".join(handshake.data_to_send()))
            self.transport.close()

    def _connect(self, request: Request) -> None:
        handshake = self.handshake
        assert handshake is not None
        raw_path, _, query = request.path.partition("?")
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        state = self.app_state.get(STATE_KEY)
        gateway: Attacher | None = getattr(state, "gateway", None)
        console: ConsoleAttacher | None = getattr(state, "console", None)
        self.access = (request_id, time.monotonic(), 0, raw_path)
        if raw_path not in (FEED_PATH, CONSOLE_PATH):
            self._refuse_plainly(404)
            return
        if (gateway if raw_path == FEED_PATH else console) is None:
            self._refuse_plainly(503)
            return
        response = handshake.accept(request)
        if response.status_code != 101:  # not a valid WebSocket upgrade
            self.refuse(*_handshake_refusal(response.status_code, handshake.handshake_exc))
            return
        response.headers["X-Request-ID"] = request_id
        self.response = response
        # The socket's setup task (admission, snapshot) logs under its request id.
        client = self._client(request.headers)
        token = REQUEST_ID.set(request_id)
        origin, host = request.headers.get("Origin"), request.headers.get("Host", "")
        try:
            if raw_path == CONSOLE_PATH:
                assert console is not None
                self.native = console.attach(NativeChannel(self), query, request.headers,
                                             origin, host, client.address, client.scheme)
            else:
                assert gateway is not None
                self.native = gateway.attach(NativeChannel(self), query, origin, host,
                                             client.address, client.scheme)
        finally:
            REQUEST_ID.reset(token)

    def _refuse_plainly(self, status: int) -> None:
        if status == 404:
            body = error_body("not_found", "no WebSocket endpoint at this path")
        else:
            body = error_body("feed_unavailable", "this server does not serve the feed")
        self.refuse(status, body,
                    [("Content-Type", "application/json")])

    def refuse(self, status: int, body: bytes, headers: Sequence[tuple[str, str]]) -> None:
        """Answer the handshake with an HTTP error instead of a 101, and close."""
        handshake = self.handshake
        if handshake is None or self.close_sent:
            return
        response = Response(status, HTTPStatus(status).phrase, Headers(headers), body)
        response.headers.setdefault("Connection", "close")
        response.headers.setdefault("Content-Length", str(len(body)))
        if self.access is not None:
            response.headers["X-Request-ID"] = self.access[0]
        self.handshake_complete = self.close_sent = True
        # Written as it is: the handshake may have queued (and closed on) its own answer.
        self.transport.write(response.serialize())
        self.answered(status)
        self.handshake = self.response = None
        self.pending = b""
        self.transport.close()

    def open(self) -> None:
        """The 101 is written: frames from now on, on a protocol that never saw the
        handshake (the handshake's one, request and all, is dropped)."""
        self.handshake = self.response = None
        self.handshake_complete = True
        self.conn = WebSocketProtocol(Side.SERVER, state=State.OPEN,
                                      max_size=self.config.ws_max_size, logger=_WS_LOG)
        pending, self.pending = self.pending, b""
        if pending:
            self.data_received(pending)
        self._start_keepalive()

    def answered(self, status: int) -> None:
        if self.access is not None:
            self.access = (self.access[0], self.access[1], status, self.access[3])

    def _client(self, headers: Headers) -> Client:
        """Address and scheme of the client, behind a trusted proxy or not (handshake only:
        nothing of it is kept but the address string the gateway counts under)."""
        peer = self.transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else ""
        scheme = "wss" if self.transport.get_extra_info("sslcontext") else "ws"
        trusted: TrustedProxies | None = getattr(self.app_state.get(STATE_KEY), "proxies", None)
        if trusted is None:
            trusted = TrustedProxies(())  # not our app: believe no forwarding header
        return resolve(address, scheme, ", ".join(headers.get_all("X-Forwarded-For")),
                       ", ".join(headers.get_all("X-Forwarded-Proto")), trusted)

    # --- Frames -----------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self.text = opcode is Opcode.TEXT
            if frame.fin:
                self._message(frame.data)
            else:
                self.frames = [frame.data]
        elif opcode is Opcode.CONT:
            if self.frames is not None:
                self.frames.append(frame.data)
                if frame.fin:
                    frames, self.frames = self.frames, None
                    self._message(b"".join(frames))
        elif opcode is Opcode.PONG:
            self._pong(frame.data)
        # PING and CLOSE: websockets' answers (a pong; the close echoed and the connection
        # ended) were written by data_received.

    def _message(self, data: bytes | bytearray | memoryview) -> None:
        native = self.native
        if native is not None and not self.close_sent:
            native.on_message(bytes(data), self.text)

    # --- Keepalive --------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        interval = self.config.ws_ping_interval
        if interval is not None and interval > 0:
            self._schedule_ping()

    def _stop_keepalive(self) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
        self.ping_payload = None

    def _schedule_ping(self) -> None:
        delay = max(0.0, self.config.ws_ping_interval - self.last_ping_rtt)
        self.ping_timer = self.loop.call_later(delay, self._send_ping)

    def _send_ping(self) -> None:
        self.ping_timer = None
        conn = self.conn
        if conn is None or self.close_sent or self.transport.is_closing():
            return
        # A random payload identifies this ping: stale or unsolicited pongs are ignored.
        self.ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        conn.send_ping(self.ping_payload)
        self.transport.write(b"".join(conn.data_to_send()))
        timeout = self.config.ws_ping_timeout
        if timeout is not None:
            self.pong_timer = self.loop.call_later(timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _pong(self, data: bytes | bytearray | memoryview) -> None:
        if self.ping_payload is None or bytes(data) != self.ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.ping_payload = None
        if self.pong_timer is not None:  # else the next ping is already scheduled
            self.pong_timer.cancel()
            self.pong_timer = None
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self.pong_timer = None
        self.ping_payload = None
        conn = self.conn
        if conn is None or self.close_sent or self.transport.is_closing():
            return
        conn.fail(1011, "keepalive ping timeout")
        self.transport.write(b"".join(conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
