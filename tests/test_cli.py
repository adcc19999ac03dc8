"""The command line as a newcomer uses it: real processes, the embedded server, no REDIS_URL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from rules.shops import hash_token
from storage import keys
from streetfeed.embedded import EmbeddedServer
from tests.helpers import free_port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["STREETFEED_DEMO_INTERVAL_S"] = "0.3"
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "streetfeed.cli", *args]


def test_shops_add_prints_id_and_token_and_stores_only_a_hash(tmp_path: Path) -> None:
    data = tmp_path / "var"
    result = subprocess.run(
        _cli("shops", "add", "--name", "Fromagerie Dupont", "--category", "fromagerie",
             "--lat", "44.8397", "--lon", "-0.5737", "--address", "31 rue Sainte-Catherine",
             "--data-dir", str(data)),
        env=_env(), capture_output=True, text=True, timeout=60, check=True)
    created = json.loads(result.stdout)
    assert created["id"].startswith("fromagerie-dupont-")
    assert len(created["token"]) >= 43  # 256 bits, url-safe base64
    # The embedded server it started was stopped again, its data kept (AOF).
    assert not (data / "redis.sock").exists() or not _answers(data)
    assert (data / "appendonlydir").is_dir()
    # A second command on the same data directory sees the shop, stored with a hash only.
    again = subprocess.run(
        _cli("shops", "add", "--name", "Second", "--category", "café", "--lat", "44.84",
             "--lon", "-0.57", "--data-dir", str(data)),
        env=_env(), capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(again.stdout)["id"] != created["id"]
    server = subprocess.Popen(_cli("up", "--no-demo", "--port", str(free_port()),
                                   "--data-dir", str(data)),
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_socket(data)
        redis = Redis(unix_socket_path=str(data / "redis.sock"))
        stored = redis.get(keys.shop(created["id"]))
        assert stored is not None
        assert created["token"].encode() not in stored
        assert hash_token(created["token"]).encode() in stored
        assert redis.scard(keys.shops_index()) == 2
        redis.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_shops_add_rejects_bad_coordinates(tmp_path: Path) -> None:
    result = subprocess.run(
        _cli("shops", "add", "--name", "X", "--category", "other", "--lat", "95", "--lon", "0",
             "--data-dir", str(tmp_path / "var")),
        env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "lat" in result.stderr


def test_up_runs_everything_with_demo_data_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    process = subprocess.Popen(_cli("up", "--port", str(port), "--data-dir", str(data)),
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        posts: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            try:
                assert httpx.get(f"{base}/healthz", timeout=1).status_code == 200
                feed = httpx.get(f"{base}/api/v1/feed",
                                 params={"lat": 44.8370, "lon": -0.5735, "radius_m": 1000})
                posts = feed.json()["posts"]
                if len(posts) >= 3:
                    break
            except (httpx.HTTPError, AssertionError):
                pass
            time.sleep(0.1)
        assert len(posts) >= 3, "the demo street should come alive within seconds"
        assert {p["shop"]["id"] for p in posts} <= {s for s in _demo_ids()}
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        tokens = json.loads((data / "demo-tokens.json").read_text())
        assert len(tokens) == len(_demo_ids())
        # A second `up` on the same data dir refuses at once and changes nothing (it seeded
        # the demo again, and every running shop's token stopped working: a cold try).
        second = subprocess.run(_cli("up", "--port", str(free_port()), "--data-dir", str(data)),
                                env=_env(), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another `streetfeed up` is running" in second.stderr
        assert json.loads((data / "demo-tokens.json").read_text()) == tokens
        shop_id, token = next(iter(tokens.items()))
        still = httpx.get(f"{base}/api/v1/shops/{shop_id}/stats",
                          headers={"Authorization": f"Bearer {token}"})
        assert still.status_code == 200, still.text
        assert (data / "served-url").read_text().strip() == base
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert not _answers(data), "the embedded server must stop with `up`"
    # The passer-by position never reaches the logs.
    assert "44.837" not in out and "-0.5735" not in out


def _demo_ids() -> list[str]:
    from streetfeed.demo import DEMO_SHOPS
    return [s[0] for s in DEMO_SHOPS]


def _answers(data: Path) -> bool:
    from streetfeed.embedded import _ping_unix
    return _ping_unix(data / "redis.sock")


def _wait_socket(data: Path) -> None:
    deadline = time.monotonic() + 20
    while not _answers(data):
        if time.monotonic() > deadline:
            pytest.fail("embedded server did not answer")
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
def test_embedded_server_does_not_outlive_a_killed_owner(tmp_path: Path) -> None:
    """`up` killed outright (SIGKILL: no handler runs) takes its embedded server along,
    which still flushes its AOF on the way out."""
    data = tmp_path / "var"
    owner = subprocess.Popen(_cli("up", "--no-demo", "--port", str(free_port()),
                                  "--data-dir", str(data)),
                             env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_socket(data)
    finally:
        owner.kill()
        owner.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _answers(data):
        if time.monotonic() > deadline:
            pytest.fail("the embedded server outlived the process that started it")
        time.sleep(0.05)
    assert (data / "appendonlydir").is_dir()


def test_the_embedded_server_s_aof_is_the_owner_s_alone(tmp_path: Path) -> None:
    """Regression: the AOF (shop token hashes, push endpoints: capability URLs) was 0644 in
    a 0755 directory; a data dir made before is made private at the next start."""
    data = tmp_path / "var"
    (data / "appendonlydir").mkdir(parents=True)
    old = data / "appendonlydir" / "left.aof"
    old.write_bytes(b"")
    old.chmod(0o644)
    server = EmbeddedServer(data)
    server.ensure_running()
    try:
        client = Redis(unix_socket_path=str(server.socket_path))
        client.set("k", "v")
        client.close()
    finally:
        server.stop()
    folder = data / "appendonlydir"
    assert folder.stat().st_mode & 0o777 == 0o700
    files = list(folder.iterdir())
    assert len(files) > 1 and all(f.stat().st_mode & 0o077 == 0 for f in files), [
        (f.name, oct(f.stat().st_mode)) for f in files]
