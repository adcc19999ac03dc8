"""Pure domain rules: geo cells, regions, opening hours, cursors, text and moderation,
post lifetimes and enrichment, shops' tokens and profiles, trusted proxies, the clock and
the error codes. No I/O: every function here is tested directly (tests/test_pure.py and
its neighbours). May import only `schemas`.
"""
