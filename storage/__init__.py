"""Redis: every key's name (`keys`), the connection and its outage errors, and the
repositories over it: the inbox stream, the live index and feed stream, shops, rate limits.
May import `runtime`, `rules` and `schemas`.
"""
