//! Connections placed on a chosen worker, and connections through the
//! `redis` crate (the way applications talk to ringcast).

use crate::Proto;
use crate::raw::RawConn;
use crate::server::{Server, Target};
use std::sync::mpsc;

/// The worker (`io-thread=` of `CLIENT INFO`) serving `conn`, or `None` when
/// the server does not report one (redis-server 7.0).
pub fn worker_of(conn: &mut RawConn) -> Option<usize> {
    let info = conn.cmd(&["CLIENT", "INFO"]).text();
    info.split_whitespace()
        .find_map(|field| field.strip_prefix("io-thread="))
        .map(|w| {
            w.parse()
                .unwrap_or_else(|_| panic!("bad io-thread in {info:?}"))
        })
}

/// Opens connections until one lands on worker `w` (placement is
/// round-robin, so this takes at most one lap) and returns it, authenticated
/// when the server has a password. Against redis-server, which has a single
/// event loop, any connection qualifies.
pub fn connect_on_worker(server: &Server, w: usize) -> RawConn {
    if server.target() == Target::Redis {
        return server.conn();
    }
    assert!(w < server.threads(), "worker {w} of {}", server.threads());
    for _ in 0..server.threads() * 4 {
        let mut conn = server.conn();
        match worker_of(&mut conn) {
            Some(got) if got == w => return conn,
            Some(_) => continue,
            None => panic!("CLIENT INFO lacks io-thread=; cannot place connections"),
        }
    }
    panic!("no connection landed on worker {w} after several laps of round-robin");
}

/// Like [`connect_on_worker`], with the tiny receive buffers of
/// [`RawConn::connect_slow_reader`], so the server's writes to it block
/// after a few KiB until it reads.
pub fn slow_reader_on_worker(server: &Server, w: usize) -> RawConn {
    for _ in 0..server.threads() * 4 {
        let mut conn = RawConn::connect_slow_reader(server.port());
        if server.target() == Target::Redis || worker_of(&mut conn) == Some(w) {
            return conn;
        }
    }
    panic!("no connection landed on worker {w} after several laps of round-robin");
}

/// Like [`connect_on_worker`], then switches to `proto`.
pub fn connect_on_worker_proto(server: &Server, w: usize, proto: Proto) -> RawConn {
    let mut conn = connect_on_worker(server, w);
    conn.use_proto(proto);
    conn
}

/// `redis://` URL of the server, with the password when it has one.
pub fn url(server: &Server, proto: Proto) -> String {
    let auth = match &server.opts().requirepass {
        Some(pw) => format!(":{pw}@"),
        None => String::new(),
    };
    let query = match proto {
        Proto::Resp2 => "",
        Proto::Resp3 => "?protocol=resp3",
    };
    format!("redis://{auth}127.0.0.1:{}/{query}", server.port())
}

/// A synchronous `redis` crate connection speaking RESP2.
pub fn redis_resp2(server: &Server) -> redis::Connection {
    redis::Client::open(url(server, Proto::Resp2))
        .expect("valid URL")
        .get_connection()
        .expect("redis crate connects")
}

/// A synchronous `redis` crate connection speaking RESP3, with the channel
/// on which it hands over push messages (pub/sub deliveries arrive there
/// while the connection reads replies).
pub fn redis_resp3(server: &Server) -> (redis::Connection, mpsc::Receiver<redis::PushInfo>) {
    let mut conn = redis::Client::open(url(server, Proto::Resp3))
        .expect("valid URL")
        .get_connection()
        .expect("redis crate connects");
    let (tx, rx) = mpsc::channel();
    conn.set_push_sender(tx);
    (conn, rx)
}
