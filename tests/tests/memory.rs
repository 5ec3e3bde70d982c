//! Memory: what connections cost the server, and that it gives memory back.
//!
//! Each test measures the server process's resident memory (`VmRSS`) from
//! outside, with generous bounds: the aim is to catch memory kept for good
//! (hundreds of KiB per connection, a burst's peak never coming back), not
//! to pin exact figures. Waits are on events (bytes the server has read,
//! connection counts) or bounded polls ([`eventually`]), never on time.
//! The figures themselves, against redis-server, are in `RELIABILITY.md`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use ringcast_tests::{
    Backend, Opts, RawConn, Server, backend_tests, eventually, ringcast_only, run_on,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Resident memory of a process, in bytes (`VmRSS` of `/proc/<pid>/status`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * KIB
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Lets this test process open as many sockets as its hard limit allows.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with a live rlimit value.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// `total_net_input_bytes` of INFO stats: bytes the server has read.
fn bytes_read(server: &Server) -> u64 {
    server.info_u64("stats", "total_net_input_bytes")
}

/// Opens `n` plain connections and sends `hello` on each; returns once the
/// server has read all of it.
fn open_and_send(server: &Server, n: usize, hello: &[u8]) -> Vec<TcpStream> {
    let before = bytes_read(server);
    let conns: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
            s.write_all(hello).expect("send");
            s
        })
        .collect();
    let sent = (n * hello.len()) as u64;
    eventually("the server read what every connection sent", || {
        bytes_read(server) >= before + sent
    });
    conns
}

/// Closes connections abruptly (a reset, as a crashed client does).
fn reset(conns: Vec<TcpStream>) {
    for c in conns {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&c);
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket this function owns, from a live linger value.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
}

/// Waits until the server counts `n` clients (the one asking included).
fn wait_for_clients(server: &Server, n: u64) {
    eventually(&format!("{n} connected clients"), || {
        server.info_u64("clients", "connected_clients") == n
    });
}

/// A client announces a 512 MB argument and sends 100 bytes of it: the
/// server must not hold memory for what was only announced (Redis: about
/// 8 KiB per such connection), and must give it back when they close.
fn idle_connections_declaring_large_bulks_cost_little_memory(b: Backend) {
    const CONNS: usize = 400;
    raise_open_files_limit();
    let server = Server::start(Opts::new(b).maxclients(CONNS as u32 + 100));
    let pid = server.pid();
    let start = rss(pid);
    let mut hello = b"*2\r\n$4\r\nECHO\r\n$536870912\r\n".to_vec();
    hello.extend_from_slice(&[b'x'; 100]);
    let conns = open_and_send(&server, CONNS, &hello);
    let loaded = rss(pid);
    let per_conn = loaded.saturating_sub(start) / CONNS as u64;
    eprintln!(
        "rss {:.1} MiB -> {:.1} MiB with {CONNS} connections: {} KiB each",
        mib(start),
        mib(loaded),
        per_conn / KIB
    );
    assert!(
        per_conn < 128 * KIB,
        "{} KiB resident per connection that sent 100 bytes",
        per_conn / KIB
    );
    if !server.target().is_redis() {
        // What the allocator handed out, resident or not: the read buffer
        // must not have been sized by the announced length.
        let used = server.info_u64("memory", "used_memory");
        let startup = server.info_u64("memory", "used_memory_startup");
        let per_conn = used.saturating_sub(startup) / CONNS as u64;
        assert!(
            per_conn < 128 * KIB,
            "{} KiB allocated per connection that sent 100 bytes",
            per_conn / KIB
        );
    }
    reset(conns);
    wait_for_clients(&server, 1);
    eventually("memory of the closed connections comes back", || {
        rss(pid) < start + 16 * MIB
    });
}

/// Thousands of connections come and go, closed abruptly: afterwards the
/// server's memory comes back near where it started.
fn memory_comes_back_after_connections_close(b: Backend) {
    const CONNS: usize = 5000;
    const CYCLES: usize = 3;
    raise_open_files_limit();
    let server = Server::start(Opts::new(b).maxclients(CONNS as u32 + 100));
    let pid = server.pid();
    let start = rss(pid);
    let mut peak = start;
    for _ in 0..CYCLES {
        let conns = open_and_send(&server, CONNS, b"PING\r\n");
        peak = peak.max(rss(pid));
        reset(conns);
        wait_for_clients(&server, 1);
    }
    let bound = start + (peak - start) / 2;
    eprintln!(
        "rss at start {:.1} MiB, peak {:.1} MiB; waiting for under {:.1} MiB",
        mib(start),
        mib(peak),
        mib(bound)
    );
    eventually("memory comes back after the connections closed", || {
        rss(pid) < bound
    });
}

