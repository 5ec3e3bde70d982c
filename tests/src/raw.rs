//! [`RawConn`]: a byte-level RESP connection for exact assertions.
//!
//! Tests write requests as bytes and check replies byte for byte, or read
//! them as [`Frame`]s when only their meaning matters (message streams).
//! Every read has a timeout so a silent server fails the test instead of
//! hanging it.

use crate::PATIENCE;
use crate::resp::{self, Frame, Parsed, Proto, show};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// A raw RESP connection with its own read buffer.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Protocol spoken after the last `HELLO` this side sent.
    pub proto: Proto,
    timeout: Duration,
}

/// Why reading stopped without a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Nothing (complete) arrived within the timeout.
    Timeout,
    /// The server closed the connection (orderly or by reset).
    Closed,
}

impl RawConn {
    /// Connects to a server on 127.0.0.1.
    pub fn connect(port: u16) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        RawConn::from_stream(stream)
    }

    /// Connects with a tiny receive buffer and segment size, so that the
    /// kernel holds only a few dozen KiB for a reader that never reads and
    /// the server's own output buffer grows almost byte for byte with what
    /// it is sent (on loopback the default MSS of 64 KiB would let the
    /// kernel absorb megabytes).
    pub fn connect_slow_reader(port: u16) -> RawConn {
        // SAFETY: plain socket syscalls on a descriptor this function owns;
        // every pointer passed points to a live local of the stated size.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            // Own the descriptor at once so it is closed on every path.
            let stream = TcpStream::from_raw_fd(fd);
            let set = |level, name, value: libc::c_int| {
                let rc = libc::setsockopt(
                    fd,
                    level,
                    name,
                    (&value as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
                assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
            };
            set(libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
            set(libc::IPPROTO_TCP, libc::TCP_MAXSEG, 1000);
            let addr = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                },
                sin_zero: [0; 8],
            };
            let rc = libc::connect(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
            RawConn::from_stream(stream)
        }
    }

    fn from_stream(stream: TcpStream) -> RawConn {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        RawConn {
            stream,
            buf: Vec::new(),
            proto: Proto::Resp2,
            timeout: PATIENCE,
        }
    }

    /// Changes how long reads wait before failing the test.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {}: {e}", show(bytes)));
    }

    /// Writes bytes, returning the error instead of failing (the server may
    /// legitimately have closed the connection already).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one command as a multibulk request.
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send(&resp::command(args));
    }

    /// Sends one command and reads one frame back.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        self.send_cmd(args);
        self.read_frame()
    }

    /// Sends one command and checks the reply byte for byte.
    pub fn cmd_expect<A: AsRef<[u8]>>(&mut self, args: &[A], expected: &[u8]) {
        self.send_cmd(args);
        self.expect(expected);
    }

    /// Switches to RESP3 with `HELLO 3` and consumes the reply map.
    pub fn hello3(&mut self) {
        let reply = self.cmd(&["HELLO", "3"]);
        assert!(matches!(reply, Frame::Map(_)), "HELLO 3 replied {reply:?}");
        self.proto = Proto::Resp3;
    }

    /// Switches to `proto` (a no-op for RESP2 on a fresh connection).
    pub fn use_proto(&mut self, proto: Proto) {
        if proto == Proto::Resp3 {
            self.hello3();
        }
    }

    /// Sends `<kind> <channels...>` (SUBSCRIBE, PUNSUBSCRIBE...) and expects
    /// one confirmation per channel with the given counts, byte for byte.
    pub fn sub(&mut self, kind: &str, channels: &[&str], counts: &[i64]) {
        let mut args = vec![kind];
        args.extend_from_slice(channels);
        self.send_cmd(&args);
        let expected =
            resp::confirmations(self.proto, &kind.to_ascii_lowercase(), channels, counts);
        self.expect(&expected);
    }

    /// Expects a `message` frame, byte for byte.
    pub fn expect_message(&mut self, channel: &str, payload: &str) {
        self.expect(&resp::message(
            self.proto,
            channel.as_bytes(),
            payload.as_bytes(),
        ));
    }

    /// Expects a `pmessage` frame, byte for byte.
    pub fn expect_pmessage(&mut self, pattern: &str, channel: &str, payload: &str) {
        let expected = resp::pmessage(
            self.proto,
            pattern.as_bytes(),
            channel.as_bytes(),
            payload.as_bytes(),
        );
        self.expect(&expected);
    }

    /// Expects an `smessage` frame, byte for byte.
    pub fn expect_smessage(&mut self, channel: &str, payload: &str) {
        self.expect(&resp::smessage(
            self.proto,
            channel.as_bytes(),
            payload.as_bytes(),
        ));
    }

    /// Sends `PUBLISH`/`SPUBLISH` and expects the given receiver count.
    pub fn publish(&mut self, command: &str, channel: &str, payload: &str, receivers: i64) {
        self.cmd_expect(&[command, channel, payload], &resp::int(receivers));
    }

    /// Reads exactly `expected.len()` bytes and asserts they are `expected`.
    /// Stops reading as soon as the bytes diverge, so a wrong (shorter)
    /// reply fails at once instead of after the timeout.
    pub fn expect(&mut self, expected: &[u8]) {
        let deadline = Instant::now() + self.timeout;
        while self.buf.len() < expected.len() {
            let common = self.buf.len();
            if self.buf[..common] != expected[..common] {
                break;
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
        let take = expected.len().min(self.buf.len());
        let got: Vec<u8> = self.buf.drain(..take).collect();
        assert!(
            got == expected,
            "reply mismatch\n expected: {}\n      got: {}{}",
            show(expected),
            show(&got),
            if self.buf.is_empty() {
                String::new()
            } else {
                format!("\n     then: {}", show(&self.buf))
            }
        );
    }

    /// Reads more bytes into the buffer. `Ok(false)` on EOF or reset,
    /// `Err(Timeout)` when the deadline passes first.
    fn fill(&mut self, deadline: Instant) -> Result<bool, ReadEnd> {
        let now = Instant::now();
        if now >= deadline {
            return Err(ReadEnd::Timeout);
        }
        self.stream
            .set_read_timeout(Some(deadline - now))
            .expect("set_read_timeout");
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ReadEnd::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(_) => Ok(false),
        }
    }

    /// Reads one frame, waiting at most `timeout`.
    pub fn try_read_frame(&mut self, timeout: Duration) -> Result<Frame, ReadEnd> {
        self.try_read_raw_frame(timeout).map(|(frame, _)| frame)
    }

    /// Reads one frame, waiting at most `timeout`, and returns it with the
    /// bytes it was made of exactly as they came off the wire (what a parsed
    /// [`Frame`] does not keep: `$-1` versus `*-1`, a verbatim string's format).
    pub fn try_read_raw_frame(&mut self, timeout: Duration) -> Result<(Frame, Vec<u8>), ReadEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            match resp::parse(&self.buf) {
                Parsed::Frame(frame, used) => {
                    let raw = self.buf.drain(..used).collect();
                    return Ok((frame, raw));
                }
                Parsed::Invalid(why) => {
                    panic!("server sent invalid RESP ({why}): {}", show(&self.buf))
                }
                Parsed::Incomplete => match self.fill(deadline) {
                    Ok(true) => {}
                    Ok(false) => return Err(ReadEnd::Closed),
                    Err(end) => return Err(end),
                },
            }
        }
    }

    /// Reads one frame; fails the test on timeout or close.
    pub fn read_frame(&mut self) -> Frame {
        match self.try_read_frame(self.timeout) {
            Ok(f) => f,
            Err(end) => panic!("no reply ({end:?}); buffered: {}", show(&self.buf)),
        }
    }

    /// Asserts the server closes the connection with nothing more to read.
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {}",
            show(&self.buf)
        );
        let deadline = Instant::now() + self.timeout;
        match self.fill(deadline) {
            Ok(false) => {}
            Ok(true) => panic!("expected close, got bytes: {}", show(&self.buf)),
            Err(_) => panic!("connection still open after {:?}", self.timeout),
        }
    }

    /// Reads and discards everything until the server closes the connection
    /// (bounded by the timeout); returns how many bytes were discarded.
    pub fn drain_until_closed(&mut self) -> usize {
        let deadline = Instant::now() + self.timeout;
        let mut total = self.buf.len();
        self.buf.clear();
        loop {
            match self.fill(deadline) {
                Ok(true) => {
                    total += self.buf.len();
                    self.buf.clear();
                }
                Ok(false) => return total,
                Err(_) => panic!("connection still open after {:?}", self.timeout),
            }
        }
    }

    /// Whether a byte is ready to be read right now (without waiting).
    pub fn has_input(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).expect("set_nonblocking");
        let mut probe = [0u8; 1];
        let ready = matches!(self.stream.peek(&mut probe), Ok(n) if n > 0);
        self.stream.set_nonblocking(false).expect("set_nonblocking");
        ready
    }

    /// Closes the writing half, as a client that has sent everything does.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// A second handle on the same socket, for a writer thread while this
    /// one reads (or the other way round).
    pub fn try_clone_stream(&self) -> TcpStream {
        self.stream.try_clone().expect("clone TcpStream")
    }
}
