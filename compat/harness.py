"""Start and stop the server under test for the compatibility suite, and
bound every wait the tests make.

The suite runs unchanged against ringcast (the default) or, with
COMPAT_TARGET=redis, against a real redis-server, which is how the suite
itself is checked. Everything here is bounded in time: a server that does not
come up, or does not go away, is an error rather than a hang.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
WAIT = 5.0  # upper bound for any single wait in the suite, in seconds


def target() -> str:
    """Which server the suite runs against: "ringcast" or "redis"."""
    value = os.environ.get("COMPAT_TARGET", "ringcast").strip().lower()
    if value not in ("ringcast", "redis"):
        raise RuntimeError(f"COMPAT_TARGET must be ringcast or redis, not {value!r}")
    return value


def ringcast_bin() -> str:
    """Path of the ringcast binary: RINGCAST_BIN, else release, else debug build."""
    explicit = os.environ.get("RINGCAST_BIN")
    if explicit:
        return explicit
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    for profile in ("release", "debug"):
        candidate = target_dir / profile / "ringcast"
        if candidate.is_file():
            return str(candidate)
    raise RuntimeError(
        "ringcast binary not found; build it with `cargo build -p ringcast-server` "
        "or set RINGCAST_BIN"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(
    port: int, threads: int | None = None, requirepass: str | None = None, extra: list[str] | None = None
) -> list[str]:
    """Command line for the server under test with the given options."""
    if target() == "redis":
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server not found (Debian package redis-server)")
        cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if threads is not None:
            # redis-server's nearest equivalent of ringcast's worker count.
            cmd += ["--io-threads", str(threads)]
    else:
        cmd = [ringcast_bin(), "--port", str(port)]
        if threads is not None:
            cmd += ["--threads", str(threads)]
    if requirepass is not None:
        cmd += ["--requirepass", requirepass]
    # Flags both servers take alike (the tls-* parameters).
    return cmd + list(extra or [])


def _answers(port: int) -> bool:
    """True once the server replies to an inline PING (any reply: NOAUTH counts)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+", b"-"))
    except OSError:
        return False


class Server:
    """One server process on a fixed 127.0.0.1 port; can be stopped and started again."""

    # Run in the child before exec (a subclass may set it, e.g. to die with the suite).
    preexec = None

    def __init__(
        self,
        threads: int | None = None,
        requirepass: str | None = None,
        port: int | None = None,
        extra: list[str] | None = None,
    ):
        self.extra = extra
        self.threads = threads
        self.requirepass = requirepass
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="compat-server-", suffix=".log")[1])

    @property
    def command(self) -> list[str]:
        return server_command(self.port, self.threads, self.requirepass, self.extra)

    def start(self) -> "Server":
        assert self.proc is None, "server already running"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=self.preexec
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"server exited with {code} at start:\n{self.log_tail()}")
            if _answers(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        return proc.returncode

    def restart(self) -> None:
        """Stop and start again on the same port (clients must reconnect)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        self.stop()
        try:
            self.log_path.unlink()
        except OSError:
            pass


# Bounded waits and client shortcuts used by the tests.


def async_client(srv, protocol, **kw) -> redis.asyncio.Redis:
    kw.setdefault("socket_timeout", WAIT)
    kw.setdefault("socket_connect_timeout", WAIT)
    return redis.asyncio.Redis(host="127.0.0.1", port=srv.port, protocol=protocol, **kw)


def wait_until(predicate, timeout: float = WAIT, interval: float = 0.02) -> bool:
    """Poll predicate until true or timeout; returns its last verdict."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def next_message(pubsub, timeout: float = WAIT):
    """The next message a sync PubSub delivers, failing the test after timeout."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = pubsub.get_message(timeout=left)
        if msg is not None:
            return msg
    pytest.fail(f"no pub/sub message within {timeout}s")


async def anext_message(pubsub, timeout: float = WAIT):
    """The next message an asyncio PubSub delivers, failing the test after timeout."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = await pubsub.get_message(timeout=left)
        if msg is not None:
            return msg
    pytest.fail(f"no pub/sub message within {timeout}s")


def brief(msg) -> tuple:
    """(type, pattern, channel, data) of a redis-py message, with str type."""
    return (msg["type"], msg["pattern"], msg["channel"], msg["data"])


# --- RESP on a raw socket, for replies that must match byte for byte.


def encode(*args: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def reply_end(buf: bytes, pos: int) -> int | None:
    """Index just past the complete RESP2/RESP3 reply starting at pos, or None if incomplete."""
    line_end = buf.find(b"\r\n", pos)
    if line_end < 0:
        return None
    kind, head, nxt = buf[pos : pos + 1], buf[pos + 1 : line_end], line_end + 2
    if kind in b"+-:_,#(":
        return nxt
    if kind in b"$=!":
        size = int(head)
        if size < 0:
            return nxt
        return nxt + size + 2 if len(buf) >= nxt + size + 2 else None
    if kind in b"*~>%|":
        count = int(head)
        if kind in b"%|":
            count *= 2
        for _ in range(max(count, 0)):
            nxt = reply_end(buf, nxt)
            if nxt is None:
                return None
        return nxt
    raise AssertionError(f"not RESP at {pos}: {buf[pos:pos + 40]!r}")
