#!/usr/bin/env python3
"""Fault and load figures of ringcast and redis-server, side by side.

Starts each server on an ephemeral loopback port (ringcast with --threads 2),
drives one scenario against it, stops it, and does the same with the next
server; prints a Markdown table per scenario. Needs only Python's standard
library, plus ringcast-bench for the slow and soak scenarios. The results
are recorded in RELIABILITY.md.

    cargo build --release -p ringcast-server -p ringcast-bench
    python3 contrib/reliability-figures.py <scenario> [options]

Scenarios:
  connections  10,000 and 30,000 subscriber connections: RSS per connection,
               time to connect and subscribe them all, one PUBLISH to all of
               them and the time until every one has it
  storm        10,000 subscribers close abruptly (RST) at once, 5 times,
               while another client PINGs: max PING latency, NUMSUB and
               connected_clients back, RSS back
  slow         20 subscribers that never read among 80 that read, one
               publisher at a steady rate with 4 KiB payloads
               (ringcast-bench --stalled-subscribers)
  crossflood   publishers on both workers flood, with 64 KiB payloads,
               channels subscribed on the other worker, where some
               subscribers do not read; a fresh connection PINGs every
               100 ms
  sigterm      SIGTERM while publishers flood and subscribers read: exit
               code, time to exit, how each subscriber's connection ended
  channels     1,000,000 channels subscribed across 100 connections, then
               half the connections unsubscribe by name and half close
  soak         ringcast-bench at a constant rate against both servers at
               once for --minutes (default 10), RSS every 10 s
  fds          the server under `ulimit -n 256` with maxclients 10000: the
               maxclients it settles on, what 400 more clients get, log lines
  patterns     20,000 patterns in one PSUBSCRIBE, then PUNSUBSCRIBE of all;
               80,000 channels in one SUBSCRIBE, then UNSUBSCRIBE of all;
               wall time of each and the slowest PING from another client
  all          every scenario above, soak included

Sizes and durations have flags (see --help); --ringcast-args passes more
flags to ringcast (e.g. "--ring-bytes 4mb"), --minutes sets the soak's.
"""

import argparse
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from figures_common import command, count_replies, free_port, reset_all

MIB = 1024 * 1024


# ----- servers and the protocol (as contrib/memory-figures.py) --------------

