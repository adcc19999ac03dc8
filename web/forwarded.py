"""The client behind a trusted reverse proxy, for every HTTP request (ASGI scope).

Outermost of our middlewares: per-address rate limits, the session cookie's `Secure`
flag and same-origin checks all read `scope["client"]` and `scope["scheme"]` after it.
The rule is rules/proxies.py's, which feed sockets (feed/raw_ws.py, outside ASGI)
follow too; uvicorn's own ProxyHeadersMiddleware is off (streetfeed.runner) so that
there is one rule, not two that might drift.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from rules.proxies import TrustedProxies, resolve

__all__ = ["ForwardedClient"]


class ForwardedClient:
    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] in self.trusted:
            forwarded_for: list[bytes] = []
            forwarded_proto: list[bytes] = []
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded_for.append(value)
                elif name == b"x-forwarded-proto":
                    forwarded_proto.append(value)
            default = "http" if scope["type"] == "http" else "ws"
            resolved = resolve(client[0], scope.get("scheme", default),
                               b", ".join(forwarded_for).decode("latin-1") or None,
                               b", ".join(forwarded_proto).decode("latin-1") or None,
                               self.trusted)
            # The port behind a proxy is unknown (0), as uvicorn reports it.
            port = client[1] if resolved.address == client[0] else 0
            scope = {**scope, "client": (resolved.address, port), "scheme": resolved.scheme}
        await self.app(scope, receive, send)
