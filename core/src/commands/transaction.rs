//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, and the queue
//! dispatch fills between MULTI and EXEC.
//!
//! As in Redis (`multi.c`, `processCommand`): after MULTI every command that
//! passes dispatch's checks is queued and answered `+QUEUED`, except EXEC,
//! DISCARD, MULTI, WATCH, QUIT and RESET, which run at once. A command
//! refused while queueing marks the transaction, and EXEC then discards it
//! with `-EXECABORT`. EXEC answers an array with one element per queued
//! command, each command's own output in place: a SUBSCRIBE of several
//! channels puts several confirmations there, as Redis does. Before each
//! command EXEC checks the ACL rules again, since they may have changed.
//!
//! There are no keys, so no key is ever modified and WATCH never makes
//! EXEC fail: WATCH and UNWATCH only answer `+OK`.
//!
//! Where ringcast differs from Redis's single thread: a queued PUBLISH may
//! have to wait for room in another worker's ring. EXEC then pauses at that
//! command and resumes there once woken ([`resume`]), never running a
//! command twice; the connection reads nothing meanwhile, and messages for
//! it wait behind the EXEC reply ([`OutputQueue::hold`]), so the reply
//! reaches the client in one piece, as Redis sends it.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{CommandSpec, Ctx, Exec, FLAT};
use crate::errors;
use crate::output::OutputQueue;
use crate::resp::args::{ArgList, Args};
use crate::resp::encode;
use crate::session::{ReplyMode, Session};
use crate::stats::WorkerStats;

/// A connection's open transaction, from MULTI to EXEC or DISCARD.
#[derive(Debug, Default)]
pub struct Transaction {
    queued: Vec<Queued>,
    /// Bytes the queued commands hold (`multi-mem` of CLIENT LIST); with the
    /// unread input, bounded by `client-query-buffer-limit` (as Redis 7.4).
    memory: usize,
    /// A command was refused while queueing: EXEC discards the transaction
    /// (Redis's `CLIENT_DIRTY_EXEC`).
    dirty: bool,
    /// EXEC is under way: the next queued command to run.
    next: Option<usize>,
    /// EXEC's reply is skipped (`CLIENT REPLY SKIP` before it).
    skip: bool,
    /// A command closed the connection (CLIENT KILL of itself): the rest
    /// still runs, and nothing more is written.
    closing: bool,
    /// DEBUG SLEEP run by EXEC: the worker sleeps this long once it is done.
    sleep: Duration,
}

#[derive(Debug)]
struct Queued {
    /// Its id in the dispatch table.
    id: u16,
    /// Copied out of the read buffer: what a queue holds is what it counts.
    args: Args,
}

impl Transaction {
    /// Bytes held by the queued commands.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// EXEC started and waits to go on (a publish waits for ring room).
    pub fn under_way(&self) -> bool {
        self.next.is_some()
    }

    /// The shard channels the queued commands name, which EXEC is routed
    /// on in cluster mode.
    pub(crate) fn shard_channels(&self) -> impl Iterator<Item = &[u8]> {
        self.queued.iter().flat_map(|q| {
            let args = q.args.list();
            let channels = match super::name_of(q.id) {
                "ssubscribe" | "sunsubscribe" => args.within(1..usize::MAX),
                "spublish" => args.within(1..2),
                _ => args.within(0..0),
            };
            channels.iter()
        })
    }

    /// The queued command a paused EXEC goes on with, by its place in the queue.
    pub fn waiting_at(&self) -> Option<usize> {
        self.next
    }
}

