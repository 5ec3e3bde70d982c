//! TLS with rustls: building the server's TLS context from the `tls-*`
//! parameters, reloading it on `CONFIG SET`, the handshake, and the two
//! halves of an established TLS connection.
//!
//! Why rustls's sans-IO `ServerConnection` driven by ringcast's own loops,
//! and not the `monoio-rustls` stream: a connection here is split into a
//! reader task and a writer task that run at the same time, and
//! `monoio-rustls` splits its stream by sharing one `&mut` between both
//! halves, never sends from the reading half what reading made rustls want
//! to send (alerts, key updates), and hides the socket that `CLIENT KILL`
//! and output-limit kills shut down. Driving rustls directly keeps one
//! owner of the session per connection (an `Rc<RefCell<..>>` never borrowed
//! across an await), one task that writes to the socket (the writer, woken
//! by the reader when rustls has records to send), the same socket and
//! `shutdown(2)` as a plain connection, and our own handshake deadline and
//! failure count. It works the same on io_uring and on epoll, since it only
//! uses monoio's owned-buffer reads and writes.

use std::cell::{Cell, RefCell};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use ringcast_core::config::{Config, TlsAuthClients, TlsConfig};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite};

/// Bytes of ciphertext read from the socket at a time: one full TLS record
/// and its header.
const TLS_READ: usize = 16 * 1024 + 512;

/// The TLS context new connections use, and the settings it was built
/// from. `CONFIG SET` builds a new one (through the configuration's
/// `TlsCheck`); the acceptor takes the current one for each connection, so
/// connections already established keep theirs.
pub(crate) struct TlsContext {
    current: Mutex<(TlsConfig, Arc<ServerConfig>)>,
}

impl TlsContext {
    /// Build the context for the configuration the server starts with.
    pub(crate) fn new(config: &TlsConfig) -> Result<Arc<TlsContext>, String> {
        let built = build(config)?;
        Ok(Arc::new(TlsContext {
            current: Mutex::new((config.clone(), built)),
        }))
    }

    /// `CONFIG SET` of a TLS parameter: build from the new settings, and
    /// keep the result for new connections; on error keep the old context
    /// and log why (the client is told to check the log, as in Redis).
    pub(crate) fn reload(&self, config: &Config) -> Result<(), String> {
        match build(&config.tls) {
            Ok(built) => {
                *self.lock() = (config.tls.clone(), built);
                tracing::info!("TLS configuration reloaded");
                Ok(())
            }
            Err(why) => {
                tracing::warn!("{why}");
                Err(why)
            }
        }
    }

