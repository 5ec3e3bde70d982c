// Connect-time scenarios for compat/capture_handshake.py: each one connects a
// Node.js client to 127.0.0.1:PORT the way an application would, publishes,
// subscribes, and disconnects, so the capturing proxy sees what the client sends.
//
//   node handshake.mjs PORT SCENARIO [PASSWORD]
//   node handshake.mjs --list

import Redis from "ioredis";
import { createClient } from "redis";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function ioredis(port, options) {
  const pub = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, ...options });
  const sub = pub.duplicate();
  await sub.subscribe("ch");
  await pub.publish("ch", "x");
  await sleep(100);
  sub.disconnect();
  pub.disconnect();
}

async function nodeRedis(port, options) {
  const pub = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false }, ...options });
  pub.on("error", () => {});
  await pub.connect();
  const sub = pub.duplicate();
  sub.on("error", () => {});
  await sub.connect();
  await sub.subscribe("ch", () => {});
  await pub.publish("ch", "x");
  await sleep(100);
  sub.destroy();
  pub.destroy();
}

export const scenarios = {
  "ioredis-default": (port) => ioredis(port, {}),
  "ioredis-protocol2": (port) => ioredis(port, { protocol: 2 }),
  "ioredis-name-db": (port) => ioredis(port, { connectionName: "app", db: 1 }),
  "ioredis-password": (port, pw) => ioredis(port, { password: pw }),
  "ioredis-password-protocol2": (port, pw) => ioredis(port, { password: pw, protocol: 2 }),
  "ioredis-user-password": (port, pw) => ioredis(port, { username: "default", password: pw }),
  "node-redis-default": (port) => nodeRedis(port, {}),
  "node-redis-resp2": (port) => nodeRedis(port, { RESP: 2 }),
  "node-redis-resp3": (port) => nodeRedis(port, { RESP: 3 }),
  "node-redis-name-db": (port) => nodeRedis(port, { name: "app", database: 1 }),
  "node-redis-name-db-resp2": (port) => nodeRedis(port, { name: "app", database: 1, RESP: 2 }),
  "node-redis-password": (port, pw) => nodeRedis(port, { password: pw }),
  "node-redis-password-resp2": (port, pw) => nodeRedis(port, { password: pw, RESP: 2 }),
  "node-redis-user-password": (port, pw) => nodeRedis(port, { username: "default", password: pw }),
};

if (process.argv[2] === "--list") {
  console.log(Object.keys(scenarios).join("\n"));
} else {
  const [port, name, password] = process.argv.slice(2);
  const run = scenarios[name];
  if (!run) {
    console.error(`unknown scenario ${name}`);
    process.exit(2);
  }
  await run(Number(port), password);
}
