"""uvicorn's HTTP protocol with time limits and connection caps (runtime/connections.py).

uvicorn closes a keep-alive connection idle after a response, but nothing else:
a connection that never sends a byte, a request head sent a byte at a time, a
body that stalls or a response the client never reads is held for ever, and
20,000 of them from one client used every file descriptor of the process. Here
each connection is counted when made, must send its request head within the
guard's `head_timeout_s` (from the connection or from the previous response),
its body at the guard's minimum rate, and read its responses (a write buffer
stuck past its high-water mark for `write_stall_timeout_s` drops it).

Only the asyncio protocol methods and uvicorn's request callbacks are overridden,
each calling uvicorn's own first.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from runtime.connections import ConnectionGuard, refusal_response
from runtime.lifespan import STATE_KEY

log = logging.getLogger("streetfeed.connections")

# How often a request body in flight is checked for its rate.
_BODY_CHECK_S = 1.0


class GuardedHttpProtocol(HttpToolsProtocol):
    _guard: ConnectionGuard | None = None
    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    # Request heads received and responses completed: equal while awaiting a head.
    _heads = 0
    _responses = 0
    _body_started = 0.0
    _body_last = 0.0
    _body_received = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = getattr(self.app_state.get(STATE_KEY), "guard", None)
        if not isinstance(guard, ConnectionGuard):
            return  # not our app: uvicorn's behaviour
        self._guard = guard
        refusal = guard.admit(transport, self.client[0] if self.client else "")
        if refusal is not None:
            log.debug("connection refused: %s", refusal)
            transport.write(refusal_response(refusal))
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._guard is not None:
            self._guard.release(self.transport)
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._heads += 1
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        if self._guard is not None and self._expects_body():
            now = self.loop.time()
            self._body_started = self._body_last = now
            self._body_received = 0
            self._body_timer = self.loop.call_later(_BODY_CHECK_S, self._check_body)

    def on_body(self, body: bytes) -> None:
        self._body_received += len(body)
        self._body_last = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._responses += 1
        super().on_response_complete()
        # uvicorn's keep-alive timer closes an idle connection; ours bounds a head that
        # starts to arrive and then trickles.
        self._arm_head_timer()

    def pause_writing(self) -> None:
        """The client stopped reading (the transport's buffer is past its high-water mark):
        it has the guard's write_stall_timeout_s to read again, or the connection is
        dropped."""
        super().pause_writing()
        if self._guard is not None and self._write_timer is None:
            self._write_timer = self.loop.call_later(self._guard.write_stall_timeout_s,
                                                     self._write_stalled)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _write_stalled(self) -> None:
        self._write_timer = None
        log.debug("client stopped reading its responses: connection dropped")
        self.transport.abort()

    def _expects_body(self) -> bool:
        for name, value in self.headers:
            if (name == b"content-length" and value.strip() not in (b"", b"0")) or (
                    name == b"transfer-encoding"):
                return True
        return False

    def _arm_head_timer(self) -> None:
        if self._guard is None or self.transport.is_closing():
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self._guard.head_timeout_s,
                                                self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._heads == self._responses and not self.transport.is_closing():
            self.transport.close()  # nothing asked yet: nothing to answer

    def _check_body(self) -> None:
        self._body_timer = None
        guard = self._guard
        if guard is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if guard.body_too_slow(self._body_received, now - self._body_started,
                               now - self._body_last):
            # The handler waiting for the body sees a disconnect (logged as a 499).
            log.debug("request body too slow: %d bytes in %.1fs", self._body_received,
                      now - self._body_started)
            self.transport.close()
            return
        self._body_timer = self.loop.call_later(_BODY_CHECK_S, self._check_body)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._write_timer = None
