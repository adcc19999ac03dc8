"""The one key under which the web app's lifespan state travels.

The app's lifespan (web.app) yields `{STATE_KEY: web.state.AppState(...)}`. uvicorn keeps
that dict and hands it on: every connection's protocol object gets it as `app_state`
(web/http_protocol.py reads `.guard` from the value; feed/raw_ws.py `.guard`, `.proxies`
and `.gateway`), and every ASGI scope a copy as `scope["state"]` (read through
`web.state.state_of`). The key lives down here because the feed protocol, a layer below
web, reads it too.
"""

from __future__ import annotations

__all__ = ["STATE_KEY"]

STATE_KEY = "streetfeed"
