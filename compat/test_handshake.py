"""Connect-time commands of real clients, replayed on a raw socket.

Each scenario is exactly what one client sends when it connects (captured with
capture_handshake.py: redis-py 8.1, redis-cli 7, ioredis 6.0, node-redis 6.3),
sent in one write as the Node.js clients pipeline it, and the reply bytes are
compared with what Redis 7.2 sends. The only parts normalised are the ones that
differ between any two servers: the connection id and the version in HELLO's
reply, and its `server` field, which has a test of its own.

Run against the local redis-server 7.0 (COMPAT_TARGET=redis) the same tests
check themselves; where 7.0 answers differently from 7.2 (CLIENT SETINFO is new
in 7.2, HELLO's NOAUTH text changed) the 7.0 bytes are used for that server and
the comment at each such place says so.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

import harness
from harness import WAIT, encode, reply_end

PY_VER = "8.1.0"  # as redis-py, ioredis and node-redis send them; any value would do
IOREDIS_VER = "6.0.0"
NODE_REDIS_VER = "6.3.1"


# --- A raw connection and a RESP reader that returns each reply's exact bytes.


class Raw:
    """One TCP connection to the server; send() pipelines, replies(n) reads n whole replies."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = b""

    def send(self, *commands: list[str]) -> "Raw":
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        return self

    def replies(self, n: int) -> list[bytes]:
        out: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while len(out) < n:
            end = reply_end(self.buf, 0) if self.buf else None
            if end is not None:
                out.append(self.buf[:end])
                self.buf = self.buf[end:]
                continue
            assert time.monotonic() < deadline, f"got {out!r} + {self.buf!r}, wanted {n} replies"
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {out!r} + {self.buf!r}"
            self.buf += chunk
        return out

    def exchange(self, *commands: list[str]) -> list[bytes]:
        return self.send(*commands).replies(len(commands))

    def close(self):
        self.sock.close()


@pytest.fixture
def raw():
    made: list[Raw] = []

    def make(srv) -> Raw:
        conn = Raw(srv.port)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


# --- Expected replies (Redis 7.2).

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
MAINT = b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"


def _bulk(s: str) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(s), s.encode())


def hello(proto: int) -> bytes:
    """HELLO's reply as Redis 7.2 sends it, id and version normalised (see normalise)."""
    fields = [
        _bulk("server") + _bulk("redis"),
        _bulk("version") + b"<version>",
        _bulk("proto") + b":%d\r\n" % proto,
        _bulk("id") + b"<id>",
        _bulk("mode") + _bulk("standalone"),
        _bulk("role") + _bulk("master"),
        _bulk("modules") + b"*0\r\n",
    ]
    head = b"%7\r\n" if proto == 3 else b"*14\r\n"
    return head + b"".join(fields)


_HELLO_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")
_HELLO_VERSION = re.compile(rb"(\$7\r\nversion\r\n)\$\d+\r\n[0-9.]+\r\n")
_HELLO_SERVER = re.compile(rb"(\$6\r\nserver\r\n)\$\d+\r\n[^\r]*\r\n")


def normalise(reply: bytes, server_field: bool = True) -> bytes:
    """HELLO's connection id and version replaced by placeholders; with server_field,
    its server name too (test_hello_names_the_server_redis checks that one)."""
    if not reply.startswith((b"%7\r\n$6\r\nserver", b"*14\r\n$6\r\nserver")):
        return reply
    reply = _HELLO_ID.sub(rb"\1<id>", reply)
    reply = _HELLO_VERSION.sub(rb"\1<version>", reply)
    if server_field:
        reply = _HELLO_SERVER.sub(rb"\1" + _bulk("redis"), reply)
    return reply


_version_cache: dict[int, tuple[int, int]] = {}


def server_version(srv) -> tuple[int, int]:
    """(major, minor) from the server's INFO, asked once per port."""
    if srv.port not in _version_cache:
        conn = Raw(srv.port)
        try:
            if srv.requirepass is not None:
                conn.exchange(["AUTH", srv.requirepass])
            (info,) = conn.exchange(["INFO", "server"])
        finally:
            conn.close()
        m = re.search(rb"redis_version:(\d+)\.(\d+)", info)
        assert m, info[:200]
        _version_cache[srv.port] = (int(m.group(1)), int(m.group(2)))
    return _version_cache[srv.port]


def setinfo_ok(srv) -> bytes:
    """CLIENT SETINFO's reply: +OK on 7.2; on the 7.0 reference server (no SETINFO yet)
    its unknown-subcommand error, so the rest of each scenario is still checked there."""
    if server_version(srv) < (7, 2):
        return b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"
    return OK


