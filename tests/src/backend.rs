//! The I/O backends every end-to-end test runs against, and the seccomp
//! filter that simulates a host where io_uring is blocked.
//!
//! Docker's default seccomp profile makes `io_uring_setup` and friends fail
//! with `EPERM`; ringcast's `--io-backend auto` must then fall back to epoll.
//! [`Backend::UringBlocked`] reproduces that by installing the same kind of
//! filter in the server's process before it executes.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
use std::collections::BTreeMap;

/// How the server under test does its I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `--io-backend uring`.
    Uring,
    /// `--io-backend epoll`.
    Epoll,
    /// `--io-backend auto` in a process whose io_uring syscalls fail with
    /// `EPERM`: ringcast must pick epoll by itself.
    UringBlocked,
}

impl Backend {
    /// The `--io-backend` value passed to ringcast.
    pub fn flag(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::Epoll => "epoll",
            Backend::UringBlocked => "auto",
        }
    }

    /// The `io_backend` INFO field ringcast must report for this backend.
    pub fn expected_info(self) -> &'static str {
        match self {
            Backend::Uring => "io_uring",
            Backend::Epoll | Backend::UringBlocked => "epoll",
        }
    }
}

/// Builds a BPF program that makes every io_uring syscall fail with `EPERM`
/// and allows everything else. Built in the parent: compiling it allocates,
/// which must not happen between `fork` and `exec`.
pub fn io_uring_blocking_filter() -> BpfProgram {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
    .into_iter()
    // An empty rule list matches the syscall whatever its arguments.
    .map(|nr| (nr, Vec::new()))
    .collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .expect("seccompiler supports this architecture");
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .expect("valid seccomp filter");
    filter.try_into().expect("seccomp filter compiles to BPF")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_filter_makes_io_uring_setup_fail_with_eperm_in_a_child() {
        let filter = io_uring_blocking_filter();
        // Try io_uring_setup in a forked child under the filter, report via exit code.
        // SAFETY: the child only calls async-signal-safe functions (prctl,
        // seccomp, syscall, _exit) and touches no locks before exiting.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match seccompiler::apply_filter(&filter) {
                Err(_) => 2,
                Ok(()) => {
                    let mut params = [0u8; 120];
                    // SAFETY: io_uring_setup reads/writes a params struct of 120 bytes.
                    let rc =
                        unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
                    // SAFETY: reading errno of this thread.
                    let errno = unsafe { *libc::__errno_location() };
                    if rc == -1 && errno == libc::EPERM {
                        0
                    } else {
                        1
                    }
                }
            };
            // SAFETY: leaving the forked child without running parent destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "io_uring_setup was not blocked with EPERM"
        );
    }
}
