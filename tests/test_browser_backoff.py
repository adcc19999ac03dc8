"""The page's reconnection backoff (web/static/feedclient.js `retryDelay`), run in real
headless Chromium: the function every page and the reconnect storm's load generator
(bench/loadgen.js) use."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from runtime.settings import Settings
from tests.helpers import web_server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PAGES = 10_000


async def _draws(browser: Any, settings: Settings, attempts: list[int]) -> dict[str, list[float]]:
    """`PAGES` draws of retryDelay(attempt) for each attempt, as the pages make them."""
    async with web_server(settings) as web:
        page = await browser.new_page()
        await page.goto(f"{web.http}/")
        draws: dict[str, list[float]] = await page.evaluate("""async ([attempts, pages]) => {
          const { retryDelay } = await import("/static/feedclient.js");
          const out = {};
          for (const a of attempts) out[a] = Array.from({ length: pages }, () => retryDelay(a));
          return out;
        }""", [attempts, PAGES])
        await page.close()
    return draws


async def test_first_retries_of_a_restarted_servers_pages_are_spread(
        settings: Settings, browser: Any) -> None:
    """Regression (the reconnect storm, bench/storm.py): a jitter of +-25 % clamped at the
    500 ms minimum put half of all first retries at exactly 500 ms, a synchronised wave
    on the restarted server. 10,000 pages' first retries: no 10 ms slot carries more than
    2 % of them (evenly spread over 0.1-1 s, about 1.1 % each), and a page that lost its
    socket once still tries again within a second."""
    draws = (await _draws(browser, settings, [0]))["0"]
    slots = Counter(int(d // 10) for d in draws)
    slot, most = slots.most_common(1)[0]
    assert most <= PAGES * 0.02, f"{most} of {PAGES} first retries at {slot * 10} ms"
    assert len(slots) >= 85  # the whole window is used, not a few values of it
    assert min(draws) >= 100 and max(draws) <= 1_000
    assert 450 <= sum(draws) / PAGES <= 650  # a blip resumes about as quickly as before


async def test_later_retries_spread_over_growing_windows_up_to_fifteen_seconds(
        settings: Settings, browser: Any) -> None:
    """Each attempt since the feed last worked draws over a window half as large again as
    the one before (1.5, 2.25, 3.4 s...), then 15 s at most however long the server stays
    away."""
    attempts = [1, 2, 3, 4, 10, 60]
    draws = await _draws(browser, settings, attempts)
    for attempt in attempts:
        window = min(15_000, 1_000 * 1.5 ** attempt)
        values = draws[str(attempt)]
        assert min(values) >= 100 and max(values) <= window, attempt
        # Uniform over [100, window]: its lower and upper halves hold about as many.
        middle = (100 + window) / 2
        lower = sum(v < middle for v in values)
        assert 0.45 * PAGES <= lower <= 0.55 * PAGES, (attempt, lower)
        assert max(Counter(round(v) for v in values).values()) <= PAGES * 0.01, attempt
