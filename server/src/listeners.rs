//! The listening sockets and their acceptor threads: bound at startup from
//! `port`, `tls-port` and `bind`, bound again when `CONFIG SET` changes one
//! of them (Redis's `changeListener`), stopped at shutdown.
//!
//! Addresses are read as Redis 7 reads them: `*` is every IPv4 address,
//! `::*` every IPv6 one (IPv6 sockets are IPv6-only, so both can be bound on
//! one port), and an address written `-addr` is skipped, with a warning,
//! when it is not available on this machine (`bind 127.0.0.1 -::1` on a
//! host without IPv6). An address family the system lacks is skipped too;
//! any other failure is an error.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use anyhow::{Context, bail};
use crossbeam_channel::Sender;
use ringcast_core::config::Config;
use ringcast_core::shared::Shared;

use crate::acceptor::{self, Handoff};
use crate::tls::TlsContext;

/// A listening socket, plain (`port`) or TLS (`tls-port`).
pub(crate) struct Listener {
    pub socket: TcpListener,
    pub tls: bool,
}

impl Listener {
    pub(crate) fn kind(&self) -> &'static str {
        if self.tls { "tls" } else { "tcp" }
    }
}

/// One listener per `bind` address on `port` and one on `tls-port`; a port
/// of 0 has no listener, as in Redis, and `bind ""` none at all. Something
/// must be listened on.
pub(crate) fn listen(config: &Config) -> anyhow::Result<Vec<Listener>> {
    let listeners = bind_all(config)?;
    if listeners.is_empty() {
        bail!("Configured to not listen anywhere, exiting.");
    }
    Ok(listeners)
}

fn bind_all(config: &Config) -> anyhow::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    for (port, tls) in [(config.port, false), (config.tls.port, true)] {
        if port == 0 {
            continue;
        }
        for addr in &config.bind {
            if let Some(socket) = listen_on(addr, port)? {
                listeners.push(Listener { socket, tls });
            }
        }
    }
    Ok(listeners)
}

/// Redis's listen backlog (`tcp-backlog` 511).
const LISTEN_BACKLOG: i32 = 511;

/// A listener on one `bind` address, or None when it is skipped.
fn listen_on(addr: &str, port: u16) -> anyhow::Result<Option<TcpListener>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
    let (optional, host) = match addr.strip_prefix('-') {
        Some(host) => (true, host),
        None => (false, addr),
    };
    let ipv6 = host.contains(':');
    let candidates: Vec<SocketAddr> = match host {
        "*" => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)],
        "::*" => vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)],
        _ => (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot listen on {host}:{port}"))?
            .filter(|a| a.is_ipv6() == ipv6)
            .collect(),
    };
    let mut last = None;
    for candidate in &candidates {
        match bind_socket(*candidate) {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into());
    tracing::warn!("Warning: Could not create server TCP listening socket {host}:{port}: {e}");
    let skipped = match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => optional,
        Some(
            libc::ENOPROTOOPT
            | libc::EPROTONOSUPPORT
            | libc::ESOCKTNOSUPPORT
            | libc::EPFNOSUPPORT
            | libc::EAFNOSUPPORT,
        ) => true,
        _ => false,
    };
    if skipped {
        return Ok(None);
    }
    Err(anyhow::Error::new(e).context(format!("cannot listen on {host}:{port}")))
}

