// ioredis and node-redis over TLS (`tls` options), with a client certificate,
// against a server listening on `port` and `tls-port` side by side. The
// certificates are made at test time with the `openssl` command; the same
// flags start redis-server's TLS with COMPAT_TARGET=redis.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";
import { createClient } from "redis";

import { Inbox, Server, WAIT, freePort, within } from "./harness.mjs";

let dir;
let srv;
let tlsPort;
const file = (name) => readFileSync(path.join(dir, name));

function makeCerts() {
  dir = mkdtempSync(path.join(os.tmpdir(), "compat-tls-"));
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore", timeout: 60000 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=compat CA");
  writeFileSync(path.join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  writeFileSync(path.join(dir, "client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  for (const role of ["server", "client"]) {
    openssl("req", ...ec, "-keyout", `${role}.key`, "-out", `${role}.csr`, "-subj", `/CN=${role}`);
    openssl("x509", "-req", "-in", `${role}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", `${role}.crt`, "-days", "2", "-extfile", `${role}.ext`);
  }
}

before(async () => {
  makeCerts();
  tlsPort = await freePort();
  srv = await new Server({
    threads: 2,
    extra: [
      "--tls-port", String(tlsPort),
      "--tls-cert-file", path.join(dir, "server.crt"),
      "--tls-key-file", path.join(dir, "server.key"),
      "--tls-ca-cert-file", path.join(dir, "ca.crt"),
    ],
  }).start();
});

after(async () => {
  await srv?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tls = () => ({ ca: file("ca.crt"), cert: file("client.crt"), key: file("client.key"), servername: "localhost" });

describe("TLS", () => {
  it("ioredis subscribes over TLS and receives from a plain publisher", async () => {
    const options = { host: "127.0.0.1", port: tlsPort, tls: tls(), connectTimeout: WAIT, commandTimeout: WAIT, maxRetriesPerRequest: 1 };
    const sub = new Redis(options);
    const pub = new Redis({ host: "127.0.0.1", port: srv.port, connectTimeout: WAIT, commandTimeout: WAIT });
    for (const c of [sub, pub]) c.on("error", () => {});
    try {
      const inbox = new Inbox();
      sub.on("message", inbox.push);
      await within(sub.subscribe("tls-io"), "subscribe over TLS");
      assert.equal(await pub.publish("tls-io", "x".repeat(40000)), 1);
      const [[channel, message]] = await inbox.take(1);
      assert.equal(channel, "tls-io");
      assert.equal(message.length, 40000);
    } finally {
      sub.disconnect();
      pub.disconnect();
    }
  });

  it("node-redis publishes over TLS", async () => {
    const client = createClient({ socket: { host: "127.0.0.1", port: tlsPort, tls: true, ...tls(), connectTimeout: WAIT, reconnectStrategy: false } });
    client.on("error", () => {});
    const sub = client.duplicate();
    sub.on("error", () => {});
    try {
      await within(client.connect(), "node-redis TLS connect");
      await within(sub.connect(), "node-redis TLS connect");
      assert.equal(await client.ping(), "PONG");
      const inbox = new Inbox();
      await sub.subscribe("tls-nr", (message) => inbox.push(message));
      assert.equal(await client.publish("tls-nr", "hello"), 1);
      assert.deepEqual(await inbox.take(1), ["hello"]);
    } finally {
      await Promise.allSettled([client.quit(), sub.quit()]);
    }
  });
});
