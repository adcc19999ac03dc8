"""Drives the Node.js load generator (bench/loadgen.js): one process per ~2,500 sockets.

Python WebSocket clients cost about as much CPU per delivery as the server and
would pull the measurement down on a 2-core machine (BENCH-NOTES), so the
subscribers are Node.js `ws` clients (and `socket.io-client` for the peer).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.city import Subscriber

BENCH_DIR = Path(__file__).resolve().parent
SCRIPT = BENCH_DIR / "loadgen.js"
PER_PROCESS = 2_500


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js not found: the load generator needs `node` (>= 18)")
    if not (BENCH_DIR / "node_modules" / "ws").is_dir():
        raise RuntimeError("bench/node_modules missing: run `npm ci --prefix bench` first")
    return node


@dataclass
class Received:
    """What the clients got: per post id, (client index, receive time in epoch ms)."""

    by_post: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    posted_at: dict[str, str] = field(default_factory=dict)
    records: int = 0


def _read_dump(path: Path, received: Received,
               by_post: dict[str, list[tuple[int, float]]]) -> None:
    with open(path, encoding="latin-1") as lines:
        for line in lines:
            a, b, c = line.rstrip("\n").split("\t")
            if a == "#":
                received.posted_at[b] = c
            else:
                by_post[b].append((int(a), float(c)))
                received.records += 1


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lock = asyncio.Lock()

    async def ask(self, command: str, timeout: float = 60.0) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write(command.encode() + b"\n")
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"load generator {self.proc.pid} exited "
                               f"({await self.proc.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]


class LoadGen:
    def __init__(self, workdir: Path, mode: str, base: str, path: str, query: bool,
                 subscribers: list[Subscriber], concurrency: int = 100, *,
                 resume: bool = False, hold: bool = False) -> None:
        self.workdir = workdir
        # resume: reconnect as the pages do (bench/storm.py); hold: open on `go()` only.
        self.resume = resume
        self.hold = hold
        self.mode = mode
        self.base = base
        self.path = path
        self.query = query
        self.subscribers = subscribers
        self.concurrency = concurrency
        self.workers: list[_Worker] = []

    async def start(self) -> None:
        node = node_binary()
        subs = self.subscribers
        count = max(1, -(-len(subs) // PER_PROCESS))
        for k in range(count):
            part = subs[k::count]
            config = self.workdir / f"loadgen-{k}.json"
            config.write_text(json.dumps({
                "mode": self.mode, "base": self.base, "path": self.path, "query": self.query,
                "concurrency": self.concurrency, "resume": self.resume, "hold": self.hold,
                "clients": [[s.idx, s.lat, s.lon, s.radius_m,
                             list(s.kinds) if s.kinds else None] for s in part]}))
            # Opened before the load starts; the child owns it.
            log = open(self.workdir / f"loadgen-{k}.log", "ab")  # noqa: ASYNC230, SIM115
            proc = await asyncio.create_subprocess_exec(
                node, str(SCRIPT), str(config), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log, limit=2**20)
            log.close()
            self.workers.append(_Worker(proc))

    async def stats(self) -> dict[str, float]:
        answers = await asyncio.gather(*(w.ask("stat") for w in self.workers))
        total: dict[str, float] = defaultdict(float)
        for answer in answers:
            for key in ("subscribed", "kept", "frames", "dropped", "errors", "closed", "opened",
                        "n", "resumed", "resets", "connect_errors", "open_timeouts", "live_lost"):
                total[key] += float(answer.get(key, 0))  # type: ignore[arg-type]
            total["last"] = max(total["last"], float(answer["last"]))  # type: ignore[arg-type]
            if answer.get("lastError"):
                total["error"] = answer["lastError"]  # type: ignore[assignment]
        return dict(total)

    async def wait_subscribed(self, timeout: float) -> dict[str, float]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            stats = await self.stats()
            if stats["subscribed"] >= len(self.subscribers):
                return stats
            if stats["errors"] or stats["closed"] or loop.time() > deadline:
                raise RuntimeError(f"only {stats['subscribed']:.0f}/{len(self.subscribers)} "
                                   f"subscribed: {stats}")
            await asyncio.sleep(0.1)

    async def wait_kept(self, target: float, stall_s: float, limit_s: float) -> dict[str, float]:
        """Until `target` posts are kept in all, or no progress for `stall_s`, or `limit_s`."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        last_kept, last_change = -1.0, start
        while True:
            stats = await self.stats()
            now = loop.time()
            if stats["kept"] != last_kept:
                last_kept, last_change = stats["kept"], now
            if stats["kept"] >= target or now - last_change > stall_s or now - start > limit_s:
                return stats
            await asyncio.sleep(0.05)

    async def go(self) -> float:
        """Open every held socket at once (all processes); the earliest start (epoch ms)."""
        answers = await asyncio.gather(*(w.ask("go") for w in self.workers))
        return min(float(a["go"]) for a in answers)  # type: ignore[arg-type]

    async def mark(self, at_ms: float) -> None:
        """From `at_ms` (epoch ms) on, sockets live again on a new connection are resumed."""
        await asyncio.gather(*(w.ask(f"mark {at_ms!r}") for w in self.workers))

    async def storm(self) -> tuple[list[float], list[float], list[int]]:
        """Per socket: when its current connection went live (epoch ms, 0 if not live), when
        its last handshake was answered, and its connection attempts since the mark."""
        live_at: list[float] = []
        open_at: list[float] = []
        tries: list[int] = []
        for answer in await asyncio.gather(*(w.ask("storm") for w in self.workers)):
            live_at += answer["live_at"]  # type: ignore[operator]
            open_at += answer["open_at"]  # type: ignore[operator]
            tries += answer["tries"]  # type: ignore[operator]
        return live_at, open_at, tries

    async def histogram(self, since_ms: float) -> list[int]:
        """Kept posts received since `since_ms`, per millisecond, over all processes."""
        answers = await asyncio.gather(*(w.ask(f"hist {since_ms!r}") for w in self.workers))
        merged: list[int] = []
        for answer in answers:
            counts = answer["counts"]
            assert isinstance(counts, list)
            if len(counts) > len(merged):
                merged.extend([0] * (len(counts) - len(merged)))
            for i, c in enumerate(counts):
                merged[i] += c
        return merged

    async def dump(self) -> Received:
        received = Received()
        by_post: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for k, worker in enumerate(self.workers):
            path = self.workdir / f"received-{k}.tsv"
            await worker.ask(f"dump {path}", timeout=300)
            _read_dump(path, received, by_post)  # after the load: blocking is fine
            path.unlink()
        received.by_post = dict(by_post)
        return received

    def cpu_s(self) -> float:
        total = 0.0
        for worker in self.workers:
            try:
                times = psutil.Process(worker.proc.pid).cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    async def close(self) -> None:
        for worker in self.workers:
            if worker.proc.returncode is None and worker.proc.stdin is not None:
                try:
                    worker.proc.stdin.write(b"exit\n")
                    await worker.proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.proc.wait(), 15)
            except TimeoutError:
                worker.proc.kill()
                await worker.proc.wait()
        self.workers = []
