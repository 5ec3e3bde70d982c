//! The acceptor: one blocking thread per listening address that hands each
//! new connection to the next worker, round-robin.
//!
//! One acceptor rather than an SO_REUSEPORT listener per worker: the kernel
//! spreads REUSEPORT connections by a hash of the address pair, which for a
//! few long-lived pub/sub connections can leave one worker with most of them;
//! round-robin is even by construction, and it makes placement predictable
//! (the k-th connection lands on worker k mod N), which the cross-worker
//! tests rely on. Accepting is far off the hot path (one hand-off per
//! connection), so the extra hop costs nothing that matters.
//!
//! A `tls-port` listener has its own acceptor, which hands each connection
//! over with the TLS context current at that moment; the worker does the
//! handshake. Its client slot is taken here as for a plain connection, so
//! connections still in their handshake count against `maxclients`.
//!
//! It also refuses the connections Redis refuses at accept time, with
//! Redis's error line: past `maxclients`, and non-loopback clients in
//! protected mode (`Config::protected_mode_denies`). `maxclients` is counted
//! here, with a slot taken before the hand-off ([`ClientSlot`]), so sockets
//! still on their way to a busy worker count too. Out of descriptors, it
//! refuses the waiting client on a spare one ([`Spare`]) rather than leave it
//! hanging.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ringcast_core::shared::Shared;

use crate::tls::TlsContext;

/// A client's place under `maxclients`, taken by the acceptor. Dropped
/// before the connection reaches its worker's hub (refused, hand-off
/// failed, worker gone), it gives the place back; once the hub has the
/// connection, `Hub::disconnect` gives it back instead.
pub(crate) struct ClientSlot {
    shared: Arc<Shared>,
    held: bool,
}

impl ClientSlot {
    /// A slot if fewer than `maxclients` are taken.
    fn take(shared: &Arc<Shared>, maxclients: usize) -> Option<ClientSlot> {
        shared.admit_client(maxclients).then(|| ClientSlot {
            shared: shared.clone(),
            held: true,
        })
    }

    /// The hub now owns the connection, and with it the slot.
    pub(crate) fn pass_to_hub(mut self) {
        self.held = false;
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if self.held {
            self.shared.release_client();
        }
    }
}

/// A new connection on its way to a worker, with its slot, and for a TLS
/// connection the TLS context current when it was accepted.
pub(crate) struct Handoff {
    pub stream: TcpStream,
    pub slot: ClientSlot,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

pub(crate) struct Acceptor {
    pub listener: TcpListener,
    pub shared: Arc<Shared>,
    pub workers: Vec<Sender<Handoff>>,
    pub next: Arc<AtomicUsize>,
    /// Set on a `tls-port` listener.
    pub tls: Option<Arc<TlsContext>>,
    /// Set when the listener is to close (shutdown, or `CONFIG SET port`).
    pub stop: Arc<AtomicBool>,
}

impl Acceptor {
    pub(crate) fn run(self) {
        let mut spare = Spare::reserve(&self.listener);
        let mut errors = AcceptErrors::default();
        loop {
            let accepted = self.listener.accept();
            if self.shared.shutting_down.load(Ordering::Acquire)
                || self.stop.load(Ordering::Acquire)
            {
                return;
            }
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) => self.accept_failed(&e, &mut spare, &mut errors),
            }
        }
    }

    fn accept_failed(&self, e: &io::Error, spare: &mut Spare, errors: &mut AcceptErrors) {
        match e.raw_os_error() {
            // Out of descriptors, the waiting client would hang in the
            // backlog (and accept fail again at once): take it on the spare.
            Some(libc::EMFILE | libc::ENFILE) => {
                let refused = spare.release() && self.accept_on_spare(spare);
                errors.record(e, refused);
                if !spare.restore(&self.listener) {
                    // No spare to use: do not spin until a descriptor frees up.
                    std::thread::sleep(BACKOFF);
                }
            }
            Some(libc::ENOBUFS | libc::ENOMEM) => {
                errors.record(e, false);
                std::thread::sleep(BACKOFF);
            }
            _ => tracing::debug!("accept: {e}"),
        }
    }

    /// With the spare descriptor released, accept the waiting client. If the
    /// spare can be taken back, descriptors were freed meanwhile and the
    /// client is admitted as usual; else it is refused with Redis's
    /// maxclients error. Returns whether it was refused.
    fn accept_on_spare(&self, spare: &mut Spare) -> bool {
        let accepted = self.listener.accept();
        let room = spare.restore(&self.listener);
        match accepted {
            Ok((stream, peer)) if room => {
                self.admit(stream, peer);
                false
            }
            Ok((stream, _)) => {
                reject(stream, &self.shared, ringcast_core::errors::MAX_CLIENTS);
                true
            }
            Err(_) => false,
        }
    }

    /// Refuse the connection, or hand it to the next worker.
    fn admit(&self, stream: TcpStream, peer: SocketAddr) {
        let config = self.shared.config.load();
        let Some(slot) = ClientSlot::take(&self.shared, config.maxclients) else {
            reject(stream, &self.shared, ringcast_core::errors::MAX_CLIENTS);
            return;
        };
        if config.protected_mode_denies(peer.ip()) {
            tracing::debug!("protected mode: refusing {peer}");
            reject(stream, &self.shared, ringcast_core::errors::PROTECTED_MODE);
            return;
        }
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream, config.tcp_keepalive);
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let tls = self.tls.as_ref().map(|t| t.for_connection(&config));
        let w = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        tracing::debug!("connection from {peer} to worker {w}");
        // A failed send drops the hand-off, and with it the slot.
        if self.workers[w].send(Handoff { stream, slot, tls }).is_ok() {
            self.shared.doorbells.ring(w);
        }
    }
}