    /// The context for a connection accepted now under `config`. A
    /// `CONFIG SET` that was checked but then failed on another parameter
    /// leaves a context built for settings that never went live: rebuild
    /// from the live ones (keeping the old context if that fails now).
    pub(crate) fn for_connection(&self, config: &Config) -> Arc<ServerConfig> {
        let mut current = self.lock();
        if current.0 != config.tls {
            match build(&config.tls) {
                Ok(built) => *current = (config.tls.clone(), built),
                Err(why) => {
                    tracing::warn!("{why}; new TLS connections keep the previous configuration");
                    current.0 = config.tls.clone();
                }
            }
        }
        current.1.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (TlsConfig, Arc<ServerConfig>)> {
        // A panic while holding the lock cannot leave the pair half-written.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Build rustls's server configuration from the `tls-*` parameters. Errors
/// say what failed and name the file, in the words of Redis's log.
pub(crate) fn build(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    if tls.cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if tls.key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    if tls.auth_clients != TlsAuthClients::No
        && tls.ca_cert_file.is_empty()
        && tls.ca_cert_dir.is_empty()
    {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is enabled!".into());
    }
    let versions = protocols(&tls.protocols)?;
    let provider = Arc::new(provider(tls)?);
    let certs = load_certs(&tls.cert_file)
        .map_err(|e| format!("Failed to load certificate: {}: {e}", tls.cert_file))?;
    let key = load_key(&tls.key_file, &tls.key_file_pass)
        .map_err(|e| format!("Failed to load private key: {}: {e}", tls.key_file))?;
    let roots =
        if tls.ca_cert_file.is_empty() && tls.ca_cert_dir.is_empty() {
            None
        } else {
            Some(load_roots(tls).map_err(|e| {
                format!("Failed to configure CA certificate(s) file/directory: {e}")
            })?)
        };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS protocols and ciphers: {e}"))?;
    let builder = match (tls.auth_clients, roots) {
        (TlsAuthClients::No, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == TlsAuthClients::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("Failed to configure client verification: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "Failed to load private key: {}: {e} (with certificate {})",
            tls.key_file, tls.cert_file
        )
    })?;
    config.ignore_client_order = tls.prefer_server_ciphers;
    if tls.session_caching {
        config.session_storage = ServerSessionMemoryCache::new(tls.session_cache_size.max(1));
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// `tls-protocols`: Redis's names, case-insensitive. rustls speaks TLS 1.2
/// and 1.3 only.
fn protocols(spec: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut versions = Vec::new();
    for word in spec.split_whitespace() {
        let version = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!(
                    "Invalid tls-protocols specified: {word} is not supported (ringcast speaks TLSv1.2 and TLSv1.3)."
                ));
            }
            _ => {
                return Err("Invalid tls-protocols specified. Use a combination of 'TLSv1.2' and 'TLSv1.3'.".into());
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        versions = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    Ok(versions)
}

/// OpenSSL's names of the TLS 1.2 suites rustls has, with rustls's names.
const TLS12_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The name rustls gives a suite (`TLS13_AES_128_GCM_SHA256`).
fn rustls_name(suite: &SupportedCipherSuite) -> String {
    format!("{:?}", suite.suite())
}

/// Whether `word` (an OpenSSL or IANA name) names `suite`.
fn names(word: &str, suite: &SupportedCipherSuite) -> bool {
    let ours = rustls_name(suite);
    let word = word.to_ascii_uppercase();
    if word == ours {
        return true;
    }
    match suite {
        // OpenSSL: TLS_AES_128_GCM_SHA256; rustls: TLS13_AES_128_GCM_SHA256.
        SupportedCipherSuite::Tls13(_) => word
            .strip_prefix("TLS_")
            .is_some_and(|rest| ours.strip_prefix("TLS13_") == Some(rest)),
        SupportedCipherSuite::Tls12(_) => TLS12_NAMES
            .iter()
            .any(|(openssl, iana)| *openssl == word && *iana == ours),
    }
}

/// The ring provider with the cipher suites `tls-ciphers` (TLS 1.2) and
/// `tls-ciphersuites` (TLS 1.3) allow, in the order given (which is the
/// server's preference with `tls-prefer-server-ciphers yes`).
fn provider(tls: &TlsConfig) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    let all = std::mem::take(&mut provider.cipher_suites);
    let pick = |spec: &str,
                param: &str,
                tls13: bool|
     -> Result<Vec<SupportedCipherSuite>, String> {
        let of_version = all
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13);
        if spec.trim().is_empty() {
            return Ok(of_version.copied().collect());
        }
        let mut picked = Vec::new();
        for word in spec.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
            let Some(suite) = of_version.clone().find(|s| names(word, s)) else {
                let known: Vec<String> = of_version.clone().map(rustls_name).collect();
                return Err(format!(
                    "Failed to configure {param}: {spec}: unknown cipher suite '{word}' (ringcast knows {})",
                    known.join(", ")
                ));
            };
            if !picked.contains(suite) {
                picked.push(*suite);
            }
        }
        Ok(picked)
    };
    let mut suites = pick(&tls.ciphersuites, "ciphersuites", true)?;
    suites.extend(pick(&tls.ciphers, "ciphers", false)?);
    provider.cipher_suites = suites;
    Ok(provider)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file ({e})"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

/// The private key: PEM PKCS#8, PKCS#1 (RSA) or SEC1 (EC), or encrypted
/// PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2) with `tls-key-file-pass`.
/// OpenSSL's legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`) has no
/// maintained pure-Rust reader: it is refused with how to convert it.
fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = fs::read_to_string(path).map_err(|e| e.to_string())?;
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("the key is encrypted in OpenSSL's legacy PEM format, which ringcast cannot read; convert it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in <key> -out <new key>`".into());
    }
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    if let Some(start) = pem.find(BEGIN) {
        if pass.is_empty() {
            return Err("the key is encrypted and tls-key-file-pass is not set".into());
        }
        let end = pem[start..]
            .find(END)
            .map(|e| start + e + END.len())
            .ok_or("unterminated ENCRYPTED PRIVATE KEY block")?;
        let (_, der) = pkcs8::der::pem::decode_vec(&pem.as_bytes()[start..end])
            .map_err(|e| format!("bad ENCRYPTED PRIVATE KEY block: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| format!("bad encrypted PKCS#8 key: {e}"))?;
        let plain = info.decrypt(pass).map_err(|e| {
            format!("cannot decrypt the key (wrong tls-key-file-pass or unsupported cipher): {e}")
        })?;
        return Ok(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec()).into());
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("no PEM private key in it ({e})"))
}

/// The CAs of `tls-ca-cert-file` and every certificate file in
/// `tls-ca-cert-dir` (files without a certificate are skipped).
fn load_roots(tls: &TlsConfig) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, from: &str| {
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{from}: bad CA certificate: {e}"))?;
        }
        Ok::<_, String>(())
    };
    if !tls.ca_cert_file.is_empty() {
        let certs =
            load_certs(&tls.ca_cert_file).map_err(|e| format!("{}: {e}", tls.ca_cert_file))?;
        add(certs, &tls.ca_cert_file)?;
    }
    if !tls.ca_cert_dir.is_empty() {
        let dir = Path::new(&tls.ca_cert_dir);
        let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", tls.ca_cert_dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = path.display().to_string();
            if let Ok(certs) = load_certs(&name) {
                add(certs, &name)?;
            }
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate found".into());
    }
    Ok(roots)
}