def raise_open_files():
    """Soft limit up to the hard one; returns the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Server:
    def __init__(self, kind, binary, extra=(), nofile=None):
        self.kind = kind
        self.port = free_port()
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--maxclients", "20000"] if "--maxclients" not in extra else []
        if kind == "redis":
            args += ["--save", "", "--appendonly", "no"]
        else:
            args += ["--threads", "2"]
        args += list(extra)
        self.log = tempfile.NamedTemporaryFile(prefix=f"rf-{kind}-", suffix=".log", delete=False)

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limit)
        for _ in range(200):
            try:
                if self.cmd(b"PING") == b"+PONG\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{kind} did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        os.unlink(self.log.name)

    def log_text(self):
        return open(self.log.name, errors="replace").read()

    def cmd(self, *args, timeout=60):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.settimeout(timeout)
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

    def info(self, field, section=b"clients"):
        text = self.cmd(b"INFO", section).decode(errors="replace")
        m = re.search(rf"^{field}:(\S+)", text, re.M)
        return int(m.group(1)) if m else 0

    def numsub(self, channel):
        reply = self.cmd(b"PUBSUB", b"NUMSUB", channel)
        return int(reply.rsplit(b":", 1)[1])

    def rss(self):
        status = open(f"/proc/{self.proc.pid}/status").read()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024


def reply_end(data, pos=0):
    """Where the RESP2 reply starting at `pos` ends, or None if incomplete."""
    eol = data.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind, head = data[pos:pos + 1], data[pos + 1:eol]
    if kind in (b"+", b"-", b":"):
        return eol + 2
    n = int(head)
    if kind == b"$":
        end = eol + 2 + max(n, 0) + (2 if n >= 0 else 0)
        return end if len(data) >= end else None
    pos = eol + 2
    for _ in range(max(n, 0)):
        pos = reply_end(data, pos)
        if pos is None:
            return None
    return pos


def complete_reply(data):
    return bool(data) and reply_end(data) is not None


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        # Before connecting, so that the window offered is small too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


def wait_until(what, pred, timeout=120):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Pinger:
    """PINGs the server every `every` seconds from one connection (or a fresh
    connection each time) and keeps the slowest answer."""

    def __init__(self, port, every=0.01, fresh=False):
        self.port, self.every, self.fresh = port, every, fresh
        self.max = 0.0
        self.count = 0
        self.failures = 0
        self.stop = threading.Event()
        self.conn = None if fresh else connect(port)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                c = connect(self.port) if self.fresh else self.conn
                c.settimeout(30)
                c.sendall(b"PING\r\n")
                if c.recv(64) != b"+PONG\r\n":
                    self.failures += 1
                if self.fresh:
                    c.close()
            except OSError:
                self.failures += 1
            self.max = max(self.max, time.perf_counter() - t)
            self.count += 1
            time.sleep(self.every)

    def reset(self):
        m, self.max = self.max, 0.0
        return m

    def finish(self):
        self.stop.set()
        self.thread.join()
        if self.conn:
            self.conn.close()
        return self.max


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def mib(b):
    return f"{b / MIB:.1f} MiB"


def table(name, header, rows, notes=()):
    print(f"\n## {name}\n")
    for n in notes:
        print(f"- {n}")
    if notes:
        print()
    print("| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


def servers(a):
    return [("ringcast", "ringcast", a.ringcast), ("redis-server", "redis", a.redis)]


def server_args(a, kind, extra=()):
    return tuple(extra) + (tuple(a.ringcast_args.split()) if kind == "ringcast" else ())


def each_server(a, fn, **server_opts):
    """Runs fn(server) against each server in turn; returns [(name, result)]."""
    out = []
    extra = server_opts.pop("extra", ())
    for name, kind, binary in servers(a):
        server = Server(kind, binary, extra=server_args(a, kind, extra), **server_opts)
        try:
            out.append((name, fn(server)))
        finally:
            server.stop()
    return out


def side_by_side(name, results, notes=()):
    """results: [(server, [(label, value)])] with the same labels."""
    labels = [label for label, _ in results[0][1]]
    rows = [[label] + [dict(r)[label] for _, r in results] for label in labels]
    table(name, ["figure"] + [s for s, _ in results], rows, notes)


# ----- connections ------------------------------------------------------------

def subscribe_many(server, n, channel):
    """Opens n connections, each SUBSCRIBEs to `channel`; returns them once
    the server counts them all."""
    socks = []
    for _ in range(n):
        s = connect(server.port)
        s.sendall(command(b"SUBSCRIBE", channel))
        socks.append(s)
    wait_until("every subscriber counted", lambda: server.numsub(channel) == n)
    return socks


def read_all_once(socks, want, timeout=120):
    """Waits until every socket has received `want` bytes."""
    ep = select.epoll()
    left = {}
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        left[s.fileno()] = (s, want)
    deadline = time.time() + timeout
    while left:
        if time.time() > deadline:
            raise RuntimeError(f"{len(left)} subscribers did not receive the message")
        for fd, _ in ep.poll(1):
            s, n = left[fd]
            d = s.recv(1 << 16)
            if not d:
                raise RuntimeError("subscriber closed")
            n -= len(d)
            if n <= 0:
                ep.unregister(fd)
                del left[fd]
            else:
                left[fd] = (s, n)
    ep.close()
    for s in socks:
        s.setblocking(True)


def connections(a):
    hard = raise_open_files()
    for n in a.connections:
        if n + 200 > hard:
            print(f"\n## {n} connections\n\nnot run: the open-file hard limit is {hard} "
                  f"(`ulimit -Hn`), below {n} connections plus what the processes hold, "
                  "and cannot be raised here")
            continue

        def run(server):
            start = server.rss()
            confirm = len(command(b"subscribe", b"all")) - 4 + len(b":1\r\n")
            t0 = time.perf_counter()
            socks = subscribe_many(server, n, b"all")
            connected = time.perf_counter() - t0
            for s in socks:
                s.recv(confirm, socket.MSG_WAITALL)
            time.sleep(0.3)
            rss = server.rss()
            pub = connect(server.port)
            msg = b"*3\r\n$7\r\nmessage\r\n$3\r\nall\r\n$5\r\nhello\r\n"
            t0 = time.perf_counter()
            pub.sendall(command(b"PUBLISH", b"all", b"hello"))
            read_all_once(socks, len(msg))
            fanout = time.perf_counter() - t0
            reply = pub.recv(64)
            reset_all(socks + [pub])
            wait_until("clients gone", lambda: server.info("connected_clients") == 1)
            return [
                ("RSS at start", mib(start)),
                (f"RSS with {n} subscribers", mib(rss)),
                ("RSS per connection", f"{(rss - start) / n / 1024:.1f} KiB"),
                (f"connect and SUBSCRIBE {n} (until NUMSUB = {n})", ms(connected)),
                ("one PUBLISH until every subscriber has it", ms(fanout)),
                ("PUBLISH reply", reply.decode().strip()),
            ]

        side_by_side(f"{n} connections", each_server(a, run))


# ----- disconnect storm -----------------------------------------------------------

def storm(a):
    raise_open_files()

    def run(server):
        rows = [("RSS at start", mib(server.rss()))]
        pinger = Pinger(server.port)
        worst_close = 0.0
        worst_back = 0.0
        for cycle in range(1, a.cycles + 1):
            socks = subscribe_many(server, a.storm_conns, b"storm")
            rss_peak = server.rss()
            pinger.reset()
            t0 = time.perf_counter()
            reset_all(socks)
            wait_until("NUMSUB back to 0", lambda: server.numsub(b"storm") == 0)
            # The pinger and the connection asking.
            wait_until("clients back", lambda: server.info("connected_clients") == 2)
            back = time.perf_counter() - t0
            worst_back = max(worst_back, back)
            worst_close = max(worst_close, pinger.reset())
            time.sleep(0.3)
            rows.append((f"cycle {cycle}: subscribed / all gone", f"{mib(rss_peak)} / {mib(server.rss())}"))
        time.sleep(5)
        rows.append(("RSS 5 s after the last storm", mib(server.rss())))
        rows.append(("NUMSUB storm / connected_clients besides the pinger",
                     f"{server.numsub(b'storm')} / {server.info('connected_clients') - 2}"))
        rows.append(("slowest wait until NUMSUB 0 and clients back", ms(worst_back)))
        rows.append(("slowest PING during the closes", ms(worst_close)))
        rows.append(("slowest PING overall (every 10 ms)", ms(pinger.finish())))
        return rows

    side_by_side(f"disconnect storm: {a.storm_conns} subscribers reset at once, {a.cycles} times",
                 each_server(a, run))


# ----- slow consumers ---------------------------------------------------------------

def bench_json(a, server, args):
    import json
    cmd = [a.bench, "run", "-p", str(server.port), "--json", "-q"] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return json.loads(p.stdout), p.returncode
    except ValueError:
        raise RuntimeError(f"ringcast-bench: {p.stderr}")


def sample_rss(server, stop, out, every=0.2):
    while not stop.is_set():
        try:
            out.append(server.rss())
        except OSError:
            return
        time.sleep(every)


def client_list_subscribers(server):
    text = server.cmd(b"CLIENT", b"LIST").decode(errors="replace")
    return sum(1 for line in text.splitlines() if " sub=1 " in line)


def slow(a):
    args = ["--shape", "fanout", "--subscribers", str(a.fast), "--stalled-subscribers", str(a.stalled),
            "--rate", str(a.slow_rate), "--payload", "4096", "--duration", str(a.slow_seconds),
            "--no-server-stats"]

    def run(server):
        start = server.rss()
        samples = []
        stop = threading.Event()
        t = threading.Thread(target=sample_rss, args=(server, stop, samples))
        t.start()
        subs_seen = []

        def watch():
            while not stop.is_set():
                try:
                    subs_seen.append(client_list_subscribers(server))
                except OSError:
                    pass
                time.sleep(0.5)

        w = threading.Thread(target=watch)
        w.start()
        r, code = bench_json(a, server, args)
        stop.set()
        t.join()
        w.join()
        v = r["verify"]
        st = r.get("stalled") or {}
        return [
            ("published (4 KiB each)", r["published"]),
            ("delivered to the reading subscribers / owed", f"{r['delivered']} / {r['published'] * a.fast}"),
            ("lost / reordered / duplicate / corrupt",
             f"{v['lost']} / {v['reordered']} / {v['duplicates']} / {v['corrupt']}"),
            ("bench verdict", "OK" if code == 0 and not r["violations"] else "; ".join(r["violations"])),
            ("stalled subscribers closed by the server (bench)", f"{st.get('closed_by_server')} of {a.stalled}"),
            ("subscribers in CLIENT LIST: most", max(subs_seen, default=0)),
            ("RSS at start / peak", f"{mib(start)} / {mib(max(samples, default=0))}"),
            ("RSS after the run", mib(server.rss())),
        ]

    side_by_side(f"slow consumers: {a.stalled} never read, {a.fast} read, {a.slow_rate} msg/s of 4 KiB for {a.slow_seconds} s",
                 each_server(a, run),
                 ["`ringcast-bench " + " ".join(["run"] + args) + "`, output limits at their defaults "
                  "(pubsub 32mb 8mb 60)"])


# ----- cross-worker floods ------------------------------------------------------------

def worker_of(sock):
    sock.sendall(command(b"CLIENT", b"INFO"))
    d = b""
    while not complete_reply(d):
        d += sock.recv(4096)
    m = re.search(rb"io-thread=(\d+)", d)
    return int(m.group(1)) if m else None


def on_worker(port, w, rcvbuf=None):
    for _ in range(16):
        s = connect(port, rcvbuf)
        got = worker_of(s)
        if got is None or got == w:
            return s
        s.close()
    raise RuntimeError(f"no connection landed on worker {w}")


def crossflood(a):
    payload = b"x" * (64 * 1024)

    def run(server):
        start = server.rss()
        stop = threading.Event()
        published = [0]
        received = [0]
        readers_cut = [0]
        threads = []
        stalled = []
        readers = []
        publishers = []
        for w in range(2):
            for _ in range(a.readers):
                s = on_worker(server.port, w)
                s.sendall(command(b"SUBSCRIBE", b"to%d" % w))

                def read(s=s):
                    buf = bytearray(1 << 20)
                    while True:
                        try:
                            n = s.recv_into(buf)
                        except OSError:
                            n = 0
                        if not n:
                            # Shut down by the script at the end, or closed
                            # by the server.
                            if not stop.is_set():
                                readers_cut[0] += 1
                            return
                        received[0] += n

                readers.append(s)
                threads.append(threading.Thread(target=read))
            for _ in range(a.stalled_readers):
                s = on_worker(server.port, w, rcvbuf=4096)
                s.sendall(command(b"SUBSCRIBE", b"to%d" % w))
                stalled.append(s)
        time.sleep(0.5)
        for w in range(2):
            for _ in range(a.publishers):
                p = on_worker(server.port, w)
                req = command(b"PUBLISH", b"to%d" % (1 - w), payload) * 16

                def flood(p=p):
                    # Blocking, with no timeout (a write cut short would
                    # garble the stream): shut down by the script at the end.
                    while not stop.is_set():
                        try:
                            p.sendall(req)
                            published[0] += 16
                            p.recv(1 << 16)
                        except OSError:
                            return

                publishers.append(p)
                threads.append(threading.Thread(target=flood))
        samples = []
        threads.append(threading.Thread(target=sample_rss, args=(server, stop, samples)))
        pinger = Pinger(server.port, every=0.1, fresh=True)
        for t in threads:
            t.start()
        time.sleep(a.flood_seconds)
        slowest = pinger.finish()
        subscribers_left = client_list_subscribers(server)
        stop.set()
        for c in readers + publishers:
            c.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join()
        cut = 0
        for s in stalled:
            s.settimeout(2)
            try:
                while s.recv(1 << 20):
                    pass
                cut += 1
            except socket.timeout:
                pass
            except OSError:
                cut += 1
        return [
            ("PUBLISH written (64 KiB each)", published[0]),
            ("received by the reading subscribers", mib(received[0])),
            ("slowest PING on a fresh connection (every 100 ms)", ms(slowest)),
            ("PINGs answered / failed", f"{pinger.count - pinger.failures} / {pinger.failures}"),
            ("stalled subscribers closed by the server", f"{cut} of {len(stalled)}"),
            ("reading subscribers closed by the server", f"{readers_cut[0]} of {2 * a.readers}"),
            ("subscribers in CLIENT LIST at the end of the flood", subscribers_left),
            ("RSS at start / peak", f"{mib(start)} / {mib(max(samples, default=0))}"),
        ]

    side_by_side(f"cross-worker floods: {a.publishers} publishers on each worker, {a.flood_seconds} s",
                 each_server(a, run),
                 [f"each worker: {a.readers} reading subscribers and {a.stalled_readers} that never read "
                  "(4 KiB receive buffer) on its channel; the publishers of each worker pipeline "
                  "16 PUBLISHes of 64 KiB at a time to the other worker's channel; "
                  "redis-server has one event loop, the same connections all land on it"])


# ----- SIGTERM under load -----------------------------------------------------------------

def sigterm(a):
    payload = b"x" * 1024

    def run(server):
        subs = []
        for _ in range(a.sigterm_subs):
            s = connect(server.port)
            s.sendall(command(b"SUBSCRIBE", b"load"))
            subs.append(s)
        wait_until("subscribers counted", lambda: server.numsub(b"load") == a.sigterm_subs)
        endings = {}
        lock = threading.Lock()

        def read(s):
            s.settimeout(30)
            tail = b""
            try:
                while True:
                    d = s.recv(1 << 20)
                    if not d:
                        # A clean close ends after a whole frame.
                        how = "FIN after a whole frame" if tail.endswith(b"x\r\n") or tail.endswith(b":1\r\n") else "FIN mid-frame"
                        break
                    tail = (tail + d)[-16:]
            except ConnectionResetError:
                how = "reset"
            except socket.timeout:
                how = "no close within 30 s"
            with lock:
                endings[how] = endings.get(how, 0) + 1

        readers = [threading.Thread(target=read, args=(s,)) for s in subs]
        flooding = threading.Event()
        pubs = []
        for _ in range(a.sigterm_pubs):
            p = connect(server.port)
            req = command(b"PUBLISH", b"load", payload) * 32

            def flood(p=p):
                while True:
                    try:
                        p.sendall(req)
                        flooding.set()
                        if not p.recv(1 << 16):
                            return
                    except OSError:
                        return

            pubs.append(threading.Thread(target=flood))
        for t in readers + pubs:
            t.start()
        flooding.wait()
        time.sleep(a.sigterm_after)
        t0 = time.perf_counter()
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(timeout=30)
            took = ms(time.perf_counter() - t0)
        except subprocess.TimeoutExpired:
            code, took = "still running after 30 s", "-"
        for t in readers + pubs:
            t.join()
        return [
            ("exit code", code),
            ("SIGTERM until exit", took),
            ("subscriber connections ended", ", ".join(f"{v} {k}" for k, v in sorted(endings.items()))),
        ]

    side_by_side(f"SIGTERM under load: {a.sigterm_pubs} publishers flooding {a.sigterm_subs} subscribers",
                 each_server(a, run),
                 [f"1 KiB payloads, pipelined 32 at a time; SIGTERM {a.sigterm_after} s into the flood"])


# ----- a million channels ----------------------------------------------------------------

def channels(a):
    conns_n = 100
    per = a.million // conns_n

    def names(c, lo, hi):
        return [b"ch:%d:%d" % (c, i) for i in range(lo, hi)]

    def run(server):
        rows = [("RSS at start", mib(server.rss()))]
        socks = [connect(server.port) for _ in range(conns_n)]
        t0 = time.perf_counter()
        for c, s in enumerate(socks):
            for lo in range(0, per, 1000):
                s.sendall(command(b"SUBSCRIBE", *names(c, lo, min(lo + 1000, per))))
        for s in socks:
            count_replies(s, b"\r\nsubscribe\r\n", per)
        rows.append((f"SUBSCRIBE {a.million} channels over {conns_n} connections", ms(time.perf_counter() - t0)))
        rows.append(("pubsub_channels (INFO stats)", server.info("pubsub_channels", b"stats")))
        rows.append(("RSS subscribed", mib(server.rss())))
        t0 = time.perf_counter()
        half = conns_n // 2
        for c, s in enumerate(socks[:half]):
            for lo in range(0, per, 1000):
                s.sendall(command(b"UNSUBSCRIBE", *names(c, lo, min(lo + 1000, per))))
        for s in socks[:half]:
            count_replies(s, b"\r\nunsubscribe\r\n", per)
        reset_all(socks[half:])
        wait_until("channels gone", lambda: server.info("pubsub_channels", b"stats") == 0, timeout=600)
        rows.append(("half unsubscribe by name, half close, until no channel is left",
                     ms(time.perf_counter() - t0)))
        rows.append(("RSS then", mib(server.rss())))
        for s in socks[:half]:
            s.close()
        wait_until("clients gone", lambda: server.info("connected_clients") == 1)
        time.sleep(1)
        rows.append(("RSS all closed +1 s", mib(server.rss())))
        time.sleep(4)
        rows.append(("RSS all closed +5 s", mib(server.rss())))
        rows.append(("PUBSUB CHANNELS / NUMPAT", f"{server.cmd(b'PUBSUB', b'CHANNELS').decode().strip()} / "
                     f"{server.cmd(b'PUBSUB', b'NUMPAT').decode().strip()}"))
        return rows

    side_by_side(f"{a.million} channels subscribed and dropped", each_server(a, run),
                 ["1,000 channels per SUBSCRIBE and UNSUBSCRIBE, pipelined"])


# ----- soak ----------------------------------------------------------------------------

def soak(a):
    args = ["--shape", "fanout", "--subscribers", str(a.soak_subscribers), "--rate", str(a.soak_rate),
            "--duration", f"{a.minutes * 60:g}", "--no-server-stats"]
    started = []
    try:
        for name, kind, binary in servers(a):
            started.append((name, Server(kind, binary, extra=server_args(a, kind))))
        samples = {name: [s.rss()] for name, s in started}
        benches = [subprocess.Popen([a.bench, "run", "-p", str(s.port), "-q"] + args,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for _, s in started]
        t0 = time.time()
        tick = 1
        while any(b.poll() is None for b in benches):
            time.sleep(max(0.0, t0 + tick * 10 - time.time()))
            if time.time() - t0 > a.minutes * 60 + 1:
                break
            for name, s in started:
                samples[name].append(s.rss())
            tick += 1
        verdicts = []
        for (name, _), b in zip(started, benches):
            out = b.communicate()[0]
            v = [" ".join(line.split()) for line in out.splitlines() if "verified" in line]
            verdicts.append(f"{name}: {v[0] if v else 'exit %d' % b.returncode}")
        for name, s in started:
            wait_until("bench gone", lambda: s.info("connected_clients") == 1)
            time.sleep(1)
            samples[name].append(s.rss())
    finally:
        for _, s in started:
            s.stop()
    rows = []
    n = max(len(v) for v in samples.values())
    for i in range(n):
        label = "start" if i == 0 else ("bench closed +1 s" if i == n - 1 else f"{i * 10} s")
        rows.append([label] + [mib(samples[name][i]) if i < len(samples[name]) else "" for name, _ in started])
    for name, _ in started:
        during = samples[name][1:-1]
        if during:
            half = during[len(during) // 2:]
            verdicts.append(f"{name}: RSS during the soak {mib(min(during))} to {mib(max(during))}, "
                            f"second half {mib(min(half))} to {mib(max(half))}")
    table(f"soak: {a.minutes} min at {a.soak_rate} msg/s to {a.soak_subscribers} subscribers, both servers at once",
          ["moment"] + [name for name, _ in started], rows,
          ["`ringcast-bench " + " ".join(["run"] + args) + "` against each server, the two at the same time"]
          + verdicts)


# ----- fd exhaustion ------------------------------------------------------------------------

def fds(a):
    hard = raise_open_files()

    def run(server):
        maxclients = int(server.cmd(b"CONFIG", b"GET", b"maxclients").split(b"\r\n")[-2])
        served, refused, other, hung = 0, 0, 0, 0
        keep = []
        t0 = time.perf_counter()
        for _ in range(maxclients + a.fd_extra):
            s = connect(server.port)
            s.settimeout(5)
            try:
                s.sendall(b"PING\r\n")
                d = s.recv(128)
            except socket.timeout:
                hung += 1
                keep.append(s)
                continue
            except OSError:
                d = b""
            if d == b"+PONG\r\n":
                served += 1
                keep.append(s)
            elif d == b"-ERR max number of clients reached\r\n":
                refused += 1
                s.close()
            else:
                other += 1
                s.close()
        took = time.perf_counter() - t0
        ping = server.cmd(b"PING", timeout=5) if served < maxclients else b"(all slots taken)"
        for s in keep:
            s.close()
        wait_until("clients gone", lambda: server.info("connected_clients") == 1)
        log = server.log_text().splitlines()
        clamp = [l for l in log if "maxclients" in l]
        return [
            ("maxclients after startup (CONFIG GET)", maxclients),
            ("startup log about it", "<br>".join(re.sub(r"^.*?(You|Server|Current|maxclients)", r"\1", l).strip()
                                                  for l in clamp) or "-"),
            ("clients served / refused / other / no answer in 5 s",
             f"{served} / {refused} / {other} / {hung} (of {maxclients + a.fd_extra})"),
            ("time to try them all", ms(took)),
            ("PING once they are closed", server.cmd(b"PING", timeout=5).decode().strip()),
            ("log lines in all", len(log)),
        ]

    side_by_side(f"fd exhaustion: ulimit -n {a.nofile}, maxclients 10000",
                 each_server(a, run, extra=("--maxclients", "10000"), nofile=a.nofile),
                 [f"open-file hard limit of the shell: {hard}; the server is started with soft and hard "
                  f"limit {a.nofile}; {a.fd_extra} clients more than it settles on connect one by one, "
                  "each sends PING"])


# ----- many patterns or channels in one command -----------------------------------------------

def patterns(a):
    def timed(server, pinger, s, req, word, n):
        pinger.reset()
        t0 = time.perf_counter()
        s.sendall(req)
        count_replies(s, word, n)
        took = time.perf_counter() - t0
        return f"{ms(took)} (PING {ms(pinger.reset())})"

    def run(server):
        pinger = Pinger(server.port, every=0.005)
        s = connect(server.port)
        pats = [b"news.%d.*" % i for i in range(a.patterns)]
        chans = [b"chan:%d" % i for i in range(a.channels)]
        rows = [
            (f"PSUBSCRIBE {a.patterns} patterns", timed(server, pinger, s, command(b"PSUBSCRIBE", *pats), b"\r\npsubscribe\r\n", a.patterns)),
            ("PUNSUBSCRIBE of them all by name", timed(server, pinger, s, command(b"PUNSUBSCRIBE", *pats), b"\r\npunsubscribe\r\n", a.patterns)),
            ("PSUBSCRIBE again", timed(server, pinger, s, command(b"PSUBSCRIBE", *pats), b"\r\npsubscribe\r\n", a.patterns)),
            ("PUNSUBSCRIBE without arguments", timed(server, pinger, s, command(b"PUNSUBSCRIBE"), b"\r\npunsubscribe\r\n", a.patterns)),
            (f"SUBSCRIBE {a.channels} channels", timed(server, pinger, s, command(b"SUBSCRIBE", *chans), b"\r\nsubscribe\r\n", a.channels)),
            ("UNSUBSCRIBE of them all by name", timed(server, pinger, s, command(b"UNSUBSCRIBE", *chans), b"\r\nunsubscribe\r\n", a.channels)),
            ("SUBSCRIBE again", timed(server, pinger, s, command(b"SUBSCRIBE", *chans), b"\r\nsubscribe\r\n", a.channels)),
            ("UNSUBSCRIBE without arguments", timed(server, pinger, s, command(b"UNSUBSCRIBE"), b"\r\nunsubscribe\r\n", a.channels)),
        ]
        pinger.finish()
        rows.append(("PUBSUB NUMPAT / CHANNELS after", f"{server.cmd(b'PUBSUB', b'NUMPAT').decode().strip()} / "
                     f"{server.cmd(b'PUBSUB', b'CHANNELS').decode().strip()}"))
        s.close()
        return rows

    side_by_side("many patterns or channels in one command", each_server(a, run),
                 ["wall time from sending the command until its last confirmation arrived; "
                  "in brackets the slowest PING of another connection (one every 5 ms) meanwhile"])


SCENARIOS = {
    "connections": connections, "storm": storm, "slow": slow, "crossflood": crossflood,
    "sigterm": sigterm, "channels": channels, "soak": soak, "fds": fds, "patterns": patterns,
}


def machine():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"nproc {os.cpu_count()}, kernel {os.uname().release}, CPU {cpu}, "
            f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=list(SCENARIOS) + ["all"])
    p.add_argument("--ringcast", default="target/release/ringcast")
    p.add_argument("--redis", default="redis-server")
    p.add_argument("--bench", default="target/release/ringcast-bench")
    p.add_argument("--ringcast-args", default="", help="more ringcast flags, e.g. \"--ring-bytes 8mb\"")
    p.add_argument("--connections", type=lambda v: [int(x) for x in v.split(",")], default=[10000, 30000])
    p.add_argument("--storm-conns", type=int, default=10000)
    p.add_argument("--cycles", type=int, default=5)
    p.add_argument("--fast", type=int, default=80)
    p.add_argument("--stalled", type=int, default=20)
    p.add_argument("--slow-rate", type=int, default=1000)
    p.add_argument("--slow-seconds", type=int, default=20)
    p.add_argument("--publishers", type=int, default=2)
    p.add_argument("--readers", type=int, default=2)
    p.add_argument("--stalled-readers", type=int, default=2)
    p.add_argument("--flood-seconds", type=int, default=20)
    p.add_argument("--sigterm-subs", type=int, default=50)
    p.add_argument("--sigterm-pubs", type=int, default=4)
    p.add_argument("--sigterm-after", type=float, default=3)
    p.add_argument("--million", type=int, default=1_000_000)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--soak-subscribers", type=int, default=20)
    p.add_argument("--soak-rate", type=int, default=5000)
    p.add_argument("--nofile", type=int, default=256)
    p.add_argument("--fd-extra", type=int, default=400)
    p.add_argument("--patterns", type=int, default=20000)
    p.add_argument("--channels", type=int, default=80000)
    a = p.parse_args()
    print(f"machine: {machine()}")
    for name in (SCENARIOS if a.scenario == "all" else [a.scenario]):
        SCENARIOS[name](a)
    print(f"\nmachine at the end: {machine()}")


if __name__ == "__main__":
    main()
