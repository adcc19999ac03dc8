"""The gateway: the last hop of the data path (`feed` stream -> browsers).

Pure parts (geo cells, subscriber index, frames, cursors) carry no I/O and are
tested directly; `reader` (one XREAD loop per process) and `gateway` (the
WebSocket endpoint and per-socket writers) are thin async layers around them.
"""
