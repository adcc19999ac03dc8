"""Presence reports published (feed/stats.py): the gateway's CPU to encode one, Valkey's
CPU per report and per cell, alone and with listening processes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.capacity_sim.inputs import SETTINGS
from bench.capacity_sim.presence import presence_cells
from bench.capacity_sim.probe.city import ProbeCity
from bench.capacity_sim.probe.common import cpu_s

# A presence report of the probe: this many of the city's occupied cells (a gateway process
# of the city holds ~6,500; a listener folds every gateway's), as one fake gateway.
REPORT_CELLS = 20_000


def encode_empty_report(gateway: str) -> bytes:
    """What a gateway leaving publishes: listeners drop its counts at once."""
    from feed.stats import _encode
    from schemas.presence import PresenceReport

    return _encode(PresenceReport(gateway=gateway))


def probe_report(city: ProbeCity, gateway: str, extra: tuple[int, int] | None = None,
                  limit: int = REPORT_CELLS) -> tuple[bytes, int]:
    """(the encoded PresenceReport, its cells): the city's cells and their phones, encoded
    by feed.stats's encoder; `extra` (cell, count) replaces the last cell."""
    from feed.stats import _encode
    from schemas.presence import PresenceReport

    cells, counts = np.unique(presence_cells(city.pop.lat[~city.pop.screen],
                                             city.pop.lon[~city.pop.screen]), return_counts=True)
    pairs = [(int(c), int(n)) for c, n in zip(cells, counts, strict=True)]
    pairs = pairs[:limit]
    if extra is not None:
        pairs = [*[p for p in pairs if p[0] != extra[0]][:limit - 1], extra]
    return _encode(PresenceReport(gateway=gateway, cells=pairs)), len(pairs)


async def presence_publish(sock: Path, vproc: Any, city: ProbeCity,
                           out: dict[str, float | str]) -> None:  # pragma: no cover
    """PUBLISH of a presence report (feed/stats.py): the gateway's CPU to build and encode
    it, and Valkey's CPU per report and per cell with nobody listening, and per listening
    process (raw subscribers here that only drain their socket, so Valkey's side alone is
    seen; the web process's side is measured in gateway.py)."""
    from collections import Counter

    import msgspec

    from feed.stats import _encode
    from schemas.presence import PresenceReport
    from storage import keys

    channel = keys.presence_channel(SETTINGS.region)
    report, n_cells = probe_report(city, "probe-fake")
    out["presence_bytes_per_cell"] = round(len(report) / n_cells, 1)
    # What StatsPublisher does per flush: the counts as a list, one report, encoded once.
    counter = Counter(dict(msgspec.json.decode(report, type=PresenceReport).cells))
    t0 = time.process_time()
    for _ in range(50):
        _encode(PresenceReport(gateway="probe-fake", cells=list(counter.items())))
    out["gw_presence_encode_us_per_cell"] = round((time.process_time() - t0) / 50 / n_cells
                                                  * 1e6, 4)
    small = _encode(PresenceReport(gateway="probe-fake", cells=[next(iter(counter.items()))]))

    async def valkey_per_publish(message: bytes, rounds: int, listeners: int) -> float:
        return await _valkey_per_publish(sock, vproc, channel, message, rounds, listeners)

    # Per report and per cell, with nobody listening and with 4 listeners: a 1-cell report
    # gives the per-report part, a 20,000-cell one the per-cell part.
    listeners = 4
    alone_small = await valkey_per_publish(small, 2_000, 0)
    fanned_small = await valkey_per_publish(small, 2_000, listeners)
    alone = await valkey_per_publish(report, 100, 0)
    fanned = await valkey_per_publish(report, 100, listeners)
    per_report = (fanned_small - alone_small) / listeners
    out["valkey_publish_us_per_cell"] = round((alone - alone_small) / n_cells * 1e6, 4)
    out["valkey_fanout_us_per_report_per_listener"] = round(per_report * 1e6, 3)
    out["valkey_fanout_us_per_cell_per_listener"] = round(
        ((fanned - alone) / listeners - per_report) / n_cells * 1e6, 4)
    out["valkey_publish_us_small_report"] = round(alone_small * 1e6, 2)   # (reference)


async def _valkey_per_publish(sock: Path, vproc: Any, channel: str, message: bytes,
                              rounds: int, listeners: int) -> float:  # pragma: no cover
    """Valkey CPU per PUBLISH of `message` with that many subscribers draining it."""
    from redis.asyncio import Redis

    frame = (f"*3\r\n$7\r\nmessage\r\n${len(channel)}\r\n{channel}\r\n"
             f"${len(message)}\r\n").encode() + message + b"\r\n"
    streams = []
    for _ in range(listeners):
        reader, writer = await asyncio.open_unix_connection(str(sock), limit=2**22)
        writer.write(f"*2\r\n$9\r\nSUBSCRIBE\r\n${len(channel)}\r\n{channel}\r\n"
                     .encode())
        await writer.drain()
        await reader.readuntil(b":1\r\n")   # the subscribe confirmation
        streams.append((reader, writer))

    async def drain(reader: asyncio.StreamReader) -> None:
        got = 0
        while got < rounds * len(frame):
            chunk = await reader.read(2**20)
            if not chunk:
                raise SystemExit("probe: a presence subscriber was disconnected")
            got += len(chunk)

    client = Redis(unix_socket_path=str(sock))
    before = cpu_s(vproc)
    drains = [asyncio.create_task(drain(reader)) for reader, _ in streams]
    for _ in range(rounds):
        await client.publish(channel, message)
    await asyncio.wait_for(asyncio.gather(*drains), 60)
    spent = (cpu_s(vproc) - before) / rounds
    await client.aclose()
    for _, writer in streams:
        writer.close()
    return spent


