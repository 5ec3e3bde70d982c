//! Command table and dispatch: finds the command, checks arity,
//! authentication and the RESP2 subscribed-mode gate in Redis's order, then
//! runs it. One file per command family: `pubsub` (SUBSCRIBE and co.,
//! PUBLISH, PUBSUB), `connection` (PING, HELLO, AUTH...), `client`, `config`,
//! `command` (with its metadata in `docs`), `info`, `keyspace` (the
//! empty keyspace and DEBUG), `shutdown`, `monitor`, `slowlog` and
//! `latency` (with what they see of a command in `audit`), and
//! `transaction` (MULTI, EXEC, and the queue dispatch fills in between).
//!
//! A command sees the world through a [`Ctx`]: the connection it runs for,
//! its reply buffer, the worker's pub/sub [`Router`] and the state shared by
//! every worker, each borrowed on its own. It never sees the hub that owns
//! them; the hub builds the context, runs the command and acts on the
//! [`Exec`] it returns.

mod acl;
pub mod audit;
mod client;
mod cluster;
mod command;
mod config;
mod connection;
mod docs;
mod info;
mod keyspace;
mod latency;
mod monitor;
mod pubsub;
mod shutdown;
mod slowlog;
mod transaction;

pub use transaction::Transaction;
pub(crate) use transaction::resume;

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::WorkerId;
use crate::client::NO_COMMAND;
use crate::errors;
use crate::output::OutputQueue;
use crate::resp::args::ArgList;
use crate::resp::encode;
use crate::router::{ConnKey, Router};
use crate::session::Session;
use crate::shared::Shared;
use crate::stats::WorkerStats;

/// What a command runs with: disjoint borrows of what it may touch.
pub struct Ctx<'a> {
    /// The connection the command runs for, as the router knows it.
    pub conn: ConnKey,
    pub session: &'a mut Session,
    /// The connection's output queue: pushes (subscribe confirmations) go
    /// here at once, since `CLIENT REPLY OFF` does not suppress them.
    pub pushes: &'a mut OutputQueue,
    /// The command's reply; the hub queues it unless `CLIENT REPLY` says not to.
    pub reply: &'a mut BytesMut,
    /// `CLIENT REPLY SKIP` applies to this command's reply (CLIENT REPLY ON clears it).
    pub skip_reply: bool,
    pub router: &'a mut Router,
    pub shared: &'a Shared,
    pub worker: WorkerId,
    /// The worker's coarse clock (advanced by its cron).
    pub now: Instant,
    /// The id of the command dispatch ran (`None` when it was refused before
    /// running: unknown, arity, authentication, ACL...): what monitors, the
    /// slow log and the latency monitor are told about.
    pub called: Option<u16>,
}

impl Ctx<'_> {
    /// This worker's counters.
    pub fn stats(&self) -> &WorkerStats {
        self.shared.worker_stats(self.worker)
    }
}

/// Outcome of one command, for the hub to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    Done,
    /// A publish waits for room in another worker's ring: nothing was done;
    /// run the same command again once woken. (EXEC ran the commands queued
    /// before that publish: `transaction::resume` goes on from it.)
    Blocked,
    /// `DEBUG SLEEP`: block the worker for this long.
    Sleep(Duration),
    /// Send the reply and what is queued, then close (QUIT, CLIENT KILL of oneself).
    CloseAfterReply,
    /// Close at once, without a reply: a request that looks like HTTP
    /// (`POST`, `Host:`), as Redis guards against cross-protocol scripting.
    Abort,
}

/// Allowed before authentication.
const NO_AUTH: u8 = 1;
/// Allowed in RESP2 subscribed mode.
const PUBSUB_OK: u8 = 2;
/// Refused inside MULTI (Redis's `no_multi`).
const NO_MULTI: u8 = 4;

type Fast = foldhash::fast::RandomState;

type Run = fn(&mut Ctx<'_>, ArgList<'_>) -> Exec;

/// One command (or subcommand: `name` is then `container|sub`).
pub struct CommandSpec {
    pub name: &'static str,
    /// Redis convention: n > 0 exactly n arguments (with the name), n < 0 at least -n.
    pub arity: i32,
    flags: u8,
    run: Run,
    pub subcommands: &'static [CommandSpec],
}

const fn cmd(name: &'static str, arity: i32, flags: u8, run: Run) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        run,
        subcommands: &[],
    }
}

const fn container(name: &'static str, subcommands: &'static [CommandSpec]) -> CommandSpec {
    CommandSpec {
        name,
        arity: -2,
        flags: 0,
        run: |_, _| Exec::Done,
        subcommands,
    }
}

