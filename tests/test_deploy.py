"""The deployment recipe of docs/deploy.md, run: a real nginx terminating TLS in front of a
real `streetfeed up --no-demo`, and real clients through `https://` and `wss://`.

The site configuration is read from docs/deploy.md itself (its `nginx` block with
`proxy_pass`), so the page cannot drift from what is tested; only ports, certificate
paths and the upstream port are replaced. nginx runs in the foreground with its own
prefix, pid file, logs and temporary directories, never as the system service. The CA
and the server certificate are made here, and the clients trust that CA only.

Clients bind other loopback addresses (127.0.0.2, 127.0.0.3) than the one nginx
reaches Streetfeed from (127.0.0.1): a per-address limit then tells whether Streetfeed
counted the client or the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime.settings import Settings
from tests.helpers import (
    FeedClient,
    Service,
    add_shop,
    arrival,
    free_port,
    service_env,
    wait_for,
    wait_http,
)

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "docs" / "deploy.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STREET = (44.8370, -0.5735)
CLIENT = "127.0.0.2"
OTHER_CLIENT = "127.0.0.3"
SOCKETS_PER_ADDRESS = 2


def need_nginx() -> str:
    if os.path.exists(NGINX):
        return NGINX
    if os.environ.get("CI") == "true":
        pytest.fail("CI: nginx is required for the deployment test (apt-get install nginx)")
    pytest.skip("nginx not installed (apt-get install nginx)")


# --- A CA of our own ---------------------------------------------------------------------

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost: (CA
    certificate, server certificate, server key), as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Streetfeed test CA"))
          .issuer_name(_name("Streetfeed test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(_name("localhost"))
              .issuer_name(ca.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                  x509.DNSName("localhost")]), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


# --- nginx with the recipe's site ---------------------------------------------------------

def recipe_site(http_port: int, tls_port: int, app_port: int, cert: Path, key: Path) -> str:
    """docs/deploy.md's site block, on our ports and certificate, bound to loopback."""
    blocks = re.findall(r"```nginx\n(.*?)```", RECIPE.read_text(), re.S)
    site = next(b for b in blocks if "proxy_pass" in b)
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
        "/etc/letsencrypt/live/feed.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/feed.example.org/privkey.pem": str(key),
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
    }
    for old, new in replacements.items():
        # The recipe changed under the test: say so rather than test something else.
        assert site.count(old) == 1, f"docs/deploy.md: expected {old!r} once in the site"
        site = site.replace(old, new)
    # IPv6 listeners: not every CI machine has IPv6; the test speaks IPv4 only.
    return "\n".join(line for line in site.splitlines() if "listen [::]" not in line)


