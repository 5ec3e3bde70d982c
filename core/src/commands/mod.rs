//! Command table and dispatch: finds the command, checks arity,
//! authentication and the RESP2 subscribed-mode gate in Redis's order, then
//! runs it. One file per command family: `pubsub`, `connection`,
//! `info`, `introspection` (PUBSUB, CLIENT, CONFIG, COMMAND) and `keyspace`
//! (the empty keyspace and DEBUG).

mod connection;
mod docs;
mod info;
mod introspection;
mod keyspace;
mod pubsub;

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;

use crate::errors;
use crate::hub::{ConnKey, Exec, Hub};
use crate::resp::encode;

/// Allowed before authentication.
const NO_AUTH: u8 = 1;
/// Allowed in RESP2 subscribed mode.
const PUBSUB_OK: u8 = 2;

type Fast = foldhash::fast::RandomState;

type Run = fn(&mut Hub, ConnKey, &[Bytes]) -> Exec;

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
        run: |_, _, _| Exec::Done,
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
    container("pubsub", introspection::PUBSUB),
    cmd("ping", -1, PUBSUB_OK, connection::ping),
    cmd("echo", 2, 0, connection::echo),
    cmd("quit", -1, NO_AUTH | PUBSUB_OK, connection::quit),
    cmd("reset", 1, NO_AUTH | PUBSUB_OK, connection::reset),
    cmd("hello", -1, NO_AUTH, connection::hello),
    cmd("auth", -2, NO_AUTH, connection::auth),
    cmd("select", 2, 0, connection::select),
    container("client", introspection::CLIENT),
    cmd("info", -1, 0, info::info),
    container("config", introspection::CONFIG),
    CommandSpec {
        name: "command",
        arity: -1,
        flags: 0,
        run: introspection::command,
        subcommands: introspection::COMMAND,
    },
    cmd("flushall", -1, 0, keyspace::flush),
    cmd("flushdb", -1, 0, keyspace::flush),
    cmd("dbsize", 1, 0, keyspace::dbsize),
    cmd("time", 1, 0, keyspace::time),
    cmd("debug", -2, 0, keyspace::debug),
];

/// The name a command is called by: the part after `|` for a subcommand.
fn called(spec: &CommandSpec) -> &'static str {
    spec.name.split_once('|').map_or(spec.name, |(_, sub)| sub)
}

/// Top-level commands by lowercase name, so dispatch costs one hash lookup.
static BY_NAME: LazyLock<HashMap<&'static [u8], &'static CommandSpec, Fast>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect());

fn find(table: &'static [CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    if std::ptr::eq(table, COMMANDS) {
        let mut lower = [0u8; 32];
        let lower = lower.get_mut(..name.len())?;
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        return BY_NAME.get(&lower[..]).copied();
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

/// Run one request (`args[0]` is the command name; never empty).
pub(crate) fn dispatch(hub: &mut Hub, key: ConnKey, args: Vec<Bytes>) -> Exec {
    let Some(top) = find(COMMANDS, &args[0]) else {
        let e = errors::unknown_command(&args[0], &args[1..]);
        encode::error(&mut hub.reply, &e);
        return Exec::Done;
    };
    let mut spec = top;
    if !top.subcommands.is_empty() && args.len() >= 2 {
        match find(top.subcommands, &args[1]) {
            Some(sub) => spec = sub,
            None => {
                let e = errors::unknown_subcommand(&args[1], &top.name.to_ascii_uppercase());
                encode::error(&mut hub.reply, &e);
                return Exec::Done;
            }
        }
    }
    if !arity_ok(spec.arity, args.len()) {
        encode::error(&mut hub.reply, &errors::wrong_arity(spec.name));
        return Exec::Done;
    }
    if top.name == "debug" && !keyspace::debug_allowed(hub, key) {
        encode::error(&mut hub.reply, errors::DEBUG_DISABLED);
        return Exec::Done;
    }
    let session = &hub.conns[key].session;
    if !session.authenticated && spec.flags & NO_AUTH == 0 {
        encode::error(&mut hub.reply, errors::NOAUTH);
        return Exec::Done;
    }
    if session.proto == encode::Proto::Resp2 && session.in_pubsub() && spec.flags & PUBSUB_OK == 0 {
        encode::error(
            &mut hub.reply,
            &errors::subscribed_context(spec.name.as_bytes()),
        );
        return Exec::Done;
    }
    {
        let meta = &hub.conns[key].session.meta;
        meta.set_last_cmd(spec);
        // The hub's coarse clock (100 ms steps): CLIENT LIST shows idle
        // time in seconds, and a clock read per command is not free.
        meta.last_active_ms.store(
            hub.now.saturating_duration_since(meta.created).as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    (spec.run)(hub, key, &args)
}

/// Parse an integer argument as Redis does (`string2ll`: no spaces, no `+`).
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 || arg[0] == b'+' {
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
