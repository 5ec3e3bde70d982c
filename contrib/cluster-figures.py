#!/usr/bin/env python3
"""Cluster figures of ringcast and redis-server, side by side: three nodes
on loopback formed with `redis-cli --cluster create`, one server kind after
the other, the same load on each. Needs Python's standard library and
redis-cli; the results are recorded in perf-notes.md.

    cargo build --release -p ringcast-server
    python3 contrib/cluster-figures.py [--messages N] [--subscribers S]

Scenarios, each measured on a fresh three-node cluster:

  fanout   S subscribers of one channel on each of the three nodes, one
           publisher on the first node sending N messages as fast as its
           replies come back (200 in flight): deliveries per second from
           the first PUBLISH to the last byte at the last subscriber, and
           the CPU (user + system, all three nodes) per delivery
  local    S subscribers of one channel on the first node only, the same
           publisher: what each of the two other nodes spends on those
           PUBLISHes, which none of its clients wants (bytes it reads from
           its peers and CPU, per PUBLISH, idle cost of an equal time
           subtracted)

Subscribers are read by one process per node that counts bytes: every
message frame has the same size, so a subscriber is done when it has read
N frames' worth. Before measuring, the publisher repeats a warm-up message
until every subscriber has one, so interest has reached every node.
"""

import argparse
import multiprocessing as mp
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from figures_common import command, count_replies

TICK = os.sysconf("SC_CLK_TCK")
CHANNEL = b"fig.channel"
WINDOW = 200


def free_cluster_port():
    """A loopback port free along with its bus port (port + 10000)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port + 10000 > 65535:
            continue
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        finally:
            b.close()
        return port
    raise RuntimeError("no free port pair")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def read_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


class Node:
    def __init__(self, kind, binary, workdir):
        self.port = free_cluster_port()
        conf = os.path.join(workdir, f"nodes-{self.port}.conf")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", conf,
                "--cluster-node-timeout", "5000"]  # fmt: skip
        if kind == "redis":
            args += ["--save", "", "--appendonly", "no", "--dir", workdir]
        else:
            args += ["--threads", "1"]
        self.log = open(os.path.join(workdir, f"{kind}-{self.port}.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.call(b"PING")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{kind} on {self.port} did not start")
                time.sleep(0.05)

    def call(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(command(*args))
            data = b""
            while True:
                data += s.recv(1 << 16)
                if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
                    return data
                if data.startswith(b"$"):
                    head, _, rest = data.partition(b"\r\n")
                    if len(rest) >= int(head[1:]) + 2:
                        return rest[: int(head[1:])]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def form(nodes):
    out = subprocess.run(
        ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-yes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
        env={**os.environ, "TERM": "dumb"},
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stdout)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        infos = [n.call(b"CLUSTER", b"INFO") for n in nodes]
        if all(b"cluster_state:ok" in i and b"cluster_known_nodes:3" in i for i in infos):
            return
        time.sleep(0.1)
    raise RuntimeError("the cluster did not become ok")


def frame(payload):
    return command(b"message", CHANNEL, payload)


def reader(port, count, conn):
    """Subscribes `count` connections, then serves the parent's requests:
    ("warm", size) read until every connection has a whole number (>= 1) of
    size-byte frames; ("drain",) read until 0.3 s of silence; ("expect", n)
    read until every connection has n more bytes, answer the time of the
    last byte."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for s in socks:
        s.sendall(command(b"SUBSCRIBE", CHANNEL))
        count_replies(s, b"\r\nsubscribe\r\n", 1)
        s.setblocking(False)
    conn.send("ready")
    got = {s: 0 for s in socks}
    while True:
        req = conn.recv()
        if req[0] == "stop":
            return
        for s in socks:
            got[s] = 0
        if req[0] == "warm":
            size = req[1]
            pending = set(socks)
            deadline = time.monotonic() + 30
            while pending and time.monotonic() < deadline:
                for s in select.select(list(pending), [], [], 0.1)[0]:
                    got[s] += len(s.recv(1 << 20))
                    if got[s] and got[s] % size == 0:
                        pending.discard(s)
            conn.send(len(pending))
        elif req[0] == "drain":
            while select.select(socks, [], [], 0.3)[0]:
                for s in select.select(socks, [], [], 0)[0]:
                    s.recv(1 << 20)
            conn.send("drained")
        elif req[0] == "expect":
            want = req[1]
            pending = set(socks)
            last = time.monotonic()
            deadline = last + 300
            while pending and time.monotonic() < deadline:
                for s in select.select(list(pending), [], [], 0.5)[0]:
                    n = len(s.recv(1 << 20))
                    got[s] += n
                    last = time.monotonic()
                    if got[s] >= want:
                        pending.discard(s)
            conn.send((len(pending), last))


def publish(port, payloads):
    s = socket.create_connection(("127.0.0.1", port))
    batch = []
    for p in payloads:
        batch.append(command(b"PUBLISH", CHANNEL, p))
        if len(batch) == WINDOW:
            s.sendall(b"".join(batch))
            count_replies(s, b"\r\n", len(batch))
            batch = []
    if batch:
        s.sendall(b"".join(batch))
        count_replies(s, b"\r\n", len(batch))
    s.close()


def start_readers(nodes, per_node):
    readers = []
    for n, count in zip(nodes, per_node):
        if count == 0:
            continue
        parent, child = mp.Pipe()
        p = mp.Process(target=reader, args=(n.port, count, child), daemon=True)
        p.start()
        assert parent.recv() == "ready"
        readers.append((p, parent))
    return readers


def ask_all(readers, req):
    for _, c in readers:
        c.send(req)
    return [c.recv() for _, c in readers]


