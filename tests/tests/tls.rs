//! TLS: `tls-port` beside `port`, client certificates, handshakes that fail
//! or never finish, `port 0`, reloading certificates with `CONFIG SET`, and
//! killing TLS connections. Certificates are made at test time (rcgen): a
//! CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate. Clients: redis-cli `--tls`, the `redis` crate with rustls,
//! and a small rustls client for byte-level checks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ringcast_tests::resp::{self, Frame, Parsed};
use ringcast_tests::{Backend, Opts, PATIENCE, RawConn, Server, eventually, ringcast_only};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Files of one test's certificates, in a directory removed on drop.
struct Certs {
    dir: PathBuf,
}

/// A CA and what it signed, as PEM files in `dir`: `<name>-ca.crt`,
/// `<name>-server.{crt,key}`, `<name>-client.{crt,key}`.
fn make_ca(dir: &Path, name: &str) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("ringcast test CA {name}"),
    );
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let write = |file: &str, text: String| std::fs::write(dir.join(format!("{name}-{file}")), text);
    write("ca.crt", ca_cert.pem()).unwrap();
    for (role, sans, usage) in [
        (
            "server",
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "client",
            vec!["client.test".to_string()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        write(&format!("{role}.crt"), cert.pem()).unwrap();
        write(&format!("{role}.key"), key.serialize_pem()).unwrap();
    }
}

impl Certs {
    /// CAs `a` and `b`, each with a server and a client certificate.
    fn new(test: &str) -> Certs {
        // The same test runs on every backend at once: a directory each.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringcast-tls-{test}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_ca(&dir, "a");
        make_ca(&dir, "b");
        Certs { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// Server flags for CA `a`'s server certificate, verifying clients
    /// against CA `a`.
    fn server_opts(&self, backend: Backend, auth_clients: &str) -> Opts {
        Opts::new(backend)
            .tls_port()
            .arg("tls-cert-file", &self.path("a-server.crt"))
            .arg("tls-key-file", &self.path("a-server.key"))
            .arg("tls-ca-cert-file", &self.path("a-ca.crt"))
            .arg("tls-auth-clients", auth_clients)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// redis-cli over TLS; `client` is `Some("a")` to present CA a's client
/// certificate. Returns (success, stdout + stderr).
fn redis_cli(
    certs: &Certs,
    port: u16,
    ca: &str,
    client: Option<&str>,
    args: &[&str],
) -> (bool, String) {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args(["--cacert", &certs.path(&format!("{ca}-ca.crt"))]);
    if let Some(c) = client {
        cmd.args(["--cert", &certs.path(&format!("{c}-client.crt"))])
            .args(["--key", &certs.path(&format!("{c}-client.key"))]);
    }
    let out = cmd.args(args).output().expect("run redis-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("Error"), text)
}

/// A rustls client connection for byte-level checks.
struct TlsConn {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsConn {
    fn connect(certs: &Certs, port: u16, client: Option<&str>) -> std::io::Result<TlsConn> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(certs.path("a-ca.crt")).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match client {
            Some(c) => builder
                .with_client_auth_cert(
                    vec![
                        CertificateDer::from_pem_file(certs.path(&format!("{c}-client.crt")))
                            .unwrap(),
                    ],
                    PrivateKeyDer::from_pem_file(certs.path(&format!("{c}-client.key"))).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // Complete the handshake now (and learn if the server refuses it).
        stream.conn.complete_io(&mut stream.sock)?;
        Ok(TlsConn {
            stream,
            buf: Vec::new(),
        })
    }

    fn send_cmd(&mut self, args: &[&str]) -> std::io::Result<()> {
        self.stream.write_all(&resp::command(args))?;
        self.stream.flush()
    }

    fn read_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            match resp::parse(&self.buf) {
                Parsed::Frame(f, used) => {
                    self.buf.drain(..used);
                    return Ok(f);
                }
                Parsed::Invalid(e) => panic!("not RESP: {e}"),
                Parsed::Incomplete => {}
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn cmd(&mut self, args: &[&str]) -> Frame {
        self.send_cmd(args).expect("send over TLS");
        self.read_frame().expect("reply over TLS")
    }

    /// Whether the server closed the connection (bounded by PATIENCE).
    fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    }
}

/// The confirmation of `SUBSCRIBE channel` as the first subscription (RESP2).
fn subscribed(channel: &str) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(b"subscribe".to_vec()),
        Frame::Bulk(channel.as_bytes().to_vec()),
        Frame::Integer(1),
    ])
}

fn failures(server: &Server) -> u64 {
    server.info_u64("stats", "tls_handshake_failures")
}

fn redis_cli_with_client_certificate_when_required(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("cli");
    let server = Server::start(certs.server_opts(b, "yes"));
    let port = server.tls_port();
    let (ok, out) = redis_cli(&certs, port, "a", Some("a"), &["PING"]);
    assert!(ok && out.trim() == "PONG", "{out}");
    // No client certificate, or one from another CA: refused, and counted.
    assert!(!redis_cli(&certs, port, "a", None, &["PING"]).0);
    eventually("a failed handshake counted", || failures(&server) == 1);
    assert!(!redis_cli(&certs, port, "a", Some("b"), &["PING"]).0);
    eventually("two failed handshakes counted", || failures(&server) == 2);
    // A server certificate the client does not trust: refused by the
    // client (redis-cli tries twice).
    assert!(!redis_cli(&certs, port, "b", Some("a"), &["PING"]).0);
    eventually("the client's refusal counted", || failures(&server) >= 3);
    // The plain port is unaffected, and the TLS client is a client like any other.
    let mut plain = server.conn();
    plain.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn tls_and_plain_clients_publish_to_each_other(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("pubsub");
    let server = Server::start(certs.server_opts(b, "optional"));
    // Subscribers over TLS on both workers, with and without a certificate.
    let mut with_cert = TlsConn::connect(&certs, server.tls_port(), Some("a")).unwrap();
    let mut without = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    for s in [&mut with_cert, &mut without] {
        assert_eq!(s.cmd(&["SUBSCRIBE", "news"]), subscribed("news"));
    }
    let mut plain = server.conn();
    // Large enough to span several TLS records.
    let big = "x".repeat(100_000);
    plain.cmd_expect(&["PUBLISH", "news", "hi"], b":2\r\n");
    plain.cmd_expect(&["PUBLISH", "news", &big], b":2\r\n");
    for s in [&mut with_cert, &mut without] {
        assert_eq!(s.read_frame().unwrap().message().unwrap().1, b"hi");
        assert_eq!(s.read_frame().unwrap().message().unwrap().1, big.as_bytes());
    }
    // And from a TLS publisher to a plain subscriber.
    let mut sub = server.conn();
    sub.sub("subscribe", &["tls-news"], &[1]);
    let mut publisher = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    let reply = publisher.cmd(&["PUBLISH", "tls-news", "from tls"]);
    assert_eq!(reply, Frame::Integer(1));
    sub.expect_message("tls-news", "from tls");
}

/// A TLS session stays with its worker: a TLS publisher whose subscriber
/// is on the other worker keeps publishing from where it is, and every
/// message arrives.
fn a_tls_publisher_stays_on_its_worker(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("stay");
    let server = Server::start(certs.server_opts(b, "optional").migrate_connections());
    let mut sub = ringcast_tests::connect_on_worker(&server, 1);
    sub.sub("SUBSCRIBE", &["c"], &[1]);
    let on_worker = |c: &mut TlsConn| {
        let info = c.cmd(&["CLIENT", "INFO"]).text();
        info.split_whitespace().any(|f| f == "io-thread=0")
    };
    let mut publisher = (0..8)
        .map(|_| TlsConn::connect(&certs, server.tls_port(), None).unwrap())
        .find_map(|mut c| on_worker(&mut c).then_some(c))
        .expect("a TLS connection on worker 0");
    for i in 0..300 {
        assert_eq!(
            publisher.cmd(&["PUBLISH", "c", &i.to_string()]),
            Frame::Integer(1)
        );
    }
    for i in 0..300 {
        sub.expect_message("c", &i.to_string());
    }
    assert!(on_worker(&mut publisher), "it stayed on worker 0");
    assert_eq!(server.info_u64("ringcast", "connections_moved"), 0);
}

fn redis_crate_over_tls(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("crate");
    let server = Server::start(certs.server_opts(b, "yes"));
    let read = |f: &str| std::fs::read(certs.path(f)).unwrap();
    let client = redis::Client::build_with_tls(
        format!("rediss://localhost:{}", server.tls_port()),
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read("a-client.crt"),
                client_key: read("a-client.key"),
            }),
            root_cert: Some(read("a-ca.crt")),
        },
    )
    .unwrap();
    let mut sub_conn = client.get_connection().unwrap();
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.subscribe("crate").unwrap();
    pubsub.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut publisher = client.get_connection().unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("crate")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1);
    let msg = pubsub.get_message().unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
}

fn failed_and_slow_handshakes_are_counted_and_disturb_nobody(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("robust");
    let server = Server::start(certs.server_opts(b, "no").arg("tls-handshake-timeout", "1"));
    let mut sub = server.conn();
    sub.sub("subscribe", &["c"], &[1]);
    // Says nothing: closed once the handshake timeout passes.
    let mut silent = RawConn::connect(server.tls_port());
    // Garbage, and a plain RESP request, to the TLS port: closed at once.
    let mut garbage = RawConn::connect(server.tls_port());
    garbage.send(b"\x16\x03\x01\x00\x05hello");
    let mut plain_to_tls = RawConn::connect(server.tls_port());
    plain_to_tls.send(&resp::command(&["PING"]));
    // Meanwhile the others go on.
    let mut publisher = server.conn();
    publisher.cmd_expect(&["PUBLISH", "c", "during"], b":1\r\n");
    sub.expect_message("c", "during");
    let mut tls = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    assert_eq!(tls.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
    garbage.drain_until_closed();
    plain_to_tls.drain_until_closed();
    silent.drain_until_closed();
    eventually("three failed handshakes counted", || failures(&server) == 3);
    publisher.cmd_expect(&["PUBLISH", "c", "after"], b":1\r\n");
    sub.expect_message("c", "after");
    assert_eq!(tls.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
}

fn handshaking_connections_take_client_slots(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("slots");
    let server = Server::start(
        certs
            .server_opts(b, "no")
            .maxclients(2)
            .arg("tls-handshake-timeout", "4"),
    );
    let mut tls = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    assert_eq!(tls.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
    // A connection still in its handshake holds the second slot.
    let mut silent = RawConn::connect(server.tls_port());
    // Probes go to the TLS port too: its one acceptor takes connections in
    // order, so a probe is admitted only once the silent one was.
    let refused = |server: &Server| {
        let mut c = RawConn::connect(server.tls_port());
        matches!(
            c.try_read_frame(Duration::from_millis(300)),
            Ok(Frame::Error(e)) if String::from_utf8_lossy(&e).contains("max number of clients")
        )
    };
    eventually("both slots taken", || refused(&server));
    // Its handshake times out, and the slot is free again.
    silent.drain_until_closed();
    eventually("the slot is given back", || !refused(&server));
    assert_eq!(tls.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
}

fn client_kill_and_output_limit_close_tls_connections_at_once(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("kill");
    let server = Server::start(certs.server_opts(b, "no").pubsub_output_limit("256kb 0 0"));
    // CLIENT KILL of a TLS client.
    let mut victim = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    let id = match victim.cmd(&["CLIENT", "ID"]) {
        Frame::Integer(id) => id,
        other => panic!("CLIENT ID: {other:?}"),
    };
    let mut admin = server.conn();
    admin.cmd_expect(&["CLIENT", "KILL", "ID", &id.to_string()], b":1\r\n");
    assert!(victim.closed(), "killed TLS client still open");
    // A TLS subscriber that stops reading is cut off at its output limit.
    let mut slow = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    assert_eq!(slow.cmd(&["SUBSCRIBE", "flood"]), subscribed("flood"));
    let payload = "y".repeat(64 * 1024);
    let mut publisher = server.conn();
    let mut sent = 0;
    while server.info_u64("stats", "client_output_buffer_limit_disconnections") == 0 {
        publisher.cmd(&["PUBLISH", "flood", &payload]);
        sent += 1;
        assert!(sent < 10_000, "slow TLS subscriber never disconnected");
    }
    assert!(slow.closed(), "TLS subscriber over its limit still open");
    publisher.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn port_0_turns_the_plain_listener_off(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("port0");
    let server = Server::start(certs.server_opts(b, "no").arg("port", "0"));
    let mut tls = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    assert_eq!(tls.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "plain port still listening"
    );
    let log = server.log();
    assert!(log.contains("Ready to accept connections tls"), "{log}");
    assert!(!log.contains("Ready to accept connections tcp"), "{log}");
}

fn config_set_reloads_certificates_for_new_connections(b: Backend) {
    ringcast_only!("TLS tests start ringcast with its TLS flags");
    let certs = Certs::new("reload");
    let server = Server::start(certs.server_opts(b, "no"));
    let port = server.tls_port();
    let mut old = TlsConn::connect(&certs, port, None).unwrap();
    let mut admin = server.conn();
    let get = |admin: &mut RawConn, name: &str| admin.cmd(&["CONFIG", "GET", name]);
    // A file that does not exist: Redis's error, and nothing changes.
    admin.cmd_expect(
        &["CONFIG", "SET", "tls-cert-file", "/nonexistent/server.crt"],
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n",
    );
    assert_eq!(
        get(&mut admin, "tls-cert-file"),
        Frame::Array(vec![
            Frame::Bulk(b"tls-cert-file".to_vec()),
            Frame::Bulk(certs.path("a-server.crt").into_bytes()),
        ])
    );
    // A certificate without its key: refused as well.
    let reply = admin.cmd(&[
        "CONFIG",
        "SET",
        "tls-cert-file",
        &certs.path("b-server.crt"),
    ]);
    assert!(matches!(reply, Frame::Error(_)), "{reply:?}");
    assert!(redis_cli(&certs, port, "a", None, &["PING"]).0);
    // Certificate and key together: new connections get CA b's certificate.
    admin.cmd_expect(
        &[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &certs.path("b-server.crt"),
            "tls-key-file",
            &certs.path("b-server.key"),
        ],
        b"+OK\r\n",
    );
    let (ok, out) = redis_cli(&certs, port, "b", None, &["PING"]);
    assert!(ok, "{out}");
    assert!(!redis_cli(&certs, port, "a", None, &["PING"]).0);
    // The connection made before keeps working.
    assert_eq!(old.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
    // Requiring client certificates from now on.
    admin.cmd_expect(&["CONFIG", "SET", "tls-auth-clients", "yes"], b"+OK\r\n");
    assert!(!redis_cli(&certs, port, "b", None, &["PING"]).0);
    assert!(redis_cli(&certs, port, "b", Some("a"), &["PING"]).0);
}

ringcast_tests::backend_tests!(
    redis_cli_with_client_certificate_when_required,
    tls_and_plain_clients_publish_to_each_other,
    a_tls_publisher_stays_on_its_worker,
    redis_crate_over_tls,
    failed_and_slow_handshakes_are_counted_and_disturb_nobody,
    handshaking_connections_take_client_slots,
    client_kill_and_output_limit_close_tls_connections_at_once,
    port_0_turns_the_plain_listener_off,
    config_set_reloads_certificates_for_new_connections,
);

/// Not per backend: the server does not start.
#[test]
fn a_missing_or_bad_certificate_file_stops_startup_naming_it() {
    ringcast_only!("ringcast's startup errors");
    let certs = Certs::new("startup");
    let bin = ringcast_bin();
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(["--port", "0", "--tls-port", "0", "--threads", "1"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let missing = "/nonexistent/ringcast-server.crt";
    let key = certs.path("a-server.key");
    let (ok, err) = run(&[
        "--tls-port",
        "1",
        "--tls-cert-file",
        missing,
        "--tls-key-file",
        &key,
        "--tls-auth-clients",
        "no",
    ]);
    assert!(!ok);
    assert!(
        err.contains("Failed to configure TLS") && err.contains(missing),
        "{err}"
    );
    // A key that is not a key.
    let cert = certs.path("a-server.crt");
    let (ok, err) = run(&[
        "--tls-port",
        "1",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &cert,
        "--tls-auth-clients",
        "no",
    ]);
    assert!(!ok);
    assert!(
        err.contains("Failed to load private key") && err.contains(&cert),
        "{err}"
    );
    // Client authentication without a CA.
    let (ok, err) = run(&[
        "--tls-port",
        "1",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
    ]);
    assert!(!ok);
    assert!(err.contains("tls-ca-cert-file"), "{err}");
    // Neither port.
    let (ok, err) = run(&[]);
    assert!(!ok);
    assert!(err.contains("Configured to not listen anywhere"), "{err}");
}

#[test]
fn an_encrypted_pkcs8_key_loads_with_its_passphrase() {
    ringcast_only!("ringcast's startup");
    let certs = Certs::new("encrypted");
    let encrypted = certs.path("a-server.enc.key");
    let made = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret",
        ])
        .args(["-in", &certs.path("a-server.key"), "-out", &encrypted])
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no openssl command to encrypt a key with");
        return;
    }
    let opts = |pass: &str| {
        Opts::new(Backend::Epoll)
            .tls_port()
            .arg("tls-cert-file", &certs.path("a-server.crt"))
            .arg("tls-key-file", &encrypted)
            .arg("tls-key-file-pass", pass)
            .arg("tls-auth-clients", "no")
    };
    let server = Server::start(opts("s3cret"));
    let mut tls = TlsConn::connect(&certs, server.tls_port(), None).unwrap();
    assert_eq!(tls.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
    drop(server);
    let out = Command::new(ringcast_bin())
        .args(["--port", "0", "--tls-port", "1", "--threads", "1"])
        .args(["--tls-cert-file", &certs.path("a-server.crt")])
        .args(["--tls-key-file", &encrypted, "--tls-key-file-pass", "wrong"])
        .args(["--tls-auth-clients", "no"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("tls-key-file-pass") && err.contains(&encrypted),
        "{err}"
    );
}

fn ringcast_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("RINGCAST_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("ringcast"))
        .unwrap()
}
