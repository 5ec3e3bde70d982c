#!/usr/bin/env python3
"""CPU an idle server spends holding idle subscribers.

Opens N connections to a running server, each SUBSCRIBEs to its own
channel, waits for every confirmation, lets the server settle, then
reads the server's user+system CPU from /proc over a quiet interval.

    contrib/idle-cpu.py --port 6379 --pid $(pidof ringcast) --clients 10000

Raise the open-file limit first (`ulimit -n 20000`), for the server too.
"""

import argparse
import os
import resource
import socket
import time


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--pid", type=int, required=True, help="server process id")
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=30)
    a = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for i in range(a.clients):
        s = socket.create_connection((a.host, a.port))
        s.sendall(b"SUBSCRIBE idle.%d\r\n" % i)
        socks.append(s)
    for s in socks:
        s.settimeout(30)
        if not s.recv(128).startswith(b"*3\r\n"):
            raise SystemExit("unexpected SUBSCRIBE reply")
    time.sleep(3)
    c0, t0 = cpu_ticks(a.pid), time.monotonic()
    time.sleep(a.seconds)
    c1, t1 = cpu_ticks(a.pid), time.monotonic()
    share = (c1 - c0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)
    print(f"server CPU with {a.clients} idle subscribers: {100 * share:.2f}% of a core "
          f"over {t1 - t0:.0f} s")


if __name__ == "__main__":
    main()
