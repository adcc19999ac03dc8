"""feed/raw_ws.py at the byte level: what a client sees of the handshake and of the
protocol-level keepalive, against real uvicorn and the real app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from runtime.settings import Settings
from tests.helpers import wait_for, web_server

STREET = (44.8370, -0.5735)
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@contextlib.asynccontextmanager
async def _server(settings: Settings, **uvicorn_options: Any) -> AsyncIterator[int]:
    async with web_server(settings, uvicorn_options=uvicorn_options) as web:
        yield web.port


def _upgrade(path: str, **headers: str) -> bytes:
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = b""
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return status.encode(), headers, body


async def test_an_upgrade_elsewhere_than_the_feed_is_answered_404(
        redis: object, settings: Settings) -> None:
    async with _server(settings) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_upgrade("/ws/other?lat=1", X_Request_ID="raw-ws-404"))
        status, headers, body = await _answer(reader)
        assert status.startswith(b"HTTP/1.1 404"), status
        assert headers["x-request-id"] == "raw-ws-404"
        assert json.loads(body)["error"]["code"] == "not_found"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and closed
        writer.close()


async def _feed_socket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                            ClientProtocol]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_upgrade(f"/ws/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=300"))
    status, _, _ = await _answer(reader)
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer, ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN,
                                          max_size=None)


async def test_keepalive_pings_follow_the_config_and_an_unanswered_one_closes_1011(
        redis: object, settings: Settings) -> None:
    async with _server(settings, ws_ping_interval=0.1, ws_ping_timeout=0.5) as port:
        # A client that answers: pinged again and again, still open.
        reader, writer, client = await _feed_socket(port)
        pings = 0
        while pings < 4:
            data = await asyncio.wait_for(reader.read(65536), 5)
            assert data, "the server closed an answering client"
            client.receive_data(data)
            events: list[Frame] = client.events_received()  # type: ignore[assignment]
            pings += sum(event.opcode is Opcode.PING for event in events)
            assert not any(event.opcode is Opcode.CLOSE for event in events)
            writer.write(b"".join(client.data_to_send()))  # the pongs websockets queued
        writer.close()

        # A client that never answers a ping: closed 1011 once the timeout passes.
        reader, writer, client = await _feed_socket(port)
        closes: list[int] = []
        while True:
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                break
            client.receive_data(data)
            client.events_received()
            if client.close_rcvd is not None:
                closes.append(client.close_rcvd.code)
        assert closes and closes[0] == 1011, closes
        writer.close()


async def _until_closed(reader: asyncio.StreamReader, client: ClientProtocol) -> None:
    while data := await asyncio.wait_for(reader.read(65536), 5):
        client.receive_data(data)
        client.events_received()


async def test_a_close_is_echoed_and_a_protocol_error_closed_1002(
        redis: object, settings: Settings) -> None:
    async with _server(settings) as port:
        reader, writer, client = await _feed_socket(port)
        client.send_close(1000, "bye")
        writer.write(b"".join(client.data_to_send()))
        await _until_closed(reader, client)  # the server ends the TCP connection
        assert client.close_rcvd is not None and client.close_rcvd.code == 1000
        writer.close()

        reader, writer, client = await _feed_socket(port)
        writer.write(b"\x81\x02hi")  # a client frame must be masked
        await _until_closed(reader, client)
        assert client.close_rcvd is not None and client.close_rcvd.code == 1002
        writer.close()


async def test_sockets_gone_during_their_setup_end_quietly(
        redis: object, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Cold try: 300 feed sockets opened and closed at once left 33 error tracebacks
    ("setting up a feed socket failed", SocketGone): a socket the client closed while its
    snapshot was read is nothing to report."""
    caplog.set_level(logging.ERROR)
    query = f"/ws/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=1000"
    async with _server(settings) as port:
        async def open_and_drop(i: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_upgrade(query, X_Forwarded_For=f"10.9.{i // 250}.{i % 250}"))
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.close()  # at once: the server is still reading the snapshot

        await asyncio.gather(*(open_and_drop(i) for i in range(200)))
        await wait_for(lambda: REGISTRY.get_sample_value("streetfeed_sockets_open") == 0, 10,
                       "every socket to be gone")
    failures = [r for r in caplog.records if "setting up a feed socket failed" in r.message]
    assert not failures, failures[0].exc_text


def _request(path: str, *, method: str = "GET", protocol: str = "HTTP/1.1",
             drop: tuple[str, ...] = (), **headers: str) -> bytes:
    """An upgrade request with the usual headers but those in `drop`, `headers` replacing
    or adding."""
    fields = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items()
                    if name not in drop)
    return f"{method} {path} {protocol}\r\n{lines}\r\n".encode()


# (request, its status, its code): handshakes websockets refuses, each answered
# text/plain "Failed to open a WebSocket connection: ..." before.
def _bad_handshakes(path: str) -> list[tuple[bytes, int, str]]:
    query = f"?lat={STREET[0]}&lon={STREET[1]}&radius_m=300"
    return [
        (_request(f"{path}?shop={'a' * 9000}"), 414, "headers_too_large"),
        (_request(path + query, X_Long="b" * 9000), 431, "headers_too_large"),
        (_request(path + query, drop=("Sec-WebSocket-Key",)), 400,
         "invalid_websocket_handshake"),
        (_request(path + query, Sec_WebSocket_Key="short"), 400, "invalid_websocket_handshake"),
        (_request(path + query, Sec_WebSocket_Version="8"), 400,
         "unsupported_websocket_version"),
        (_request(path + query, drop=("Sec-WebSocket-Version",)), 400,
         "unsupported_websocket_version"),
        (_request(path + query, method="POST"), 405, "method_not_allowed"),
    ]


@pytest.mark.parametrize("path", ["/ws/feed", "/ws/shop"])
async def test_a_refused_handshake_is_answered_in_the_json_error_format(
        redis: object, settings: Settings, path: str,
        caplog: pytest.LogCaptureFixture) -> None:
    async with _server(settings) as port:
        for request, status_code, code in _bad_handshakes(path):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            status, headers, body = await _answer(reader)
            what = (request[:60], status, body[:120])
            assert status.startswith(f"HTTP/1.1 {status_code} ".encode()), what
            assert headers["content-type"] == "application/json", what
            error = json.loads(body)["error"]
            assert error["code"] == code and error["message"], what
            if code == "unsupported_websocket_version":  # RFC 6455, 4.2.2
                assert headers["sec-websocket-version"] == "13", what
            assert await asyncio.wait_for(reader.read(), 5) == b""  # and closed
            writer.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
