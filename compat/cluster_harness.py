"""Clusters of servers for the compatibility suite's cluster scenarios (`-m cluster`).

A Cluster is N nodes of the server under test, started with the options Redis
takes for cluster mode (`--cluster-enabled yes --cluster-config-file F
--cluster-node-timeout N`, plus `--threads 1` for ringcast), each on a free
127.0.0.1 port whose cluster-bus port (port + 10000) is free too. It is
formed with `redis-cli --cluster create`, exactly as an operator would, and
every wait on it is bounded.

Loaded by conftest.py as a pytest plugin: it registers the `cluster` marker
and provides the `cluster_supported` and `make_cluster` fixtures. Against a
ringcast binary without cluster mode every test using them is skipped with
the reason `cluster_supported` found.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

import harness
from harness import WAIT, encode, reply_end, wait_until

SLOTS = 16384
NODE_TIMEOUT_MS = 1500
CONVERGE = 30.0  # bound for a cluster to form or settle, in seconds
CLI_TIMEOUT = 30.0  # bound for one `redis-cli --cluster` run
BUS_OFFSET = 10000
MAX_PORT = 65535 - BUS_OFFSET


# --- Ports and names.


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cluster_port(taken: set[int]) -> int:
    """A free 127.0.0.1 port whose bus port is free too and clashes with nothing in taken."""
    for _ in range(1000):
        port = harness.free_port()
        if port > MAX_PORT or {port, port + BUS_OFFSET} & taken:
            continue
        if _bindable(port + BUS_OFFSET):
            taken.update((port, port + BUS_OFFSET, port - BUS_OFFSET))
            return port
    raise RuntimeError(f"no free port pair (port, port+{BUS_OFFSET}) below {MAX_PORT}")


def channel_in_slot(slot: int, prefix: str = "ch") -> str:
    """The first name `{prefix}:{n}` that hashes to slot."""
    for n in range(2_000_000):
        name = f"{prefix}:{n}"
        if key_slot(name.encode()) == slot:
            return name
    raise AssertionError(f"no name found for slot {slot}")


def slot_of(name: str) -> int:
    return key_slot(name.encode())


# --- A raw connection, for replies that must match byte for byte.


class Raw:
    """One TCP connection; send() pipelines commands, replies(n) reads n whole replies as bytes."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = b""

    def send(self, *args: str | bytes) -> "Raw":
        self.sock.sendall(encode(*args))
        return self

    def replies(self, n: int, timeout: float = WAIT) -> list[bytes]:
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            end = reply_end(self.buf, 0) if self.buf else None
            if end is not None:
                out.append(self.buf[:end])
                self.buf = self.buf[end:]
                continue
            left = deadline - time.monotonic()
            assert left > 0, f"got {out!r} + {self.buf!r}, wanted {n} replies within {timeout}s"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            assert chunk, f"connection closed after {out!r} + {self.buf!r}"
            self.buf += chunk
        return out

    def call(self, *args: str | bytes) -> bytes:
        return self.send(*args).replies(1)[0]

    def quiet(self, seconds: float) -> bytes:
        """Whatever arrives within seconds (b"" if nothing): for asserting silence."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        got, self.buf = self.buf, b""
        return got

    def close(self):
        self.sock.close()


def bulk(s: str) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(s.encode()), s.encode())


def push(protocol: int, *items: bytes) -> bytes:
    """A pub/sub push of already-encoded items: `*n` in RESP2, `>n` in RESP3."""
    return (b"*" if protocol == 2 else b">") + b"%d\r\n" % len(items) + b"".join(items)


# --- Nodes and clusters.


def _die_with_parent() -> None:
    """In the child: SIGKILL when the suite's process goes, however it goes.

    pytest-timeout's thread method ends the process without teardown; six
    orphaned nodes would otherwise outlive it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Node(harness.Server):
    """One cluster-mode server; can also be killed, paused and resumed."""

    preexec = staticmethod(_die_with_parent) if sys.platform == "linux" else None

    def __init__(self, port: int, workdir: Path):
        config = workdir / f"nodes-{port}.conf"
        extra = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(config),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # Where a redis-server replica writes the RDB of its initial sync.
            "--dir", str(workdir),
        ]  # fmt: skip
        if harness.target() == "redis":
            # A replica's first sync waits 5 s for more replicas by default; the data is empty.
            # And a replica shows in CLUSTER SLOTS only once its replication
            # offset is non-zero, which for an idle master means after its
            # first replication PING (every 10 s by default).
            extra += ["--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1"]
        super().__init__(threads=1, port=port, extra=extra)
        self.paused = False
        self._admin: redis.Redis | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin(self) -> redis.Redis:
        """A RESP2 client with redis-py's reply parsing off: replies as the server sent them."""
        if self._admin is None:
            self._admin = redis.Redis(
                host="127.0.0.1",
                port=self.port,
                decode_responses=True,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
            self._admin.response_callbacks.clear()
        return self._admin

    def call(self, *args):
        return self.admin().execute_command(*args)

    def alive(self) -> bool:
        return self.proc is not None and not self.paused

    def node_id(self) -> str:
        return self.call("CLUSTER", "MYID")

    def info(self) -> dict[str, str]:
        text = self.call("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def nodes(self) -> list[dict]:
        """CLUSTER NODES, one dict per line: id, addr (ip:port), flags (set), master, slots (list)."""
        out = []
        for line in self.call("CLUSTER", "NODES").splitlines():
            f = line.split()
            out.append(
                {
                    "id": f[0],
                    "addr": f[1].split("@")[0],
                    "flags": set(f[2].split(",")),
                    "master": f[3],
                    "link": f[7],
                    "slots": f[8:],
                    "line": line,
                }
            )
        return out

    def slots(self) -> list:
        """CLUSTER SLOTS as the server sent it."""
        return self.call("CLUSTER", "SLOTS")

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=harness.STOP_TIMEOUT)
        self._drop_admin()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def _drop_admin(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def cleanup(self) -> None:
        if self.proc is not None and self.paused:
            self.resume()  # a stopped process would sit on SIGTERM until it is continued
        self._drop_admin()
        super().cleanup()


def normalised_slots(reply) -> list[tuple]:
    """CLUSTER SLOTS with ranges sorted and each range's replicas as a sorted tuple."""
    out = []
    for entry in reply:
        start, end, master, *replicas = entry
        out.append((start, end, tuple(master[:3]), tuple(sorted(tuple(r[:3]) for r in replicas))))
    return sorted(out)


def cli(*args: str, answer: str | None = None, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """One redis-cli run, answer (if any) on its stdin; stdout and stderr together in .stdout."""
    # redis-cli --cluster colours its output whenever TERM names an xterm, tty or not.
    env = {**os.environ, "TERM": "dumb"}
    return subprocess.run(
        ["redis-cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL if answer is None else None,
        input=answer,
        text=True,
        timeout=timeout,
        env=env,
    )


def scratch_dir(prefix: str) -> Path:
    """A new directory for nodes.conf files, in memory where possible: redis-server
    fsyncs nodes.conf on every slot change, thousands of times in a rebalance."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


class Cluster:
    """N cluster-mode nodes of the server under test in one scratch directory."""

    def __init__(self, n: int):
        self.dir = scratch_dir("compat-cluster-")
        taken: set[int] = set()
        self.nodes = [Node(cluster_port(taken), self.dir) for _ in range(n)]

    def start(self) -> "Cluster":
        for node in self.nodes:
            node.start()
        return self

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def live(self, nodes=None) -> list[Node]:
        return [n for n in (nodes or self.nodes) if n.alive()]

    def by_port(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def by_id(self, node_id: str) -> Node:
        for node in self.live():
            if node.node_id() == node_id:
                return node
        raise KeyError(node_id)

    # redis-cli --cluster

    def create(self, nodes=None, replicas: int = 0) -> subprocess.CompletedProcess:
        """`redis-cli --cluster create` of nodes (default all); fails the test unless it exits 0."""
        nodes = nodes or self.nodes
        args = ["--cluster", "create", *(n.addr for n in nodes), "--cluster-yes"]
        if replicas:
            args += ["--cluster-replicas", str(replicas)]
        proc = cli(*args)
        assert proc.returncode == 0, f"redis-cli --cluster create exited {proc.returncode}:\n{proc.stdout}"
        self.wait_ok(nodes)
        return proc

    def admin(
        self, subcommand: str, *args: str, entry: Node | None = None, answer: str | None = None
    ) -> subprocess.CompletedProcess:
        """`redis-cli --cluster <subcommand> <entry> args...` (entry: the first live node)."""
        entry = entry or self.live()[0]
        return cli("--cluster", subcommand, entry.addr, *args, answer=answer)

    def check(self, entry: Node | None = None) -> subprocess.CompletedProcess:
        return self.admin("check", entry=entry)

    # Convergence.

    def settled(self, nodes=None, state: str = "ok") -> bool:
        """Every node in nodes says cluster_state:<state> and all give the same CLUSTER SLOTS."""
        nodes = nodes or self.live()
        try:
            if any(n.info().get("cluster_state") != state for n in nodes):
                return False
            maps = [normalised_slots(n.slots()) for n in nodes]
        except redis.RedisError:
            return False
        return all(m == maps[0] for m in maps)

    def wait_ok(self, nodes=None, timeout: float = CONVERGE) -> None:
        nodes = nodes or self.live()
        if not wait_until(lambda: self.settled(nodes), timeout=timeout, interval=0.1):
            pytest.fail(f"cluster did not settle within {timeout}s:\n{self.describe(nodes)}")

    def wait_for(self, predicate, what: str, timeout: float = CONVERGE) -> None:
        def safe():
            try:
                return predicate()
            except redis.RedisError:
                return False

        if not wait_until(safe, timeout=timeout, interval=0.1):
            pytest.fail(f"{what}: not within {timeout}s:\n{self.describe()}")

    def describe(self, nodes=None) -> str:
        """Each live node's CLUSTER INFO state and CLUSTER NODES, for failure messages."""
        out = []
        for n in self.live(nodes):
            try:
                out.append(f"--- {n.addr}: cluster_state:{n.info().get('cluster_state')}")
                out.append(n.call("CLUSTER", "NODES").rstrip())
            except redis.RedisError as e:
                out.append(f"--- {n.addr}: {e}")
        return "\n".join(out)

    def slot_map(self, via: Node | None = None) -> list[tuple]:
        return normalised_slots((via or self.live()[0]).slots())

    def owner(self, slot: int, via: Node | None = None) -> Node:
        for start, end, master, _ in self.slot_map(via):
            if start <= slot <= end:
                return self.by_port(master[1])
        raise AssertionError(f"slot {slot} not served:\n{self.describe()}")

    def masters(self, via: Node | None = None) -> list[Node]:
        """Masters holding slots, in the order of their first slot."""
        seen: list[Node] = []
        for _, _, master, _ in self.slot_map(via):
            node = self.by_port(master[1])
            if node not in seen:
                seen.append(node)
        return seen


# --- pytest plugin: marker and fixtures.


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: cluster-mode scenarios (several nodes, redis-cli --cluster)")


@pytest.fixture(scope="session")
def cluster_supported():
    """Skip unless the server under test runs in cluster mode (cluster_enabled:1 in INFO cluster)."""
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli not installed (Debian package redis-tools)")
    workdir = scratch_dir("compat-cluster-probe-")
    node = Node(cluster_port(set()), workdir)
    try:
        try:
            node.start()
        except RuntimeError as e:
            pytest.skip(f"{harness.target()} refused to start with --cluster-enabled yes: {e}")
        try:
            info = node.call("INFO", "cluster")
        except redis.RedisError as e:
            pytest.skip(f"{harness.target()} in cluster mode did not answer INFO cluster: {e}")
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        enabled = fields.get("cluster_enabled")
        if enabled != "1":
            pytest.skip(
                f"{harness.target()} does not support cluster mode yet: "
                f"INFO cluster says cluster_enabled:{enabled} with --cluster-enabled yes"
            )
    finally:
        node.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def make_cluster(cluster_supported):
    """Factory: make_cluster(n) starts n nodes (not yet a cluster); all stopped afterwards."""
    made: list[Cluster] = []

    def make(n: int) -> Cluster:
        cluster = Cluster(n)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.cleanup()
