//! Linux process facts and controls: CPU time and RSS from `/proc`, CPU
//! affinity, the open-file limit, and the monotonic clock with precise sleeps.
//!
//! CPU time is user+sys from `/proc/<pid>/stat`, which sums all threads of the
//! process — the right figure for a multi-threaded server.

use anyhow::{Context, Result, bail};

/// Clock ticks per second used by `/proc/<pid>/stat`.
fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// user+sys CPU time of a process, in nanoseconds (resolution: one clock tick).
pub fn cpu_ns(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_ticks(&text)
        .map(|ticks| ticks * 1_000_000_000 / clk_tck())
        .with_context(|| format!("parsing {path}"))
}

/// user+sys CPU time of this process, in nanoseconds.
pub fn self_cpu_ns() -> Result<u64> {
    cpu_ns(std::process::id())
}

/// utime + stime (fields 14 and 15) from the text of `/proc/<pid>/stat`.
/// The command name (field 2) may contain spaces and parentheses, so fields
/// are counted from the last `)`.
pub fn parse_stat_cpu_ticks(text: &str) -> Result<u64> {
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .context("no ')' in stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')' field 3 (state) is index 0, so field n is index n - 3.
    let utime: u64 = fields.get(11).context("short stat")?.parse()?;
    let stime: u64 = fields.get(12).context("short stat")?.parse()?;
    Ok(utime + stime)
}

/// Resident set size of a process in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vmrss(&text).with_context(|| format!("no VmRSS in {path}"))
}

pub fn parse_vmrss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// True when a process with this pid is visible in `/proc`.
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}/stat")).exists()
}

/// True when process `pid` holds a listening TCP socket on `port`: the
/// socket inodes listening on the port (from `/proc/net/tcp` and `tcp6`) are
/// matched against the process's open file descriptors. This rules out a pid
/// from another pid namespace (a server in a container) that happens to
/// exist here too.
pub fn pid_listens_on(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(listening_inodes(&text, port));
    }
    if inodes.is_empty() {
        return false;
    }
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read_link(e.path())
            .ok()
            .and_then(|t| {
                t.to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
            })
            .is_some_and(|ino| inodes.contains(&ino))
    })
}

/// The process holding the listening TCP socket on `port`, found by
/// scanning `/proc` (for servers that do not report their pid, like
/// nats-server).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let dir = std::fs::read_dir("/proc").ok()?;
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| pid_listens_on(pid, port))
}

/// Inodes of sockets in LISTEN state (`0A`) on `port`, from a `/proc/net/tcp*` table.
fn listening_inodes(text: &str, port: u16) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            let listening = *f.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// Parses a CPU list like `0`, `1-3`, `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse()?, b.trim().parse()?);
                if a > b {
                    bail!("bad CPU range {part}");
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse()?),
        }
    }
    if out.is_empty() {
        bail!("empty CPU list");
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Pins the calling thread (and threads it spawns later) to `cpus`.
/// `pid` 0 means the caller; it is also used in a child between fork and exec.
pub fn set_affinity(pid: libc::pid_t, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c < libc::CPU_SETSIZE as usize {
            // SAFETY: `c` is below CPU_SETSIZE, so CPU_SET writes inside `set`.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// CPUs the calling thread may run on.
pub fn current_affinity() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return vec![0];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: index is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Raises the open-file soft limit to the hard limit (many connections).
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid struct pointer.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 1024;
        }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
        rl.rlim_cur
    }
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO: no syscall). Every payload's send
/// time and every receive time is on this clock, so threads (and the floor
/// relay) compare stamps without a common epoch.
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reads `deadline_ns` (absolute, so a late
/// wake-up is not added to the next one). Returns at once for a past deadline.
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: a valid timespec; the remainder pointer may be null with TIMER_ABSTIME.
    // EINTR simply ends the sleep early: callers re-check the clock.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Sets the calling thread's timer slack to 1 ns so its sleeps wake on time
/// (the default 50 µs slack would blur a send schedule).
/// Fix a socket's receive buffer at `bytes` (the kernel doubles it for its
/// bookkeeping), which also turns off the kernel's receive-buffer autotuning
/// for it.
pub fn set_recv_buffer(fd: std::os::fd::RawFd, bytes: usize) -> std::io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `&v`, which
    // lives across the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn set_precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_receive_buffer_is_what_the_socket_reports() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        set_recv_buffer(s.as_raw_fd(), 1 << 20).unwrap();
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`.
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        // The kernel doubles the size asked for (capped by rmem_max).
        assert!(
            v >= 2 * (1 << 20) || v as i64 >= rmem_max() * 2,
            "SO_RCVBUF {v}"
        );
    }

    fn rmem_max() -> i64 {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn stat_cpu_ticks_are_fields_14_and_15_even_with_odd_names() {
        let text = "1234 (redis) server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 1000 200";
        assert_eq!(parse_stat_cpu_ticks(text).unwrap(), 325);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(self_cpu_ns().is_ok());
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0,2-4").unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn own_listening_socket_is_found_and_other_ports_are_not() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
        drop(probe);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(pid_listens_on(std::process::id(), port));
        drop(l);
        assert!(!pid_listens_on(std::process::id(), port));
    }

    #[test]
    fn monotonic_clock_advances_and_past_deadlines_return_at_once() {
        let a = monotonic_ns();
        sleep_until_ns(a.saturating_sub(1_000_000));
        sleep_until_ns(a + 100_000);
        assert!(monotonic_ns() >= a + 100_000);
    }

    #[test]
    fn vmrss_is_read_in_bytes() {
        assert_eq!(
            parse_vmrss("Name:\tx\nVmRSS:\t   1200 kB\n"),
            Some(1200 * 1024)
        );
    }
}
