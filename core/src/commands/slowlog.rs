//! SLOWLOG GET, LEN, RESET and HELP over the server's one slow log
//! (`crate::slowlog`), which every worker feeds.

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode;

pub(super) static SLOWLOG: &[CommandSpec] = &[
    cmd("slowlog|get", -2, 0, slowlog_get),
    cmd("slowlog|len", 2, 0, |ctx, _| {
        encode::integer(ctx.reply, ctx.shared.slowlog.len() as i64);
        Exec::Done
    }),
    cmd("slowlog|reset", 2, 0, |ctx, _| {
        ctx.shared.slowlog.reset();
        encode::simple(ctx.reply, b"OK");
        Exec::Done
    }),
    cmd("slowlog|help", 2, 0, |ctx, _| {
        help(
            ctx,
            &[
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

/// `SLOWLOG GET [count]`: the newest `count` entries (10 by default, all
/// for -1), newest first, each `[id, time, microseconds, [args],
/// addr, name]`.
fn slowlog_get(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let count = match args.to_vec()[..] {
        [_, _] => 10,
        [_, _, n] => match super::parse_i64(n) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                encode::error(ctx.reply, errors::SLOWLOG_COUNT);
                return Exec::Done;
            }
        },
        _ => {
            let command = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            encode::error(ctx.reply, errors::subcommand_syntax(&args[1], &command));
            return Exec::Done;
        }
    };
    let entries = ctx.shared.slowlog.newest(count);
    encode::array(ctx.reply, entries.len());
    for e in entries {
        encode::array(ctx.reply, 6);
        encode::integer(ctx.reply, e.id as i64);
        encode::integer(ctx.reply, e.time as i64);
        encode::integer(ctx.reply, e.duration_us as i64);
        encode::array(ctx.reply, e.args.len());
        for a in &e.args {
            encode::bulk(ctx.reply, a);
        }
        encode::bulk(ctx.reply, e.addr.as_bytes());
        encode::bulk(ctx.reply, &e.name);
    }
    Exec::Done
}
