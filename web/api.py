"""The HTTP API of the public contract (DESIGN.md section 8).

Each handler carries what /openapi.json says of it (`@Operation`, web/openapi.py) and
reads the app's state with `web.state.state_of`.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import re
from collections.abc import Mapping
from typing import TypeVar

import msgspec
import segno
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.requests import Request
from starlette.responses import Response

from feed.gateway import SubscriptionError, parse_subscription
from feed.index import Subscriber
from feed.presence import audience
from feed.snapshot import snapshot_area
from feed.stats import reach_of
from rules import cursor as cursors
from rules import images
from rules.errors import ApiError, InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from rules.json_keys import refuse_duplicate_keys
from rules.regions import regions_for
from runtime import metrics
from runtime.settings import METRICS_LOCAL_ADDRESSES
from schemas.categories import CATEGORIES, CategoryList
from schemas.feed import FeedPage, FeedResponse, ShopPosts, ShopPostsPage, ShopStats
from schemas.hours import ShopHours
from schemas.limits import (
    AUDIENCE_RADII_M,
    MEDIA_PER_POST_MAX,
    MEDIA_PIXELS_MAX,
    MEDIA_TYPES,
    MEDIA_UPLOAD_MAX_BYTES,
    PRODUCER_SEARCH_KM,
    RADIUS_MAX_M,
    SHOPS_PAGE_DEFAULT,
    SHOPS_PAGE_MAX,
)
from schemas.media import MediaCreated
from schemas.posts import Post, PostAccepted, PostIn, PostPatch, PostWithdrawn
from schemas.producers import (
    ProducerCreated,
    ProducerIn,
    ProducerPage,
    ProducerQuery,
    ProducerSearch,
)
from schemas.service import ClientConfig, Health, Point, Readiness
from schemas.shops import (
    PositionFields,
    ShopEdit,
    ShopList,
    ShopListResponse,
    ShopProfile,
    ShopProfileWithProducers,
    ShopRecord,
    ShopUpdate,
    SignIn,
    TokenRotated,
)
from schemas.signin import CodeField, SignInCode, SignInLink
from services import shops as shop_changes
from services import signin
from services.profiles import profile_now
from storage import keys, shops
from storage.inbox import durability_check
from storage.live import live_posts_newest_first
from storage.redis_conn import REDIS_DOWN, async_reply
from web.auth import close_session, open_session, require_same_origin, session_shop, shop_for
from web.openapi import (
    FEED_QUERY,
    IDEMPOTENCY_KEY,
    POST_ID,
    PRODUCER_ID,
    PRODUCER_QUERY,
    SHOP_ID,
    SHOPS_QUERY,
    Operation,
)
from web.responses import JSONResponse, error_response
from web.state import AppState, state_of

__all__ = ["add_producer", "categories", "client_config", "create_post", "create_signin_link",
           "current_session", "edit_post", "feed", "get_hours", "healthz", "list_shops",
           "metrics_page", "producer_page", "public_post", "put_hours", "qr_svg", "readyz",
           "remove_producer", "rotate_token", "search_producers", "shop_posts", "shop_profile",
           "shop_qr", "shop_stats", "sign_in", "sign_out", "update_shop", "upload_media",
           "withdraw_post"]

T = TypeVar("T")

_PROBE_FAILED: tuple[type[Exception], ...] = (TimeoutError, *REDIS_DOWN)


async def read_body(request: Request, limit: int, code: str = "payload_too_large") -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body larger than {limit} bytes", code=code)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes", code=code)
        chunks.append(chunk)
    return b"".join(chunks)


@Operation(summary="Post an update", body=PostIn, status=202, response=PostAccepted,
           authenticated=True, parameters=(SHOP_ID, IDEMPOTENCY_KEY))
async def create_post(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    await st.limiter.hit("shop_posts", shop.id, st.settings.shop_posts_per_minute)
    body = await read_body(request, st.settings.max_body_bytes)
    post_id = await st.ingest.accept(shop, body, request.headers.get("idempotency-key"))
    metrics.POSTS_ACCEPTED.inc()
    return JSONResponse(PostAccepted(id=post_id), status_code=202)


@Operation(summary="Upload a photo for the shop's posts", status=201, response=MediaCreated,
           authenticated=True, parameters=(SHOP_ID,), raw_body=MEDIA_TYPES)
async def upload_media(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    content_type = request.headers.get("content-type", "")
    images.declared_type(content_type)  # 415 before reading up to 10 MB
    with st.uploads:  # 503 server_busy when this process holds enough bodies already
        await st.limiter.hit("shop_media", shop.id, st.settings.shop_media_per_hour, 3600)
        body = await read_body(request, MEDIA_UPLOAD_MAX_BYTES, code="media_too_large")
        created = await st.media_library.add(shop, body, content_type)
    return JSONResponse(created, status_code=201)


@Operation(summary="Withdraw a live post", response=PostWithdrawn, authenticated=True,
           parameters=(SHOP_ID, POST_ID))
async def withdraw_post(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    post_id = request.path_params["post_id"]
    removed = await st.lives[shop.region].remove(post_id, "withdrawn",
                                                  now_ts=st.clock.now().timestamp(),
                                   shop_id=shop.id)
    if removed is None:
        raise NotFound(f"no live post {post_id!r} for this shop", code="unknown_post")
    return JSONResponse(PostWithdrawn(id=post_id))


@Operation(summary="Live posts around a place, nearest first", response=FeedPage,
           parameters=FEED_QUERY)
async def feed(request: Request) -> Response:
    st = state_of(request)
    try:
        sub_params = parse_subscription(request.query_params.multi_items())
    except SubscriptionError as exc:
        raise InvalidInput(str(exc), code=exc.code, status=400) from None
    sub: Subscriber[object] = Subscriber(None)
    sub.place(sub_params.lat, sub_params.lon, sub_params.radius_m, sub_params.kinds,
              sub_params.local)
    regions = regions_for(st.settings.all_regions, sub.lat, sub.lon, sub.radius_m)
    snap = await snapshot_area({r: st.lives[r] for r in regions}, sub,
                               now_ts=st.clock.now().timestamp(),
                               limit=st.settings.snapshot_limit)
    cursor = cursors.encode(snap.last_ids, st.settings.region) if snap.last_ids else "0-0"
    return JSONResponse(FeedResponse(posts=[msgspec.Raw(p) for p in snap.posts], cursor=cursor),
                        headers={"Cache-Control": "no-store"})


@Operation(summary="Correct a live post", body=PostPatch, status=202, response=PostAccepted,
           authenticated=True, parameters=(SHOP_ID, POST_ID))
async def edit_post(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    # An edit is a frame to every socket nearby, like a new post: the same allowance.
    await st.limiter.hit("shop_posts", shop.id, st.settings.shop_posts_per_minute)
    body = await read_body(request, st.settings.max_body_bytes)
    post_id = await st.ingest.edit(shop, request.path_params["post_id"], body)
    return JSONResponse(PostAccepted(id=post_id), status_code=202)


@Operation(summary="A shop's live posts, newest first", response=ShopPostsPage,
           parameters=(SHOP_ID,))
async def shop_posts(request: Request) -> Response:
    """A shop's live posts, newest first (public, like the posts themselves)."""
    st = state_of(request)
    record = await shops.require_shop(st.redis, request.path_params["shop_id"])
    posts = await live_posts_newest_first(st.redis, record.region, record.id,
                                          st.clock.now().timestamp())
    return JSONResponse(ShopPosts(posts=[msgspec.Raw(j) for _, j in posts]))


