//! The reference model: what each connection holds and what it must read.
//!
//! The model runs every request a connection's server-side decoder took, in
//! the same order, with the same effect on the connection's state as Redis
//! 7.2 gives it (subscriptions, protocol, `CLIENT REPLY`, authentication),
//! and appends to the connection's expected output what the command must
//! produce: confirmations byte for byte, replies by shape, and the frames of
//! every message published to it. Publishes are followed through a copy of
//! each inter-worker ring, so the model knows when a message reaches the
//! other worker and whom it finds subscribed there.
//!
//! What depends on timing the model does not know (a paused publisher, a
//! connection closed by an output limit in the middle of a pipeline) it takes
//! from what the hubs report, never the other way round.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ringcast_core::commands::{COMMANDS, CommandSpec};
use ringcast_core::glob;
use ringcast_core::hub::{ConnKey, Input};
use ringcast_core::resp::decode::{Decoder, ProtocolError};

use super::resp::{Frame, Out};
use super::script::SLOTS;

/// What a subscription is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

pub(crate) const KINDS: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

#[derive(Debug, Clone)]
pub(crate) struct Sub {
    pub(crate) name: Vec<u8>,
    /// The model's clock when it was made (a publish at or before it is
    /// older than the subscription).
    since: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    /// QUIT, a protocol error, `CLIENT KILL` of itself: what is queued is
    /// sent, then the writer closes.
    Closing,
    /// Closed by the server (or the client hung up): queued output dropped.
    Killed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    SkipNext,
}

/// Where a connection is served and how the server knows it.
pub(crate) struct Origin {
    pub(crate) worker: usize,
    pub(crate) key: ConnKey,
    pub(crate) id: u64,
    pub(crate) addr: String,
    pub(crate) created: Instant,
}

/// One connection: the model of its server-side state, what it must read,
/// and its client's side of the socket.
pub(crate) struct Client {
    pub(crate) worker: usize,
    pub(crate) key: ConnKey,
    pub(crate) id: u64,
    pub(crate) addr: String,
    created: Instant,
    pub(crate) state: State,
    proto: u8,
    reply_mode: ReplyMode,
    authenticated: bool,
    /// Authenticated at some point: only a client that never was has its
    /// output capped.
    pub(crate) ever_authenticated: bool,
    /// Its last read or write, on its worker's clock (the `timeout` check).
    pub(crate) last_interaction: std::time::Duration,
    pub(crate) subs: [Vec<Sub>; 3],
    /// A publish waiting for ring room (the hub said `Blocked`).
    pub(crate) pending: Option<Vec<Bytes>>,
    pub(crate) expect: VecDeque<Expect>,
    /// Written by the client, not yet given to the server.
    pub(crate) unsent: Vec<u8>,
    /// Given to the server and not consumed by it (the reader's buffer).
    pub(crate) inbuf: BytesMut,
    /// A decoder of its own, fed the same bytes as the server's, which
    /// tells the model which requests the server took.
    tap: Decoder,
    tapbuf: BytesMut,
    /// Output read but not yet parsed into whole frames.
    read: Vec<u8>,
    /// Bytes taken by the writer whose write is still in flight.
    pub(crate) in_flight: usize,
    /// Open between MULTI and EXEC or DISCARD.
    pub(crate) tx: Option<Tx>,
    /// Messages delivered while its EXEC is paused: read after the EXEC reply.
    held: Vec<Expect>,
}

/// A transaction, as the model follows it.
#[derive(Debug, Default)]
pub(crate) struct Tx {
    /// Queued commands: full name and arguments.
    queued: Vec<(&'static str, Vec<Bytes>)>,
    /// A command was refused while queueing: EXEC discards it.
    dirty: bool,
    /// EXEC is under way: the next queued command to run.
    pub(crate) next: Option<usize>,
    /// EXEC's reply is skipped (`CLIENT REPLY SKIP` before it).
    skip: bool,
    /// A command closed the connection: nothing more is written.
    closing: bool,
}

impl Client {
    pub(crate) fn new(
        who: Origin,
        now: std::time::Duration,
        authenticated: bool,
        tap: Decoder,
    ) -> Self {
        let Origin {
            worker,
            key,
            id,
            addr,
            created,
        } = who;
        Client {
            worker,
            key,
            id,
            addr,
            created,
            state: State::Open,
            proto: 2,
            reply_mode: ReplyMode::On,
            authenticated,
            ever_authenticated: authenticated,
            last_interaction: now,
            subs: Default::default(),
            pending: None,
            expect: VecDeque::new(),
            unsent: Vec::new(),
            inbuf: BytesMut::new(),
            tap,
            tapbuf: BytesMut::new(),
            read: Vec::new(),
            in_flight: 0,
            tx: None,
            held: Vec::new(),
        }
    }

    pub(crate) fn in_pubsub(&self) -> bool {
        self.subs.iter().any(|s| !s.is_empty())
    }

    /// Its EXEC paused on a publish waiting for ring room.
    fn exec_paused(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.next.is_some())
    }

    fn held(&self, kind: Kind, name: &[u8]) -> Option<&Sub> {
        self.subs[kind as usize].iter().find(|s| s.name == name)
    }

    /// The count a confirmation reports.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.subs[2].len(),
            _ => self.subs[0].len() + self.subs[1].len(),
        }
    }

    /// Hand bytes to the server: the reader's buffer and the tap's.
    pub(crate) fn give(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
        self.tapbuf.extend_from_slice(bytes);
    }
}

/// What a connection must read next.
#[derive(Debug)]
pub(crate) enum Expect {
    /// This frame, byte for byte.
    Exact(Vec<u8>),
    /// These bytes, which begin a frame: EXEC's array header, whose
    /// elements (as many frames as its commands write, a SUBSCRIBE of two
    /// channels writing two) are expected one by one after it.
    Header(Vec<u8>),
    /// A reply of this shape, in this protocol, to this command.
    Reply {
        shape: Shape,
        proto: u8,
        command: String,
    },
    /// The reply to publish number `.0`.
    Published(usize),
    /// The confirmations of an unsubscribe without arguments: one per name
    /// held, in any order (Redis walks a hash table), the count falling by
    /// one each time.
    Unsubscribed {
        proto: u8,
        word: &'static [u8],
        names: Vec<Vec<u8>>,
        count: usize,
    },
    /// The frames of one message: its `message` first if the connection
    /// has the channel, then one `pmessage` per pattern it has, in any
    /// order.
    Delivery {
        channel: Option<Vec<u8>>,
        patterns: Vec<Vec<u8>>,
    },
}

