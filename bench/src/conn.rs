//! Connections: where the server is, the read buffer every connection owns,
//! the blocking handshake (TLS, AUTH / HELLO 3), and channel naming.
//!
//! Setup is done with blocking sockets and plain request/reply; only after a
//! connection is fully subscribed does the subscriber engine switch it to
//! non-blocking mode and hand it to its event loop.

use crate::resp::{self, Elem};
use crate::tls::{Stream, TlsClient};
use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// The protocol every connection to a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Resp2,
    /// RESP3 (HELLO 3): messages arrive as push frames.
    Resp3,
    /// NATS core (see [`crate::nats`]).
    Nats,
}

impl Proto {
    /// RESP2 or RESP3 for `--resp 2|3`.
    pub fn resp(version: u8) -> Proto {
        if version == 3 {
            Proto::Resp3
        } else {
            Proto::Resp2
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Resp2 => "RESP2",
            Proto::Resp3 => "RESP3",
            Proto::Nats => "NATS",
        }
    }

    /// Channel and pattern names in this protocol.
    pub fn naming(self, prefix: &str) -> Naming {
        Naming {
            prefix: prefix.to_owned(),
            sep: if self == Proto::Nats { '.' } else { ':' },
        }
    }

    /// Appends what subscribes a connection to `names`: `verb name...`
    /// commands of at most [`NAMES_PER_COMMAND`] names, or NATS `SUB`s
    /// with sids from `first_sid + 1` on (unique per connection) and a PING.
    pub fn write_subscribe(
        self,
        out: &mut Vec<u8>,
        verb: &[u8],
        names: &[Vec<u8>],
        first_sid: usize,
    ) {
        if self == Proto::Nats {
            crate::nats::write_subs(out, names, first_sid);
        } else {
            write_subscribe(out, verb, names);
        }
    }

    /// Reads (blocking) the confirmations of `count` subscriptions written
    /// by [`Proto::write_subscribe`].
    pub fn read_confirmations(self, s: &mut Stream, rb: &mut ReadBuf, count: usize) -> Result<()> {
        if self == Proto::Nats {
            crate::nats::await_pong(s, rb)
        } else {
            read_confirmations(s, rb, count)
        }
    }
}

/// A pub/sub server to talk to.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// ACL user to authenticate as (with `password`); `None` = `default`.
    pub user: Option<String>,
    pub password: Option<String>,
    pub proto: Proto,
    /// TLS on every connection, when set.
    pub tls: Option<Arc<TlsClient>>,
}