_POST_ID = re.compile(r"p_[a-z0-9]{16}")  # a post id (web/openapi.py POST_ID)


@Operation(summary="One live post, as the feed delivers it (an alert's link opens it; an "
                   "extension of DESIGN.md section 9)",
           response=Post, parameters=(POST_ID,),
           errors=((410, "The post was withdrawn or has ended, or never was (post_gone)"),))
async def public_post(request: Request) -> Response:
    """The post as every passer-by nearby received it on the feed, read from the live
    index: nothing of the shop's own view (reach, holds' names, the input it was made
    from). Unknown, ended and withdrawn all answer 410: an alert's link outlives its post,
    and which of them it was tells the reader nothing more."""
    st = state_of(request)
    post_id: str = request.path_params["post_id"]
    if _POST_ID.fullmatch(post_id):
        now_ts = st.clock.now().timestamp()
        for region in st.settings.region_names:
            json_, expires = await async_reply(st.redis.hmget(
                keys.post(region, post_id), ["json", "expires_at"]))
            if json_ is not None and float(expires or 0) > now_ts:
                return JSONResponse(msgspec.Raw(json_), headers={"Cache-Control": "no-store"})
    raise ApiError(f"no live post {post_id[:40]!r}: it was withdrawn or has ended",
                   code="post_gone", status=410)