/// A listening socket as Redis makes it: address reuse, IPv6-only for an
/// IPv6 address, Redis's backlog.
fn bind_socket(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// An acceptor thread, the descriptor of its listener (to wake it) and the
/// flag that tells it to stop.
struct Running {
    fd: RawFd,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The acceptors running, and what a new one needs.
pub(crate) struct Listeners {
    shared: Arc<Shared>,
    workers: Vec<Sender<Handoff>>,
    /// Shared by every acceptor: connections go round-robin over workers.
    next: Arc<AtomicUsize>,
    /// The TLS context, made at startup or by the first `CONFIG SET tls-port`.
    tls: Mutex<Option<Arc<TlsContext>>>,
    running: Mutex<Vec<Running>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Listeners {
    pub(crate) fn new(
        shared: Arc<Shared>,
        workers: Vec<Sender<Handoff>>,
        tls: Option<Arc<TlsContext>>,
    ) -> Arc<Listeners> {
        Arc::new(Listeners {
            shared,
            workers,
            next: Arc::new(AtomicUsize::new(0)),
            tls: Mutex::new(tls),
            running: Mutex::new(Vec::new()),
        })
    }

    /// One acceptor thread per listener.
    pub(crate) fn start(&self, listeners: Vec<Listener>) -> anyhow::Result<()> {
        let mut running = lock(&self.running);
        self.spawn_all(listeners, &mut running)
    }

    fn spawn_all(
        &self,
        listeners: Vec<Listener>,
        running: &mut Vec<Running>,
    ) -> anyhow::Result<()> {
        let tls = lock(&self.tls).clone();
        for listener in listeners {
            let fd = listener.socket.as_raw_fd();
            let stop = Arc::new(AtomicBool::new(false));
            let a = acceptor::Acceptor {
                listener: listener.socket,
                shared: self.shared.clone(),
                workers: self.workers.clone(),
                next: self.next.clone(),
                tls: if listener.tls { tls.clone() } else { None },
                stop: stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name("ringcast-accept".into())
                .spawn(move || a.run())
                .context("cannot start the acceptor")?;
            running.push(Running { fd, stop, thread });
        }
        Ok(())
    }

    /// Wakes every acceptor and waits for it to end (its listener closes).
    fn stop_all(running: &mut Vec<Running>) {
        for r in running.iter() {
            r.stop.store(true, Ordering::Release);
            // SAFETY: the listener is still open (its acceptor thread owns
            // it until it returns, which is awaited below); shutdown wakes
            // its blocking accept().
            unsafe {
                libc::shutdown(r.fd, libc::SHUT_RDWR);
            }
        }
        for r in running.drain(..) {
            let _ = r.thread.join();
        }
    }

    /// Shutdown: stop accepting, for good.
    pub(crate) fn close(&self) {
        Self::stop_all(&mut lock(&self.running));
    }

    /// `CONFIG SET port|bind|tls-port`, as Redis's `changeListener`: the old
    /// listeners close, the new ones are bound; if that fails, the old ones
    /// are bound again and the error is Redis's text for the parameter.
    /// `new` is the configuration being set, `old` the live one.
    pub(crate) fn relisten(&self, new: &Config, old: &Config, param: &str) -> Result<(), String> {
        let mut running = lock(&self.running);
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err("The server is shutting down.".into());
        }
        if new.tls.port != 0 && lock(&self.tls).is_none() {
            match TlsContext::new(&new.tls) {
                Ok(context) => *lock(&self.tls) = Some(context),
                Err(why) => {
                    tracing::warn!("Failed to configure TLS: {why}");
                    return Err("Unable to update TLS configuration. Check server logs.".into());
                }
            }
        }
        Self::stop_all(&mut running);
        let bound = bind_all(new).and_then(|l| self.spawn_all(l, &mut running));
        let Err(e) = bound else {
            return Ok(());
        };
        tracing::warn!("{e:#}");
        Self::stop_all(&mut running);
        if let Err(e) = bind_all(old).and_then(|l| self.spawn_all(l, &mut running)) {
            tracing::error!("could not listen again as before: {e:#}");
        }
        Err(if param == "bind" {
            "Failed to bind to specified addresses."
        } else {
            "Unable to listen on this port. Check server logs."
        }
        .into())
    }

    /// Checks a new TLS configuration for `CONFIG SET` (reloads the context
    /// new connections use); without a context yet there is nothing to load.
    pub(crate) fn reload_tls(&self, config: &Config) -> Result<(), String> {
        match lock(&self.tls).as_ref() {
            Some(context) => context.reload(config),
            None => Ok(()),
        }
    }
}