def _walk_every_cell(cells: list[tuple[int, int]], lat: float, lon: float,
                     radii: tuple[int, ...]) -> dict[int, int]:
    """PresenceBoard.counts before issue 19 (every cell of every report, a distance each):
    the reference the new figure is compared with."""
    from rules.geo import CellGrid, haversine_m
    from schemas.limits import PRESENCE_CELL_DEG

    grid = CellGrid(PRESENCE_CELL_DEG)
    counts = dict.fromkeys(radii, 0)
    for cell, n in cells:
        distance = haversine_m(lat, lon, *grid.centre_of(cell))
        for radius in radii:
            if distance <= radius:
                counts[radius] += n
    return counts


async def console_counts(cells: list[tuple[int, int]], places: list[tuple[float, float]],
                         gateways: int = 1) -> tuple[float, float, float, float]:
    """People watching around each place (a shop), as a console's update and GET /stats
    count them (feed/presence.py PresenceBoard.counts), with `cells` heard from `gateways`
    gateways (dealt out in turn): (µs per count, µs per count of the walk it replaced,
    cells the count looks at, µs per cell heard to sum the reports again after a change,
    once for all the region's counts). The board is fed the reports as its listening loop
    would; it never connects."""
    import msgspec
    from redis.asyncio import Redis

    from feed.presence import PresenceBoard
    from rules.geo import CellGrid, cells_within
    from schemas.limits import AUDIENCE_RADII_M, PRESENCE_CELL_DEG
    from schemas.presence import PresenceReport
    from storage import keys

    board = PresenceBoard(Redis(), SETTINGS)
    channel = keys.presence_channel(SETTINGS.region)
    channels = {channel: SETTINGS.region}
    board._take({"type": "subscribe", "channel": channel.encode(), "data": 1}, channels)
    for g in range(gateways):
        report = PresenceReport(gateway=f"probe-{g}", cells=cells[g::gateways])
        board._take({"type": "message", "channel": channel.encode(),
                     "data": msgspec.json.encode(report)}, channels)
    board._since[SETTINGS.region] -= SETTINGS.presence_interval_s + 1  # a round heard
    for lat, lon in places:  # the cells around each shop, found once per shop and kept
        board.counts(SETTINGS.region, lat, lon, AUDIENCE_RADII_M)
    rounds = 20
    t0 = time.process_time()
    for _ in range(rounds):
        for lat, lon in places:
            board.counts(SETTINGS.region, lat, lon, AUDIENCE_RADII_M)
    new_us = (time.process_time() - t0) / rounds / len(places) * 1e6
    t0 = time.process_time()
    for _ in range(rounds):
        board._sums.clear()
        board._sums_of(SETTINGS.region)
    sums_us = (time.process_time() - t0) / rounds / len(cells) * 1e6
    t0 = time.process_time()
    for lat, lon in places[:20]:
        walked = _walk_every_cell(cells, lat, lon, AUDIENCE_RADII_M)
        if walked != board.counts(SETTINGS.region, lat, lon, AUDIENCE_RADII_M):
            raise SystemExit(f"probe: counts differ from the walk at {lat}, {lon}")
    walk_us = (time.process_time() - t0) / min(20, len(places)) * 1e6
    grid = CellGrid(PRESENCE_CELL_DEG)
    looked = float(np.mean([sum(map(len, cells_within(grid, lat, lon, AUDIENCE_RADII_M)))
                            for lat, lon in places]))
    return new_us, walk_us, looked, sums_us


async def probe_console_counts(city: ProbeCity, out: dict[str, float | str]) -> None:
    """`console_counts` with the city's report (REPORT_CELLS cells) around its shops."""
    from msgspec.json import decode

    from schemas.presence import PresenceReport

    report, _n = probe_report(city, "probe")
    cells = decode(report, type=PresenceReport).cells
    places = [(float(s.lat), float(s.lon)) for s in city.shops[:200]]
    new_us, walk_us, looked, sums_us = await console_counts(cells, places, gateways=4)
    out["console_count_us"] = round(new_us, 2)
    out["console_count_walk_us"] = round(walk_us, 1)
    out["console_count_cells"] = round(looked, 1)
    out["listener_sums_us_per_cell"] = round(sums_us, 4)
