"""redis-py (synchronous API) against the server under test, RESP2 and RESP3.

Every test runs with protocol=2 and protocol=3; the pub/sub ones also run on
the two-worker server, where publisher and subscriber may sit on different
workers. Connecting at all exercises redis-py's handshake (HELLO 3, CLIENT
SETINFO, CLIENT MAINT_NOTIFICATIONS).
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import WAIT, brief, next_message, wait_until

# Authentication errors are ConnectionErrors to redis-py, which it would retry with backoff.
NO_RETRY = Retry(NoBackoff(), 0)


def subscribe_confirmed(pubsub, kind: str, *names) -> list[int]:
    """Subscribe with kind ('subscribe', 'psubscribe', 'ssubscribe') and return the counts confirmed."""
    getattr(pubsub, kind)(*names)
    counts = []
    for name in names:
        msg = next_message(pubsub)
        assert (msg["type"], msg["channel"]) == (kind, name.encode() if isinstance(name, str) else name)
        counts.append(msg["data"])
    return counts


def test_handshake_and_ping(server, connect, protocol):
    r = connect(server)
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    conn = r.connection_pool.get_connection()
    try:
        if protocol == 3:
            meta = conn.handshake_metadata
            assert meta[b"proto"] == 3
            assert meta[b"mode"] == b"standalone"
            assert meta[b"role"] == b"master"
    finally:
        r.connection_pool.release(conn)


def test_client_name_and_select_at_connect(server, connect):
    r = connect(server, client_name="compat-app", db=1)
    assert r.ping() is True
    assert r.client_getname() in ("compat-app", b"compat-app")  # redis-py decodes it itself


def test_publish_without_subscribers_returns_zero(server, connect, uniq):
    assert connect(server).publish(uniq + "nobody", "x") == 0
    assert connect(server).spublish(uniq + "nobody", "x") == 0


def test_subscribe_confirmations_and_message(any_server, connect, uniq):
    r = connect(any_server)
    p = r.pubsub()
    a, b = uniq + "a", uniq + "b"
    assert subscribe_confirmed(p, "subscribe", a, b) == [1, 2]
    assert p.subscribed
    assert connect(any_server).publish(a, "hello") == 1
    assert brief(next_message(p)) == ("message", None, a.encode(), b"hello")
    p.close()


def test_channel_and_pattern_count_twice_message_first(any_server, connect, uniq):
    p = connect(any_server).pubsub()
    ch, pattern = uniq + "news.tech", uniq + "news.*"
    assert subscribe_confirmed(p, "subscribe", ch) == [1]
    assert subscribe_confirmed(p, "psubscribe", pattern) == [2]
    assert connect(any_server).publish(ch, "x") == 2
    assert brief(next_message(p)) == ("message", None, ch.encode(), b"x")
    assert brief(next_message(p)) == ("pmessage", pattern.encode(), ch.encode(), b"x")
    assert connect(any_server).publish(uniq + "news.sport", "y") == 1
    assert brief(next_message(p)) == ("pmessage", pattern.encode(), (uniq + "news.sport").encode(), b"y")
    p.close()


def test_ssubscribe_spublish_separate_namespace(any_server, connect, uniq):
    p = connect(any_server).pubsub()
    ch = uniq + "shard"
    assert subscribe_confirmed(p, "ssubscribe", ch) == [1]
    pub = connect(any_server)
    assert pub.publish(ch, "global") == 0
    assert pub.spublish(ch, "sharded") == 1
    assert brief(next_message(p)) == ("smessage", None, ch.encode(), b"sharded")
    p.close()


def test_pattern_does_not_see_spublish(server, connect, uniq):
    p = connect(server).pubsub()
    assert subscribe_confirmed(p, "psubscribe", uniq + "*") == [1]
    pub = connect(server)
    assert pub.spublish(uniq + "s", "x") == 0
    assert pub.publish(uniq + "s", "y") == 1
    # The first thing to arrive is the PUBLISH, proving SPUBLISH sent nothing.
    assert brief(next_message(p))[3] == b"y"
    p.close()


def test_ignore_subscribe_messages(server, connect, uniq):
    p = connect(server).pubsub(ignore_subscribe_messages=True)
    p.subscribe(uniq + "c")
    pub = connect(server)
    assert wait_until(lambda: pub.pubsub_numsub(uniq + "c")[0][1] == 1)
    # The confirmation is consumed but not returned.
    assert p.get_message(timeout=0.2) is None
    assert pub.publish(uniq + "c", "v") == 1
    assert brief(next_message(p)) == ("message", None, (uniq + "c").encode(), b"v")
    p.close()


def test_listen_yields_messages_in_order(any_server, connect, uniq):
    p = connect(any_server).pubsub()
    ch = uniq + "ordered"
    assert subscribe_confirmed(p, "subscribe", ch) == [1]
    pub = connect(any_server)
    for i in range(20):
        assert pub.publish(ch, f"m{i}") == 1
    got = []
    # The messages are already sent, so listen() cannot block for long; the
    # pytest timeout bounds it in case the server lost them.
    for msg in p.listen():
        if msg["type"] == "message":
            got.append(msg["data"])
        if len(got) == 20:
            break
    assert got == [f"m{i}".encode() for i in range(20)]
    p.close()


def test_handlers_run_in_thread(any_server, connect, uniq):
    received = []
    done = threading.Event()

    def on_message(msg):
        received.append(brief(msg))
        if len(received) == 2:
            done.set()

    p = connect(any_server).pubsub()
    ch, pattern = uniq + "h.chan", uniq + "h.*"
    p.subscribe(**{ch: on_message})
    p.psubscribe(**{pattern: on_message})
    worker = p.run_in_thread(sleep_time=0.05, daemon=True)
    try:
        pub = connect(any_server)
        deadline = time.monotonic() + WAIT
        # The thread confirms the subscriptions asynchronously; publish until both count.
        while pub.publish(ch, "hello") < 2:
            assert time.monotonic() < deadline, "subscriptions never became active"
            time.sleep(0.02)
        assert done.wait(WAIT)
    finally:
        worker.stop()
        worker.join(timeout=WAIT)
    assert not worker.is_alive()
    assert received[-2:] == [
        ("message", None, ch.encode(), b"hello"),
        ("pmessage", pattern.encode(), ch.encode(), b"hello"),
    ]
    p.close()


def test_health_check_pings_while_subscribed(server, connect, uniq):
    r = connect(server, health_check_interval=1)
    p = r.pubsub()
    ch = uniq + "hc"
    assert subscribe_confirmed(p, "subscribe", ch) == [1]
    sent = []
    send = p.connection.send_command

    def spy(*args, **kwargs):
        sent.append(args)
        return send(*args, **kwargs)

    p.connection.send_command = spy
    time.sleep(1.1)  # let the interval lapse so the next read sends PING first
    # redis-py sends PING while subscribed and must recognise and swallow the
    # server's answer (RESP2: ["pong", msg]; RESP3: plain msg).
    assert p.get_message(timeout=WAIT) is None
    assert ("PING", p.HEALTH_CHECK_MESSAGE) in sent
    assert p.health_check_response_counter == 0
    assert connect(server).publish(ch, "after-ping") == 1
    assert brief(next_message(p)) == ("message", None, ch.encode(), b"after-ping")
    p.close()


def test_ping_while_subscribed(server, connect, uniq):
    p = connect(server).pubsub()
    assert subscribe_confirmed(p, "subscribe", uniq + "c") == [1]
    p.ping("hi")
    msg = next_message(p)
    assert (msg["type"], msg["data"]) == ("pong", b"hi")
    p.close()


def test_introspection(any_server, connect, uniq):
    r = connect(any_server)
    a, b, s = uniq + "a", uniq + "b", uniq + "s"
    numpat_before = r.pubsub_numpat()
    p1, p2 = connect(any_server).pubsub(), connect(any_server).pubsub()
    assert subscribe_confirmed(p1, "subscribe", a, b) == [1, 2]
    assert subscribe_confirmed(p2, "subscribe", a) == [1]
    assert subscribe_confirmed(p2, "psubscribe", uniq + "*", uniq + "?") == [2, 3]
    assert subscribe_confirmed(p1, "psubscribe", uniq + "*") == [3]
    assert subscribe_confirmed(p1, "ssubscribe", s) == [1]

    assert sorted(r.pubsub_channels(uniq + "*")) == [a.encode(), b.encode()]
    assert r.pubsub_numsub(a, b, uniq + "none") == [(a.encode(), 2), (b.encode(), 1), ((uniq + "none").encode(), 0)]
    assert r.pubsub_numpat() == numpat_before + 2
    assert r.pubsub_shardchannels(uniq + "*") == [s.encode()]
    assert r.pubsub_shardnumsub(s, uniq + "none") == [(s.encode(), 1), ((uniq + "none").encode(), 0)]
    # Channel a: 2 channel subscribers, then p1's and p2's "*" and p2's "?".
    assert r.publish(a, "x") == 5
    assert r.publish(uniq + "ab", "x") == 2
    assert r.spublish(s, "y") == 1

    p1.close()
    p2.close()


def test_unsubscribe_all_counts_down(server, connect, uniq):
    p = connect(server).pubsub()
    a, b = uniq + "a", uniq + "b"
    assert subscribe_confirmed(p, "subscribe", a, b) == [1, 2]
    p.unsubscribe()
    msgs = [next_message(p), next_message(p)]
    assert sorted((m["type"], m["channel"]) for m in msgs) == [("unsubscribe", a.encode()), ("unsubscribe", b.encode())]
    assert sorted(m["data"] for m in msgs) == [0, 1]
    assert not p.subscribed
    assert connect(server).publish(a, "x") == 0
    p.close()


def test_binary_channel_and_payload(any_server, connect):
    ch = b"compat:bin:\x00\xff\r\n*3\r\n"
    payload = bytes(range(256)) * 4 + b"\r\n$-1\r\n"
    p = connect(any_server).pubsub()
    assert subscribe_confirmed(p, "subscribe", ch) == [1]
    assert connect(any_server).publish(ch, payload) == 1
    assert brief(next_message(p)) == ("message", None, ch, payload)
    p.close()


def test_large_payload(server, connect, uniq):
    payload = b"x" * (1 << 20)
    p = connect(server).pubsub()
    assert subscribe_confirmed(p, "subscribe", uniq + "big") == [1]
    assert connect(server).publish(uniq + "big", payload) == 1
    assert next_message(p)["data"] == payload
    p.close()


def test_decode_responses(server, connect, uniq):
    p = connect(server, decode_responses=True).pubsub()
    p.subscribe(uniq + "txt")
    assert brief(next_message(p)) == ("subscribe", None, uniq + "txt", 1)
    assert connect(server).publish(uniq + "txt", "héllo") == 1
    assert brief(next_message(p)) == ("message", None, uniq + "txt", "héllo")
    p.close()


def test_password_auth(server_auth, connect, uniq):
    r = connect(server_auth)
    assert r.ping() is True
    p = r.pubsub()
    assert subscribe_confirmed(p, "subscribe", uniq + "c") == [1]
    assert connect(server_auth).publish(uniq + "c", "x") == 1
    assert next_message(p)["data"] == b"x"
    p.close()


def test_wrong_password_raises(server_auth, connect):
    with pytest.raises(redis.AuthenticationError):
        connect(server_auth, password="wrong", retry=NO_RETRY).ping()


def test_missing_password_raises(server_auth, protocol):
    r = redis.Redis(host="127.0.0.1", port=server_auth.port, protocol=protocol, socket_timeout=WAIT, retry=NO_RETRY)
    try:
        with pytest.raises(redis.AuthenticationError):
            r.publish("c", "x")
    finally:
        r.close()
