"""A minimal HTTP/1.1 keep-alive client for posting: the harness shares the machine.

httpx costs ~0.5-1 ms of CPU per request; at hundreds of posts a second that
is a sizeable share of a 2-core machine taken from the server under test. This
client does one request at a time per connection and reads responses by
Content-Length (every server under test sends it), ~10x cheaper.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes,
                      headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = (f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
            try:
                self.writer.write(head.encode() + body)
                status_line = await self.reader.readuntil(b"\r\n")
                length = 0
                close = False
                while True:
                    line = await self.reader.readuntil(b"\r\n")
                    if line == b"\r\n":
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                payload = await self.reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.close()
                if attempt == 2:
                    raise HttpError(str(exc)) from exc
                continue  # a keep-alive connection the server had closed: once more
            if close:
                self.close()
            return int(status_line.split(b" ", 2)[1]), payload
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Client:
    """A pool of keep-alive connections to one origin; `post_json` (or `get`) takes a free
    one."""

    def __init__(self, base_url: str, size: int = 32) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        self.pool: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(size):
            self.pool.put_nowait(Connection(parts.hostname, parts.port))
        self.all = list(self.pool._queue)  # type: ignore[attr-defined]

    async def post_json(self, path: str, body: Any,
                        headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = await self.pool.get()
        try:
            return await conn.request("POST", path, json.dumps(body).encode(), headers or {})
        finally:
            self.pool.put_nowait(conn)

    async def get(self, path: str) -> tuple[int, bytes]:
        conn = await self.pool.get()
        try:
            return await conn.request("GET", path, b"", {})
        finally:
            self.pool.put_nowait(conn)

    async def aclose(self) -> None:
        for conn in self.all:
            conn.close()
