//! COMMAND and its subcommands: Redis 7.2's metadata for every command
//! ringcast has. Replies are built from `super::docs`.

use super::{CommandSpec, Ctx, Exec, cmd, docs, help};
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode;
// Replies are built from `super::docs` (Redis 7.2's metadata for each command).

pub(super) static COMMAND: &[CommandSpec] = &[
    cmd("command|count", 2, 0, |ctx, _| {
        encode::integer(ctx.reply, super::COMMANDS.len() as i64);
        Exec::Done
    }),
    cmd("command|info", -2, 0, |ctx, a| {
        let proto = ctx.session.proto;
        if a.len() == 2 {
            return command(ctx, a);
        }
        encode::array(ctx.reply, a.len() - 2);
        for n in a.slice(2..) {
            match docs::resolve(n) {
                Some(c) => docs::write_info(ctx.reply, c, proto),
                None => encode::null(ctx.reply, proto),
            }
        }
        Exec::Done
    }),
    cmd("command|docs", -2, 0, |ctx, a| {
        let proto = ctx.session.proto;
        let specs: Vec<&CommandSpec> = if a.len() == 2 {
            super::COMMANDS.iter().collect()
        } else {
            a.slice(2..).iter().filter_map(docs::resolve).collect()
        };
        encode::map(ctx.reply, specs.len(), proto);
        for c in specs {
            encode::bulk(ctx.reply, c.name.as_bytes());
            docs::write_docs(ctx.reply, c, proto);
        }
        Exec::Done
    }),
    cmd("command|list", -2, 0, command_list),
    cmd("command|getkeys", -3, 0, command_getkeys),
    cmd("command|getkeysandflags", -3, 0, command_getkeys),
    cmd("command|help", 2, 0, |ctx, _| {
        help(
            ctx,
            &[
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

/// COMMAND with no subcommand: details of every command.
pub(super) fn command(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let proto = ctx.session.proto;
    encode::array(ctx.reply, super::COMMANDS.len());
    for c in super::COMMANDS {
        docs::write_info(ctx.reply, c, proto);
    }
    Exec::Done
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]:
/// full names, subcommands included.
fn command_list(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match args.slice(2..).to_vec()[..] {
        [] => Box::new(|_| true),
        [by, kind, arg] if by.eq_ignore_ascii_case(b"filterby") => {
            let arg = arg.to_vec();
            if kind.eq_ignore_ascii_case(b"module") {
                Box::new(|_| false)
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                Box::new(move |c| docs::in_acl_category(c, &arg))
            } else if kind.eq_ignore_ascii_case(b"pattern") {
                // Redis matches case-insensitively; names are lowercase.
                let pattern = arg.to_ascii_lowercase();
                Box::new(move |c| crate::glob::matches(&pattern, c.name.as_bytes()))
            } else {
                encode::error(ctx.reply, errors::SYNTAX);
                return Exec::Done;
            }
        }
        _ => {
            encode::error(ctx.reply, errors::SYNTAX);
            return Exec::Done;
        }
    };
    let names: Vec<&str> = super::COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands))
        .filter(|c| keep(c))
        .map(|c| c.name)
        .collect();
    encode::array(ctx.reply, names.len());
    for n in names {
        encode::bulk(ctx.reply, n.as_bytes());
    }
    Exec::Done
}

/// COMMAND GETKEYS|GETKEYSANDFLAGS: no ringcast command takes keys (the shard
/// channels of SPUBLISH and co. are `not_key` key specs), so Redis's errors.
fn command_getkeys(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let e = match docs::resolve_call(args.slice(2..)) {
        Some(_) => errors::GETKEYS_NO_KEYS,
        None => errors::GETKEYS_INVALID_COMMAND,
    };
    encode::error(ctx.reply, e);
    Exec::Done
}
