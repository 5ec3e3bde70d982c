//! Two workers' hubs sharing one `Shared` and one mesh, driven as the
//! server drives them, without sockets (the `World` of the hub's own
//! tests, through the public API only), with the model following along.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_core::config::Config;
use ringcast_core::frame::SharedMessage;
use ringcast_core::hub::{Hub, Input, Output};
use ringcast_core::registry::{Lookup, Namespace};
use ringcast_core::resp::decode::{Decoder, RequestLimits};
use ringcast_core::shared::{ServerInfo, Shared};

use super::model::{Client, KINDS, Kind, Model, Origin, State};
use super::script::{Deliver, PASSWORD, Request, SLOTS, Script, Step};

pub(crate) const WORKERS: usize = 2;

/// What a step did that may make a hub close connections.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// The client of this slot hung up.
    Hangup(usize),
    /// The hub took input from this slot.
    Input(usize),
    /// This worker drained its rings.
    Drain(usize),
    /// This worker's cron ran.
    Cron(usize),
    None,
}

/// Rounds of reading, retrying and draining at the end before a paused
/// publisher counts as stuck.
const SETTLE_ROUNDS: usize = 10_000;

type Outcome = Result<(), String>;

pub(crate) struct World {
    hubs: Vec<Hub>,
    shared: Arc<Shared>,
    pub(crate) model: Model,
    /// Each worker's clock, from `start`.
    clocks: [Duration; WORKERS],
    start: Instant,
    connects: u64,
}