/// Why a handshake did not complete.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    Io(io::Error),
    /// The peer closed before the handshake completed.
    Eof,
    Tls(rustls::Error),
    TimedOut,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::Eof => f.write_str("connection closed during the handshake"),
            HandshakeError::Tls(e) => write!(f, "{e}"),
            HandshakeError::TimedOut => f.write_str("handshake timed out"),
        }
    }
}

/// Complete the server side of the handshake on `stream` within `limit`.
/// On a TLS error the alert rustls prepared is sent before giving up.
pub(crate) async fn handshake<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    conn: &mut ServerConnection,
    limit: Duration,
) -> Result<(), HandshakeError> {
    match monoio::time::timeout(limit, drive_handshake(stream, conn)).await {
        Ok(r) => r,
        Err(_) => Err(HandshakeError::TimedOut),
    }
}

async fn drive_handshake<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    conn: &mut ServerConnection,
) -> Result<(), HandshakeError> {
    let mut rbuf = Vec::with_capacity(TLS_READ);
    loop {
        send_pending(stream, conn)
            .await
            .map_err(HandshakeError::Io)?;
        if !conn.is_handshaking() {
            return Ok(());
        }
        rbuf.clear();
        let (res, b) = stream.read(rbuf).await;
        rbuf = b;
        match res {
            Ok(0) => return Err(HandshakeError::Eof),
            Ok(_) => {}
            Err(e) => return Err(HandshakeError::Io(e)),
        }
        if let Err(e) = feed(conn, &rbuf) {
            // Best effort: tell the client why (an alert), then close.
            let _ = send_pending(stream, conn).await;
            return Err(match e {
                Fed::Tls(e) => HandshakeError::Tls(e),
                Fed::Io(e) => HandshakeError::Io(e),
            });
        }
    }
}

/// Write everything rustls has to send.
async fn send_pending<W: AsyncWriteRent>(
    wr: &mut W,
    conn: &mut ServerConnection,
) -> io::Result<()> {
    while conn.wants_write() {
        let mut out = Vec::new();
        conn.write_tls(&mut out)?;
        let (res, _) = wr.write_all(out).await;
        res?;
    }
    Ok(())
}

enum Fed {
    Io(io::Error),
    Tls(rustls::Error),
}

/// Give rustls ciphertext read from the socket and process it.
fn feed(conn: &mut ServerConnection, mut data: &[u8]) -> Result<(), Fed> {
    while !data.is_empty() {
        conn.read_tls(&mut data).map_err(Fed::Io)?;
        conn.process_new_packets().map_err(Fed::Tls)?;
    }
    Ok(())
}

/// One established TLS session, shared by the connection's reader and
/// writer tasks (never borrowed across an await).
pub(crate) struct TlsSession {
    conn: RefCell<ServerConnection>,
    /// The writer's waker, to send records that reading produced.
    writer: Cell<Option<Waker>>,
}

impl TlsSession {
    pub(crate) fn new(conn: ServerConnection) -> Rc<TlsSession> {
        Rc::new(TlsSession {
            conn: RefCell::new(conn),
            writer: Cell::new(None),
        })
    }

    /// Whether rustls has records to send that no write of output carried
    /// (after reading: key updates, alerts); if not, `waker` is woken when
    /// it has.
    pub(crate) fn poll_pending(&self, waker: &Waker) -> bool {
        if self.conn.borrow().wants_write() {
            return true;
        }
        self.writer.set(Some(waker.clone()));
        false
    }

