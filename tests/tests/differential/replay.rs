//! Running one scenario on redis-server and on ringcast side by side, step by
//! step, and collecting what every client received in each step.
//!
//! A step ends in a known state on both servers before the next one starts:
//!
//! 1. The acting client writes its commands and, in the same write, the
//!    settle command (unless the step ends with QUIT); it reads until the
//!    settle confirmation (or the close).
//! 2. Every other client is settled the same way. On ringcast a delivery from
//!    another worker arrives asynchronously, so each client first waits
//!    (bounded) until it holds as many message pushes as Redis delivered to
//!    it in this step: Redis, single-threaded, has queued every delivery of a
//!    command before it reads the next command, so its counts are exact.
//! 3. Connections that will not answer (below) are read without waiting: on
//!    Redis after one more round trip on a connection of the harness's own,
//!    so everything Redis wrote or closed in the step has arrived; on
//!    ringcast after waiting (bounded) for the close when Redis closed.
//!
//! With every delivery accounted for before the settle command is sent, a
//! missing, extra or reordered frame shows as a difference, never as a race.
//!
//! The settle command is `UNSUBSCRIBE <SETTLE>` on a name no scenario uses:
//! it changes no state, is allowed in every mode (RESP2 subscribed too), and
//! its confirmation is a push, which `CLIENT REPLY OFF|SKIP` does not
//! silence (it does consume a pending SKIP, on both servers alike). A client
//! that is not authenticated (the server has a password) is settled with
//! `HELLO <SETTLE>` instead, which both answer with the same error whatever
//! the authentication (such a client can neither be subscribed nor have
//! silenced its replies).
//!
//! A step that ends with QUIT has no settle command: on Redis the harness
//! asks `CLIENT LIST` (on its own connection) until the client has run the
//! QUIT, and ringcast's client reads until the close when Redis's closed.
//! When `CLIENT REPLY` silenced the `+OK`, Redis writes nothing and so never
//! gets to close: the connection stays open, reads nothing more, and closes
//! at the next write (a delivery). Such a client is *gone*: it is sent
//! nothing more, and what it receives is collected at the end of every step
//! until it closes.

use crate::scenario::{Scenario, Step, authenticated_after};
use ringcast_tests::raw::ReadEnd;
use ringcast_tests::resp::{self, Frame};
use ringcast_tests::{Backend, Opts, RawConn, Server, Target};
use std::time::{Duration, Instant};

/// The channel name of the settle command.
pub(crate) const SETTLE: &[u8] = b"~settle~";

/// The reply to `HELLO <SETTLE>`.
const SETTLE_HELLO_REPLY: &[u8] = b"-ERR Protocol version is not an integer or out of range\r\n";

/// How long a client waits for one reply, or for the deliveries Redis made
/// to it, before the step is compared as it is (a bound that only turns a
/// hang into a reported difference, never an assertion on speed).
const WAIT: Duration = Duration::from_secs(5);

/// One thing a client received.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Unit {
    /// A frame and its exact bytes.
    Frame(Frame, Vec<u8>),
    /// The server closed the connection.
    Closed,
    /// Nothing more arrived within [`WAIT`] although the settle confirmation
    /// was still due.
    Silent,
}

impl Unit {
    pub(crate) fn frame(&self) -> Option<&Frame> {
        match self {
            Unit::Frame(f, _) => Some(f),
            _ => None,
        }
    }

    /// A `message`, `pmessage` or `smessage` push.
    pub(crate) fn is_delivery(&self) -> bool {
        self.frame()
            .and_then(Frame::pubsub)
            .is_some_and(|(kind, _)| matches!(kind, b"message" | b"pmessage" | b"smessage"))
    }

    /// The answer to the settle command `settle`.
    fn settles(&self, settle: Settle) -> bool {
        let Unit::Frame(frame, raw) = self else {
            return false;
        };
        match settle {
            Settle::Unsubscribe => frame.pubsub().is_some_and(|(kind, rest)| {
                kind == b"unsubscribe" && rest[0].bytes() == Some(SETTLE)
            }),
            Settle::Hello => raw == SETTLE_HELLO_REPLY,
        }
    }
}

/// The two settle commands (see the module docs).
#[derive(Clone, Copy, Debug)]
enum Settle {
    /// `UNSUBSCRIBE <SETTLE>`, for authenticated clients.
    Unsubscribe,
    /// `HELLO <SETTLE>`, for clients a password keeps out.
    Hello,
}

impl Settle {
    fn command(self) -> Vec<u8> {
        match self {
            Settle::Unsubscribe => resp::command(&[&b"UNSUBSCRIBE"[..], SETTLE]),
            Settle::Hello => resp::command(&[&b"HELLO"[..], SETTLE]),
        }
    }
}

