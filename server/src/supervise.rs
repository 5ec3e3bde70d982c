//! How the process runs under an init system, as redis-server does:
//! `daemonize` (fork into the background), `pidfile`, and `supervised`
//! (telling systemd or upstart when it is ready and when it stops).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

use ringcast_core::config::{Config, DEFAULT_PIDFILE, Supervised};

/// The supervisor the process reports to, once `supervised` is resolved.
#[derive(Clone, Debug)]
pub(crate) enum Supervisor {
    None,
    /// The `$NOTIFY_SOCKET` systemd gave.
    Systemd(OsString),
    Upstart,
}

impl Supervisor {
    /// Resolves `supervised` as Redis's `redisIsSupervised` does: `auto`
    /// picks upstart if `$UPSTART_JOB` is set, else systemd if
    /// `$NOTIFY_SOCKET` is; a supervisor asked for but absent from the
    /// environment is a warning, and the process runs unsupervised.
    pub(crate) fn from_config(config: &Config) -> Supervisor {
        let upstart = std::env::var_os("UPSTART_JOB").is_some();
        let socket = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let mode = match config.supervised {
            Supervised::Auto if upstart => Supervised::Upstart,
            Supervised::Auto if socket.is_some() => Supervised::Systemd,
            other => other,
        };
        match (mode, socket) {
            (Supervised::Systemd, Some(socket)) => {
                let supervisor = Supervisor::Systemd(socket);
                match supervisor.notify("STATUS=ringcast is loading...\n") {
                    Ok(()) => {
                        tracing::info!(
                            "Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."
                        );
                        supervisor
                    }
                    Err(e) => {
                        tracing::warn!("systemd supervision error: sd_notify: {e}");
                        Supervisor::None
                    }
                }
            }
            (Supervised::Systemd, None) => {
                tracing::warn!("systemd supervision error: NOTIFY_SOCKET not found!");
                Supervisor::None
            }
            (Supervised::Upstart, _) if upstart => {
                tracing::info!("supervised by upstart, will stop to signal readiness.");
                Supervisor::Upstart
            }
            (Supervised::Upstart, _) => {
                tracing::warn!("upstart supervision requested, but UPSTART_JOB not found!");
                Supervisor::None
            }
            _ => Supervisor::None,
        }
    }

    /// INFO `process_supervised`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Supervisor::None => "no",
            Supervisor::Systemd(_) => "systemd",
            Supervisor::Upstart => "upstart",
        }
    }

    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, Supervisor::None)
    }

    /// Every listener is up: systemd gets `READY=1`; under upstart the
    /// process stops itself (`expect stop`), to be continued by upstart.
    pub(crate) fn ready(&self) {
        match self {
            Supervisor::Systemd(_) => {
                for state in ["STATUS=Ready to accept connections\n", "READY=1\n"] {
                    if let Err(e) = self.notify(state) {
                        tracing::warn!("systemd supervision error: sd_notify: {e}");
                    }
                }
            }
            Supervisor::Upstart => {
                // SAFETY: raise(2) with a valid signal number; SIGSTOP
                // suspends the process until upstart sends SIGCONT.
                unsafe {
                    libc::raise(libc::SIGSTOP);
                }
            }
            Supervisor::None => {}
        }
    }

    /// The shutdown started: systemd gets `STOPPING=1`.
    pub(crate) fn stopping(&self) {
        if let Supervisor::Systemd(_) = self
            && let Err(e) = self.notify("STOPPING=1\n")
        {
            tracing::warn!("systemd supervision error: sd_notify: {e}");
        }
    }

    /// systemd's notification protocol (`sd_notify`): one datagram holding
    /// `state` on the unix socket `$NOTIFY_SOCKET` names (`@name` for an
    /// abstract one). Written here rather than taken from a crate: it is
    /// one `sendto`, and libsystemd's other features are not needed.
    fn notify(&self, state: &str) -> io::Result<()> {
        let Supervisor::Systemd(path) = self else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_bytes();
        let sent = if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?
        } else {
            socket.send_to(state.as_bytes(), path)?
        };
        if sent != state.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
        }
        Ok(())
    }
}

/// Goes into the background as Redis's `daemonize` does: the parent exits
/// 0 at once, the child starts a new session and its standard input,
/// output and error go to /dev/null (so with `logfile ""` nothing is
/// logged). Must run while the process has a single thread.
pub(crate) fn daemonize() -> anyhow::Result<()> {
    // SAFETY: fork(2) while the process has one thread (no worker, sampler
    // or signal thread has started yet), so the child inherits no lock held
    // by another thread.
    match unsafe { libc::fork() } {
        -1 => anyhow::bail!("cannot fork: {}", io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: setsid, open, dup2 and close on descriptors this process
    // owns; the path is a NUL-terminated literal.
    unsafe {
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0);
        if fd != -1 {
            libc::dup2(fd, libc::STDIN_FILENO);
            libc::dup2(fd, libc::STDOUT_FILENO);
            libc::dup2(fd, libc::STDERR_FILENO);
            if fd > libc::STDERR_FILENO {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// The pid file, written at startup and removed when the process ends
/// cleanly (dropped). As Redis: written when `pidfile` is set or the
/// process daemonized ([`DEFAULT_PIDFILE`] then), failing to write it is
/// a warning, not a reason to stop.
pub(crate) struct PidFile(Option<String>);

impl PidFile {
    pub(crate) fn create(config: &Config, daemonized: bool) -> PidFile {
        let path = match (config.pidfile.as_str(), daemonized) {
            ("", false) => return PidFile(None),
            ("", true) => DEFAULT_PIDFILE,
            (path, _) => path,
        };
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.to_string())),
            Err(e) => {
                tracing::warn!(
                    "Failed to write PID file: {}",
                    ringcast_core::errors::strerror(&e)
                );
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            tracing::info!("Removing the pid file.");
            let _ = std::fs::remove_file(path);
        }
    }
}
