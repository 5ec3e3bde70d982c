//! Introspection and administration: PUBSUB, CLIENT, CONFIG, COMMAND
//! (INFO has its own module, `info`).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{CommandSpec, cmd, docs};
use crate::errors;
use crate::hub::{ConnKey, ConnState, Exec, Hub};
use crate::registry::Namespace;
use crate::resp::encode;
use crate::session::ReplyMode;
use crate::shared::{ClientMeta, lock};

fn help(hub: &mut Hub, lines: &[&str]) -> Exec {
    encode::array(&mut hub.reply, lines.len());
    for l in lines {
        encode::simple(&mut hub.reply, l.as_bytes());
    }
    Exec::Done
}

// ----- PUBSUB ------------------------------------------------------------

pub static PUBSUB: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, 0, |h, _, a| {
        channels(h, a, Namespace::Global)
    }),
    cmd("pubsub|numsub", -2, 0, |h, _, a| {
        numsub(h, a, Namespace::Global)
    }),
    cmd("pubsub|numpat", 2, 0, |h, _, _| {
        let n = h.shared.registry.pattern_count();
        encode::integer(&mut h.reply, n as i64);
        Exec::Done
    }),
    cmd("pubsub|shardchannels", -2, 0, |h, _, a| {
        channels(h, a, Namespace::Shard)
    }),
    cmd("pubsub|shardnumsub", -2, 0, |h, _, a| {
        numsub(h, a, Namespace::Shard)
    }),
    cmd("pubsub|help", 2, 0, |h, _, _| {
        help(
            h,
            &[
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

fn channels(hub: &mut Hub, args: &[Bytes], ns: Namespace) -> Exec {
    if args.len() > 3 {
        encode::error(
            &mut hub.reply,
            &errors::subcommand_syntax(&args[1], "PUBSUB"),
        );
        return Exec::Done;
    }
    let list = hub
        .shared
        .registry
        .channels(ns, args.get(2).map(|p| &p[..]));
    encode::array(&mut hub.reply, list.len());
    for c in list {
        encode::bulk(&mut hub.reply, &c);
    }
    Exec::Done
}

fn numsub(hub: &mut Hub, args: &[Bytes], ns: Namespace) -> Exec {
    let names = &args[2..];
    encode::array(&mut hub.reply, names.len() * 2);
    for c in names {
        let n = hub.shared.registry.numsub(ns, c);
        encode::bulk(&mut hub.reply, c);
        encode::integer(&mut hub.reply, n as i64);
    }
    Exec::Done
}

// ----- CLIENT ------------------------------------------------------------

pub static CLIENT: &[CommandSpec] = &[
    cmd("client|id", 2, 0, |h, k, _| {
        let id = h.conns[k].session.id;
        encode::integer(&mut h.reply, id as i64);
        Exec::Done
    }),
    cmd("client|setname", 3, 0, |h, k, a| {
        if super::connection::valid_name(&a[2]) {
            super::connection::set_name(h, k, &a[2]);
            encode::simple(&mut h.reply, b"OK");
        } else {
            encode::error(&mut h.reply, errors::CLIENT_NAME_SPACES);
        }
        Exec::Done
    }),
    cmd("client|getname", 2, 0, |h, k, _| {
        let proto = h.conns[k].session.proto;
        match h.conns[k].session.name.clone() {
            Some(n) => encode::bulk(&mut h.reply, &n),
            None => encode::null(&mut h.reply, proto),
        }
        Exec::Done
    }),
    cmd("client|setinfo", 4, 0, client_setinfo),
    cmd("client|reply", 3, 0, client_reply),
    cmd("client|list", -2, 0, client_list),
    cmd("client|info", 2, 0, |h, k, _| {
        let meta = h.conns[k].session.meta.clone();
        let mut line = client_line(h, &meta);
        line.push('\n');
        let proto = h.conns[k].session.proto;
        encode::verbatim(&mut h.reply, b"txt", line.as_bytes(), proto);
        Exec::Done
    }),
    cmd("client|kill", -3, 0, client_kill),
    cmd("client|tracking", -3, 0, client_tracking),
    cmd("client|trackinginfo", 2, 0, |h, k, _| {
        // Tracking is never on: Redis's reply for a client without it.
        let proto = h.conns[k].session.proto;
        encode::map(&mut h.reply, 3, proto);
        encode::bulk(&mut h.reply, b"flags");
        encode::set(&mut h.reply, 1, proto);
        encode::bulk(&mut h.reply, b"off");
        encode::bulk(&mut h.reply, b"redirect");
        encode::integer(&mut h.reply, -1);
        encode::bulk(&mut h.reply, b"prefixes");
        encode::array(&mut h.reply, 0);
        Exec::Done
    }),
    cmd("client|getredir", 2, 0, |h, _, _| {
        encode::integer(&mut h.reply, -1);
        Exec::Done
    }),
    cmd("client|caching", 3, 0, |h, _, a| {
        if a[2].eq_ignore_ascii_case(b"yes") || a[2].eq_ignore_ascii_case(b"no") {
            encode::error(&mut h.reply, errors::CACHING_WITHOUT_TRACKING);
        } else {
            encode::error(&mut h.reply, errors::SYNTAX);
        }
        Exec::Done
    }),
    cmd("client|no-evict", 3, 0, on_off),
    cmd("client|no-touch", 3, 0, on_off),
    cmd("client|help", 2, 0, |h, _, _| {
        help(
            h,
            &[
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR <ip:port>",
                "      Kill connections made from the specified address",
                "    * LADDR <ip:port>",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "    * ID <client-id>",
                "      Kill connections by client id.",
                "    * MAXAGE <maxage>",
                "      Kill connections older than the specified age.",
                "LIST [options ...]",
                "    Return information about client connections. Options: TYPE (NORMAL|PUBSUB), ID <client-id> [...].",
                "NO-EVICT (ON|OFF)",
                "NO-TOUCH (ON|OFF)",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix>] [...]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching (ringcast accepts OFF only).",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

fn on_off(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    if args[2].eq_ignore_ascii_case(b"on") || args[2].eq_ignore_ascii_case(b"off") {
        encode::simple(&mut hub.reply, b"OK");
    } else {
        encode::error(&mut hub.reply, errors::SYNTAX);
    }
    Exec::Done
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]. ringcast has no keyspace, so there is nothing to
/// invalidate: OFF (the state every client is in) is accepted, ON is refused
/// with an error rather than promising invalidations that never come.
fn client_tracking(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let needs_value =
            opt.eq_ignore_ascii_case(b"redirect") || opt.eq_ignore_ascii_case(b"prefix");
        let flag = [&b"bcast"[..], b"optin", b"optout", b"noloop"]
            .iter()
            .any(|f| opt.eq_ignore_ascii_case(f));
        if needs_value && i + 1 < args.len() {
            if opt.eq_ignore_ascii_case(b"redirect") && super::parse_i64(&args[i + 1]).is_none() {
                encode::error(&mut hub.reply, errors::NOT_INTEGER);
                return Exec::Done;
            }
            i += 2;
        } else if flag {
            i += 1;
        } else {
            encode::error(&mut hub.reply, errors::SYNTAX);
            return Exec::Done;
        }
    }
    if args[2].eq_ignore_ascii_case(b"off") {
        encode::simple(&mut hub.reply, b"OK");
    } else if args[2].eq_ignore_ascii_case(b"on") {
        encode::error(&mut hub.reply, errors::TRACKING_UNSUPPORTED);
    } else {
        encode::error(&mut hub.reply, errors::SYNTAX);
    }
    Exec::Done
}

fn client_setinfo(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let attr = &args[2];
    let value = &args[3];
    let meta = hub.conns[key].session.meta.clone();
    let slot = if attr.eq_ignore_ascii_case(b"lib-name") {
        &meta.lib_name
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        &meta.lib_ver
    } else {
        let e = format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        );
        encode::error(&mut hub.reply, &e);
        return Exec::Done;
    };
    if !super::connection::valid_name(value) {
        let e = format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr).to_ascii_lowercase()
        );
        encode::error(&mut hub.reply, &e);
        return Exec::Done;
    }
    *lock(slot) = (!value.is_empty()).then(|| value.clone());
    encode::simple(&mut hub.reply, b"OK");
    Exec::Done
}

fn client_reply(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let s = &mut hub.conns[key].session;
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        s.reply_mode = ReplyMode::On;
        hub.skip_reply = false;
        encode::simple(&mut hub.reply, b"OK");
    } else if mode.eq_ignore_ascii_case(b"off") {
        s.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if s.reply_mode != ReplyMode::Off {
            s.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        encode::error(&mut hub.reply, errors::SYNTAX);
    }
    Exec::Done
}

/// One `CLIENT LIST` line (Redis 7.2 fields, plus `io-thread`: the worker).
fn client_line(hub: &Hub, m: &ClientMeta) -> String {
    let age = m.created.elapsed();
    let idle = age.as_millis() as u64 - m.last_active_ms.load(Relaxed).min(age.as_millis() as u64);
    let subs = (
        m.channels.load(Relaxed),
        m.patterns.load(Relaxed),
        m.shard_channels.load(Relaxed),
    );
    let flags = if subs.0 + subs.1 + subs.2 > 0 {
        "P"
    } else {
        "N"
    };
    let name = lock(&m.name).clone().unwrap_or_default();
    let lib_name = lock(&m.lib_name).clone().unwrap_or_default();
    let lib_ver = lock(&m.lib_ver).clone().unwrap_or_default();
    let omem = if m.worker == hub.worker {
        hub.conns
            .iter()
            .find(|(_, c)| c.session.id == m.id)
            .map_or(0, |(_, c)| c.out.memory())
    } else {
        m.output_bytes.load(Relaxed)
    };
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub={} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={omem} tot-mem={omem} events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={} io-thread={}",
        m.id,
        m.addr,
        m.laddr,
        String::from_utf8_lossy(&name),
        age.as_secs(),
        idle / 1000,
        m.db.load(Relaxed),
        subs.0,
        subs.1,
        subs.2,
        m.last_cmd(),
        m.resp.load(Relaxed),
        String::from_utf8_lossy(&lib_name),
        String::from_utf8_lossy(&lib_ver),
        m.worker,
    )
}

/// CLIENT LIST [TYPE normal|pubsub|master|replica] [ID id ...]
fn client_list(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let mut kind: Option<ClientType> = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"type") && i + 1 < args.len() {
            kind = match ClientType::parse(&args[i + 1]) {
                Some(t) => Some(t),
                None => {
                    let e = format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&args[i + 1])
                    );
                    encode::error(&mut hub.reply, &e);
                    return Exec::Done;
                }
            };
            i += 2;
        } else if args[i].eq_ignore_ascii_case(b"id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[i + 1..] {
                match super::parse_i64(a) {
                    Some(n) if n > 0 => list.push(n as u64),
                    _ => {
                        encode::error(&mut hub.reply, "ERR Invalid client ID");
                        return Exec::Done;
                    }
                }
            }
            ids = Some(list);
            i = args.len();
        } else {
            encode::error(&mut hub.reply, errors::SYNTAX);
            return Exec::Done;
        }
    }
    let metas: Vec<_> = lock(&hub.shared.clients).values().cloned().collect();
    let mut text = String::new();
    for m in metas {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&m.id)) {
            continue;
        }
        if kind.is_some_and(|k| !k.matches(&m)) {
            continue;
        }
        text.push_str(&client_line(hub, &m));
        text.push('\n');
    }
    let proto = hub.conns[key].session.proto;
    encode::verbatim(&mut hub.reply, b"txt", text.as_bytes(), proto);
    Exec::Done
}

