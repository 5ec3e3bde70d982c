//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
//! PUBLISH, SPUBLISH and the PUBSUB introspection subcommands.
//!
//! Confirmations are pushes: Redis sends them even under `CLIENT REPLY OFF`,
//! so they go straight to the output queue instead of through the reply.

use bytes::{Bytes, BytesMut};

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::cluster::forward;
use crate::errors;
use crate::output::{OutputQueue, SHARE_THRESHOLD};
use crate::registry::Namespace;
use crate::resp::args::ArgList;
use crate::resp::encode::{self, Proto};
use crate::router::{self, SubKind};
use crate::session::{ClusterWait, Session};

const GLOBAL: SubKind = SubKind::Channel(Namespace::Global);
const SHARD: SubKind = SubKind::Channel(Namespace::Shard);

/// A subscription command's word as its confirmations carry it, with the
/// start every confirmation of the command shares (the push header and the
/// word: `*3\r\n$11\r\nunsubscribe\r\n`) in both protocols, written out
/// once here instead of encoded per command.
struct Word {
    word: &'static [u8],
    resp2: &'static [u8],
    resp3: &'static [u8],
}

macro_rules! word {
    ($word:literal, $len:literal) => {
        Word {
            word: $word.as_bytes(),
            resp2: concat!("*3\r\n$", $len, "\r\n", $word, "\r\n").as_bytes(),
            resp3: concat!(">3\r\n$", $len, "\r\n", $word, "\r\n").as_bytes(),
        }
    };
}

const SUBSCRIBE: Word = word!("subscribe", 9);
const UNSUBSCRIBE: Word = word!("unsubscribe", 11);
const PSUBSCRIBE: Word = word!("psubscribe", 10);
const PUNSUBSCRIBE: Word = word!("punsubscribe", 12);
const SSUBSCRIBE: Word = word!("ssubscribe", 10);
const SUNSUBSCRIBE: Word = word!("sunsubscribe", 12);

impl Word {
    fn head(&self, proto: Proto) -> &'static [u8] {
        match proto {
            Proto::Resp2 => self.resp2,
            Proto::Resp3 => self.resp3,
        }
    }
}

/// Appends a `<kind> <name|null> <count>` confirmation push to `out`,
/// `head` being the command's [`Word::head`]. A command confirms each of
/// its arguments: they are encoded one after the other into one buffer.
fn confirm(out: &mut BytesMut, head: &[u8], proto: Proto, name: Option<&[u8]>, count: usize) {
    out.extend_from_slice(head);
    match name {
        Some(n) => encode::bulk(out, n),
        None => encode::null(out, proto),
    }
    encode::integer(out, count as i64);
}

/// Room the confirmations of a command naming `names` take at most.
fn confirmations_len(names: ArgList<'_>, word: &Word) -> usize {
    // `*3\r\n$<w>\r\n<word>\r\n$<n>\r\n<name>\r\n:<count>\r\n`: a name and
    // its count take at most 40 bytes besides their digits' worth.
    let each = word.word.len() + 40;
    names
        .iter()
        .map(|n| n.len() + each)
        .sum::<usize>()
        .max(each)
}

/// Where a command's confirmations are encoded: straight into the
/// connection's output when they are few (where a copy of them would go),
/// else into a buffer of their own, queued whole without a copy (a command
/// naming thousands).
enum Confirmations {
    Queued,
    Own(BytesMut),
}

impl Confirmations {
    fn new(len: usize) -> Self {
        if len < SHARE_THRESHOLD {
            Confirmations::Queued
        } else {
            Confirmations::Own(BytesMut::with_capacity(len))
        }
    }

    /// The buffer to encode into; `pushes` is the connection's output.
    fn buffer<'a>(&'a mut self, pushes: &'a mut OutputQueue, len: usize) -> &'a mut BytesMut {
        match self {
            Confirmations::Queued => pushes.encode_buffer(len),
            Confirmations::Own(out) => out,
        }
    }

    /// Queues what was encoded into a buffer of its own.
    fn queue(self, pushes: &mut OutputQueue) {
        if let Confirmations::Own(out) = self {
            pushes.append(out);
        }
    }
}

/// The count a confirmation of this kind reports: shard channels are
/// counted on their own, channels and patterns together.
fn count(session: &Session, kind: SubKind) -> usize {
    match kind {
        SHARD => session.shard_channels.len(),
        _ => session.subscription_count(),
    }
}

