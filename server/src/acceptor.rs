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
//! It also refuses the connections Redis refuses at accept time, with
//! Redis's error line: past `maxclients`, and non-loopback clients in
//! protected mode (`Config::protected_mode_denies`). `maxclients` is counted
//! here, with a slot taken before the hand-off ([`ClientSlot`]), so sockets
//! still on their way to a busy worker count too.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::Sender;
use ringcast_core::shared::Shared;

/// A client's place under `maxclients`, taken by the acceptor. Dropped
/// before the connection reaches its worker's hub (refused, hand-off
/// failed, worker gone), it gives the place back; once the hub has the
/// connection, `Hub::disconnect` gives it back instead.
pub struct ClientSlot {
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
    pub fn pass_to_hub(mut self) {
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

/// A new connection on its way to a worker, with its slot.
pub struct Handoff {
    pub stream: TcpStream,
    pub slot: ClientSlot,
}

pub struct Acceptor {
    pub listener: TcpListener,
    pub shared: Arc<Shared>,
    pub workers: Vec<Sender<Handoff>>,
    pub next: Arc<AtomicUsize>,
}

impl Acceptor {
    pub fn run(self) {
        loop {
            let accepted = self.listener.accept();
            if self.shared.shutting_down.load(Ordering::Acquire) {
                return;
            }
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) => match e.raw_os_error() {
                    // Out of descriptors or memory: back off a little instead of spinning.
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        tracing::warn!("accept: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    _ => tracing::debug!("accept: {e}"),
                },
            }
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
        let w = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        tracing::debug!("connection from {peer} to worker {w}");
        // A failed send drops the hand-off, and with it the slot.
        if self.workers[w].send(Handoff { stream, slot }).is_ok() {
            self.shared.doorbells.ring(w);
        }
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
