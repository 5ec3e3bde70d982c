// Start and stop the server under test for the Node.js client suite, and bound
// every wait the tests make. The same rules as compat/harness.py:
//
//   COMPAT_TARGET  ringcast (default) or redis: the suite runs unchanged against
//                  a real redis-server, which is how the suite itself is checked
//   RINGCAST_BIN   ringcast binary (default: CARGO_TARGET_DIR or target/,
//                  release build if present, else debug)
//   COMPAT_PORT    port of a plain server someone else started (compat/run.sh);
//                  without it the suite starts its own
//
// Every server listens on a free 127.0.0.1 port and is stopped by whoever
// started it. A server that does not come up or go away is an error, not a hang.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, closeSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WAIT = 5000; // upper bound for any single wait in the suite, ms
const START_TIMEOUT = 15000;
const STOP_TIMEOUT = 10000;
export const PASSWORD = "compat-secret";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Which server the suite runs against: "ringcast" or "redis". */
export function target() {
  const value = (process.env.COMPAT_TARGET ?? "ringcast").trim().toLowerCase();
  if (value !== "ringcast" && value !== "redis") {
    throw new Error(`COMPAT_TARGET must be ringcast or redis, not ${JSON.stringify(value)}`);
  }
  return value;
}

function ringcastBin() {
  if (process.env.RINGCAST_BIN) return process.env.RINGCAST_BIN;
  let dir = process.env.CARGO_TARGET_DIR ?? path.join(REPO_ROOT, "target");
  if (!path.isAbsolute(dir)) dir = path.join(REPO_ROOT, dir);
  for (const profile of ["release", "debug"]) {
    const candidate = path.join(dir, profile, "ringcast");
    if (existsSync(candidate)) return candidate;
  }
  throw new Error("ringcast binary not found; build it with `cargo build -p ringcast-server` or set RINGCAST_BIN");
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function serverCommand(port, { threads, requirepass, extra } = {}) {
  let cmd;
  if (target() === "redis") {
    cmd = ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    // redis-server's nearest equivalent of ringcast's worker count.
    if (threads !== undefined) cmd.push("--io-threads", String(threads));
  } else {
    cmd = [ringcastBin(), "--port", String(port)];
    if (threads !== undefined) cmd.push("--threads", String(threads));
  }
  if (requirepass !== undefined) cmd.push("--requirepass", requirepass);
  // Flags both servers take alike (the tls-* parameters).
  if (extra !== undefined) cmd.push(...extra);
  return cmd;
}

/** True once the server replies to an inline PING (any reply: NOAUTH counts). */
function answers(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once("error", () => done(false));
    sock.once("connect", () => sock.write("PING\r\n"));
    sock.once("data", (data) => done(data[0] === 0x2b || data[0] === 0x2d)); // '+' or '-'
  });
}

const exited = (proc) => proc.exitCode !== null || proc.signalCode !== null;

/** One server process on a fixed 127.0.0.1 port; can be stopped and started again. */
export class Server {
  constructor({ threads, requirepass, port, extra } = {}) {
    this.extra = extra;
    this.threads = threads;
    this.requirepass = requirepass ?? null;
    this.port = port;
    this.proc = null;
    this.logDir = mkdtempSync(path.join(os.tmpdir(), "compat-node-"));
    this.logPath = path.join(this.logDir, "server.log");
  }

  async start() {
    if (this.proc) throw new Error("server already running");
    this.port ??= await freePort();
    const [exe, ...args] = serverCommand(this.port, {
      threads: this.threads,
      requirepass: this.requirepass ?? undefined,
      extra: this.extra,
    });
    const log = openSync(this.logPath, "a");
    const proc = spawn(exe, args, { stdio: ["ignore", log, log] });
    closeSync(log);
    this.proc = proc;
    const deadline = Date.now() + START_TIMEOUT;
    while (Date.now() < deadline) {
      if (exited(proc)) {
        this.proc = null;
        throw new Error(`server exited with ${proc.exitCode ?? proc.signalCode} at start:\n${this.logTail()}`);
      }
      if (await answers(this.port)) return this;
      await sleep(50);
    }
    await this.stop();
    throw new Error(`server did not answer within ${START_TIMEOUT} ms:\n${this.logTail()}`);
  }

  /** SIGTERM, then SIGKILL if it lingers; resolves to the exit code (or signal name). */
  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc) return null;
    if (!exited(proc)) {
      const gone = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT);
      await gone;
      clearTimeout(timer);
    }
    return proc.exitCode ?? proc.signalCode;
  }

  /** Stop and start again on the same port (clients must reconnect). */
  async restart() {
    await this.stop();
    await this.start();
  }

  logTail(lines = 40) {
    try {
      return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  async cleanup() {
    await this.stop();
    rmSync(this.logDir, { recursive: true, force: true });
  }
}

/**
 * The plain server under test: the one compat/run.sh started (COMPAT_PORT), or
 * one started here. Call cleanup() when done either way.
 */
export async function plainServer() {
  const port = process.env.COMPAT_PORT;
  if (port) return { port: Number(port), requirepass: null, cleanup: async () => {} };
  return new Server().start();
}

/** Rejects with a message naming what was awaited if promise takes longer than ms. */
export function within(promise, what, ms = WAIT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls predicate (may be async) until true; fails after ms. */
export async function waitUntil(predicate, what, ms = WAIT) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() >= deadline) throw new Error(`${what}: not true within ${ms} ms`);
    await sleep(20);
  }
}

/**
 * Collects what a client's listeners deliver, in arrival order; take(n) waits
 * (bounded) for the next n entries.
 */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push = (...item) => {
    this.items.push(item.length === 1 ? item[0] : item);
    for (const wake of this.waiters.splice(0)) wake();
  };

  async take(n, ms = WAIT) {
    const deadline = Date.now() + ms;
    while (this.items.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`wanted ${n} messages, got ${JSON.stringify(this.items)} within ${ms} ms`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.items.splice(0, n);
  }
}

let counter = 0;
/** A fresh name prefix so tests sharing a server never see each other's channels. */
export function uniq(name) {
  return `compat:node:${name.replace(/[^A-Za-z0-9_]/g, "_")}:${process.pid}:${counter++}:`;
}

/** Every byte value, CR LF and NUL included: payloads must come through untouched. */
export const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** True if the server's INFO says redis_version 7.2 or later (ringcast answers as 7.2). */
export async function atLeast72(client) {
  const info = String(await client.info("server"));
  const [major, minor] = (info.match(/^redis_version:(\d+)\.(\d+)/m) ?? []).slice(1).map(Number);
  return major > 7 || (major === 7 && minor >= 2);
}

/** Version of an installed npm package, for test names and reports. */
export function packageVersion(name) {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules", name, "package.json");
  return JSON.parse(readFileSync(file, "utf8")).version;
}