/// The commands that run at once inside MULTI instead of being queued.
fn runs_at_once(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Whether dispatch queues this command instead of running it.
pub(super) fn queues(session: &Session, spec: &CommandSpec) -> bool {
    session.transaction.is_some() && !runs_at_once(spec)
}

/// Queue a command that passed dispatch's checks, answering `+QUEUED`.
pub(super) fn queue(ctx: &mut Ctx<'_>, id: u16, args: ArgList<'_>) -> Exec {
    encode::simple(ctx.reply, b"QUEUED");
    let Some(t) = ctx.session.transaction.as_deref_mut() else {
        return Exec::Done;
    };
    // As Redis: a transaction EXEC will discard keeps nothing more.
    if t.dirty {
        return Exec::Done;
    }
    let args = args.to_args();
    t.memory += args.memory() + size_of::<Queued>();
    t.queued.push(Queued { id, args });
    publish_state(ctx.session);
    Exec::Done
}

/// A command was refused while a transaction is open: EXEC will discard it
/// (Redis's `flagTransaction`).
pub(super) fn flag(session: &mut Session) {
    if let Some(t) = session.transaction.as_deref_mut() {
        t.dirty = true;
    }
}

/// Drop the transaction, if any (DISCARD, EXEC, RESET).
pub(crate) fn discard(session: &mut Session) {
    if session.transaction.take().is_some() {
        publish_state(session);
    }
}

/// Mirror the queue into the client directory (CLIENT LIST `flags=x`,
/// `multi=`, `multi-mem=`).
fn publish_state(session: &Session) {
    let (count, memory) = session
        .transaction
        .as_deref()
        .map_or((-1, 0), |t| (t.queued.len() as i64, t.memory));
    session.meta.multi.store(count, Relaxed);
    session.meta.multi_mem.store(memory, Relaxed);
}

pub(super) fn multi(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    if ctx.session.transaction.is_some() {
        encode::error(ctx.reply, errors::MULTI_NESTED);
        return Exec::Done;
    }
    ctx.session.transaction = Some(Box::default());
    publish_state(ctx.session);
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}

pub(super) fn discard_command(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    if ctx.session.transaction.is_none() {
        encode::error(ctx.reply, errors::DISCARD_WITHOUT_MULTI);
        return Exec::Done;
    }
    discard(ctx.session);
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}

/// WATCH key [key ...]: no key is ever modified here, so there is nothing
/// to remember; inside MULTI it is refused as in Redis.
pub(super) fn watch(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    if ctx.session.transaction.is_some() {
        encode::error(ctx.reply, errors::WATCH_IN_MULTI);
    } else {
        encode::simple(ctx.reply, b"OK");
    }
    Exec::Done
}

pub(super) fn unwatch(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}

/// A refused EXEC discards the transaction (Redis's `execCommandAbort`).
pub(super) fn abort(ctx: &mut Ctx<'_>, why: &[u8]) {
    discard(ctx.session);
    encode::error(ctx.reply, errors::execabort(why));
}

/// EXEC: the array header, then every queued command's output in turn.
/// It writes to the output queue itself, in order with the confirmations
/// SUBSCRIBE pushes, and leaves `ctx.reply` empty.
pub(super) fn exec(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let Some(t) = ctx.session.transaction.as_deref_mut() else {
        encode::error(ctx.reply, errors::EXEC_WITHOUT_MULTI);
        return Exec::Done;
    };
    if t.dirty {
        discard(ctx.session);
        encode::error(ctx.reply, errors::EXECABORT);
        return Exec::Done;
    }
    t.next = Some(0);
    t.skip = ctx.skip_reply;
    encode::array(ctx.reply, t.queued.len());
    if replies_on(ctx) {
        ctx.pushes.extend(&ctx.reply[..]);
    }
    ctx.reply.clear();
    run_queued(ctx)
}

/// Go on with an EXEC that paused on a publish waiting for ring room.
pub(crate) fn resume(ctx: &mut Ctx<'_>) -> Exec {
    if let Some(t) = ctx.session.transaction.as_deref() {
        ctx.skip_reply = t.skip;
    }
    run_queued(ctx)
}

/// Whether a reply would reach the client now (`CLIENT REPLY`).
fn replies_on(ctx: &Ctx<'_>) -> bool {
    !ctx.skip_reply && ctx.session.reply_mode != ReplyMode::Off
}

/// Run the queued commands from where EXEC is, until all ran or one must
/// wait for ring room.
fn run_queued(ctx: &mut Ctx<'_>) -> Exec {
    loop {
        let Some(t) = ctx.session.transaction.as_deref_mut() else {
            return Exec::Done;
        };
        let j = t.next.unwrap_or(usize::MAX);
        let Some(q) = t.queued.get_mut(j) else {
            break;
        };
        let (id, args) = (q.id, std::mem::take(&mut q.args));
        let mut pushes = OutputQueue::default();
        let exec = run_one(ctx, &mut pushes, id, args.list());
        let Some(t) = ctx.session.transaction.as_deref_mut() else {
            return Exec::Done;
        };
        if exec == Exec::Blocked {
            // Nothing ran: the same command runs again once woken. Until
            // EXEC is done, messages for this client wait behind its reply.
            t.queued[j].args = args;
            t.skip = ctx.skip_reply;
            ctx.pushes.hold();
            return Exec::Blocked;
        }
        let closing = t.closing;
        match exec {
            Exec::Sleep(d) => t.sleep += d,
            Exec::CloseAfterReply | Exec::Abort => t.closing = true,
            Exec::Done | Exec::Blocked => {}
        }
        t.next = Some(j + 1);
        if ctx.shared.monitors.watchers() != 0 {
            // As Redis's `call` does for each command EXEC runs: the
            // monitors see it (the hub shows them, before EXEC itself).
            ctx.session.ran_in_exec.push((id, args));
        }
        emit(ctx, &mut pushes, closing);
    }
    let t = ctx.session.transaction.take().unwrap_or_default();
    publish_state(ctx.session);
    if t.closing {
        // Nothing is written after the reply that closes the connection.
        ctx.pushes.drop_held();
        Exec::CloseAfterReply
    } else {
        ctx.pushes.release();
        if t.sleep.is_zero() {
            Exec::Done
        } else {
            Exec::Sleep(t.sleep)
        }
    }
}

/// One queued command, as Redis's EXEC calls it: the ACL rules checked
/// again, none of dispatch's other checks (a RESP2 client that subscribed
/// earlier in the transaction still runs the rest).
fn run_one(ctx: &mut Ctx<'_>, pushes: &mut OutputQueue, id: u16, args: ArgList<'_>) -> Exec {
    ctx.reply.clear();
    let Some(spec) = FLAT.get(usize::from(id)).copied() else {
        return Exec::Done;
    };
    let mut inner = Ctx {
        conn: ctx.conn,
        session: &mut *ctx.session,
        pushes,
        reply: &mut *ctx.reply,
        skip_reply: ctx.skip_reply,
        router: &mut *ctx.router,
        shared: ctx.shared,
        worker: ctx.worker,
        now: ctx.now,
        called: None,
    };
    let exec = if !super::acl::allowed_at_exec(&mut inner, id, spec, args) {
        Exec::Done
    } else if spec.name == "ssubscribe" {
        encode::error(inner.reply, errors::SSUBSCRIBE_DENY_BLOCKING);
        Exec::Done
    } else if spec.name == "monitor" {
        encode::error(inner.reply, errors::MONITOR_DENY_BLOCKING);
        Exec::Done
    } else {
        (spec.run)(&mut inner, args)
    };
    ctx.skip_reply = inner.skip_reply;
    exec
}

/// Put one command's output in EXEC's reply: its pushes (sent whatever
/// `CLIENT REPLY` says), then its reply — nothing once the connection is
/// closing. Errors count in INFO whether written or not, as in Redis.
fn emit(ctx: &mut Ctx<'_>, pushes: &mut OutputQueue, closing: bool) {
    if ctx.reply.first() == Some(&b'-') {
        ctx.shared.errors.record(&ctx.reply[1..]);
        WorkerStats::add(&ctx.stats().error_replies, 1);
    }
    if !closing {
        let mut frames = Vec::new();
        pushes.take(&mut frames);
        for f in frames {
            ctx.pushes.extend(&f);
        }
        if replies_on(ctx) {
            ctx.pushes.extend(&ctx.reply[..]);
        }
    }
    ctx.reply.clear();
}