/// The `TYPE` of `CLIENT LIST` / `CLIENT KILL`. Replicas and masters do not
/// exist here: those types match no client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    Replication,
}

impl ClientType {
    fn parse(name: &[u8]) -> Option<ClientType> {
        match &name.to_ascii_lowercase()[..] {
            b"normal" => Some(ClientType::Normal),
            b"pubsub" => Some(ClientType::Pubsub),
            b"master" | b"replica" | b"slave" => Some(ClientType::Replication),
            _ => None,
        }
    }

    fn matches(self, m: &ClientMeta) -> bool {
        let pubsub =
            m.channels.load(Relaxed) + m.patterns.load(Relaxed) + m.shard_channels.load(Relaxed)
                > 0;
        match self {
            ClientType::Normal => !pubsub,
            ClientType::Pubsub => pubsub,
            ClientType::Replication => false,
        }
    }
}

/// CLIENT KILL ip:port | CLIENT KILL [ID id] [TYPE type] [USER name]
/// [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no] [MAXAGE seconds].
/// Clients on other workers are closed by their own worker.
fn client_kill(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let me = hub.conns[key].session.id;
    let old_style = args.len() == 3;
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    let (mut kind, mut max_age): (Option<ClientType>, u64) = (None, 0);
    if old_style {
        addr = Some(args[2].clone());
        skipme = false;
    } else {
        if !args.len().is_multiple_of(2) {
            encode::error(&mut hub.reply, errors::SYNTAX);
            return Exec::Done;
        }
        for pair in args[2..].chunks(2) {
            let (opt, val) = (&pair[0], &pair[1]);
            if opt.eq_ignore_ascii_case(b"id") {
                match super::parse_i64(val) {
                    Some(n) if n > 0 => id = Some(n as u64),
                    _ => {
                        encode::error(&mut hub.reply, "ERR client-id should be greater than 0");
                        return Exec::Done;
                    }
                }
            } else if opt.eq_ignore_ascii_case(b"addr") {
                addr = Some(val.clone());
            } else if opt.eq_ignore_ascii_case(b"laddr") {
                laddr = Some(val.clone());
            } else if opt.eq_ignore_ascii_case(b"skipme") {
                if val.eq_ignore_ascii_case(b"yes") {
                    skipme = true;
                } else if val.eq_ignore_ascii_case(b"no") {
                    skipme = false;
                } else {
                    encode::error(&mut hub.reply, errors::SYNTAX);
                    return Exec::Done;
                }
            } else if opt.eq_ignore_ascii_case(b"type") {
                match ClientType::parse(val) {
                    Some(t) => kind = Some(t),
                    None => {
                        let e =
                            format!("ERR Unknown client type '{}'", String::from_utf8_lossy(val));
                        encode::error(&mut hub.reply, &e);
                        return Exec::Done;
                    }
                }
            } else if opt.eq_ignore_ascii_case(b"user") {
                // `default` is the only user; every client is logged in as it.
                if &val[..] != b"default" {
                    let e = format!("ERR No such user '{}'", String::from_utf8_lossy(val));
                    encode::error(&mut hub.reply, &e);
                    return Exec::Done;
                }
            } else if opt.eq_ignore_ascii_case(b"maxage") {
                match super::parse_i64(val) {
                    Some(n) if n >= 0 => max_age = n as u64,
                    _ => {
                        encode::error(
                            &mut hub.reply,
                            "ERR maxage is not an integer or out of range",
                        );
                        return Exec::Done;
                    }
                }
            } else {
                encode::error(&mut hub.reply, errors::SYNTAX);
                return Exec::Done;
            }
        }
    }
    let victims: Vec<u64> = lock(&hub.shared.clients)
        .values()
        .filter(|m| id.is_none_or(|i| m.id == i))
        .filter(|m| addr.as_ref().is_none_or(|a| m.addr.as_bytes() == &a[..]))
        .filter(|m| laddr.as_ref().is_none_or(|a| m.laddr.as_bytes() == &a[..]))
        .filter(|m| kind.is_none_or(|k| k.matches(m)))
        .filter(|m| max_age == 0 || m.created.elapsed().as_secs() >= max_age)
        .filter(|m| !(skipme && m.id == me))
        .map(|m| m.id)
        .collect();
    for &v in &victims {
        if v == me {
            // Killing oneself: Redis still sends the reply, then closes.
            hub.conns[key].state = ConnState::CloseAfterReply;
        } else {
            hub.shared.request_kill(v);
        }
    }
    if old_style {
        if victims.is_empty() {
            encode::error(&mut hub.reply, errors::NO_SUCH_CLIENT);
        } else {
            encode::simple(&mut hub.reply, b"OK");
        }
    } else {
        encode::integer(&mut hub.reply, victims.len() as i64);
    }
    Exec::Done
}