/// Cluster mode: whether this SUBSCRIBE/PSUBSCRIBE waits before it runs,
/// until every linked peer has the names that are new on this worker (see
/// `cluster::forward`, guarantee 3); `Some(true)` once it ran after a wait.
fn cluster_hold(ctx: &mut Ctx<'_>, names: ArgList<'_>, kind: SubKind) -> Option<bool> {
    let fkind = match kind {
        GLOBAL => forward::Kind::Channel,
        SubKind::Pattern => forward::Kind::Pattern,
        _ => return Some(false),
    };
    match std::mem::take(&mut ctx.session.cluster_wait) {
        ClusterWait::Answered(_) => Some(true),
        ClusterWait::Waiting => {
            ctx.session.cluster_wait = ClusterWait::Waiting;
            None
        }
        ClusterWait::Idle if !ctx.shared.cluster.linked() => Some(false),
        ClusterWait::Idle => {
            let new: Vec<(forward::Kind, Bytes)> = names
                .iter()
                .filter(|n| !ctx.router.has_local(kind, n))
                .map(|n| (fkind, Bytes::copy_from_slice(n)))
                .collect();
            if !new.is_empty() && ctx.shared.cluster.hold(ctx.worker, ctx.session.id, new) {
                ctx.session.cluster_wait = ClusterWait::Waiting;
                return None;
            }
            Some(false)
        }
    }
}

fn subscribe_all(ctx: &mut Ctx<'_>, args: ArgList<'_>, kind: SubKind, word: &Word) -> Exec {
    let held = if ctx.shared.cluster.enabled() {
        match cluster_hold(ctx, args.slice(1..), kind) {
            Some(held) => held,
            None => return Exec::Blocked,
        }
    } else {
        false
    };
    let proto = ctx.session.proto;
    let head = word.head(proto);
    let names = args.slice(1..);
    let len = confirmations_len(names, word);
    let mut confirmations = Confirmations::new(len);
    let out = confirmations.buffer(ctx.pushes, len);
    for name in names {
        ctx.router.subscribe(ctx.conn, ctx.session, kind, name);
        let n = count(ctx.session, kind);
        confirm(out, head, proto, Some(name), n);
    }
    if held {
        // After the subscriptions' own interest (one FIFO to the bus).
        ctx.shared.cluster.unhold(ctx.session.id);
    }
    confirmations.queue(ctx.pushes);
    ctx.session.publish_counts();
    Exec::Done
}

fn unsubscribe_all(ctx: &mut Ctx<'_>, args: ArgList<'_>, kind: SubKind, word: &Word) -> Exec {
    let proto = ctx.session.proto;
    let head = word.head(proto);
    let names = args.slice(1..);
    let len = confirmations_len(names, word);
    let mut confirmations = Confirmations::new(len);
    let out = confirmations.buffer(ctx.pushes, len);
    // What the count holds besides this kind's subscriptions (patterns
    // for channels and the other way round), unchanged by the command.
    let others = count(ctx.session, kind) - router::held_mut(ctx.session, kind).len();
    if !names.is_empty() {
        // One frame per argument, in order, each with the count after its
        // step (also for names not held: the count is unchanged).
        ctx.router
            .unsubscribe_each(ctx.conn, ctx.session, kind, names, |name, left| {
                confirm(out, head, proto, Some(name), others + left);
            });
    } else {
        // Every held one (in no particular order, as Redis walks a hash
        // table); the count falls by one per frame.
        let held = ctx.router.unsubscribe_kind(ctx.conn, ctx.session, kind);
        let rest = count(ctx.session, kind);
        if held.is_empty() {
            // Nothing held and nothing named: one frame with a null name.
            confirm(out, head, proto, None, rest);
        }
        out.reserve(held.len() * (word.word.len() + 40));
        // Each name is dropped right after its frame, which frees the
        // entry of one the registry and the index no longer hold.
        let mut left = held.len();
        for name in held.into_names() {
            left -= 1;
            confirm(out, head, proto, Some(&name), rest + left);
        }
    }
    confirmations.queue(ctx.pushes);
    ctx.session.publish_counts();
    Exec::Done
}

pub(super) fn subscribe(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    subscribe_all(ctx, args, GLOBAL, &SUBSCRIBE)
}