def check(conn: Raw, srv, steps: list[tuple[list[str], bytes]]) -> None:
    """Send every command of steps in one write, then compare each reply with its expectation."""
    got = [normalise(r) for r in conn.exchange(*[cmd for cmd, _ in steps])]
    want = [expected for _, expected in steps]
    for (cmd, _), g, w in zip(steps, got, want):
        assert g == w, f"{' '.join(cmd)}: got {g!r}, Redis 7.2 sends {w!r}"


# --- What each client sends at connect.


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_redis_py_connect(server, raw, proto):
    si = setinfo_ok(server)
    steps = [
        (["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], si),
        (["CLIENT", "SETINFO", "LIB-VER", PY_VER], si),
        (["PUBLISH", "compat:hs:py", "x"], b":0\r\n"),
    ]
    if proto == 3:
        steps[:0] = [
            (["HELLO", "3"], hello(3)),
            (["CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "internal-fqdn"], MAINT),
        ]
    check(raw(server), server, steps)


def test_redis_py_connect_with_name_and_db(server, raw):
    si = setinfo_ok(server)
    conn = raw(server)
    check(
        conn,
        server,
        [
            (["CLIENT", "SETNAME", "app"], OK),
            (["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], si),
            (["CLIENT", "SETINFO", "LIB-VER", PY_VER], si),
            (["SELECT", "1"], OK),
            (["CLIENT", "GETNAME"], _bulk("app")),
        ],
    )


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_redis_py_connect_with_password(server_auth, raw, proto):
    srv, si = server_auth, setinfo_ok(server_auth)
    pw = srv.requirepass
    if proto == 2:
        first = [(["AUTH", pw], OK)]
    else:
        first = [
            (["HELLO", "3", "AUTH", "default", pw], hello(3)),
            (["CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "internal-fqdn"], MAINT),
        ]
    check(
        raw(srv),
        srv,
        first
        + [
            (["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], si),
            (["CLIENT", "SETINFO", "LIB-VER", PY_VER], si),
            (["PING"], PONG),
        ],
    )


def test_redis_py_health_check_while_subscribed(server, raw):
    """health_check_interval: a PING before the first command, then `PING redis-py-health-check`
    while subscribed, whose RESP2 reply is the subscribed-mode pong array."""
    si = setinfo_ok(server)
    check(
        raw(server),
        server,
        [
            (["PING"], PONG),
            (["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], si),
            (["CLIENT", "SETINFO", "LIB-VER", PY_VER], si),
            (["SUBSCRIBE", "compat:hs:hc"], b"*3\r\n$9\r\nsubscribe\r\n$12\r\ncompat:hs:hc\r\n:1\r\n"),
            (["PING", "redis-py-health-check"], b"*2\r\n$4\r\npong\r\n$21\r\nredis-py-health-check\r\n"),
            (["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        ],
    )


def test_redis_cli_connect(server, raw):
    check(raw(server), server, [(["ping"], PONG)])
    check(raw(server), server, [(["HELLO", "3"], hello(3)), (["ping"], PONG)])


def test_redis_cli_connect_with_password(server_auth, raw):
    pw = server_auth.requirepass
    check(raw(server_auth), server_auth, [(["AUTH", pw], OK), (["ping"], PONG)])
    # -3 -a: AUTH first, then HELLO 3 without credentials.
    check(raw(server_auth), server_auth, [(["AUTH", pw], OK), (["HELLO", "3"], hello(3)), (["ping"], PONG)])


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_ioredis_connect(server, raw, proto):
    si = setinfo_ok(server)
    conn = raw(server)
    steps = [
        (["client", "SETINFO", "LIB-VER", IOREDIS_VER], si),
        (["client", "SETINFO", "LIB-NAME", "ioredis"], si),
    ]
    if proto == 3:
        steps.insert(0, (["hello", "3"], hello(3)))
    check(conn, server, steps)
    # The ready check: INFO, read for `loading:`; any INFO text will do, in RESP3 as verbatim text.
    (info,) = conn.exchange(["info"])
    head = b"=" if proto == 3 else b"$"
    assert info[:1] == head and b"# Server\r\nredis_version:" in info, info[:80]
    if proto == 3:
        assert info.split(b"\r\n", 1)[1].startswith(b"txt:# Server\r\n"), info[:80]


def test_ioredis_connect_with_name_and_db(server, raw):
    si = setinfo_ok(server)
    check(
        raw(server),
        server,
        [
            (["hello", "3"], hello(3)),
            (["select", "1"], OK),
            (["client", "setname", "app"], OK),
            (["client", "SETINFO", "LIB-VER", IOREDIS_VER], si),
            (["client", "SETINFO", "LIB-NAME", "ioredis"], si),
            (["client", "getname"], _bulk("app")),
        ],
    )


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_ioredis_connect_with_password(server_auth, raw, proto):
    srv, si = server_auth, setinfo_ok(server_auth)
    pw = srv.requirepass
    first = (["auth", pw], OK) if proto == 2 else (["hello", "3", "AUTH", "default", pw], hello(3))
    check(
        raw(srv),
        srv,
        [
            first,
            (["client", "SETINFO", "LIB-VER", IOREDIS_VER], si),
            (["client", "SETINFO", "LIB-NAME", "ioredis"], si),
            (["ping"], PONG),
        ],
    )


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_node_redis_connect(server, raw, proto):
    si = setinfo_ok(server)
    steps = [
        (["CLIENT", "SETINFO", "LIB-VER", NODE_REDIS_VER], si),
        (["CLIENT", "SETINFO", "LIB-NAME", "node-redis"], si),
        (["PUBLISH", "compat:hs:nr", "x"], b":0\r\n"),
    ]
    if proto == 3:
        steps.insert(0, (["HELLO", "3"], hello(3)))
        steps.insert(3, (["CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "external-ip"], MAINT))
    check(raw(server), server, steps)


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_node_redis_connect_with_name_and_db(server, raw, proto):
    si = setinfo_ok(server)
    if proto == 3:
        first = [(["HELLO", "3", "SETNAME", "app"], hello(3))]
    else:
        first = [(["CLIENT", "SETNAME", "app"], OK)]
    steps = first + [
        (["SELECT", "1"], OK),
        (["CLIENT", "SETINFO", "LIB-VER", NODE_REDIS_VER], si),
        (["CLIENT", "SETINFO", "LIB-NAME", "node-redis"], si),
    ]
    if proto == 3:
        steps.append((["CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "external-ip"], MAINT))
    steps.append((["CLIENT", "GETNAME"], _bulk("app")))
    check(raw(server), server, steps)


@pytest.mark.parametrize(
    "first",
    [["AUTH", "{pw}"], ["AUTH", "default", "{pw}"], ["HELLO", "3", "AUTH", "default", "{pw}"]],
    ids=["auth", "auth-user", "hello3-auth"],
)
def test_node_redis_connect_with_password(server_auth, raw, first):
    srv, si = server_auth, setinfo_ok(server_auth)
    first = [a.format(pw=srv.requirepass) for a in first]
    steps = [
        (first, hello(3) if first[0] == "HELLO" else OK),
        (["CLIENT", "SETINFO", "LIB-VER", NODE_REDIS_VER], si),
        (["CLIENT", "SETINFO", "LIB-NAME", "node-redis"], si),
    ]
    if first[0] == "HELLO":
        steps.append((["CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "external-ip"], MAINT))
    steps.append((["PING"], PONG))
    check(raw(srv), srv, steps)


# --- Variants a client meets when something is off at connect.


def test_wrong_credentials_leave_the_connection_unauthenticated(server_auth, raw):
    srv = server_auth
    check(
        raw(srv),
        srv,
        [
            (["AUTH", "wrong"], WRONGPASS),
            (["AUTH", "default", "wrong"], WRONGPASS),
            (["AUTH", "nosuchuser", srv.requirepass], WRONGPASS),
            (["HELLO", "3", "AUTH", "default", "wrong"], WRONGPASS),
            # The failed HELLO changed nothing: still RESP2, still unauthenticated.
            (["PING"], NOAUTH),
            (["CLIENT", "SETNAME", "app"], NOAUTH),
            (["AUTH", srv.requirepass], OK),
            (["PING"], PONG),
        ],
    )


def test_hello_without_credentials_when_a_password_is_set(server_auth, raw):
    srv = server_auth
    if server_version(srv) < (7, 2):
        # Redis 7.0 words it "the HELLO AUTH <user> <pass> option"; 7.2 added "<proto>".
        text = b"the HELLO AUTH <user> <pass> option"
    else:
        text = b"the HELLO <proto> AUTH <user> <pass> option"
    noauth_hello = (
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise "
        + text
        + b" can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
    )
    check(raw(srv), srv, [(["HELLO", "3"], noauth_hello), (["PING"], NOAUTH)])


def test_auth_without_a_configured_password(server, raw):
    check(
        raw(server),
        server,
        [
            (
                ["AUTH", "pw"],
                b"-ERR AUTH <password> called without any password configured for the default user. "
                b"Are you sure your configuration is correct?\r\n",
            ),
            # The default user has nopass: any password is accepted for it by name.
            (["AUTH", "default", "anything"], OK),
            (["HELLO", "3", "AUTH", "default", "anything"], hello(3)),
        ],
    )


def test_hello_variants(server, raw):
    check(
        raw(server),
        server,
        [
            (["HELLO", "4"], b"-NOPROTO unsupported protocol version\r\n"),
            (["HELLO", "2", "SETNAME", "app"], hello(2)),
            (["CLIENT", "GETNAME"], _bulk("app")),
            (["HELLO", "3"], hello(3)),
            (["HELLO", "2"], hello(2)),
        ],
    )


def test_select_and_setname_errors(server, raw):
    check(
        raw(server),
        server,
        [
            (["SELECT", "0"], OK),
            (["SELECT", "15"], OK),
            (["SELECT", "16"], b"-ERR DB index is out of range\r\n"),
            (["SELECT", "x"], b"-ERR value is not an integer or out of range\r\n"),
            (["CLIENT", "SETNAME", "a b"], b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"),
            (["CLIENT", "SETNAME", ""], OK),
            (["CLIENT", "GETNAME"], b"$-1\r\n"),
        ],
    )


def test_client_setinfo_errors(server, raw):
    if server_version(server) < (7, 2):
        pytest.skip("CLIENT SETINFO is new in Redis 7.2")
    check(
        raw(server),
        server,
        [
            (["CLIENT", "SETINFO", "lib-name", "a b"], b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"),
            (["CLIENT", "SETINFO", "LIB-NAME"], b"-ERR wrong number of arguments for 'client|setinfo' command\r\n"),
            (["CLIENT", "SETINFO", "foo", "bar"], b"-ERR Unrecognized option 'foo'\r\n"),
        ],
    )


# --- Identity and introspection clients read at connect time.


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_hello_names_the_server_redis(server, raw, proto):
    (reply,) = raw(server).exchange(["HELLO", str(proto)])
    assert normalise(reply, server_field=False) == hello(proto)


def _parse(buf: bytes, pos: int = 0):
    """A small RESP2/RESP3 decoder for COMMAND DOCS: returns (value, next position)."""
    end = buf.index(b"\r\n", pos)
    kind, head, nxt = buf[pos : pos + 1], buf[pos + 1 : end], end + 2
    if kind in b"+-":
        return head, nxt
    if kind == b":":
        return int(head), nxt
    if kind in b"$=":
        size = int(head)
        return (None, nxt) if size < 0 else (buf[nxt : nxt + size], nxt + size + 2)
    if kind in b"*~%":
        count = int(head) * (2 if kind == b"%" else 1)
        items = []
        for _ in range(count):
            item, nxt = _parse(buf, nxt)
            items.append(item)
        if kind == b"%":
            return dict(zip(items[::2], items[1::2])), nxt
        return items, nxt
    raise AssertionError(f"unexpected RESP type {kind!r}")


def _as_map(value):
    """RESP2 flat [k, v, k, v] or a RESP3 map, as a dict."""
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2]))


@pytest.mark.parametrize("proto", [2, 3], ids=["resp2", "resp3"])
def test_command_docs_describe_the_pubsub_commands(server, raw, proto):
    """redis-cli's interactive mode sends COMMAND DOCS at connect. Checked field by field
    rather than byte for byte: the full reply lists every command the server has."""
    conn = raw(server)
    if proto == 3:
        conn.exchange(["HELLO", "3"])
    (reply,) = conn.exchange(["COMMAND", "DOCS", "PUBLISH", "SUBSCRIBE"])
    docs = _as_map(_parse(reply)[0])
    assert set(docs) == {b"publish", b"subscribe"}
    publish, subscribe = _as_map(docs[b"publish"]), _as_map(docs[b"subscribe"])
    # 7.2 reworded the summaries and added display_text.
    v72 = server_version(server) >= (7, 2)
    assert publish[b"summary"] == (b"Posts a message to a channel." if v72 else b"Post a message to a channel")
    assert publish[b"since"] == b"2.0.0"
    assert publish[b"group"] == b"pubsub"
    assert publish[b"complexity"].startswith(b"O(N+M) where N is the number of clients subscribed")
    args = [_as_map(a) for a in publish[b"arguments"]]
    assert [(a[b"name"], a[b"type"]) for a in args] == [(b"channel", b"string"), (b"message", b"string")]
    if v72:
        assert [a[b"display_text"] for a in args] == [b"channel", b"message"]
    assert subscribe[b"summary"] == (
        b"Listens for messages published to channels." if v72 else b"Listen for messages published to the given channels"
    )
    (channel,) = [_as_map(a) for a in subscribe[b"arguments"]]
    assert channel[b"flags"] == [b"multiple"]
