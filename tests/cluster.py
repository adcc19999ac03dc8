"""A real Valkey Cluster on loopback (3 masters, 3 replicas) from the bundled binary."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.crc import key_slot

from rules.regions import Region
from streetfeed.embedded import server_binary
from tests.helpers import free_port


def cli_binary() -> str:
    return str(Path(server_binary()).with_name("valkey-cli"))


@dataclass
class Node:
    port: int
    bus_port: int
    data: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             # Explicit bus port: port + 10000 may already be taken on this machine.
             "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
             "--cluster-config-file", str(self.data / "nodes.conf"),
             "--cluster-node-timeout", "1500", "--dir", str(self.data),
             # A replica may take over however long it was cut off (test cluster).
             "--cluster-replica-validity-factor", "0",
             # Replicas sync at once instead of waiting 5 s for others to batch with.
             "--repl-diskless-sync-delay", "0",
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def started(self) -> bool:
        """Answering on its port; meant to be polled. A port taken between free_port()
        and the bind (other servers start on this machine too) makes the server exit at
        once: it is started again on fresh ports."""
        if self.process is not None and self.process.poll() is not None:
            self.port, self.bus_port = free_port(), free_port()
            self.start()
            return False
        return _answers(self.port)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


@dataclass
class Cluster:
    root: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A live node's address (the first node may be the one a test killed)."""
        live = next((n for n in self.nodes if n.process is not None
                     and n.process.poll() is None), self.nodes[0])
        return f"redis://127.0.0.1:{live.port}"

    def start(self) -> None:
        for i in range(6):
            self.nodes.append(Node(free_port(), free_port(), self.root / f"node{i}"))
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            _wait(node.started, 15, f"node {node.port}")
        subprocess.run([cli_binary(), "--cluster", "create",
                        *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        _wait(self.healthy, 30, "cluster_state:ok on every node")
        _wait(self.replicas_in_sync, 30, "every replica synced with its master")

    def healthy(self) -> bool:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                info = node.client().execute_command("CLUSTER", "INFO")
            except Exception:
                return False
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text:
                return False
        return True

    def replicas_in_sync(self) -> bool:
        """A replica can only take over once its first sync is done."""
        synced = 0
        for node in self.nodes:
            try:
                info = node.client().info("replication")
            except Exception:  # a node still starting
                return False
            if info.get("role") == "slave":
                if info.get("master_link_status") != "up":
                    return False
                synced += 1
        return synced == 3

    def master_of(self, key: str) -> Node:
        """The master serving `key`, as a live node sees it (after a failover: the new one)."""
        slot = key_slot(key.encode())
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            with contextlib.suppress(Exception):
                for start, end, master, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(master[1])
                        return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"no master for slot {slot}")

    def restored(self) -> bool:
        """Every node up, the cluster ok, and three replicas synced: a healthy 3+3 again.
        Restarts killed nodes first (each rejoins as the replica of the master that took
        over from it); meant to be polled."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is not None:
                node.start()
        return self.healthy() and self.replicas_in_sync()

    def restore(self, timeout: float = 60) -> None:
        _wait(self.restored, timeout, "the cluster healthy with three synced replicas")

    def flush(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                with contextlib.suppress(Exception):
                    node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
                node.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def regions_on_different_masters(cluster: Cluster, names: list[str]) -> tuple[str, str]:
    """Two region names whose keys live on different masters."""
    owner = {name: cluster.master_of(f"sf:{{{name}}}:feed").port for name in names}
    for a in names:
        for b in names:
            if owner[a] != owner[b]:
                return a, b
    raise AssertionError("every candidate region landed on one master")


def two_regions(cluster: Cluster) -> tuple[Region, Region, str]:
    """A west and an east region of Bordeaux (split at -0.57) whose keys live on different
    masters, and their STREETFEED_REGIONS spelling."""
    west_name, east_name = regions_on_different_masters(
        cluster, ["ouest", "est", "nord", "sud", "centre", "rive-droite"])
    west = Region(west_name, 44.80, -0.62, 44.90, -0.57)
    east = Region(east_name, 44.80, -0.57, 44.90, -0.52)
    return west, east, ";".join(f"{r.name}:{r.south:.2f},{r.west:.2f},{r.north:.2f},{r.east:.2f}"
                                for r in (west, east))


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
