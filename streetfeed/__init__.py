"""Streetfeed's composition root: the command line (`cli`), the process supervisor of
`streetfeed up` (`runner`), the embedded Redis-compatible server and the demo street.

Only this package wires the layers together (docs/architecture.md, "Layers"); nothing
imports it. The data path itself: `web/` (POST) -> `services/ingest` -> `storage/inbox`
-> `workers/` (enricher, scheduler) -> `storage/live` -> `feed/` (gateway) -> browsers.
"""
