//! `ringcast-bench kernel-floor`: what the kernel alone charges for the
//! sends a pub/sub server makes.
//!
//! One sender thread (pinned where a server would run) writes pre-encoded
//! `message` frames to N loopback TCP sockets, `frames` frames per socket
//! per round, while a reader thread on another CPU drains every peer. No
//! parsing, no routing, no allocation: the sender's CPU time per send and
//! per frame is the floor any server pays on this machine for the same
//! sends — on loopback that includes the receiver's TCP processing and
//! wake-up, which run in the sender's context.
//!
//! Three ways to send, the ways a server can:
//! - `write`: one `write(2)` per socket of the `frames` frames laid out in
//!   one buffer (a server that copies frames into a per-client buffer);
//! - `writev`: one `writev(2)` per socket with one iovec per frame, all
//!   pointing at the same frame (a server that shares encode-once frames);
//! - `uring`: one io_uring `WRITEV` entry per socket, as `writev`, all N
//!   submitted with one `io_uring_enter` per round.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendMode {
    Write,
    Writev,
    Uring,
}

impl SendMode {
    fn name(self) -> &'static str {
        match self {
            SendMode::Write => "write",
            SendMode::Writev => "writev",
            SendMode::Uring => "uring",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Sockets to send to (subscribers).
    #[arg(long, default_value_t = 100)]
    pub sockets: usize,
    /// Frames per socket per send (1 = one message per send; a busy server
    /// sends several a subscriber has waiting in one).
    #[arg(long, default_value_t = 1)]
    pub frames: usize,
    /// Payload bytes of each `message` frame.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Rounds (each sends to every socket once).
    #[arg(long, default_value_t = 20_000)]
    pub rounds: usize,
    /// How to send; several comma separated run one after the other.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "write,writev,uring"
    )]
    pub mode: Vec<SendMode>,
    /// Pin the sender to this CPU (where the server would run).
    #[arg(long)]
    pub sender_cpu: Option<usize>,
    /// Pin the reader to these CPUs (where the clients would run).
    #[arg(long)]
    pub reader_cpus: Option<String>,
}

/// One mode's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    sends: u64,
    frames: u64,
    user_ns: u64,
    sys_ns: u64,
    wall_ns: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

pub fn main(a: FloorArgs) -> Result<bool> {
    if a.sockets == 0 || a.frames == 0 || a.rounds == 0 {
        bail!("--sockets, --frames and --rounds must be at least 1");
    }
    sys::raise_nofile_limit();
    let frame = message_frame(a.payload);
    println!(
        "kernel floor: {} sockets x {} frame(s) of {} B per send, {} rounds; sender on CPU {}, reader on {}",
        a.sockets,
        a.frames,
        frame.len(),
        a.rounds,
        a.sender_cpu.map_or("any".to_string(), |c| c.to_string()),
        a.reader_cpus.as_deref().unwrap_or("any"),
    );
    println!(
        "{:<7} {:>12} {:>12} {:>10} {:>10} {:>12} {:>14}",
        "mode", "ns/send", "ns/frame", "user %", "kernel %", "sends/s", "switches/send"
    );
    for &mode in &a.mode {
        let f = run_mode(&a, mode, &frame)?;
        let cpu = (f.user_ns + f.sys_ns) as f64;
        println!(
            "{:<7} {:>12.0} {:>12.1} {:>10.1} {:>10.1} {:>12.0} {:>14.4}",
            mode.name(),
            cpu / f.sends as f64,
            cpu / f.frames as f64,
            100.0 * f.user_ns as f64 / cpu,
            100.0 * f.sys_ns as f64 / cpu,
            f.sends as f64 / (f.wall_ns as f64 / 1e9),
            (f.voluntary_switches + f.involuntary_switches) as f64 / f.sends as f64,
        );
    }
    Ok(true)
}

/// `*3 $7 message $5 floor $<n> <payload>` as a server sends it.
fn message_frame(payload: usize) -> Vec<u8> {
    let mut f = format!("*3\r\n$7\r\nmessage\r\n$5\r\nfloor\r\n${payload}\r\n").into_bytes();
    f.extend(std::iter::repeat_n(b'x', payload));
    f.extend_from_slice(b"\r\n");
    f
}

