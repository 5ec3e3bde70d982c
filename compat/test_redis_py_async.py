"""redis-py's asyncio API against the server under test, RESP2 and RESP3.

Each test body is a coroutine run by asyncio.run under an overall
asyncio.wait_for bound, so a lost message fails the test instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools

from harness import WAIT, anext_message, async_client, brief


def bounded(test):
    """Run an async test body in a fresh event loop, bounded by 4 * WAIT seconds."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 4 * WAIT))

    return wrapper


async def confirmed(pubsub, kind: str, *names) -> list[int]:
    """Subscribe with kind and return the counts the server confirmed."""
    await getattr(pubsub, kind)(*names)
    counts = []
    for name in names:
        msg = await anext_message(pubsub)
        assert (msg["type"], msg["channel"]) == (kind, name.encode())
        counts.append(msg["data"])
    return counts


@bounded
async def test_handshake_and_ping(server, protocol):
    r = async_client(server, protocol)
    assert await r.ping() is True
    assert await r.echo("x") == b"x"
    await r.aclose()


@bounded
async def test_subscribe_psubscribe_ssubscribe(any_server, protocol, uniq):
    sub, pub = async_client(any_server, protocol), async_client(any_server, protocol)
    p = sub.pubsub()
    ch, pattern, shard = uniq + "c.1", uniq + "c.*", uniq + "shard"
    assert await confirmed(p, "subscribe", ch) == [1]
    assert await confirmed(p, "psubscribe", pattern) == [2]
    assert await confirmed(p, "ssubscribe", shard) == [1]

    assert await pub.publish(ch, "m") == 2
    assert brief(await anext_message(p)) == ("message", None, ch.encode(), b"m")
    assert brief(await anext_message(p)) == ("pmessage", pattern.encode(), ch.encode(), b"m")
    assert await pub.spublish(shard, "s") == 1
    assert brief(await anext_message(p)) == ("smessage", None, shard.encode(), b"s")
    assert await pub.publish(shard, "nobody") == 0

    await p.aclose()
    await sub.aclose()
    await pub.aclose()


@bounded
async def test_listen(any_server, protocol, uniq):
    sub, pub = async_client(any_server, protocol), async_client(any_server, protocol)
    p = sub.pubsub()
    ch = uniq + "l"
    assert await confirmed(p, "subscribe", ch) == [1]
    for i in range(10):
        assert await pub.publish(ch, str(i)) == 1
    got = []
    async for msg in p.listen():
        if msg["type"] == "message":
            got.append(msg["data"])
            if len(got) == 10:
                break
    assert got == [str(i).encode() for i in range(10)]
    await p.aclose()
    await sub.aclose()
    await pub.aclose()


@bounded
async def test_run_with_handlers(any_server, protocol, uniq):
    sub, pub = async_client(any_server, protocol), async_client(any_server, protocol)
    received = []
    done = asyncio.Event()

    async def on_message(msg):
        received.append(brief(msg))
        if len(received) == 2:
            done.set()

    p = sub.pubsub()
    ch, pattern = uniq + "h.x", uniq + "h.*"
    await p.subscribe(**{ch: on_message})
    await p.psubscribe(**{pattern: on_message})
    task = asyncio.create_task(p.run(poll_timeout=0.1))
    try:
        # run() consumes the confirmations; publish until both subscriptions count.
        while await pub.publish(ch, "hi") < 2:
            await asyncio.sleep(0.02)
        await asyncio.wait_for(done.wait(), WAIT)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert received[-2:] == [
        ("message", None, ch.encode(), b"hi"),
        ("pmessage", pattern.encode(), ch.encode(), b"hi"),
    ]
    await p.aclose()
    await sub.aclose()
    await pub.aclose()


@bounded
async def test_health_check_pings_while_subscribed(server, protocol, uniq):
    sub = async_client(server, protocol, health_check_interval=1)
    pub = async_client(server, protocol)
    p = sub.pubsub()
    ch = uniq + "hc"
    assert await confirmed(p, "subscribe", ch) == [1]
    sent = []
    send = p.connection.send_command

    async def spy(*args, **kwargs):
        sent.append(args)
        return await send(*args, **kwargs)

    p.connection.send_command = spy
    await asyncio.sleep(1.1)  # let the interval lapse so the next read sends PING first
    assert await p.get_message(timeout=WAIT) is None
    assert ("PING", p.HEALTH_CHECK_MESSAGE) in sent
    assert await pub.publish(ch, "after") == 1
    assert brief(await anext_message(p)) == ("message", None, ch.encode(), b"after")
    await p.aclose()
    await sub.aclose()
    await pub.aclose()


@bounded
async def test_introspection(any_server, protocol, uniq):
    r = async_client(any_server, protocol)
    sub = async_client(any_server, protocol)
    p = sub.pubsub()
    numpat = await r.pubsub_numpat()
    assert await confirmed(p, "subscribe", uniq + "a") == [1]
    assert await confirmed(p, "psubscribe", uniq + "*") == [2]
    assert await confirmed(p, "ssubscribe", uniq + "s") == [1]
    assert await r.pubsub_channels(uniq + "*") == [(uniq + "a").encode()]
    assert await r.pubsub_numsub(uniq + "a") == [((uniq + "a").encode(), 1)]
    assert await r.pubsub_numpat() == numpat + 1
    assert await r.pubsub_shardchannels(uniq + "*") == [(uniq + "s").encode()]
    assert await r.pubsub_shardnumsub(uniq + "s") == [((uniq + "s").encode(), 1)]
    await p.aclose()
    await sub.aclose()
    await r.aclose()


@bounded
async def test_binary_payload(any_server, protocol):
    sub, pub = async_client(any_server, protocol), async_client(any_server, protocol)
    ch = b"compat:abin:\x00\xfe\n"
    payload = bytes(range(256))[::-1] * 8
    p = sub.pubsub()
    await p.subscribe(ch)
    msg = await anext_message(p)
    assert (msg["type"], msg["channel"], msg["data"]) == ("subscribe", ch, 1)
    assert await pub.publish(ch, payload) == 1
    assert brief(await anext_message(p)) == ("message", None, ch, payload)
    await p.aclose()
    await sub.aclose()
    await pub.aclose()


@bounded
async def test_password(server_auth, protocol, uniq):
    sub = async_client(server_auth, protocol, password=server_auth.requirepass)
    pub = async_client(server_auth, protocol, password=server_auth.requirepass)
    p = sub.pubsub()
    assert await confirmed(p, "subscribe", uniq + "c") == [1]
    assert await pub.publish(uniq + "c", "x") == 1
    assert (await anext_message(p))["data"] == b"x"
    await p.aclose()
    await sub.aclose()
    await pub.aclose()
