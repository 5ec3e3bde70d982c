//! One client connection on its worker: a reader task that feeds the hub and
//! a writer task that sends what the hub queued, one (vectored) write per
//! event-loop turn (large batches first with a non-blocking `sendmsg`, see
//! [`DIRECT_WRITE_MIN`]). A TLS connection has the same two tasks around its
//! rustls session (`crate::tls`): the reader decrypts, the writer encrypts
//! and is the only one to write to the socket.
//!
//! Closing: whoever decides the connection is over shuts the socket down,
//! which ends the other side's pending read or write; the reader waits for
//! the writer and then removes the connection from the hub. When the hub
//! itself closes a connection (output limit, CLIENT KILL, timeout), the
//! worker shuts its socket down at once ([`Worker::settle`]), so a writer
//! blocked on a peer that does not read lets go of it immediately.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::{IoBufMut, IoVecBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use ringcast_core::hub::{ConnKey, Departure, Input, Output};

use crate::acceptor::{ClientSlot, Handoff};
use crate::tls::{self, TlsReader, TlsSession};
use crate::worker::state::{Worker, shutdown};

/// Read sizes adapt per connection between these bounds: an idle subscriber
/// keeps a small buffer (10,000 of them must stay cheap), a busy publisher
/// grows to large reads (fewer syscalls per request).
const READ_MIN: usize = 1024;
const READ_MAX: usize = 64 * 1024;
/// Kernel limit on iovecs per writev.
const IOV_MAX: usize = 1024;

/// Take over a connection the acceptor handed to this worker. If it cannot
/// be registered, dropping `handoff` closes it and frees its client slot.
/// A TLS connection first completes its handshake (holding its slot, not
/// yet a client of the hub); one that fails or times out is counted and
/// closed without disturbing anything else.
pub(crate) fn spawn(worker: Rc<Worker>, handoff: Handoff) {
    let Handoff { stream, slot, tls } = handoff;
    let peer = stream.peer_addr();
    let local = stream.local_addr();
    let (Ok(peer), Ok(local)) = (peer, local) else {
        return;
    };
    let fd = stream.as_raw_fd();
    let mut stream = match TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot register connection from {peer}: {e}");
            return;
        }
    };
    let Some(tls_config) = tls else {
        start(worker, stream, slot, peer, local, fd, None);
        return;
    };
    monoio::spawn(async move {
        let shared = worker.hub().shared().clone();
        let limit = Duration::from_secs(shared.config.load().tls.handshake_timeout);
        let mut conn = match rustls::ServerConnection::new(tls_config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot start a TLS session for {peer}: {e}");
                return;
            }
        };
        match tls::handshake(&mut stream, &mut conn, limit).await {
            Ok(()) => start(
                worker,
                stream,
                slot,
                peer,
                local,
                fd,
                Some(TlsSession::new(conn)),
            ),
            Err(e) => {
                shared
                    .tls_handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "Error accepting a client connection: {e} (addr={peer} laddr={local})"
                );
                // As for a plain connection: shut the socket down (a read
                // abandoned by the timeout may still be in flight on
                // io_uring, holding the descriptor open), then dropping the
                // stream closes it and dropping the slot frees it.
                shutdown(fd);
            }
        }
    });
}

/// Register an accepted (and for TLS, handshaken) connection with the hub
/// and start its reader and writer.
fn start(
    worker: Rc<Worker>,
    stream: TcpStream,
    slot: ClientSlot,
    peer: SocketAddr,
    local: SocketAddr,
    fd: RawFd,
    tls: Option<Rc<TlsSession>>,
) {
    let key = worker.connect(peer, local, fd);
    slot.pass_to_hub();
    tracing::debug!("accepted {peer} as key {key}");
    let input = Pending {
        buf: BytesMut::with_capacity(READ_MIN),
        chunk: READ_MIN,
    };
    run(worker, key, stream, fd, tls, input);
}

/// A connection on its way from one worker to another
/// (`ringcast_core::hub::placement`): its state, its socket, and the
/// requests it sent that were not run yet.
pub(crate) struct Arrival {
    departure: Departure,
    stream: std::net::TcpStream,
    input: Pending,
}

impl Arrival {
    pub(crate) fn departure(&self) -> &Departure {
        &self.departure
    }

    /// It will not run anywhere: forget it and close its socket.
    pub(crate) fn abandon(self, shared: &ringcast_core::shared::Shared) {
        self.departure.abandon(shared);
    }
}

/// What a connection's reader has read and not yet run, and its read size.
struct Pending {
    buf: BytesMut,
    chunk: usize,
}

