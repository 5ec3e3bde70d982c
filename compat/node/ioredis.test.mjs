// ioredis against the server under test, RESP2 (protocol: 2) and RESP3
// (protocol: 3, ioredis's default since 6.0). Connecting at all exercises its
// handshake: HELLO 3 (with AUTH when a password is set), CLIENT SETINFO, and the
// ready check's INFO. The pub/sub tests also run on a two-worker server, where
// publisher and subscriber may sit on different workers.

import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import Redis from "ioredis";

import { BINARY, Inbox, PASSWORD, Server, WAIT, atLeast72, packageVersion, plainServer, uniq, waitUntil, within } from "./harness.mjs";

const VERSION = packageVersion("ioredis");
const servers = {};
let made = [];

before(async () => {
  [servers.single, servers.threads2, servers.auth] = await Promise.all([
    plainServer(),
    new Server({ threads: 2 }).start(),
    new Server({ requirepass: PASSWORD }).start(),
  ]);
});

after(async () => {
  await Promise.all(Object.values(servers).map((srv) => srv.cleanup()));
});

afterEach(() => {
  for (const client of made) client.disconnect();
  made = [];
});

/** An ioredis client for srv; errors surface through rejected commands, not events. */
function connect(srv, options = {}) {
  const client = new Redis({
    host: "127.0.0.1",
    port: srv.port,
    password: srv.requirepass ?? undefined,
    connectTimeout: WAIT,
    commandTimeout: WAIT,
    maxRetriesPerRequest: 1,
    ...options,
  });
  client.on("error", () => {});
  made.push(client);
  return client;
}