pub static COMMANDS: &[CommandSpec] = &[
    cmd("subscribe", -2, PUBSUB_OK, pubsub::subscribe),
    cmd("unsubscribe", -1, PUBSUB_OK, pubsub::unsubscribe),
    cmd("psubscribe", -2, PUBSUB_OK, pubsub::psubscribe),
    cmd("punsubscribe", -1, PUBSUB_OK, pubsub::punsubscribe),
    cmd("ssubscribe", -2, PUBSUB_OK, pubsub::ssubscribe),
    cmd("sunsubscribe", -1, PUBSUB_OK, pubsub::sunsubscribe),
    cmd("publish", 3, 0, pubsub::publish),
    cmd("spublish", 3, 0, pubsub::spublish),
    container("pubsub", pubsub::PUBSUB),
    container("acl", acl::ACL),
    cmd("ping", -1, PUBSUB_OK, connection::ping),
    cmd("echo", 2, 0, connection::echo),
    cmd("quit", -1, NO_AUTH | PUBSUB_OK, connection::quit),
    cmd("reset", 1, NO_AUTH | PUBSUB_OK, connection::reset),
    cmd("hello", -1, NO_AUTH, connection::hello),
    cmd("auth", -2, NO_AUTH, connection::auth),
    cmd("select", 2, 0, connection::select),
    container("client", client::CLIENT),
    cmd("info", -1, 0, info::info),
    container("config", config::CONFIG),
    CommandSpec {
        name: "command",
        arity: -1,
        flags: 0,
        run: command::command,
        subcommands: command::COMMAND,
    },
    cmd("flushall", -1, 0, keyspace::flush),
    cmd("flushdb", -1, 0, keyspace::flush),
    cmd("dbsize", 1, 0, keyspace::dbsize),
    cmd("time", 1, 0, keyspace::time),
    cmd("debug", -2, 0, keyspace::debug),
    cmd("shutdown", -1, NO_MULTI, shutdown::shutdown),
    cmd("multi", 1, 0, transaction::multi),
    cmd("exec", 1, 0, transaction::exec),
    cmd("discard", 1, 0, transaction::discard_command),
    cmd("watch", -2, 0, transaction::watch),
    cmd("unwatch", 1, 0, transaction::unwatch),
    cmd("monitor", 1, 0, monitor::monitor),
    container("slowlog", slowlog::SLOWLOG),
    container("latency", latency::LATENCY),
    container("cluster", cluster::CLUSTER),
    cmd("readonly", 1, 0, cluster::conn_flag),
    cmd("readwrite", 1, 0, cluster::conn_flag),
    cmd("asking", 1, 0, cluster::conn_flag),
];

/// The name a command is called by: the part after `|` for a subcommand.
fn called(spec: &CommandSpec) -> &'static str {
    spec.name.split_once('|').map_or(spec.name, |(_, sub)| sub)
}

/// Every command and subcommand, in table order (a container right before
/// its subcommands); a command's index here is its id (`ClientMeta::last_cmd`).
static FLAT: LazyLock<Vec<&'static CommandSpec>> = LazyLock::new(|| {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands))
        .collect()
});

/// A top-level command: its lowercase name, its id and itself.
type Named = (&'static [u8], u16, &'static CommandSpec);

/// Top-level commands by the length of their name, in table order (the
/// pub/sub commands first): dispatch compares a request's name, ignoring
/// case, with the few of its length (at most nine), which costs less than
/// lowercasing it into a buffer and hashing it.
static BY_LEN: LazyLock<Vec<Vec<Named>>> = LazyLock::new(|| {
    let mut by_len: Vec<Vec<Named>> = Vec::new();
    for (id, c) in FLAT.iter().enumerate() {
        if c.name.contains('|') {
            continue;
        }
        let len = c.name.len();
        if by_len.len() <= len {
            by_len.resize_with(len + 1, Vec::new);
        }
        by_len[len].push((c.name.as_bytes(), id as u16, *c));
    }
    by_len
});

