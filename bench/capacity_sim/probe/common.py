"""What every probe step uses: process CPU, commandstats, a started process, a socket's
next frame, where the probe is."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any


async def received(ws: Any) -> str:
    """A feed socket's next frame; 30 s without one stops the probe rather than hang it."""
    try:
        return str(await asyncio.wait_for(ws.recv(), 30))
    except TimeoutError:
        raise SystemExit("probe: a feed socket sent nothing for 30 s") from None


def say(text: str) -> None:
    """Where the probe is (stderr: stdout is the figures)."""
    print(f"[probe {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def cpu_s(proc: Any) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def commandstats(sync: Any, command: str) -> tuple[int, int]:
    stats = sync.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str] | None = None) -> Iterator[Any]:
    import psutil

    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port(socketlib: Any) -> int:  # pragma: no cover
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