for (const protocol of [2, 3]) {
  describe(`ioredis ${VERSION} protocol ${protocol}`, () => {
    it("connects and answers PING, ECHO and the ready check's INFO", async () => {
      const r = connect(servers.single, { protocol });
      assert.equal(await r.ping(), "PONG");
      assert.equal(await r.echo("hi"), "hi");
      const info = await r.info("server");
      assert.match(info, /^redis_version:7\./m);
    });

    it("sets the connection name and database at connect", async () => {
      const r = connect(servers.single, { protocol, connectionName: "compat-app", db: 1 });
      assert.equal(await r.client("GETNAME"), "compat-app");
      const info = await r.client("INFO");
      assert.match(String(info), /\bname=compat-app\b/);
      assert.match(String(info), /\bdb=1\b/);
      // CLIENT SETINFO arrived in Redis 7.2; a 7.0 reference server rejects it (ioredis ignores that).
      if (await atLeast72(r)) {
        assert.match(String(info), /\blib-name=ioredis\b/);
        assert.match(String(info), new RegExp(`\\blib-ver=${VERSION.replace(/\./g, "\\.")}\\b`));
      }
    });

    it("reports publish counts with nobody listening", async (t) => {
      const r = connect(servers.single, { protocol });
      const p = uniq(t.name);
      assert.equal(await r.publish(p + "nobody", "x"), 0);
      assert.equal(await r.spublish(p + "nobody", "x"), 0);
    });

    for (const where of ["single", "threads2"]) {
      it(`delivers channel and pattern messages with counts (${where})`, async (t) => {
        const srv = servers[where];
        const p = uniq(t.name);
        const sub = connect(srv, { protocol });
        const pub = connect(srv, { protocol });
        const inbox = new Inbox();
        sub.on("message", (channel, message) => inbox.push(["message", channel, message]));
        sub.on("pmessage", (pattern, channel, message) => inbox.push(["pmessage", pattern, channel, message]));

        assert.equal(await sub.subscribe(p + "a", p + "b"), 2);
        assert.equal(await sub.psubscribe(p + "*"), 3);
        assert.equal(await pub.publish(p + "a", "one"), 2);
        assert.equal(await pub.publish(p + "b", "two"), 2);
        assert.equal(await pub.publish(p + "c", "three"), 1);
        assert.deepEqual(await inbox.take(5), [
          ["message", p + "a", "one"],
          ["pmessage", p + "*", p + "a", "one"],
          ["message", p + "b", "two"],
          ["pmessage", p + "*", p + "b", "two"],
          ["pmessage", p + "*", p + "c", "three"],
        ]);

        assert.equal(await sub.unsubscribe(p + "a"), 2);
        assert.equal(await sub.punsubscribe(p + "*"), 1);
        assert.equal(await pub.publish(p + "a", "gone"), 0);
        assert.equal(await pub.publish(p + "b", "four"), 1);
        assert.deepEqual(await inbox.take(1), [["message", p + "b", "four"]]);
        assert.equal(await sub.unsubscribe(), 0);
        assert.equal(await pub.publish(p + "b", "gone"), 0);
      });

      it(`delivers sharded messages (${where})`, async (t) => {
        const srv = servers[where];
        const p = uniq(t.name);
        const sub = connect(srv, { protocol });
        const pub = connect(srv, { protocol });
        const inbox = new Inbox();
        sub.on("smessage", (channel, message) => inbox.push([channel, message]));

        assert.equal(await sub.ssubscribe(p + "s1"), 1);
        assert.equal(await sub.ssubscribe(p + "s2"), 2);
        assert.equal(await pub.spublish(p + "s1", "one"), 1);
        assert.equal(await pub.spublish(p + "s2", "two"), 1);
        // A plain PUBLISH does not reach shard subscribers.
        assert.equal(await pub.publish(p + "s1", "plain"), 0);
        assert.deepEqual(await inbox.take(2), [
          [p + "s1", "one"],
          [p + "s2", "two"],
        ]);
        assert.equal(await sub.sunsubscribe(p + "s1"), 1);
        assert.equal(await pub.spublish(p + "s1", "gone"), 0);
      });

      it(`passes binary payloads and channel names through untouched (${where})`, async (t) => {
        const srv = servers[where];
        const p = uniq(t.name);
        const sub = connect(srv, { protocol });
        const pub = connect(srv, { protocol });
        const inbox = new Inbox();
        sub.on("messageBuffer", (channel, message) => inbox.push(["message", channel, message]));
        sub.on("pmessageBuffer", (pattern, channel, message) => inbox.push(["pmessage", pattern, channel, message]));
        sub.on("smessageBuffer", (channel, message) => inbox.push(["smessage", channel, message]));

        const channel = Buffer.concat([Buffer.from(p), Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80])]);
        await sub.subscribe(channel);
        await sub.psubscribe(p + "*");
        await sub.ssubscribe(channel);
        assert.equal(await pub.publish(channel, BINARY), 2);
        assert.equal(await pub.spublish(channel, BINARY), 1);
        const got = await inbox.take(3);
        assert.deepEqual(got[0], ["message", channel, BINARY]);
        assert.deepEqual(got[1], ["pmessage", p + "*", channel, BINARY]);
        assert.deepEqual(got[2], ["smessage", channel, BINARY]);
      });
    }

    it("answers PUBSUB introspection", async (t) => {
      const p = uniq(t.name);
      const sub = connect(servers.single, { protocol });
      const r = connect(servers.single, { protocol });
      await sub.subscribe(p + "a", p + "b");
      await sub.psubscribe(p + "*");
      await sub.ssubscribe(p + "s");
      assert.deepEqual((await r.pubsub("CHANNELS", p + "*")).sort(), [p + "a", p + "b"]);
      assert.deepEqual(await r.pubsub("NUMSUB", p + "a", p + "none"), [p + "a", 1, p + "none", 0]);
      assert.ok((await r.pubsub("NUMPAT")) >= 1);
      assert.deepEqual(await r.pubsub("SHARDCHANNELS", p + "*"), [p + "s"]);
      assert.deepEqual(await r.pubsub("SHARDNUMSUB", p + "s"), [p + "s", 1]);
    });

    if (protocol === 3) {
      it("lets a RESP3 subscriber run ordinary commands and hear its own publish", async (t) => {
        const p = uniq(t.name);
        const r = connect(servers.single, { protocol });
        const inbox = new Inbox();
        r.on("message", (channel, message) => inbox.push([channel, message]));
        assert.equal(await r.subscribe(p + "self"), 1);
        assert.equal(await r.ping(), "PONG");
        assert.equal(await r.publish(p + "self", "echo"), 1);
        assert.deepEqual(await inbox.take(1), [[p + "self", "echo"]]);
      });
    } else {
      it("refuses ordinary commands on a RESP2 subscriber, as Redis does", async (t) => {
        const p = uniq(t.name);
        const r = connect(servers.single, { protocol });
        await r.subscribe(p + "x");
        // ioredis rejects this itself; the raw exchange is tested in test_handshake.py.
        await assert.rejects(r.get("k"), /subscriber mode/);
        assert.equal(await r.unsubscribe(), 0);
        assert.equal(await r.ping(), "PONG");
      });
    }

    it("authenticates with a password, and reports a wrong one", async () => {
      const ok = connect(servers.auth, { protocol });
      assert.equal(await ok.ping(), "PONG");
      const withUser = connect(servers.auth, { protocol, username: "default" });
      assert.equal(await withUser.ping(), "PONG");

      // ioredis reports the handshake's error as an "error" event, then closes.
      const wrong = connect(servers.auth, { protocol, password: "wrong", lazyConnect: true, retryStrategy: () => null });
      const reported = new Promise((resolve) => wrong.on("error", resolve));
      wrong.connect().catch(() => {});
      const err = await within(reported, "error event for a wrong password");
      assert.match(err.message, /^WRONGPASS invalid username-password pair or user is disabled\.$/);
      const none = connect(servers.auth, { protocol, password: undefined, enableReadyCheck: false });
      await assert.rejects(none.ping(), /NOAUTH/);
    });
  });
}

