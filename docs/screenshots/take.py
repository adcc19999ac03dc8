"""Take the screenshots in this folder: `.venv/bin/python docs/screenshots/take.py`.

The demo street follows its shops' hours in their local time, so a screenshot taken at
night or on a Monday shows a quiet street. To show the street as it is on a working
morning whatever the hour here, the whole service runs under libfaketime (Debian's
`faketime`) at `--at` (default: a Saturday, 11:15 in Bordeaux), and the browser's clock
(Playwright's `page.clock`) starts at the same instant, so countdowns and "open now" agree.
Nothing in the product is told about the fake time: it is the machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STREET = (44.8369, -0.5734)  # the demo street, Rue Sainte-Catherine (streetfeed/demo.py)
PHONE = {"width": 412, "height": 915}
DESKTOP = {"width": 1440, "height": 900}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


async def shoot(base: str, data_dir: Path, at: datetime, out: Path, lang: str) -> None:
    from playwright.async_api import async_playwright

    tokens = json.loads((data_dir / "demo-tokens.json").read_text())
    console_shop = "fromagerie-sainte-catherine"
    feed_url = f"{base}/?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS)
        try:
            for name, viewport, mobile in (("phone", PHONE, True), ("desktop", DESKTOP, False)):
                context = await browser.new_context(
                    viewport=viewport, is_mobile=mobile, has_touch=mobile,
                    device_scale_factor=1, locale="fr-FR" if lang == "fr" else "en-GB",
                    timezone_id="Europe/Paris")
                page = await context.new_page()
                await page.clock.install(time=at)
                await page.goto(feed_url)
                await page.wait_for_function("() => document.querySelectorAll('.card').length >= 6",
                                             timeout=30_000)
                await page.screenshot(path=str(out / f"feed-{name}.png"))
                map_button = page.locator("#view-toggle")
                if await map_button.count():
                    await map_button.first.click()
                    await page.wait_for_selector(".leaflet-marker-icon", timeout=15_000)
                    # Tiles-free map: the pins are placed once no zoom or pan is animating.
                    await page.wait_for_function(
                        "() => !document.querySelector('.leaflet-zoom-anim, .leaflet-pan-anim')",
                        timeout=15_000)
                    await page.screenshot(path=str(out / f"feed-map-{name}.png"))
                console = await context.new_page()
                await console.clock.install(time=at)
                if name == "phone":
                    await console.goto(f"{base}/shop")
                    await console.wait_for_load_state("networkidle")
                    await console.screenshot(path=str(out / "console-signin-phone.png"))
                signed = await context.request.post(
                    f"{base}/api/v1/session",
                    headers={"Origin": base, "Content-Type": "application/json"},
                    data=json.dumps({"shop_id": console_shop, "token": tokens[console_shop]}))
                if not signed.ok:
                    raise SystemExit(f"console sign-in failed: {signed.status}")
                await console.goto(f"{base}/shop")
                await console.wait_for_selector("#console:not([hidden])", timeout=15_000)
                # Audience and reach come over the console's socket, after the page loads.
                await console.wait_for_function(
                    "() => document.getElementById('watching-count').textContent.trim() !== '–'",
                    timeout=15_000)
                await console.wait_for_load_state("networkidle")
                await console.screenshot(path=str(out / f"console-{name}.png"))
                await context.close()
            for name, viewport in (("landscape", {"width": 1920, "height": 1080}),
                                   ("portrait", {"width": 1080, "height": 1920})):
                context = await browser.new_context(viewport=viewport, device_scale_factor=1,
                                                    locale="fr-FR", timezone_id="Europe/Paris")
                page = await context.new_page()
                await page.clock.install(time=at)
                await page.goto(f"{base}/screen/{console_shop}")
                await page.wait_for_load_state("networkidle")
                # Live, the shop's profile read, and the neighbours' cards drawn.
                await page.wait_for_function(
                    "() => window.streetfeedScreen?.state === 'live' && "
                    "window.streetfeedScreen.shop && "
                    "document.querySelector('#neighbours > :not(.screen-empty)') !== null",
                    timeout=15_000)
                await page.screenshot(path=str(out / f"screen-{name}.png"))
                await context.close()
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", default="2026-12-05T11:15:00",
                        help="local time in Bordeaux to show (ISO 8601, no zone)")
    parser.add_argument("--lang", choices=("fr", "en"), default="fr")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    if shutil.which("faketime") is None:
        raise SystemExit("needs Debian's faketime (apt-get install faketime)")
    at = datetime.fromisoformat(args.at).replace(tzinfo=ZoneInfo("Europe/Paris"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    streetfeed = Path(sys.executable).with_name("streetfeed")
    with tempfile.TemporaryDirectory(prefix="streetfeed-shots-") as tmp:
        data_dir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        fake = at.astimezone(ZoneInfo("UTC")).strftime("@%Y-%m-%d %H:%M:%S")
        log = (data_dir / "server.log").open("wb")
        server = subprocess.Popen(
            ["faketime", "-f", fake, str(streetfeed), "up", "--port", str(port),
             "--data-dir", str(data_dir)], env={**env, "TZ": "UTC"}, cwd=ROOT,
            start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: get_json(f"{base}/healthz") is not None, 60, "the service")
            wait_until(lambda: (data_dir / "demo-tokens.json").exists(), 60, "the demo")
            # The demo posts every few seconds: wait for a street that looks lived in.
            wait_until(lambda: len(get_json(  # type: ignore[arg-type]
                f"{base}/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=500")["posts"]) >= 10,
                120, "ten demo posts")
            asyncio.run(shoot(base, data_dir, at, args.out, args.lang))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"screenshots written to {args.out}")


if __name__ == "__main__":
    main()