impl Target {
    /// A plain-TCP, RESP2 target without authentication.
    pub fn plain(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
            user: None,
            password: None,
            proto: Proto::Resp2,
            tls: None,
        }
    }

    pub fn resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }

    pub fn is_nats(&self) -> bool {
        self.proto == Proto::Nats
    }

    /// Opens a TCP connection with Nagle off (pipelined writes are batched
    /// by us) and completes the TLS handshake when the target has TLS.
    pub fn connect(&self) -> Result<Stream> {
        let s = TcpStream::connect((self.host.as_str(), self.port))
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        s.set_nodelay(true)?;
        // A NATS server speaks first, in the clear, and says whether TLS follows.
        let mut s = s;
        if self.is_nats() && crate::nats::read_info(&mut s)? && self.tls.is_none() {
            bail!("{}:{} requires TLS: give --tls", self.host, self.port);
        }
        Ok(match &self.tls {
            Some(tls) => Stream::Tls(Box::new(
                tls.handshake(s)
                    .with_context(|| format!("TLS with {}:{}", self.host, self.port))?,
            )),
            None => Stream::Plain(s),
        })
    }

    /// Connects and authenticates (AUTH, or HELLO 3 with AUTH; NATS
    /// CONNECT) as configured.
    pub fn open(&self, rb: &mut ReadBuf) -> Result<Stream> {
        let mut s = self.connect()?;
        let mut cmd = Vec::new();
        if self.is_nats() {
            crate::nats::write_connect(&mut cmd, self.user.as_deref(), self.password.as_deref());
            s.write_all(&cmd)?;
            crate::nats::await_pong(&mut s, rb).context("NATS CONNECT")?;
            return Ok(s);
        }
        let user = self.user.as_deref().unwrap_or("default").as_bytes();
        if self.resp3() {
            match &self.password {
                Some(pw) => {
                    resp::write_command(&mut cmd, &[b"HELLO", b"3", b"AUTH", user, pw.as_bytes()])
                }
                None => resp::write_command(&mut cmd, &[b"HELLO", b"3"]),
            }
        } else if let Some(pw) = &self.password {
            match &self.user {
                Some(u) => resp::write_command(&mut cmd, &[b"AUTH", u.as_bytes(), pw.as_bytes()]),
                None => resp::write_command(&mut cmd, &[b"AUTH", pw.as_bytes()]),
            }
        }
        if !cmd.is_empty() {
            s.write_all(&cmd)?;
            expect_ok_reply(&mut s, rb).context("handshake")?;
        }
        Ok(s)
    }

    /// Checks the server answers: a PING round trip on a fresh connection.
    pub fn ping(&self) -> Result<()> {
        if self.is_nats() {
            // Opening a NATS connection ends with a PING answered.
            let mut rb = ReadBuf::new(4096);
            return self.open(&mut rb).map(drop);
        }
        self.command(&[b"PING"])
    }

    /// Sends one command on a fresh, authenticated connection and reads
    /// its reply; fails on an error reply.
    pub fn command(&self, args: &[&[u8]]) -> Result<()> {
        if self.is_nats() {
            bail!("{} is a NATS server: no Redis commands", self.host);
        }
        let mut rb = ReadBuf::new(4096);
        let mut s = self.open(&mut rb)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let mut cmd = Vec::new();
        resp::write_command(&mut cmd, args);
        s.write_all(&cmd)?;
        expect_ok_reply(&mut s, &mut rb)
    }
}

/// True for addresses that can only mean this machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl Target {
    /// The server's `process_id` from `INFO server`, when the server is on
    /// this machine and that pid is visible here; used to sample its CPU and RSS.
    pub fn local_server_pid(&self) -> Option<u32> {
        if !is_loopback(&self.host) {
            return None;
        }
        if self.is_nats() {
            // NATS's INFO has no pid: find the listener here.
            return crate::sys::pid_listening_on(self.port);
        }
        let mut rb = ReadBuf::new(16 * 1024);
        let mut s = self.open(&mut rb).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        let text = command_text(&mut s, &mut rb, &[b"INFO", b"server"]).ok()??;
        let pid: u32 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))?
            .trim()
            .parse()
            .ok()?;
        if crate::sys::pid_listens_on(pid, self.port) {
            Some(pid)
        } else {
            eprintln!(
                "note: INFO process_id {pid} is not a process listening on port {} here; \
                 server CPU is not measured (pass --server-pid)",
                self.port
            );
            None
        }
    }
}

/// Sends one command and reads its reply as text: a bulk string, or the
/// verbatim string RESP3 uses for INFO and CLIENT INFO. `Ok(None)` for any
/// other reply (an error, say).
pub fn command_text(s: &mut Stream, rb: &mut ReadBuf, args: &[&[u8]]) -> Result<Option<String>> {
    let mut cmd = Vec::new();
    resp::write_command(&mut cmd, args);
    s.write_all(&cmd)?;
    loop {
        if rb.unparsed().first() == Some(&b'=') {
            // Verbatim: `=<len>\r\ntxt:<text>\r\n`, which parse_frame does not read.
            if let Some(end) = resp::skip_value(rb.unparsed(), 0)? {
                let text = String::from_utf8_lossy(&rb.unparsed()[..end]).into_owned();
                rb.consume(end);
                return Ok(Some(text));
            }
        } else if let Some((f, used)) = resp::parse_frame(rb.unparsed())? {
            let text = match f.elems() {
                [Elem::Bulk(b)] => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            };
            rb.consume(used);
            return Ok(text);
        }
        if rb.read_from(s)? == 0 {
            bail!("server closed the connection");
        }
    }
}