describe(`ioredis ${VERSION} reconnect`, () => {
  let srv;
  before(async () => {
    srv = await new Server().start();
  });
  after(async () => {
    await srv.cleanup();
  });

  it("resubscribes channels, patterns and shard channels after a server restart", async (t) => {
    const p = uniq(t.name);
    const retry = { retryStrategy: () => 50, maxRetriesPerRequest: 20 };
    const sub = connect(srv, retry);
    const pub = connect(srv, retry);
    const inbox = new Inbox();
    sub.on("message", (channel, message) => inbox.push(["message", channel, message]));
    sub.on("pmessage", (pattern, channel, message) => inbox.push(["pmessage", pattern, channel, message]));
    sub.on("smessage", (channel, message) => inbox.push(["smessage", channel, message]));
    await sub.subscribe(p + "c");
    await sub.psubscribe(p + "*");
    await sub.ssubscribe(p + "s");
    assert.equal(await pub.publish(p + "c", "before"), 2);
    await inbox.take(2);

    await srv.restart();

    // Wait until the server sees all three subscriptions again, then publish once.
    await waitUntil(async () => {
      try {
        const [, numsub] = await pub.pubsub("NUMSUB", p + "c");
        const [, shard] = await pub.pubsub("SHARDNUMSUB", p + "s");
        return numsub === 1 && shard === 1 && (await pub.pubsub("NUMPAT")) === 1;
      } catch {
        return false;
      }
    }, "resubscribed after restart", 3 * WAIT);
    assert.equal(await pub.publish(p + "c", "after"), 2);
    assert.equal(await pub.spublish(p + "s", "after-s"), 1);
    assert.deepEqual(await inbox.take(3), [
      ["message", p + "c", "after"],
      ["pmessage", p + "*", p + "c", "after"],
      ["smessage", p + "s", "after-s"],
    ]);
  });
});
