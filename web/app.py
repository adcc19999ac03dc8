"""create_app(settings): routes, error mapping and the lifespan that owns resources.

The lifespan opens everything a request or a connection uses and yields it as one
`web.state.AppState` (read with `web.state.state_of`); the route table is also what
/openapi.json describes (web.openapi).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from feed.console import Consoles
from feed.enricher_watch import EnricherWatch
from feed.gateway import Gateway
from feed.hub import PING_SLICES, Hub
from feed.presence import PresenceBoard
from feed.raw_ws import GOING_AWAY_REASON
from feed.reader import Readers
from feed.stats import StatsPublisher
from rules.clock import Clock, SystemClock
from rules.errors import ApiError
from rules.media import MEDIA_PATH
from rules.moderation import Policy
from rules.proxies import TrustedProxies
from runtime import metrics
from runtime.collector import SocketCounts
from runtime.connections import ConnectionGuard
from runtime.lifespan import STATE_KEY
from runtime.settings import Settings
from services.directory import ShopDirectory
from services.holds import Holds
from services.image_pool import ImagePool
from services.ingest import Ingest
from services.media import UPLOADS_PER_WORKER, MediaLibrary, UploadGate
from services.profiles import ProfileCache
from services.push import Subscriptions
from services.republish import Republisher
from services.supervision import supervised
from storage.media import media_store_for
from storage.media_s3 import S3_UNAVAILABLE
from storage.ratelimit import RateLimiter
from storage.redis_conn import REDIS_DOWN, REDIS_UNAVAILABLE, open_redis
from storage.vapid import load_vapid_key
from web import api, holds, media, pages, push, stream
from web.compression import CompressJSON, compressed
from web.console import ConsoleGate
from web.forwarded import ForwardedClient
from web.openapi import openapi_document, outside_api
from web.requests_log import RequestIdMiddleware
from web.responses import api_error_response, error_response
from web.state import AppState, state_of

log = logging.getLogger("streetfeed.web")

RETRY_AFTER_S = "2"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    metrics.POSTS_REJECTED.labels(exc.code).inc()
    return api_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _redis_down(request: Request, exc: Exception) -> Response:
    log.warning("Redis unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "redis_unavailable", "storage is unreachable, retry shortly",
                          headers={"Retry-After": RETRY_AFTER_S})


async def _media_down(request: Request, exc: Exception) -> Response:
    # The S3 client's message names the bucket, the key and the status, never credentials.
    log.warning("media store unavailable during %s %s: %s", request.method, request.url.path,
                exc)
    return error_response(503, "media_unavailable", "photo storage is unreachable, retry "
                          "shortly", headers={"Retry-After": RETRY_AFTER_S})


def create_app(settings: Settings, *, clock: Clock | None = None,
               policy: Policy | None = None,
               socket_counts: SocketCounts | None = None) -> Starlette:
    clock = clock or SystemClock()
    policy = policy or settings.moderation_policy()
    # Who the client is behind a proxy: one rule for HTTP (ForwardedClient), feed sockets
    # (feed.raw_ws) and the connection caps' exemption (ConnectionGuard).
    trusted = TrustedProxies(settings.trusted_proxies)
    # Kept across lifespans and apps (tests start many): files are compressed once a process.
    assets = pages.ASSETS

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        # Read (or made, once per data dir) at start: a bad STREETFEED_VAPID_PRIVATE_KEY
        # stops the process here rather than at the first subscription.
        vapid_public_key = load_vapid_key(settings).public
        # Pages and files compressed before the first request (in a worker thread: ~1.4 s
        # of one core the first time, a few ms once their copies are kept).
        await asyncio.to_thread(assets.warm)
        redis = open_redis(settings)
        hub = Hub(settings)
        readers = Readers(redis, settings, hub, clock)
        limiter = RateLimiter(redis, settings.secret)
        gateway = Gateway(redis, settings, hub, readers, clock, limiter, socket_counts)
        stats = StatsPublisher(redis, hub, settings.presence_interval_s, settings.reach_ttl_s)
        presence = PresenceBoard(redis, settings)
        holds = Holds(redis, settings, clock, policy, limiter)
        consoles = Consoles(redis, settings, hub, readers, presence, clock, holds)
        # Counted by the HTTP and feed protocols (web/http_protocol.py, feed/raw_ws.py).
        guard = ConnectionGuard.from_settings(settings, trusted)
        republisher = Republisher(redis, settings, clock)
        if settings.public_url is None and settings.host not in ("127.0.0.1", "::1",
                                                                 "localhost"):
            # Served beyond this machine, QR codes still name the default address.
            log.warning("STREETFEED_PUBLIC_URL is not set: QR codes on screens point at %s, "
                        "which phones cannot open; set it to the address passers-by use",
                        settings.public_base_url)
        media_store = media_store_for(settings)
        # Photos are processed in child processes, started by the first upload.
        images = ImagePool(settings.media_workers)
        ingest = Ingest(redis, settings, clock, policy)
        profiles = ProfileCache(redis, clock, ingest.producers, holds,
                                presence.shop_changes_heard)
        # Every web process hears every shop write (the presence board's Pub/Sub
        # connection): a cached profile is dropped at once, whichever process was written to.
        presence.follow_shop_changes("profiles", profiles.forget)
        state = AppState(settings=settings, clock=clock, redis=redis, lives=gateway.lives,
                         ingest=ingest, hub=hub,
                         readers=readers, gateway=gateway,
                         console=ConsoleGate(redis, gateway, consoles), limiter=limiter,
                         gateway_id=stats.id, presence=presence,
                         shops=ShopDirectory(redis, clock,
                                             max_age_s=settings.shops_cache_max_age_s,
                                             regions=settings.region_names),
                         profiles=profiles,
                         guard=guard, proxies=trusted, assets=assets,
                         media=media_store,
                         media_library=MediaLibrary(
                             redis, media_store, images, clock, settings.shop_media_quota_mb),
                         uploads=UploadGate(UPLOADS_PER_WORKER * settings.media_workers),
                         holds=holds, push=Subscriptions(redis, settings, clock, limiter),
                         vapid_public_key=vapid_public_key)
        stop = asyncio.Event()
        # Each loop supervised: one failing must not silently stop pings, presence or the
        # liveness every socket is told.
        loops = {
            "stats": lambda: stats.run(stop),
            "presence": lambda: presence.run(stop),
            "ping": lambda: _ping_loop(hub, readers, settings.gateway_ping_interval_s, stop),
            "liveness": lambda: readers.watch(stop),
            "enrichers": lambda: EnricherWatch(redis, settings, readers).run(stop),
            # Profile changes folded while a shop was within its republish interval.
            "republish": lambda: republisher.run(stop),
        }
        tasks = [asyncio.create_task(supervised(name, body, stop, component="gateway"),
                                     name=name) for name, body in loops.items()]
        try:
            # The one place the state is kept: the server hands it to every connection
            # (feed sockets are answered by feed.raw_ws from it, without ASGI) and request.
            yield {STATE_KEY: state}
        finally:
            stop.set()
            hub.close_all(1001, GOING_AWAY_REASON)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await readers.stop_all()
            await images.close()
            await media_store.close()
            await redis.aclose()

    @outside_api
    async def openapi_route(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def ws_feed(websocket: WebSocket) -> None:
        # Only reached under a server without feed.raw_ws, which answers /ws/feed itself
        # (streetfeed.runner.uvicorn_config): refuse plainly rather than half-work.
        await websocket.close(code=1011, reason="feed sockets need streetfeed's uvicorn protocol")

    # `compressed(...)` marks the routes whose JSON may be compressed (web/compression.py):
    # public answers only, never one carrying a secret (BREACH), never a stream.
    routes = [
        Route("/api/v1/shops/{shop_id}/posts", api.create_post, methods=["POST"]),
        Route("/api/v1/shops/{shop_id}/posts", compressed(api.shop_posts), methods=["GET"]),
        Route("/api/v1/shops/{shop_id}/posts/{post_id}", api.edit_post, methods=["PATCH"]),
        Route("/api/v1/shops/{shop_id}/posts/{post_id}", api.withdraw_post, methods=["DELETE"]),
        Route("/api/v1/shops/{shop_id}/media", api.upload_media, methods=["POST"]),
        Route(MEDIA_PATH + "/{media_id}/{name}", outside_api(media.serve_media),
              methods=["GET", "HEAD"]),
        Route("/api/v1/shops/{shop_id}/producers", api.add_producer, methods=["POST"]),
        Route("/api/v1/shops/{shop_id}/producers/{producer_id}", api.remove_producer,
              methods=["DELETE"]),
        Route("/api/v1/posts/{post_id}", compressed(api.public_post), methods=["GET"]),
        Route("/api/v1/posts/{post_id}/holds", holds.take_hold, methods=["POST"]),
        # Before /api/v1/holds/{hold_id}: "qr" is no hold id.
        Route("/api/v1/holds/qr/{code}.svg", holds.hold_qr, methods=["GET"]),
        Route("/api/v1/holds/{hold_id}", holds.read_hold, methods=["GET"]),
        Route("/api/v1/holds/{hold_id}", holds.cancel_hold, methods=["DELETE"]),
        Route("/api/v1/shops/{shop_id}/holds", holds.shop_holds, methods=["GET"]),
        Route("/api/v1/shops/{shop_id}/holds/{hold_id}/{action}", holds.answer_hold,
              methods=["POST"]),
        Route("/api/v1/push/key", push.push_key, methods=["GET"]),
        Route("/api/v1/push/subscriptions", push.subscribe, methods=["POST"]),
        Route("/api/v1/push/subscriptions/{subscription_id}", push.update_subscription,
              methods=["PUT"]),
        Route("/api/v1/push/subscriptions/{subscription_id}", push.delete_subscription,
              methods=["DELETE"]),
        Route("/api/v1/producers", compressed(api.search_producers), methods=["GET"]),
        Route("/api/v1/producers/{producer_id}", compressed(api.producer_page),
              methods=["GET"]),
        Route("/api/v1/feed", compressed(api.feed), methods=["GET"]),
        Route("/api/v1/feed/stream", stream.feed_stream, methods=["GET"]),
        Route("/api/v1/shops", compressed(api.list_shops), methods=["GET"]),
        Route("/api/v1/shops/{shop_id}", compressed(api.shop_profile), methods=["GET"]),
        Route("/api/v1/shops/{shop_id}", api.update_shop, methods=["PATCH"]),
        Route("/api/v1/shops/{shop_id}/token", api.rotate_token, methods=["POST"]),
        Route("/api/v1/shops/{shop_id}/hours", compressed(api.get_hours), methods=["GET"]),
        Route("/api/v1/shops/{shop_id}/hours", api.put_hours, methods=["PUT"]),
        Route("/api/v1/shops/{shop_id}/stats", api.shop_stats, methods=["GET"]),
        Route("/api/v1/shops/{shop_id}/signin-links", api.create_signin_link, methods=["POST"]),
        Route("/api/v1/session", api.sign_in, methods=["POST"]),
        Route("/api/v1/session", api.current_session, methods=["GET"]),
        Route("/api/v1/session", api.sign_out, methods=["DELETE"]),
        Route("/api/v1/config", compressed(api.client_config), methods=["GET"]),
        Route("/api/v1/categories", compressed(api.categories), methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/api/v1/shops/{shop_id}/qr.svg", api.shop_qr, methods=["GET"]),
        # Not in /openapi.json, said here: a route whose endpoint carries no Operation
        # (web/api.py) and is not marked outside_api stops create_app below.
        Route("/openapi.json", compressed(openapi_route), methods=["GET"]),
        Route("/metrics", outside_api(api.metrics_page), methods=["GET"]),
        WebSocketRoute("/ws/feed", ws_feed),
        WebSocketRoute("/ws/shop", ws_feed),
        Route("/", outside_api(pages.passer_by), methods=["GET"]),
        Route("/shop", outside_api(pages.console), methods=["GET"]),
        Route("/screen/{shop_id}", outside_api(pages.screen), methods=["GET"]),
        Route("/sw.js", outside_api(pages.service_worker), methods=["GET"]),
        Route("/manifest.webmanifest", outside_api(pages.manifest), methods=["GET"]),
        Route("/static/{path:path}", outside_api(pages.static_file), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            **dict.fromkeys(REDIS_UNAVAILABLE, _redis_down),
            **dict.fromkeys(S3_UNAVAILABLE, _media_down),
        },
    )
    # Innermost of ours: it reads the endpoint the router writes into the scope it was
    # handed, so nothing between the two may pass on a copy (as web.forwarded does).
    app.add_middleware(CompressJSON)
    app.add_middleware(AddressRateLimit, settings=settings)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(pages.SecurityHeaders,
                       screen_frame_ancestors=settings.screen_frame_ancestors)
    # Added last, so outermost: everything inside sees the client, not the proxy.
    app.add_middleware(ForwardedClient, trusted=trusted)
    # Described from the route table above, in its order (web.openapi), once.
    document = msgspec.json.encode(openapi_document(app.routes))
    return app


class AddressRateLimit:
    """Requests per client address per minute, on the API only (pages and files are cheap)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.address_requests_per_minute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/") and scope.get("client"):
            state = state_of(scope["state"])
            try:
                subject = await state.limiter.address_key(scope["client"][0])
                await state.limiter.hit("address_requests", subject, self.limit)
            except ApiError as exc:
                metrics.POSTS_REJECTED.labels(exc.code).inc()
                await api_error_response(exc)(scope, receive, send)
                return
            except REDIS_DOWN:
                pass  # Redis down: the handler answers 503 itself
        await self.app(scope, receive, send)


async def _ping_loop(hub: Hub, readers: Readers, interval: float, stop: asyncio.Event) -> None:
    """Every socket is pinged once per `interval`, one slice of them at a time."""
    loop = asyncio.get_running_loop()
    part = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval / PING_SLICES)
        hub.ping(part)
        part = (part + 1) % PING_SLICES
        if part == 0:
            await readers.stop_idle(loop.time())
