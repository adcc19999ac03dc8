"""Streetfeed: a real-time street feed for independent local shops.

This package holds what every part of the data path shares: settings, Redis
key names, the error hierarchy, the shop registry, the Redis connection (or the
embedded server behind it) and the command line. The path itself lives in
`web/` (POST, pages) -> `workers/` (enricher, scheduler) -> `feed/` (gateway)
with every wire and storage format in `schemas/`.
"""
