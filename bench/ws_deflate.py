"""What permessage-deflate would cost the gateway if feed sockets negotiated it
(docs/performance.md, "Page weight and compression"): memory per socket and CPU per frame.

    .venv/bin/python -m bench.ws_deflate [--sockets 1000] [--frames 20]

Sans-I/O, no network: N server-side `websockets` protocols as feed/raw_ws.py makes them
(`Protocol(Side.SERVER, state=OPEN)`), without an extension and with the one websockets
(and uvicorn) negotiate by default (window 2^12, memLevel 5, context takeover), each
sent the same feed frames. Without compression the gateway writes one encoded frame to
every socket; with it each socket's compressor must deflate the frame again, since its
output depends on what that socket was sent before.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
import tracemalloc

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import OPEN, Protocol, Side

_WORDS = ("tomme", "brebis", "comté", "fraises", "pain", "levain", "huîtres", "café",
          "torréfié", "miel", "bio", "ce matin", "-30 %", "jusqu'à", "18 h", "arrivage",
          "Plougastel", "Arcachon", "châtaigne", "cidre", "chèvre", "seigle", "noix")


def _frames(count: int) -> list[bytes]:
    """Feed frames of the usual size (~400-600 bytes), each a different post of one of a
    few shops, as a street's feed is (a compressor with context takeover finds the
    repeated keys and shop names, not the same frame again)."""
    rnd = random.Random(19)
    shops = [("au-pain-dore", "Au Pain Doré", "bakery", 44.8372, -0.5741),
             ("fromagerie-test", "Fromagerie du Marché", "cheese", 44.8368, -0.5730),
             ("primeur-sainte-cat", "Le Primeur de Sainte-Cat", "greengrocer", 44.8380,
              -0.5738)]
    out = []
    for i in range(count):
        shop_id, name, category, lat, lon = rnd.choice(shops)
        post = {"id": "p_" + "".join(rnd.choices(string.ascii_lowercase + string.digits,
                                                 k=16)),
                "kind": rnd.choice(("flash_offer", "new_arrival")),
                "title": " ".join(rnd.choices(_WORDS, k=4)).capitalize(),
                "posted_at": f"2026-11-30T{8 + i % 10:02d}:{rnd.randrange(60):02d}:00Z",
                "expires_at": f"2026-11-30T{12 + i % 10:02d}:{rnd.randrange(60):02d}:00Z",
                "shop": {"id": shop_id, "name": name, "category": category, "lat": lat,
                         "lon": lon},
                "text": " ".join(rnd.choices(_WORDS, k=rnd.randrange(6, 14))),
                "producers": [{"id": f"pr_{rnd.randrange(10**8):08d}", "name": "Ferme d'Iraty",
                               "place": "Mendive", "distance_km": round(rnd.uniform(5, 190),
                                                                        1)}]}
        out.append(json.dumps({"type": "post", "post": post,
                               "cursor": f"{1764496800000 + i * 4000}-0"},
                              ensure_ascii=False, separators=(",", ":")).encode())
    return out


def _sockets(count: int, deflate: bool) -> list[Protocol]:
    sockets = []
    for _ in range(count):
        protocol = Protocol(Side.SERVER, state=OPEN)
        if deflate:
            protocol.extensions = [PerMessageDeflate(
                remote_no_context_takeover=False, local_no_context_takeover=False,
                remote_max_window_bits=12, local_max_window_bits=12,
                compress_settings={"memLevel": 5})]
        sockets.append(protocol)
    return sockets


def _measure(count: int, frames: list[bytes], deflate: bool) -> tuple[float, float, int]:
    """(KiB per socket, µs of CPU per frame per socket, bytes on the wire per frame)."""
    first, frames = frames[0], frames[1:]  # the first is sent before the clock starts
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sockets = _sockets(count, deflate)
    # One frame each first: zlib allocates part of its state on first use.
    for protocol in sockets:
        protocol.send_text(first)
        protocol.data_to_send()
    kib = (tracemalloc.get_traced_memory()[0] - before) / count / 1024
    tracemalloc.stop()
    wire = 0
    started = time.process_time()
    for frame in frames:
        # Framed per socket in both cases, so the difference is the compressor's work (the
        # gateway itself frames once and writes the same bytes to every socket).
        for protocol in sockets:
            protocol.send_text(frame)
            wire += sum(len(chunk) for chunk in protocol.data_to_send())
    cpu_us = (time.process_time() - started) / (count * len(frames)) * 1e6
    return kib, cpu_us, wire // (count * len(frames))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    frames = _frames(args.frames + 1)
    print(f"{args.sockets:,} sockets, {args.frames} frames of "
          f"~{sum(map(len, frames)) // len(frames)} bytes each")
    print("                     | memory per socket | CPU per frame per socket | wire bytes")
    for deflate in (False, True):
        kib, cpu_us, wire = _measure(args.sockets, frames, deflate)
        name = "permessage-deflate" if deflate else "none"
        print(f"{name:20} | {kib:13.1f} KiB | {cpu_us:20.2f} µs | {wire:10,}")


if __name__ == "__main__":
    main()