/// Connected pairs: (sender side, reader side).
fn socket_pairs(n: usize) -> Result<Vec<(TcpStream, TcpStream)>> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let addr = listener.local_addr()?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let reader = TcpStream::connect(addr).context("connecting a reader")?;
        let (sender, _) = listener.accept()?;
        sender.set_nodelay(true)?;
        reader.set_nodelay(true)?;
        pairs.push((sender, reader));
    }
    Ok(pairs)
}

fn run_mode(a: &FloorArgs, mode: SendMode, frame: &[u8]) -> Result<Figures> {
    let (senders, readers): (Vec<_>, Vec<_>) = socket_pairs(a.sockets)?.into_iter().unzip();
    let expected = (frame.len() * a.frames * a.rounds * a.sockets) as u64;
    let reader_cpus = match &a.reader_cpus {
        Some(list) => sys::parse_cpu_list(list)?,
        None => Vec::new(),
    };
    let reader = std::thread::spawn(move || drain(readers, &reader_cpus, expected));
    let sender_cpu = a.sender_cpu;
    let (frames, rounds) = (a.frames, a.rounds);
    let frame = frame.to_vec();
    let sender = std::thread::spawn(move || -> Result<Figures> {
        if let Some(cpu) = sender_cpu {
            sys::set_affinity(0, &[cpu]).context("pinning the sender")?;
        }
        send(mode, &senders, &frame, frames, rounds)
    });
    let figures = sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    if got != expected {
        bail!("{}: the reader got {got} bytes of {expected}", mode.name());
    }
    Ok(figures)
}

/// The sender thread: `rounds` sends to every socket, timed by its own
/// thread CPU clock.
fn send(
    mode: SendMode,
    socks: &[TcpStream],
    frame: &[u8],
    frames: usize,
    rounds: usize,
) -> Result<Figures> {
    let fds: Vec<i32> = socks.iter().map(|s| s.as_raw_fd()).collect();
    let laid_out: Vec<u8> = frame.repeat(frames);
    let iov: Vec<libc::iovec> = (0..frames)
        .map(|_| libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        })
        .collect();
    let mut ring = match mode {
        SendMode::Uring => Some(
            io_uring::IoUring::builder()
                .setup_single_issuer()
                .build((fds.len().next_power_of_two()).max(8) as u32)
                .context("creating an io_uring")?,
        ),
        _ => None,
    };
    let before = thread_usage();
    let start = Instant::now();
    for _ in 0..rounds {
        match (&mut ring, mode) {
            (Some(ring), _) => uring_round(ring, &fds, &iov, laid_out.len())?,
            (None, SendMode::Write) => {
                for &fd in &fds {
                    write_all(fd, &laid_out)?;
                }
            }
            (None, _) => {
                for &fd in &fds {
                    writev_all(fd, &iov, laid_out.len())?;
                }
            }
        }
    }
    let wall_ns = start.elapsed().as_nanos() as u64;
    let after = thread_usage();
    let sends = (rounds * fds.len()) as u64;
    Ok(Figures {
        sends,
        frames: sends * frames as u64,
        user_ns: after.0 - before.0,
        sys_ns: after.1 - before.1,
        wall_ns,
        voluntary_switches: after.2 - before.2,
        involuntary_switches: after.3 - before.3,
    })
}