def stop(readers):
    for p, c in readers:
        c.send(("stop",))
        p.join(timeout=5)


def warm_up(nodes, readers):
    """Publish a warm-up message every 50 ms until every subscriber has one."""
    warm = frame(b"w" * 16)
    for _, c in readers:
        c.send(("warm", len(warm)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        publish(nodes[0].port, [b"w" * 16])
        if all(c.poll(0.05) for _, c in readers):
            break
    missing = sum(c.recv() for _, c in readers)
    ask_all(readers, ("drain",))
    return missing


def payloads(n, size):
    return [(b"%010d" % i).ljust(size, b".") for i in range(n)]


def fanout(kind, binary, args):
    with tempfile.TemporaryDirectory(prefix="ringcast-cluster-fig-") as d:
        nodes = [Node(kind, binary, d) for _ in range(3)]
        try:
            form(nodes)
            readers = start_readers(nodes, [args.subscribers] * 3)
            missing = warm_up(nodes, readers)
            if missing:
                return {"error": f"{missing} subscribers never got a message from another node"}
            msgs = payloads(args.messages, args.payload)
            size = len(frame(msgs[0]))
            for _, c in readers:
                c.send(("expect", size * args.messages))
            cpu0 = sum(cpu_ticks(n.proc.pid) for n in nodes)
            t0 = time.monotonic()
            publish(nodes[0].port, msgs)
            results = [c.recv() for _, c in readers]
            cpu1 = sum(cpu_ticks(n.proc.pid) for n in nodes)
            stop(readers)
            short = sum(r[0] for r in results)
            last = max(r[1] for r in results)
            deliveries = args.messages * args.subscribers * 3
            return {
                "deliveries": deliveries,
                "short": short,
                "seconds": last - t0,
                "rate": deliveries / (last - t0),
                "ns_per_delivery": (cpu1 - cpu0) / TICK * 1e9 / deliveries,
            }
        finally:
            for n in nodes:
                n.stop()


def local(kind, binary, args):
    with tempfile.TemporaryDirectory(prefix="ringcast-cluster-fig-") as d:
        nodes = [Node(kind, binary, d) for _ in range(3)]
        try:
            form(nodes)
            readers = start_readers(nodes, [args.subscribers, 0, 0])
            warm_up(nodes, readers)
            others = [n.proc.pid for n in nodes[1:]]
            msgs = payloads(args.messages, args.payload)
            size = len(frame(msgs[0]))
            # What the other nodes spend doing nothing, for as long as the run takes.
            for _, c in readers:
                c.send(("expect", size * args.messages))
            before = [(cpu_ticks(p), read_bytes(p)) for p in others]
            t0 = time.monotonic()
            publish(nodes[0].port, msgs)
            results = [c.recv() for _, c in readers]
            elapsed = max(r[1] for r in results) - t0
            time.sleep(0.5)  # whatever is still on its way to the other nodes
            after = [(cpu_ticks(p), read_bytes(p)) for p in others]
            idle0 = [(cpu_ticks(p), read_bytes(p)) for p in others]
            time.sleep(elapsed + 0.5)
            idle1 = [(cpu_ticks(p), read_bytes(p)) for p in others]
            stop(readers)
            per = []
            for b, a, i0, i1 in zip(before, after, idle0, idle1):
                cpu = (a[0] - b[0]) - (i1[0] - i0[0])
                rd = (a[1] - b[1]) - (i1[1] - i0[1])
                per.append((max(cpu, 0) / TICK * 1e9 / args.messages, max(rd, 0) / args.messages))
            return {"per_node": per, "seconds": elapsed}
        finally:
            for n in nodes:
                n.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ringcast", default="target/release/ringcast")
    p.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    p.add_argument("--servers", default="ringcast,redis")
    p.add_argument("--scenarios", default="fanout,local")
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--subscribers", type=int, default=33, help="per node (fanout) or on the first node (local)")
    p.add_argument("--payload", type=int, default=64)
    args = p.parse_args()
    print(f"machine: nproc {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    binaries = {"ringcast": args.ringcast, "redis": args.redis}
    for scenario in args.scenarios.split(","):
        rows = {}
        for kind in args.servers.split(","):
            run = fanout if scenario == "fanout" else local
            rows[kind] = run(kind, binaries[kind], args)
            print(f"{scenario} {kind}: {rows[kind]}", file=sys.stderr)
        print()
        if scenario == "fanout":
            print(f"## fan-out across 3 nodes: {args.subscribers} subscribers per node, "
                  f"{args.messages} messages of {args.payload} B published on the first")
            print()
            print("| server | deliveries/s | CPU per delivery, 3 nodes | missing deliveries |")
            print("| --- | ---: | ---: | ---: |")
            for kind, r in rows.items():
                if "error" in r:
                    print(f"| {kind} | {r['error']} | | |")
                    continue
                print(f"| {kind} | {r['rate']:,.0f} | {r['ns_per_delivery']:,.0f} ns | {r['short']} |")
        else:
            print(f"## a PUBLISH no client of the node wants: {args.messages} messages of "
                  f"{args.payload} B, subscribers on the first node only")
            print()
            print("| server | bytes read per PUBLISH, node 2 / node 3 | CPU per PUBLISH, node 2 / node 3 |")
            print("| --- | ---: | ---: |")
            for kind, r in rows.items():
                (c2, b2), (c3, b3) = r["per_node"]
                print(f"| {kind} | {b2:,.0f} / {b3:,.0f} B | {c2:,.0f} / {c3:,.0f} ns |")
    print()
    print(f"machine at the end: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