_SHOP_CURSOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # a shop id (schemas.common.ShopId)


def _shop_page(query: Mapping[str, str]) -> tuple[int, str | None]:
    """?limit= and ?cursor= of GET /api/v1/shops, or a 400 saying what was expected."""
    raw_limit = query.get("limit")
    limit = SHOPS_PAGE_DEFAULT
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= SHOPS_PAGE_MAX:
            raise InvalidInput(f"limit: expected an integer 1..{SHOPS_PAGE_MAX}, "
                               f"got {raw_limit[:20]!r}", code="invalid_query", status=400)
        limit = int(raw_limit)
    cursor = query.get("cursor")
    if cursor is not None and not _SHOP_CURSOR.match(cursor):
        raise InvalidInput("cursor: expected the `next` of a previous page",
                           code="invalid_query", status=400)
    return limit, cursor


@Operation(summary="Every active shop, a page at a time (follow `next`)", response=ShopList,
           parameters=SHOPS_QUERY)
async def list_shops(request: Request) -> Response:
    """Every active shop, a page at a time, from the process's cache (services.directory)."""
    st = state_of(request)
    limit, cursor = _shop_page(request.query_params)
    profiles, next_cursor = await st.shops.page(cursor, limit)
    headers = {}
    if next_cursor is not None:  # RFC 8288, for clients that read headers, not bodies
        headers["Link"] = f'</api/v1/shops?cursor={next_cursor}&limit={limit}>; rel="next"'
    return JSONResponse(ShopListResponse(shops=[msgspec.Raw(p) for p in profiles],
                                         next=next_cursor), headers=headers)


async def _profile(st: AppState, record: ShopRecord) -> ShopProfile:
    """The profile now, as a shop's write answers it."""
    return (await profile_now(st.redis, record, st.clock.now()))[0]


@Operation(summary="A shop's public profile, with the producers it names (nearest first)",
           response=ShopProfileWithProducers, parameters=(SHOP_ID,))
async def shop_profile(request: Request) -> Response:
    """From the process's cache (services.profiles): screens and pages read it often."""
    st = state_of(request)
    return JSONResponse(msgspec.Raw(await st.profiles.profile(request.path_params["shop_id"])))


@Operation(summary="Name a producer the shop sells: the same producer (name folded for "
                   "case, accents and punctuation, within 2 km) is one record, whose id comes "
                   "back", body=ProducerIn, status=201, response=ProducerCreated,
           authenticated=True, parameters=(SHOP_ID,))
