"""The programs in examples/ run against the server under test.

order_pipeline.py starts an auditor, several workers and a producer as separate
processes (redis-py: PSUBSCRIBE with handlers in run_in_thread, SUBSCRIBE with
get_message, pipelined PUBLISH, PUBSUB NUMSUB); every order event must be
processed exactly once, by the worker owning its partition, in order.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import REPO_ROOT

PIPELINE = REPO_ROOT / "examples" / "order_pipeline.py"
ORDERS, WORKERS, CANCEL_EVERY = 300, 3, 5


@pytest.mark.parametrize(
    "where, protocol", [("single", 2), ("threads2", 3)], ids=["single-resp2", "threads2-resp3"]
)
def test_order_pipeline_processes_every_event_exactly_once(request, uniq, where, protocol):
    srv = request.getfixturevalue("server" if where == "single" else "server_threads2")
    cmd = [
        sys.executable, str(PIPELINE), "run", "--port", str(srv.port), "--protocol", str(protocol),
        "--prefix", uniq, "--orders", str(ORDERS), "--workers", str(WORKERS), "--timeout", "20",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
    assert done.returncode == 0, f"stdout: {done.stdout}\nstderr: {done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])

    events = ORDERS + ORDERS // CANCEL_EVERY
    assert summary["ok"] is True
    assert (summary["orders"], summary["events"], summary["results"]) == (ORDERS, events, events)
    assert (summary["missing"], summary["unexpected"], summary["duplicates"]) == (0, 0, 0)
    assert (summary["wrong_worker"], summary["out_of_order"]) == (0, 0)
    # Each worker handled exactly its partition: the orders with id % WORKERS == index.
    want = {
        str(w): sum(1 + (o % CANCEL_EVERY == CANCEL_EVERY - 1) for o in range(ORDERS) if o % WORKERS == w)
        for w in range(WORKERS)
    }
    assert summary["per_worker"] == want