pub(super) fn unsubscribe(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    unsubscribe_all(ctx, args, GLOBAL, &UNSUBSCRIBE)
}

pub(super) fn psubscribe(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    subscribe_all(ctx, args, SubKind::Pattern, &PSUBSCRIBE)
}

pub(super) fn punsubscribe(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    unsubscribe_all(ctx, args, SubKind::Pattern, &PUNSUBSCRIBE)
}

pub(super) fn ssubscribe(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    subscribe_all(ctx, args, SHARD, &SSUBSCRIBE)
}

pub(super) fn sunsubscribe(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    unsubscribe_all(ctx, args, SHARD, &SUNSUBSCRIBE)
}

fn publish_in(ctx: &mut Ctx<'_>, args: ArgList<'_>, ns: Namespace) -> Exec {
    match ctx.router.publish(ns, &args[1], &args[2]) {
        Some(n) => {
            if ctx.shared.cluster.enabled() {
                // Cross-node: PUBLISH to the peers with subscribers for it,
                // SPUBLISH to this node's replicas.
                match ns {
                    Namespace::Global => ctx.shared.cluster.forward_publish(&args[1], &args[2]),
                    Namespace::Shard => ctx.shared.cluster.forward_spublish(&args[1], &args[2]),
                }
            }
            crate::stats::WorkerStats::add(&ctx.stats().messages_published, 1);
            encode::integer(ctx.reply, n as i64);
            Exec::Done
        }
        None => Exec::Blocked,
    }
}

/// `PUBLISH channel message` → number of receivers (channel subscribers plus
/// matching pattern subscriptions, on every worker). The count is what the
/// registry holds when the message is routed: a subscriber that leaves
/// concurrently may be counted and not receive it.
pub(super) fn publish(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    publish_in(ctx, args, Namespace::Global)
}

/// `SPUBLISH shardchannel message`: shard channels only; patterns never match.
pub(super) fn spublish(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    publish_in(ctx, args, Namespace::Shard)
}

pub(super) static PUBSUB: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, 0, |ctx, a| {
        channels(ctx, a, Namespace::Global)
    }),
    cmd("pubsub|numsub", -2, 0, |ctx, a| {
        numsub(ctx, a, Namespace::Global)
    }),
    cmd("pubsub|numpat", 2, 0, |ctx, _| {
        let n = ctx.shared.registry.pattern_count();
        encode::integer(ctx.reply, n as i64);
        Exec::Done
    }),
    cmd("pubsub|shardchannels", -2, 0, |ctx, a| {
        channels(ctx, a, Namespace::Shard)
    }),
    cmd("pubsub|shardnumsub", -2, 0, |ctx, a| {
        numsub(ctx, a, Namespace::Shard)
    }),
    cmd("pubsub|help", 2, 0, |ctx, _| {
        help(
            ctx,
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

fn channels(ctx: &mut Ctx<'_>, args: ArgList<'_>, ns: Namespace) -> Exec {
    if args.len() > 3 {
        encode::error(ctx.reply, errors::subcommand_syntax(&args[1], "PUBSUB"));
        return Exec::Done;
    }
    let list = ctx.shared.registry.channels(ns, args.get(2));
    encode::array(ctx.reply, list.len());
    for c in list {
        encode::bulk(ctx.reply, &c);
    }
    Exec::Done
}

fn numsub(ctx: &mut Ctx<'_>, args: ArgList<'_>, ns: Namespace) -> Exec {
    let names = args.slice(2..);
    encode::array(ctx.reply, names.len() * 2);
    for c in names {
        let n = ctx.shared.registry.numsub(ns, c);
        encode::bulk(ctx.reply, c);
        encode::integer(ctx.reply, n as i64);
    }
    Exec::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_word_starts_its_confirmations_as_the_encoder_would() {
        for word in [
            SUBSCRIBE,
            UNSUBSCRIBE,
            PSUBSCRIBE,
            PUNSUBSCRIBE,
            SSUBSCRIBE,
            SUNSUBSCRIBE,
        ] {
            for proto in [Proto::Resp2, Proto::Resp3] {
                let mut expected = BytesMut::new();
                encode::push(&mut expected, 3, proto);
                encode::bulk(&mut expected, word.word);
                assert_eq!(word.head(proto), &expected[..]);
            }
        }
    }
}
