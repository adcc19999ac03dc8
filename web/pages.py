"""The three faces (static HTML + JS modules) and the headers every response gets."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.redis_conn import REDIS_DOWN
from storage.shops import get_shop
from web.assets import Assets
from web.state import state_of

__all__ = ["ASSETS", "STATIC_DIR", "SecurityHeaders", "console", "manifest", "passer_by", "screen",
           "service_worker", "static_file"]

log = logging.getLogger("streetfeed.web")

STATIC_DIR = Path(__file__).parent / "static"
# One a process, whatever the apps (tests start many): its files are compressed once, and
# the copies kept for the next processes of this install (web/assets.py).
ASSETS = Assets(STATIC_DIR, cache=Path(__file__).parent / ".compressed")

_SHOP_CHECK_FAILED: tuple[type[Exception], ...] = (*REDIS_DOWN, TimeoutError)

# Scripts only from our own origin (no inline script): user text can never run.
# Map tiles come from the configured tile server, hence https: images.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: "
        "https:; connect-src 'self'; font-src 'self'; manifest-src 'self'; worker-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}")


async def _page(request: Request, name: str, status_code: int = 200) -> Response:
    return await state_of(request).assets.response(request, name, status_code=status_code)


async def passer_by(request: Request) -> Response:
    return await _page(request, "index.html")


async def console(request: Request) -> Response:
    return await _page(request, "shop.html")


async def static_file(request: Request) -> Response:
    """/static/...: modules, styles, icons, vendored Leaflet (web/assets.py)."""
    return await state_of(request).assets.response(request, request.path_params["path"])


async def screen(request: Request) -> Response:
    """The in-shop screen, or a 404 page for a shop known not to exist (or disabled).

    Only a definite "no such shop" is a 404: when Redis cannot answer now, the screen
    page is served anyway, because a screen left on the wall must come back by itself
    once Redis does (a 404 page would stay a 404 page).
    """
    st = state_of(request)
    try:
        # A slow Redis must not hold the page back (settings.probe_timeout_s).
        async with asyncio.timeout(st.settings.probe_timeout_s):
            record = await get_shop(st.redis, request.path_params["shop_id"])
    except _SHOP_CHECK_FAILED as exc:
        log.warning("screen page served without checking its shop (Redis: %r)", exc)
        return await _page(request, "screen.html")
    if record is None or record.disabled:
        return await _page(request, "screen-unknown.html", status_code=404)
    return await _page(request, "screen.html")


async def service_worker(request: Request) -> Response:
    # Served from the root so that its scope covers the whole site.
    return await state_of(request).assets.response(
        request, "sw.js", headers={"Service-Worker-Allowed": "/"})


async def manifest(request: Request) -> Response:
    return await state_of(request).assets.response(request, "manifest.webmanifest")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, screen_frame_ancestors: str = "'none'") -> None:
        self.app = app
        self.csp = _CSP.format(ancestors="'none'").encode()
        self.screen_csp = _CSP.format(ancestors=screen_frame_ancestors).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.screen_csp if scope["path"].startswith("/screen/") else self.csp

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend([
                    (b"content-security-policy", csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"permissions-policy", b"geolocation=(self), camera=(), microphone=()"),
                ])
            await send(message)

        await self.app(scope, receive, send_with_headers)