    fn wake_writer(&self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// The reading half of a TLS connection: ciphertext from the socket,
/// plaintext out.
pub(crate) struct TlsReader<R> {
    pub(crate) rd: R,
    pub(crate) session: Rc<TlsSession>,
    raw: Vec<u8>,
}

impl<R: AsyncReadRent> TlsReader<R> {
    pub(crate) fn new(rd: R, session: Rc<TlsSession>) -> Self {
        TlsReader {
            rd,
            session,
            raw: Vec::new(),
        }
    }

    /// Read plaintext into `out` (as many bytes as it has room for, at
    /// most); `Ok(0)` once the peer closed.
    pub(crate) async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.session.conn.borrow_mut();
                match conn.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            self.raw.clear();
            self.raw.reserve(TLS_READ);
            let (res, raw) = self.rd.read(std::mem::take(&mut self.raw)).await;
            self.raw = raw;
            let n = res?;
            let fed = {
                let mut conn = self.session.conn.borrow_mut();
                if n == 0 {
                    // Peer closed: rustls tells a clean close (close_notify
                    // seen: Ok(0)) from a truncated one (an error).
                    let mut empty: &[u8] = &[];
                    let _ = conn.read_tls(&mut empty);
                    let _ = conn.process_new_packets();
                    return match conn.reader().read(out) {
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                        Err(e) => Err(e),
                    };
                }
                let fed = feed(&mut conn, &self.raw);
                conn.wants_write().then(|| self.session.wake_writer());
                fed
            };
            match fed {
                Ok(()) => {}
                Err(Fed::Io(e)) => return Err(e),
                Err(Fed::Tls(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

/// Encrypt `batch` (plaintext frames) and send it, a bounded amount of
/// ciphertext at a time; with an empty batch, send what rustls has queued.
pub(crate) async fn write_batch<W: AsyncWriteRent>(
    wr: &mut W,
    session: &TlsSession,
    batch: &[bytes::Bytes],
) -> io::Result<()> {
    let mut frames = batch.iter();
    let mut current: &[u8] = &[];
    loop {
        // Fill rustls's send buffer (64 KiB by default) with records.
        let out = {
            let mut conn = session.conn.borrow_mut();
            loop {
                if current.is_empty() {
                    match frames.next() {
                        Some(f) => current = f,
                        None => break,
                    }
                    continue;
                }
                let n = conn.writer().write(current)?;
                if n == 0 {
                    break;
                }
                current = &current[n..];
            }
            let mut out = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut out)?;
            }
            out
        };
        if out.is_empty() {
            if current.is_empty() {
                return Ok(());
            }
            return Err(io::ErrorKind::WriteZero.into());
        }
        let (res, _) = wr.write_all(out).await;
        res?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_take_redis_names_and_refuse_what_rustls_lacks() {
        assert_eq!(protocols("").unwrap().len(), 2);
        assert_eq!(protocols("tlsv1.3").unwrap(), vec![&rustls::version::TLS13]);
        assert_eq!(protocols("TLSv1.2 TLSv1.3 TLSv1.2").unwrap().len(), 2);
        assert!(protocols("TLSv1.1").unwrap_err().contains("TLSv1.1"));
        assert!(
            protocols("SSLv3")
                .unwrap_err()
                .contains("Invalid tls-protocols")
        );
    }

    #[test]
    fn cipher_suites_take_openssl_and_iana_names_in_order() {
        let tls = TlsConfig {
            ciphersuites: "TLS_CHACHA20_POLY1305_SHA256:TLS13_AES_128_GCM_SHA256".into(),
            ciphers: "ECDHE-RSA-AES256-GCM-SHA384".into(),
            ..TlsConfig::default()
        };
        let p = provider(&tls).unwrap();
        let names: Vec<String> = p.cipher_suites.iter().map(rustls_name).collect();
        assert_eq!(
            names,
            [
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS13_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        let bad = TlsConfig {
            ciphersuites: "TLS_AES_128_CCM_SHA256".into(),
            ..TlsConfig::default()
        };
        let err = provider(&bad).unwrap_err();
        assert!(err.contains("Failed to configure ciphersuites"), "{err}");
        assert!(err.contains("TLS_AES_128_CCM_SHA256"), "{err}");
    }

    #[test]
    fn errors_name_the_missing_parameter_or_file() {
        let mut tls = TlsConfig::default();
        assert_eq!(build(&tls).unwrap_err(), "No tls-cert-file configured!");
        tls.cert_file = "/nonexistent/ringcast.crt".into();
        assert_eq!(build(&tls).unwrap_err(), "No tls-key-file configured!");
        tls.key_file = "/nonexistent/ringcast.key".into();
        assert!(
            build(&tls)
                .unwrap_err()
                .starts_with("Either tls-ca-cert-file")
        );
        tls.auth_clients = TlsAuthClients::No;
        let err = build(&tls).unwrap_err();
        assert!(
            err.starts_with("Failed to load certificate: /nonexistent/ringcast.crt: "),
            "{err}"
        );
    }
}
