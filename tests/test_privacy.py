"""Nothing about a passer-by reaches disk (issue 12, finding 7).

Presence (who watches where) is exchanged between processes without entering
Redis's keyspace, so it is never in the AOF either; client addresses are keyed
by a hash whose key lives only in the processes, so the rate-limit keys cannot
be turned back into addresses from Redis or its files. Each test reads a real
Valkey's whole keyspace and its AOF files, as someone holding a copy of the
data directory would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from rules.geo import CellGrid
from runtime.settings import Settings
from schemas.limits import PRESENCE_CELL_DEG
from tests.helpers import (
    Service,
    add_shop,
    enricher,
    feed_client,
    free_port,
    service_env,
    start_valkey,
    wait_for,
    wait_http,
    web_server,
)
from tests.test_security import _redis_dump

STREET = (44.8370, -0.5735)


@contextlib.contextmanager
def _valkey_with_aof(data: Path) -> Iterator[str]:
    """A Valkey of our own whose files we can read: AOF on, fsynced at every write, so the
    files hold every write by the time we look."""
    port = free_port()
    process = start_valkey(port, data, appendfsync="always")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def aof_redis(tmp_path: Path) -> AsyncIterator[tuple[Redis, Path]]:
    """A client of a fresh Valkey with AOF, and the directory of its files."""
    data = tmp_path / "valkey"
    data.mkdir()
    with _valkey_with_aof(data) as url:
        client = Redis.from_url(url)
        try:
            yield client, data
        finally:
            await client.aclose()


def _url(redis: Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


def _files(directory: Path) -> bytes:
    """Every file under `directory` (the AOF's base and increments, manifests), concatenated."""
    return b"\n".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def _aof_arguments(aof: bytes) -> set[bytes]:
    """Every bulk string of the AOF's commands (RESP `$n\\r\\n...`): each value ever written."""
    return {aof[m.end():m.end() + int(m.group(1))]
            for m in re.finditer(rb"\$(\d+)\r\n", aof)}


async def test_presence_never_reaches_redis_or_its_aof(aof_redis: tuple[Redis, Path],
                                                       settings: Settings) -> None:
    """Six phones watch from three places in turn, each long enough for the shop's console
    to count them there (so presence went from the gateway to the process answering); then
    neither the keyspace nor the AOF holds anything about presence: no presence key, and
    none of the cells they watched from."""
    redis, data = aof_redis
    settings = settings.with_(redis_url=_url(redis))
    shop = await add_shop(redis, settings, "Cave", *STREET)
    # ~110 m, ~390 m and ~780 m north of the shop: counted within 250, 500, 1000 m.
    stages = [((STREET[0] + 0.0010, STREET[1]), 250), ((STREET[0] + 0.0035, STREET[1]), 500),
              ((STREET[0] + 0.0070, STREET[1]), 1000)]
    grid = CellGrid(PRESENCE_CELL_DEG)
    watched = {grid.cell_of(*spot) for spot, _ in stages}
    bearer = {"Authorization": f"Bearer {shop.token}"}
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http, \
            contextlib.AsyncExitStack() as stack:
        phones = [await stack.enter_async_context(feed_client(web.ws, *stages[0][0]))
                  for _ in range(6)]
        for n, ((lat, lon), radius) in enumerate(stages):
            for phone in phones:
                if n:
                    await phone.send({"type": "subscribe", "lat": lat, "lon": lon,
                                      "radius_m": 500})
                    await wait_for(lambda p=phone, n=n: len(p.of_type("reset")) >= n)

            async def counted_there(radius: int = radius, n: int = n) -> bool:
                body = (await http.get(f"/api/v1/shops/{shop.id}/stats",
                                       headers=bearer)).json()
                counts = {w["radius_m"]: w["count"] for w in body["watching"]}
                # Here now, and no longer where they were.
                return counts[radius] == 6 and (n == 0 or counts[stages[n - 1][1]] != 6)
            await wait_for(counted_there, 10, f"six watchers counted within {radius} m")
        during = await _redis_dump(redis)
    after = await _redis_dump(redis)
    aof = _files(data / "appendonlydir")
    assert f"sf:shop:{shop.id}".encode() in aof, "the AOF is not being written"
    for where, blob in (("keyspace", during), ("keyspace after", after), ("AOF", aof)):
        assert b"presence" not in blob, f"a presence key in the {where}"
        for cell in watched:
            assert str(cell).encode() not in blob, f"watched cell {cell} in the {where}"


async def test_client_addresses_cannot_be_recovered_from_redis_or_its_aof(
        aof_redis: tuple[Redis, Path], settings: Settings) -> None:
    """Per-address rate limits key each address by a hash. With any salt found in Redis
    (there must be none) or none at all, brute force over 127.0.0.0/24 must not find the
    address behind any of those keys in the keyspace or in the AOF (it took 0.8 s from the
    AOF when the day's salt was stored next to them)."""
    redis, data = aof_redis
    settings = settings.with_(redis_url=_url(redis))
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for _ in range(3):
            url = f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
            assert (await http.get(url)).status_code == 200
        async with feed_client(web.ws, *STREET):
            pass
        keyspace = await _redis_dump(redis)
        names = await redis.keys("*")
    aof = _files(data / "appendonlydir")
    subjects = {name.split(b":")[3] for name in names if name.startswith(b"sf:rl:")}
    assert len(subjects) == 1, names  # one client, one hashed address, counted
    hashed = {s[:16].decode() for s in subjects}
    hashed |= {m.decode()[:16] for m in re.findall(rb"sf:rl:\w+:([0-9a-f]{16,64})", aof)}
    salts = {b""} | _aof_arguments(aof) | set(keyspace.split(b"\n"))
    started = time.monotonic()
    for last in range(256):
        address = f"127.0.0.{last}".encode()
        for salt in salts:
            for digest in (hashlib.sha256(salt + address), hashlib.sha256(address + salt),
                           hmac.new(salt, address, hashlib.sha256)):
                assert digest.hexdigest()[:16] not in hashed, (
                    f"{address.decode()} recovered with {salt!r} as salt "
                    f"in {time.monotonic() - started:.1f}s")
    assert not [n for n in names if b"salt" in n], names


async def test_an_ipv6_client_s_address_and_64_cannot_be_recovered(
        aof_redis: tuple[Redis, Path], settings: Settings) -> None:
    """Per-address limits count an IPv6 client under its /64 (rules.addresses): neither its
    address nor its /64, in any spelling, is in the keyspace or the AOF, and neither is
    behind a name that counts it, with any salt found there, whether the names are the
    request limit's or the holds' (open holds, takes of the last hour)."""
    redis, data = aof_redis
    settings = settings.with_(redis_url=_url(redis))
    client = ipaddress.IPv6Address("2001:db8:4a1:7c::1d")
    network = ipaddress.IPv6Network("2001:db8:4a1:7c::/64")
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        answer = await http.post(f"/api/v1/shops/{shop.id}/posts",
                                 json={"kind": "new_arrival", "title": "Noix",
                                       "hold": {"quantity": 3, "minutes": 30}},
                                 headers={"Authorization": f"Bearer {shop.token}"})
        post_id = answer.json()["id"]
        await wait_for(lambda: redis.exists(f"sf:{{main}}:post:{post_id}"), message="live")
        taken = await http.post(f"/api/v1/posts/{post_id}/holds", json={"name": "Léa"},
                                headers={"X-Forwarded-For": str(client)})
        assert taken.status_code == 201, taken.text
        keyspace = await _redis_dump(redis)
        names = await redis.keys("*")
    aof = _files(data / "appendonlydir")
    spellings = {str(client), client.exploded, str(network), network.exploded,
                 str(network.network_address), network.network_address.exploded,
                 "2001:db8:4a1:7c", "2001:0db8:04a1:007c"}
    for spelling in spellings:
        for where, blob in (("Redis", keyspace), ("AOF", aof)):
            assert spelling.encode() not in blob.lower(), f"{spelling} in the {where}"
    # The shop (127.0.0.1) and the /64: the holds' names are the request limit's.
    requests = {n.split(b":")[3] for n in names if n.startswith(b"sf:rl:address_requests:")}
    holds = {n.rsplit(b":", 1)[1] for n in names
             if b":address-holds:" in n or b":address-hold-times:" in n}
    assert len(requests) == 2 and len(holds) == 1 and holds < requests, names
    hashed = {n.decode()[:16] for n in requests}
    salts = {b""} | _aof_arguments(aof) | set(keyspace.split(b"\n"))
    for spelling in spellings:
        for salt in salts:
            for digest in (hashlib.sha256(salt + spelling.encode()),
                           hashlib.sha256(spelling.encode() + salt),
                           hmac.new(salt, spelling.encode(), hashlib.sha256)):
                assert digest.hexdigest()[:16] not in hashed, (spelling, salt)


async def test_up_hands_one_secret_to_its_processes_and_never_writes_it(
        tmp_path: Path) -> None:
    """`streetfeed up` as the README runs it (embedded server, AOF in the data directory),
    with two web workers and no STREETFEED_SECRET: the parent makes one and hands it to its
    children in their environment, so both workers hash an address alike (shared limits);
    it is in no log, no Redis key or value, no file of the data directory. A secret given
    too short is refused at start without being echoed."""
    too_short = "tiny-secret-123"
    web = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streetfeed.cli", "web", "--port", str(free_port()),
        env={**service_env("redis://127.0.0.1:1/0"), "STREETFEED_SECRET": too_short},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out = (await asyncio.wait_for(web.communicate(), 30))[0].decode()
    except TimeoutError:
        web.kill()
        await web.wait()
        pytest.fail("a web process started with a 15-character STREETFEED_SECRET")
    assert web.returncode == 2 and "STREETFEED_SECRET" in out, out
    assert too_short not in out

    data = tmp_path / "var"
    env = service_env("", STREETFEED_ADDRESS_REQUESTS_PER_MINUTE="1000")
    env.pop("REDIS_URL")
    env.pop("STREETFEED_SECRET", None)
    port = free_port()
    service = Service(["up", "--no-demo", "--workers", "2", "--port", str(port),
                       "--data-dir", str(data)], env, tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    redis = Redis(unix_socket_path=str(data / "redis.sock"))
    try:
        await wait_http(f"{base}/readyz", 30)
        gateways: set[str] = set()

        async def both_answer() -> bool:
            # A fresh connection each time: the kernel spreads them over the workers.
            async with httpx.AsyncClient() as fresh:
                gateways.add((await fresh.get(f"{base}/readyz")).json()["checks"]["gateway"])
                assert (await fresh.get(f"{base}/api/v1/shops")).status_code == 200
            return len(gateways) == 2
        await wait_for(both_answer, 20, "both workers answering")
        for _ in range(20):
            async with httpx.AsyncClient() as fresh:
                assert (await fresh.get(f"{base}/api/v1/shops")).status_code == 200
        counters = await redis.keys("sf:rl:address_requests:*")
        # Both workers counted this client under one name: they share the day's key.
        assert len({c.split(b":")[3] for c in counters}) == 1, counters

        children = _children(service.pid)
        secrets_seen = {_environ(pid).get("STREETFEED_SECRET") for pid in children}
        assert len(children) >= 4 and len(secrets_seen) == 1, (children, secrets_seen)
        secret = secrets_seen.pop()
        assert secret and len(secret) >= 32
        assert "STREETFEED_SECRET" not in _environ(service.pid)  # made in the parent's memory
        keyspace = await _redis_dump(redis)
    finally:
        await redis.aclose()
        assert service.terminate() == 0
    # The data directory (AOF included) and the log are under tmp_path.
    for where, blob in (("Redis", keyspace), ("files", _files(tmp_path))):
        assert secret.encode() not in blob, f"the secret is in the {where}"


def _children(pid: int) -> list[int]:
    """The `streetfeed` child processes of `pid` (not the embedded server it also runs)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return [p for p in found if b"streetfeed.cli" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}

