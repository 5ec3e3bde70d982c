//! Admission: `maxclients` is counted exactly whatever the workers are doing.

use ringcast_tests::server::parse_info;
use ringcast_tests::{
    Backend, Frame, Opts, PATIENCE, RawConn, Server, backend_tests, connect_on_worker, eventually,
};

const MAX_CLIENTS: &[u8] = b"ERR max number of clients reached";

/// What became of the connections of a burst.
struct Burst {
    /// Connections answered `+PONG`, still open.
    served: Vec<RawConn>,
    /// Connections answered with the maxclients error and closed.
    refused: usize,
}

/// Connects `n` clients at once (every socket is connected before any is
/// used), then sends PING on each and reads what it gets: `+PONG`, or
/// Redis's maxclients error followed by a close. Anything else, or nothing
/// within the harness's patience, fails the test.
fn burst(server: &Server, n: usize) -> Burst {
    let conns: Vec<RawConn> = (0..n).map(|_| server.raw()).collect();
    let mut served = Vec::new();
    let mut refused = 0;
    for (i, mut c) in conns.into_iter().enumerate() {
        // A refused client may already be closed when its PING arrives.
        let _ = c.try_send(b"*1\r\n$4\r\nPING\r\n");
        match c.try_read_frame(PATIENCE) {
            Ok(Frame::Simple(s)) if s == b"PONG" => served.push(c),
            Ok(Frame::Error(e)) if e == MAX_CLIENTS => {
                c.expect_closed();
                refused += 1;
            }
            other => panic!("connection {i} of {n} was neither served nor refused: {other:?}"),
        }
    }
    Burst { served, refused }
}

/// A new client if the server admits it, `None` if it refuses it.
fn try_admit(server: &Server) -> Option<RawConn> {
    let mut c = server.raw();
    let _ = c.try_send(b"*1\r\n$4\r\nPING\r\n");
    match c.try_read_frame(PATIENCE) {
        Ok(Frame::Simple(s)) if s == b"PONG" => Some(c),
        Ok(Frame::Error(e)) if e == MAX_CLIENTS => None,
        other => panic!("neither served nor refused: {other:?}"),
    }
}

fn connected_clients(c: &mut RawConn) -> u64 {
    parse_info(&c.cmd(&["INFO", "clients"]))["connected_clients"]
        .parse()
        .expect("connected_clients is a number")
}

// ----- maxclients counted exactly -----------------------------------------

fn a_burst_of_clients_gets_exactly_maxclients_served(b: Backend) {
    let server = Server::start(Opts::new(b).maxclients(200));
    let result = burst(&server, 400);
    assert_eq!(result.served.len(), 200);
    assert_eq!(result.refused, 200);
}

fn a_stalled_worker_does_not_let_a_burst_past_maxclients(b: Backend) {
    let server = Server::start(Opts::new(b).maxclients(40).debug_command());
    let mut stalled = connect_on_worker(&server, 0);
    let mut observer = connect_on_worker(&server, 1);
    eventually("only the two clients are connected", || {
        connected_clients(&mut observer) == 2
    });
    stalled.send_cmd(&["DEBUG", "SLEEP", "3"]);
    eventually("worker 0 is inside DEBUG SLEEP", || {
        observer
            .cmd(&["CLIENT", "LIST"])
            .text()
            .contains("cmd=debug")
    });
    // Half the burst is handed to the sleeping worker, which cannot take
    // its sockets over before it wakes; they count all the same.
    let result = burst(&server, 80);
    assert_eq!(result.served.len(), 38);
    assert_eq!(result.refused, 42);
    stalled.expect(b"+OK\r\n");
}

fn lowering_maxclients_keeps_the_clients_and_refuses_new_ones(b: Backend) {
    let server = Server::with_backend(b);
    let mut clients: Vec<RawConn> = (0..4).map(|_| server.conn()).collect();
    for c in &mut clients {
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
    clients[0].cmd_expect(&["CONFIG", "SET", "maxclients", "2"], b"+OK\r\n");
    assert!(try_admit(&server).is_none(), "a fifth client got in");
    for c in &mut clients {
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
    clients.truncate(1);
    eventually("a client is admitted once fewer than two remain", || {
        try_admit(&server).is_some()
    });
}

backend_tests!(
    a_burst_of_clients_gets_exactly_maxclients_served,
    a_stalled_worker_does_not_let_a_burst_past_maxclients,
    lowering_maxclients_keeps_the_clients_and_refuses_new_ones,
);
