"""web/http_protocol.py's own reading of the request stream stops at an upgrade: what
holds a connection whose upgrade uvicorn does not take."""

from __future__ import annotations

import asyncio
import time

from runtime.settings import Settings
from tests.helpers import web_server


async def test_an_upgrade_uvicorn_does_not_take_cannot_hold_the_connection(
        redis: object, settings: Settings) -> None:
    """After `Upgrade: h2c` the guard's parser reads nothing more, so no head timer is armed
    again: the request is answered, and uvicorn's parser refuses the next byte and closes
    (were it to keep reading, a client trickling bytes would hold the connection)."""
    async with web_server(settings) as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: h2c\r\n\r\n")
        started = time.monotonic()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head

        async def drip() -> None:  # a byte now and then, as a slow client would
            for _ in range(40):
                writer.write(b"X")
                await asyncio.sleep(0.2)  # the client's pace, not a synchronisation

        dripping = asyncio.create_task(drip())
        try:
            while await asyncio.wait_for(reader.read(4096), 5):
                pass
        finally:
            dripping.cancel()
            writer.close()
        assert time.monotonic() - started < 3
