"""Server processes for a scenario: start, wait until they answer, measure, stop.

Every server is a real process on a fresh loopback port; its CPU (user +
system) and RSS are read from its own accounting with psutil.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# Where the product's code is imported from: the working tree, or an exported commit
# (`python -m bench --product REF`), so that edits in progress cannot break a long run.
PRODUCT_DIR = ROOT


# The product's packages: imported from PRODUCT_DIR, never half from here, half from there.
PRODUCT_PACKAGES = ("feed", "web", "streetfeed", "workers", "schemas")


def use_product(ref: str) -> None:
    """Run the product of commit REF (exported) instead of the working tree: its processes,
    and this process's own imports of it from now on (modules already imported from the
    working tree are forgotten, so that nothing mixes the two)."""
    global PRODUCT_DIR
    PRODUCT_DIR = export_product(ref, Path(tempfile.mkdtemp(prefix="streetfeed-product-")))
    sys.path.insert(0, str(PRODUCT_DIR))
    for name in [m for m in sys.modules if m.split(".")[0] in PRODUCT_PACKAGES]:
        del sys.modules[name]


def _server_binary() -> str:
    from streetfeed.embedded import server_binary  # the product's, once PRODUCT_DIR is set

    return server_binary()


def drop_product() -> None:
    """Remove the export made by use_product, if any."""
    if PRODUCT_DIR != ROOT:
        shutil.rmtree(PRODUCT_DIR, ignore_errors=True)


def export_product(ref: str, into: Path) -> Path:
    """`git archive REF` of the repository into `into` (the repository is left untouched)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _python_env() -> dict[str, str]:
    """Product modules from PRODUCT_DIR (the working directory comes first on sys.path for
    `python -m`), the benchmark's own modules from this checkout."""
    path = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return {"PYTHONPATH": os.pathsep.join(path)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")
        time.sleep(0.02)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.popen.pid)

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss_kib(self) -> float:
        return float(self.ps.memory_info().rss) / 1024.0

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


@dataclass
class ProcGroup:
    """The processes of one scenario; `main` is the one whose CPU and RSS are the figures,
    `all` the ones whose CPU together is `cpu_s_per_100k_all`."""

    main: Proc
    others: list[Proc] = field(default_factory=list)
    # Measured but not owned (the Valkey server shared by the scenarios of one run).
    shared: list[Proc] = field(default_factory=list)
    ws_base: str = ""
    post_url: str = ""

    @property
    def all(self) -> list[Proc]:
        return [self.main, *self.others, *self.shared]

    def cpu(self) -> dict[str, float]:
        return {p.name: p.cpu_s() for p in self.all}

    def stop(self) -> None:
        for proc in [self.main, *self.others]:
            proc.stop()

    def check_alive(self) -> None:
        for proc in self.all:
            if not proc.alive():
                tail = proc.log.read_text(errors="replace")[-2000:] if proc.log.exists() else ""
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{tail}")


