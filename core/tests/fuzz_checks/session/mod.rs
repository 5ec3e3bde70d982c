//! The broker end to end, without sockets: two workers' `Hub`s sharing one
//! `Shared` and one inter-worker mesh, driven by a script of client and
//! server events, with a reference model following along.
//!
//! A fuzz input is a configuration byte (ring capacity, pub/sub output
//! limit, `worker-output-backlog`, `timeout`, `requirepass`: see
//! [`script::config`]), then steps over up to 32 connection slots spread over
//! both workers ([`script::Step`]): connect; write a request from a small
//! alphabet (every pub/sub command, PUBLISH and SPUBLISH, PUBSUB, PING, HELLO,
//! RESET, QUIT, AUTH, CLIENT REPLY and KILL, MULTI, EXEC and DISCARD, unknown
//! commands) or raw bytes,
//! inline or RESP, delivered at once or held and sent later cut anywhere; let
//! a worker drain its inbound ring; let a connection's writer take its
//! output (or not, so that output limits and the backlog pause come into
//! play; or leave the write in flight); advance a worker's clock and run its
//! cron; hang up; disconnect; fill the empty slots with subscribers.
//!
//! The model ([`model`]) runs every request the server's decoder took, and
//! knows what each connection holds and must read next. Properties:
//!
//! 1. Nothing panics, and the hub stops reading where the model says:
//!    after the same bytes, with the same status (a pause only on a publish,
//!    or on an EXEC at the queued command the hub says waits, from which
//!    the model's EXEC goes on too).
//! 2. After every step: what the registry counts (`channel_count`,
//!    `pattern_count`, `numsub`, and the channel and pattern hits of a
//!    publish lookup of every name used, per worker) is what the
//!    connections hold; each worker's `connected_clients` and
//!    `pubsub_clients` gauges, its connection count and the client
//!    directory (`CLIENT LIST`'s ids and sub/psub/ssub) agree with the
//!    connections it has.
//! 3. Every byte a connection reads is well-formed RESP in the protocol it
//!    speaks, and is what it expects next: confirmations byte for byte
//!    (counts, nulls, RESP2 or RESP3), replies by shape (PUBSUB answers
//!    within what the registry held; errors where Redis errs), and the
//!    frames of each message published to it; EXEC's array header byte for
//!    byte, then each queued command's output in place (messages that
//!    arrive while a paused EXEC waits come after it).
//! 4. Delivery (DESIGN.md invariants 1-4): a connection gets a message
//!    exactly when the PUBLISH counted one of its subscriptions and it
//!    still holds that subscription when the message reaches its worker (a
//!    subscription made while the message was on its way gets nothing) —
//!    from every publisher, in publish order, its `message` before its
//!    `pmessage`s, and never after the confirmation of the unsubscribe that
//!    ended the subscription; a PUBLISH replies the number of subscriptions
//!    it found, which is the number of frames delivered unless a receiver
//!    unsubscribed or closed meanwhile.
//! 5. At the end, once every output is written, every paused publisher
//!    retried and every ring drained (none stays paused: no deadlock),
//!    every delivery was read; then, with every connection
//!    disconnected: the registry is empty, every gauge is zero, nothing is
//!    left in a ring or a backlog.

mod model;
mod resp;
pub(crate) mod script;
mod world;

use script::Script;
use world::World;

/// With `RINGCAST_FUZZ_TRACE` set, each step and what each connection reads
/// are printed (to follow an input that fails).
fn trace(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("RINGCAST_FUZZ_TRACE").is_some()) {
        eprintln!("{}", line());
    }
}

/// Checks one fuzz input; panics naming the property that fails.
pub(crate) fn check(data: &[u8]) {
    let Some((&config, steps)) = data.split_first() else {
        return;
    };
    let mut world = World::new(script::config(config));
    let mut script = Script::new(steps);
    let mut n = 0;
    while let Some(step) = script.next_step() {
        n += 1;
        trace(|| format!("{step:?}"));
        if let Err(e) = world.step(&step, &mut script) {
            panic!("step {n} ({step:?}): {e}");
        }
    }
    if let Err(e) = world.finish() {
        panic!("at the end, after {n} steps: {e}");
    }
}
