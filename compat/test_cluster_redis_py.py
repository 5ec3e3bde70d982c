"""Pub/sub on a cluster of the server under test: redis-py's RedisCluster, raw bytes.

Sharded pub/sub (SSUBSCRIBE/SPUBLISH) is keyed by channel: redis-py's
ClusterPubSub subscribes on each channel's slot owner, a plain connection to
any other node gets -MOVED, channels of different slots in one command get
-CROSSSLOT, and a subscriber whose slot moves away is told with a
`sunsubscribe` push. Global PUBLISH reaches subscribers on every node, in the
order each publisher sent.

The read-only scenarios share one three-master cluster per protocol-independent
module fixture; those that move slots form their own. Run against redis-server
(COMPAT_TARGET=redis) the same tests check themselves; against a ringcast
without cluster mode they are skipped.
"""

from __future__ import annotations

import time

import pytest
import redis
from redis.cluster import RedisCluster

from cluster_harness import Cluster, Raw, bulk, channel_in_slot, push, slot_of
from harness import WAIT, next_message

# Forming a cluster and waiting for failover take longer than the suite's 60 s default allows for.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(150)]

CROSSSLOT = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"


@pytest.fixture(scope="module")
def cluster3(cluster_supported):
    """Three masters, formed once for the scenarios that do not change the slot map."""
    c = Cluster(3)
    try:
        c.start()
        c.create()
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def raw():
    made: list[Raw] = []

    def make(node, protocol: int = 2) -> Raw:
        conn = Raw(node.port)
        made.append(conn)
        if protocol == 3:
            assert conn.call("HELLO", "3").startswith(b"%")
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def cluster_client(protocol):
    made: list[RedisCluster] = []

    def make(node, **kw) -> RedisCluster:
        kw.setdefault("protocol", protocol)
        kw.setdefault("socket_timeout", WAIT)
        kw.setdefault("socket_connect_timeout", WAIT)
        client = RedisCluster(host="127.0.0.1", port=node.port, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def sharded_messages(pubsub, n: int, timeout: float = WAIT) -> list[dict]:
    """The next n messages a ClusterPubSub delivers from any node, failing after timeout."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"got {got!r} within {timeout}s, wanted {n} messages")
        msg = pubsub.get_sharded_message(timeout=0.05)
        if msg is not None:
            got.append(msg)
    return got


def message(kind: str, channel: str, count_or_data: int | str, protocol: int) -> bytes:
    """A pub/sub push as the server sends it."""
    last = b":%d\r\n" % count_or_data if isinstance(count_or_data, int) else bulk(count_or_data)
    return push(protocol, bulk(kind), bulk(channel), last)


# --- Sharded pub/sub through redis-py's RedisCluster


def test_cluster_pubsub_ssubscribes_on_each_channels_owner(cluster3, cluster_client, uniq):
    masters = cluster3.masters()
    channels = [channel_in_slot(slot, uniq) for slot in (100, 6000, 12000)]
    owners = [cluster3.owner(slot_of(ch)) for ch in channels]
    assert owners == masters  # one channel per master

    subscriber = cluster_client(cluster3.nodes[0])
    pubsub = subscriber.pubsub()
    pubsub.ssubscribe(*channels)
    confirmed = sharded_messages(pubsub, 3)
    assert sorted((m["type"], m["channel"], m["data"]) for m in confirmed) == sorted(
        ("ssubscribe", ch.encode(), 1) for ch in channels
    )
    # One connection per owner, each holding that owner's channel.
    assert sorted(pubsub.node_pubsub_mapping) == sorted(m.addr for m in masters)

    publisher = cluster_client(cluster3.nodes[1])
    for ch in channels:
        assert publisher.spublish(ch, f"to {ch}") == 1  # counted on the owner, where the subscriber is
    got = sharded_messages(pubsub, 3)
    assert sorted((m["type"], m["channel"], m["data"]) for m in got) == sorted(
        ("smessage", ch.encode(), f"to {ch}".encode()) for ch in channels
    )

    pubsub.sunsubscribe(*channels)
    gone = sharded_messages(pubsub, 3)
    assert sorted((m["type"], m["channel"]) for m in gone) == sorted(("sunsubscribe", ch.encode()) for ch in channels)
    pubsub.close()


def test_shard_commands_on_a_non_owner_are_moved(cluster3, raw, protocol, uniq):
    channel = channel_in_slot(7000, uniq)
    slot = slot_of(channel)
    owner = cluster3.owner(slot)
    moved = b"-MOVED %d 127.0.0.1:%d\r\n" % (slot, owner.port)
    for node in cluster3.nodes:
        conn = raw(node, protocol)
        if node is owner:
            assert conn.call("SPUBLISH", channel, "x") == b":0\r\n"
            continue
        assert conn.call("SPUBLISH", channel, "x") == moved
        assert conn.call("SSUBSCRIBE", channel) == moved
        assert conn.call("SUNSUBSCRIBE", channel) == moved
        assert conn.call("PING") == b"+PONG\r\n"  # not left in subscribed mode

    # redis-py's plain client surfaces the same redirection as MovedError.
    stranger = next(n for n in cluster3.nodes if n is not owner)
    plain = redis.Redis(host="127.0.0.1", port=stranger.port, protocol=protocol, socket_timeout=WAIT)
    try:
        with pytest.raises(redis.exceptions.MovedError) as err:
            plain.spublish(channel, "x")
        assert (err.value.slot_id, err.value.host, err.value.port) == (slot, "127.0.0.1", owner.port)
    finally:
        plain.close()


def test_ssubscribe_across_slots_is_crossslot(cluster3, raw, protocol):
    assert slot_of("a") != slot_of("b")
    for node in cluster3.nodes:
        conn = raw(node, protocol)
        assert conn.call("SSUBSCRIBE", "a", "b") == CROSSSLOT
        assert conn.call("SUNSUBSCRIBE", "a", "b") == CROSSSLOT
        assert conn.call("PING") == b"+PONG\r\n"

    # One hash tag, one slot: both accepted by its owner.
    tagged = ["{tag}a", "{tag}b"]
    owner = cluster3.owner(slot_of("{tag}"))
    conn = raw(owner, protocol)
    conn.send("SSUBSCRIBE", *tagged)
    assert conn.replies(2) == [message("ssubscribe", ch, n, protocol) for n, ch in enumerate(tagged, 1)]


def test_reshard_sunsubscribes_the_moved_slots_subscribers(make_cluster, raw):
    c = make_cluster(3)
    c.create()
    source, target, _ = c.masters()
    moved, kept = channel_in_slot(0, "shard"), channel_in_slot(1000, "shard")
    assert c.owner(0) is source and c.owner(1000) is source

    subscribers = {}
    for protocol in (2, 3):
        conn = raw(source, protocol)
        conn.send("SSUBSCRIBE", moved)
        conn.send("SSUBSCRIBE", kept)
        assert conn.replies(2) == [message("ssubscribe", moved, 1, protocol), message("ssubscribe", kept, 2, protocol)]
        subscribers[protocol] = conn
    # redis-py's ClusterPubSub, subscribed on the source too, is handed the same push.
    cluster_pubsub = RedisCluster(host="127.0.0.1", port=source.port, protocol=3, socket_timeout=WAIT).pubsub()
    cluster_pubsub.ssubscribe(moved)
    assert [(m["type"], m["channel"]) for m in sharded_messages(cluster_pubsub, 1)] == [("ssubscribe", moved.encode())]

    # redis-cli moves the source's lowest slot first: slot 0.
    proc = c.admin(
        "reshard", "--cluster-from", source.node_id(), "--cluster-to", target.node_id(),
        "--cluster-slots", "1", "--cluster-yes",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert f"Moving slot 0 from {source.addr} to {target.addr}: " in proc.stdout.splitlines(), proc.stdout

    for protocol, conn in subscribers.items():
        assert conn.replies(1) == [message("sunsubscribe", moved, 1, protocol)], f"RESP{protocol}"

    pushed = sharded_messages(cluster_pubsub, 1)
    assert [(m["type"], m["channel"], m["data"]) for m in pushed] == [("sunsubscribe", moved.encode(), 0)]
    cluster_pubsub.close()
    cluster_pubsub.cluster.close()

    c.wait_ok()
    assert c.owner(0) is target
    # The moved channel now lives on the target; the old subscribers hear nothing of it.
    publisher = raw(target)
    assert publisher.call("SPUBLISH", moved, "after") == b":0\r\n"
    # The kept one still reaches them.
    assert raw(source).call("SPUBLISH", kept, "still") == b":2\r\n"
    for protocol, conn in subscribers.items():
        assert conn.replies(1) == [message("smessage", kept, "still", protocol)], f"RESP{protocol}"
        assert conn.quiet(0.2) == b""


# --- Global PUBLISH across nodes


def test_publish_reaches_subscribers_on_other_nodes_in_order(cluster3, protocol, uniq):
    home, *others = cluster3.nodes
    channel = uniq + "news"
    clients = []

    def client(node) -> redis.Redis:
        c = redis.Redis(host="127.0.0.1", port=node.port, protocol=protocol, socket_timeout=WAIT)
        clients.append(c)
        return c

    try:
        sub = client(home).pubsub()
        sub.subscribe(channel)
        assert next_message(sub)["type"] == "subscribe"
        psub = client(home).pubsub()
        psub.psubscribe(uniq + "*")
        assert next_message(psub)["type"] == "psubscribe"

        n = 200
        publishers = {f"{node.port}": client(node) for node in others}
        for i in range(n):
            for name, pub in publishers.items():
                # Redis counts only the receivers on the node the PUBLISH was sent to.
                assert pub.publish(channel, f"{name}:{i}") == 0
        assert client(home).publish(channel, "home:0") == 2

        total = n * len(publishers) + 1
        for pubsub, kind in ((sub, "message"), (psub, "pmessage")):
            got = [next_message(pubsub) for _ in range(total)]
            assert {m["type"] for m in got} == {kind}
            assert {m["channel"] for m in got} == {channel.encode()}
            if kind == "pmessage":
                assert {m["pattern"] for m in got} == {(uniq + "*").encode()}
            data = [m["data"].decode() for m in got]
            for name in publishers:
                seq = [int(d.split(":")[1]) for d in data if d.startswith(name + ":")]
                assert seq == list(range(n)), f"{kind} from {name}: gap, duplicate or reorder"
            assert data.count("home:0") == 1
            assert pubsub.get_message(timeout=0.2) is None
    finally:
        for c in clients:
            c.close()
