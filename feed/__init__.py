"""The gateway: the last hop of the data path (`feed` stream -> browsers).

`reader` (one XREAD loop per process per region) hands entries to `hub`, which encodes
each frame once and picks sockets with `index` (pure: cells, then the exact distance);
`raw_ws` is the feed socket's transport and `gateway` its life (admission, snapshot or
resume, moves). `presence` and `stats` count who watches, `snapshot` reads an area.
"""
