//! The process sampler: a small thread that reads the operating system's
//! figures about the process every 100 ms (resident memory from
//! `/proc/self/statm`, the bytes allocated and not freed, CPU time from
//! `getrusage`) and hands them to the core's `Sampler`, which keeps peaks and
//! Redis-style instantaneous rates in `Shared` for INFO and the metrics
//! endpoint. Workers never wait for it; INFO never makes a system call.
//!
//! It also applies a `CONFIG SET loglevel` to the running log filter.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ringcast_core::shared::Shared;
use ringcast_core::stats::{CpuTimes, ProcessSample, Sampler};

use crate::logging::SetLogLevel;

pub(crate) fn spawn(shared: Arc<Shared>, set_log_level: SetLogLevel) -> std::io::Result<()> {
    let _ = shared.process.allocator.set(allocator_name());
    let _ = shared.process.os.set(uname());
    std::thread::Builder::new()
        .name("ringcast-stats".into())
        .spawn(move || run(shared, set_log_level))
        .map(drop)
}

fn run(shared: Arc<Shared>, set_log_level: SetLogLevel) {
    let mut sampler = Sampler::default();
    let mut level = shared.config.load().loglevel;
    let page = page_size();
    let total_system_memory = physical_pages().saturating_mul(page);
    while !shared.shutting_down.load(Ordering::Acquire) {
        let sample = ProcessSample {
            allocated: crate::memory::allocated(),
            rss: resident_pages().saturating_mul(page),
            total_system_memory,
            cpu: rusage(libc::RUSAGE_SELF),
            cpu_children: rusage(libc::RUSAGE_CHILDREN),
        };
        sampler.tick(&shared.process, shared.totals(), Instant::now(), sample);
        let wanted = shared.config.load().loglevel;
        if wanted != level {
            set_log_level(wanted);
            level = wanted;
        }
        std::thread::sleep(Sampler::INTERVAL);
    }
}

/// CPU time of the calling thread (`RUSAGE_THREAD`) or of the process.
pub(crate) fn rusage(who: libc::c_int) -> CpuTimes {
    // SAFETY: rusage is plain data; getrusage only writes into it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut ru) != 0 {
            return CpuTimes::default();
        }
        ru
    };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    CpuTimes {
        sys_us: us(ru.ru_stime),
        user_us: us(ru.ru_utime),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

fn physical_pages() -> u64 {
    // SAFETY: as above.
    let n = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    n.max(0) as u64
}

/// Resident pages, the second field of `/proc/self/statm` (0 where absent).
fn resident_pages() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn allocator_name() -> String {
    // SAFETY: mi_version has no arguments and no side effects.
    let v = unsafe { libmimalloc_sys::mi_version() };
    // 2.x encodes 2.1.7 as 217; 3.x encodes 3.3.2 as 30302.
    if v >= 10_000 {
        format!("mimalloc-{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    } else {
        format!("mimalloc-{}.{}.{}", v / 100, (v / 10) % 10, v % 10)
    }
}

/// `sysname release machine`, as Redis prints INFO `os`.
fn uname() -> String {
    // SAFETY: utsname is plain data that uname fills with NUL-terminated strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        )
    }
}