/// What each client received in one step.
pub(crate) type Received = Vec<Vec<Unit>>;

/// How the servers of one run are started.
pub(crate) struct Setup {
    /// ringcast's I/O backend.
    pub backend: Backend,
}

/// One server and the scenario's connections to it.
struct Side {
    server: Server,
    conns: Vec<RawConn>,
    /// Client sent QUIT and the server has not closed yet (see the module docs).
    gone: Vec<bool>,
    /// Client is authenticated (as the scenario's commands decide).
    authenticated: Vec<bool>,
    password: Option<&'static [u8]>,
    /// Redis only: the harness's own connection for the extra round trip.
    probe: Option<RawConn>,
}

impl Side {
    fn start(target: Target, backend: Backend, scenario: &Scenario) -> Side {
        let mut opts = Opts::new(backend).threads(2);
        if let Some(pw) = scenario.password {
            opts = opts.requirepass(&String::from_utf8_lossy(pw));
        }
        let server = Server::start_as(target, opts);
        let clients = scenario.clients;
        let conns = (0..clients).map(|_| connect(&server)).collect();
        // Opened after the scenario's clients, and only on Redis, so that
        // ringcast's placement of client k on worker k mod 2 holds.
        let probe = (target == Target::Redis).then(|| {
            let mut probe = connect(&server);
            if let Some(pw) = scenario.password {
                probe.cmd_expect(&[&b"AUTH"[..], pw], b"+OK\r\n");
            }
            probe
        });
        Side {
            server,
            conns,
            gone: vec![false; clients],
            authenticated: vec![scenario.password.is_none(); clients],
            password: scenario.password,
            probe,
        }
    }

    fn settle(&self, client: usize) -> Settle {
        if self.authenticated[client] {
            Settle::Unsubscribe
        } else {
            Settle::Hello
        }
    }
}

fn connect(server: &Server) -> RawConn {
    let mut conn = server.raw();
    conn.set_timeout(WAIT);
    conn
}

/// The outcome of one step on both servers.
pub(crate) struct StepResult {
    pub redis: Received,
    pub ringcast: Received,
}

/// Runs `scenario`, calling `check` after every step with both servers'
/// results; stops at the first step `check` rejects and returns its index
/// and error. After the last step, frames still arriving at ringcast are
/// handed to `stray` (a failure there gets index `steps.len()`).
pub(crate) fn replay<E>(
    scenario: &Scenario,
    setup: &Setup,
    mut check: impl FnMut(usize, &Step, &StepResult) -> Result<(), E>,
    stray: impl FnOnce(Received) -> Result<(), E>,
) -> Result<(), (usize, E)> {
    let mut redis = Side::start(Target::Redis, setup.backend, scenario);
    let mut ringcast = Side::start(Target::Ringcast, setup.backend, scenario);
    for (i, step) in scenario.steps.iter().enumerate() {
        let on_redis = run_step(&mut redis, step, None);
        let on_ringcast = run_step(&mut ringcast, step, Some(&on_redis));
        let result = StepResult {
            redis: on_redis,
            ringcast: on_ringcast,
        };
        check(i, step, &result).map_err(|e| (i, e))?;
        // Redis decides who is gone; both sides agree, or `check` failed.
        for c in 0..scenario.clients {
            let closed = result.redis[c].last() == Some(&Unit::Closed);
            let gone = !closed && (redis.gone[c] || (c == step.client && step.quits()));
            for side in [&mut redis, &mut ringcast] {
                side.gone[c] = gone;
                if closed {
                    side.conns[c] = connect(&side.server);
                    side.authenticated[c] = side.password.is_none();
                }
            }
        }
    }
    let late: Received = ringcast
        .conns
        .iter_mut()
        .map(|conn| {
            let mut units = Vec::new();
            drain(conn, &mut units);
            units
        })
        .collect();
    stray(late).map_err(|e| (scenario.steps.len(), e))
}

