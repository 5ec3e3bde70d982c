//! CONFIG GET, SET, RESETSTAT, REWRITE and HELP over the live configuration,
//! with Redis 7.2's replies (its `config.c`).

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::config::{Config, ConfigError};
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode;

pub(super) static CONFIG: &[CommandSpec] = &[
    cmd("config|get", -3, 0, config_get),
    cmd("config|set", -4, 0, config_set),
    cmd("config|resetstat", 2, 0, |ctx, _| {
        ctx.shared.reset_stats();
        encode::simple(ctx.reply, b"OK");
        Exec::Done
    }),
    cmd("config|rewrite", 2, 0, config_rewrite),
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
                "REWRITE",
                "    Rewrite the configuration file.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

/// `CONFIG GET <pattern> [<pattern> ...]`: a name without glob characters is
/// looked up as typed (an alias or a hidden parameter too) and answered
/// under that spelling; a pattern lists every parameter it matches. Each
/// name once (compared in any case).
fn config_get(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let config = ctx.shared.config.load();
    let mut found: Vec<(Vec<u8>, String)> = Vec::new();
    let seen = |found: &[(Vec<u8>, String)], name: &[u8]| {
        found.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    for pattern in args.slice(2..) {
        if !pattern.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
            let value = std::str::from_utf8(pattern)
                .ok()
                .and_then(|name| config.get(name));
            if let Some(value) = value
                && !seen(&found, pattern)
            {
                found.push((pattern.to_vec(), value));
            }
            continue;
        }
        for (name, value) in config.get_matching(pattern) {
            if !seen(&found, name.as_bytes()) {
                found.push((name.as_bytes().to_vec(), value));
            }
        }
    }
    let proto = ctx.session.proto;
    encode::map(ctx.reply, found.len(), proto);
    for (name, value) in found {
        encode::bulk(ctx.reply, &name);
        encode::bulk(ctx.reply, value.as_bytes());
    }
    Exec::Done
}

/// `CONFIG SET <name> <value> [<name> <value> ...]`, all or nothing, in
/// Redis's three steps: every name is checked (unknown, immutable,
/// protected, given twice: the first problem is the reply), then every
/// value is set on a copy of the configuration, then what must be applied
/// is (TLS files, `dir`, `maxclients` against the open-file limit). Only
/// when all succeed does the copy become the live configuration.
fn config_set(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if !args.len().is_multiple_of(2) {
        encode::error(ctx.reply, errors::SYNTAX);
        return Exec::Done;
    }
    let current = ctx.shared.config.load();
    let pairs: Vec<(&[u8], &[u8])> = args
        .slice(2..)
        .to_vec()
        .chunks(2)
        .map(|p| (p[0], p[1]))
        .collect();
    let names = match check_names(&current, &pairs, ctx.session.peer_loopback) {
        Ok(names) => names,
        Err(e) => {
            encode::error(ctx.reply, e);
            return Exec::Done;
        }
    };
    let mut next = (**current).clone();
    for ((_, value), name) in pairs.iter().zip(&names) {
        let value = String::from_utf8_lossy(value);
        if let Err(e) = next.set_live(name, &value) {
            encode::error(
                ctx.reply,
                errors::config_set_failed(name.as_bytes(), &why(&e)),
            );
            return Exec::Done;
        }
    }
    if let Err((name, e)) = next.apply_live(&names) {
        encode::error(
            ctx.reply,
            errors::config_set_failed(name.as_bytes(), &why(&e)),
        );
        return Exec::Done;
    }
    let password_set = names.contains(&"requirepass");
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

/// Redis's first pass over the names: each one's name as the parameter
/// was found by, or the error for the first name that cannot be set.
fn check_names(
    config: &Config,
    pairs: &[(&[u8], &[u8])],
    local: bool,
) -> Result<Vec<&'static str>, Vec<u8>> {
    let mut names: Vec<&'static str> = Vec::with_capacity(pairs.len());
    for (typed, _) in pairs {
        let name = std::str::from_utf8(typed).unwrap_or_default();
        let found = match config.settable(name, local) {
            Ok(found) => found,
            Err(ConfigError::Immutable(_)) => {
                return Err(errors::config_set_failed(
                    typed,
                    "can't set immutable config",
                ));
            }
            Err(ConfigError::Protected(_)) => {
                return Err(errors::config_set_failed(
                    typed,
                    "can't set protected config",
                ));
            }
            Err(_) => return Err(errors::unknown_config(typed)),
        };
        // As Redis: a parameter and its alias are two names, not a duplicate.
        if names.contains(&found) {
            return Err(errors::config_set_failed(typed, "duplicate parameter"));
        }
        names.push(found);
    }
    Ok(names)
}

/// The part of a `CONFIG SET` error after the parameter's name.
fn why(e: &ConfigError) -> String {
    match e {
        ConfigError::Invalid { why, .. } => why.clone(),
        ConfigError::Immutable(_) => "can't set immutable config".into(),
        ConfigError::Protected(_) => "can't set protected config".into(),
        other => other.to_string(),
    }
}

/// CONFIG REWRITE: the running configuration written back into the file it
/// was loaded from (`Config::rewrite_file`), replaced as one step.
fn config_rewrite(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let path = &ctx.shared.info.config_file;
    if path.is_empty() {
        encode::error(ctx.reply, errors::CONFIG_NO_FILE);
        return Exec::Done;
    }
    let config = ctx.shared.config.load();
    let old = match config.acl_files.read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        // As Redis: a file that is gone is written anew.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return rewrite_failed(ctx, &e),
    };
    let users: Vec<String> = ctx
        .shared
        .acl
        .users()
        .iter()
        .map(|u| {
            let line = [&u.name[..], b" ", &u.describe()].concat();
            String::from_utf8_lossy(&line).into_owned()
        })
        .collect();
    let content = config.rewrite_file(&old, &users);
    match config.acl_files.write(path, content.as_bytes()) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            encode::simple(ctx.reply, b"OK");
        }
        Err(e) => return rewrite_failed(ctx, &e),
    }
    Exec::Done
}

fn rewrite_failed(ctx: &mut Ctx<'_>, e: &std::io::Error) -> Exec {
    let why = errors::strerror(e);
    tracing::warn!("CONFIG REWRITE failed: {why}");
    encode::error(ctx.reply, format!("ERR Rewriting config file: {why}"));
    Exec::Done
}
