//! TLS for every connection the tool opens (rustls), and the [`Stream`] the
//! load engine reads and writes, plain or TLS.
//!
//! The engine's read loops make two assumptions about a non-blocking
//! socket: edge-triggered readiness (a connection is read until it would
//! block) and "a read that did not fill the buffer emptied the socket". A
//! TLS read keeps both: in non-blocking mode it decrypts into the caller's
//! buffer until the buffer is full or the socket would block, so a short
//! read still means the socket is empty. Blocking reads return as soon as
//! some plaintext is there, like `read` on a socket.
//!
//! Writes hand plaintext to rustls and push the records to the socket. In
//! non-blocking mode records can be left over when the socket is full:
//! [`Stream::has_pending_output`] says so, and the next `write` or `flush`
//! sends them first. Callers that stop writing must flush until it is empty.

use anyhow::{Context, Result, bail};
use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a TLS handshake may take before the connection is given up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the system keeps its CA bundle (Debian, then Red Hat): the
/// default roots when no `--cacert` is given.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// TLS flags of the client side, shared by `run` and `compare`.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Speak TLS on every connection (publishers, subscribers, probes, INFO).
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) the server certificate is verified against
    /// [default: the system's bundle; `compare` makes its own CA].
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate chain (PEM) to present; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Server name sent in the handshake (SNI) and checked against the
    /// certificate [default: the host].
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Accept any server certificate (no verification at all).
    #[arg(long)]
    pub insecure: bool,
}

/// What every TLS connection of a run shares: the rustls configuration and
/// the name the server must prove.
#[derive(Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// The client configuration `args` describe, for a server at `host`.
    pub fn new(args: &TlsArgs, host: &str) -> Result<TlsClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = if args.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                    provider.signature_verification_algorithms,
                )))
        } else {
            builder.with_root_certificates(roots(args.cacert.as_deref())?)
        };
        let config = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                .context("client certificate and key")?,
            _ => builder.with_no_client_auth(),
        };
        let name = args.sni.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_owned())
            .with_context(|| format!("{name:?} is not a valid TLS server name"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }

    /// Completes a handshake over `sock` (blocking, at most
    /// `HANDSHAKE_TIMEOUT`); the socket is left blocking, without a timeout.
    pub fn handshake(&self, mut sock: TcpStream) -> Result<TlsStream> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .context("starting a TLS session")?;
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        sock.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).context("TLS handshake")?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut sock).context("TLS handshake")?;
        }
        sock.set_read_timeout(None)?;
        sock.set_write_timeout(None)?;
        Ok(TlsStream {
            sock,
            conn,
            nonblocking: false,
        })
    }
}

fn roots(cacert: Option<&Path>) -> Result<RootCertStore> {
    let path = match cacert {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("no --cacert and no system CA bundle: give --cacert FILE (or --insecure)")?,
    };
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(read_certs(&path)?);
    if added == 0 {
        bail!("{}: no usable CA certificate", path.display());
    }
    Ok(store)
}

/// Every certificate of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in it", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading a key from {}", path.display()))
}

/// `--insecure`: every certificate is accepted; signatures are still
/// checked so the handshake itself is sound.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A TLS session over a TCP socket.
pub struct TlsStream {
    sock: TcpStream,
    conn: ClientConnection,
    nonblocking: bool,
}

impl TlsStream {
    /// Sends pending records until none is left or the socket is full.
    fn flush_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads records from the socket once and decrypts them. `Ok(false)`
    /// at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Ok(false),
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Err(e) = self.conn.process_new_packets() {
            // Send the alert rustls prepared, then fail the connection.
            let _ = self.flush_records();
            return Err(io::Error::new(ErrorKind::InvalidData, e));
        }
        Ok(true)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.conn.reader().read(&mut buf[got..]) {
                Ok(0) => return Ok(got),
                Ok(n) => {
                    got += n;
                    if !self.nonblocking {
                        return Ok(got);
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: end of stream all the same.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(got),
                Err(e) => return if got > 0 { Ok(got) } else { Err(e) },
            }
            // Nothing decrypted is left: answer what the session asks
            // (key updates), then take more records from the socket.
            match self.flush_records() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return if got > 0 { Ok(got) } else { Err(e) },
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(got),
                Err(e) => return if got > 0 { Ok(got) } else { Err(e) },
            }
        }
        Ok(got)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records left over go first; until they are out, nothing new is taken.
        self.flush_records()?;
        let n = self.conn.writer().write(buf)?;
        match self.flush_records() {
            Ok(()) => Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock && self.nonblocking => Ok(n),
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_records()
    }
}

/// A connection to the server: plain TCP or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.set_nonblocking(on),
            Stream::Tls(t) => {
                t.nonblocking = on;
                t.sock.set_nonblocking(on)
            }
        }
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    /// TLS records accepted by `write` and not yet on the socket
    /// (non-blocking mode only); `flush` sends them.
    pub fn has_pending_output(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(t) => t.conn.wants_write(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// Throwaway certificates for `compare --tls`: a CA, a server certificate
/// for 127.0.0.1 and localhost, and a client certificate, as PEM files.
pub struct GeneratedCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Writes a fresh CA and the certificates it signs into `dir`.
pub fn generate_certs(dir: &Path) -> Result<GeneratedCerts> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "ringcast-bench throwaway CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let write = |file: &str, text: String| -> Result<PathBuf> {
        let p = dir.join(file);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    };
    let ca_path = write("ca.crt", ca_cert.pem())?;
    let issue = |role: &str, sans: Vec<String>, usage| -> Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer)?;
        Ok((
            write(&format!("{role}.crt"), cert.pem())?,
            write(&format!("{role}.key"), key.serialize_pem())?,
        ))
    };
    let (server_cert, server_key) = issue(
        "server",
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_cert, client_key) = issue(
        "client",
        vec!["ringcast-bench.client".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    Ok(GeneratedCerts {
        ca: ca_path,
        server_cert,
        server_key,
        client_cert,
        client_key,
    })
}
