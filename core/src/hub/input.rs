//! The reading side of a connection: decode requests, run each command with
//! a [`Ctx`] of disjoint borrows, and queue what it produced.

use std::time::Duration;

use bytes::{Buf, BytesMut};

use super::conn::ConnState;
use super::observe::Timer;
use super::{ConnKey, Hub, Input};
use crate::commands::{self, Ctx, Exec};
use crate::output::LimitExceeded;
use crate::resp::args::ArgList;
use crate::resp::decode::Request;
use crate::session::ReplyMode;
use crate::stats::{Disconnect, WorkerStats};

/// Output a client that has not authenticated may have queued before it is
/// closed (Redis 7.2.8+, CVE-2025-21605: a client that sends requests without
/// reading the replies must not make the server buffer without bound).
/// Redis counts only its reply list, past a 16 KiB static buffer, against a
/// 1 KiB cap; this is the same total.
pub const UNAUTHENTICATED_OUTPUT_LIMIT: usize = 16 * 1024 + 1024;

/// Request bytes one call of [`Hub::input`] handles before it lets the
/// writers run ([`Input::Yield`]). Redis reads at most 16 KiB of a client's
/// requests per event-loop turn (more only for one large argument) and writes
/// to subscribers between turns; a bounded amount per turn here likewise
/// keeps a burst of pipelined PUBLISHes from piling up in every local
/// subscriber's queue before any of it is written.
const INPUT_TURN_BYTES: usize = 64 * 1024;

/// Time one call of [`Hub::input`] runs requests before it yields
/// ([`Input::Yield`]), once it has run [`TURN_MIN_COMMANDS`], so that other
/// connections of the worker are read and served in between. Bytes alone
/// do not bound a turn: 64 KiB of SUBSCRIBEs of fresh channels take over a
/// millisecond, where Redis, reading 16 KiB of a client per event-loop
/// turn, serves every other client each few hundred microseconds.
pub(super) const INPUT_TURN_TIME: Duration = Duration::from_micros(200);

/// Commands a turn runs whatever they cost. A publisher's turn is what its
/// subscribers receive in one write each (the writers run between turns),
/// and the kernel's cost per write, not per byte, is most of a fan-out's:
/// 64 PUBLISHes to 1,000 subscribers make 64 frames per write, where
/// yielding after 200 µs would make 2 and cost three times the CPU per
/// delivery.
const TURN_MIN_COMMANDS: u32 = 64;

/// Commands run between two looks at a turn's time, past the minimum.
const TURN_CHECK_EVERY: u32 = 16;

