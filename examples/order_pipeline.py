#!/usr/bin/env python3
"""An event-driven order pipeline on Redis pub/sub, written against redis-py.

Separate processes react to events on channels and patterns:

  producer  publishes `orders.created` for every order and `orders.cancelled`
            for some, then `shutdown` on the control channel
  worker    PSUBSCRIBEs `orders.*`, handles the orders of its partition
            (order id modulo the number of workers), publishes each outcome on
            `results`, and `workers.done` when told to shut down
  auditor   SUBSCRIBEs `results`, `workers.done` and the control channel; once
            every worker is done it checks that every event was processed
            exactly once, by the right worker, in order, and prints a JSON
            summary
  run       starts an auditor, the workers and a producer as processes of
            their own and waits for all of them

Every channel name starts with --prefix, so several pipelines can share a
server. Pub/sub keeps no messages for absent subscribers, so the producer
first waits (PUBSUB NUMSUB) until the workers and the auditor listen. One
publisher's messages reach each subscriber in the order published, which is
what lets a worker finish all its orders before it sees `shutdown`.

  python examples/order_pipeline.py run --port 6379 --orders 500 --workers 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import redis

CANCEL_EVERY = 5  # every 5th order is cancelled after it was created


def channels(prefix: str) -> dict[str, str]:
    return {
        "orders": prefix + "orders.*",
        "created": prefix + "orders.created",
        "cancelled": prefix + "orders.cancelled",
        "results": prefix + "results",
        "done": prefix + "workers.done",
        "control": prefix + "control",
    }


def connect(args) -> redis.Redis:
    return redis.Redis(
        host=args.host,
        port=args.port,
        password=args.password,
        protocol=args.protocol,
        socket_timeout=args.timeout,
        socket_connect_timeout=args.timeout,
        decode_responses=True,
    )


def producer(args) -> int:
    ch = channels(args.prefix)
    r = connect(args)
    # Wait for every worker (on the control channel, subscribed after orders.*)
    # and the auditor (on results) before publishing anything.
    deadline = time.monotonic() + args.timeout
    while True:
        counts = dict(r.pubsub_numsub(ch["control"], ch["results"]))
        if counts[ch["control"]] >= args.workers + 1 and counts[ch["results"]] >= 1:
            break
        if time.monotonic() > deadline:
            print(f"producer: listeners not ready after {args.timeout}s: {counts}", file=sys.stderr)
            return 2
        time.sleep(0.02)

    cancelled = []
    with r.pipeline(transaction=False) as pipe:
        for order in range(args.orders):
            event = {"order": order, "items": 1 + order % 4, "unit_price": 250 + order % 7}
            pipe.publish(ch["created"], json.dumps(event))
            if order % CANCEL_EVERY == CANCEL_EVERY - 1:
                pipe.publish(ch["cancelled"], json.dumps({"order": order}))
                cancelled.append(order)
        receivers = pipe.execute()
    r.publish(ch["control"], json.dumps({"shutdown": True, "orders": args.orders, "cancelled": cancelled}))
    r.close()
    # Every event must have reached every worker (each PSUBSCRIBEd to orders.*).
    off = [n for n in receivers if n != args.workers]
    if off:
        print(f"producer: {len(off)} events did not reach exactly {args.workers} workers", file=sys.stderr)
        return 1
    return 0


def worker(args) -> int:
    ch = channels(args.prefix)
    r = connect(args)  # for publishing; the PubSub object has a connection of its own
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    processed = 0
    finished = threading.Event()

    def on_order(message):
        nonlocal processed
        event = json.loads(message["data"])
        order = event["order"]
        if order % args.workers != args.index:
            return  # another worker's partition
        kind = message["channel"].rsplit(".", 1)[1]
        if kind == "created":
            outcome = {"outcome": "accepted", "total": event["items"] * event["unit_price"]}
        else:
            outcome = {"outcome": "refunded"}
        r.publish(ch["results"], json.dumps({"order": order, "event": kind, "worker": args.index, **outcome}))
        processed += 1

    def on_control(message):
        if json.loads(message["data"]).get("shutdown"):
            # Published after every result of this worker, so the auditor sees them first.
            r.publish(ch["done"], json.dumps({"worker": args.index, "processed": processed}))
            finished.set()

    pubsub.psubscribe(**{ch["orders"]: on_order})
    pubsub.subscribe(**{ch["control"]: on_control})
    thread = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
    ok = finished.wait(args.timeout)
    thread.stop()
    thread.join(args.timeout)
    pubsub.close()
    r.close()
    if not ok:
        print(f"worker {args.index}: no shutdown within {args.timeout}s", file=sys.stderr)
        return 1
    return 0


def auditor(args) -> int:
    ch = channels(args.prefix)
    r = connect(args)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(ch["results"], ch["done"], ch["control"])
    results: list[dict] = []
    done: dict[int, int] = {}
    plan = None
    deadline = time.monotonic() + args.timeout
    while plan is None or len(done) < args.workers:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        message = pubsub.get_message(timeout=min(left, 1.0))
        if message is None:
            continue
        data = json.loads(message["data"])
        if message["channel"] == ch["results"]:
            results.append(data)
        elif message["channel"] == ch["done"]:
            done[data["worker"]] = data["processed"]
        elif data.get("shutdown"):
            plan = data
    pubsub.close()
    r.close()

    expected = set()
    if plan is not None:
        expected = {(o, "created") for o in range(plan["orders"])} | {(o, "cancelled") for o in plan["cancelled"]}
    seen: dict[tuple[int, str], int] = {}
    wrong_worker = out_of_order = 0
    for result in results:
        key = (result["order"], result["event"])
        seen[key] = seen.get(key, 0) + 1
        wrong_worker += result["worker"] != result["order"] % args.workers
        out_of_order += result["event"] == "cancelled" and (result["order"], "created") not in seen
    summary = {
        "orders": plan["orders"] if plan else None,
        "events": len(expected),
        "results": len(results),
        "missing": len(expected - seen.keys()),
        "unexpected": len(seen.keys() - expected),
        "duplicates": sum(n - 1 for n in seen.values()),
        "wrong_worker": wrong_worker,
        "out_of_order": out_of_order,
        "per_worker": {str(w): n for w, n in sorted(done.items())},
        "workers_done": len(done),
    }
    summary["ok"] = (
        plan is not None
        and len(done) == args.workers
        and summary["results"] == summary["events"] == sum(done.values())
        and not (summary["missing"] or summary["unexpected"] or summary["duplicates"])
        and not (wrong_worker or out_of_order)
    )
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


def run(args) -> int:
    """Start the auditor, the workers and the producer as processes; wait for all of them."""
    common = [
        "--host", args.host, "--port", str(args.port), "--protocol", str(args.protocol),
        "--prefix", args.prefix, "--workers", str(args.workers), "--timeout", str(args.timeout),
    ]  # fmt: skip
    env = dict(os.environ)
    if args.password is not None:
        env["REDISCLI_AUTH"] = args.password  # kept off the command line
    me = [sys.executable, os.path.abspath(__file__)]
    procs = [subprocess.Popen(me + ["auditor", *common], stdout=subprocess.PIPE, text=True, env=env)]
    procs += [subprocess.Popen(me + ["worker", *common, "--index", str(i)], env=env) for i in range(args.workers)]
    procs.append(subprocess.Popen(me + ["producer", *common, "--orders", str(args.orders)], env=env))
    deadline = time.monotonic() + args.timeout + 5
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    summary = procs[0].stdout.read().strip()
    print(summary)
    names = ["auditor"] + [f"worker {i}" for i in range(args.workers)] + ["producer"]
    failed = [f"{name} exited {code}" for name, code in zip(names, codes) if code != 0]
    if failed:
        print("run: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["producer", "worker", "auditor", "run"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--protocol", type=int, choices=[2, 3], default=2, help="RESP version")
    parser.add_argument("--prefix", default="shop:", help="prefix of every channel name")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--index", type=int, default=0, help="worker: which partition")
    parser.add_argument("--orders", type=int, default=500, help="producer: how many orders")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds any one process may wait")
    args = parser.parse_args(argv)
    args.password = os.environ.get("REDISCLI_AUTH")  # as redis-cli takes it
    return {"producer": producer, "worker": worker, "auditor": auditor, "run": run}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
