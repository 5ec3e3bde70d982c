//! CLIENT: the connection's own settings (ID, SETNAME, GETNAME, SETINFO,
//! REPLY), the client directory (LIST, INFO, KILL) and tracking answered as
//! a server without keys answers it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::client::{ClientMeta, flags};
use crate::errors;
use crate::lock;
use crate::resp::args::ArgList;
use crate::resp::encode;
use crate::session::ReplyMode;

pub(super) static CLIENT: &[CommandSpec] = &[
    cmd("client|id", 2, 0, |ctx, _| {
        let id = ctx.session.id;
        encode::integer(ctx.reply, id as i64);
        Exec::Done
    }),
    cmd("client|setname", 3, 0, |ctx, a| {
        if super::connection::valid_name(&a[2]) {
            super::connection::set_name(ctx, &a[2]);
            encode::simple(ctx.reply, b"OK");
        } else {
            encode::error(ctx.reply, errors::CLIENT_NAME_SPACES);
        }
        Exec::Done
    }),
    cmd("client|getname", 2, 0, |ctx, _| {
        let proto = ctx.session.proto;
        match ctx.session.name.clone() {
            Some(n) => encode::bulk(ctx.reply, &n),
            None => encode::null(ctx.reply, proto),
        }
        Exec::Done
    }),
    cmd("client|setinfo", 4, 0, client_setinfo),
    cmd("client|reply", 3, 0, client_reply),
    cmd("client|list", -2, 0, client_list),
    cmd("client|info", 2, 0, |ctx, _| {
        // Its own output is known exactly; other clients' comes from their worker's cron.
        let omem = ctx.pushes.memory();
        let mut line = client_line(&ctx.session.meta, omem);
        line.push('\n');
        let proto = ctx.session.proto;
        encode::verbatim(ctx.reply, b"txt", line.as_bytes(), proto);
        Exec::Done
    }),
    cmd("client|kill", -3, 0, client_kill),
    cmd("client|tracking", -3, 0, client_tracking),
    cmd("client|trackinginfo", 2, 0, |ctx, _| {
        // Tracking is never on: Redis's reply for a client without it.
        let proto = ctx.session.proto;
        encode::map(ctx.reply, 3, proto);
        encode::bulk(ctx.reply, b"flags");
        encode::set(ctx.reply, 1, proto);
        encode::bulk(ctx.reply, b"off");
        encode::bulk(ctx.reply, b"redirect");
        encode::integer(ctx.reply, -1);
        encode::bulk(ctx.reply, b"prefixes");
        encode::array(ctx.reply, 0);
        Exec::Done
    }),
    cmd("client|getredir", 2, 0, |ctx, _| {
        encode::integer(ctx.reply, -1);
        Exec::Done
    }),
    cmd("client|caching", 3, 0, |ctx, a| {
        if a[2].eq_ignore_ascii_case(b"yes") || a[2].eq_ignore_ascii_case(b"no") {
            encode::error(ctx.reply, errors::CACHING_WITHOUT_TRACKING);
        } else {
            encode::error(ctx.reply, errors::SYNTAX);
        }
        Exec::Done
    }),
    cmd("client|no-evict", 3, 0, |ctx, a| {
        on_off(ctx, a, flags::NO_EVICT)
    }),
    cmd("client|no-touch", 3, 0, |ctx, a| {
        on_off(ctx, a, flags::NO_TOUCH)
    }),
    cmd("client|help", 2, 0, |ctx, _| {
        help(
            ctx,
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

/// `CLIENT NO-EVICT|NO-TOUCH ON|OFF`: a mode CLIENT LIST shows (`e`, `T`).
/// ringcast evicts no client for memory and has no keys to touch, so the
/// mode changes nothing else.
fn on_off(ctx: &mut Ctx<'_>, args: ArgList<'_>, flag: u8) -> Exec {
    let on = if args[2].eq_ignore_ascii_case(b"on") {
        true
    } else if args[2].eq_ignore_ascii_case(b"off") {
        false
    } else {
        encode::error(ctx.reply, errors::SYNTAX);
        return Exec::Done;
    };
    ctx.session.meta.set_flag(flag, on);
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}

/// The `flags=` of a CLIENT LIST line, letters in Redis's order.
fn flag_letters(m: &ClientMeta) -> String {
    let mut letters = String::new();
    if m.has_flag(flags::MONITOR) {
        letters.push('O');
    }
    if m.in_pubsub() {
        letters.push('P');
    }
    if m.multi.load(Relaxed) >= 0 {
        letters.push('x');
    }
    if m.has_flag(flags::NO_EVICT) {
        letters.push('e');
    }
    if m.has_flag(flags::NO_TOUCH) {
        letters.push('T');
    }
    if letters.is_empty() {
        letters.push('N');
    }
    letters
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]`. ringcast has no keyspace, so there is nothing to
/// invalidate: OFF (the state every client is in) is accepted, ON is refused
/// with an error rather than promising invalidations that never come.
fn client_tracking(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
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
                encode::error(ctx.reply, errors::NOT_INTEGER);
                return Exec::Done;
            }
            i += 2;
        } else if flag {
            i += 1;
        } else {
            encode::error(ctx.reply, errors::SYNTAX);
            return Exec::Done;
        }
    }
    if args[2].eq_ignore_ascii_case(b"off") {
        encode::simple(ctx.reply, b"OK");
    } else if args[2].eq_ignore_ascii_case(b"on") {
        encode::error(ctx.reply, errors::TRACKING_UNSUPPORTED);
    } else {
        encode::error(ctx.reply, errors::SYNTAX);
    }
    Exec::Done
}

fn client_setinfo(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let attr = &args[2];
    let value = &args[3];
    let meta = ctx.session.meta.clone();
    let slot = if attr.eq_ignore_ascii_case(b"lib-name") {
        &meta.lib_name
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        &meta.lib_ver
    } else {
        encode::error(ctx.reply, errors::unrecognized_option(attr));
        return Exec::Done;
    };
    if !super::connection::valid_name(value) {
        encode::error(ctx.reply, errors::attribute_special_chars(attr));
        return Exec::Done;
    }
    *lock(slot) = (!value.is_empty()).then(|| Bytes::copy_from_slice(value));
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}

fn client_reply(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let s = &mut ctx.session;
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        s.reply_mode = ReplyMode::On;
        ctx.skip_reply = false;
        encode::simple(ctx.reply, b"OK");
    } else if mode.eq_ignore_ascii_case(b"off") {
        s.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if s.reply_mode != ReplyMode::Off {
            s.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        encode::error(ctx.reply, errors::SYNTAX);
    }
    Exec::Done
}

/// One `CLIENT LIST` line (Redis 7.2 fields, plus `io-thread`: the worker),
/// with `omem` output bytes.
pub(super) fn client_line(m: &ClientMeta, omem: usize) -> String {
    let age = m.created.elapsed();
    let idle = age.as_millis() as u64 - m.last_active_ms.load(Relaxed).min(age.as_millis() as u64);
    let subs = (
        m.channels.load(Relaxed),
        m.patterns.load(Relaxed),
        m.shard_channels.load(Relaxed),
    );
    let multi = m.multi.load(Relaxed);
    let multi_mem = m.multi_mem.load(Relaxed);
    let flags = flag_letters(m);
    let name = lock(&m.name).clone().unwrap_or_default();
    let lib_name = lock(&m.lib_name).clone().unwrap_or_default();
    let lib_ver = lock(&m.lib_ver).clone().unwrap_or_default();
    let user = lock(&m.user).clone();
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub={} multi={multi} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem={multi_mem} rbs=0 rbp=0 obl=0 oll=0 omem={omem} tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={} io-thread={}",
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
        omem + multi_mem,
        super::name_of(m.last_cmd.load(Relaxed)),
        String::from_utf8_lossy(&user),
        m.resp.load(Relaxed),
        String::from_utf8_lossy(&lib_name),
        String::from_utf8_lossy(&lib_ver),
        m.worker.load(Relaxed),
    )
}

/// CLIENT LIST [TYPE normal|pubsub|master|replica] | CLIENT LIST ID id [id ...]:
/// with IDs, one line per ID found, in the order given (as Redis 7.2).
fn client_list(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let clients: Vec<Arc<ClientMeta>> = match args.slice(2..).to_vec()[..] {
        [] => ctx.shared.clients.snapshot(),
        [opt, kind] if opt.eq_ignore_ascii_case(b"type") => match ClientType::parse(kind) {
            Some(t) => {
                let mut all = ctx.shared.clients.snapshot();
                all.retain(|m| t.matches(m));
                all
            }
            None => {
                encode::error(ctx.reply, errors::unknown_client_type(kind));
                return Exec::Done;
            }
        },
        [opt, ref ids @ ..] if opt.eq_ignore_ascii_case(b"id") && !ids.is_empty() => {
            let mut found = Vec::new();
            for id in ids {
                let Some(id) = super::parse_i64(id) else {
                    encode::error(ctx.reply, errors::INVALID_CLIENT_ID);
                    return Exec::Done;
                };
                found.extend(
                    u64::try_from(id)
                        .ok()
                        .and_then(|id| ctx.shared.clients.get(id)),
                );
            }
            found
        }
        _ => {
            encode::error(ctx.reply, errors::SYNTAX);
            return Exec::Done;
        }
    };
    let me = ctx.session.id;
    let mut text = String::new();
    for m in clients {
        let omem = if m.id == me {
            ctx.pushes.memory()
        } else {
            m.output_bytes.load(Relaxed)
        };
        text.push_str(&client_line(&m, omem));
        text.push('\n');
    }
    let proto = ctx.session.proto;
    encode::verbatim(ctx.reply, b"txt", text.as_bytes(), proto);
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
        let pubsub = m.in_pubsub();
        match self {
            ClientType::Normal => !pubsub,
            ClientType::Pubsub => pubsub,
            ClientType::Replication => false,
        }
    }
}

/// Which clients a `CLIENT KILL` names.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    kind: Option<ClientType>,
    user: Option<Bytes>,
    max_age: u64,
    skipme: bool,
}

impl KillFilter {
    /// `CLIENT KILL ip:port` (old style: may kill the caller) or the
    /// `<option> <value>` pairs of the new style; Err is the error reply.
    fn parse(args: ArgList<'_>, users: &crate::acl::Users) -> Result<KillFilter, Vec<u8>> {
        if let [addr] = args.to_vec()[..] {
            return Ok(KillFilter {
                addr: Some(Bytes::copy_from_slice(addr)),
                ..KillFilter::default()
            });
        }
        if !args.len().is_multiple_of(2) {
            return Err(errors::SYNTAX.into());
        }
        let mut f = KillFilter {
            skipme: true,
            ..KillFilter::default()
        };
        for pair in args.to_vec().chunks(2) {
            f.apply(pair[0], pair[1], users)?;
        }
        Ok(f)
    }

    fn apply(&mut self, opt: &[u8], val: &[u8], users: &crate::acl::Users) -> Result<(), Vec<u8>> {
        let is = |name: &[u8]| opt.eq_ignore_ascii_case(name);
        if is(b"id") {
            match super::parse_i64(val) {
                Some(n) if n > 0 => self.id = Some(n as u64),
                _ => return Err(errors::CLIENT_ID_NOT_POSITIVE.into()),
            }
        } else if is(b"addr") {
            self.addr = Some(Bytes::copy_from_slice(val));
        } else if is(b"laddr") {
            self.laddr = Some(Bytes::copy_from_slice(val));
        } else if is(b"skipme") {
            self.skipme = match &val.to_ascii_lowercase()[..] {
                b"yes" => true,
                b"no" => false,
                _ => return Err(errors::SYNTAX.into()),
            };
        } else if is(b"type") {
            let kind = ClientType::parse(val).ok_or_else(|| errors::unknown_client_type(val))?;
            self.kind = Some(kind);
        } else if is(b"user") {
            if users.get(val).is_none() {
                return Err(errors::no_such_user(val));
            }
            self.user = Some(Bytes::copy_from_slice(val));
        } else if is(b"maxage") {
            match super::parse_i64(val) {
                Some(n) if n >= 0 => self.max_age = n as u64,
                _ => return Err(errors::MAXAGE_NOT_INTEGER.into()),
            }
        } else {
            return Err(errors::SYNTAX.into());
        }
        Ok(())
    }

    fn matches(&self, m: &ClientMeta, me: u64) -> bool {
        self.id.is_none_or(|i| m.id == i)
            && self
                .addr
                .as_ref()
                .is_none_or(|a| m.addr.as_bytes() == &a[..])
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| m.laddr.as_bytes() == &a[..])
            && self.kind.is_none_or(|k| k.matches(m))
            && self.user.as_ref().is_none_or(|u| *lock(&m.user) == *u)
            && (self.max_age == 0 || m.created.elapsed().as_secs() >= self.max_age)
            && !(self.skipme && m.id == me)
    }
}

/// CLIENT KILL ip:port | CLIENT KILL [ID id] [TYPE type] [USER name]
/// [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no] [MAXAGE seconds].
/// Clients on other workers are closed by their own worker.
fn client_kill(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let filter = match KillFilter::parse(args.slice(2..), &ctx.shared.acl.users()) {
        Ok(f) => f,
        Err(e) => {
            encode::error(ctx.reply, e);
            return Exec::Done;
        }
    };
    let me = ctx.session.id;
    let victims: Vec<u64> = ctx
        .shared
        .clients
        .snapshot()
        .iter()
        // One already being closed was killed once; Redis would have freed it.
        .filter(|m| !m.closing.load(Relaxed) && filter.matches(m, me))
        .map(|m| m.id)
        .collect();
    let mut exec = Exec::Done;
    for &v in &victims {
        if v == me {
            // Killing oneself: Redis still sends the reply, then closes.
            exec = Exec::CloseAfterReply;
        } else {
            ctx.shared.request_kill(v);
        }
    }
    match (args.len() == 3, victims.is_empty()) {
        (true, true) => encode::error(ctx.reply, errors::NO_SUCH_CLIENT),
        (true, false) => encode::simple(ctx.reply, b"OK"),
        (false, _) => encode::integer(ctx.reply, victims.len() as i64),
    }
    exec
}
