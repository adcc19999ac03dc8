"""Bytes each page costs on a first visit, as Chromium fetches it (docs/performance.md).

    ./dev up &                       # or any running Streetfeed
    .venv/bin/python -m bench.page_weight [--base http://127.0.0.1:8000] [--shop au-pain-dore]

Loads `/`, `/shop` and `/screen/{shop}` in headless Chromium (service worker blocked:
the page's own requests only, with an empty cache) and, for the same-origin responses
(the API's answers left out), prints the bytes of the bodies as sent (and in which
`Content-Encoding`) and as files, with what gzip -9 and brotli q11 would make of them.
Chromium offers `br` to https sites and to localhost; `--accept-encoding 'gzip, deflate'`
makes it ask as a client without brotli does.
A second load of each page shows what coming back costs: the body bytes sent, and how
many files the browser asked the server about rather than reusing its copy unasked.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
from typing import Any

import brotli
import httpx

CHROMIUM = os.environ.get("STREETFEED_CHROMIUM", "/usr/bin/chromium")


async def _weigh(context: Any, url: str, origin: str) -> list[tuple[str, int, int, str]]:
    page = await context.new_page()
    seen: list[Any] = []
    page.on("requestfinished", lambda request: seen.append(request))
    await page.goto(url, wait_until="networkidle")
    rows = []
    for request in seen:
        path = request.url.removeprefix(origin)
        # The street's data (shop profiles, config, the posts' photos) varies with the
        # demo's moment: pages and their files only.
        if not request.url.startswith(origin) or path.startswith(("/api/", "/media/")):
            continue
        response = await request.response()
        if response is None:
            continue
        sizes = await request.sizes()
        coding = (await response.all_headers()).get("content-encoding", "identity")
        rows.append((path, response.status, sizes["responseBodySize"], coding))
    await page.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--shop", default="au-pain-dore")
    parser.add_argument("--accept-encoding", default=None,
                        help="the Accept-Encoding Chromium sends (default: its own)")
    args = parser.parse_args()
    from playwright.async_api import async_playwright

    pages = {"passer-by": "/?lat=44.837&lon=-0.5735", "console": "/shop",
             "screen": f"/screen/{args.shop}"}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=["--no-sandbox"])
        print("page       | files | as files | sent     | codings sent       | gzip -9  | "
              "brotli 11 | again")
        for name, path in pages.items():
            context = await browser.new_context(service_workers="block")
            if args.accept_encoding:
                await context.set_extra_http_headers({"Accept-Encoding": args.accept_encoding})
            rows = await _weigh(context, args.base + path, args.base)
            again = await _weigh(context, args.base + path, args.base)
            await context.close()
            async with httpx.AsyncClient(base_url=args.base) as http:
                raw = [(await http.get(u, headers={"accept-encoding": "identity"})).content
                       for u, status, _, _ in rows if status == 200]
            as_files = sum(len(b) for b in raw)
            sent = sum(sent for _, _, sent, _ in rows)
            codings = sorted({coding for *_, coding in rows})
            # Each file compressed only when that shrinks it (images do not), as web/assets.py.
            gz = sum(min(len(b), len(gzip.compress(b, 9))) for b in raw)
            br = sum(min(len(b), len(brotli.compress(b, quality=11))) for b in raw)
            # A body size of -1: taken from the memory cache without asking the server.
            revalidate = sum(max(0, sent) for _, _, sent, _ in again)
            asked = sum(1 for _, _, sent, _ in again if sent >= 0)
            print(f"{name:10} | {len(rows):5} | {as_files:8,} | {sent:8,} | "
                  f"{','.join(codings):18} | {gz:8,} | {br:9,} | "
                  f"{revalidate:,} B, {asked} of {len(again)} files asked for")
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