async def add_producer(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    # Counted with posts and edits: the shop's writes share one allowance.
    await st.limiter.hit("shop_posts", shop.id, st.settings.shop_posts_per_minute)
    body = await read_body(request, st.settings.max_body_bytes)
    new = decode_body(body, ProducerIn, "invalid_producer", unique_keys=True)
    producer_id = await st.ingest.producers.add(shop, new)
    return JSONResponse(ProducerCreated(id=producer_id), status_code=201)


@Operation(summary="Unlink a producer from the shop (a producer no shop names is unlisted)",
           status=204, authenticated=True, parameters=(SHOP_ID, PRODUCER_ID))
async def remove_producer(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    # A write like naming one (and naming then unlinking in a loop would otherwise cost
    # only half the allowance): the shop's writes share one allowance.
    await st.limiter.hit("shop_posts", shop.id, st.settings.shop_posts_per_minute)
    await st.ingest.producers.unlink(shop, request.path_params["producer_id"])
    return Response(status_code=204)


@Operation(summary="A producer and the shops that sell it, nearest to it first",
           response=ProducerPage, parameters=(PRODUCER_ID,))
async def producer_page(request: Request) -> Response:
    st = state_of(request)
    page = await st.ingest.producers.page(request.path_params["producer_id"])
    return JSONResponse(page)


@Operation(summary="Producers known near a point, by part of their name or place (the "
                   "console's search-as-you-type; an extension of DESIGN.md section 9)",
           response=ProducerSearch, parameters=PRODUCER_QUERY)
async def search_producers(request: Request) -> Response:
    st = state_of(request)
    if len(request.query_params.multi_items()) != len(request.query_params):
        # Which of two `lat`s counts is the parser's choice: refused, as a repeated key of
        # a JSON body is.
        raise InvalidInput("a query parameter is given twice", code="invalid_query",
                           status=400)
    try:
        query = msgspec.convert(dict(request.query_params), ProducerQuery, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc), code="invalid_query", status=400) from None
    found = await st.ingest.producers.search(query.lat, query.lon, query.q, PRODUCER_SEARCH_KM)
    return JSONResponse(ProducerSearch(producers=found))


@Operation(summary="Change a shop's name, category or address (its position only by "
                   "the operator: 403 position_locked)", body=ShopEdit, response=ShopProfile,
           authenticated=True, parameters=(SHOP_ID,))
async def update_shop(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    # A profile change republishes the shop's live posts (services.republish): it
    # counts against the same allowance as posts and edits.
    await st.limiter.hit("shop_posts", shop.id, st.settings.shop_posts_per_minute)
    body = await read_body(request, st.settings.max_body_bytes)
    # A key given twice is refused, as at sign-in: which one would count is the parser's
    # choice, and a check of the first may not be what the last stores.
    asked = decode_body(body, PositionFields, "invalid_shop", unique_keys=True)
    if asked.lat is not msgspec.UNSET or asked.lon is not msgspec.UNSET:
        raise ApiError("a shop's position is set by the operator (streetfeed shops update "
                       "ID --lat LAT --lon LON), not with the shop's token or session",
                       code="position_locked", status=403)
    edit = decode_body(body, ShopEdit, "invalid_shop")
    update = ShopUpdate(**{k: v for k, v in msgspec.structs.asdict(edit).items()
                           if v is not msgspec.UNSET})
    record = await shop_changes.update_shop(st.redis, shop.id, update, st.clock, st.settings,
                                     st.ingest.policy)
    return JSONResponse(await _profile(st, record))


@Operation(summary="Rotate the shop's token", response=TokenRotated, authenticated=True,
           parameters=(SHOP_ID,))
async def rotate_token(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    token = await shops.rotate_token(st.redis, shop.id, st.clock)
    return JSONResponse(TokenRotated(id=shop.id, token=token),
                        headers={"Cache-Control": "no-store"})


@Operation(summary="Opening hours", response=ShopHours, parameters=(SHOP_ID,))
async def get_hours(request: Request) -> Response:
    st = state_of(request)
    record = await shops.require_shop(st.redis, request.path_params["shop_id"])
    return JSONResponse(record.hours or ShopHours(timezone=st.settings.timezone))


@Operation(summary="Set opening hours", body=ShopHours, response=ShopProfile,
           authenticated=True, parameters=(SHOP_ID,))
async def put_hours(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    # Counted with posts, edits and profile changes: each change reloads the shop list's
    # cache and may post an opening change (cold try: 3,179 writes in 20 s from one token).
    await st.limiter.hit("shop_posts", shop.id, st.settings.shop_posts_per_minute)
    hours = decode_body(await read_body(request, st.settings.max_hours_body_bytes), ShopHours,
                        "invalid_hours", unique_keys=True)
    record = await shop_changes.set_hours(st.redis, shop.id, hours, st.clock, st.ingest.policy)
    return JSONResponse(await _profile(st, record))


def decode_body(body: bytes, type_: type[T], code: str, *, unique_keys: bool = False) -> T:
    """`body` as a `type_`; with `unique_keys`, a body naming a key twice is refused
    (parsers disagree on which one counts, and msgspec keeps the last)."""
    try:
        value = msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        if unique_keys:
            refuse_duplicate_keys(body)  # the cause, if a key is named twice
        raise InvalidInput(str(exc), code=code) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json", status=400) from None
    if unique_keys:
        refuse_duplicate_keys(body)  # valid JSON: msgspec read it
    return value


def require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(f"expected Content-Type: application/json, got {media_type or 'none'!r}",
                       code="unsupported_media_type", status=415)


@Operation(summary="The process runs and reaches Redis", response=Health)
async def healthz(request: Request) -> Response:
    """The process is alive and reaches Redis (DESIGN section 8)."""
    st = state_of(request)
    try:
        async with asyncio.timeout(st.settings.probe_timeout_s):
            await st.redis.ping()
    except TimeoutError:
        # A stalled Redis (not a dead one) would hold the probe for the client's 10 s
        # socket timeout: a probe of 5 s would only ever see its own timeout.
        raise RedisConnectionError(
            f"Redis did not answer within {st.settings.probe_timeout_s:g} s") from None
    return JSONResponse(Health())


async def _enricher_backlog(st: AppState) -> tuple[int, int]:
    """(lag: entries no enricher has read yet, pending: read but not acknowledged),
    over every region."""
    lag = pending = 0
    for region in st.settings.region_names:
        stream = keys.in_stream(region)
        if not await st.redis.exists(stream):
            continue
        groups = await st.redis.xinfo_groups(stream)
        group = next((g for g in groups if g["name"] in (keys.ENRICHER_GROUP,
                                                         keys.ENRICHER_GROUP.encode())), None)
        if group is None:
            lag += await st.redis.xlen(stream)
            continue
        lag += int(group.get("lag") or 0)
        pending += int(group.get("pending") or 0)
    return lag, pending


@Operation(summary="Ready for traffic", response=Readiness,
           replies=((503, "Not ready", Readiness),))
async def readyz(request: Request) -> Response:
    """Ready for traffic: Redis answers, the feed readers read, enrichers keep up. While
    not, `reasons` says why in words (DESIGN.md section 9)."""
    st = state_of(request)
    checks: dict[str, str | int] = {"gateway": st.gateway_id}
    reasons: list[str] = []
    try:
        async with asyncio.timeout(st.settings.probe_timeout_s):
            await st.redis.ping()
            checks["redis"] = "ok"
            lag, pending = await _enricher_backlog(st)
        checks["enricher_lag"] = lag
        checks["enricher_pending"] = pending
        if lag > st.settings.ready_max_lag:
            reasons.append(f"enrichers are behind: {lag} posts wait")
        for region, since in sorted(st.readers.stalled.items()):
            # Few posts, but one waiting that long: stuck, not behind (feed.enricher_watch).
            reasons.append(f"enrichers of region {region} are stuck: a post waits since "
                           f"{since}")
    except TimeoutError:
        checks["redis"] = "stalled"
        reasons.append(f"Redis does not answer within {st.settings.probe_timeout_s:g} s")
    except REDIS_DOWN:
        checks["redis"] = "unreachable"
        reasons.append("Redis is unreachable")
    unhealthy = st.readers.unhealthy(asyncio.get_running_loop().time())
    checks["reader"] = "ok" if not unhealthy else "stalled: " + ",".join(sorted(unhealthy))
    for region, reader in sorted(unhealthy.items()):
        what = "fails to read" if reader.failing else "has not read"
        reasons.append(f"feed reader of region {region} {what} since "
                       f"{reader.last_read_at.isoformat(timespec='seconds')}")
    try:  # can a 202 keep its promise (STREETFEED_DURABILITY) in every region?
        if checks["redis"] != "ok":
            raise RedisConnectionError("not asked: Redis is not answering")
        async with asyncio.timeout(st.settings.probe_timeout_s):
            checks["durability"], durable = await durability_check(st.redis, st.settings)
        if not durable:
            reasons.append(str(checks["durability"]))
    except _PROBE_FAILED:
        checks["durability"] = "unknown"  # the redis check says why
    ready = not reasons
    return JSONResponse(Readiness(status="ready" if ready else "not_ready", checks=checks,
                                  reasons=reasons),
                        status_code=200 if ready else 503,
                        headers={"Cache-Control": "no-store"})


# Headers a reverse proxy adds: a request carrying one was made by someone else, even
# when the proxy connects from loopback.
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _metrics_refusal(request: Request, token: str | None) -> Response | None:
    """Why this request may not read /metrics, as the answer; None if it may.

    With STREETFEED_METRICS_TOKEN set, the bearer token is needed from everywhere (a
    proxy on this host makes every visitor look local), compared in constant time.
    Without it, only a direct connection from a local address gets an answer; anyone
    else gets the 404 of a path that does not exist."""
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
            return None
        return error_response(401, "invalid_token",
                              "expected 'Authorization: Bearer <metrics token>'",
                              headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    peer = request.client.host if request.client else ""
    if peer in METRICS_LOCAL_ADDRESSES and not any(
            h in request.headers for h in _FORWARDING_HEADERS):
        return None
    return error_response(404, "not_found", "Not Found")


async def metrics_page(request: Request) -> Response:
    st = state_of(request)
    refusal = _metrics_refusal(request, st.settings.metrics_token)
    if refusal is not None:
        return refusal
    try:
        lag, pending = await _enricher_backlog(st)
        metrics.ENRICHER_LAG.set(lag)
        metrics.ENRICHER_PENDING.set(pending)
    except REDIS_DOWN:
        pass  # the last known values stay; redis_reconnects tells the story
    metrics.SOCKETS_OPEN.set(len(st.hub.index))
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@Operation(summary="Console sign-in with the shop's token, or with the code of a one-time "
                   "sign-in link: sets an HttpOnly session cookie", body=(SignIn, SignInCode),
           response=ShopProfile)
async def sign_in(request: Request) -> Response:
    """Token, or a sign-in link's code (once) -> session cookie. Guarded against login
    CSRF: a page elsewhere can make a browser POST a `text/plain` form whose body is JSON
    (the `=` the form puts between a field's name and value hidden in a key that a
    duplicate then overrides), so: same origin only, `application/json` only (which a
    cross-site form cannot send without a preflight we never answer), and no duplicate
    keys. Attempts of either kind count against the address's API requests per minute."""
    st = state_of(request)
    require_same_origin(request)
    require_json(request)
    raw = await read_body(request, st.settings.max_body_bytes)
    # Which of the two bodies, by whether it names a code; then decoded strictly as that one.
    if decode_body(raw, CodeField, "invalid_sign_in").code is msgspec.UNSET:
        body = decode_body(raw, SignIn, "invalid_sign_in", unique_keys=True)
        record = await shops.check_token(st.redis, body.shop_id, body.token)
    else:
        link = decode_body(raw, SignInCode, "invalid_sign_in", unique_keys=True)
        record = await signin.redeem(st.redis, link.code)
    response = JSONResponse(await _profile(st, record))
    await open_session(st.redis, record, response, secure=request.url.scheme == "https",
                       ttl_s=st.settings.session_ttl_s)
    return response


@Operation(summary="The signed-in shop", response=ShopProfile)
async def current_session(request: Request) -> Response:
    st = state_of(request)
    record = await session_shop(st.redis, request)
    if record is None:
        raise Unauthorized("not signed in", code="not_signed_in")
    return JSONResponse(await _profile(st, record))


@Operation(summary="Sign out", status=204)
async def sign_out(request: Request) -> Response:
    st = state_of(request)
    response = Response(status_code=204)
    await close_session(st.redis, request, response)
    return response


@Operation(summary="People watching nearby and reach per post", response=ShopStats,
           authenticated=True, parameters=(SHOP_ID,))
async def shop_stats(request: Request) -> Response:
    """For the console: people watching around the shop now, and each live post's reach.
    Around the shop's registered position only (which only the operator moves), within
    AUDIENCE_RADII_M, and "fewer than 5" under 5 (feed.presence.audience), for reach too
    (rules.reach)."""
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    watching = await st.presence.watchers(shop.region, shop.lat, shop.lon, AUDIENCE_RADII_M)
    post_ids = sorted(p.decode() for p in await async_reply(st.redis.smembers(
        keys.shop_posts(shop.region, shop.id))))
    reach = await reach_of(st.redis, shop.region, post_ids)
    return JSONResponse(ShopStats(
        watching=audience(watching),
        reach=reach,
    ), headers={"Cache-Control": "no-store"})


def qr_svg(text: str) -> bytes:
    """`text` as a QR code, SVG: the shop window's, the sign-in links' and the hold codes'
    alike. Never a Micro QR (which a short text would get): many tills' scanners lack it."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="svg", scale=8, border=2,
                                                  dark="#000", light="#fff", xmldecl=False)
    return buffer.getvalue()


@Operation(summary="QR code of the passer-by feed centred on the shop",
           media_type="image/svg+xml", description="SVG", operation_id="get_qr",
           parameters=(SHOP_ID,))
async def shop_qr(request: Request) -> Response:
    """A QR code (SVG) opening the passer-by feed centred on the shop's street.

    The address is the configured public one (STREETFEED_PUBLIC_URL), never the request's
    Host header: a forged Host must not put another site on a shop window, nor into a
    shared cache. Since nothing here depends on the request, caches may share it."""
    st = state_of(request)
    record = await shops.require_shop(st.redis, request.path_params["shop_id"])
    base = st.settings.public_base_url
    url = f"{base}/?lat={record.lat:.5f}&lon={record.lon:.5f}&radius_m=500&shop={record.id}"
    return Response(qr_svg(url), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=300", "X-QR-Target": url})


@Operation(summary="A one-time sign-in link to the console, for another device (works once, "
                   "within 24 h)", status=201, response=SignInLink, authenticated=True,
           parameters=(SHOP_ID,))
async def create_signin_link(request: Request) -> Response:
    """A fresh sign-in link and its QR code, for the shopkeeper's phone to scan off the
    till's screen. Named by the configured public address, as the shop's QR code is; the
    QR comes in the answer, not from a URL of its own, which would carry the code."""
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    # Each link is a key kept 24 h: a token or session must not fill Redis with them.
    await st.limiter.hit("signin_links", shop.id, st.settings.signin_links_per_minute)
    link = await signin.make_link(st.redis, shop.id, st.settings.public_base_url, st.clock)
    qr = "data:image/svg+xml;base64," + base64.b64encode(qr_svg(link.url)).decode()
    return JSONResponse(SignInLink(url=link.url, expires_at=link.expires_at, qr=qr),
                        status_code=201, headers={"Cache-Control": "no-store"})


@Operation(summary="Settings the pages need", response=ClientConfig)
async def client_config(request: Request) -> Response:
    """What the pages need to know about this deployment (not secrets)."""
    st = state_of(request)
    return JSONResponse(ClientConfig(tile_url=st.settings.tile_url,
                                     tile_attribution=st.settings.tile_attribution,
                                     fallback=Point(lat=st.settings.fallback_centre[0],
                                                    lon=st.settings.fallback_centre[1]),
                                     radius_max_m=RADIUS_MAX_M,
                                     media_per_post_max=MEDIA_PER_POST_MAX,
                                     media_upload_max_bytes=MEDIA_UPLOAD_MAX_BYTES,
                                     media_pixels_max=MEDIA_PIXELS_MAX))


_CATEGORIES_BODY = msgspec.json.encode(CategoryList(categories=list(CATEGORIES)))


@Operation(summary="Shop categories: every code a shop's `category` may hold, with its "
                   "French and English labels", response=CategoryList)
async def categories(request: Request) -> Response:
    """The list of schemas.categories. It changes only with a deploy, and then only by
    additions (codes are never renamed or removed): caches may keep it a day."""
    return Response(_CATEGORIES_BODY, media_type="application/json",
                    headers={"Cache-Control": "public, max-age=86400"})