/// One `WRITEV` per socket, submitted together; a short write (socket
/// buffer full) is finished with plain writes, which block until the
/// reader catches up.
fn uring_round(
    ring: &mut io_uring::IoUring,
    fds: &[i32],
    iov: &[libc::iovec],
    total: usize,
) -> Result<()> {
    use io_uring::{opcode, types};
    for (i, &fd) in fds.iter().enumerate() {
        let entry = opcode::Writev::new(types::Fd(fd), iov.as_ptr(), iov.len() as u32)
            .build()
            .user_data(i as u64);
        // SAFETY: `iov` and the frame it points to outlive the round: every
        // entry is completed (waited for below) before this returns.
        while unsafe { ring.submission().push(&entry) }.is_err() {
            ring.submit().context("io_uring submit")?;
        }
    }
    let mut left = fds.len();
    while left > 0 {
        ring.submit_and_wait(1).context("io_uring_enter")?;
        for cqe in ring.completion() {
            left -= 1;
            let fd = fds[cqe.user_data() as usize];
            match usize::try_from(cqe.result()) {
                Ok(n) if n == total => {}
                Ok(n) => finish_iov(fd, iov, n)?,
                Err(_) => bail!(
                    "io_uring writev: {}",
                    io::Error::from_raw_os_error(-cqe.result())
                ),
            }
        }
    }
    Ok(())
}

fn write_all(fd: i32, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("write");
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

fn writev_all(fd: i32, iov: &[libc::iovec], total: usize) -> Result<()> {
    // SAFETY: every iovec points into the frame, alive for the call.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as i32) };
    if n < 0 {
        return Err(io::Error::last_os_error()).context("writev");
    }
    if n as usize != total {
        finish_iov(fd, iov, n as usize)?;
    }
    Ok(())
}

/// Writes what a short vectored write left, frame by frame.
fn finish_iov(fd: i32, iov: &[libc::iovec], mut done: usize) -> Result<()> {
    for v in iov {
        // SAFETY: each iovec describes a live slice (the frame).
        let part = unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) };
        if done >= part.len() {
            done -= part.len();
            continue;
        }
        write_all(fd, &part[done..])?;
        done = 0;
    }
    Ok(())
}

/// The reader thread: drain every socket until `expected` bytes arrived.
fn drain(readers: Vec<TcpStream>, cpus: &[usize], expected: u64) -> Result<u64> {
    if !cpus.is_empty() {
        sys::set_affinity(0, cpus).context("pinning the reader")?;
    }
    let mut poll = mio::Poll::new()?;
    let mut events = mio::Events::with_capacity(1024);
    let mut socks: Vec<mio::net::TcpStream> = readers
        .into_iter()
        .map(|s| {
            s.set_nonblocking(true)?;
            Ok(mio::net::TcpStream::from_std(s))
        })
        .collect::<io::Result<_>>()?;
    for (i, s) in socks.iter_mut().enumerate() {
        poll.registry()
            .register(s, mio::Token(i), mio::Interest::READABLE)?;
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    while got < expected {
        poll.poll(&mut events, Some(std::time::Duration::from_secs(10)))?;
        if events.is_empty() {
            bail!("no data for 10 s with {got} of {expected} bytes received");
        }
        for ev in events.iter() {
            let s = &mut socks[ev.token().0];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("reading"),
                }
            }
        }
    }
    Ok(got)
}

/// This thread's (user ns, system ns, voluntary, involuntary context switches).
fn thread_usage() -> (u64, u64, u64, u64) {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    (
        ns(ru.ru_utime),
        ns(ru.ru_stime),
        ru.ru_nvcsw as u64,
        ru.ru_nivcsw as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_delivers_every_byte() {
        let a = FloorArgs {
            sockets: 3,
            frames: 4,
            payload: 16,
            rounds: 50,
            mode: vec![SendMode::Write, SendMode::Writev, SendMode::Uring],
            sender_cpu: None,
            reader_cpus: None,
        };
        let frame = message_frame(a.payload);
        for &mode in &a.mode {
            let f = match run_mode(&a, mode, &frame) {
                Ok(f) => f,
                // io_uring may be unavailable (seccomp, old kernel): the
                // other modes still count.
                Err(e) if mode == SendMode::Uring => {
                    eprintln!("uring skipped: {e:#}");
                    continue;
                }
                Err(e) => panic!("{}: {e:#}", mode.name()),
            };
            assert_eq!(f.sends, 150);
            assert_eq!(f.frames, 600);
        }
    }

    #[test]
    fn the_frame_is_a_resp_message_push() {
        assert_eq!(
            message_frame(3),
            b"*3\r\n$7\r\nmessage\r\n$5\r\nfloor\r\n$3\r\nxxx\r\n".to_vec()
        );
    }
}