/// Runs one step on one server. `redis`, for ringcast, is what each client
/// received from Redis in this step: how many deliveries to wait for, and
/// whether to wait for a close.
fn run_step(side: &mut Side, step: &Step, redis: Option<&Received>) -> Received {
    let clients = side.conns.len();
    let mut received: Received = vec![Vec::new(); clients];
    let acting = step.client;
    let mut bytes: Vec<u8> = step
        .commands
        .iter()
        .flat_map(|c| resp::command(c))
        .collect();
    if let Some(pw) = side.password {
        for cmd in &step.commands {
            side.authenticated[acting] = authenticated_after(side.authenticated[acting], cmd, pw);
        }
    }
    let acting_settle = side.settle(acting);
    if !step.quits() {
        bytes.extend(acting_settle.command());
    }
    // A failed write means the server closed the connection: the reads
    // below then report it.
    let _ = side.conns[acting].try_send(&bytes);
    let answering: Vec<bool> = (0..clients)
        .map(|c| !(side.gone[c] || c == acting && step.quits()))
        .collect();
    if answering[acting] {
        let conn = &mut side.conns[acting];
        read_until_settled(conn, acting_settle, &mut received[acting]);
    } else if let Some(probe) = &mut side.probe {
        wait_until_quit(probe, &side.conns[acting]);
    }
    for c in (0..clients).filter(|&c| c != acting && answering[c]) {
        settle_bystander(side, c, redis, &mut received[c]);
    }
    if let Some(probe) = &mut side.probe {
        probe.cmd_expect(&["PING"], b"+PONG\r\n");
    }
    for c in (0..clients).filter(|&c| !answering[c]) {
        let conn = &mut side.conns[c];
        if redis.is_some_and(|r| r[c].last() == Some(&Unit::Closed)) {
            read_until_closed(conn, &mut received[c]);
        } else {
            drain(conn, &mut received[c]);
        }
    }
    received
}

/// Settles client `c`, which did not act in this step: on ringcast, after
/// the deliveries Redis made to it have arrived.
fn settle_bystander(side: &mut Side, c: usize, redis: Option<&Received>, out: &mut Vec<Unit>) {
    let settle = side.settle(c);
    let conn = &mut side.conns[c];
    if let Some(redis) = redis {
        let expected = redis[c].iter().filter(|u| u.is_delivery()).count();
        wait_for_deliveries(conn, expected, out);
        if out.last() == Some(&Unit::Closed) {
            return;
        }
    }
    let _ = conn.try_send(&settle.command());
    read_until_settled(conn, settle, out);
}

/// Redis: waits until the client has run its QUIT, which has no reply to
/// wait for when `CLIENT REPLY` silenced it: asks `CLIENT LIST` (on the
/// harness's own connection) until the client is gone (closed) or flagged
/// to close after its reply with no reply left to write.
fn wait_until_quit(probe: &mut RawConn, conn: &RawConn) {
    let local = conn
        .try_clone_stream()
        .local_addr()
        .expect("local address of a connection");
    let needle = format!("addr={local} ");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let list = probe.cmd(&["CLIENT", "LIST"]).text();
        let Some(line) = list.lines().find(|l| l.contains(&needle)) else {
            return;
        };
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or_default()
                .to_owned()
        };
        if field("flags=").contains('c') && field("obl=") == "0" && field("oll=") == "0" {
            return;
        }
    }
}

fn read_one(conn: &mut RawConn, timeout: Duration, out: &mut Vec<Unit>) -> Option<ReadEnd> {
    match conn.try_read_raw_frame(timeout) {
        Ok((frame, raw)) => {
            out.push(Unit::Frame(frame, raw));
            None
        }
        Err(ReadEnd::Closed) => {
            out.push(Unit::Closed);
            Some(ReadEnd::Closed)
        }
        Err(ReadEnd::Timeout) => Some(ReadEnd::Timeout),
    }
}

/// Reads until the settle confirmation, the close, or [`WAIT`] without a frame.
fn read_until_settled(conn: &mut RawConn, settle: Settle, out: &mut Vec<Unit>) {
    loop {
        match read_one(conn, WAIT, out) {
            None if out.last().is_some_and(|u| u.settles(settle)) => return,
            None => {}
            Some(ReadEnd::Closed) => return,
            Some(ReadEnd::Timeout) => {
                out.push(Unit::Silent);
                return;
            }
        }
    }
}

/// Reads until the close, or [`WAIT`] without a frame.
fn read_until_closed(conn: &mut RawConn, out: &mut Vec<Unit>) {
    while read_one(conn, WAIT, out).is_none() {}
}

/// Reads what has already arrived (frames and the close), waiting for
/// nothing more than a millisecond.
fn drain(conn: &mut RawConn, out: &mut Vec<Unit>) {
    while read_one(conn, Duration::from_millis(1), out).is_none() {}
}

/// Reads until `out` holds `expected` deliveries, the close, or [`WAIT`].
fn wait_for_deliveries(conn: &mut RawConn, expected: usize, out: &mut Vec<Unit>) {
    let deadline = Instant::now() + WAIT;
    while out.iter().filter(|u| u.is_delivery()).count() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        if read_one(conn, left, out).is_some() {
            return;
        }
    }
}