def _spawn(name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> Proc:
    log = workdir / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=PRODUCT_DIR,
                                 env={**os.environ, **_python_env(), **(env or {})},
                                 stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    return Proc(name, popen, log)


class Valkey:
    """The bundled valkey-server on a free loopback port, AOF on (as the product runs it)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="valkey-", dir=workdir))
        self.port = free_port()
        self.proc = _spawn("valkey", [
            _server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--loglevel", "warning", "--maxclients", "1000"], workdir)
        wait_port(self.port, self.proc.popen, 15, "valkey-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_reference(kind: str, workdir: Path) -> ProcGroup:
    """The bare asyncio ceiling or the websockets broadcast server."""
    port, control = free_port(), free_port()
    module = {"ceiling": "bench.servers.ceiling", "broadcast": "bench.servers.broadcast"}[kind]
    proc = _spawn(kind, [sys.executable, "-m", module, "--port", str(port),
                         "--control-port", str(control)], workdir)
    wait_port(port, proc.popen, 15, kind)
    wait_port(control, proc.popen, 15, f"{kind} control")
    return ProcGroup(proc, ws_base=f"ws://127.0.0.1:{port}",
                     post_url=f"http://127.0.0.1:{control}/post")


def start_peer(workdir: Path, valkey: Valkey) -> ProcGroup:
    port = free_port()
    proc = _spawn("peer", [sys.executable, "-m", "bench.servers.peer", "--port", str(port),
                           "--redis-url", valkey.url], workdir)
    wait_port(port, proc.popen, 20, "python-socketio peer")
    return ProcGroup(proc, shared=[valkey.proc], ws_base=f"ws://127.0.0.1:{port}",
                     post_url=f"http://127.0.0.1:{port}/post")


def start_peer_tuned(workdir: Path) -> ProcGroup:
    """python-socketio with the in-memory manager: one process, no Valkey to count."""
    port = free_port()
    proc = _spawn("peer_tuned", [sys.executable, "-m", "bench.servers.peer_tuned", "--port",
                                 str(port)], workdir)
    wait_port(port, proc.popen, 20, "python-socketio tuned peer")
    return ProcGroup(proc, ws_base=f"ws://127.0.0.1:{port}",
                     post_url=f"http://127.0.0.1:{port}/post")


# Every subscriber and the harness connect from 127.0.0.1, and 300 shops post far more
# often than real ones: lift the abuse limits (they still run, with their Redis calls).
BENCH_LIMITS = {
    "STREETFEED_MAX_SOCKETS_PER_ADDRESS": "100000",
    "STREETFEED_ADDRESS_SOCKETS_PER_MINUTE": "100000000",
    "STREETFEED_ADDRESS_REQUESTS_PER_MINUTE": "100000000",
    "STREETFEED_SHOP_POSTS_PER_MINUTE": "100000000",
}


def streetfeed_env(workdir: Path, valkey: Valkey, *, use_index: bool = True) -> dict[str, str]:
    """The environment of the benchmark's `streetfeed` processes."""
    return {"REDIS_URL": valkey.url, "STREETFEED_GATEWAY_INDEX": "1" if use_index else "0",
            "STREETFEED_DATA_DIR": str(workdir / "var"), **BENCH_LIMITS}


def spawn_web(workdir: Path, env: dict[str, str], name: str, port: int) -> Proc:
    """`streetfeed web` on `port` (`python -m streetfeed.cli` is the `streetfeed` command,
    imported from PRODUCT_DIR); see wait_ready."""
    return _spawn(name, [sys.executable, "-m", "streetfeed.cli", "web", "--port", str(port)],
                  workdir, env)


def wait_ready(port: int, group: ProcGroup, what: str, timeout: float = 30) -> None:
    """Until `streetfeed web` on `port` answers /healthz (Redis reachable; the feed reader
    positions itself then)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            if answer.status == 200:
                return
        group.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: /healthz did not answer 200 within {timeout}s")
        time.sleep(0.05)


def start_streetfeed(workdir: Path, valkey: Valkey, *, use_index: bool) -> ProcGroup:
    """`streetfeed web` (the gateway, which also takes the POSTs) + `streetfeed enricher`."""
    port = free_port()
    env = streetfeed_env(workdir, valkey, use_index=use_index)
    name = "streetfeed" if use_index else "naive"
    web = spawn_web(workdir, env, f"{name}-web", port)
    enricher = _spawn(f"{name}-enricher", [sys.executable, "-m", "streetfeed.cli", "enricher"],
                      workdir, env)
    wait_port(port, web.popen, 30, "streetfeed web")
    group = ProcGroup(web, [enricher], [valkey.proc], ws_base=f"ws://127.0.0.1:{port}",
                      post_url=f"http://127.0.0.1:{port}")
    wait_ready(port, group, "streetfeed web")
    return group