/// The worker (I/O thread) serving this connection, from the `io-thread=`
/// field of `CLIENT INFO`; `None` when the server does not report one
/// (redis-server has a single event loop). Must run before SUBSCRIBE.
pub fn worker_of(s: &mut Stream, rb: &mut ReadBuf) -> Result<Option<u32>> {
    let text = command_text(s, rb, &[b"CLIENT", b"INFO"])?;
    Ok(text.as_deref().and_then(io_thread_field))
}

/// `io-thread=N` from a CLIENT INFO / CLIENT LIST line.
pub fn io_thread_field(line: &str) -> Option<u32> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("io-thread="))?
        .parse()
        .ok()
}

/// A connection's receive buffer: bytes `start..end` are read but not yet parsed.
///
/// One large buffer per connection, reused for the whole run; it only grows
/// when a single frame does not fit, so the parse path never allocates.
#[derive(Debug)]
pub struct ReadBuf {
    pub data: Vec<u8>,
    pub start: usize,
    pub end: usize,
}

impl ReadBuf {
    pub fn new(capacity: usize) -> Self {
        ReadBuf {
            data: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
        }
    }

    /// Bytes read and not yet consumed.
    #[inline]
    pub fn unparsed(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes room at the end: moves the unparsed tail to the front, or doubles
    /// the buffer when a single partial frame already fills it.
    #[inline]
    pub fn make_room(&mut self) {
        if self.end < self.data.len() {
            return;
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else {
            let n = self.data.len() * 2;
            self.data.resize(n, 0);
        }
    }

    /// One `read` call into the free space. Returns the byte count (0 = EOF).
    #[inline]
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        self.make_room();
        let n = r.read(&mut self.data[self.end..])?;
        self.end += n;
        Ok(n)
    }
}

/// Reads (blocking) until one complete reply is available and skips it;
/// fails when it is an error reply.
pub fn expect_ok_reply<S: Read>(s: &mut S, rb: &mut ReadBuf) -> Result<()> {
    loop {
        let buf = rb.unparsed();
        if let Some(end) = resp::skip_value(buf, 0)? {
            if buf[0] == b'-' {
                let text = String::from_utf8_lossy(&buf[1..end.saturating_sub(2)]).into_owned();
                rb.consume(end);
                bail!("server replied {text}");
            }
            rb.consume(end);
            return Ok(());
        }
        if rb.read_from(s)? == 0 {
            bail!("server closed the connection");
        }
    }
}

/// Reads (blocking) until `count` subscribe-style confirmations have arrived.
fn read_confirmations(s: &mut Stream, rb: &mut ReadBuf, mut count: usize) -> Result<()> {
    while count > 0 {
        while count > 0 {
            let Some((f, used)) = resp::parse_frame(rb.unparsed())? else {
                break;
            };
            match f.elems() {
                [Elem::Bulk(_), _, Elem::Int(_)] => count -= 1,
                [e] => bail!("unexpected reply while subscribing: {}", resp::describe(e)),
                other => bail!(
                    "unexpected frame while subscribing: {:?}",
                    other.iter().map(resp::describe).collect::<Vec<_>>()
                ),
            }
            rb.consume(used);
        }
        if count > 0 && rb.read_from(s)? == 0 {
            return Err(anyhow!("server closed the connection while subscribing"));
        }
    }
    Ok(())
}

/// How many names go into one SUBSCRIBE-style command during setup.
pub const NAMES_PER_COMMAND: usize = 1000;

/// Appends `verb name...` commands, at most [`NAMES_PER_COMMAND`] names each.
fn write_subscribe(out: &mut Vec<u8>, verb: &[u8], names: &[Vec<u8>]) {
    for chunk in names.chunks(NAMES_PER_COMMAND) {
        out.push(b'*');
        resp::push_int(out, chunk.len() as u64 + 1);
        out.extend_from_slice(b"\r\n");
        resp::write_bulk_header(out, verb.len());
        out.extend_from_slice(verb);
        out.extend_from_slice(b"\r\n");
        for n in chunk {
            resp::write_bulk_header(out, n.len());
            out.extend_from_slice(n);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Names of channels and patterns. Channel `i` is `<prefix>:<i>:c`; its
/// private pattern is `<prefix>:<i>:*`, which matches that channel and no
/// other. NATS separates tokens with `.` (`rcb.<i>.c`, `rcb.<i>.*`), so its
/// wildcard matches the same way.
#[derive(Debug, Clone)]
pub struct Naming {
    pub prefix: String,
    pub sep: char,
}

impl Naming {
    pub fn channel(&self, i: u32) -> Vec<u8> {
        format!("{}{s}{i}{s}c", self.prefix, s = self.sep).into_bytes()
    }

    pub fn pattern(&self, i: u32) -> Vec<u8> {
        format!("{}{s}{i}{s}*", self.prefix, s = self.sep).into_bytes()
    }

    /// Channel index from a channel name, without allocating; `None` if the
    /// name is not one of ours.
    #[inline]
    pub fn parse_channel(&self, name: &[u8]) -> Option<u32> {
        let rest = name
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(&[self.sep as u8])?;
        let digits = rest.strip_suffix(b"c")?.strip_suffix(&[self.sep as u8])?;
        if digits.is_empty() || digits.len() > 10 {
            return None;
        }
        let mut v: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (d - b'0') as u64;
        }
        u32::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_and_foreign_names_are_rejected() {
        let n = Proto::Resp2.naming("rcb");
        assert_eq!(n.channel(42), b"rcb:42:c");
        assert_eq!(n.parse_channel(b"rcb:42:c"), Some(42));
        assert_eq!(n.parse_channel(b"rcb:42:x"), None);
        assert_eq!(n.parse_channel(b"rcb::c"), None);
        assert_eq!(n.parse_channel(b"other:42:c"), None);
        assert_eq!(n.parse_channel(b"rcb:99999999999:c"), None);
        let n = Proto::Nats.naming("rcb");
        assert_eq!(n.channel(42), b"rcb.42.c");
        assert_eq!(n.pattern(42), b"rcb.42.*");
        assert_eq!(n.parse_channel(b"rcb.42.c"), Some(42));
        assert_eq!(n.parse_channel(b"rcb:42:c"), None);
    }

    #[test]
    fn io_thread_is_read_from_a_client_line() {
        let line = "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=-1 name= resp=2 io-thread=3\n";
        assert_eq!(io_thread_field(line), Some(3));
        assert_eq!(io_thread_field("id=7 addr=127.0.0.1:5000 resp=2"), None);
    }

    #[test]
    fn read_buffer_compacts_before_growing() {
        let mut rb = ReadBuf::new(64);
        rb.end = 64;
        rb.start = 60;
        rb.make_room();
        assert_eq!((rb.start, rb.end, rb.data.len()), (0, 4, 64));
        rb.end = 64;
        rb.make_room();
        assert_eq!(rb.data.len(), 128);
    }

    #[test]
    fn subscribe_commands_are_chunked() {
        let names: Vec<Vec<u8>> = (0..2500).map(|i| format!("c{i}").into_bytes()).collect();
        let mut out = Vec::new();
        write_subscribe(&mut out, b"SUBSCRIBE", &names);
        assert_eq!(out.windows(11).filter(|w| w == b"\r\nSUBSCRIBE").count(), 3);
    }
}