/// How long the acceptor waits before trying again when accepting failed
/// for want of descriptors or memory and nothing can be done about it now.
const BACKOFF: Duration = Duration::from_millis(10);

/// One descriptor held in reserve, so that a client can still be accepted,
/// told `max number of clients reached` and closed when the process is out
/// of descriptors, instead of waiting in the backlog for one to free up.
/// It is a duplicate of the listener's descriptor: nothing to open, no
/// file that might be missing.
struct Spare {
    fd: Option<OwnedFd>,
}

impl Spare {
    fn reserve(listener: &TcpListener) -> Spare {
        Spare {
            fd: listener.as_fd().try_clone_to_owned().ok(),
        }
    }

    /// Close the spare descriptor (false if there was none).
    fn release(&mut self) -> bool {
        self.fd.take().is_some()
    }

    /// Hold a spare descriptor again; false if none is free.
    fn restore(&mut self, listener: &TcpListener) -> bool {
        if self.fd.is_none() {
            *self = Spare::reserve(listener);
        }
        self.fd.is_some()
    }
}

/// Accept failures, logged at most once a second with how many there were,
/// so that running out of descriptors does not also flood the log.
#[derive(Default)]
struct AcceptErrors {
    last_report: Option<Instant>,
    failures: u64,
    refused: u64,
}

impl AcceptErrors {
    const EVERY: Duration = Duration::from_secs(1);

    fn record(&mut self, e: &io::Error, refused: bool) {
        self.failures += 1;
        self.refused += u64::from(refused);
        let now = Instant::now();
        if self
            .last_report
            .is_some_and(|at| now.duration_since(at) < Self::EVERY)
        {
            return;
        }
        tracing::warn!(
            "accept: {e}; since the last report: {} failed accepts, {} clients refused with 'max number of clients reached'",
            self.failures,
            self.refused
        );
        *self = AcceptErrors {
            last_report: Some(now),
            failures: 0,
            refused: 0,
        };
    }
}

/// Refuse a connection with an error line and close it (`maxclients`,
/// protected mode), counted in INFO `rejected_connections`.
fn reject(mut stream: TcpStream, shared: &Shared, error: &str) {
    shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
    // Best effort, as Redis: the client may already be gone.
    let _ = stream.write_all(format!("-{error}\r\n").as_bytes());
}

fn set_keepalive(stream: &TcpStream, interval: u64) {
    if interval == 0 {
        return;
    }
    let fd = stream.as_raw_fd();
    let on: libc::c_int = 1;
    let idle = interval.min(i32::MAX as u64) as libc::c_int;
    let intvl = (idle / 3).max(1);
    let cnt: libc::c_int = 3;
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: plain setsockopt calls on an open socket with pointers to live ints.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            &on as *const _ as *const _,
            size,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            &idle as *const _ as *const _,
            size,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            &intvl as *const _ as *const _,
            size,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            &cnt as *const _ as *const _,
            size,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockopt(stream: &std::net::TcpStream, level: libc::c_int, name: libc::c_int) -> i32 {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into a live c_int.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                level,
                name,
                &mut value as *mut _ as *mut _,
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
        value
    }

    #[test]
    fn keepalive_interval_is_applied_to_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        set_keepalive(&client, 77);
        assert_eq!(sockopt(&client, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(sockopt(&client, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 77);
        assert_eq!(sockopt(&client, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 25);
    }

    #[test]
    fn keepalive_zero_leaves_the_socket_alone() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        set_keepalive(&client, 0);
        assert_eq!(sockopt(&client, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
    }
}