#[derive(Debug)]
pub(crate) enum Shape {
    /// Any reply that does not pass for a pub/sub frame.
    Any,
    Error,
    Integer {
        low: i64,
        high: i64,
    },
    /// PUBSUB CHANNELS: every name of `must`, and others only from `may`.
    Channels {
        must: BTreeSet<Vec<u8>>,
        may: BTreeSet<Vec<u8>>,
    },
    /// PUBSUB NUMSUB: each name with a count in its range.
    NumSub {
        names: Vec<(Vec<u8>, i64, i64)>,
    },
}

/// A message published by the model, as the ring between workers carries it.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    seq: u64,
    kind: Kind,
    channel: Vec<u8>,
    payload: Vec<u8>,
    /// Some connection had the channel when it was published.
    to_channel: bool,
    /// The patterns someone had that match the channel.
    patterns: Vec<Vec<u8>>,
}

/// A PUBLISH's predicted reply: at most every subscription counted when it
/// ran, at least those of connections the same step did not close.
#[derive(Debug)]
struct Published {
    low: i64,
    high: i64,
}

/// The model of every connection, the rings between the two workers, and
/// the publishes made.
pub(crate) struct Model {
    pub(crate) clients: [Option<Client>; SLOTS],
    /// Messages on their way to worker `i`, oldest first.
    pub(crate) rings: [VecDeque<Msg>; 2],
    publishes: Vec<Published>,
    /// Model clock: ticks at each subscription and publish.
    clock: u64,
    pub(crate) requirepass: Option<Vec<u8>>,
    /// Every name subscribed to or published to, for the registry checks.
    pub(crate) names: BTreeSet<Vec<u8>>,
    /// Slots the hubs closed during the current step.
    closed_now: Vec<usize>,
    /// Clients a `CLIENT KILL` named, which their worker must close when it
    /// next drains its rings; and those it may have named (MAXAGE).
    pub(crate) kill_requests: BTreeSet<u64>,
    pub(crate) kill_maybe: BTreeSet<u64>,
    /// Messages of the current command with subscribers on its own worker.
    local: Vec<Msg>,
    /// `requirepass` after the current step, for a `CONFIG SET` in it.
    requirepass_after: Option<Vec<u8>>,
    /// The hub paused the EXEC being followed at this queued command.
    exec_stop: Option<usize>,
}

/// What a command did to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exec {
    Done,
    /// Reply, then close (QUIT, CLIENT KILL of itself).
    Close,
    /// Looked like HTTP: closed at once, no reply.
    Abort,
    /// EXEC paused on a publish waiting for ring room.
    Paused,
}

const NO_AUTH: &[&str] = &["quit", "reset", "hello", "auth"];
/// Run at once inside MULTI instead of being queued.
const RUN_IN_MULTI: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];
const PUBSUB_OK: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];
/// First elements of the pub/sub frames (a reply that looks like one of
/// them would be mistaken for it).
const PUSH_WORDS: &[&[u8]] = &[
    b"message",
    b"pmessage",
    b"smessage",
    b"subscribe",
    b"unsubscribe",
    b"psubscribe",
    b"punsubscribe",
    b"ssubscribe",
    b"sunsubscribe",
];

type Outcome = Result<(), String>;

