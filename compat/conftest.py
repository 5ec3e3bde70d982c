"""Fixtures shared by the compatibility suite: servers, clients, bounded waits.

`server` is the plain server under test. compat/run.sh starts it itself and
passes its port in COMPAT_PORT; run directly under pytest, the fixture starts
one. `server_threads2` (two workers) and `server_auth` (requirepass) are always
started here, as is `restartable_server`, which a test may stop and start.
"""

from __future__ import annotations

import itertools
import os
import re

import pytest
import redis

import harness
from harness import WAIT

# The cluster scenarios' fixtures and the `cluster` marker (`-m cluster`).
pytest_plugins = ["cluster_harness"]

PASSWORD = "compat-secret"


class ExternalServer:
    """A server this process did not start (compat/run.sh owns it)."""

    def __init__(self, port: int):
        self.port = port
        self.requirepass = None


def pytest_report_header(config):
    return f"compat target: {harness.target()}"


@pytest.fixture(scope="session")
def server():
    port = os.environ.get("COMPAT_PORT")
    if port:
        yield ExternalServer(int(port))
        return
    srv = harness.Server().start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def server_threads2():
    srv = harness.Server(threads=2).start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def server_auth():
    srv = harness.Server(requirepass=PASSWORD).start()
    yield srv
    srv.cleanup()


@pytest.fixture(params=["single", "threads2"])
def any_server(request):
    """The plain server and the two-worker one: cross-worker delivery must not differ."""
    return request.getfixturevalue("server" if request.param == "single" else "server_threads2")


@pytest.fixture
def restartable_server():
    srv = harness.Server().start()
    yield srv
    srv.cleanup()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


_names = itertools.count()


@pytest.fixture
def uniq(request):
    """A fresh name prefix so tests sharing a server never see each other's channels."""
    # Glob-special characters ([ ] ? *) would break PUBSUB CHANNELS <prefix>*.
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    return f"compat:{name}:{next(_names)}:"


@pytest.fixture
def connect(protocol):
    """Factory for sync clients of the parametrised protocol; all closed afterwards."""
    made = []

    def make(srv, **kw):
        kw.setdefault("protocol", protocol)
        kw.setdefault("socket_timeout", WAIT)
        kw.setdefault("socket_connect_timeout", WAIT)
        if srv.requirepass is not None:
            kw.setdefault("password", srv.requirepass)
        client = redis.Redis(host="127.0.0.1", port=srv.port, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
