"""WS /ws/shop handshakes: who is asking, then the socket is feed.console's.

feed.raw_ws answers the upgrade and hands it here (the lifespan state's `console`). A
socket passes the feed's admission first (origin, sockets per address: Gateway.admit,
counted with feed sockets), then says which shop it speaks for: the console's session
cookie, or an API client's `Authorization: Bearer <token>` with `?shop=<id>`. Refused
then, it is accepted only to be told why (an `error` frame, `not_signed_in` or
`invalid_token`, and close 1008): a browser cannot read a refused handshake's status.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl

from redis.asyncio import Redis
from starlette.requests import cookie_parser
from websockets.datastructures import Headers

from feed.console import Consoles, ConsoleSocket
from feed.frames import error_payload, ws_text_frame
from feed.gateway import Gateway
from feed.raw_ws import NativeChannel
from rules.errors import ApiError, InvalidInput, Unauthorized
from schemas.shops import ShopRecord
from storage import shops
from web.auth import COOKIE, session_key, shop_of_session

__all__ = ["ConsoleGate"]

log = logging.getLogger("streetfeed.console")

CLOSE_POLICY = 1008
CLOSE_UNSUPPORTED = 1003
CLOSE_INTERNAL_ERROR = 1011


class ConsoleGate:
    def __init__(self, redis: Redis, gateway: Gateway, consoles: Consoles) -> None:
        self.redis = redis
        self.gateway = gateway
        self.consoles = consoles

    def attach(self, channel: NativeChannel, query: str, headers: Headers,
               origin: str | None, host: str, address: str, scheme: str) -> ConsoleHandler:
        handler = ConsoleHandler(self, channel, address)
        handler.setup = asyncio.create_task(handler.open(query, headers, origin, host, scheme))
        return handler

    async def shop_of(self, query: str, headers: Headers) -> tuple[ShopRecord, str | None]:
        """The shop the socket speaks for, and the key of the session it does so with."""
        authorization = headers.get("Authorization")
        if authorization:
            shop_ids = [value for name, value in parse_qsl(query) if name == "shop"]
            if len(shop_ids) > 1:  # which would count? Refused, as on /ws/feed
                raise InvalidInput("'shop' given more than once", code="invalid_query",
                                   status=400)
            shop_id = shop_ids[0] if shop_ids else ""
            return await shops.authenticate(self.redis, shop_id, authorization), None
        session_id = cookie_parser(headers.get("Cookie", "")).get(COOKIE)
        record = await shop_of_session(self.redis, session_id) if session_id else None
        if record is None or session_id is None:
            raise Unauthorized("not signed in", code="not_signed_in")
        return record, session_key(session_id)


class ConsoleHandler:
    """One /ws/shop socket: set up in a task, then fed by feed.console until it closes."""

    __slots__ = ("address", "channel", "closed", "counted", "gate", "setup", "socket")

    def __init__(self, gate: ConsoleGate, channel: NativeChannel, address: str) -> None:
        self.gate = gate
        self.channel = channel
        self.address = address
        self.setup: asyncio.Task[None] | None = None
        self.socket: ConsoleSocket | None = None
        self.counted = False
        self.closed = False

    async def open(self, query: str, headers: Headers, origin: str | None, host: str,
                   scheme: str) -> None:
        try:
            await self._open(query, headers, origin, host, scheme)
        except Exception:
            log.exception("console: setting up a console socket failed")
            self.channel.close(CLOSE_INTERNAL_ERROR, "internal error: reconnect")
        finally:
            self.setup = None

    async def _open(self, query: str, headers: Headers, origin: str | None, host: str,
                    scheme: str) -> None:
        gate = self.gate
        refusal = await gate.gateway.admit(origin, host, scheme, self.address)
        if refusal is not None:
            self.channel.reject(refusal.status, refusal.body(),
                                [("Content-Type", "application/json"),
                                 *refusal.headers().items()])
            return
        try:
            who: tuple[ShopRecord, str | None] | ApiError = await gate.shop_of(query, headers)
        except ApiError as exc:
            who = exc
        if not self.channel.accept():
            return  # the peer left meanwhile
        gate.gateway.opened(self.address)
        self.counted = True
        if isinstance(who, ApiError):
            self.channel.write(ws_text_frame(error_payload(who.code, who.message)))
            self.channel.close(CLOSE_POLICY, who.code)
            return
        socket = await gate.consoles.open(self.channel, *who)
        if self.closed:  # closed as its snapshot was sent
            gate.consoles.close(socket)
        else:
            self.socket = socket

    def on_message(self, data: bytes, text: bool) -> None:
        # The console only listens: everything it does goes through the HTTP API.
        if not text:
            self.channel.close(CLOSE_UNSUPPORTED, "binary_not_supported")

    def on_closed(self) -> None:
        self.closed = True
        if self.setup is not None and not self.setup.done():
            self.setup.cancel()
        if self.socket is not None:
            self.gate.consoles.close(self.socket)
            self.socket = None
        if self.counted:
            self.gate.gateway.closed(None, self.address)
            self.counted = False