/// Take in a connection another worker gave up, once
/// [`ringcast_core::hub::Hub::may_resume`] says so, and start its reader
/// and writer here.
pub(crate) fn arrive(worker: Rc<Worker>, arrival: Arrival) {
    let Arrival {
        departure,
        stream,
        input,
    } = arrival;
    let fd = stream.as_raw_fd();
    let stream = match TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot take over a connection from another worker: {e}");
            departure.abandon(worker.hub().shared());
            return;
        }
    };
    let key = worker.arrive(departure, fd);
    run(worker, key, stream, fd, None, input);
}

/// Run a connection's reader and writer on this worker until it closes
/// (then forget it) or moves to another worker (then hand it over).
fn run(
    worker: Rc<Worker>,
    key: ConnKey,
    stream: TcpStream,
    fd: RawFd,
    tls: Option<Rc<TlsSession>>,
    input: Pending,
) {
    let (rd, wr) = stream.into_split();
    let (reader, session) = match tls {
        None => (Reader::Plain(rd), None),
        Some(s) => (Reader::Tls(TlsReader::new(rd, s.clone())), Some(s)),
    };
    let writer = monoio::spawn(write_loop(worker.clone(), key, wr, fd, session));
    monoio::spawn(async move {
        let moving = read_loop(worker.clone(), key, reader, fd, input).await;
        let departed = writer.await;
        match (moving, departed) {
            (Some((rd, input)), Some(wr)) => match rd.reunite(wr) {
                Ok(stream) => depart(worker, key, stream, fd, input),
                Err(_) => worker.disconnect(key),
            },
            _ => worker.disconnect(key),
        }
    });
}

/// The writer sent everything queued and stopped for a move: give the
/// connection to its new worker, or if it may no longer move (killed
/// meanwhile), run it here again.
fn depart(worker: Rc<Worker>, key: ConnKey, stream: TcpStream, fd: RawFd, input: Pending) {
    // The socket goes on under a descriptor of its own: this worker's
    // driver closes (and for epoll first unregisters) the one it knows.
    // monoio's `into_raw_fd` would hand the descriptor over instead, but
    // panics if an operation of the driver still holds it.
    // SAFETY: dup(2) takes a plain descriptor: `fd` is this connection's
    // open socket (the stream holding it is alive).
    let copy = unsafe { libc::dup(fd) };
    if copy < 0 {
        // Out of descriptors: it stays here for now.
        worker.with_hub(|h| h.cancel_departure(key));
        run(worker, key, stream, fd, None, input);
        return;
    }
    // SAFETY: `copy` is a descriptor this function just made and owns.
    let copy = unsafe { OwnedFd::from_raw_fd(copy) };
    let Some(departure) = worker.depart(key) else {
        run(worker, key, stream, fd, None, input);
        return;
    };
    drop(stream);
    let to = departure.to();
    let stream = std::net::TcpStream::from(copy);
    let arrival = Arrival {
        departure,
        stream,
        input,
    };
    match worker.send_to(to, arrival) {
        Ok(()) => {}
        Err(arrival) => arrival.abandon(worker.hub().shared()),
    }
}

/// Where a connection's requests come from: the socket, or the plaintext
/// of its TLS session.
enum Reader<R> {
    Plain(R),
    Tls(TlsReader<R>),
}

impl<R: AsyncReadRent> Reader<R> {
    /// Read into `buf`'s room past its length (`cap` bytes in all).
    async fn read(&mut self, mut buf: BytesMut, cap: usize) -> (std::io::Result<usize>, BytesMut) {
        let len = buf.len();
        match self {
            Reader::Plain(rd) => {
                let (res, slice) = rd.read(buf.slice_mut(len..cap)).await;
                (res, slice.into_inner())
            }
            Reader::Tls(rd) => {
                buf.resize(cap, 0);
                let res = rd.read(&mut buf[len..]).await;
                buf.truncate(len + res.as_ref().map_or(0, |n| *n));
                (res, buf)
            }
        }
    }
}

