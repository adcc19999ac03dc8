"""The app's state: one typed object, opened by the lifespan and read through `state_of`.

`web.app`'s lifespan builds one `AppState` and yields it as `{STATE_KEY: state}`
(runtime.lifespan). That is the only place it is kept: the server hands the yielded dict
to every connection, as `app_state` to its protocol object (the connection guard, the
trusted proxies and the feed gateway are read there, before any ASGI) and as
`scope["state"]` to every request. Handlers, middleware and tests all read it with
`state_of`; nothing is put on `app.state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from feed.gateway import Gateway
from feed.hub import Hub
from feed.presence import PresenceBoard
from feed.raw_ws import ConsoleAttacher
from feed.reader import Readers
from rules.clock import Clock
from rules.proxies import TrustedProxies
from runtime.connections import ConnectionGuard
from runtime.lifespan import STATE_KEY
from runtime.settings import Settings
from services.directory import ShopDirectory
from services.holds import Holds
from services.ingest import Ingest
from services.media import MediaLibrary, UploadGate
from services.profiles import ProfileCache
from services.push import Subscriptions
from storage.live import LiveIndex
from storage.media import MediaStore
from storage.ratelimit import RateLimiter
from web.assets import Assets

__all__ = ["AppState", "state_of"]


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    clock: Clock
    redis: Redis
    lives: dict[str, LiveIndex]  # one per configured region
    ingest: Ingest
    hub: Hub
    readers: Readers
    gateway: Gateway  # also takes the feed sockets (feed/raw_ws.py reads it)
    console: ConsoleAttacher  # takes the console's sockets, /ws/shop (web.console)
    limiter: RateLimiter
    gateway_id: str  # this process among the gateways (presence reports, /readyz)
    presence: PresenceBoard  # the console's audience, from the gateways' reports
    shops: ShopDirectory  # GET /api/v1/shops, cached
    profiles: ProfileCache  # GET /api/v1/shops/{id}, cached until a write or a change
    # Read by the HTTP and feed protocols (web/http_protocol.py, feed/raw_ws.py).
    guard: ConnectionGuard  # connection caps and time limits
    proxies: TrustedProxies  # whose X-Forwarded-For/-Proto are believed
    assets: Assets  # the pages and web/static, compressed once, with their ETags
    media: MediaStore  # processed photos' bytes (storage.media), served by web.media
    media_library: MediaLibrary  # uploads: processing, store, index (services.media)
    uploads: UploadGate  # uploads this process holds at once (web.api.upload_media)
    holds: Holds  # "Hold it for me" (services.holds, web.holds)
    # Alerts for followed shops: subscriptions (services.push, web.push), and the VAPID
    # public key pages subscribe with (the pusher signs with its private half).
    push: Subscriptions
    vapid_public_key: str


def state_of(source: HTTPConnection | Mapping[str, Any]) -> AppState:
    """The app's state, from a request (or WebSocket) or from a lifespan state dict: an
    ASGI scope's `scope["state"]`, or the server's own (`uvicorn.Server.lifespan.state`)."""
    lifespan_state = source.scope["state"] if isinstance(source, HTTPConnection) else source
    state = lifespan_state[STATE_KEY]
    if not isinstance(state, AppState):
        raise TypeError(f"lifespan state {STATE_KEY!r} is a {type(state).__name__}, "
                        "not web.state.AppState")
    return state