impl Model {
    pub(crate) fn new(requirepass: Option<Vec<u8>>) -> Self {
        Model {
            clients: std::array::from_fn(|_| None),
            rings: Default::default(),
            publishes: Vec::new(),
            clock: 0,
            requirepass: requirepass.clone(),
            names: super::script::NAMES.iter().map(|n| n.to_vec()).collect(),
            closed_now: Vec::new(),
            kill_requests: BTreeSet::new(),
            kill_maybe: BTreeSet::new(),
            local: Vec::new(),
            requirepass_after: requirepass,
            exec_stop: None,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub(crate) fn client(&mut self, slot: usize) -> &mut Client {
        self.clients[slot]
            .as_mut()
            .unwrap_or_else(|| panic!("slot {slot} has no connection"))
    }

    /// The hub closed the connection (output limit, timeout, CLIENT KILL,
    /// hang-up): its subscriptions and queued output are gone.
    pub(crate) fn kill(&mut self, slot: usize) {
        if let Some(c) = self.clients[slot].as_mut() {
            c.state = State::Killed;
            c.subs = Default::default();
            c.expect.clear();
            c.pending = None;
            c.tx = None;
            c.held.clear();
        }
    }

    fn close_after_reply(&mut self, slot: usize) {
        let c = self.client(slot);
        if c.state == State::Open {
            c.state = State::Closing;
            c.subs = Default::default();
        }
    }

    // ----- input -------------------------------------------------------

    /// Follow one `Hub::input` call on `slot`: run every request the server
    /// took (the same bytes through the tap decoder), and check that the
    /// server stopped where and how the model says it must. `status` and
    /// `left` (bytes the server left in its buffer) are what the hub
    /// reported; `closed` the slots the hub closed meanwhile; `requirepass`
    /// the password configured once the call is over.
    pub(crate) fn follow_input(
        &mut self,
        slot: usize,
        status: Input,
        left: usize,
        closed: &[usize],
        requirepass: Option<Vec<u8>>,
        paused_exec: Option<usize>,
    ) -> Outcome {
        self.closed_now = closed.to_vec();
        self.requirepass_after = requirepass;
        let predicted = loop {
            let c = self.client(slot);
            if c.state != State::Open {
                break Input::Close;
            }
            let args = match c.pending.take() {
                Some(args) => args,
                None => match c.tap.decode_owned(&mut c.tapbuf, c.authenticated) {
                    Ok(Some(args)) => args.list().iter().map(Bytes::copy_from_slice).collect(),
                    Ok(None) => break Input::NeedMore,
                    Err(e) => {
                        self.protocol_error(slot, &e);
                        break Input::Close;
                    }
                },
            };
            let at_end = self.client(slot).tapbuf.len() == left;
            if let Some(k) = paused_exec.filter(|_| status == Input::Blocked && at_end) {
                let c = self.client(slot);
                let exec = c.exec_paused()
                    || (args[0].eq_ignore_ascii_case(b"exec")
                        && args.len() == 1
                        && c.tx.as_ref().is_some_and(|t| !t.dirty));
                if !exec {
                    return Err(format!(
                        "slot {slot}: an EXEC paused on {}, which runs none",
                        shown(&args)
                    ));
                }
                self.exec_stop = Some(k);
                let exec = self.execute(slot, &args);
                self.exec_stop = None;
                if exec != Exec::Paused {
                    return Err(format!(
                        "slot {slot}: EXEC paused at its command {k}, which the model does not reach"
                    ));
                }
                self.client(slot).pending = Some(args);
                break Input::Blocked;
            }
            if status == Input::Blocked && at_end {
                let publish = args.len() == 3
                    && (args[0].eq_ignore_ascii_case(b"publish")
                        || args[0].eq_ignore_ascii_case(b"spublish"));
                if !publish {
                    return Err(format!(
                        "slot {slot}: paused on {}, which is no publish",
                        shown(&args)
                    ));
                }
                self.client(slot).pending = Some(args);
                break Input::Blocked;
            }
            if self.execute(slot, &args) != Exec::Done {
                break Input::Close;
            }
            if at_end && status == Input::Close && closed.contains(&slot) {
                // Closed by what the command queued (an output limit).
                self.kill(slot);
                break Input::Close;
            }
        };
        let c = self.client(slot);
        if predicted != status || c.tapbuf.len() != left {
            return Err(format!(
                "slot {slot}: the hub said {status:?} with {left} bytes left, the model {predicted:?} with {}",
                c.tapbuf.len()
            ));
        }
        Ok(())
    }

    /// Redis replies to a malformed request and closes; the reply is
    /// silenced by `CLIENT REPLY OFF` or `SKIP` like any other.
    fn protocol_error(&mut self, slot: usize, e: &ProtocolError) {
        let c = self.client(slot);
        if c.reply_mode == ReplyMode::On {
            let mut reply = b"-ERR ".to_vec();
            reply.extend_from_slice(&e.message_bytes());
            reply.extend_from_slice(b"\r\n");
            c.expect.push_back(Expect::Exact(reply));
        }
        self.close_after_reply(slot);
    }

    /// One request, as `Hub::execute` runs it.
    fn execute(&mut self, slot: usize, args: &[Bytes]) -> Exec {
        let c = self.client(slot);
        // A paused EXEC goes on with the CLIENT REPLY state it had.
        let resuming = c.exec_paused();
        let mut skip = !resuming && c.reply_mode == ReplyMode::SkipNext;
        if skip {
            c.reply_mode = ReplyMode::On;
        }
        let (exec, reply) = if resuming {
            self.run_exec(slot, &mut skip)
        } else {
            self.dispatch(slot, args, &mut skip)
        };
        if exec == Exec::Abort {
            self.kill(slot);
            return exec;
        }
        let c = self.client(slot);
        if let Some(reply) = reply
            && !skip
            && c.reply_mode != ReplyMode::Off
        {
            c.expect.push_back(reply);
        }
        let worker = c.worker;
        // Nothing follows the reply that closes the connection.
        if exec == Exec::Close {
            self.close_after_reply(slot);
        }
        for m in std::mem::take(&mut self.local) {
            self.deliver(worker, &m);
        }
        exec
    }

    /// `commands::dispatch`: the checks in Redis's order, then the command.
    fn dispatch(&mut self, slot: usize, args: &[Bytes], skip: &mut bool) -> (Exec, Option<Expect>) {
        let error = |command: &str| {
            Some(Expect::Reply {
                shape: Shape::Error,
                proto: 2,
                command: command.to_string(),
            })
        };
        if args[0].eq_ignore_ascii_case(b"post") || args[0].eq_ignore_ascii_case(b"host:") {
            return (Exec::Abort, None);
        }
        // Refused by a check: an open transaction is spoiled, and a refused
        // EXEC discards it.
        let refuse = |c: &mut Client, name: &str| {
            if let Some(t) = c.tx.as_mut() {
                t.dirty = true;
            }
            if name == "exec" {
                c.tx = None;
            }
            (Exec::Done, error(name))
        };
        let Some(top) = find(COMMANDS, &args[0]).filter(|_| args[0].len() <= 32) else {
            return refuse(self.client(slot), "unknown");
        };
        let mut spec = top;
        if !top.subcommands.is_empty() && args.len() >= 2 {
            match find(top.subcommands, &args[1]) {
                Some(sub) => spec = sub,
                None => return refuse(self.client(slot), "unknown subcommand"),
            }
        }
        let argc = args.len() as i32;
        let arity_ok = if spec.arity > 0 {
            argc == spec.arity
        } else {
            argc >= -spec.arity
        };
        let c = self.client(slot);
        if !arity_ok || top.name == "debug" {
            return refuse(c, spec.name);
        }
        if !c.authenticated && !NO_AUTH.contains(&spec.name) {
            return refuse(c, spec.name);
        }
        if c.proto == 2 && c.in_pubsub() && !PUBSUB_OK.contains(&spec.name) {
            return refuse(c, spec.name);
        }
        if let Some(t) = c.tx.as_mut()
            && !RUN_IN_MULTI.contains(&spec.name)
        {
            if !t.dirty {
                t.queued.push((spec.name, args.to_vec()));
            }
            return (Exec::Done, Some(Expect::Exact(b"+QUEUED\r\n".to_vec())));
        }
        self.run(slot, spec.name, args, skip)
    }

    /// EXEC: every queued command from where it is, each one's output in
    /// place (its pushes, then its reply), until all ran or the hub paused
    /// it (`exec_stop`).
    fn run_exec(&mut self, slot: usize, skip: &mut bool) -> (Exec, Option<Expect>) {
        loop {
            let stop = self.exec_stop;
            let c = self.client(slot);
            let Some(t) = c.tx.as_mut() else {
                return (Exec::Done, None);
            };
            let j = t.next.unwrap_or(0);
            t.next = Some(j);
            let Some((name, args)) = t.queued.get(j).cloned() else {
                break;
            };
            if stop == Some(j) {
                t.skip = *skip;
                return (Exec::Paused, None);
            }
            let closing = t.closing;
            let mark = c.expect.len();
            let (exec, reply) = if name == "ssubscribe" {
                // EXEC may not block, so SSUBSCRIBE is refused there.
                let error = Expect::Reply {
                    shape: Shape::Error,
                    proto: 2,
                    command: name.into(),
                };
                (Exec::Done, Some(error))
            } else {
                self.run(slot, name, &args, skip)
            };
            let c = self.client(slot);
            if closing {
                c.expect.truncate(mark);
            } else if let Some(reply) = reply
                && !*skip
                && c.reply_mode != ReplyMode::Off
            {
                c.expect.push_back(reply);
            }
            let Some(t) = c.tx.as_mut() else {
                return (Exec::Done, None);
            };
            t.closing |= exec == Exec::Close;
            t.next = Some(j + 1);
        }
        let c = self.client(slot);
        let closing = c.tx.take().is_some_and(|t| t.closing);
        let held = std::mem::take(&mut c.held);
        if closing {
            return (Exec::Close, None);
        }
        c.expect.extend(held);
        (Exec::Done, None)
    }

    fn run(
        &mut self,
        slot: usize,
        name: &'static str,
        args: &[Bytes],
        skip: &mut bool,
    ) -> (Exec, Option<Expect>) {
        let proto = self.client(slot).proto;
        let reply = |shape| {
            Some(Expect::Reply {
                shape,
                proto,
                command: name.to_string(),
            })
        };
        let exact = |bytes: Vec<u8>| Some(Expect::Exact(bytes));
        let none = (Exec::Done, None);
        match name {
            "subscribe" => self.subscribe(slot, Kind::Channel, b"subscribe", args),
            "psubscribe" => self.subscribe(slot, Kind::Pattern, b"psubscribe", args),
            "ssubscribe" => self.subscribe(slot, Kind::Shard, b"ssubscribe", args),
            "unsubscribe" => self.unsubscribe(slot, Kind::Channel, b"unsubscribe", args),
            "punsubscribe" => self.unsubscribe(slot, Kind::Pattern, b"punsubscribe", args),
            "sunsubscribe" => self.unsubscribe(slot, Kind::Shard, b"sunsubscribe", args),
            "publish" => (Exec::Done, Some(self.publish(slot, Kind::Channel, args))),
            "spublish" => (Exec::Done, Some(self.publish(slot, Kind::Shard, args))),
            "ping" => {
                let c = self.client(slot);
                let mut out = Out::new();
                if args.len() > 2 {
                    return (Exec::Done, reply(Shape::Error));
                } else if c.proto == 2 && c.in_pubsub() {
                    out.array(2)
                        .bulk(b"pong")
                        .bulk(args.get(1).map_or(&b""[..], |m| m));
                } else if let Some(m) = args.get(1) {
                    out.bulk(m);
                } else {
                    out.simple(b"PONG");
                }
                (Exec::Done, exact(out.done()))
            }
            "echo" => (Exec::Done, exact(Out::new().bulk(&args[1]).done())),
            "quit" => (Exec::Close, exact(b"+OK\r\n".to_vec())),
            "multi" => {
                let c = self.client(slot);
                if c.tx.is_some() {
                    return (Exec::Done, reply(Shape::Error));
                }
                c.tx = Some(Tx::default());
                (Exec::Done, exact(b"+OK\r\n".to_vec()))
            }
            "discard" => {
                let c = self.client(slot);
                if c.tx.take().is_none() {
                    return (Exec::Done, reply(Shape::Error));
                }
                (Exec::Done, exact(b"+OK\r\n".to_vec()))
            }
            "exec" => {
                let c = self.client(slot);
                let Some(t) = c.tx.as_ref() else {
                    return (Exec::Done, reply(Shape::Error));
                };
                if t.dirty {
                    c.tx = None;
                    return (Exec::Done, reply(Shape::Error));
                }
                if !*skip && c.reply_mode != ReplyMode::Off {
                    let header = format!("*{}\r\n", t.queued.len()).into_bytes();
                    c.expect.push_back(Expect::Header(header));
                }
                self.run_exec(slot, skip)
            }
            "watch" if self.client(slot).tx.is_some() => (Exec::Done, reply(Shape::Error)),
            "watch" | "unwatch" => (Exec::Done, exact(b"+OK\r\n".to_vec())),
            "reset" => {
                self.client(slot).tx = None;
                self.unsubscribe_all(slot);
                let authenticated = self.requirepass.is_none();
                let c = self.client(slot);
                c.proto = 2;
                c.reply_mode = ReplyMode::On;
                c.authenticated = authenticated;
                (Exec::Done, exact(b"+RESET\r\n".to_vec()))
            }
            "hello" => (Exec::Done, Some(self.hello(slot, args))),
            "auth" => (Exec::Done, Some(self.auth(slot, args))),
            "client|reply" => {
                let c = self.client(slot);
                let mode = &args[2];
                if mode.eq_ignore_ascii_case(b"on") {
                    c.reply_mode = ReplyMode::On;
                    *skip = false;
                    (Exec::Done, exact(b"+OK\r\n".to_vec()))
                } else if mode.eq_ignore_ascii_case(b"off") {
                    c.reply_mode = ReplyMode::Off;
                    none
                } else if mode.eq_ignore_ascii_case(b"skip") {
                    if c.reply_mode != ReplyMode::Off {
                        c.reply_mode = ReplyMode::SkipNext;
                    }
                    none
                } else {
                    (Exec::Done, reply(Shape::Error))
                }
            }
            "client|kill" => {
                let (exec, reply) = self.client_kill(slot, &args[2..]);
                (exec, Some(reply))
            }
            "pubsub|channels" | "pubsub|shardchannels" => {
                if args.len() > 3 {
                    return (Exec::Done, reply(Shape::Error));
                }
                let kind = if name == "pubsub|channels" {
                    Kind::Channel
                } else {
                    Kind::Shard
                };
                let filter = args.get(2).map(|p| p.to_vec());
                let keep = |n: &Vec<u8>| filter.as_ref().is_none_or(|p| glob::matches(p, n));
                let (must, may) = self.held_names(kind);
                let must = must.into_iter().filter(keep).collect();
                let may = may.into_iter().filter(keep).collect();
                (Exec::Done, reply(Shape::Channels { must, may }))
            }
            "pubsub|numsub" | "pubsub|shardnumsub" => {
                let kind = if name == "pubsub|numsub" {
                    Kind::Channel
                } else {
                    Kind::Shard
                };
                let names = args[2..]
                    .iter()
                    .map(|n| {
                        let (low, high) = self.holders(kind, n);
                        (n.to_vec(), low, high)
                    })
                    .collect();
                (Exec::Done, reply(Shape::NumSub { names }))
            }
            "pubsub|numpat" => {
                let (must, may) = self.held_names(Kind::Pattern);
                let (low, high) = (must.len() as i64, may.len() as i64);
                (Exec::Done, reply(Shape::Integer { low, high }))
            }
            "config|set" => {
                // The password only matters to later commands; a step with
                // two CONFIG SETs is taken as setting it at the first.
                self.requirepass = self.requirepass_after.clone();
                (Exec::Done, reply(Shape::Any))
            }
            _ => (Exec::Done, reply(Shape::Any)),
        }
    }

    fn push_frame(proto: u8, word: &[u8], name: Option<&[u8]>, count: usize) -> Expect {
        let mut out = Out::new();
        out.push(3, proto).bulk(word);
        match name {
            Some(n) => out.bulk(n),
            None => out.null(proto),
        };
        Expect::Exact(out.integer(count as i64).done())
    }

    fn subscribe(
        &mut self,
        slot: usize,
        kind: Kind,
        word: &'static [u8],
        args: &[Bytes],
    ) -> (Exec, Option<Expect>) {
        for name in &args[1..] {
            self.names.insert(name.to_vec());
            let since = self.tick();
            let c = self.client(slot);
            if c.held(kind, name).is_none() {
                c.subs[kind as usize].push(Sub {
                    name: name.to_vec(),
                    since,
                });
            }
            let frame = Self::push_frame(c.proto, word, Some(name), c.count(kind));
            c.expect.push_back(frame);
        }
        (Exec::Done, None)
    }

    fn unsubscribe(
        &mut self,
        slot: usize,
        kind: Kind,
        word: &'static [u8],
        args: &[Bytes],
    ) -> (Exec, Option<Expect>) {
        let c = self.client(slot);
        if args.len() > 1 {
            for name in &args[1..] {
                c.subs[kind as usize].retain(|s| s.name != name[..]);
                let frame = Self::push_frame(c.proto, word, Some(name), c.count(kind));
                c.expect.push_back(frame);
            }
            return (Exec::Done, None);
        }
        let held: Vec<Vec<u8>> = std::mem::take(&mut c.subs[kind as usize])
            .into_iter()
            .map(|s| s.name)
            .collect();
        let rest = c.count(kind);
        let proto = c.proto;
        if held.is_empty() {
            c.expect
                .push_back(Self::push_frame(proto, word, None, rest));
        } else {
            c.expect.push_back(Expect::Unsubscribed {
                proto,
                word,
                count: rest + held.len() - 1,
                names: held,
            });
        }
        (Exec::Done, None)
    }

    fn unsubscribe_all(&mut self, slot: usize) {
        self.client(slot).subs = Default::default();
    }

    /// Names held by some connection: those held by one the current step
    /// did not close (`must`), and all (`may`).
    fn held_names(&self, kind: Kind) -> (BTreeSet<Vec<u8>>, BTreeSet<Vec<u8>>) {
        let (mut must, mut may) = (BTreeSet::new(), BTreeSet::new());
        for (slot, c) in self.clients.iter().enumerate() {
            let Some(c) = c else { continue };
            for s in &c.subs[kind as usize] {
                may.insert(s.name.clone());
                if !self.closed_now.contains(&slot) {
                    must.insert(s.name.clone());
                }
            }
        }
        (must, may)
    }

    /// Holders of `name`: at least (not closed this step), at most.
    fn holders(&self, kind: Kind, name: &[u8]) -> (i64, i64) {
        let (mut low, mut high) = (0, 0);
        for (slot, c) in self.clients.iter().enumerate() {
            if c.as_ref().is_some_and(|c| c.held(kind, name).is_some()) {
                high += 1;
                if !self.closed_now.contains(&slot) {
                    low += 1;
                }
            }
        }
        (low, high)
    }

    /// PUBLISH / SPUBLISH: count the receivers, send the message to the
    /// other worker's ring if it has any, keep it for this worker's.
    fn publish(&mut self, slot: usize, kind: Kind, args: &[Bytes]) -> Expect {
        self.names.insert(args[1].to_vec());
        let seq = self.tick();
        let from = self.client(slot).worker;
        let channel = args[1].to_vec();
        let mut workers = [false; 2];
        let (mut low, mut high) = (0, 0);
        let mut count = |slot: usize, worker: usize, workers: &mut [bool; 2]| {
            workers[worker] = true;
            high += 1;
            if !self.closed_now.contains(&slot) {
                low += 1;
            }
        };
        let mut to_channel = false;
        let mut patterns = BTreeSet::new();
        for (s, c) in self.clients.iter().enumerate() {
            let Some(c) = c else { continue };
            if c.held(kind, &channel).is_some() {
                to_channel = true;
                count(s, c.worker, &mut workers);
            }
            if kind == Kind::Channel {
                for p in &c.subs[Kind::Pattern as usize] {
                    if glob::matches(&p.name, &channel) {
                        patterns.insert(p.name.clone());
                        count(s, c.worker, &mut workers);
                    }
                }
            }
        }
        let index = self.publishes.len();
        self.publishes.push(Published { low, high });
        if high > 0 {
            let m = Msg {
                seq,
                kind,
                channel,
                payload: args[2].to_vec(),
                to_channel,
                patterns: patterns.into_iter().collect(),
            };
            for (w, ring) in self.rings.iter_mut().enumerate() {
                if workers[w] && w != from {
                    ring.push_back(m.clone());
                }
            }
            if workers[from] {
                self.local.push(m);
            }
        }
        Expect::Published(index)
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`, as Redis 7.2.
    fn hello(&mut self, slot: usize, args: &[Bytes]) -> Expect {
        let error = Expect::Reply {
            shape: Shape::Error,
            proto: self.client(slot).proto,
            command: "hello".into(),
        };
        let mut proto = self.client(slot).proto;
        if let Some(v) = args.get(1) {
            match parse_i64(v) {
                Some(2) => proto = 2,
                Some(3) => proto = 3,
                _ => return error,
            }
        }
        let (mut auth, mut setname) = (None, None);
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
                return error;
            }
        }
        if let Some((user, pass)) = auth {
            if !self.credentials_ok(user, pass) {
                return error;
            }
            let c = self.client(slot);
            c.authenticated = true;
            c.ever_authenticated = true;
        }
        let c = self.client(slot);
        if !c.authenticated || setname.is_some_and(|n| !n.iter().all(|b| (b'!'..=b'~').contains(b)))
        {
            return error;
        }
        c.proto = proto;
        let mut out = Out::new();
        out.map(7, proto)
            .bulk(b"server")
            .bulk(b"redis")
            .bulk(b"version")
            .bulk(ringcast_core::REDIS_VERSION.as_bytes())
            .bulk(b"proto")
            .integer(i64::from(proto))
            .bulk(b"id")
            .integer(c.id as i64)
            .bulk(b"mode")
            .bulk(b"standalone")
            .bulk(b"role")
            .bulk(b"master")
            .bulk(b"modules")
            .array(0);
        Expect::Exact(out.done())
    }

    fn credentials_ok(&self, user: &[u8], pass: &[u8]) -> bool {
        user == b"default" && self.requirepass.as_ref().is_none_or(|p| p[..] == *pass)
    }

    fn auth(&mut self, slot: usize, args: &[Bytes]) -> Expect {
        let error = Expect::Reply {
            shape: Shape::Error,
            proto: 2,
            command: "auth".into(),
        };
        let (user, pass): (&[u8], &[u8]) = match args.len() {
            2 if self.requirepass.is_some() => (b"default", &args[1]),
            3 => (&args[1], &args[2]),
            _ => return error,
        };
        if !self.credentials_ok(user, pass) {
            return error;
        }
        let c = self.client(slot);
        c.authenticated = true;
        c.ever_authenticated = true;
        Expect::Exact(b"+OK\r\n".to_vec())
    }

    /// `CLIENT KILL <filter>`: the reply, and whether it closes the
    /// connection running it. The others it names are asked to close; their
    /// worker closes them when it next drains its rings ([`Model::drained`]
    /// checks it did).
    fn client_kill(&mut self, slot: usize, filter: &[Bytes]) -> (Exec, Expect) {
        let error = Expect::Reply {
            shape: Shape::Error,
            proto: 2,
            command: "client|kill".into(),
        };
        let Some(filter) = KillFilter::parse(filter) else {
            return (Exec::Done, error);
        };
        let me = self.client(slot).id;
        let (mut sure, mut maybe) = (Vec::new(), Vec::new());
        for c in self.clients.iter().flatten() {
            // One being closed was killed once already and is not counted
            // again; one perhaps asked to close (MAXAGE) perhaps is not.
            if c.state == State::Killed || self.kill_requests.contains(&c.id) {
                continue;
            }
            let uncertain = self.kill_maybe.contains(&c.id);
            match filter.matches(c, me) {
                Some(true) if !uncertain => sure.push(c.id),
                Some(_) => maybe.push(c.id),
                None => {}
            }
        }
        let exec = if sure.contains(&me) {
            Exec::Close
        } else {
            Exec::Done
        };
        self.kill_requests
            .extend(sure.iter().filter(|&&id| id != me));
        self.kill_maybe.extend(maybe.iter().filter(|&&id| id != me));
        let reply = match (filter.old_style, sure.len(), maybe.len()) {
            (true, 0, 0) => error,
            (true, _, _) => Expect::Exact(b"+OK\r\n".to_vec()),
            (false, sure, maybe) => Expect::Reply {
                shape: Shape::Integer {
                    low: sure as i64,
                    high: (sure + maybe) as i64,
                },
                proto: 2,
                command: "client|kill".into(),
            },
        };
        (exec, reply)
    }

    // ----- delivery ----------------------------------------------------

    /// Queue `m` for every connection of `worker` that holds a matching
    /// subscription made before the publish (invariant 1: one made while the
    /// message was on its way was not counted, and gets nothing).
    fn deliver(&mut self, worker: usize, m: &Msg) {
        let counted = |s: &Sub| s.since < m.seq;
        for c in self.clients.iter_mut().flatten() {
            if c.worker != worker || c.state != State::Open {
                continue;
            }
            let channel = m
                .to_channel
                .then(|| c.held(m.kind, &m.channel))
                .flatten()
                .filter(|s| counted(s))
                .map(|_| message_frame(c.proto, m));
            let patterns: Vec<Vec<u8>> = m
                .patterns
                .iter()
                .filter(|p| c.held(Kind::Pattern, p).is_some_and(counted))
                .map(|p| pmessage_frame(c.proto, p, m))
                .collect();
            if channel.is_some() || !patterns.is_empty() {
                let delivery = Expect::Delivery { channel, patterns };
                if c.exec_paused() {
                    // It goes out after the EXEC reply.
                    c.held.push(delivery);
                } else {
                    c.expect.push_back(delivery);
                }
            }
        }
    }

    /// Worker `worker` took `n` messages from its inbound ring.
    pub(crate) fn drained(&mut self, worker: usize, n: usize) -> Outcome {
        if n > self.rings[worker].len() {
            return Err(format!(
                "worker {worker} drained {n} messages, {} were sent to it",
                self.rings[worker].len()
            ));
        }
        let taken: Vec<Msg> = self.rings[worker].drain(..n).collect();
        for m in &taken {
            self.deliver(worker, m);
        }
        Ok(())
    }

    // ----- output ------------------------------------------------------

    /// The writer of `slot` took `bytes`: every whole frame in them must be
    /// what the connection expects next.
    pub(crate) fn output(&mut self, slot: usize, bytes: &[u8]) -> Outcome {
        let c = self.client(slot);
        c.read.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            let c = self.client(slot);
            if at == c.read.len() {
                break Ok(());
            }
            if let Some(Expect::Header(header)) = c.expect.front() {
                let rest = &c.read[at..];
                if rest.starts_with(header) {
                    at += header.len();
                    c.expect.pop_front();
                    continue;
                }
                if header.starts_with(rest) {
                    break Ok(());
                }
                break Err(format!(
                    "slot {slot}: expected {:?}, read {:?}",
                    header.escape_ascii().to_string(),
                    rest.escape_ascii().to_string()
                ));
            }
            match super::resp::parse(&c.read[at..]) {
                Ok(Some((frame, n))) => {
                    let raw = c.read[at..at + n].to_vec();
                    at += n;
                    if let Err(e) = self.expect_frame(slot, &frame, &raw) {
                        break Err(format!(
                            "slot {slot}: {e}; read {:?}",
                            raw.escape_ascii().to_string()
                        ));
                    }
                }
                Ok(None) => break Err(format!("slot {slot}: output ends inside a frame")),
                Err(e) => {
                    break Err(format!(
                        "slot {slot}: malformed reply ({e}): {:?}",
                        c.read[at..].escape_ascii().to_string()
                    ));
                }
            }
        };
        self.client(slot).read.drain(..at);
        result
    }

    fn expect_frame(&mut self, slot: usize, frame: &Frame, raw: &[u8]) -> Outcome {
        let Model {
            clients, publishes, ..
        } = self;
        let Some(c) = clients[slot].as_mut() else {
            return Err("no connection".into());
        };
        let Some(front) = c.expect.front_mut() else {
            return Err("nothing more was expected".into());
        };
        match front {
            Expect::Header(_) => return Err("a frame where an EXEC header belongs".into()),
            Expect::Exact(bytes) => {
                if bytes[..] != *raw {
                    return Err(format!("expected {:?}", bytes.escape_ascii().to_string()));
                }
            }
            Expect::Reply {
                shape,
                proto,
                command,
            } => {
                super::resp::speaks(frame, *proto)?;
                check_shape(shape, frame).map_err(|e| format!("reply to {command}: {e}"))?;
            }
            Expect::Published(i) => {
                let p = &publishes[*i];
                match frame {
                    Frame::Integer(n) if (p.low..=p.high).contains(n) => {}
                    _ => {
                        return Err(format!(
                            "expected the reply to a publish, {}..={}",
                            p.low, p.high
                        ));
                    }
                }
            }
            Expect::Unsubscribed {
                proto,
                word,
                names,
                count,
            } => {
                let elements = frame.elements().unwrap_or(&[]);
                let ok = matches!(frame, Frame::Push(_)) == (*proto == 3)
                    && elements.len() == 3
                    && elements[0].bulk() == Some(*word)
                    && elements[2] == Frame::Integer(*count as i64);
                let name = elements.get(1).and_then(Frame::bulk);
                let Some(at) = names
                    .iter()
                    .position(|n| Some(&n[..]) == name)
                    .filter(|_| ok)
                else {
                    return Err(format!(
                        "expected {} of one of {:?}, count {count}",
                        String::from_utf8_lossy(word),
                        names
                            .iter()
                            .map(|n| n.escape_ascii().to_string())
                            .collect::<Vec<_>>()
                    ));
                };
                names.swap_remove(at);
                if !names.is_empty() {
                    *count -= 1;
                    return Ok(());
                }
            }
            Expect::Delivery { channel, patterns } => {
                if let Some(bytes) = channel.take() {
                    if bytes[..] != *raw {
                        return Err(format!("expected {:?}", bytes.escape_ascii().to_string()));
                    }
                    if !patterns.is_empty() {
                        return Ok(());
                    }
                } else if let Some(at) = patterns.iter().position(|b| b[..] == *raw) {
                    patterns.swap_remove(at);
                    if !patterns.is_empty() {
                        return Ok(());
                    }
                } else {
                    return Err(format!(
                        "expected one of {:?}",
                        patterns
                            .iter()
                            .map(|b| b.escape_ascii().to_string())
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        c.expect.pop_front();
        Ok(())
    }

    /// The writer of `slot` was told to close.
    pub(crate) fn writer_closed(&mut self, slot: usize) -> Outcome {
        let c = self.client(slot);
        match c.state {
            State::Killed => Ok(()),
            State::Closing if c.expect.is_empty() => Ok(()),
            State::Closing => Err(format!(
                "slot {slot}: closed before sending {:?}",
                c.expect.front()
            )),
            State::Open => Err(format!(
                "slot {slot}: the writer of an open connection closed"
            )),
        }
    }

    /// The writer of `slot` has nothing to send and waits.
    pub(crate) fn writer_idle(&mut self, slot: usize) -> Outcome {
        match self.client(slot).state {
            State::Open => Ok(()),
            state => Err(format!(
                "slot {slot}: the writer waits on a {state:?} connection"
            )),
        }
    }

    /// After everything was written and every ring drained: nothing a
    /// connection must read is missing.
    pub(crate) fn all_delivered(&self) -> Outcome {
        for (slot, c) in self.clients.iter().enumerate() {
            let Some(c) = c else { continue };
            if let Some(missing) = c.expect.front() {
                return Err(format!("slot {slot} never read {missing:?}"));
            }
        }
        Ok(())
    }
}

/// The clients a `CLIENT KILL` names, as ringcast's `KillFilter` reads them.
#[derive(Default)]
struct KillFilter {
    old_style: bool,
    id: Option<u64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    /// Some(true): pub/sub clients only; Some(false): the others; None: any
    /// (`TYPE master|replica` names no one: `nobody`).
    pubsub: Option<bool>,
    nobody: bool,
    max_age: u64,
    skipme: bool,
}

impl KillFilter {
    /// None for a filter ringcast answers with an error.
    fn parse(args: &[Bytes]) -> Option<KillFilter> {
        if let [addr] = args {
            return Some(KillFilter {
                old_style: true,
                addr: Some(addr.to_vec()),
                ..KillFilter::default()
            });
        }
        if !args.len().is_multiple_of(2) {
            return None;
        }
        let mut f = KillFilter {
            skipme: true,
            ..KillFilter::default()
        };
        for pair in args.chunks(2) {
            let (opt, val) = (&pair[0], &pair[1]);
            let is = |name: &[u8]| opt.eq_ignore_ascii_case(name);
            let lower = val.to_ascii_lowercase();
            if is(b"id") {
                f.id = Some(parse_i64(val).filter(|&n| n > 0)? as u64);
            } else if is(b"addr") {
                f.addr = Some(val.to_vec());
            } else if is(b"laddr") {
                f.laddr = Some(val.to_vec());
            } else if is(b"skipme") {
                f.skipme = match &lower[..] {
                    b"yes" => true,
                    b"no" => false,
                    _ => return None,
                };
            } else if is(b"type") {
                match &lower[..] {
                    b"normal" => f.pubsub = Some(false),
                    b"pubsub" => f.pubsub = Some(true),
                    b"master" | b"replica" | b"slave" => f.nobody = true,
                    _ => return None,
                }
            } else if is(b"user") {
                if val[..] != *b"default" {
                    return None;
                }
            } else if is(b"maxage") {
                f.max_age = parse_i64(val).filter(|&n| n >= 0)? as u64;
            } else {
                return None;
            }
        }
        Some(f)
    }

    /// Some(true) if it names `c`, Some(false) if it may (its age is within
    /// a second of MAXAGE: the server looked at the clock a moment apart),
    /// None if not.
    fn matches(&self, c: &Client, me: u64) -> Option<bool> {
        let named = !self.nobody
            && self.id.is_none_or(|id| id == c.id)
            && self
                .addr
                .as_ref()
                .is_none_or(|a| a[..] == *c.addr.as_bytes())
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| a[..] == *b"127.0.0.1:6379")
            && self.pubsub.is_none_or(|p| p == c.in_pubsub())
            && !(self.skipme && c.id == me);
        if !named {
            return None;
        }
        let age = c.created.elapsed().as_secs();
        match self.max_age {
            0 => Some(true),
            n if age >= n => Some(true),
            n if age + 1 >= n => Some(false),
            _ => None,
        }
    }
}

fn find(table: &'static [CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    table.iter().find(|c| {
        let called = c.name.split_once('|').map_or(c.name, |(_, sub)| sub);
        called.as_bytes().eq_ignore_ascii_case(name)
    })
}

/// ringcast's integer arguments (`string2ll`-like).
fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 || arg[0] == b'+' {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn message_frame(proto: u8, m: &Msg) -> Vec<u8> {
    let word: &[u8] = if m.kind == Kind::Shard {
        b"smessage"
    } else {
        b"message"
    };
    Out::new()
        .push(3, proto)
        .bulk(word)
        .bulk(&m.channel)
        .bulk(&m.payload)
        .done()
}

fn pmessage_frame(proto: u8, pattern: &[u8], m: &Msg) -> Vec<u8> {
    Out::new()
        .push(4, proto)
        .bulk(b"pmessage")
        .bulk(pattern)
        .bulk(&m.channel)
        .bulk(&m.payload)
        .done()
}

fn check_shape(shape: &Shape, frame: &Frame) -> Outcome {
    let looks_pushed = frame.elements().is_some_and(|e| {
        matches!(e.len(), 3 | 4) && e[0].bulk().is_some_and(|w| PUSH_WORDS.contains(&w))
    });
    match shape {
        Shape::Any if matches!(frame, Frame::Push(_)) || looks_pushed => {
            Err("a pub/sub frame where a reply was expected".into())
        }
        Shape::Any => Ok(()),
        Shape::Error if matches!(frame, Frame::Error(_)) => Ok(()),
        Shape::Error => Err("expected an error".into()),
        Shape::Integer { low, high } => match frame {
            Frame::Integer(n) if (low..=high).contains(&n) => Ok(()),
            _ => Err(format!("expected an integer in {low}..={high}")),
        },
        Shape::Channels { must, may } => {
            let mut listed = BTreeSet::new();
            for e in frame.elements().unwrap_or(&[]) {
                match e.bulk() {
                    Some(name) if may.contains(name) && listed.insert(name.to_vec()) => {}
                    _ => return Err(format!("{e:?} is not a channel held, or is listed twice")),
                }
            }
            match frame {
                Frame::Array(Some(_)) | Frame::Set(_) if must.is_subset(&listed) => Ok(()),
                _ => Err(format!("expected at least {must:?}")),
            }
        }
        Shape::NumSub { names } => {
            let e = frame.elements().unwrap_or(&[]);
            let ok = matches!(frame, Frame::Array(Some(_)))
                && e.len() == 2 * names.len()
                && names.iter().enumerate().all(|(i, (name, low, high))| {
                    e[2 * i].bulk() == Some(&name[..])
                        && matches!(&e[2 * i + 1], Frame::Integer(n) if (low..=high).contains(&n))
                });
            if ok {
                Ok(())
            } else {
                Err(format!("expected counts in {names:?}"))
            }
        }
    }
}

fn shown(args: &[Bytes]) -> String {
    let words: Vec<String> = args.iter().map(|a| a.escape_ascii().to_string()).collect();
    words.join(" ")
}