// ----- CONFIG ------------------------------------------------------------

pub static CONFIG: &[CommandSpec] = &[
    cmd("config|get", -3, 0, config_get),
    cmd("config|set", -4, 0, config_set),
    cmd("config|resetstat", 2, 0, |h, _, _| {
        encode::simple(&mut h.reply, b"OK");
        Exec::Done
    }),
    cmd("config|rewrite", 2, 0, |h, _, _| {
        encode::error(
            &mut h.reply,
            "ERR Rewriting config file is not supported by ringcast",
        );
        Exec::Done
    }),
    cmd("config|help", 2, 0, |h, _, _| {
        help(
            h,
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

fn config_get(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let config = hub.shared.config.load();
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for pattern in &args[2..] {
        for (name, value) in config.get_matching(pattern) {
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, value));
            }
        }
    }
    let proto = hub.conns[key].session.proto;
    encode::map(&mut hub.reply, found.len(), proto);
    for (name, value) in found {
        encode::bulk(&mut hub.reply, name.as_bytes());
        encode::bulk(&mut hub.reply, value.as_bytes());
    }
    Exec::Done
}

fn config_set(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    if !args.len().is_multiple_of(2) {
        encode::error(&mut hub.reply, &errors::wrong_arity("config|set"));
        return Exec::Done;
    }
    let mut next = (**hub.shared.config.load()).clone();
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
            encode::error(&mut hub.reply, &msg);
            return Exec::Done;
        }
    }
    hub.shared.config.store(std::sync::Arc::new(next));
    encode::simple(&mut hub.reply, b"OK");
    Exec::Done
}