/// The names clients call the top-level commands by: Redis's, unless the
/// configuration file renamed or removed some (`rename-command`, read at
/// startup only, as in Redis). Dispatch, MULTI's queue and `ACL DRYRUN`
/// look commands up here; a renamed command answers only to its new name,
/// a removed one to none (`unknown command`). Everything else keeps the
/// command's own name, as Redis keeps `cmd->fullname`: `COMMAND INFO`,
/// `CLIENT LIST`, the slow log, ACL rules.
#[derive(Default)]
pub struct CommandNames {
    /// `None` while nothing is renamed: the static table answers directly.
    renamed: Option<HashMap<Vec<u8>, (u16, &'static CommandSpec), Fast>>,
}

impl std::fmt::Debug for CommandNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.renamed.as_ref().map(|n| {
            let mut names: Vec<_> = n.keys().map(|k| String::from_utf8_lossy(k)).collect();
            names.sort();
            names
        });
        f.debug_struct("CommandNames")
            .field("renamed", &names)
            .finish()
    }
}

impl CommandNames {
    /// Apply `rename-command` lines in order; the error text is Redis's.
    pub fn new(renames: &[(Vec<u8>, Vec<u8>)]) -> Result<CommandNames, &'static str> {
        if renames.is_empty() {
            return Ok(CommandNames::default());
        }
        let mut names: HashMap<Vec<u8>, (u16, &'static CommandSpec), Fast> = BY_LEN
            .iter()
            .flatten()
            .map(|&(name, id, c)| (name.to_vec(), (id, c)))
            .collect();
        for (old, new) in renames {
            let found = names
                .remove(&old.to_ascii_lowercase())
                .ok_or("No such command in rename-command")?;
            if !new.is_empty() {
                let new = new.to_ascii_lowercase();
                if names.contains_key(&new) {
                    return Err("Target command name already exists");
                }
                names.insert(new, found);
            }
        }
        Ok(CommandNames {
            renamed: Some(names),
        })
    }

    /// A top-level command by the name clients call it, any case, with its id.
    pub(crate) fn find_top(&self, name: &[u8]) -> Option<(u16, &'static CommandSpec)> {
        match &self.renamed {
            None => find_top(name),
            Some(names) => names.get(&name.to_ascii_lowercase()).copied(),
        }
    }
}

/// The full name of the command with this id (`NULL` for none, as CLIENT LIST shows it).
pub fn name_of(id: u16) -> &'static str {
    match id {
        NO_COMMAND => "NULL",
        id => FLAT.get(usize::from(id)).map_or("NULL", |c| c.name),
    }
}

/// The id of a command of the table (its index in `FLAT`).
fn id_of(spec: &CommandSpec) -> Option<u16> {
    FLAT.iter()
        .position(|c| std::ptr::eq(*c, spec))
        .map(|at| at as u16)
}

/// A top-level command by name, any case, with its id.
fn find_top(name: &[u8]) -> Option<(u16, &'static CommandSpec)> {
    BY_LEN
        .get(name.len())?
        .iter()
        .find(|(n, ..)| n.eq_ignore_ascii_case(name))
        .map(|&(_, id, c)| (id, c))
}

/// A subcommand of `top` (whose id is `top_id`) by name, any case, with its id.
fn find_sub(
    top_id: u16,
    top: &'static CommandSpec,
    name: &[u8],
) -> Option<(u16, &'static CommandSpec)> {
    let at = top
        .subcommands
        .iter()
        .position(|c| called(c).as_bytes().eq_ignore_ascii_case(name))?;
    Some((top_id + 1 + at as u16, &top.subcommands[at]))
}

fn find(table: &'static [CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    if std::ptr::eq(table, COMMANDS) {
        return find_top(name).map(|(_, c)| c);
    }
    table
        .iter()
        .find(|c| called(c).as_bytes().eq_ignore_ascii_case(name))
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i32;
    if arity > 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// Run one request (`args[0]` is the command name; never empty): checks in
