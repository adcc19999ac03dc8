"""The web process: the first hop of the data path and the last.

`api` takes shopkeepers' posts (validate, authenticate, moderate, `in` stream)
and answers feed and shop queries; `pages` serves the three faces; the
WebSocket route is the gateway from `feed/`. `app.create_app` wires them and
owns the Redis connection and the feed reader through its lifespan.
"""