impl World {
    pub(crate) fn new(mut config: Config) -> Self {
        // The model keeps each client on the worker it connected to; moves
        // between workers have their own tests (`hub::placement`).
        config.migrate_connections = false;
        let requirepass = config.requirepass.as_ref().map(|p| p.as_bytes().to_vec());
        let (doorbells, endpoints) = ringcast_core::mesh::mesh::<SharedMessage>(
            WORKERS,
            config.ring_capacity,
            config.bytes_per_ring(WORKERS),
        );
        let info = ServerInfo {
            started: Instant::now(),
            pid: 1,
            run_id: "0".repeat(40),
            port: 6379,
            workers: WORKERS,
            io_backend: "fuzz".into(),
            config_file: String::new(),
            executable: String::new(),
        };
        let shared = Arc::new(Shared::new(config, info, doorbells));
        let mut hubs: Vec<Hub> = endpoints
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let mut hub = Hub::new(i, shared.clone(), e);
                // The model predicts turns that end by bytes alone.
                hub.set_turn_time(std::time::Duration::MAX);
                hub
            })
            .collect();
        // After the hubs were made, so their clocks only move forward.
        let start = Instant::now();
        for hub in &mut hubs {
            hub.cron_at(start);
        }
        World {
            hubs,
            shared,
            model: Model::new(requirepass),
            clocks: [Duration::ZERO; WORKERS],
            start,
            connects: 0,
        }
    }

    /// Run one step, then check what must hold at every instant.
    pub(crate) fn step(&mut self, step: &Step, script: &mut Script<'_>) -> Outcome {
        match *step {
            Step::Connect { slot, worker } => {
                if self.model.clients[slot].is_none() {
                    self.connect(slot, worker, script)?;
                }
            }
            Step::Write {
                slot,
                worker,
                ref bytes,
                deliver,
            } => {
                if self.model.clients[slot].is_none() {
                    self.connect(slot, worker, script)?;
                }
                self.model.client(slot).unsent.extend(bytes.encode());
                let n = match deliver {
                    Deliver::All => usize::MAX,
                    Deliver::Hold => 0,
                    Deliver::Bytes(n) => n,
                };
                if n > 0 {
                    self.feed(slot, n)?;
                }
            }
            Step::Feed { slot, bytes } => {
                if self.model.clients[slot].is_some() {
                    self.feed(slot, bytes)?;
                }
            }
            Step::Drain { worker } => {
                self.drain(worker)?;
            }
            Step::Read { slot, hold } => {
                if self.model.clients[slot].is_some() {
                    self.read(slot, hold)?;
                }
            }
            Step::ReadAll => {
                for slot in 0..SLOTS {
                    if self.model.clients[slot].is_some() {
                        self.read(slot, false)?;
                    }
                }
            }
            Step::Cron { workers, by } => {
                for &w in workers {
                    self.cron(w, by)?;
                }
            }
            Step::Hangup { slot } => {
                if let Some(c) = &self.model.clients[slot] {
                    let w = c.worker;
                    self.hubs[w].close(c.key);
                    self.closed(w, Cause::Hangup(slot))?;
                }
            }
            Step::Disconnect { slot } => self.disconnect(slot)?,
            Step::Crowd { worker, kind, name } => self.crowd(worker, kind, name, script)?,
        }
        self.check_invariants()
    }

    fn connect(&mut self, slot: usize, worker: usize, script: &mut Script<'_>) -> Outcome {
        self.connects += 1;
        let peer = SocketAddr::from(([127, 0, 0, 1], 20_000 + self.connects as u16));
        let local = SocketAddr::from(([127, 0, 0, 1], 6379));
        let key = self.hubs[worker].connect(peer, local);
        let id = self.connects;
        let meta = self
            .shared
            .clients
            .get(id)
            .ok_or_else(|| format!("client {id} is not in the directory"))?;
        if meta.worker.load(std::sync::atomic::Ordering::Relaxed) != worker
            || meta.addr != peer.to_string()
        {
            return Err(format!("client {id} is listed as {meta:?}"));
        }
        let config = self.shared.config.load();
        let decoder = Decoder::new(RequestLimits {
            max_bulk: config.proto_max_bulk_len,
            ..RequestLimits::default()
        });
        let authenticated = config.requirepass.is_none();
        let origin = Origin {
            worker,
            key,
            id,
            addr: peer.to_string(),
            created: meta.created,
        };
        self.model.clients[slot] = Some(Client::new(
            origin,
            self.clocks[worker],
            authenticated,
            decoder,
        ));
        script.targets[slot] = Some((id, peer.to_string()));
        Ok(())
    }

    /// Give the server up to `n` of the bytes the client wrote, and follow
    /// what it makes of them.
    fn feed(&mut self, slot: usize, n: usize) -> Outcome {
        let c = self.model.client(slot);
        let n = n.min(c.unsent.len());
        let bytes: Vec<u8> = c.unsent.drain(..n).collect();
        c.give(&bytes);
        let (w, key) = (c.worker, c.key);
        let hub = &mut self.hubs[w];
        // The reader reports each read before handing the bytes over.
        if n > 0 {
            c.last_interaction = self.clocks[w];
            if !hub.received(key, n, c.inbuf.len()) {
                hub.close(key);
                self.model.kill(slot);
            }
        }
        let hard_before = self.shared.config.load().output_limit_pubsub.hard;
        let c = self.model.client(slot);
        let status = hub.input(key, &mut c.inbuf);
        super::trace(|| format!("  slot {slot} sends {n} bytes to worker {w}: {status:?}"));
        hub.flush_rings();
        if status == Input::Blocked {
            hub.park_reader(key, Waker::noop());
        }
        let left = c.inbuf.len();
        let closed = self.take_closed(w);
        let requirepass = self
            .shared
            .config
            .load()
            .requirepass
            .as_ref()
            .map(|p| p.as_bytes().to_vec());
        let paused_exec = self.hubs[w].paused_exec(key);
        self.model
            .follow_input(slot, status, left, &closed, requirepass, paused_exec)?;
        self.check_closed(&closed, Cause::Input(slot), hard_before)?;
        for s in closed {
            self.model.kill(s);
        }
        Ok(())
    }

    fn drain(&mut self, w: usize) -> Outcome {
        let n = self.hubs[w].drain_inbound();
        if n > 0 {
            super::trace(|| format!("  worker {w} drained {n} messages"));
        }
        self.model.drained(w, n)?;
        self.closed(w, Cause::Drain(w))
    }

    fn cron(&mut self, w: usize, by: Duration) -> Outcome {
        self.clocks[w] += by;
        self.hubs[w].cron_at(self.start + self.clocks[w]);
        self.closed(w, Cause::Cron(w))
    }

    /// Let the writer of `slot` take its output; with `hold`, leave the
    /// write in flight.
    fn read(&mut self, slot: usize, hold: bool) -> Outcome {
        let c = self.model.client(slot);
        let (w, key) = (c.worker, c.key);
        if c.in_flight > 0 {
            self.hubs[w].sent(key, c.in_flight);
            c.in_flight = 0;
            c.last_interaction = self.clocks[w];
        }
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            let mut batch: Vec<Bytes> = Vec::new();
            match self.hubs[w].poll_output(key, &mut cx, &mut batch) {
                Poll::Ready(Output::Write(n)) => {
                    let bytes: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
                    if bytes.len() != n || n == 0 {
                        return Err(format!(
                            "slot {slot}: a write of {n} bytes holds {}",
                            bytes.len()
                        ));
                    }
                    super::trace(|| {
                        format!("  slot {slot} reads {:?}", bytes.escape_ascii().to_string())
                    });
                    self.model.output(slot, &bytes)?;
                    if hold {
                        self.model.client(slot).in_flight = n;
                        return Ok(());
                    }
                    self.hubs[w].sent(key, n);
                    self.model.client(slot).last_interaction = self.clocks[w];
                }
                Poll::Ready(Output::Close) => return self.model.writer_closed(slot),
                Poll::Ready(Output::Depart) => {
                    return Err(format!("slot {slot}: its writer was told to depart"));
                }
                Poll::Pending => return self.model.writer_idle(slot),
            }
        }
    }

    fn disconnect(&mut self, slot: usize) -> Outcome {
        if let Some(c) = self.model.clients[slot].take() {
            self.model.kill_requests.remove(&c.id);
            self.model.kill_maybe.remove(&c.id);
            self.hubs[c.worker].disconnect(c.key);
            self.closed(c.worker, Cause::None)?;
        }
        Ok(())
    }

    /// Fill the empty slots with subscribers of one worker.
    fn crowd(
        &mut self,
        worker: usize,
        kind: usize,
        name: usize,
        script: &mut Script<'_>,
    ) -> Outcome {
        let command = ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "SUBSCRIBE"][kind];
        let mut args = vec![
            command.as_bytes().to_vec(),
            super::script::NAMES[name].to_vec(),
        ];
        if kind == 3 {
            args.push(super::script::NAMES[(name + 1) % 16].to_vec());
        }
        let mut bytes = Vec::new();
        if self.model.requirepass.is_some() {
            let auth = vec![b"AUTH".to_vec(), PASSWORD.to_vec()];
            bytes = Request::Command {
                args: auth,
                inline: false,
            }
            .encode();
        }
        bytes.extend(
            Request::Command {
                args,
                inline: false,
            }
            .encode(),
        );
        for slot in 0..SLOTS {
            if self.model.clients[slot].is_none() {
                self.connect(slot, worker, script)?;
                self.model.client(slot).unsent.extend_from_slice(&bytes);
                self.feed(slot, usize::MAX)?;
            }
        }
        Ok(())
    }

    /// Slots of worker `w` whose connections the hub closed since last asked.
    fn take_closed(&mut self, w: usize) -> Vec<usize> {
        let mut keys = Vec::new();
        self.hubs[w].take_shutdowns(&mut keys);
        let slots: Vec<usize> = (0..SLOTS)
            .filter(|&s| {
                self.model.clients[s]
                    .as_ref()
                    .is_some_and(|c| c.worker == w && keys.contains(&c.key))
            })
            .collect();
        if !slots.is_empty() {
            super::trace(|| format!("  worker {w} closed slots {slots:?}"));
        }
        slots
    }

    /// Take the connections worker `w` closed during a step of this
    /// `cause`, check it had a reason to, and close them in the model.
    fn closed(&mut self, w: usize, cause: Cause) -> Outcome {
        let idle = match cause {
            Cause::Cron(_) => self.idle(w),
            _ => Vec::new(),
        };
        let closed = self.take_closed(w);
        let hard = self.shared.config.load().output_limit_pubsub.hard;
        self.check_closed(&closed, cause, hard)?;
        if let Some(&s) = idle.iter().find(|s| !closed.contains(s)) {
            return Err(format!("slot {s}: idle past the timeout and still open"));
        }
        if let Cause::Drain(w) = cause {
            let spared: Vec<usize> = (0..SLOTS)
                .filter(|&s| {
                    self.model.clients[s].as_ref().is_some_and(|c| {
                        c.worker == w
                            && c.state != State::Killed
                            && self.model.kill_requests.contains(&c.id)
                            && !closed.contains(&s)
                    })
                })
                .collect();
            if !spared.is_empty() {
                return Err(format!(
                    "slots {spared:?}: named by CLIENT KILL, not closed"
                ));
            }
            for c in self
                .model
                .clients
                .iter()
                .flatten()
                .filter(|c| c.worker == w)
            {
                self.model.kill_requests.remove(&c.id);
                self.model.kill_maybe.remove(&c.id);
            }
        }
        for s in closed {
            self.model.kill(s);
        }
        Ok(())
    }

    /// Slots of worker `w` idle for longer than `timeout` (its cron closes
    /// them): not in pub/sub mode, no publish paused, no read or write for
    /// more whole seconds than the timeout.
    fn idle(&self, w: usize) -> Vec<usize> {
        let timeout = self.shared.config.load().timeout;
        (0..SLOTS)
            .filter(|&s| {
                self.model.clients[s].as_ref().is_some_and(|c| {
                    timeout > 0
                        && c.worker == w
                        && c.state == State::Open
                        && c.pending.is_none()
                        && !c.in_pubsub()
                        && (self.clocks[w].saturating_sub(c.last_interaction)).as_secs() > timeout
                })
            })
            .collect()
    }

    /// Each connection a hub closed must have had a reason: its client hung
    /// up, a CLIENT KILL named it, it was idle, it stayed over an output
    /// limit (a subscriber with a limit set), it never authenticated and let
    /// its output pile up, or its own request said so.
    fn check_closed(&self, closed: &[usize], cause: Cause, hard_before: usize) -> Outcome {
        let limit = self.shared.config.load().output_limit_pubsub;
        let limited = limit.hard > 0 || hard_before > 0;
        for &s in closed {
            let Some(c) = &self.model.clients[s] else {
                continue;
            };
            let over_limit = limited && c.in_pubsub();
            let ok = match cause {
                Cause::Hangup(h) => s == h,
                Cause::Input(a) => {
                    over_limit || (s == a && (c.state == State::Killed || !c.ever_authenticated))
                }
                Cause::Drain(_) => {
                    over_limit
                        || self.model.kill_requests.contains(&c.id)
                        || self.model.kill_maybe.contains(&c.id)
                }
                // Soft limits are timed by the wall clock, off unless set live.
                Cause::Cron(_) => limit.soft > 0 && c.in_pubsub(),
                Cause::None => false,
            };
            let idle = matches!(cause, Cause::Cron(w) if self.idle(w).contains(&s));
            if !ok && !idle {
                return Err(format!(
                    "slot {s} was closed during {cause:?} for no reason"
                ));
            }
        }
        Ok(())
    }

    // ----- the end ------------------------------------------------------

    /// Write everything, retry paused publishers and drain the rings until
    /// nothing moves; then every delivery the model requires must have been
    /// read. Then disconnect everyone and check that nothing is left.
    pub(crate) fn finish(&mut self) -> Outcome {
        for _ in 0..SETTLE_ROUNDS {
            let mut moved = false;
            for slot in 0..SLOTS {
                let Some(c) = &self.model.clients[slot] else {
                    continue;
                };
                let before = c.expect.len();
                self.read(slot, false)?;
                let c = self.model.client(slot);
                moved |= c.expect.len() != before;
                if c.pending.is_some() && c.state == State::Open {
                    self.feed(slot, 0)?;
                    moved |= self.model.client(slot).pending.is_none();
                }
            }
            for w in 0..WORKERS {
                moved |= !self.model.rings[w].is_empty();
                self.drain(w)?;
            }
            self.check_invariants()?;
            if !moved {
                break;
            }
        }
        for (slot, c) in self.model.clients.iter().enumerate() {
            if let Some(c) = c
                && c.pending.is_some()
                && c.state == State::Open
            {
                return Err(format!(
                    "slot {slot}: a publisher stays paused with all output written and the rings drained"
                ));
            }
        }
        for w in 0..WORKERS {
            if !self.model.rings[w].is_empty() {
                return Err(format!(
                    "worker {w} left {} messages in its ring",
                    self.model.rings[w].len()
                ));
            }
        }
        self.model.all_delivered()?;
        for slot in 0..SLOTS {
            self.disconnect(slot)?;
        }
        for w in 0..WORKERS {
            self.drain(w)?;
            self.cron(w, Duration::from_millis(100))?;
        }
        self.check_invariants()?;
        self.check_empty()
    }

    // ----- invariants ---------------------------------------------------

    /// What must hold at every instant: gauges, the client directory and the
    /// registry agree with the model.
    pub(crate) fn check_invariants(&self) -> Outcome {
        self.check_gauges()?;
        self.check_directory()?;
        self.check_registry()
    }

    fn check_gauges(&self) -> Outcome {
        for w in 0..WORKERS {
            let clients: Vec<&Client> = self
                .model
                .clients
                .iter()
                .flatten()
                .filter(|c| c.worker == w)
                .collect();
            let stats = self.shared.worker_stats(w);
            let connected = stats.connected_clients.load(Relaxed);
            let pubsub = stats.pubsub_clients.load(Relaxed);
            let in_pubsub = clients.iter().filter(|c| c.in_pubsub()).count() as u64;
            if connected != clients.len() as u64 || self.hubs[w].connections() != clients.len() {
                return Err(format!(
                    "worker {w}: connected_clients {connected}, {} connections, the model has {}",
                    self.hubs[w].connections(),
                    clients.len()
                ));
            }
            if pubsub != in_pubsub {
                return Err(format!(
                    "worker {w}: pubsub_clients {pubsub}, the model has {in_pubsub} in pub/sub mode"
                ));
            }
        }
        Ok(())
    }

    fn check_directory(&self) -> Outcome {
        let listed: Vec<u64> = self
            .shared
            .clients
            .snapshot()
            .iter()
            .map(|m| m.id)
            .collect();
        let mut ids: Vec<u64> = self.model.clients.iter().flatten().map(|c| c.id).collect();
        ids.sort_unstable();
        if listed != ids {
            return Err(format!("CLIENT LIST has {listed:?}, the model {ids:?}"));
        }
        for c in self.model.clients.iter().flatten() {
            let Some(meta) = self.shared.clients.get(c.id) else {
                continue;
            };
            let counts = [
                meta.channels.load(Relaxed),
                meta.patterns.load(Relaxed),
                meta.shard_channels.load(Relaxed),
            ];
            let held = c.subs.each_ref().map(Vec::len);
            if counts != held {
                return Err(format!(
                    "client {}: CLIENT LIST shows sub/psub/ssub {counts:?}, it holds {held:?}",
                    c.id
                ));
            }
        }
        Ok(())
    }

    /// Subscribers per worker of one name, by the model.
    fn holders(&self, kind: Kind, name: &[u8]) -> [u64; WORKERS] {
        let mut per_worker = [0; WORKERS];
        for c in self.model.clients.iter().flatten() {
            if c.subs[kind as usize].iter().any(|s| s.name == name) {
                per_worker[c.worker] += 1;
            }
        }
        per_worker
    }

    fn held(&self, kind: Kind) -> std::collections::BTreeSet<&[u8]> {
        self.model
            .clients
            .iter()
            .flatten()
            .flat_map(|c| c.subs[kind as usize].iter().map(|s| &s.name[..]))
            .collect()
    }

    fn check_registry(&self) -> Outcome {
        let registry = &self.shared.registry;
        let counts = [
            registry.channel_count(Namespace::Global),
            registry.pattern_count(),
            registry.channel_count(Namespace::Shard),
        ];
        let held = KINDS.map(|k| self.held(k).len());
        if counts != held {
            return Err(format!(
                "registry counts channels/patterns/shard channels {counts:?}, the model {held:?}"
            ));
        }
        let mut lookup = Lookup::default();
        for name in &self.model.names {
            for (ns, kind) in [
                (Namespace::Global, Kind::Channel),
                (Namespace::Shard, Kind::Shard),
            ] {
                let per_worker = self.holders(kind, name);
                let total: u64 = per_worker.iter().sum();
                let numsub = registry.numsub(ns, name);
                registry.lookup(ns, name, &mut lookup);
                let workers: Vec<bool> = (0..WORKERS)
                    .map(|w| lookup.channel.workers.contains(w))
                    .collect();
                let expected: Vec<bool> = per_worker.iter().map(|&n| n > 0).collect();
                if numsub != total || lookup.channel.count != total || workers != expected {
                    return Err(format!(
                        "{ns:?} {:?}: NUMSUB {numsub}, lookup {:?}; the model has {per_worker:?} per worker",
                        name.escape_ascii().to_string(),
                        lookup.channel
                    ));
                }
                if ns == Namespace::Global {
                    self.check_patterns(name, &lookup)?;
                } else if !lookup.patterns.is_empty() {
                    return Err("a shard lookup found patterns".into());
                }
            }
        }
        Ok(())
    }

    /// The patterns a lookup of `channel` found: each held pattern that
    /// matches it, with its subscribers per worker.
    fn check_patterns(&self, channel: &[u8], lookup: &Lookup) -> Outcome {
        let mut expected: Vec<(&[u8], [u64; WORKERS])> = self
            .held(Kind::Pattern)
            .into_iter()
            .filter(|p| ringcast_core::glob::matches(p, channel))
            .map(|p| (p, self.holders(Kind::Pattern, p)))
            .collect();
        expected.sort();
        let mut found: Vec<(&[u8], [u64; WORKERS])> = Vec::new();
        for hit in &lookup.patterns {
            let per_worker = self.holders(Kind::Pattern, &hit.pattern);
            let workers = (0..WORKERS).all(|w| hit.hits.workers.contains(w) == (per_worker[w] > 0));
            if !workers || hit.hits.count != per_worker.iter().sum::<u64>() {
                return Err(format!(
                    "pattern {:?}: lookup {:?}, the model has {per_worker:?} per worker",
                    hit.pattern.escape_ascii().to_string(),
                    hit.hits
                ));
            }
            found.push((&hit.pattern, per_worker));
        }
        found.sort();
        if found != expected {
            return Err(format!(
                "a publish to {:?} finds patterns {:?}, the model {:?}",
                channel.escape_ascii().to_string(),
                found
                    .iter()
                    .map(|p| p.0.escape_ascii().to_string())
                    .collect::<Vec<_>>(),
                expected
                    .iter()
                    .map(|p| p.0.escape_ascii().to_string())
                    .collect::<Vec<_>>()
            ));
        }
        Ok(())
    }

    /// After everyone left: nothing subscribed, no gauge above zero, no
    /// message in a ring, no backlog.
    fn check_empty(&self) -> Outcome {
        let registry = &self.shared.registry;
        for ns in [Namespace::Global, Namespace::Shard] {
            let left = registry.channels(ns, None);
            if !left.is_empty() || registry.channel_count(ns) != 0 {
                return Err(format!("{ns:?} channels left in the registry: {left:?}"));
            }
        }
        if registry.pattern_count() != 0 {
            return Err("patterns left in the registry".into());
        }
        if !self.shared.clients.snapshot().is_empty() || self.shared.admitted_clients() != 0 {
            return Err("clients left in the directory".into());
        }
        for w in 0..WORKERS {
            let stats = self.shared.worker_stats(w);
            let gauges = [
                ("connected_clients", &stats.connected_clients),
                ("pubsub_clients", &stats.pubsub_clients),
                ("inbound_depth", &stats.inbound_depth),
                ("ring_bytes_out", &stats.ring_bytes_out),
                ("output_backlog", &stats.output_backlog),
                ("output_memory", &stats.output_memory),
                ("paused_publishers", &stats.paused_publishers),
            ];
            for (name, gauge) in gauges {
                let value = gauge.load(Relaxed);
                if value != 0 {
                    return Err(format!("worker {w}: {name} is {value} with no client"));
                }
            }
            let hub = &self.hubs[w];
            if hub.connections() != 0 || hub.backlog() != 0 || hub.congested() {
                return Err(format!(
                    "worker {w}: {} connections, backlog {}, congested {}",
                    hub.connections(),
                    hub.backlog(),
                    hub.congested()
                ));
            }
        }
        Ok(())
    }
}
