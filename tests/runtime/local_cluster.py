"""A real Redis Cluster on loopback for the tests: N primaries with one replica each, started from
the installed `redis-server` (7+) on free ports, each node in its own process so a test can kill a
primary (SIGKILL, as a lost host) and let its replica take over, or ask a replica to take over.

Nothing is persisted (`--save "" --appendonly no`): what survives a failover is what reached the
replica before it, which is what the tests are about. All processes are killed by `stop()`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

BUS_OFFSET = 10_000  # a cluster node also listens on port + 10000 for the cluster bus


class ClusterError(RuntimeError):
    """The local cluster did not reach the state a test waited for."""


@dataclass(frozen=True)
class Node:
    """One line of CLUSTER NODES, as far as the tests need it."""

    node_id: str
    port: int
    primary: bool
    primary_id: str | None  # a replica's primary
    failed: bool
    slots: tuple[tuple[int, int], ...]

    def owns(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)


def redis_server() -> str:
    """The path of redis-server; a missing one fails the test loudly (it is part of the test setup,
    `make services` installs it), instead of a skip that would hide the cluster tests for good."""
    path = shutil.which("redis-server")
    if path is None or shutil.which("redis-cli") is None:
        raise ClusterError("redis-server/redis-cli not found on PATH: the RedisCluster tests start their own "
                           "cluster from it; install it (`make services`, or apt-get install redis-server)")
    return path


def free_ports(count: int) -> list[int]:
    """Ports free on loopback whose cluster-bus port (+10000) is free too. Another program may take
    one before the node binds it; `LocalCluster.start` then fails with the node's log."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + BUS_OFFSET > 65535 or port in ports or not _free(port + BUS_OFFSET):
            continue
        ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalCluster:
    def __init__(self, workdir: Path, primaries: int = 3, node_timeout_ms: int = 2000) -> None:
        # cluster-node-timeout: how long a silent node takes to be failed over. Short so a test's
        # failover takes seconds, not so short that a node starved of CPU on a busy machine is
        # failed over by mistake.
        self.workdir = workdir
        self.node_timeout_ms = node_timeout_ms
        self.ports = free_ports(2 * primaries)
        self._server = redis_server()
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    # ---- processes -------------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            self._wait_for(lambda p=port: self._ping(p), f"node {port} answering PING")
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=120, check=False)
        if created.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        self.wait_healthy()
        return self

    def _spawn(self, port: int) -> None:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self._processes[port] = subprocess.Popen(
            [self._server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
             "--logfile", str(node_dir / "redis.log"), "--daemonize", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
             "--cluster-node-timeout", str(self.node_timeout_ms),
             # A replica takes over however long it was cut off: the tests decide what it has.
             "--cluster-replica-validity-factor", "0",
             "--save", "", "--appendonly", "no",
             # Replicas sync at once (Redis 7 waits 5 s by default for more replicas to join a sync).
             "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, port: int) -> None:
        """SIGKILL a node: no goodbye to the cluster, its unreplicated writes gone with it."""
        process = self._processes.pop(port)
        process.kill()
        process.wait(30)

    def restart(self, port: int) -> None:
        """Start a killed node again on its port with its nodes.conf: it rejoins the cluster (a former
        primary comes back as a replica of whoever took over) and resyncs from its primary."""
        self._spawn(port)
        self._wait_for(lambda: self._ping(port), f"node {port} answering PING after restart")

    def stop(self) -> None:
        for process in self._processes.values():
            process.kill()
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
        self._processes.clear()

    @property
    def live_ports(self) -> list[int]:
        return sorted(self._processes)

    # ---- state -----------------------------------------------------------------------------------
    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)

    def nodes(self, port: int | None = None) -> list[Node]:
        """CLUSTER NODES as one live node (default: the first) sees it."""
        with self.client(port or self.live_ports[0]) as client:
            text = client.execute_command("CLUSTER", "NODES")
        return [_parse_node(line) for line in str(text).splitlines() if line.strip()]

    def primary_of(self, slot: int, port: int | None = None) -> Node:
        return next(n for n in self.nodes(port) if n.primary and not n.failed and n.owns(slot))

    def replica_of(self, primary: Node) -> Node:
        return next(n for n in self.nodes() if n.primary_id == primary.node_id and not n.failed)

    def healthy(self) -> bool:
        """Every live node reports cluster_state:ok and the same primaries, every primary has a live
        replica whose replication link is up (so a failover is possible)."""
        try:
            views = []
            for port in self.live_ports:
                if not self._state_ok(port):
                    return False
                views.append(sorted((n.port, n.slots) for n in self.nodes(port)
                                    if n.primary and not n.failed))
            nodes = self.nodes()
            primaries = [n for n in nodes if n.primary and not n.failed]
            replicas = [n for n in nodes if not n.primary and not n.failed and n.port in self._processes]
            if any(view != views[0] for view in views) or not all(
                    any(r.primary_id == p.node_id for r in replicas) for p in primaries):
                return False
            for replica in replicas:
                with self.client(replica.port) as client:
                    if client.info("replication").get("master_link_status") != "up":
                        return False
            return True
        except (redis.RedisError, StopIteration):
            return False

    def wait_healthy(self, within_s: float = 120.0) -> None:
        self._wait_for(self.healthy, "a healthy cluster (state ok, every primary with a synced replica)",
                       within_s)

    def wait_replicated(self, primary: Node, within_s: float = 60.0) -> None:
        """Wait until `primary`'s replica has processed every byte of the replication stream the
        primary had produced when this was called: every write the primary acknowledged before is
        then on the replica too, whatever connection wrote it (WAIT only covers its own connection's
        writes)."""
        with self.client(primary.port) as client:
            target = int(client.info("replication")["master_repl_offset"])
        replica = self.replica_of(primary)

        def caught_up() -> bool:
            with self.client(replica.port) as client:
                return int(client.info("replication").get("slave_repl_offset", -1)) >= target

        self._wait_for(caught_up, f"replica {replica.port} at offset {target} of primary {primary.port}",
                       within_s)

    def wait_promoted(self, old: Node, within_s: float = 120.0) -> Node:
        """Wait until another live node serves `old`'s slots and the cluster is ok again; the new primary."""
        slot = old.slots[0][0]

        def moved() -> bool:
            try:
                return self.primary_of(slot).port != old.port and all(
                    self._state_ok(port) for port in self.live_ports)
            except (redis.RedisError, StopIteration):
                return False

        self._wait_for(moved, f"a replica promoted in place of {old.port}", within_s)
        return self.primary_of(slot)

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for port in self.ports:
            log = self.workdir / str(port) / "redis.log"
            if log.exists():
                parts.append(f"--- {port} ---\n" + "\n".join(log.read_text().splitlines()[-lines:]))
        return "\n".join(parts)

    def _state_ok(self, port: int) -> bool:
        with self.client(port) as client:
            return "cluster_state:ok" in client.execute_command("CLUSTER", "INFO")

    def _ping(self, port: int) -> bool:
        process = self._processes.get(port)
        if process is not None and process.poll() is not None:
            raise ClusterError(f"redis-server on port {port} exited with {process.returncode}:\n"
                               + self.log_tail())
        try:
            with self.client(port) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _wait_for(self, check: Callable[[], bool], what: str, within_s: float = 60.0) -> None:
        """Poll `check`; a generous bound on a busy machine, only there so a broken cluster fails the
        test with its logs instead of hanging it."""
        deadline = time.monotonic() + within_s
        while not check():
            if time.monotonic() > deadline:
                raise ClusterError(f"gave up waiting for {what} after {within_s:g}s:\n{self.log_tail()}")
            time.sleep(0.05)


def _parse_node(line: str) -> Node:
    # <id> <ip:port@cport> <flags> <primary id|-> <ping> <pong> <epoch> <link> <slot ranges...>
    fields = line.split()
    flags = set(fields[2].split(","))
    slots = []
    for item in fields[8:]:
        if item.startswith("["):  # a slot being migrated or imported
            continue
        first, _, last = item.partition("-")
        slots.append((int(first), int(last or first)))
    return Node(node_id=fields[0], port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                primary="master" in flags, primary_id=None if fields[3] == "-" else fields[3],
                failed="fail" in flags or "fail?" in flags, slots=tuple(slots))
