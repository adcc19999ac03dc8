"""The routes of "Hold it for me" (DESIGN.md section 9): a passer-by asks, reads and
cancels a hold with the secret it was answered with; the shop lists and answers its holds
with its token or console session. services.holds does the work.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from rules.errors import ApiError, NotFound
from rules.holds import Action
from schemas.holds import HoldCreated, HoldIn, HoldView, ShopHold, ShopHolds
from schemas.limits import HOLD_CODE_ALPHABET, HOLD_CODE_LEN
from web.api import decode_body, qr_svg, read_body, require_json
from web.auth import require_same_origin, shop_for
from web.media import IMMUTABLE
from web.openapi import HOLD_ACTION, HOLD_CODE, HOLD_ID, POST_ID, SHOP_ID, Operation
from web.responses import JSONResponse
from web.state import state_of

__all__ = ["answer_hold", "cancel_hold", "hold_qr", "read_hold", "shop_holds", "take_hold"]

_POST_ID = re.compile(r"p_[a-z0-9]{16}")
_HOLD_ID = re.compile(r"h_[a-z0-9]{16}")
_ACTIONS: dict[str, Action] = {"accept": "accept", "decline": "decline",
                               "collected": "collected"}
# A hold's body is a first name: a few hundred bytes at most, whatever max_body_bytes says.
_BODY_MAX = 1024
# A hold's answers carry its secret, a first name and a code to say at the till: kept by
# no cache on the way, nor by the browser's (a cold attacker's).
_PRIVATE = {"Cache-Control": "no-store"}


def _hold_id(request: Request) -> str:
    hold_id: str = request.path_params["hold_id"]
    if not _HOLD_ID.fullmatch(hold_id):
        raise NotFound(f"no hold {hold_id[:40]!r}", code="unknown_hold")
    return hold_id


@Operation(summary="Ask the shop to hold one unit of a post (a first name; no account)",
           body=HoldIn, response=HoldCreated, status=201, parameters=(POST_ID,),
           errors=((410, "The post was withdrawn or has ended (post_gone)"),))
async def take_hold(request: Request) -> Response:
    st = state_of(request)
    post_id: str = request.path_params["post_id"]
    if not _POST_ID.fullmatch(post_id):
        raise ApiError(f"no live post {post_id[:40]!r}", code="post_gone", status=410)
    # A page of another site could otherwise make its visitors' browsers take holds (a
    # text/plain or form POST needs no preflight; post ids are public): JSON only, and
    # not from another origin, as at sign-in (a cold attacker's).
    require_same_origin(request)
    require_json(request)
    new = decode_body(await read_body(request, _BODY_MAX), HoldIn, "invalid_hold",
                      unique_keys=True)
    address = request.client.host if request.client is not None else ""
    created = await st.holds.take(post_id, new, address)
    return JSONResponse(created, status_code=201, headers=_PRIVATE)


@Operation(summary="A hold as its passer-by sees it (Authorization: Bearer <secret>)",
           response=HoldView, parameters=(HOLD_ID,))
async def read_hold(request: Request) -> Response:
    st = state_of(request)
    view = await st.holds.view(_hold_id(request), request.headers.get("authorization"))
    return JSONResponse(view, headers=_PRIVATE)


@Operation(summary="Cancel a hold (Authorization: Bearer <secret>)", response=HoldView,
           parameters=(HOLD_ID,))
async def cancel_hold(request: Request) -> Response:
    st = state_of(request)
    view = await st.holds.cancel(_hold_id(request), request.headers.get("authorization"))
    return JSONResponse(view, headers=_PRIVATE)


@Operation(summary="The shop's open holds (pending and accepted), soonest to expire first",
           response=ShopHolds, authenticated=True, parameters=(SHOP_ID,))
async def shop_holds(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    return JSONResponse(ShopHolds(holds=await st.holds.of_shop(shop)), headers=_PRIVATE)


@Operation(summary="Accept, decline or mark collected one of the shop's holds",
           response=ShopHold, authenticated=True, parameters=(SHOP_ID, HOLD_ID, HOLD_ACTION))
async def answer_hold(request: Request) -> Response:
    st = state_of(request)
    shop = await shop_for(request, request.path_params["shop_id"])
    action = _ACTIONS.get(request.path_params["action"])
    if action is None:
        raise NotFound("the actions are accept, decline and collected", code="not_found")
    return JSONResponse(await st.holds.answer(shop, _hold_id(request), action),
                        headers=_PRIVATE)


@Operation(summary="A hold's code as a QR code (SVG), for the till's scanner",
           media_type="image/svg+xml", description="SVG", operation_id="get_hold_qr",
           parameters=(HOLD_CODE,))
async def hold_qr(request: Request) -> Response:
    """Public and bound to nothing but the code: it encodes the 4 characters the passer-by
    says aloud at the till anyway (no hold id, no secret), so one code's image never
    changes and may be cached for good."""
    said: str = request.path_params["code"]
    if len(said) != HOLD_CODE_LEN or any(c not in HOLD_CODE_ALPHABET for c in said):
        raise NotFound(f"not a hold code: {said[:40]!r}", code="not_found")
    return Response(qr_svg(said), media_type="image/svg+xml",
                    headers={"Cache-Control": IMMUTABLE})
