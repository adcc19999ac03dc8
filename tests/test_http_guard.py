"""web/http_protocol.py reads the request stream beside uvicorn's parser: what holds a
connection after an upgrade uvicorn does not take, and a head that never ends."""

from __future__ import annotations

import asyncio
import time

from runtime.settings import Settings
from tests.helpers import web_server

H2C = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


async def _closed_within(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         trickle: bytes, limit_s: float) -> float:
    """Send `trickle` a byte every 0.2 s (a slow client's pace, not a synchronisation) and
    return when the server closed the connection, failing past `limit_s`."""
    started = time.monotonic()

    async def drip() -> None:
        for byte in trickle:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    dripping = asyncio.create_task(drip())
    try:
        while await asyncio.wait_for(reader.read(4096), limit_s):
            pass
    finally:
        dripping.cancel()
        writer.close()
    return time.monotonic() - started


async def test_after_an_upgrade_uvicorn_does_not_take_a_trickled_head_is_still_cut(
        redis: object, settings: Settings) -> None:
    """Cold try: after `Upgrade: h2c` (answered, uvicorn reads on) a head sent a byte a
    second was held for ever; the head timeout holds after it as before it."""
    async with web_server(settings.with_(head_timeout_s=1.5)) as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(H2C)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        await asyncio.wait_for(reader.readexactly(int(
            head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])), 5)
        took = await _closed_within(
            reader, writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, 8)
        assert took < 5, took


async def test_after_an_upgrade_uvicorn_does_not_take_a_trickled_body_is_still_cut(
        redis: object, settings: Settings) -> None:
    async with web_server(settings.with_(body_idle_timeout_s=1.0,
                                         body_min_bytes_per_s=1024)) as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(H2C)
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"POST /api/v1/shops/x/posts HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
        took = await _closed_within(reader, writer, b"{" + b" " * 200, 10)
        assert took < 7, took


async def test_a_request_head_past_the_limit_is_refused_431(
        redis: object, settings: Settings) -> None:
    """Cold try: a 64 MiB header was read whole and answered 200 (the web process kept
    65 MiB more); a head past max_head_bytes is answered 431 and the connection closed."""
    async with web_server(settings) as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
        answered = asyncio.create_task(reader.read())  # everything until the server's EOF
        sent = 0
        while not answered.done() and sent < 4 * 1024 * 1024:  # a header of up to 4 MiB
            writer.write(b"a" * 16384)
            await writer.drain()
            sent += 16384
        answer = await asyncio.wait_for(answered, 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
        assert b'"code":"headers_too_large"' in answer
        assert sent < 4 * 1024 * 1024, sent  # answered before the client was done
        # An ordinary head still goes through.
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 8000 + b"\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        assert head.startswith(b"HTTP/1.1 200"), head
        # A head past the limit that arrives whole in one read is refused too: 40 and
        # 100 KB heads in one write were answered 200 (cold attack).
        for size in (settings.max_head_bytes + 1024, 100_000):
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * size
                         + b"\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 431 "), (size, answer[:80])
