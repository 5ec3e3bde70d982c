"""Show which commands redis-py, redis-cli and the Node.js clients (ioredis,
node-redis; compat/node, after `npm ci` there) send, connection by connection.

A logging TCP proxy sits between the clients and the server under test (see
harness.py: ringcast, or redis-server with COMPAT_TARGET=redis) and prints the
commands each client scenario sent. MONITOR cannot be used for this: it omits
commands the server rejected (e.g. CLIENT SETINFO on Redis 7.0) and redacts
AUTH/HELLO. Run: compat/.venv/bin/python compat/capture_handshake.py
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import redis.asyncio

import harness

PASSWORD = "capture-pw"
NODE_DIR = Path(__file__).resolve().parent / "node"


def parse_requests(buf: bytearray) -> list[list[bytes]]:
    """Pop every complete request (multibulk or inline) off the front of buf."""
    out = []
    while buf:
        if buf[:1] == b"*":
            end = buf.find(b"\r\n")
            if end < 0:
                break
            count, pos, args = int(buf[1:end]), end + 2, []
            for _ in range(max(count, 0)):
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    return out
                size = int(buf[pos + 1 : end])
                if len(buf) < end + 2 + size + 2:
                    return out
                args.append(bytes(buf[end + 2 : end + 2 + size]))
                pos = end + 2 + size + 2
            del buf[:pos]
            out.append(args)
        else:
            end = buf.find(b"\n")
            if end < 0:
                break
            line = bytes(buf[:end]).rstrip(b"\r")
            del buf[: end + 1]
            if line:
                out.append(line.split())
    return out


class Proxy:
    """Forwards 127.0.0.1:port to the upstream port, logging client requests."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.log: list[tuple[int, list[bytes]]] = []
        self.conns = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            with self.lock:
                self.conns += 1
                conn_id = self.conns
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, conn_id), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(self, src, dst, conn_id):
        buf = bytearray()
        try:
            while data := src.recv(65536):
                if conn_id is not None:
                    buf += data
                    with self.lock:
                        self.log.extend((conn_id, req) for req in parse_requests(buf))
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        time.sleep(0.3)
        with self.lock:
            log, self.log = self.log, []
        return log


def show(arg: bytes) -> str:
    text = arg.decode("utf-8", "backslashreplace")
    return text if text and " " not in text else repr(text)


def cli(port, *args):
    subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, timeout=10)


def node_scenarios(plain: Proxy, auth: Proxy) -> list:
    """The scenarios of compat/node/handshake.mjs, if Node.js and its packages are there."""
    if shutil.which("node") is None or not (NODE_DIR / "node_modules").is_dir():
        print("# Node.js clients skipped: no node, or no compat/node/node_modules (run npm ci there)")
        return []
    versions = {
        name: json.loads((NODE_DIR / "node_modules" / pkg / "package.json").read_text())["version"]
        for name, pkg in (("ioredis", "ioredis"), ("node-redis", "@redis/client"))
    }
    names = subprocess.run(
        ["node", "handshake.mjs", "--list"], cwd=NODE_DIR, capture_output=True, text=True, timeout=20, check=True
    ).stdout.split()

    def run(name: str, proxy: Proxy):
        args = ["node", "handshake.mjs", str(proxy.port), name]
        if proxy is auth:
            args.append(PASSWORD)
        done = subprocess.run(args, cwd=NODE_DIR, capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            print(f"  (scenario failed: {done.stderr.strip()[-300:]})")

    out = []
    for name in names:
        client = "node-redis" if name.startswith("node-redis") else "ioredis"
        proxy = auth if "password" in name else plain
        out.append((f"{client} {versions[client]}: {name}", proxy, lambda n=name, x=proxy: run(n, x)))
    return out


def main():
    server = harness.Server().start()
    auth_server = harness.Server(requirepass=PASSWORD).start()
    try:
        plain, auth = Proxy(server.port), Proxy(auth_server.port)
        p, a = plain.port, auth.port

        def sync_pubsub(**kw):
            r = redis.Redis(port=kw.pop("port", p), socket_timeout=5, **kw)
            r.publish("ch", "x")
            ps = r.pubsub()
            ps.subscribe("ch")
            ps.get_message(timeout=1)
            ps.close()
            r.close()

        async def async_pubsub(**kw):
            r = redis.asyncio.Redis(port=p, socket_timeout=5, **kw)
            await r.publish("ch", "x")
            ps = r.pubsub()
            await ps.subscribe("ch")
            await ps.get_message(timeout=1)
            await ps.aclose()
            await r.aclose()

        def health_check():
            r = redis.Redis(port=p, socket_timeout=5, protocol=2, health_check_interval=1)
            ps = r.pubsub()
            ps.subscribe("ch")
            time.sleep(1.1)
            ps.get_message(timeout=0.5)
            ps.close()
            r.close()

        scenarios = [
            (f"redis-py {redis.__version__} sync, default protocol", plain, lambda: sync_pubsub()),
            ("redis-py sync protocol=2", plain, lambda: sync_pubsub(protocol=2)),
            ("redis-py sync protocol=3", plain, lambda: sync_pubsub(protocol=3)),
            ("redis-py sync client_name=app db=1", plain, lambda: sync_pubsub(protocol=2, client_name="app", db=1)),
            ("redis-py sync password, protocol=2", auth, lambda: sync_pubsub(port=a, protocol=2, password=PASSWORD)),
            ("redis-py sync password, protocol=3", auth, lambda: sync_pubsub(port=a, protocol=3, password=PASSWORD)),
            ("redis-py asyncio, default protocol", plain, lambda: asyncio.run(async_pubsub())),
            ("redis-py asyncio protocol=2", plain, lambda: asyncio.run(async_pubsub(protocol=2))),
            ("redis-py health_check_interval=1 while subscribed", plain, health_check),
            ("redis-cli PING", plain, lambda: cli(p, "ping")),
            ("redis-cli -3 PING", plain, lambda: cli(p, "-3", "ping")),
            ("redis-cli -a PW PING", auth, lambda: cli(a, "-a", PASSWORD, "--no-auth-warning", "ping")),
            ("redis-cli -3 -a PW PING", auth, lambda: cli(a, "-3", "-a", PASSWORD, "--no-auth-warning", "ping")),
            ("redis-cli INFO", plain, lambda: cli(p, "info")),
            ("redis-cli with commands on stdin (repl without tty)", plain,
             lambda: subprocess.run(["redis-cli", "-p", str(p)], input=b"ping\n", capture_output=True, timeout=10)),
            ("redis-cli SUBSCRIBE (killed after 1s)", plain,
             lambda: subprocess.run(["timeout", "1", "redis-cli", "-p", str(p), "subscribe", "ch"], capture_output=True)),
        ]
        scenarios += node_scenarios(plain, auth)
        for title, proxy, run in scenarios:
            proxy.take()
            run()
            print(f"## {title}")
            for conn_id, req in proxy.take():
                print(f"  conn {conn_id}: " + " ".join(show(x) for x in req))
    finally:
        server.cleanup()
        auth_server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
