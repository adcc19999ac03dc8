"""uvicorn's HTTP protocol behind time limits and connection caps (runtime/connections.py).

uvicorn closes a keep-alive connection idle after a response, but nothing else:
a connection that never sends a byte, a request head sent a byte at a time, a
body that stalls or a response the client never reads is held for ever, and
20,000 of them from one client used every file descriptor of the process. Here
each connection is counted when made, must send each request head within the
guard's `head_timeout_s` (from the connection, then from the head's first byte:
between requests uvicorn's keep-alive timeout closes an idle connection), its body
at the guard's minimum rate, and read its responses (a write buffer stuck past its
high-water mark for `write_stall_timeout_s` drops it).

`GuardedHttpProtocol` is the asyncio protocol the transport calls, wrapped around
the protocol class uvicorn's public `http="httptools"` option names (resolved as
uvicorn resolves that option, and built with the keyword arguments uvicorn gives
any `http` class: config, server_state, app_state). Nothing of `uvicorn.protocols`
is imported or subclassed: it sees only what the transport sees (connection made,
bytes received, write flow, connection lost) and forwards each to uvicorn's
protocol after its own bookkeeping. Where a request head ends and how many body
bytes arrive it reads with its own httptools parser over the same bytes (C, a few
microseconds a request, with four callbacks and no header callback). uvicorn's
protocol registers itself in `server_state.connections` (its Server shuts it down
from there) and, on a WebSocket upgrade, hands the transport to the `ws` protocol
(feed/raw_ws.py, which releases the connection from the guard when it ends): the
transport's protocol is then no longer this one, which lets go of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httptools
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from feed.sse import EventStreams
from runtime.connections import ConnectionGuard, refusal_response
from runtime.lifespan import STATE_KEY

log = logging.getLogger("streetfeed.connections")

# How often a request body in flight is checked for its rate.
_BODY_CHECK_S = 1.0
# How long a connection refused mid-head is read (and what comes dropped) before it closes.
_LINGER_S = 1.0
# The HTTP implementation wrapped: uvicorn's C parser one (uvicorn --http httptools).
INNER_HTTP = "httptools"
_inner_class: Any = None
# What uvicorn's protocol is told its connection ended with once upgraded (never raised).
_HANDED_OVER = ConnectionAbortedError("upgraded: the transport is the WebSocket protocol's")


def inner_http_class() -> Any:
    """The class `uvicorn.Config(http=INNER_HTTP)` loads, resolved the way it does."""
    global _inner_class
    if _inner_class is None:
        _inner_class = import_from_string(HTTP_PROTOCOLS[INNER_HTTP])
    return _inner_class


class GuardedHttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_body_last",
        "_body_received",
        "_body_started",
        "_body_timer",
        "_draining",
        "_guard",
        "_head_bytes",
        "_head_size",
        "_head_timer",
        "_in_body",
        "_in_head",
        "_inner",
        "_loop",
        "_parser",
        "_transport",
        "_write_timer",
    )

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 **more: Any) -> None:
        self._inner: Any = inner_http_class()(config=config, server_state=server_state,
                                              app_state=app_state, **more)
        state = app_state.get(STATE_KEY)
        guard = getattr(state, "guard", None)
        # None when the app is not ours: uvicorn's behaviour, nothing added.
        self._guard = guard if isinstance(guard, ConnectionGuard) else None
        streams = getattr(getattr(state, "gateway", None), "streams", None)
        if isinstance(streams, EventStreams):
            # Told when the server stops, as connections are (feed.sse.EventStreams).
            streams.register(server_state.connections)
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parser: httptools.HttpRequestParser | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        # Between a head's first byte and its end; between its end and its message's end
        # (body bytes may be awaited).
        self._in_head = False
        self._in_body = False
        # Bytes received while a head was incomplete (bounded by the guard's max_head_bytes),
        # and whether the connection was refused for it (what follows is dropped).
        self._head_bytes = 0
        # The current head's size as parsed (its URL and headers): a head whole in one
        # read is never "incomplete after a segment", so _head_bytes never sees it.
        self._head_size = 0
        self._draining = False
        self._body_started = self._body_last = 0.0
        self._body_received = 0

    # --- asyncio.Protocol, each forwarded to uvicorn's ---------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        guard = self._guard
        if guard is None:
            self._inner.connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        refusal = guard.admit(transport, str(peer[0]) if isinstance(peer, (tuple, list))
                              and peer else "")
        if refusal is not None:
            # Refused before a byte is parsed: uvicorn's protocol never sees it.
            self._guard = None
            self._inner = None
            log.debug("connection refused: %s", refusal)
            transport.write(refusal_response(refusal))
            transport.close()
            return
        self._loop = asyncio.get_running_loop()
        self._parser = parser = httptools.HttpRequestParser(self)
        # As lenient as uvicorn's own parser, so that both read the same requests.
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3
            parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._inner.connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is None or self._draining:
            return  # refused
        parser = self._parser
        if parser is None:
            inner.data_received(data)
            return
        stopped = upgrade = False
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Handed to the WebSocket protocol, or (h2c...) refused by uvicorn, which then
            # goes on reading requests on this connection: so does this parser.
            upgrade = True
        except httptools.HttpParserError:
            stopped = True  # uvicorn's parser answers it (400) and closes
        if self._guard is not None and self._head_size > self._guard.max_head_bytes:
            self._head_too_large()  # before uvicorn reads it
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._guard is not None and self._head_bytes > self._guard.max_head_bytes:
                self._head_too_large()
                return
        else:
            self._head_bytes = 0
        # Timers only for a head or body still incomplete once this segment is read: none
        # for the usual request, whole in one segment.
        if self._in_head and self._head_timer is None:
            self._arm_head_timer()
        if self._in_body and self._body_timer is None:
            assert self._loop is not None
            self._body_timer = self._loop.call_later(_BODY_CHECK_S, self._check_body)
        inner.data_received(data)
        if stopped or upgrade:
            transport = self._transport
            if transport is not None and transport.get_protocol() is not self:
                self._parser = None
                self._let_go()  # upgraded: the WebSocket protocol has the transport now
            elif stopped:
                self._parser = None  # a request uvicorn refuses: it answers 400 and closes
            # An upgrade uvicorn does not take keeps this parser: both read on, and the
            # next head and body are held to the same limits (tests/test_http_guard.py).

    def eof_received(self) -> bool | None:
        if self._inner is None:
            return None
        keep_open: bool | None = self._inner.eof_received()
        return keep_open

    def pause_writing(self) -> None:
        """The client stopped reading (the transport's buffer is past its high-water mark):
        it has the guard's write_stall_timeout_s to read again, or the connection is
        dropped."""
        inner = self._inner
        if inner is not None:
            inner.pause_writing()
        if self._guard is not None and self._write_timer is None and self._loop is not None:
            self._write_timer = self._loop.call_later(self._guard.write_stall_timeout_s,
                                                      self._write_stalled)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        inner = self._inner
        if inner is not None:
            inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._parser = None
        if self._guard is not None and self._transport is not None:
            self._guard.release(self._transport)
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)

    # --- httptools callbacks (this protocol's own parser) -----------------------------

    def on_message_begin(self) -> None:
        # The deadline runs from here (the head's first byte), or from the connection for
        # its first head (that timer is already armed).
        self._in_head = True
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        assert self._loop is not None
        self._in_body = True
        self._body_started = self._body_last = self._loop.time()
        self._body_received = 0

    def on_body(self, body: bytes) -> None:
        assert self._loop is not None
        self._body_received += len(body)
        self._body_last = self._loop.time()

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    # --- Limits -----------------------------------------------------------------------

    def _write_stalled(self) -> None:
        self._write_timer = None
        log.debug("client stopped reading its responses: connection dropped")
        if self._transport is not None:
            self._transport.abort()

    def _arm_head_timer(self) -> None:
        transport = self._transport
        if self._guard is None or transport is None or transport.is_closing():
            return
        assert self._loop is not None
        self._head_timer = self._loop.call_later(self._guard.head_timeout_s,
                                                 self._head_timed_out)

    def _head_too_large(self) -> None:
        """Answered here (uvicorn's protocol has only seen the head's first part), then the
        connection ends: what the parsers held is freed with it. Our side is shut first and
        what the client still sends is read and dropped for a moment (a lingering close,
        as nginx does), so that the client reads the 431 instead of a reset."""
        log.debug("request head over %d bytes: refused", self._head_bytes)
        self._parser = None
        self._draining = True
        self._cancel_timers()
        transport, loop = self._transport, self._loop
        if transport is None or loop is None or transport.is_closing():
            return
        transport.write(refusal_response("headers_too_large"))
        if transport.can_write_eof():
            transport.write_eof()
            self._head_timer = loop.call_later(_LINGER_S, transport.close)
        else:
            transport.close()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()  # no complete head yet: nothing to answer

    def _check_body(self) -> None:
        self._body_timer = None
        guard, transport, loop = self._guard, self._transport, self._loop
        if guard is None or transport is None or loop is None or transport.is_closing() \
                or not self._in_body:
            return
        now = loop.time()
        if guard.body_too_slow(self._body_received, now - self._body_started,
                               now - self._body_last):
            # The handler waiting for the body sees a disconnect (logged as a 499).
            log.debug("request body too slow: %d bytes in %.1fs", self._body_received,
                      now - self._body_started)
            transport.close()
            return
        self._body_timer = loop.call_later(_BODY_CHECK_S, self._check_body)

    def _let_go(self) -> None:
        """The transport belongs to another protocol now: no timer of ours may touch it,
        and uvicorn's protocol is told its connection is over (with an exception: None
        would have it close the transport), so that it drops its parser, whose callbacks
        are its own bound methods: a cycle of ~30 objects per feed socket for the cyclic
        collector otherwise (runtime/collector.py)."""
        self._cancel_timers()
        self._in_head = self._in_body = False
        inner, self._inner = self._inner, None
        self._guard = None
        if inner is not None:
            inner.connection_lost(_HANDED_OVER)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._write_timer = None