/// `DEBUG SLEEP`: block the whole worker, as Redis blocks its server, but
/// wake up for shutdown.
fn sleep_worker(worker: &Worker, d: Duration) {
    let deadline = std::time::Instant::now() + d;
    while !worker.shutting_down() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Read requests and run them until the connection ends (None), or until
/// it is to move to another worker: then its read half and what it sent
/// that was not run yet.
async fn read_loop<R: AsyncReadRent>(
    worker: Rc<Worker>,
    key: ConnKey,
    mut rd: Reader<R>,
    fd: RawFd,
    input: Pending,
) -> Option<(R, Pending)> {
    let Pending { mut buf, mut chunk } = input;
    loop {
        let status = worker.with_hub(|h| {
            let s = h.input(key, &mut buf);
            h.flush_rings();
            s
        });
        match status {
            Input::NeedMore => {}
            Input::Blocked => {
                // Invariant 5: stop reading this publisher until the full ring drains.
                let mut parked = false;
                poll_fn(|cx| {
                    if parked {
                        return Poll::Ready(());
                    }
                    parked = true;
                    worker.with_hub(|h| h.park_reader(key, cx.waker()));
                    Poll::Pending
                })
                .await;
                continue;
            }
            Input::Yield => {
                crate::worker::yield_to_io(worker.io_turn()).await;
                continue;
            }
            Input::Sleep(d) => {
                sleep_worker(&worker, d);
                continue;
            }
            Input::Close => {
                // Let the writer send what is queued (e.g. the error) and close.
                return None;
            }
            Input::Move(_) => match rd {
                Reader::Plain(rd) if worker.with_hub(|h| h.prepare_departure(key)) => {
                    return Some((rd, Pending { buf, chunk }));
                }
                Reader::Plain(_) => continue,
                Reader::Tls(_) => {
                    // A TLS session stays with its worker.
                    worker.with_hub(|h| h.stay(key));
                    continue;
                }
            },
        }
        if buf.is_empty() && buf.capacity() > 4 * chunk {
            // A burst is over: give the large buffer back.
            buf = BytesMut::with_capacity(chunk);
        }
        let pending = worker.with_hub(|h| h.pending_bulk(key));
        let want = read_room(chunk, buf.len(), pending);
        if buf.capacity() - buf.len() < want / 4 {
            buf.reserve(want);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let (res, back) = rd.read(buf, cap).await;
        buf = back;
        match res {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if n == cap - len {
                    chunk = (chunk * 2).min(READ_MAX);
                } else if n < chunk / 8 {
                    chunk = (chunk / 2).max(READ_MIN);
                }
                if !worker.with_hub(|h| h.received(key, n, buf.len())) {
                    break;
                }
            }
        }
    }
    // The client went away (or must go): drop its queued output and close.
    worker.with_hub(|h| h.close(key));
    shutdown(fd);
    None
}

/// Room to make in the read buffer before the next read: the adaptive
/// `chunk`, or while a large argument is arriving, as much again as has
/// arrived of it (never more than it still needs).
///
/// A declared length is only a promise: a client may announce a 512 MB
/// argument and send 100 bytes, so the buffer grows with what actually
/// arrives, doubling, never with what is announced.
fn read_room(chunk: usize, buffered: usize, pending_bulk: Option<usize>) -> usize {
    match pending_bulk {
        Some(needed) => chunk.max(needed.saturating_sub(buffered).min(buffered)),
        None => chunk,
    }
}

/// Send what the hub queues until the connection closes (None), or until
/// it leaves for another worker with nothing left to send: then the write
/// half, the socket still open.
async fn write_loop<W: AsyncWriteRent>(
    worker: Rc<Worker>,
    key: ConnKey,
    mut wr: W,
    fd: RawFd,
    tls: Option<Rc<TlsSession>>,
) -> Option<W> {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        // Output from the hub, or (TLS) records reading made rustls want to send.
        let action = poll_fn(
            |cx| match worker.with_hub(|h| h.poll_output(key, cx, &mut batch)) {
                Poll::Ready(out) => Poll::Ready(Some(out)),
                Poll::Pending => match &tls {
                    Some(s) if s.poll_pending(cx.waker()) => Poll::Ready(None),
                    _ => Poll::Pending,
                },
            },
        )
        .await;
        match action {
            None => {
                let Some(session) = &tls else { break };
                if tls::write_batch(&mut wr, session, &[]).await.is_err() {
                    break;
                }
            }
            Some(Output::Close) => break,
            Some(Output::Depart) => return Some(wr),
            Some(Output::Write(n)) => {
                // Bytes the socket took are reported as each write finishes,
                // not only once the whole batch is out: a subscriber that
                // reads shows it does (its share of the worker's backlog,
                // `ringcast_core::hub` backlog docs), and the rest of a
                // large batch counts as its output meanwhile.
                let mut reported = 0;
                let mut progress = |bytes: usize| {
                    reported += bytes;
                    worker.with_hub(|h| h.sent(key, bytes));
                };
                let ok = if let Some(session) = &tls {
                    tls::write_batch(&mut wr, session, &batch).await.is_ok()
                } else if n >= DIRECT_WRITE_MIN && worker.uring() {
                    match send_now(fd, &mut batch, &mut progress) {
                        Ok(true) => true,
                        Ok(false) => writev_all(&mut wr, &mut batch, &mut progress).await.is_ok(),
                        Err(_) => false,
                    }
                } else if batch.len() == 1 {
                    let one = batch.pop().unwrap_or_default();
                    wr.write_all(one).await.0.is_ok()
                } else {
                    writev_all(&mut wr, &mut batch, &mut progress).await.is_ok()
                };
                batch.clear();
                if batch.capacity() > IOV_MAX {
                    // After a burst of many frames, do not keep room for them.
                    batch = Vec::new();
                }
                if !ok {
                    break;
                }
                if reported < n {
                    worker.with_hub(|h| h.sent(key, n - reported));
                }
            }
        }
    }
    shutdown(fd);
    None
}

