//! Choosing the I/O backend and building each worker's monoio runtime.
//!
//! io_uring is set up with `SINGLE_ISSUER|DEFER_TASKRUN` where the kernel
//! accepts it (each worker is the only thread submitting to its ring, and
//! completions are then processed only when the worker asks for them, which
//! saves the task-work interrupts that made default-flag io_uring cost more
//! CPU than epoll); else `COOP_TASKRUN|TASKRUN_FLAG`; else epoll. The choice
//! is made once at startup, logged, and shown in INFO.

use std::io;

use monoio::time::TimeDriver;
use monoio::{FusionDriver, FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};
use ringcast_core::config::IoBackend;

pub(crate) type WorkerRuntime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// The backend every worker uses, decided once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// io_uring with these setup flags.
    Uring(UringFlags),
    Epoll,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UringFlags {
    SingleIssuerDeferTaskrun,
    CoopTaskrun,
}

impl Backend {
    /// Name shown in INFO (`io_backend`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Uring(_) => "io_uring",
            Backend::Epoll => "epoll",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Backend::Uring(UringFlags::SingleIssuerDeferTaskrun) => {
                "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)"
            }
            Backend::Uring(UringFlags::CoopTaskrun) => "io_uring (COOP_TASKRUN|TASKRUN_FLAG)",
            Backend::Epoll => "epoll",
        }
    }
}

fn uring_builder(flags: UringFlags) -> io_uring::Builder {
    let mut b = io_uring::IoUring::builder();
    match flags {
        UringFlags::SingleIssuerDeferTaskrun => {
            b.setup_single_issuer().setup_defer_taskrun();
        }
        UringFlags::CoopTaskrun => {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }
    }
    b
}

/// Try to create a small ring with these flags (the kernel may refuse them,
/// or refuse io_uring altogether: seccomp, `kernel.io_uring_disabled`).
fn probe(flags: UringFlags) -> io::Result<()> {
    uring_builder(flags).build(8).map(drop)
}

/// Decide the backend for `--io-backend`.
pub(crate) fn choose(wanted: IoBackend) -> Result<Backend, String> {
    if wanted == IoBackend::Epoll {
        return Ok(Backend::Epoll);
    }
    // monoio also checks the opcodes it needs; without them it cannot use io_uring.
    let usable = monoio::utils::detect_uring();
    let mut last_err = None;
    if usable {
        for flags in [
            UringFlags::SingleIssuerDeferTaskrun,
            UringFlags::CoopTaskrun,
        ] {
            match probe(flags) {
                Ok(()) => return Ok(Backend::Uring(flags)),
                Err(e) => last_err = Some(e),
            }
        }
    }
    let why = match last_err {
        Some(e) => format!("io_uring setup failed: {e}"),
        None => "io_uring is not available (blocked, disabled or missing operations)".to_string(),
    };
    match wanted {
        IoBackend::Uring => Err(why),
        _ => {
            tracing::warn!("{why}; falling back to epoll");
            Ok(Backend::Epoll)
        }
    }
}

/// Build one worker's runtime (called on the worker thread: with
/// SINGLE_ISSUER the ring belongs to the thread that creates it).
pub(crate) fn build_runtime(backend: Backend) -> io::Result<WorkerRuntime> {
    match backend {
        Backend::Uring(flags) => {
            let rt = RuntimeBuilder::<FusionDriver>::new()
                .enable_timer()
                .with_entries(4096)
                .uring_builder(uring_builder(flags))
                .build()?;
            match rt {
                FusionRuntime::Uring(_) => Ok(rt),
                FusionRuntime::Legacy(_) => Err(io::Error::other(
                    "io_uring was chosen but the runtime fell back to epoll",
                )),
            }
        }
        Backend::Epoll => Ok(RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .with_entries(4096)
            .build()?
            .into()),
    }
}
