//! Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT.

use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;

use bytes::{Bytes, BytesMut};

use super::{Ctx, Exec};
use crate::acl::LogReason;
use crate::client::flags;
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode::{self, Proto};
use crate::session::ReplyMode;

/// `PING [message]`. In RESP2 subscribed mode Redis answers with a
/// `pong` array, so clients can tell it from a published message.
pub(super) fn ping(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if args.len() > 2 {
        encode::error(ctx.reply, errors::wrong_arity("ping"));
        return Exec::Done;
    }
    let s = &*ctx.session;
    let out = &mut *ctx.reply;
    if s.proto == Proto::Resp2 && s.in_pubsub() {
        encode::array(out, 2);
        encode::bulk(out, b"pong");
        encode::bulk(out, args.get(1).map_or(&b""[..], |m| m));
    } else if let Some(m) = args.get(1) {
        encode::bulk(out, m);
    } else {
        encode::simple(out, b"PONG");
    }
    Exec::Done
}

pub(super) fn echo(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    encode::bulk(ctx.reply, &args[1]);
    Exec::Done
}

pub(super) fn quit(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    encode::simple(ctx.reply, b"OK");
    Exec::CloseAfterReply
}

/// RESET: back to a fresh connection's state, dropping the transaction and
/// subscriptions without confirmations.
pub(super) fn reset(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    super::transaction::discard(ctx.session);
    ctx.router.unsubscribe_all(ctx.conn, ctx.session);
    ctx.session.publish_counts();
    ctx.session.log_out(ctx.shared.acl.users());
    let s = &mut *ctx.session;
    s.proto = Proto::Resp2;
    s.name = None;
    s.db = 0;
    s.reply_mode = ReplyMode::On;
    s.meta.resp.store(2, Relaxed);
    s.meta.db.store(0, Relaxed);
    *crate::lock(&s.meta.name) = None;
    // Out of MONITOR mode (the hub leaves the feed), and NO-EVICT and
    // NO-TOUCH off (Redis 7.2's `clearClientConnectionState`).
    s.monitor = false;
    let modes = flags::MONITOR | flags::NO_EVICT | flags::NO_TOUCH;
    s.meta.set_flag(modes, false);
    // A SKIP in effect for RESET itself still applies (Redis clears only
    // REPLY OFF and a SKIP pending for the next command).
    encode::simple(ctx.reply, b"RESET");
    Exec::Done
}

/// Log in as `user` if `pass` opens it (enabled, and `nopass` or one of its
/// passwords, compared in constant time); otherwise count and log the
/// denial (`ACL LOG` reason `auth`, the command as the client spelled it).
fn log_in(ctx: &mut Ctx<'_>, command: &[u8], user: &[u8], pass: &[u8]) -> bool {
    match ctx.shared.acl.authenticate(user, pass) {
        Some(u) => {
            ctx.session.log_in(u, ctx.shared.acl.users());
            true
        }
        None => {
            let (command, user) = (
                Bytes::copy_from_slice(command),
                Bytes::copy_from_slice(user),
            );
            super::acl::record(ctx, LogReason::Auth, command, user);
            crate::stats::WorkerStats::add(&ctx.stats().auth_denied, 1);
            false
        }
    }
}

pub(super) fn auth(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if ctx.shared.acl.users().default_user().nopass() {
                encode::error(ctx.reply, errors::AUTH_NOT_CONFIGURED);
                return Exec::Done;
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => {
            encode::error(ctx.reply, errors::SYNTAX);
            return Exec::Done;
        }
    };
    if log_in(ctx, &args[0], user, pass) {
        encode::simple(ctx.reply, b"OK");
    } else {
        encode::error(ctx.reply, errors::WRONGPASS);
    }
    Exec::Done
}

/// A client name may not contain spaces, newlines or other special characters.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

pub(crate) fn set_name(ctx: &mut Ctx<'_>, name: &[u8]) {
    let s = &mut *ctx.session;
    let name = (!name.is_empty()).then(|| Bytes::copy_from_slice(name));
    *crate::lock(&s.meta.name) = name.clone();
    s.name = name;
}