/// Batches at least this large are written at once with a non-blocking
/// `sendmsg` rather than through io_uring. An io_uring write's completion is
/// seen only when the worker next waits for events, and until then its
/// bytes still count against the connection's output limit although the
/// kernel took them long ago; with large messages a subscriber that reads
/// could be cut off for what it already has. A direct write is known to be
/// done as it returns (as Redis writes). Small batches stay on io_uring,
/// where one system call submits the sends of many connections.
const DIRECT_WRITE_MIN: usize = 16 * 1024;

/// Send what the socket takes now, without waiting: whole frames sent are
/// removed from `batch`, a frame sent in part is advanced, and `progress`
/// hears of the bytes sent by each call. True when all of it went.
fn send_now(
    fd: RawFd,
    batch: &mut Vec<Bytes>,
    progress: &mut impl FnMut(usize),
) -> std::io::Result<bool> {
    let mut start = 0;
    while start < batch.len() {
        let end = (start + IOV_MAX).min(batch.len());
        let mut iovecs: Vec<libc::iovec> = batch[start..end]
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut _,
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: msghdr is plain data; every iovec points into a `Bytes`
        // of `batch`, alive and unmoved for the duration of the call, which
        // only reads them.
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iovecs.as_mut_ptr();
            msg.msg_iovlen = iovecs.len() as _;
            libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        };
        if sent < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock => {
                    batch.drain(..start);
                    Ok(false)
                }
                std::io::ErrorKind::Interrupted => continue,
                _ => Err(e),
            };
        }
        progress(sent as usize);
        start = consume(batch, start, sent as usize);
        if start < end {
            // The socket took less than offered: it is full for now.
            batch.drain(..start);
            return Ok(false);
        }
    }
    batch.clear();
    Ok(true)
}

/// `n` bytes of `batch[start..]` were sent: returns the index of the first
/// frame not sent whole, advanced past what of it was sent.
fn consume(batch: &mut [Bytes], mut start: usize, mut n: usize) -> usize {
    while n > 0 && start < batch.len() {
        let b = &mut batch[start];
        if n >= b.len() {
            n -= b.len();
            start += 1;
        } else {
            b.advance(n);
            n = 0;
        }
    }
    start
}

/// Shared frames handed to one writev; owning them keeps the memory valid
/// for as long as the kernel may read it, even if the future is dropped.
struct IoVecs {
    _bufs: Vec<Bytes>,
    iovecs: Vec<libc::iovec>,
}

// SAFETY: every iovec points into a `Bytes` held in `bufs`, which lives as
// long as this value; `Bytes` memory never moves.
unsafe impl IoVecBuf for IoVecs {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iovecs.as_ptr()
    }
    fn read_iovec_len(&self) -> usize {
        self.iovecs.len()
    }
}

/// Write all of `batch`, `IOV_MAX` frames per vectored write; `progress`
/// hears of the bytes each write sent.
async fn writev_all<W: AsyncWriteRent>(
    wr: &mut W,
    batch: &mut [Bytes],
    progress: &mut impl FnMut(usize),
) -> std::io::Result<()> {
    let mut start = 0;
    while start < batch.len() {
        let end = (start + IOV_MAX).min(batch.len());
        let bufs: Vec<Bytes> = batch[start..end].to_vec();
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut _,
                iov_len: b.len(),
            })
            .collect();
        let (res, _) = wr
            .writev(IoVecs {
                _bufs: bufs,
                iovecs,
            })
            .await;
        let n = res?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        progress(n);
        start = consume(batch, start, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_large_argument_grows_the_buffer_only_with_what_arrives() {
        let declared = 512 << 20;
        assert_eq!(read_room(READ_MIN, 100, Some(declared)), READ_MIN);
        assert_eq!(read_room(READ_MAX, 100, Some(declared)), READ_MAX);
        // Once more has arrived than a chunk, the room doubles what is there.
        assert_eq!(read_room(READ_MIN, 1 << 20, Some(declared)), 1 << 20);
        // Never past what the argument still needs.
        assert_eq!(
            read_room(READ_MIN, declared - 10, Some(declared)),
            10.max(READ_MIN)
        );
        assert_eq!(read_room(4096, 0, None), 4096);
    }
}
