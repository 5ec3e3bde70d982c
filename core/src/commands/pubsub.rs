//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
//! PUBLISH and SPUBLISH.
//!
//! Confirmations are pushes: Redis sends them even under `CLIENT REPLY OFF`,
//! so they go straight to the output queue instead of through the reply.

use bytes::{Bytes, BytesMut};

use crate::hub::{ConnKey, Exec, Hub, SubKind};
use crate::registry::Namespace;
use crate::resp::encode;

/// `<kind> <name|null> <count>` confirmation push.
fn confirm(hub: &mut Hub, key: ConnKey, kind: &[u8], name: Option<&[u8]>, count: usize) {
    let conn = &mut hub.conns[key];
    let proto = conn.session.proto;
    let mut out = BytesMut::with_capacity(32 + name.map_or(0, <[u8]>::len));
    encode::push(&mut out, 3, proto);
    encode::bulk(&mut out, kind);
    match name {
        Some(n) => encode::bulk(&mut out, n),
        None => encode::null(&mut out, proto),
    }
    encode::integer(&mut out, count as i64);
    conn.out.extend(&out);
}

/// The count a confirmation of this kind reports.
fn count(hub: &Hub, key: ConnKey, kind: SubKind) -> usize {
    let s = &hub.conns[key].session;
    match kind {
        SubKind::Channel(Namespace::Shard) => s.shard_channels.len(),
        _ => s.subscription_count(),
    }
}

fn subscribe_all(hub: &mut Hub, key: ConnKey, args: &[Bytes], kind: SubKind, word: &[u8]) -> Exec {
    for name in &args[1..] {
        hub.add_subscription(key, kind, name);
        let n = count(hub, key, kind);
        confirm(hub, key, word, Some(name), n);
    }
    hub.conns[key].session.publish_counts();
    Exec::Done
}

fn unsubscribe_all(
    hub: &mut Hub,
    key: ConnKey,
    args: &[Bytes],
    kind: SubKind,
    word: &[u8],
) -> Exec {
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        let s = &hub.conns[key].session;
        let held = match kind {
            SubKind::Channel(Namespace::Global) => &s.channels,
            SubKind::Channel(Namespace::Shard) => &s.shard_channels,
            SubKind::Pattern => &s.patterns,
        };
        held.iter().cloned().collect()
    };
    if names.is_empty() {
        // Nothing held and nothing named: one frame with a null name.
        let n = count(hub, key, kind);
        confirm(hub, key, word, None, n);
    }
    for name in &names {
        hub.remove_subscription(key, kind, name);
        let n = count(hub, key, kind);
        confirm(hub, key, word, Some(name), n);
    }
    hub.conns[key].session.publish_counts();
    Exec::Done
}

pub fn subscribe(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    subscribe_all(
        hub,
        key,
        args,
        SubKind::Channel(Namespace::Global),
        b"subscribe",
    )
}

pub fn unsubscribe(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    unsubscribe_all(
        hub,
        key,
        args,
        SubKind::Channel(Namespace::Global),
        b"unsubscribe",
    )
}

pub fn psubscribe(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    subscribe_all(hub, key, args, SubKind::Pattern, b"psubscribe")
}

pub fn punsubscribe(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    unsubscribe_all(hub, key, args, SubKind::Pattern, b"punsubscribe")
}

pub fn ssubscribe(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    subscribe_all(
        hub,
        key,
        args,
        SubKind::Channel(Namespace::Shard),
        b"ssubscribe",
    )
}

pub fn sunsubscribe(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    unsubscribe_all(
        hub,
        key,
        args,
        SubKind::Channel(Namespace::Shard),
        b"sunsubscribe",
    )
}

fn publish_in(hub: &mut Hub, key: ConnKey, args: &[Bytes], ns: Namespace) -> Exec {
    match hub.publish(key, ns, &args[1], &args[2]) {
        Some(n) => {
            encode::integer(&mut hub.reply, n as i64);
            Exec::Done
        }
        None => Exec::Blocked(args.to_vec()),
    }
}

/// `PUBLISH channel message` → number of receivers (channel subscribers plus
/// matching pattern subscriptions, on every worker). The count is what the
/// registry holds when the message is routed: a subscriber that leaves
/// concurrently may be counted and not receive it.
pub fn publish(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    publish_in(hub, key, args, Namespace::Global)
}

/// `SPUBLISH shardchannel message`: shard channels only; patterns never match.
pub fn spublish(hub: &mut Hub, key: ConnKey, args: &[Bytes]) -> Exec {
    publish_in(hub, key, args, Namespace::Shard)
}
