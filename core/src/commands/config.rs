//! CONFIG GET, SET, RESETSTAT, REWRITE and HELP over the live configuration.

use bytes::Bytes;

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::errors;
use crate::resp::encode;

pub(super) static CONFIG: &[CommandSpec] = &[
    cmd("config|get", -3, 0, config_get),
    cmd("config|set", -4, 0, config_set),
    cmd("config|resetstat", 2, 0, |ctx, _| {
        ctx.shared.latency.reset_histograms();
        encode::simple(ctx.reply, b"OK");
        Exec::Done
    }),
    cmd("config|rewrite", 2, 0, |ctx, _| {
        encode::error(ctx.reply, errors::CONFIG_REWRITE_UNSUPPORTED);
        Exec::Done
    }),
    cmd("config|help", 2, 0, |ctx, _| {
        help(
            ctx,
            &[
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

fn config_get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    let config = ctx.shared.config.load();
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for pattern in &args[2..] {
        for (name, value) in config.get_matching(pattern) {
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, value));
            }
        }
    }
    let proto = ctx.session.proto;
    encode::map(ctx.reply, found.len(), proto);
    for (name, value) in found {
        encode::bulk(ctx.reply, name.as_bytes());
        encode::bulk(ctx.reply, value.as_bytes());
    }
    Exec::Done
}

fn config_set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    if !args.len().is_multiple_of(2) {
        encode::error(ctx.reply, errors::wrong_arity("config|set"));
        return Exec::Done;
    }
    let mut next = (**ctx.shared.config.load()).clone();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_string();
        let value = String::from_utf8_lossy(&pair[1]).to_string();
        if let Err(e) = next.set_live(&name, &value) {
            let msg = match e {
                crate::config::ConfigError::Unknown(_)
                | crate::config::ConfigError::Immutable(_) => errors::unknown_config(&pair[0]),
                e @ crate::config::ConfigError::OpenFilesLimit { .. } => {
                    errors::config_set_failed(&pair[0], &e.to_string())
                }
                other => errors::invalid_config(&pair[0], &pair[1], &other.to_string()),
            };
            encode::error(ctx.reply, &msg);
            return Exec::Done;
        }
    }
    let names: Vec<&str> = args[2..]
        .chunks(2)
        .filter_map(|pair| std::str::from_utf8(&pair[0]).ok())
        .collect();
    if let Err((name, e)) = next.apply_live(&names) {
        encode::error(
            ctx.reply,
            errors::config_set_failed(name.as_bytes(), &e.to_string()),
        );
        return Exec::Done;
    }
    let password_set = args[2..]
        .chunks(2)
        .any(|pair| pair[0].eq_ignore_ascii_case(b"requirepass"));
    let (requirepass, defaults) = (next.requirepass.clone(), next.acl_defaults());
    ctx.shared.config.store(std::sync::Arc::new(next));
    if password_set {
        // Redis 7: `requirepass` is the default user's password.
        ctx.shared
            .acl
            .set_requirepass(requirepass.as_deref(), defaults);
        ctx.shared.ring_all();
    }
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}