/// Subscribers that stop reading let a burst pile up in the server (output
/// limits off); once they have read it all, the server gives the memory
/// back while they stay connected.
fn memory_comes_back_after_subscribers_drain_a_burst(b: Backend) {
    const SUBSCRIBERS: usize = 4;
    const PAYLOAD: usize = 900;
    const BURST: usize = 256 << 20;
    let server = Server::start(Opts::new(b).pubsub_output_limit("0 0 0"));
    let pid = server.pid();
    let mut subs: Vec<RawConn> = (0..SUBSCRIBERS)
        .map(|_| {
            let mut s = server.conn();
            s.sub("subscribe", &["burst"], &[1]);
            s
        })
        .collect();
    let start = rss(pid);
    let payload = "p".repeat(PAYLOAD);
    let frame =
        ringcast_tests::resp::message(ringcast_tests::Proto::Resp2, b"burst", payload.as_bytes());
    let messages = BURST / SUBSCRIBERS / frame.len();
    let publish = ringcast_tests::resp::command(&["PUBLISH", "burst", &payload]);
    let reply = format!(":{SUBSCRIBERS}\r\n");
    let mut publisher = server.conn();
    let mut reader = publisher.try_clone_stream();
    let replies = thread::spawn(move || {
        let mut want = (messages * reply.len()) as u64;
        let mut buf = vec![0u8; 64 * 1024];
        while want > 0 {
            let n = reader.read(&mut buf).expect("read replies");
            assert!(n > 0, "publisher closed");
            want = want.saturating_sub(n as u64);
        }
    });
    for _ in 0..messages / 1000 {
        publisher.send(&publish.repeat(1000));
    }
    for _ in 0..messages % 1000 {
        publisher.send(&publish);
    }
    replies.join().expect("every publish answered");
    let peak = rss(pid);
    let expected = (messages * frame.len()) as u64;
    let drains: Vec<_> = subs
        .iter_mut()
        .map(|s| {
            let mut stream = s.try_clone_stream();
            thread::spawn(move || {
                let mut got = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                while got < expected {
                    let n = stream.read(&mut buf).expect("read the burst");
                    assert!(n > 0, "subscriber closed");
                    got += n as u64;
                }
            })
        })
        .collect();
    for d in drains {
        d.join().expect("subscriber drained");
    }
    let bound = start + (peak - start) / 4;
    eprintln!(
        "rss before the burst {:.1} MiB, at its peak {:.1} MiB; waiting for under {:.1} MiB",
        mib(start),
        mib(peak),
        mib(bound)
    );
    assert!(
        peak > start + (BURST as u64) / 2,
        "the burst was held by the server"
    );
    eventually(
        "memory comes back once the subscribers have read the burst",
        || rss(pid) < bound,
    );
    // Still subscribed and served.
    let receivers = publisher.cmd(&["PUBLISH", "burst", "after"]).int();
    assert_eq!(receivers, SUBSCRIBERS as i64);
    for s in &mut subs {
        s.expect_message("burst", "after");
    }
}

backend_tests!(idle_connections_declaring_large_bulks_cost_little_memory);

#[test]
fn memory_comes_back_after_many_connections_close() {
    run_on(Backend::Uring, memory_comes_back_after_connections_close);
}

#[test]
fn memory_comes_back_after_a_burst_is_drained() {
    run_on(
        Backend::Uring,
        memory_comes_back_after_subscribers_drain_a_burst,
    );
}

/// INFO `used_memory` follows what is allocated: up with a burst, down again.
#[test]
fn used_memory_comes_back_after_a_burst() {
    ringcast_only!("ringcast's used_memory is its own count of allocated bytes");
    run_on(Backend::Uring, |b| {
        let server = Server::start(Opts::new(b).pubsub_output_limit("0 0 0"));
        let mut sub = RawConn::connect_slow_reader(server.port());
        sub.sub("subscribe", &["c"], &[1]);
        let before = server.info_u64("memory", "used_memory");
        let mut publisher = server.conn();
        let payload = "v".repeat(500);
        let mut promised = 0;
        // 64 MiB queued for a subscriber that does not read.
        for _ in 0..(64 << 20) / 512 / 1000 {
            let publish = ringcast_tests::resp::command(&["PUBLISH", "c", &payload]);
            publisher.send(&publish.repeat(1000));
            promised += 1000;
        }
        for _ in 0..promised {
            assert_eq!(publisher.read_frame().int(), 1);
        }
        let held = server.info_u64("memory", "used_memory");
        assert!(
            held > before + (32 << 20),
            "used_memory {before} -> {held} with 64 MiB queued"
        );
        drop(sub);
        eventually("used_memory comes back once the subscriber is gone", || {
            server.info_u64("memory", "used_memory") < before + (8 << 20)
        });
    });
}
