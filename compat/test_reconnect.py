"""Clients survive a server restart: the server is stopped and started again
on the same port, and redis-py reconnects and replays its subscriptions.

This relies on the server binding its port again at once after a restart
(SO_REUSEADDR), as redis-server does.
"""

from __future__ import annotations

import asyncio
import time

import redis

from harness import WAIT, anext_message, async_client, brief, next_message


def read_until_types(pubsub, wanted: set[str], timeout: float = 3 * WAIT) -> None:
    """Read from pubsub, riding out connection errors, until every wanted type was seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= seen:
        assert time.monotonic() < deadline, f"after restart saw only {seen}, wanted {wanted}"
        try:
            msg = pubsub.get_message(timeout=0.2)
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.05)
            continue
        if msg is not None:
            seen.add(msg["type"])


def test_sync_pubsub_resubscribes_after_restart(restartable_server, connect, uniq):
    srv = restartable_server
    p = connect(srv).pubsub()
    ch, pattern, shard = uniq + "r.1", uniq + "r.*", uniq + "rs"
    p.subscribe(ch)
    p.psubscribe(pattern)
    p.ssubscribe(shard)
    assert [next_message(p)["type"] for _ in range(3)] == ["subscribe", "psubscribe", "ssubscribe"]
    pub = connect(srv)
    assert pub.publish(ch, "before") == 2

    srv.restart()

    read_until_types(p, {"subscribe", "psubscribe", "ssubscribe"})
    # The publisher's pooled connection is dead too; redis-py retries on a new one.
    assert pub.publish(ch, "after") == 2
    assert pub.spublish(shard, "after-s") == 1
    # "before" was read, if at all, ahead of the confirmations, so only new messages follow.
    assert [brief(next_message(p)) for _ in range(3)] == [
        ("message", None, ch.encode(), b"after"),
        ("pmessage", pattern.encode(), ch.encode(), b"after"),
        ("smessage", None, shard.encode(), b"after-s"),
    ]
    p.close()


def test_async_pubsub_resubscribes_after_restart(restartable_server, protocol, uniq):
    srv = restartable_server

    async def body():
        sub, pub = async_client(srv, protocol), async_client(srv, protocol)
        p = sub.pubsub()
        ch, pattern = uniq + "a.1", uniq + "a.*"
        await p.subscribe(ch)
        await p.psubscribe(pattern)
        assert [(await anext_message(p))["type"] for _ in range(2)] == ["subscribe", "psubscribe"]

        await asyncio.to_thread(srv.restart)

        seen: set[str] = set()
        deadline = time.monotonic() + 3 * WAIT
        while not {"subscribe", "psubscribe"} <= seen:
            assert time.monotonic() < deadline, f"after restart saw only {seen}"
            try:
                msg = await p.get_message(timeout=0.2)
            except (redis.ConnectionError, redis.TimeoutError):
                await asyncio.sleep(0.05)
                continue
            if msg is not None:
                seen.add(msg["type"])
        assert await pub.publish(ch, "after") == 2
        assert brief(await anext_message(p)) == ("message", None, ch.encode(), b"after")
        assert brief(await anext_message(p)) == ("pmessage", pattern.encode(), ch.encode(), b"after")
        await p.aclose()
        await sub.aclose()
        await pub.aclose()

    asyncio.run(asyncio.wait_for(body(), 6 * WAIT))
