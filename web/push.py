"""The routes of alerts for followed shops (Web Push, DESIGN.md section 9): the VAPID key,
and a page's subscription, made once and then changed or removed with its secret.
services.push does the work; workers.pusher sends.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from rules.errors import NotFound
from schemas.push import PushCreated, PushKey, PushSubscribeIn, PushUpdateIn, PushView
from web.api import decode_body, read_body, require_json
from web.auth import require_same_origin
from web.openapi import SUBSCRIPTION_ID, Operation
from web.responses import JSONResponse
from web.state import state_of

__all__ = ["delete_subscription", "push_key", "subscribe", "update_subscription"]

_SUBSCRIPTION_ID = re.compile(r"s_[a-z0-9]{16}")
# An endpoint (at most 1,024 characters), two keys and 50 shop ids of at most 64: ~5 KiB.
_BODY_MAX = 8 * 1024
# Answers carrying a subscription's secret (or made with it): kept by no cache on the way.
_PRIVATE = {"Cache-Control": "no-store"}


def _subscription_id(request: Request) -> str:
    sub_id: str = request.path_params["subscription_id"]
    if not _SUBSCRIPTION_ID.fullmatch(sub_id):
        raise NotFound(f"no subscription {sub_id[:40]!r}", code="unknown_push_subscription")
    return sub_id


@Operation(summary="The VAPID public key (RFC 8292) to subscribe with "
                   "(applicationServerKey)", response=PushKey)
async def push_key(request: Request) -> Response:
    st = state_of(request)
    return JSONResponse(PushKey(public_key=st.vapid_public_key))


@Operation(summary="Subscribe a browser to alerts for followed shops (Web Push)",
           body=PushSubscribeIn, response=PushCreated, status=201,
           errors=((422, "Not a push service's endpoint (push_endpoint_not_allowed), keys "
                         "that are not a P-256 point and a 16-byte secret (invalid_push_keys), "
                         "no existing shop (unknown_shop), or an invalid body "
                         "(invalid_push_subscription)"),))
async def subscribe(request: Request) -> Response:
    st = state_of(request)
    # As for holds: a page of another site must not subscribe its visitors' browsers (a
    # text/plain POST needs no preflight): JSON only, and not from another origin.
    require_same_origin(request)
    require_json(request)
    new = decode_body(await read_body(request, _BODY_MAX), PushSubscribeIn,
                      "invalid_push_subscription", unique_keys=True)
    address = request.client.host if request.client is not None else ""
    created = await st.push.subscribe(new, address)
    return JSONResponse(created, status_code=201, headers=_PRIVATE)


@Operation(summary="Replace the shops and kinds of a subscription (Authorization: Bearer "
                   "<secret>)", body=PushUpdateIn, response=PushView,
           parameters=(SUBSCRIPTION_ID,))
async def update_subscription(request: Request) -> Response:
    st = state_of(request)
    sub_id = _subscription_id(request)
    require_json(request)
    change = decode_body(await read_body(request, _BODY_MAX), PushUpdateIn,
                         "invalid_push_subscription", unique_keys=True)
    view = await st.push.update(sub_id, request.headers.get("authorization"), change)
    return JSONResponse(view, headers=_PRIVATE)


@Operation(summary="Remove a subscription (Authorization: Bearer <secret>)", status=204,
           parameters=(SUBSCRIPTION_ID,))
async def delete_subscription(request: Request) -> Response:
    st = state_of(request)
    await st.push.delete(_subscription_id(request), request.headers.get("authorization"))
    return Response(status_code=204, headers=_PRIVATE)
