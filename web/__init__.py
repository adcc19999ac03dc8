"""The web edge: HTTP API (`api`, `auth`, `openapi`), the three pages (`pages`) and the
HTTP transport's guards (`http_protocol`, `forwarded`, `requests_log`). `app.create_app`
assembles one web process's ASGI app, with the feed gateway from `feed/` on /ws/feed.
"""
