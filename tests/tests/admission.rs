//! Admission: `maxclients` is counted exactly whatever the workers are doing,
//! it is fitted to the open-file limit as Redis fits it, and a connection the
//! server cannot take is refused with Redis's error, never left waiting.

use std::time::Instant;

use ringcast_tests::server::parse_info;
use ringcast_tests::{
    Backend, Frame, Opts, PATIENCE, RawConn, Server, backend_tests, connect_on_worker, eventually,
    ringcast_only,
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

fn config_get_number(c: &mut RawConn, name: &str) -> usize {
    match c.cmd(&["CONFIG", "GET", name]) {
        Frame::Array(kv) if kv.len() == 2 => kv[1].text().parse().expect("a number"),
        other => panic!("CONFIG GET {name}: {other:?}"),
    }
}

/// Log lines saying accept ran out of descriptors.
fn out_of_files_lines(server: &Server) -> usize {
    server
        .log()
        .lines()
        .filter(|l| l.contains("Too many open files"))
        .count()
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

// ----- the open-file limit -------------------------------------------------

mod open_files {
    use super::*;

    /// Low enough to reach quickly, high enough to hold the server's own
    /// descriptors and some clients.
    const LIMIT: u64 = 160;

    fn maxclients_is_fitted_to_the_open_file_limit_and_a_burst_past_it_is_refused(b: Backend) {
        let server = Server::start(Opts::new(b).open_files_limit(LIMIT).maxclients(10000));
        let mut admin = server.conn();
        let fitted = config_get_number(&mut admin, "maxclients");
        assert!(
            fitted > 0 && fitted as u64 <= LIMIT - 32,
            "maxclients {fitted} with {LIMIT} descriptors"
        );
        let log = server.log();
        assert!(
            log.contains("You requested maxclients of 10000 requiring at least")
                && log.contains(&format!("maxclients has been reduced to {fitted}")),
            "the reduction is logged as Redis logs it:\n{log}"
        );
        let started = Instant::now();
        // The admin connection holds one of the slots.
        let result = burst(&server, fitted + 40);
        assert_eq!(result.served.len(), fitted - 1);
        assert_eq!(result.refused, 41);
        assert!(
            out_of_files_lines(&server) <= started.elapsed().as_secs() as usize + 1,
            "accept errors flood the log:\n{}",
            server.log()
        );
    }

    fn config_set_maxclients_past_the_open_file_limit_is_refused_as_redis_does(b: Backend) {
        let server = Server::start(Opts::new(b).open_files_limit(LIMIT));
        let mut c = server.conn();
        let fitted = config_get_number(&mut c, "maxclients");
        c.cmd_expect(
            &["CONFIG", "SET", "maxclients", "5000"],
            format!(
                "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with {fitted}\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(config_get_number(&mut c, "maxclients"), fitted);
        c.cmd_expect(&["CONFIG", "SET", "maxclients", "10"], b"+OK\r\n");
        assert_eq!(config_get_number(&mut c, "maxclients"), 10);
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }

    fn out_of_descriptors_a_client_is_refused_not_left_waiting(b: Backend) {
        ringcast_only!("Redis leaves a client it has no descriptor for in the backlog");
        let server = Server::with_backend(b);
        let mut admin = server.conn();
        admin.cmd_expect(&["PING"], b"+PONG\r\n");
        // Room for a few more descriptors only, far below maxclients.
        let open = server.open_files() as u64;
        server.set_open_files_limit(open + 3);
        let started = Instant::now();
        let result = burst(&server, 30);
        assert!(result.refused >= 20, "refused only {}", result.refused);
        assert!(
            out_of_files_lines(&server) <= started.elapsed().as_secs() as usize + 1,
            "accept errors flood the log:\n{}",
            server.log()
        );
        // With descriptors again, clients are served as before.
        drop(result);
        server.set_open_files_limit(4096);
        let again = burst(&server, 30);
        assert_eq!(again.served.len(), 30);
        admin.cmd_expect(&["PING"], b"+PONG\r\n");
    }

    backend_tests!(
        maxclients_is_fitted_to_the_open_file_limit_and_a_burst_past_it_is_refused,
        config_set_maxclients_past_the_open_file_limit_is_refused_as_redis_does,
        out_of_descriptors_a_client_is_refused_not_left_waiting,
    );
}