/// The cross-protocol warning is logged at most this often (as Redis).
const SECURITY_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Hub {
    /// How long a turn of [`Hub::input`] may run requests before it yields
    /// (once it ran 64 commands). For checks that predict every turn's
    /// outcome: [`Duration::MAX`] makes turns end by bytes alone, as they
    /// would on a machine fast enough.
    pub fn set_turn_time(&mut self, turn_time: Duration) {
        self.turn_time = turn_time;
    }

    /// Handle the bytes read so far from a connection: decode and execute
    /// every complete request, consuming its bytes from `buf`.
    pub fn input(&mut self, key: ConnKey, buf: &mut BytesMut) -> Input {
        if self.stopping {
            return Input::Close;
        }
        let mut timer = self.start_turn();
        let status = self.run_requests(key, buf, &mut timer);
        self.end_turn(&timer);
        status
    }

    /// [`Hub::input`]'s turn: the requests of one read, or of about
    /// `INPUT_TURN_BYTES` of them.
    fn run_requests(&mut self, key: ConnKey, buf: &mut BytesMut, timer: &mut Timer) -> Input {
        let start = buf.len();
        let mut ran = 0u32;
        // The clock at the first look, when commands are not timed anyway.
        let mut first_look = None;
        loop {
            if start - buf.len() >= INPUT_TURN_BYTES && !buf.is_empty() {
                return Input::Yield;
            }
            if ran >= TURN_MIN_COMMANDS
                && ran.is_multiple_of(TURN_CHECK_EVERY)
                && !buf.is_empty()
                && timer.spent(&mut first_look) >= self.turn_time
            {
                return Input::Yield;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                return Input::Close;
            };
            if conn.state != ConnState::Open {
                return Input::Close;
            }
            let exec = if let Some(args) = conn.pending.take() {
                ran += 1;
                self.execute(key, args.list(), timer)
            } else {
                let request = match conn.decoder.decode(buf, !conn.session.auth_required()) {
                    Ok(Some(request)) => request,
                    Ok(None) => return Input::NeedMore,
                    Err(e) => {
                        self.protocol_error(key, &e.message_bytes());
                        return Input::Close;
                    }
                };
                ran += 1;
                // The request runs from the read buffer, then leaves it.
                let exec = self.execute(key, request.args(buf), timer);
                buf.advance(request.wire_len());
                if let (Request::Multibulk { spans, .. }, Some(conn)) =
                    (request, self.conns.get_mut(key))
                {
                    conn.decoder.recycle(spans);
                }
                exec
            };
            match exec {
                Exec::Done => {
                    if let Some(to) = self.move_chosen(key) {
                        return Input::Move(to);
                    }
                }
                Exec::Blocked => return Input::Blocked,
                Exec::Sleep(d) => return Input::Sleep(d),
                Exec::CloseAfterReply | Exec::Abort => return Input::Close,
            }
        }
    }

    /// Where the paused EXEC of `key` stands (after [`Input::Blocked`]): the
    /// place in its queue of the command that waits for ring room. For
    /// checks that follow the hub from outside (the session fuzz target).
    pub fn paused_exec(&self, key: ConnKey) -> Option<usize> {
        let t = self.conns.get(key)?.session.transaction.as_ref()?;
        t.waiting_at()
    }

    /// Redis replies to a protocol error and closes after the reply. Under
    /// `CLIENT REPLY OFF` or `SKIP` the reply is silenced like any other
    /// (Redis's `prepareClientToWrite`), and the connection closes at once.
    fn protocol_error(&mut self, key: ConnKey, message: &[u8]) {
        let mut out = b"-ERR ".to_vec();
        out.extend_from_slice(message);
        out.extend_from_slice(b"\r\n");
        let conn = &mut self.conns[key];
        if conn.session.reply_mode == ReplyMode::On {
            conn.out.extend(&out);
        }
        self.reweigh(key);
        self.shared.errors.record(&out[1..]);
        WorkerStats::add(&self.stats().error_replies, 1);
        self.close_after_reply(key, Disconnect::ProtocolError);
    }

    /// Run one command, queue its reply (unless CLIENT REPLY suppresses it),
    /// then deliver what it published to this worker's subscribers.
    fn execute(&mut self, key: ConnKey, args: ArgList<'_>, timer: &mut Timer) -> Exec {
        self.acl_sweep();
        if self.conns[key].state != ConnState::Open {
            // Its own user was just deleted or revoked.
            return Exec::CloseAfterReply;
        }
        self.reply.clear();
        let conn = &mut self.conns[key];
        // An EXEC that paused on a publish goes on where it stopped; it
        // keeps its own CLIENT REPLY state.
        let resuming = conn
            .session
            .transaction
            .as_ref()
            .is_some_and(|t| t.under_way());
        // CLIENT REPLY SKIP applies to the command after it.
        let skip = !resuming && conn.session.reply_mode == ReplyMode::SkipNext;
        if skip {
            conn.session.reply_mode = ReplyMode::On;
        }
        let mut ctx = Ctx {
            conn: key,
            session: &mut conn.session,
            pushes: &mut conn.out,
            reply: &mut self.reply,
            skip_reply: skip,
            router: &mut self.router,
            shared: &self.shared,
            worker: self.worker,
            now: self.now,
            called: None,
        };
        let exec = if resuming {
            commands::resume(&mut ctx)
        } else {
            commands::dispatch(&mut ctx, args)
        };
        let (skip, called) = (ctx.skip_reply, ctx.called);
        if exec == Exec::Abort {
            self.abort(key);
            return exec;
        }
        if exec == Exec::Blocked {
            let paused_exec = conn
                .session
                .transaction
                .as_ref()
                .is_some_and(|t| t.under_way());
            if paused_exec {
                // EXEC ran part of its queue (and wrote its output so far):
                // it resumes at the command that waits.
                self.reweigh(key);
                self.deliver_local();
                self.sync_pubsub_gauge(key);
                self.show_ran_in_exec(key, skip);
            } else if skip {
                // Nothing ran; the command is retried as a whole later.
                conn.session.reply_mode = ReplyMode::SkipNext;
            }
            self.conns[key].pending = Some(args.to_args());
            return exec;
        }
        WorkerStats::add(&self.stats().commands_processed, 1);
        if self.reply.first() == Some(&b'-') {
            // Counted whether or not CLIENT REPLY lets it through, as Redis does.
            self.shared.errors.record(&self.reply[1..]);
            WorkerStats::add(&self.stats().error_replies, 1);
        }
        let conn = &mut self.conns[key];
        if !self.reply.is_empty() && !skip && conn.session.reply_mode != ReplyMode::Off {
            conn.out.extend(&self.reply);
        }
        self.reweigh(key);
        // Nothing follows the reply that closes the connection (a client
        // that killed itself inside EXEC, then published to itself).
        if exec == Exec::CloseAfterReply {
            self.close_after_reply(key, closed_by(&args[0]));
        }
        // After the reply: a publisher's own push follows its PUBLISH reply (Redis 7.2).
        self.deliver_local();
        let route = self.router.take_route();
        self.note_route(key, route);
        self.sync_pubsub_gauge(key);
        // Out of MONITOR mode (RESET) before the feed: as in Redis, RESET
        // is not shown to the client that ran it.
        self.sync_monitor(key);
        let took = timer.lap(exec);
        if called.is_some() && called == self.config_set {
            timer.refresh(&self.shared.config.load());
        }
        self.show_ran_in_exec(key, skip);
        if let Some(id) = called {
            self.observe(key, id, args, took, timer, skip);
        }
        self.limit_unauthenticated(key);
        exec
    }

    /// A request that looks like HTTP: close the connection at once, without
    /// a reply (Redis's guard against cross-protocol scripting, where a web
    /// page makes a browser send its headers to the server), and say so in
    /// the log at most once a minute.
    fn abort(&mut self, key: ConnKey) {
        let now = self.now;
        let quiet = self
            .security_warned
            .is_some_and(|t| now.saturating_duration_since(t) < SECURITY_WARNING_EVERY);
        if !quiet {
            self.security_warned = Some(now);
            tracing::warn!(
                "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection from {} aborted.",
                self.conns[key].session.meta.addr
            );
        }
        self.kill(key, Disconnect::ProtocolError);
    }

    /// Close a client that never authenticated once its output passes
    /// [`UNAUTHENTICATED_OUTPUT_LIMIT`] (one logged out by RESET is not held
    /// to it, as in Redis).
    fn limit_unauthenticated(&mut self, key: ConnKey) {
        let s = &self.conns[key].session;
        if !s.authenticated
            && !s.ever_authenticated
            && self.conns[key].out.memory() > UNAUTHENTICATED_OUTPUT_LIMIT
        {
            self.kill_over_limit(key, LimitExceeded::Unauthenticated);
        }
    }

    /// The reader got `n` bytes (INFO counters) — and checks the query buffer limit:
    /// false means the client must be closed.
    pub fn received(&mut self, key: ConnKey, n: usize, buffered: usize) -> bool {
        let stats = self.stats();
        WorkerStats::add(&stats.net_input_bytes, n as u64);
        WorkerStats::add(&stats.reads_processed, 1);
        let mut buffered = buffered;
        if let Some(conn) = self.conns.get_mut(key) {
            buffered -= conn.decoder.parsed_len().min(buffered);
            conn.last_interaction = self.now;
            conn.input_buffered = buffered;
        }
        let limit = self.shared.config.load().client_query_buffer_limit;
        // Commands queued by MULTI count as part of the query buffer (as
        // Redis 7.4 counts them): they are input not yet executed.
        let queued = self.conns.get(key).map_or(0, |c| {
            c.session.transaction.as_ref().map_or(0, |t| t.memory())
        });
        if buffered + queued > limit {
            self.kill(key, Disconnect::QueryBufferLimit);
            return false;
        }
        true
    }
}

/// Why a command that closes its own connection after the reply closes it:
/// `CLIENT KILL` naming the caller, an `ACL` change that revokes the
/// caller's user, `SHUTDOWN`, else `QUIT`.
fn closed_by(command: &[u8]) -> Disconnect {
    if command.eq_ignore_ascii_case(b"client") {
        Disconnect::Killed
    } else if command.eq_ignore_ascii_case(b"acl") {
        Disconnect::AclRevoked
    } else if command.eq_ignore_ascii_case(b"shutdown") {
        Disconnect::Shutdown
    } else {
        Disconnect::Quit
    }
}