@contextlib.contextmanager
def nginx(directory: Path, site: str) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in the foreground with everything of its own under `directory`."""
    directory.mkdir()
    (directory / "site.conf").write_text(site)
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    config = directory / "nginx.conf"
    config.write_text("\n".join([
        # As root, workers would run as nobody, who cannot enter pytest's 0700 tmp dirs.
        "user root;" if os.geteuid() == 0 else "",
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {directory / 'error.log'} info;",
        "events { worker_connections 256; }",
        "http {",
        f"    access_log {directory / 'access.log'};",
        f"    client_body_temp_path {temp['body']};",
        f"    proxy_temp_path {temp['proxy']};",
        f"    fastcgi_temp_path {temp['fastcgi']};",
        f"    uwsgi_temp_path {temp['uwsgi']};",
        f"    scgi_temp_path {temp['scgi']};",
        f"    include {directory / 'site.conf'};",
        "}", ""]))
    log = open(directory / "stderr.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen([need_nginx(), "-p", str(directory), "-c", str(config),
                                "-e", str(directory / "error.log"), "-g", "daemon off;"],
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # fast shutdown; nothing to drain in a test
        process.wait(10)


def nginx_log(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in
                     (directory / "stderr.log", directory / "error.log") if p.exists())


# --- The test ----------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def https_client(base: str, context: ssl.SSLContext,
                       address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=context)
    async with httpx.AsyncClient(base_url=base, transport=transport) as client:
        yield client


async def test_nginx_recipe_serves_pages_api_and_wss_with_client_addresses(
        redis: Redis, redis_server: str, settings: Settings, tmp_path: Path) -> None:
    need_nginx()
    ca, cert, key = make_certificates(tmp_path)
    http_port, tls_port, app_port = free_port(), free_port(), free_port()
    origin = f"https://127.0.0.1:{tls_port}"
    streetfeed = Service(
        ["up", "--no-demo", "--port", str(app_port), "--data-dir", str(tmp_path / "var")],
        service_env(redis_server, STREETFEED_TRUSTED_PROXIES="127.0.0.1",
                    STREETFEED_MAX_SOCKETS_PER_ADDRESS=str(SOCKETS_PER_ADDRESS),
                    STREETFEED_PUBLIC_URL=origin),
        tmp_path / "streetfeed.log").start()
    proxy_dir = tmp_path / "nginx"
    context = ssl.create_default_context(cafile=str(ca))
    try:
        await wait_http(f"http://127.0.0.1:{app_port}/healthz", 30)
        shop = await add_shop(redis, settings, "Cave du Port", *STREET)
        with nginx(proxy_dir, recipe_site(http_port, tls_port, app_port, cert, key)) as proc:
            async with https_client(origin, context, CLIENT) as client, \
                    https_client(origin, context, OTHER_CLIENT) as other:
                async def up() -> bool:
                    if proc.poll() is not None:
                        raise AssertionError(f"nginx exited: {nginx_log(proxy_dir)}")
                    with contextlib.suppress(httpx.TransportError):
                        return (await client.get("/healthz")).status_code == 200
                    return False
                await wait_for(up, 20, "nginx to answer over https")
                await check_through_proxy(client, other, context, origin, http_port,
                                          shop.id, shop.token)
    finally:
        streetfeed.terminate()
    assert "Traceback" not in streetfeed.log(), streetfeed.log()[-3000:]


async def check_through_proxy(client: httpx.AsyncClient, other: httpx.AsyncClient,
                              context: ssl.SSLContext, origin: str, http_port: int,
                              shop_id: str, token: str) -> None:
    # Plain http is sent to https.
    async with httpx.AsyncClient() as plain:
        redirect = await plain.get(f"http://127.0.0.1:{http_port}/shop")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://127.0.0.1/shop"

    # The passer-by page and its script, over TLS.
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (await client.get("/static/app.js")).status_code == 200

    # A wss:// feed socket from 127.0.0.2, as a page of this origin opens it.
    ws_base = origin.replace("https://", "wss://")
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"

    def open_feed(address: str, page_origin: str = origin,
                  forwarded_for: str | None = None) -> connect:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        return connect(f"{ws_base}/ws/feed?{query}", ssl=context, origin=page_origin,  # type: ignore[arg-type]
                       additional_headers=headers, local_addr=(address, 0))

    async with contextlib.AsyncExitStack() as stack:
        feed = FeedClient(await stack.enter_async_context(open_feed(CLIENT)))
        feed.task = asyncio.create_task(feed._pump())
        stack.push_async_callback(feed.close)
        await feed.wait_ready()

        # The console over https: the session cookie is Secure, and a post made with it
        # (a cookie write, checked against the https Origin) reaches the wss:// socket.
        signed_in = await client.post("/api/v1/session", content=json.dumps(
            {"shop_id": shop_id, "token": token}), headers={
                "Content-Type": "application/json", "Origin": origin})
        assert signed_in.status_code == 200, signed_in.text
        cookie = signed_in.headers["set-cookie"]
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"secure", "httponly"} <= attributes, cookie
        posted = await client.post(f"/api/v1/shops/{shop_id}/posts",
                                   content=json.dumps(arrival("Huîtres du bassin")),
                                   headers={"Content-Type": "application/json",
                                            "Origin": origin,
                                            "Cookie": cookie.split(";")[0]})
        assert posted.status_code == 202, posted.text
        delivered = await feed.wait_post(posted.json()["id"])
        assert delivered["title"] == "Huîtres du bassin"

        # Streetfeed counted 127.0.0.2, not nginx's 127.0.0.1: its second socket opens
        # (whatever X-Forwarded-For it forges), its third is refused...
        await stack.enter_async_context(open_feed(CLIENT, forwarded_for="203.0.113.50"))
        with pytest.raises(InvalidStatus) as refused:
            await stack.enter_async_context(open_feed(CLIENT, forwarded_for="203.0.113.51"))
        assert refused.value.response.status_code == 429
        # ...while 127.0.0.3, behind the same proxy, is let in.
        await stack.enter_async_context(open_feed(OTHER_CLIENT))
        assert (await other.get("/healthz")).status_code == 200

        # The scheme is the one the browser used with nginx: a page on http:// of the
        # same host may not open this wss:// feed.
        with pytest.raises(InvalidStatus) as cross:
            await stack.enter_async_context(open_feed(OTHER_CLIENT, origin.replace(
                "https://", "http://")))
        assert cross.value.response.status_code == 403

    # The event stream (DESIGN.md section 9) through nginx: unbuffered, so the snapshot's
    # end and then a post published while it is open arrive as they are sent (nginx's
    # buffering would hold them until 4-8 KiB gathered), with the client's address.
    async with client.stream("GET", f"/api/v1/feed/stream?{query}",
                             headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["cache-control"] == "no-store"
        lines = stream.aiter_lines()

        async def until(prefix: str) -> str:
            async for line in lines:
                if line.startswith(prefix):
                    return line
            raise AssertionError(f"the stream ended before {prefix!r}")

        await asyncio.wait_for(until("event: ping"), 5)
        posted = await client.post(f"/api/v1/shops/{shop_id}/posts",
                                   content=json.dumps(arrival("Sardines de Saint-Jean")),
                                   headers={"Content-Type": "application/json",
                                            "Authorization": f"Bearer {token}"})
        assert posted.status_code == 202, posted.text
        line = await asyncio.wait_for(until('data: {"type":"post"'), 5)
        assert json.loads(line.removeprefix("data: "))["post"]["id"] == posted.json()["id"]
        # Counted under 127.0.0.2 with its sockets: its cap (2) is reached with one more.
        async with connect(f"{ws_base}/ws/feed?{query}", ssl=context, origin=origin,
                           local_addr=(CLIENT, 0)):
            third = await client.get(f"/api/v1/feed/stream?{query}")
            assert third.status_code == 429, third.text
