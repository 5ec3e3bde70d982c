//! Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use crate::errors;
use crate::hub::{ConnKey, Exec, Hub};
use crate::resp::encode::{self, Proto};
use crate::session::ReplyMode;

/// PING [message]. In RESP2 subscribed mode Redis answers with a
/// `pong` array, so clients can tell it from a published message.
pub fn ping(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    if args.len() > 2 {
        encode::error(&mut hub.reply, &errors::wrong_arity("ping"));
        return Exec::Done;
    }
    let s = &hub.conns[key].session;
    let out = &mut hub.reply;
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

pub fn echo(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    encode::bulk(&mut hub.reply, &args[1]);
    Exec::Done
}

pub fn quit(hub: &mut Hub, key: ConnKey, _args: &[Bytes]) -> Exec {
    encode::simple(&mut hub.reply, b"OK");
    hub.conns[key].state = crate::hub::ConnState::CloseAfterReply;
    Exec::Close
}

/// RESET: back to a fresh connection's state, dropping subscriptions without confirmations.
pub fn reset(hub: &mut Hub, key: ConnKey, _args: &[Bytes]) -> Exec {
    hub.unsubscribe_everything(key);
    let nopass = hub.shared.config.load().requirepass.is_none();
    let s = &mut hub.conns[key].session;
    s.proto = Proto::Resp2;
    s.name = None;
    s.db = 0;
    s.reply_mode = ReplyMode::On;
    s.authenticated = nopass;
    s.meta.resp.store(2, Relaxed);
    s.meta.db.store(0, Relaxed);
    *crate::shared::lock(&s.meta.name) = None;
    hub.skip_reply = false;
    encode::simple(&mut hub.reply, b"RESET");
    Exec::Done
}

/// Check a user/password pair against `requirepass` (the default user is
/// the only user; without a password it accepts any).
fn credentials_ok(hub: &Hub, user: &[u8], pass: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    match &hub.shared.config.load().requirepass {
        None => true,
        Some(p) => constant_time_eq(p.as_bytes(), pass),
    }
}

/// Compare without an early exit, so reply timing does not reveal a password prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn auth(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if hub.shared.config.load().requirepass.is_none() {
                encode::error(&mut hub.reply, errors::AUTH_NOT_CONFIGURED);
                return Exec::Done;
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => {
            encode::error(&mut hub.reply, errors::SYNTAX);
            return Exec::Done;
        }
    };
    if credentials_ok(hub, user, pass) {
        hub.conns[key].session.authenticated = true;
        encode::simple(&mut hub.reply, b"OK");
    } else {
        encode::error(&mut hub.reply, errors::WRONGPASS);
        crate::shared::WorkerStats::add(&hub.stats().auth_denied, 1);
    }
    Exec::Done
}

/// A client name may not contain spaces, newlines or other special characters.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

pub(crate) fn set_name(hub: &mut Hub, key: ConnKey, name: &Bytes) {
    let s = &mut hub.conns[key].session;
    let name = (!name.is_empty()).then(|| name.clone());
    *crate::shared::lock(&s.meta.name) = name.clone();
    s.name = name;
}

/// HELLO [protover [AUTH user pass] [SETNAME name]]
pub fn hello(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let mut proto = hub.conns[key].session.proto;
    if let Some(v) = args.get(1) {
        match super::parse_i64(v) {
            None => {
                encode::error(
                    &mut hub.reply,
                    "ERR Protocol version is not an integer or out of range",
                );
                return Exec::Done;
            }
            Some(2) => proto = Proto::Resp2,
            Some(3) => proto = Proto::Resp3,
            Some(_) => {
                encode::error(&mut hub.reply, errors::NOPROTO);
                return Exec::Done;
            }
        }
    }
    let mut auth: Option<(&Bytes, &Bytes)> = None;
    let mut setname: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
            auth = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if args[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
            setname = Some(&args[i + 1]);
            i += 2;
        } else {
            let e = format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            );
            encode::error(&mut hub.reply, &e);
            return Exec::Done;
        }
    }
    if let Some((user, pass)) = auth {
        if !credentials_ok(hub, user, pass) {
            encode::error(&mut hub.reply, errors::WRONGPASS);
            crate::shared::WorkerStats::add(&hub.stats().auth_denied, 1);
            return Exec::Done;
        }
        hub.conns[key].session.authenticated = true;
    }
    if !hub.conns[key].session.authenticated {
        encode::error(
            &mut hub.reply,
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
        return Exec::Done;
    }
    if let Some(name) = setname {
        if !valid_name(name) {
            encode::error(&mut hub.reply, errors::CLIENT_NAME_SPACES);
            return Exec::Done;
        }
        set_name(hub, key, name);
    }
    let s = &mut hub.conns[key].session;
    s.proto = proto;
    s.meta.resp.store(proto.version() as u8, Relaxed);
    let id = s.id;
    let out = &mut hub.reply;
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
    Exec::Done
}

pub fn select(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    let databases = hub.shared.config.load().databases;
    match super::parse_i64(&args[1]) {
        None => encode::error(&mut hub.reply, errors::NOT_INTEGER),
        Some(db) if db < 0 || db >= databases => encode::error(&mut hub.reply, errors::DB_INDEX),
        Some(db) => {
            let s = &mut hub.conns[key].session;
            s.db = db;
            s.meta.db.store(db as u64, Relaxed);
            encode::simple(&mut hub.reply, b"OK");
        }
    }
    Exec::Done
}
