"""redis-cli (Debian redis-tools) against the server under test.

redis-cli prints replies raw (one element per line) when its stdout is not a
terminal, which is what these tests read. Long-lived `redis-cli subscribe`
processes are read line by line through a queue so every read is bounded.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading

import pytest

from harness import WAIT, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")


def cli(srv, *args, auth: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run one redis-cli command against srv and return the finished process."""
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(srv.port)]
    if auth and srv.requirepass is not None:
        cmd += ["-a", srv.requirepass, "--no-auth-warning"]
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True, text=True, timeout=WAIT)


def out(srv, *args, **kw) -> list[str]:
    proc = cli(srv, *args, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


class Subscriber:
    """A `redis-cli ... subscribe|psubscribe|ssubscribe` process whose output lines we read."""

    def __init__(self, srv, *args):
        cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(srv.port), *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def read(self, n: int) -> list[str]:
        got = []
        for _ in range(n):
            try:
                got.append(self.lines.get(timeout=WAIT))
            except queue.Empty:
                pytest.fail(f"redis-cli printed only {got!r} within {WAIT}s (wanted {n} lines)")
        return got

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def subscriber():
    made = []

    def start(srv, *args):
        sub = Subscriber(srv, *args)
        made.append(sub)
        return sub

    yield start
    for sub in made:
        sub.close()


def test_ping(server):
    assert out(server, "ping") == ["PONG"]


def test_echo_binary_safe_argument(server):
    assert out(server, "echo", "hello world") == ["hello world"]


def test_subscribe_then_publish_delivers_message(server, subscriber, uniq):
    ch = uniq + "ch"
    sub = subscriber(server, "subscribe", ch)
    assert sub.read(3) == ["subscribe", ch, "1"]
    assert out(server, "publish", ch, "hello there") == ["1"]
    assert sub.read(3) == ["message", ch, "hello there"]
    assert out(server, "publish", ch, "second") == ["1"]
    assert sub.read(3) == ["message", ch, "second"]


def test_subscribe_to_several_channels_counts_up(server, subscriber, uniq):
    a, b = uniq + "a", uniq + "b"
    sub = subscriber(server, "subscribe", a, b)
    assert sub.read(6) == ["subscribe", a, "1", "subscribe", b, "2"]
    assert out(server, "publish", b, "x") == ["1"]
    assert sub.read(3) == ["message", b, "x"]


def test_psubscribe_receives_pmessage(server, subscriber, uniq):
    pattern = uniq + "news.*"
    sub = subscriber(server, "psubscribe", pattern)
    assert sub.read(3) == ["psubscribe", pattern, "1"]
    assert out(server, "publish", uniq + "news.tech", "chips") == ["1"]
    assert sub.read(4) == ["pmessage", pattern, uniq + "news.tech", "chips"]
    assert out(server, "publish", uniq + "sport", "ball") == ["0"]


def test_ssubscribe_receives_smessage(server, subscriber, uniq):
    ch = uniq + "shard"
    sub = subscriber(server, "ssubscribe", ch)
    assert sub.read(3) == ["ssubscribe", ch, "1"]
    assert out(server, "publish", ch, "not for shard subscribers") == ["0"]
    assert out(server, "spublish", ch, "sharded") == ["1"]
    assert sub.read(3) == ["smessage", ch, "sharded"]


def test_resp3_subscribe_and_publish(server, subscriber, uniq):
    ch = uniq + "ch3"
    sub = subscriber(server, "-3", "subscribe", ch)
    assert sub.read(3) == ["subscribe", ch, "1"]
    assert out(server, "-3", "publish", ch, "pushed") == ["1"]
    assert sub.read(3) == ["message", ch, "pushed"]


def test_resp3_hello_reports_protocol_3(server):
    lines = out(server, "-3", "hello", "3")
    assert "proto 3" in lines
    assert "mode standalone" in lines
    assert "role master" in lines
    assert any(line.startswith("server ") for line in lines)
    assert any(line.startswith("version ") for line in lines)


def test_resp3_ping(server):
    assert out(server, "-3", "ping") == ["PONG"]


def test_commands_from_stdin(server):
    # Without a terminal and without a command, redis-cli reads commands from
    # stdin and first asks the server for COMMAND DOCS; both must work.
    assert out(server, stdin="ping\necho hi\n") == ["PONG", "hi"]


def test_info_has_the_fields_tools_read(server):
    text = cli(server, "info").stdout
    assert "# Server" in text
    for field in ("redis_version:", f"tcp_port:{server.port}", "connected_clients:", "pubsub_channels:",
                  "pubsub_patterns:", "cluster_enabled:0"):
        assert field in text, field


def test_info_section_limits_output(server):
    text = cli(server, "info", "server").stdout
    assert "# Server" in text
    assert "# Clients" not in text


def test_pubsub_introspection(server, subscriber, uniq):
    a, b = uniq + "a", uniq + "b"
    before_numpat = int(out(server, "pubsub", "numpat")[0])
    sub1 = subscriber(server, "subscribe", a, b)
    assert sub1.read(6)[-1] == "2"
    sub2 = subscriber(server, "subscribe", a)
    assert sub2.read(3)[-1] == "1"
    psub = subscriber(server, "psubscribe", uniq + "*")
    assert psub.read(3)[-1] == "1"

    assert sorted(out(server, "pubsub", "channels", uniq + "*")) == [a, b]
    assert out(server, "pubsub", "numsub", a, b, uniq + "none") == [a, "2", b, "1", uniq + "none", "0"]
    assert int(out(server, "pubsub", "numpat")[0]) == before_numpat + 1
    # Pattern subscribers add to PUBLISH's count but not to NUMSUB.
    assert out(server, "publish", a, "m") == ["3"]


def test_subscriber_disconnect_clears_subscription(server, subscriber, uniq):
    ch = uniq + "gone"
    sub = subscriber(server, "subscribe", ch)
    assert sub.read(3)[-1] == "1"
    sub.close()
    assert wait_until(lambda: out(server, "pubsub", "numsub", ch) == [ch, "0"])
    assert out(server, "publish", ch, "nobody") == ["0"]


def test_auth_with_password_flag(server_auth):
    assert out(server_auth, "ping") == ["PONG"]
    assert out(server_auth, "-3", "ping") == ["PONG"]


def test_no_password_gets_noauth(server_auth):
    assert cli(server_auth, "ping", auth=False).stdout.startswith("NOAUTH Authentication required.")


def test_wrong_password_is_refused(server_auth):
    proc = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(server_auth.port), "-a", "wrong", "--no-auth-warning", "ping"],
        capture_output=True, text=True, timeout=WAIT,
    )
    assert "WRONGPASS invalid username-password pair or user is disabled." in proc.stderr
    assert proc.stdout.startswith("NOAUTH")


def test_subscribe_with_password(server_auth, uniq):
    ch = uniq + "secret"
    sub = Subscriber(server_auth, "-a", server_auth.requirepass, "--no-auth-warning", "subscribe", ch)
    try:
        assert sub.read(3) == ["subscribe", ch, "1"]
        assert out(server_auth, "publish", ch, "x") == ["1"]
        assert sub.read(3) == ["message", ch, "x"]
    finally:
        sub.close()


def test_two_workers_fan_out(server_threads2, subscriber, uniq):
    # Several connections land on both workers; each must get the message once.
    ch = uniq + "fan"
    subs = [subscriber(server_threads2, "subscribe", ch) for _ in range(4)]
    for sub in subs:
        assert sub.read(3) == ["subscribe", ch, "1"]
    assert out(server_threads2, "publish", ch, "all") == ["4"]
    for sub in subs:
        assert sub.read(3) == ["message", ch, "all"]
