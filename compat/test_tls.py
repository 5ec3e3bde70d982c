"""redis-py over TLS (`ssl=True`), with and without a client certificate.

Certificates are made at test time with the `openssl` command (a CA, a
server certificate for 127.0.0.1 and localhost, a client certificate). The
server listens on `port` and `tls-port` side by side; the same flags start
redis-server's TLS with COMPAT_TARGET=redis.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
import redis

from harness import WAIT, Server, free_port, next_message

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command to make certificates")


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=compat CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for role in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{role}.key", "-out", f"{role}.csr", "-subj", f"/CN={role}", cwd=d)
        _openssl(
            "x509", "-req", "-in", f"{role}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{role}.crt", "-days", "2", "-extfile", f"{role}.ext", cwd=d,
        )
    return d


def _tls_server(certs, auth_clients: str) -> Server:
    tls_port = free_port()
    srv = Server(
        threads=2 if auth_clients != "yes" else None,
        extra=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs / "server.crt"),
            "--tls-key-file", str(certs / "server.key"),
            "--tls-ca-cert-file", str(certs / "ca.crt"),
            "--tls-auth-clients", auth_clients,
        ],
    )
    srv.tls_port = tls_port
    return srv.start()


@pytest.fixture(scope="module")
def required(certs):
    srv = _tls_server(certs, "yes")
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def optional(certs):
    srv = _tls_server(certs, "optional")
    yield srv
    srv.cleanup()


def _client(srv, certs, with_cert: bool, protocol: int = 2) -> redis.Redis:
    kw = dict(ssl=True, ssl_ca_certs=str(certs / "ca.crt"), ssl_cert_reqs=ssl.CERT_REQUIRED)
    if with_cert:
        kw.update(ssl_certfile=str(certs / "client.crt"), ssl_keyfile=str(certs / "client.key"))
    return redis.Redis(
        host="localhost", port=srv.tls_port, protocol=protocol, socket_timeout=WAIT, socket_connect_timeout=WAIT, **kw
    )


@pytest.mark.parametrize("protocol", [2, 3])
def test_client_certificate_subscribe_and_publish_over_tls(required, certs, protocol):
    tls = _client(required, certs, with_cert=True, protocol=protocol)
    assert tls.ping() is True
    p = tls.pubsub()
    p.subscribe("tls-news")
    assert next_message(p)["type"] == "subscribe"
    plain = redis.Redis(host="127.0.0.1", port=required.port, socket_timeout=WAIT)
    assert plain.publish("tls-news", "x" * 50_000) == 1
    assert next_message(p)["data"] == b"x" * 50_000
    assert tls.publish("tls-news", "from tls") == 1
    assert next_message(p)["data"] == b"from tls"
    p.close()
    tls.close()
    plain.close()


def test_missing_client_certificate_is_refused_when_required(required, certs):
    tls = _client(required, certs, with_cert=False)
    with pytest.raises((redis.ConnectionError, ssl.SSLError, OSError)):
        tls.ping()
    # Nobody else is disturbed.
    plain = redis.Redis(host="127.0.0.1", port=required.port, socket_timeout=WAIT)
    assert plain.ping() is True
    plain.close()


def test_without_client_certificate_when_optional(optional, certs):
    tls = _client(optional, certs, with_cert=False)
    assert tls.ping() is True
    p = tls.pubsub()
    p.subscribe("opt")
    assert next_message(p)["type"] == "subscribe"
    with_cert = _client(optional, certs, with_cert=True)
    assert with_cert.publish("opt", "hello") == 1
    assert next_message(p)["data"] == b"hello"
    cfg = with_cert.config_get("tls-*")
    assert cfg["tls-auth-clients"] == "optional"
    assert cfg["tls-port"] == str(optional.tls_port)
    p.close()
    tls.close()
    with_cert.close()
