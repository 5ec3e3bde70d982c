//! The open-file limit and `maxclients`, as Redis's `adjustOpenFilesLimit`
//! (server.c): every client costs a descriptor and the process keeps some for
//! itself, so at startup and on `CONFIG SET maxclients` the soft
//! `RLIMIT_NOFILE` is raised to hold `maxclients` plus that reserve, and
//! where the system does not allow it `maxclients` is what gives way, with
//! Redis's log lines. The acceptor's spare descriptor covers what is left:
//! descriptors used up anyway (another thread, a lowered limit).

use std::io;

/// Redis's `CONFIG_MIN_RESERVED_FDS`: descriptors kept for everything that
/// is not a client (standard streams, listeners, log, files read now and then).
const MIN_RESERVED_FDS: usize = 32;

/// Descriptors the process keeps for itself: Redis's reserve, plus what
/// ringcast holds beyond a single-threaded Redis: each worker's ring (or
/// epoll instance) and doorbell, and the metrics endpoint with its
/// connections when it is on.
pub(crate) fn reserved(workers: usize, metrics: bool) -> usize {
    let metrics = if metrics {
        crate::metrics::DESCRIPTORS
    } else {
        0
    };
    MIN_RESERVED_FDS + 2 * workers + metrics
}

/// The limit cannot hold even the process's own descriptors.
#[derive(Debug)]
pub(crate) struct TooFewFiles {
    current: u64,
    needed: u64,
}

impl std::fmt::Display for TooFewFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Your current 'ulimit -n' of {} is not enough for the server to start. Please increase your open file limit to at least {}. Exiting.",
            self.current, self.needed
        )
    }
}

impl std::error::Error for TooFewFiles {}

/// How many of `wanted` clients the open-file limit holds, raising the
/// limit first if it is too low. Logs as Redis does when it raises the
/// limit or has to lower `maxclients`.
pub(crate) fn fit_maxclients(wanted: usize, reserved: usize) -> Result<usize, TooFewFiles> {
    let needed = (wanted as u64).saturating_add(reserved as u64);
    let Ok(old) = get() else {
        tracing::warn!(
            "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.",
            os_text(&io::Error::last_os_error())
        );
        return Ok(1024usize.saturating_sub(reserved).min(wanted));
    };
    if old.rlim_cur >= needed {
        return Ok(wanted);
    }
    let (best, refused) = raise(old, needed);
    let Some(refused) = refused else {
        tracing::info!(
            "Increased maximum number of open files to {needed} (it was originally set to {}).",
            old.rlim_cur
        );
        return Ok(wanted);
    };
    if best <= reserved as u64 {
        return Err(TooFewFiles {
            current: old.rlim_cur,
            needed,
        });
    }
    let maxclients = (best - reserved as u64) as usize;
    tracing::warn!(
        "You requested maxclients of {wanted} requiring at least {needed} max file descriptors."
    );
    tracing::warn!(
        "Server can't set maximum open files to {needed} because of OS error: {}.",
        os_text(&refused)
    );
    tracing::warn!(
        "Current maximum open files is {best}. maxclients has been reduced to {maxclients} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    Ok(maxclients)
}

/// Raise the soft limit as close to `needed` as the system allows; returns
/// the limit now in force and, if it is below `needed`, why.
///
/// Redis steps down from `needed` 16 at a time; a binary search finds the
/// highest allowed limit exactly, in a few dozen calls even for a huge
/// `maxclients`. The hard limit is left as it is where it need not rise
/// (Redis lowers it to the new soft limit, which would keep a later
/// `CONFIG SET maxclients` from raising it again).
fn raise(old: libc::rlimit, needed: u64) -> (u64, Option<io::Error>) {
    let try_set = |n: u64| {
        set(libc::rlimit {
            rlim_cur: n,
            rlim_max: old.rlim_max.max(n),
        })
    };
    let Err(refused) = try_set(needed) else {
        return (needed, None);
    };
    // `allowed` is always a limit the system accepted (the current one at
    // first); `denied` one it refused.
    let (mut allowed, mut denied) = (old.rlim_cur, needed);
    while denied - allowed > 1 {
        let mid = allowed + (denied - allowed) / 2;
        match try_set(mid) {
            Ok(()) => allowed = mid,
            Err(_) => denied = mid,
        }
    }
    // The last limit set is `allowed` (or none was, and the old one holds).
    (allowed, Some(refused))
}

fn get() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live rlimit it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        Ok(limit)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set(limit: libc::rlimit) -> io::Result<()> {
    // SAFETY: setrlimit only reads the live rlimit it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `strerror` text, as Redis prints it (without Rust's "(os error N)").
fn os_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
