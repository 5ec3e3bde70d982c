#!/usr/bin/env python3
"""Memory figures of ringcast and redis-server, side by side, from one run.

Starts each server on an ephemeral loopback port, drives one scenario at a
time and reads the server's resident memory (VmRSS of /proc/<pid>/status),
the part of it in transparent huge pages (AnonHugePages of smaps_rollup) and
INFO used_memory. Needs only Python's standard library, plus ringcast-bench
for the soak scenario. The results are recorded in RELIABILITY.md.

    cargo build --release -p ringcast-server -p ringcast-bench
    python3 contrib/memory-figures.py [--scenarios churn,bulk,burst,soak]

Scenarios (sizes can be changed with the flags below):
  churn  5 cycles of 10,000 connections opened, each sends PING, then all
         closed abruptly (RST)
  bulk   2,000 connections each announce a 512 MB bulk
         (*2 $4 ECHO $536870912) and send 100 bytes of it, then close
  burst  10 subscribers stop reading while 3 GiB of 900-byte messages are
         queued for them (output limits off), then read it all and stay
  soak   ringcast-bench: 100 subscribers on one channel, 10,000 msg/s for
         30 s, then every connection closed
  channels  one connection subscribes to 200,000 channels, unsubscribes
         from each by name, then closes (not run by default)
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

from figures_common import command, count_replies, free_port, reset_all

MIB = 1024 * 1024


class Server:
    def __init__(self, kind, binary):
        self.kind = kind
        self.port = free_port()
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--maxclients", "20000"]
        if kind == "redis":
            args += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                if self.cmd(b"PING") == b"+PONG\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{kind} did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def cmd(self, *args):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(command(*args))
        data = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
            if complete_reply(data):
                break
        s.close()
        return data

    def info(self, field, section=b"memory"):
        text = self.cmd(b"INFO", section).decode(errors="replace")
        m = re.search(rf"^{field}:(\S+)", text, re.M)
        return int(m.group(1)) if m else 0

    def memory(self):
        """(rss, huge, used_memory) in bytes."""
        pid = self.proc.pid
        status = open(f"/proc/{pid}/status").read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024
        try:
            rollup = open(f"/proc/{pid}/smaps_rollup").read()
            huge = int(re.search(r"AnonHugePages:\s+(\d+)", rollup).group(1)) * 1024
        except (OSError, AttributeError):
            huge = 0
        return rss, huge, self.info("used_memory")


def complete_reply(data):
    if data[:1] in (b"+", b"-", b":"):
        return data.endswith(b"\r\n")
    m = re.match(rb"\$(\d+)\r\n", data)
    return bool(m) and len(data) >= m.end() + int(m.group(1)) + 2


class Figures:
    """Rows of (label, rss, huge, used_memory) for one server in one scenario."""

    def __init__(self, server):
        self.server = server
        self.rows = []
        self.notes = []

    def take(self, label):
        time.sleep(0.2)  # INFO used_memory is sampled every 100 ms
        rss, huge, used = self.server.memory()
        self.rows.append((label, rss, huge, used))
        return rss

    def rss(self):
        return self.server.memory()[0]


def connect_many(server, n, hello):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(hello)
        socks.append(s)
    return socks


def wait_read(server, before, n):
    deadline = time.time() + 60
    while server.info("total_net_input_bytes", b"stats") < before + n:
        if time.time() > deadline:
            raise RuntimeError("server did not read what was sent")
        time.sleep(0.05)


def wait_clients(server, n):
    deadline = time.time() + 60
    while server.info("connected_clients", b"clients") != n:
        if time.time() > deadline:
            raise RuntimeError(f"clients did not go down to {n}")
        time.sleep(0.05)


def idle_rows(f, after, seconds):
    start = time.time()
    for t in seconds:
        time.sleep(max(0.0, start + t - time.time()))
        f.take(f"{after} +{t}s")


def churn(server, a):
    f = Figures(server)
    start = f.take("start")
    peak = start
    for cycle in range(a.churn_cycles):
        before = server.info("total_net_input_bytes", b"stats")
        socks = connect_many(server, a.churn_conns, b"PING\r\n")
        wait_read(server, before, 6 * a.churn_conns)
        rss = f.take(f"cycle {cycle + 1}: {a.churn_conns} connected")
        peak = max(peak, rss)
        reset_all(socks)
        wait_clients(server, 1)
        f.take(f"cycle {cycle + 1}: all closed")
    idle_rows(f, "after the last close", [1, 5, 10, 30])
    f.notes.append(f"per connection at peak: {(peak - start) / a.churn_conns / 1024:.1f} KiB")
    return f


def bulk(server, a):
    f = Figures(server)
    start = f.take("start")
    hello = b"*2\r\n$4\r\nECHO\r\n$536870912\r\n" + b"x" * 100
    before = server.info("total_net_input_bytes", b"stats")
    socks = connect_many(server, a.bulk_conns, hello)
    wait_read(server, before, len(hello) * a.bulk_conns)
    loaded = f.take(f"{a.bulk_conns} connections declared 512 MB, sent 100 B")
    reset_all(socks)
    wait_clients(server, 1)
    f.take("all closed")
    idle_rows(f, "after close", [1, 5, 10, 30])
    f.notes.append(f"per connection: {(loaded - start) / a.bulk_conns / 1024:.1f} KiB")
    return f


def burst(server, a):
    f = Figures(server)
    subs_n = 10
    payload = b"x" * 900
    server.cmd(b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 0 0 0")
    subs = []
    for _ in range(subs_n):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(command(b"SUBSCRIBE", b"burst"))
        subs.append(s)
    for s in subs:
        s.recv(100)
    f.take("start (10 subscribers)")
    frame = len(b"*3\r\n$7\r\nmessage\r\n$5\r\nburst\r\n$900\r\n") + 902
    n = a.burst_mib * MIB // (subs_n * frame)
    pub = socket.create_connection(("127.0.0.1", server.port))
    publish = command(b"PUBLISH", b"burst", payload)

    def replies():
        want = n * len(b":10\r\n")
        while want > 0:
            d = pub.recv(1 << 20)
            if not d:
                raise RuntimeError("publisher closed")
            want -= len(d)

    t = threading.Thread(target=replies)
    t.start()
    sent = 0
    while sent < n:
        k = min(1000, n - sent)
        pub.sendall(publish * k)
        sent += k
    t.join()
    f.take(f"peak: {n * frame * subs_n / MIB:.0f} MiB queued")

    def drain(s):
        want = n * frame
        while want > 0:
            d = s.recv(1 << 20)
            if not d:
                raise RuntimeError("subscriber closed")
            want -= len(d)

    threads = [threading.Thread(target=drain, args=(s,)) for s in subs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f.take("drained (subscribers stay)")
    idle_rows(f, "after drain", [1, 5, 10, 35])
    reset_all(subs + [pub])
    wait_clients(server, 1)
    idle_rows(f, "subscribers closed", [1, 5])
    return f


def soak(server, a):
    f = Figures(server)
    f.take("start")
    cmd = [a.bench, "run", "-p", str(server.port), "--shape", "fanout",
           "--subscribers", str(a.soak_subscribers), "--rate", str(a.soak_rate),
           "--duration", str(a.soak_seconds), "--no-server-stats"]
    bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = (0, 0, 0)
    while bench.poll() is None:
        m = server.memory()
        peak = max(peak, m)
        time.sleep(0.5)
    out = bench.stdout.read()
    f.rows.append(("peak during the soak", *peak))
    verdict = [line.strip() for line in out.splitlines() if "verified" in line]
    f.notes.append(" ".join(cmd[1:]) + (f": {verdict[0]}" if verdict else f": exit {bench.returncode}"))
    wait_clients(server, 1)
    f.take("bench closed")
    idle_rows(f, "after the soak", [1, 5, 10, 30])
    return f


def channels(server, a):
    f = Figures(server)
    f.take("start")
    s = socket.create_connection(("127.0.0.1", server.port))

    def each(verb, word):
        for i in range(0, a.channels, 1000):
            names = [b"channel:%08d" % j for j in range(i, min(i + 1000, a.channels))]
            s.sendall(command(verb, *names))
        count_replies(s, word, a.channels)

    each(b"SUBSCRIBE", b"\r\nsubscribe\r\n")
    f.take(f"{a.channels} channels subscribed")
    each(b"UNSUBSCRIBE", b"\r\nunsubscribe\r\n")
    f.take("all unsubscribed")
    idle_rows(f, "unsubscribed", [1, 5])
    s.close()
    wait_clients(server, 1)
    idle_rows(f, "closed", [1, 5, 30])
    return f


SCENARIOS = {"churn": churn, "bulk": bulk, "burst": burst, "soak": soak, "channels": channels}


def machine():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
    return (f"nproc {os.cpu_count()}, kernel {os.uname().release}, CPU {cpu}, "
            f"THP {thp}, load average {' '.join(open('/proc/loadavg').read().split()[:3])}")


def report(name, results):
    print(f"\n## {name}\n")
    for kind, f in results:
        for note in f.notes:
            print(f"- {kind}: {note}")
    print()
    head = "| moment |"
    rule = "| --- |"
    for kind, _ in results:
        head += f" {kind} RSS (of it huge pages) | {kind} used_memory |"
        rule += " ---: | ---: |"
    print(head)
    print(rule)
    for i in range(max(len(f.rows) for _, f in results)):
        label = next(f.rows[i][0] for _, f in results if i < len(f.rows))
        line = f"| {label} |"
        for _, f in results:
            if i < len(f.rows):
                _, rss, huge, used = f.rows[i]
                line += f" {rss / MIB:.1f} MiB ({huge / MIB:.0f}) | {used / MIB:.1f} MiB |"
            else:
                line += " | |"
        print(line)
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ringcast", default="target/release/ringcast")
    p.add_argument("--redis", default="redis-server")
    p.add_argument("--bench", default="target/release/ringcast-bench")
    p.add_argument("--before", help="another ringcast build to measure beside them (e.g. before a change)")
    p.add_argument("--scenarios", default="churn,bulk,burst,soak")
    p.add_argument("--churn-cycles", type=int, default=5)
    p.add_argument("--churn-conns", type=int, default=10000)
    p.add_argument("--bulk-conns", type=int, default=2000)
    p.add_argument("--burst-mib", type=int, default=3072)
    p.add_argument("--channels", type=int, default=200000)
    p.add_argument("--soak-subscribers", type=int, default=100)
    p.add_argument("--soak-rate", type=int, default=10000)
    p.add_argument("--soak-seconds", type=int, default=30)
    a = p.parse_args()
    print(f"machine: {machine()}")
    for name in a.scenarios.split(","):
        results = []
        servers = [("ringcast", a.ringcast), ("redis-server", a.redis)]
        if a.before:
            servers.append(("ringcast before", a.before))
        for kind, binary in servers:
            server = Server("redis" if kind == "redis-server" else "ringcast", binary)
            try:
                results.append((kind, SCENARIOS[name](server, a)))
            finally:
                server.stop()
        report(name, results)
    print(f"\nmachine at the end: {machine()}")


if __name__ == "__main__":
    main()