/// the order of Redis's `processCommand` (existence, arity, DEBUG's own
/// gate, authentication, ACL, the RESP2 subscribed mode), then the command
/// — or, inside MULTI, queue it.
pub fn dispatch(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if args[0].eq_ignore_ascii_case(b"post") || args[0].eq_ignore_ascii_case(b"host:") {
        return Exec::Abort;
    }
    let Some((top_id, top)) = ctx.shared.command_names.find_top(&args[0]) else {
        let e = errors::unknown_command(&args[0], args.slice(1..));
        return reject(ctx, None, e);
    };
    let (mut id, mut spec) = (top_id, top);
    if !top.subcommands.is_empty() && args.len() >= 2 {
        match find_sub(top_id, top, &args[1]) {
            Some(found) => (id, spec) = found,
            None => {
                let e = errors::unknown_subcommand(&args[1], &top.name.to_ascii_uppercase());
                return reject(ctx, None, e);
            }
        }
    }
    if !arity_ok(spec.arity, args.len()) {
        return reject(ctx, Some(spec), errors::wrong_arity(spec.name));
    }
    if top.name == "debug" && !keyspace::debug_allowed(ctx) {
        return reject(ctx, Some(spec), errors::DEBUG_DISABLED);
    }
    if ctx.session.auth_required() && spec.flags & NO_AUTH == 0 {
        return reject(ctx, Some(spec), errors::NOAUTH);
    }
    if spec.flags & NO_MULTI != 0 && ctx.session.transaction.is_some() {
        return reject(ctx, Some(spec), errors::NOT_IN_MULTI);
    }
    // The ACL log's client line shows the command that was refused.
    ctx.session.meta.last_cmd.store(id, Relaxed);
    if let Err(e) = acl::allowed(ctx, id, spec, args) {
        return reject(ctx, Some(spec), e);
    }
    if let Some(e) = cluster::redirect(ctx, spec, args) {
        // As Redis: EXEC drops its transaction and answers the redirect
        // itself; a command being queued marks the transaction.
        if spec.name == "exec" {
            transaction::discard(ctx.session);
            encode::error(ctx.reply, e);
            return Exec::Done;
        }
        return reject(ctx, Some(spec), e);
    }
    let session = &*ctx.session;
    if session.proto == encode::Proto::Resp2 && session.in_pubsub() && spec.flags & PUBSUB_OK == 0 {
        return reject(ctx, Some(spec), errors::subscribed_context(spec.name));
    }
    if session.monitor && audit::traits(id).keyspace {
        encode::error(ctx.reply, errors::REPLICA_KEYSPACE);
        return Exec::Done;
    }
    let meta = &ctx.session.meta;
    // The worker's coarse clock (advanced by each cron run, 100 ms steps by
    // default): CLIENT LIST shows idle time in seconds, and a clock read per
    // command is not free.
    meta.last_active_ms.store(
        ctx.now.saturating_duration_since(meta.created).as_millis() as u64,
        Relaxed,
    );
    if transaction::queues(ctx.session, spec) {
        return transaction::queue(ctx, id, args);
    }
    ctx.called = Some(id);
    let exec = (spec.run)(ctx, args);
    if exec != Exec::Blocked {
        cluster::command_done(ctx, spec);
    }
    exec
}

/// A command refused by dispatch's checks (Redis's `rejectCommand`): an
/// open transaction is marked for EXEC to discard, and EXEC itself, refused,
/// discards it at once.
fn reject(ctx: &mut Ctx<'_>, spec: Option<&CommandSpec>, e: impl AsRef<[u8]>) -> Exec {
    transaction::flag(ctx.session);
    if spec.is_some_and(|s| s.name == "exec") {
        transaction::abort(ctx, e.as_ref());
    } else {
        encode::error(ctx.reply, e);
    }
    Exec::Done
}

/// The reply of a HELP subcommand: one simple string per line.
fn help(ctx: &mut Ctx<'_>, lines: &[&str]) -> Exec {
    encode::array(ctx.reply, lines.len());
    for l in lines {
        encode::simple(ctx.reply, l.as_bytes());
    }
    Exec::Done
}

/// Parse an integer argument as Redis does (`string2ll`: no spaces, no `+`).
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    // Redis's `string2ll`: an optional `-`, then `0` alone or digits not
    // starting with `0` (so `03` and `-0` are not numbers), within range.
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    if digits.is_empty() || arg.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits[0] == b'0' && arg.len() > 1 {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"10"), Some(10));
        assert_eq!(parse_i64(b"-3"), Some(-3));
        assert_eq!(parse_i64(b"+3"), None);
        assert_eq!(parse_i64(b" 3"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"03"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }

    #[test]
    fn every_top_level_command_is_found_by_its_name_in_any_case() {
        for c in COMMANDS {
            for name in [c.name.to_string(), c.name.to_ascii_uppercase()] {
                let (id, found) = find_top(name.as_bytes()).expect(c.name);
                assert!(std::ptr::eq(found, c), "{name}");
                assert_eq!(name_of(id), c.name);
            }
        }
        for unknown in [
            &b"publis"[..],
            b"publishx",
            b"",
            b"pubsub|channels",
            &[b'x'; 64],
        ] {
            assert!(find_top(unknown).is_none(), "{unknown:?}");
        }
    }

    #[test]
    fn every_command_name_is_lowercase_and_unique() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        assert!(
            COMMANDS
                .iter()
                .all(|c| c.name == c.name.to_ascii_lowercase())
        );
    }
}