// ----- COMMAND -----------------------------------------------------------
// Replies are built from `super::docs` (Redis 7.2's metadata for each command).

pub static COMMAND: &[CommandSpec] = &[
    cmd("command|count", 2, 0, |h, _, _| {
        encode::integer(&mut h.reply, super::COMMANDS.len() as i64);
        Exec::Done
    }),
    cmd("command|info", -2, 0, |h, k, a| {
        let proto = h.conns[k].session.proto;
        if a.len() == 2 {
            return command(h, k, a);
        }
        encode::array(&mut h.reply, a.len() - 2);
        for n in &a[2..] {
            match docs::resolve(n) {
                Some(c) => docs::write_info(&mut h.reply, c, proto),
                None => encode::null(&mut h.reply, proto),
            }
        }
        Exec::Done
    }),
    cmd("command|docs", -2, 0, |h, k, a| {
        let proto = h.conns[k].session.proto;
        let specs: Vec<&CommandSpec> = if a.len() == 2 {
            super::COMMANDS.iter().collect()
        } else {
            a[2..].iter().filter_map(|n| docs::resolve(n)).collect()
        };
        encode::map(&mut h.reply, specs.len(), proto);
        for c in specs {
            encode::bulk(&mut h.reply, c.name.as_bytes());
            docs::write_docs(&mut h.reply, c, proto);
        }
        Exec::Done
    }),
    cmd("command|list", -2, 0, command_list),
    cmd("command|getkeys", -3, 0, command_getkeys),
    cmd("command|getkeysandflags", -3, 0, command_getkeys),
    cmd("command|help", 2, 0, |h, _, _| {
        help(
            h,
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
pub fn command(hub: &mut Hub, key: ConnKey, _args: &[Bytes]) -> Exec {
    let proto = hub.conns[key].session.proto;
    encode::array(&mut hub.reply, super::COMMANDS.len());
    for c in super::COMMANDS {
        docs::write_info(&mut hub.reply, c, proto);
    }
    Exec::Done
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]:
/// full names, subcommands included.
fn command_list(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match &args[2..] {
        [] => Box::new(|_| true),
        [by, kind, arg] if by.eq_ignore_ascii_case(b"filterby") => {
            let arg = arg.clone();
            if kind.eq_ignore_ascii_case(b"module") {
                Box::new(|_| false)
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                Box::new(move |c| docs::in_acl_category(c, &arg))
            } else if kind.eq_ignore_ascii_case(b"pattern") {
                // Redis matches case-insensitively; names are lowercase.
                let pattern = arg.to_ascii_lowercase();
                Box::new(move |c| crate::glob::matches(&pattern, c.name.as_bytes()))
            } else {
                encode::error(&mut hub.reply, errors::SYNTAX);
                return Exec::Done;
            }
        }
        _ => {
            encode::error(&mut hub.reply, errors::SYNTAX);
            return Exec::Done;
        }
    };
    let names: Vec<&str> = super::COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands))
        .filter(|c| keep(c))
        .map(|c| c.name)
        .collect();
    encode::array(&mut hub.reply, names.len());
    for n in names {
        encode::bulk(&mut hub.reply, n.as_bytes());
    }
    Exec::Done
}

/// COMMAND GETKEYS|GETKEYSANDFLAGS: no ringcast command takes keys (the shard
/// channels of SPUBLISH and co. are `not_key` key specs), so Redis's errors.
fn command_getkeys(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    let e = match docs::resolve_call(&args[2..]) {
        Some(_) => errors::GETKEYS_NO_KEYS,
        None => errors::GETKEYS_INVALID_COMMAND,
    };
    encode::error(&mut hub.reply, e);
    Exec::Done
}
