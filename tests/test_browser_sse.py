"""The pages where a WebSocket cannot be opened (a proxy strips Upgrade): real headless
Chromium falls back to GET /api/v1/feed/stream (EventSource), silently."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from tests.helpers import add_shop, arrival, enricher, send_post, wait_for, web_server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)

# As a proxy that strips Upgrade leaves it: every WebSocket fails before it opens.
NO_WEBSOCKET = """
window.wsTried = 0;
window.WebSocket = class extends EventTarget {
  static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
  constructor(url) {
    super();
    window.wsTried += 1;
    this.url = url;
    this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      if (this.onerror) this.onerror(new Event("error"));
      if (this.onclose) this.onclose(new CloseEvent("close", { code: 1006 }));
    }, 20);
  }
  send() { throw new DOMException("not open", "InvalidStateError"); }
  close() {}
};
"""


@pytest.mark.parametrize("path", ["/?lat={lat}&lon={lon}&radius_m=500", "/screen/{shop}"])
async def test_without_websocket_the_page_is_fed_by_the_event_stream(
        redis: Redis, settings: Settings, browser: Any, path: str) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        before = (await send_post(http, shop, arrival("Clémentines de Corse"))).json()["id"]
        await wait_for(lambda: _live(http, before), message="the first post live")
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url)
                if "/api/v1/feed/stream" in r.url else None)
        await page.add_init_script(NO_WEBSOCKET)
        await page.goto(web.http + path.format(lat=STREET[0], lon=STREET[1], shop=shop.id))
        await page.wait_for_selector(f'[data-post-id="{before}"]', timeout=10_000)
        live = (await send_post(http, shop, arrival("Kakis"))).json()["id"]
        await page.wait_for_selector(f'[data-post-id="{live}"]', timeout=5_000)
        assert await page.evaluate("() => window.wsTried") >= 2
        assert len(streams) == 1 and "cursor=" not in streams[0], streams
        assert sum(web.state.gateway.per_address.values()) == 1
        if path.startswith("/?"):
            # "Live", as with a socket: nothing said about the stream, no error shown.
            assert await page.evaluate("() => window.streetfeed.state") == "live"
            assert await page.get_attribute("#status", "data-state") == "live"
            assert await page.is_hidden("#error")
            assert await page.is_hidden("#offline")
        assert errors == []
        await page.close()


async def _live(http: httpx.AsyncClient, post_id: str) -> bool:
    feed = (await http.get(f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"))
    return post_id in [p["id"] for p in feed.json()["posts"]]


# As a proxy that swallows the upgrade leaves it: a WebSocket that never opens nor fails.
STALLED_WEBSOCKET = """
window.wsTried = 0;
window.WebSocket = class extends EventTarget {
  static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
  constructor(url) { super(); window.wsTried += 1; this.url = url; this.readyState = 0; }
  send() { throw new DOMException("not open", "InvalidStateError"); }
  close() { this.readyState = 3; }
};
"""


# Every state the header's status shows, in order.
STATES_SEEN = """
window.statesSeen = [];
new MutationObserver(() => {
  const state = document.querySelector("#status")?.dataset.state;
  if (state && window.statesSeen.at(-1) !== state) window.statesSeen.push(state);
}).observe(document, { subtree: true, attributes: true, childList: true,
                       attributeFilter: ["data-state"] });
"""


async def test_a_stalled_websocket_falls_back_at_its_first_timeout_and_the_tab_remembers(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Regression: two 10 s open timeouts kept the page empty for 22 s behind such a proxy,
    again on every reload."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        before = (await send_post(http, shop, arrival("Clémentines de Corse"))).json()["id"]
        await wait_for(lambda: _live(http, before), message="the first post live")
        page = await browser.new_page()
        await page.add_init_script(STALLED_WEBSOCKET)
        await page.add_init_script(STATES_SEEN)
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        # One 4 s wait for the socket, then the stream's snapshot (a 10 s wait would fail).
        await page.wait_for_selector(f'[data-post-id="{before}"]', timeout=9_000)
        assert await page.evaluate("() => window.wsTried") == 1
        # Silent: "connecting" then "live", never "reconnecting" in between (regression).
        await page.wait_for_function("() => window.statesSeen.includes('live')")
        assert await page.evaluate("() => window.statesSeen") == ["connecting", "live"]
        # A reload in this tab starts with the stream: the cards come without any wait.
        await page.reload()
        await page.wait_for_selector(f'[data-post-id="{before}"]', timeout=3_000)
        assert await page.evaluate("() => window.wsTried") == 0
        assert await page.evaluate("() => window.streetfeed.state") == "live"
        await page.close()


async def test_a_page_whose_socket_worked_waits_for_a_busy_server_and_stays_on_sockets(
        settings: Settings, browser: Any) -> None:
    """Regression (the reconnect storm, bench/storm.py): a restarted server taking back
    thousands of sockets answers handshakes seconds late; the page gave each up after 4 s,
    which the server had queued and then answered for nobody, and switched to the event
    stream, as if a proxy had swallowed the upgrade. A page whose socket has worked knows
    no proxy is in the way: it waits 15 s for the handshake, then tries a socket again."""
    async with web_server(settings) as web:
        port = web.port
        page = await browser.new_page()
        await page.clock.install()
        await page.goto(f"{web.http}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")
        await page.wait_for_function("() => window.streetfeed.state === 'live'")
        await web.stop()
    # The server again, busy: it takes connections and answers none of them yet.
    requests: list[str] = []
    held: list[asyncio.StreamWriter] = []

    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        line = await reader.readline()
        requests.append(line.decode("latin-1").split(" ")[1] if line else "")

    server = await asyncio.start_server(busy, "127.0.0.1", port)
    try:
        await page.clock.run_for(1_000)  # the first retry's backoff
        await wait_for(lambda: len(_feed(requests)) == 1, message="the socket tried again")
        await page.clock.run_for(6_000)  # past the 4 s given a page's first socket
        await page.clock.run_for(12_000)  # past the 15 s, and the next backoff (<= 1.5 s)
        await wait_for(lambda: len(_feed(requests)) == 2, message="a second socket")
        assert all(path.startswith("/ws/feed?") for path in _feed(requests)), requests
        assert "cursor=" in _feed(requests)[0]  # a resume, as before
        assert await page.evaluate("() => sessionStorage.getItem('streetfeed.transport')") \
            is None
    finally:
        for writer in held:
            writer.close()
        server.close()
        await page.close()


def _feed(requests: list[str]) -> list[str]:
    """The feed connections among the requests: sockets and event streams."""
    return [r for r in requests if r.startswith(("/ws/feed", "/api/v1/feed/stream"))]
