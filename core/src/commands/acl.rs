//! ACL and its subcommands: users (SETUSER, GETUSER, DELUSER, LIST, USERS,
//! WHOAMI), the ACL file (LOAD, SAVE), categories (CAT), the log (LOG),
//! GENPASS and DRYRUN; and the check dispatch runs before every command.
//!
//! A change publishes a new table of users and rings every worker, which
//! then re-reads it for all its connections (`Hub::acl_sweep`): clients of
//! a deleted user, and subscribers whose channels were revoked, are closed.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use super::{CommandSpec, Ctx, Exec, FLAT, cmd, help};
use crate::acl::{self, ChannelArgs, CommandId, Denied, LogEntry, LogReason, User, table};
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode::{self, Proto};

pub(super) static ACL: &[CommandSpec] = &[
    cmd("acl|cat", -2, 0, cat),
    cmd("acl|deluser", -3, 0, deluser),
    cmd("acl|dryrun", -4, 0, dryrun),
    cmd("acl|genpass", -2, 0, genpass),
    cmd("acl|getuser", 3, 0, getuser),
    cmd("acl|list", 2, 0, |ctx, _| list(ctx, false)),
    cmd("acl|load", 2, 0, load),
    cmd("acl|log", -2, 0, log),
    cmd("acl|save", 2, 0, save),
    cmd("acl|setuser", -3, 0, setuser),
    cmd("acl|users", 2, 0, |ctx, _| list(ctx, true)),
    cmd("acl|whoami", 2, 0, |ctx, _| {
        let name = ctx.session.user.name.clone();
        encode::bulk(ctx.reply, &name);
        Exec::Done
    }),
    cmd("acl|help", 2, 0, |ctx, _| {
        help(
            ctx,
            &[
                "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CAT [<category>]",
                "    List all commands that belong to <category>, or all command categories",
                "    when no category is specified.",
                "DELUSER <username> [<username> ...]",
                "    Delete a list of users.",
                "DRYRUN <username> <command> [<arg> ...]",
                "    Returns whether the user can execute the given command without executing the command.",
                "GETUSER <username>",
                "    Get the user's details.",
                "GENPASS [<bits>]",
                "    Generate a secure 256-bit user password. The optional `bits` argument can",
                "    be used to specify a different size.",
                "LIST",
                "    Show users details in config file format.",
                "LOAD",
                "    Reload users from the ACL file.",
                "LOG [<count> | RESET]",
                "    Show the ACL log entries.",
                "SAVE",
                "    Save the current config to the ACL file.",
                "SETUSER <username> <attribute> [<attribute> ...]",
                "    Create or modify a user with the specified attributes.",
                "USERS",
                "    List all the registered usernames.",
                "WHOAMI",
                "    Return the current connection username.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

/// Each dispatch-table entry (by its index in `FLAT`) as ACL rules know it:
/// its command id and which of its arguments are channels.
static ACL_INFO: LazyLock<Vec<Option<(CommandId, ChannelArgs)>>> = LazyLock::new(|| {
    FLAT.iter()
        .map(|c| table::lookup(c.name.as_bytes()).map(|id| (id, ChannelArgs::of(c.name))))
        .collect()
});

/// Dispatch's ACL check (after authentication, as in Redis's
/// `processCommand`): Err with the NOPERM error if the user may not run the
/// command with these channels, the denial logged.
pub(super) fn allowed(
    ctx: &mut Ctx<'_>,
    id: u16,
    spec: &CommandSpec,
    args: ArgList<'_>,
) -> Result<(), Vec<u8>> {
    let Some(denied) = denial(ctx, id, args) else {
        return Ok(());
    };
    let name = ctx.session.user.name.clone();
    log_denial(ctx, denied, spec, args);
    Err(match denied {
        Denied::Command => errors::noperm_command(&name, spec.name),
        Denied::Key(_) => errors::NOPERM_KEY.into(),
        Denied::Channel(_) => errors::NOPERM_CHANNEL.into(),
    })
}

/// EXEC's check of a queued command, against the rules as they are now:
/// false, with Redis's error in the reply and the denial logged, if they
/// no longer allow it.
pub(super) fn allowed_at_exec(
    ctx: &mut Ctx<'_>,
    id: u16,
    spec: &CommandSpec,
    args: ArgList<'_>,
) -> bool {
    let Some(denied) = denial(ctx, id, args) else {
        return true;
    };
    log_denial(ctx, denied, spec, args);
    encode::error(ctx.reply, errors::noperm_at_exec(denied));
    false
}

/// Why the user may not run the command with these arguments, if it may not.
fn denial(ctx: &Ctx<'_>, id: u16, args: ArgList<'_>) -> Option<Denied> {
    let &Some((acl_id, channels)) = ACL_INFO.get(usize::from(id))? else {
        return None;
    };
    ctx.session.user.check(acl_id, args, channels).err()
}

fn log_denial(ctx: &mut Ctx<'_>, denied: Denied, spec: &CommandSpec, args: ArgList<'_>) {
    let name = ctx.session.user.name.clone();
    match denied {
        Denied::Command => {
            let object = Bytes::from_static(spec.name.as_bytes());
            record(ctx, LogReason::Command, object, name);
        }
        Denied::Key(i) => record(ctx, LogReason::Key, Bytes::copy_from_slice(&args[i]), name),
        Denied::Channel(i) => record(
            ctx,
            LogReason::Channel,
            Bytes::copy_from_slice(&args[i]),
            name,
        ),
    }
}

/// Count and log a denial, with the client's `CLIENT LIST` line; its
/// context is `multi` while a transaction is open (queueing or EXEC).
pub(super) fn record(ctx: &Ctx<'_>, reason: LogReason, object: Bytes, username: Bytes) {
    let info = super::client::client_line(&ctx.session.meta, ctx.pushes.memory());
    // No scripts or modules here: never `lua` or `module`.
    let context = if ctx.session.transaction.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    let entry = LogEntry::new(reason, context, object, username, info, unix_ms());
    let max = ctx.shared.config.load().acllog_max_len;
    ctx.shared.acl.record(entry, max);
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// After a change: wake every worker to re-read the users, and close the
/// caller after its reply if it lost its user or its subscriptions.
fn changed(ctx: &mut Ctx<'_>) -> Exec {
    ctx.shared.ring_all();
    let users = ctx.shared.acl.users();
    if ctx.session.refresh_acl(&users) {
        Exec::Done
    } else {
        Exec::CloseAfterReply
    }
}

fn setuser(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let name = &args[2];
    if acl::bad_name(name) {
        encode::error(ctx.reply, errors::ACL_USERNAME_SPACES);
        return Exec::Done;
    }
    let ops = match acl::merge_selector_args(args.slice(3..).iter()) {
        Ok(ops) => ops,
        Err(at) => {
            encode::error(ctx.reply, errors::acl_unmatched_parenthesis(&args[3 + at]));
            return Exec::Done;
        }
    };
    let defaults = ctx.shared.config.load().acl_defaults();
    let acl = &ctx.shared.acl;
    let done = acl.edit(|users| {
        let base = match users.get(name) {
            Some(u) => (**u).clone(),
            None => User::new(acl.next_id(), Bytes::copy_from_slice(name), defaults),
        };
        let next = acl::apply_all(&base, &ops, defaults)
            .map_err(|(op, e)| errors::acl_setuser_modifier(&op, &e.to_string()))?;
        users.insert(next);
        Ok::<(), Vec<u8>>(())
    });
    match done {
        Ok(()) => {
            encode::simple(ctx.reply, b"OK");
            changed(ctx)
        }
        Err(e) => {
            encode::error(ctx.reply, e);
            Exec::Done
        }
    }
}

fn deluser(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let names = args.slice(2..);
    if names.iter().any(|n| n == b"default") {
        encode::error(ctx.reply, errors::ACL_DELETE_DEFAULT);
        return Exec::Done;
    }
    let deleted = ctx
        .shared
        .acl
        .edit(|users| Ok::<usize, ()>(names.iter().filter(|n| users.remove(n).is_some()).count()));
    let deleted = deleted.unwrap_or(0);
    encode::integer(ctx.reply, deleted as i64);
    if deleted > 0 {
        changed(ctx)
    } else {
        Exec::Done
    }
}

fn getuser(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let proto = ctx.session.proto;
    let users = ctx.shared.acl.users();
    let Some(u) = users.get(&args[2]) else {
        encode::null(ctx.reply, proto);
        return Exec::Done;
    };
    let out = &mut *ctx.reply;
    encode::map(out, 6, proto);
    encode::bulk(out, b"flags");
    let flags = u.flags();
    encode::set(out, flags.len(), proto);
    for f in flags {
        encode::bulk(out, f.as_bytes());
    }
    encode::bulk(out, b"passwords");
    encode::array(out, u.passwords().count());
    for p in u.passwords() {
        encode::bulk(out, p);
    }
    describe_selector(out, u.root());
    encode::bulk(out, b"selectors");
    encode::array(out, u.selectors().len());
    for s in u.selectors() {
        encode::map(out, 3, proto);
        describe_selector(out, s);
    }
    Exec::Done
}

/// The `commands`, `keys` and `channels` fields of a selector.
fn describe_selector(out: &mut BytesMut, s: &acl::Selector) {
    encode::bulk(out, b"commands");
    encode::bulk(out, s.describe_commands().as_bytes());
    encode::bulk(out, b"keys");
    encode::bulk(out, &s.keys_field());
    encode::bulk(out, b"channels");
    encode::bulk(out, &s.channels_field());
}

/// ACL LIST (users as rules) or ACL USERS (names only).
fn list(ctx: &mut Ctx<'_>, names_only: bool) -> Exec {
    let users = ctx.shared.acl.users();
    encode::array(ctx.reply, users.len());
    for u in users.iter() {
        if names_only {
            encode::bulk(ctx.reply, &u.name);
        } else {
            let line = [&b"user "[..], &u.name, b" ", &u.describe()].concat();
            encode::bulk(ctx.reply, &line);
        }
    }
    Exec::Done
}

fn load(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let config = ctx.shared.config.load();
    if config.aclfile.is_empty() {
        encode::error(ctx.reply, errors::ACL_NO_FILE);
        return Exec::Done;
    }
    let text = match config.acl_files.read(&config.aclfile) {
        Ok(t) => t,
        Err(e) => {
            let e = format!("ERR {}", errors::acl_file_open(&config.aclfile, &e));
            encode::error(ctx.reply, e);
            return Exec::Done;
        }
    };
    let defaults = config.acl_defaults();
    let acl = &ctx.shared.acl;
    let loaded = acl.edit(|users| {
        *users = acl::parse_file(&text, &config.aclfile, users, defaults, || acl.next_id())?;
        Ok::<(), String>(())
    });
    match loaded {
        Ok(()) => {
            encode::simple(ctx.reply, b"OK");
            changed(ctx)
        }
        Err(e) => {
            encode::error(ctx.reply, format!("ERR {e}"));
            Exec::Done
        }
    }
}

fn save(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let config = ctx.shared.config.load();
    if config.aclfile.is_empty() {
        encode::error(ctx.reply, errors::ACL_NO_FILE);
        return Exec::Done;
    }
    let text = acl::render_file(&ctx.shared.acl.users());
    match config.acl_files.write(&config.aclfile, &text) {
        Ok(()) => encode::simple(ctx.reply, b"OK"),
        Err(e) => {
            tracing::warn!("Writing ACL file {} for ACL SAVE: {e}", config.aclfile);
            encode::error(ctx.reply, errors::ACL_SAVE_FAILED);
        }
    }
    Exec::Done
}

fn cat(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    match args.len() {
        2 => {
            encode::array(ctx.reply, table::CATEGORIES.len());
            for c in table::CATEGORIES {
                encode::bulk(ctx.reply, c.as_bytes());
            }
        }
        3 => {
            let Some(mask) = table::category(&args[2]) else {
                encode::error(ctx.reply, errors::acl_unknown_category(&args[2]));
                return Exec::Done;
            };
            let names: Vec<&str> = FLAT
                .iter()
                .zip(ACL_INFO.iter())
                .filter(|(_, info)| info.is_some_and(|(id, _)| table::categories(id) & mask != 0))
                .map(|(c, _)| c.name)
                .collect();
            encode::array(ctx.reply, names.len());
            for n in names {
                encode::bulk(ctx.reply, n.as_bytes());
            }
        }
        _ => encode::error(ctx.reply, errors::subcommand_syntax(&args[1], "ACL")),
    }
    Exec::Done
}

fn genpass(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if args.len() > 3 {
        encode::error(ctx.reply, errors::subcommand_syntax(&args[1], "ACL"));
        return Exec::Done;
    }
    let bits = match args.get(2).map(super::parse_i64) {
        None => 256,
        Some(Some(n)) => n,
        Some(None) => {
            encode::error(ctx.reply, errors::NOT_INTEGER);
            return Exec::Done;
        }
    };
    if !(1..=4096).contains(&bits) {
        encode::error(ctx.reply, errors::ACL_GENPASS_BITS);
        return Exec::Done;
    }
    let chars = (bits as usize).div_ceil(4);
    let mut random = vec![0u8; chars.div_ceil(2)];
    if getrandom::getrandom(&mut random).is_err() {
        encode::error(ctx.reply, "ERR no source of randomness");
        return Exec::Done;
    }
    let mut hex: Vec<u8> = random
        .iter()
        .flat_map(|b| [b >> 4, b & 15])
        .map(|n| b"0123456789abcdef"[usize::from(n)])
        .collect();
    hex.truncate(chars);
    encode::bulk(ctx.reply, &hex);
    Exec::Done
}

fn log(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if args.len() > 3 {
        encode::error(ctx.reply, errors::subcommand_syntax(&args[1], "ACL"));
        return Exec::Done;
    }
    let mut count = 10usize;
    if let Some(arg) = args.get(2) {
        if arg.eq_ignore_ascii_case(b"reset") {
            ctx.shared.acl.reset_log();
            encode::simple(ctx.reply, b"OK");
            return Exec::Done;
        }
        match super::parse_i64(arg) {
            Some(n) => count = n.max(0) as usize,
            None => {
                encode::error(ctx.reply, errors::NOT_INTEGER);
                return Exec::Done;
            }
        }
    }
    let entries = ctx.shared.acl.log_entries(count);
    let proto = ctx.session.proto;
    let now = unix_ms();
    let out = &mut *ctx.reply;
    encode::array(out, entries.len());
    for e in entries {
        encode::map(out, 10, proto);
        encode::bulk(out, b"count");
        encode::integer(out, e.count as i64);
        encode::bulk(out, b"reason");
        encode::bulk(out, e.reason.name().as_bytes());
        encode::bulk(out, b"context");
        encode::bulk(out, e.context.as_bytes());
        encode::bulk(out, b"object");
        encode::bulk(out, &e.object);
        encode::bulk(out, b"username");
        encode::bulk(out, &e.username);
        encode::bulk(out, b"age-seconds");
        double(out, now.saturating_sub(e.updated_ms) as f64 / 1000.0, proto);
        encode::bulk(out, b"client-info");
        encode::bulk(out, e.client_info.as_bytes());
        encode::bulk(out, b"entry-id");
        encode::integer(out, e.entry_id as i64);
        encode::bulk(out, b"timestamp-created");
        encode::integer(out, e.created_ms as i64);
        encode::bulk(out, b"timestamp-last-updated");
        encode::integer(out, e.updated_ms as i64);
    }
    Exec::Done
}

/// A double as Redis 7.2 replies one: shortest round-trip digits, a bulk
/// string in RESP2, a `,` double in RESP3.
fn double(out: &mut BytesMut, d: f64, proto: Proto) {
    let text = format!("{d}");
    match proto {
        Proto::Resp2 => encode::bulk(out, text.as_bytes()),
        Proto::Resp3 => {
            out.extend_from_slice(b",");
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// ACL DRYRUN user command [arg...]: whether `user` may run it, without running it.
fn dryrun(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let users = ctx.shared.acl.users();
    let Some(user) = users.get(&args[2]) else {
        encode::error(ctx.reply, errors::acl_user_not_found(&args[2]));
        return Exec::Done;
    };
    let call = args.slice(3..);
    let Some((mut id, mut spec)) = ctx.shared.command_names.find_top(&call[0]) else {
        encode::error(ctx.reply, errors::acl_command_not_found(&call[0]));
        return Exec::Done;
    };
    if !spec.subcommands.is_empty() && call.len() >= 2 {
        match super::find_sub(id, spec, &call[1]) {
            Some(found) => (id, spec) = found,
            None => {
                encode::error(ctx.reply, errors::acl_command_not_found(&call[0]));
                return Exec::Done;
            }
        }
    }
    if !super::arity_ok(spec.arity, call.len()) {
        encode::error(ctx.reply, errors::wrong_arity(spec.name));
        return Exec::Done;
    }
    let Some(&Some((acl_id, channels))) = ACL_INFO.get(usize::from(id)) else {
        encode::simple(ctx.reply, b"OK");
        return Exec::Done;
    };
    match user.check(acl_id, call, channels) {
        Ok(()) => encode::simple(ctx.reply, b"OK"),
        Err(Denied::Command) => {
            encode::bulk(
                ctx.reply,
                &errors::noperm_command_verbose(&user.name, spec.name),
            );
        }
        Err(Denied::Key(i)) => {
            encode::bulk(ctx.reply, &errors::noperm_key_verbose(&user.name, &call[i]));
        }
        Err(Denied::Channel(i)) => {
            encode::bulk(
                ctx.reply,
                &errors::noperm_channel_verbose(&user.name, &call[i]),
            );
        }
    }
    Exec::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_command_is_known_to_acl_rules() {
        for (c, info) in FLAT.iter().zip(ACL_INFO.iter()) {
            assert!(info.is_some(), "{} is not a Redis 7.2 command", c.name);
        }
    }
}