/// HELLO [protover [AUTH user pass] [SETNAME name]]
pub(super) fn hello(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let opts = match HelloOptions::parse(ctx.session.proto, args) {
        Ok(opts) => opts,
        Err(e) => {
            encode::error(ctx.reply, e);
            return Exec::Done;
        }
    };
    if let Some((user, pass)) = opts.auth
        && !log_in(ctx, &args[0], user, pass)
    {
        encode::error(ctx.reply, errors::WRONGPASS);
        return Exec::Done;
    }
    if !ctx.session.authenticated {
        encode::error(ctx.reply, errors::HELLO_NOAUTH);
        return Exec::Done;
    }
    if let Some(name) = opts.setname {
        if !valid_name(name) {
            encode::error(ctx.reply, errors::CLIENT_NAME_SPACES);
            return Exec::Done;
        }
        set_name(ctx, name);
    }
    let s = &mut *ctx.session;
    s.proto = opts.proto;
    s.meta.resp.store(opts.proto.version() as u8, Relaxed);
    hello_reply(ctx.reply, opts.proto, s.id);
    Exec::Done
}

/// What `HELLO [protover [AUTH user pass] [SETNAME name]]` asks for.
struct HelloOptions<'a> {
    proto: Proto,
    auth: Option<(&'a [u8], &'a [u8])>,
    setname: Option<&'a [u8]>,
}

impl<'a> HelloOptions<'a> {
    /// Parses the arguments in Redis's order of checks: the protocol
    /// version first, then the options left to right.
    fn parse(current: Proto, args: ArgList<'a>) -> Result<Self, Cow<'static, [u8]>> {
        let mut opts = HelloOptions {
            proto: current,
            auth: None,
            setname: None,
        };
        if let Some(v) = args.get(1) {
            opts.proto = match super::parse_i64(v) {
                None => return Err(errors::PROTOCOL_VERSION_NOT_INTEGER.as_bytes().into()),
                Some(2) => Proto::Resp2,
                Some(3) => Proto::Resp3,
                Some(_) => return Err(errors::NOPROTO.as_bytes().into()),
            };
        }
        let arg = |i| args.get(i).unwrap_or_default();
        let mut i = 2;
        while i < args.len() {
            let more = args.len() - i - 1;
            if args[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
                opts.auth = Some((arg(i + 1), arg(i + 2)));
                i += 3;
            } else if args[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
                opts.setname = Some(arg(i + 1));
                i += 2;
            } else {
                return Err(errors::hello_syntax(&args[i]).into());
            }
        }
        Ok(opts)
    }
}

/// HELLO's answer: the server's properties as a map.
fn hello_reply(out: &mut BytesMut, proto: Proto, id: u64) {
    encode::map(out, 7, proto);
    // Redis's own value: clients and tools that look at it expect "redis";
    // ringcast identifies itself in INFO (`ringcast_version`).
    encode::bulk(out, b"server");
    encode::bulk(out, b"redis");
    encode::bulk(out, b"version");
    encode::bulk(out, crate::REDIS_VERSION.as_bytes());
    encode::bulk(out, b"proto");
    encode::integer(out, proto.version());
    encode::bulk(out, b"id");
    encode::integer(out, id as i64);
    encode::bulk(out, b"mode");
    encode::bulk(out, b"standalone");
    encode::bulk(out, b"role");
    encode::bulk(out, b"master");
    encode::bulk(out, b"modules");
    encode::array(out, 0);
}

pub(super) fn select(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let databases = ctx.shared.config.load().databases;
    match super::parse_i64(&args[1]) {
        None => encode::error(ctx.reply, errors::NOT_INTEGER),
        Some(db) if db != 0 && ctx.shared.cluster.enabled() => {
            encode::error(ctx.reply, errors::SELECT_IN_CLUSTER)
        }
        Some(db) if db < 0 || db >= databases => encode::error(ctx.reply, errors::DB_INDEX),
        Some(db) => {
            let s = &mut *ctx.session;
            s.db = db;
            s.meta.db.store(db as u64, Relaxed);
            encode::simple(ctx.reply, b"OK");
        }
    }
    Exec::Done
}
