//! Node-to-node links for cross-node PUBLISH: TCP on the bus port (gossip
//! uses UDP on the same port number). Everything here runs on the bus
//! thread; the frames, the interest tables and the guarantees are in
//! `ringcast_core::cluster::forward`.
//!
//! Each node dials every live peer gossip knows (one link per ordered pair
//! of nodes) and uses that link only to write: a `Hello` with its node id,
//! its whole interest, then interest changes and the PUBLISHes the peer
//! wants. What it reads from the links peers dialled is their interest and
//! the messages they forward to it. A dial that fails is retried with a
//! backoff; a link is dropped when gossip says the peer is dead or
//! forgotten, when the peer closes it, and when what is queued for the peer
//! passes [`OUT_LIMIT`] bytes (logged once per drop and counted in CLUSTER
//! INFO's `total_cluster_links_buffer_limit_exceeded`): what was queued is
//! lost, never sent twice, and the new link starts with the whole interest
//! again.
//!
//! Holding a SUBSCRIBE (guarantee 3 of `forward`): its new names are
//! announced with a `Sync` behind them on every link that is up; each
//! peer writes `Ack` back on the same TCP connection once the interest is
//! in its snapshot, and the reply is released (a `Mail::Reply` to the
//! worker) when every one of those peers has answered, its link went
//! down, or [`HOLD_FOR`] passed (checked on the bus cron).
//!
//! Batching: everything queued for a peer while its writer waited goes out
//! in one write. Reading: a forwarded message is built once for this node's
//! subscribers and posted to the mailbox of each worker that has some; a
//! link is not read while one of those mailboxes holds more than
//! [`IN_LIMIT`] bytes (TCP then pushes back on the sending node, whose
//! queue bound drops the link if it lasts).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ringcast_core::WorkerId;
use ringcast_core::cluster::Forward;
use ringcast_core::cluster::forward::{
    Frame, HEADER, HOLD_FOR, Kind, LocalInterest, PeerInterest, PeerKey, PeerSet, inbound_message,
};
use ringcast_core::cluster::{Mail, Reply};
use ringcast_core::registry::{Lookup, Namespace, WorkerSet};
use ringcast_core::shared::Shared;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Bytes queued for one peer beyond which its link is dropped.
pub(super) const OUT_LIMIT: usize = 32 << 20;
/// Bytes of forwarded messages waiting in one worker's mailbox beyond which
/// the links are not read.
pub(super) const IN_LIMIT: usize = 32 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often a reader held back by a full mailbox looks again.
const IN_RECHECK: Duration = Duration::from_millis(1);
const READ_CHUNK: usize = 64 << 10;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What is queued for one peer.
struct Outgoing {
    /// Frames waiting to be written, encoded back to back.
    buf: BytesMut,
    /// A link is up and has been sent the whole interest.
    up: bool,
    /// New frames to write.
    ready: Arc<Notify>,
    /// Drop the link (overflow).
    kill: Arc<Notify>,
}

/// The link state the bus loop and the link tasks share (one thread: the
/// lock is never contended nor held across an await).
#[derive(Default)]
struct State {
    local: LocalInterest,
    /// Interest each peer sent on the link it dialled, by node id.
    remote: HashMap<String, Arc<PeerSet>>,
    /// The reader of each peer's link: closing it drops the link.
    readers: HashMap<String, Arc<Notify>>,
    keys: HashMap<String, PeerKey>,
    next_key: PeerKey,
    out: HashMap<PeerKey, Outgoing>,
    /// This node's replicas, by node id.
    replicas: Vec<String>,
    /// Held SUBSCRIBEs, by client.
    holds: HashMap<u64, Hold>,
}

/// A SUBSCRIBE waiting for the peers to have its names.
struct Hold {
    worker: WorkerId,
    names: Vec<(Kind, Bytes)>,
    /// Peers that have not answered yet.
    waiting: HashSet<PeerKey>,
    until: Instant,
    released: bool,
}

impl Hold {
    fn release(&mut self, shared: &Shared, client: u64) {
        if !self.released {
            self.released = true;
            shared.post_cluster_mail(
                self.worker,
                Mail::Reply {
                    client,
                    reply: Reply::Ok,
                },
            );
        }
    }
}

impl State {
    fn key(&mut self, id: &str) -> PeerKey {
        if let Some(k) = self.keys.get(id) {
            return *k;
        }
        self.next_key += 1;
        self.keys.insert(id.to_string(), self.next_key);
        self.next_key
    }

    fn snapshot(&mut self) -> PeerInterest {
        let peers: Vec<(PeerKey, Arc<PeerSet>)> = self
            .remote
            .iter()
            .map(|(id, set)| (id.clone(), set.clone()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(id, set)| (self.key(&id), set))
            .collect();
        let replicas: Vec<String> = self.replicas.clone();
        let replicas = replicas.iter().map(|id| self.key(id)).collect();
        PeerInterest::new(peers, replicas)
    }

    /// Tell the workers how many links are up.
    fn recount(&self, shared: &Shared) {
        shared
            .cluster
            .set_linked(self.out.values().filter(|o| o.up).count());
    }

    /// Peer `key` answered, or its link went down (`None`: every hold).
    fn acked(&mut self, shared: &Shared, key: PeerKey, token: Option<u64>) {
        for (client, hold) in &mut self.holds {
            if token.is_none_or(|t| t == *client) {
                hold.waiting.remove(&key);
                if hold.waiting.is_empty() {
                    hold.release(shared, *client);
                }
            }
        }
    }

    /// Queue the local interest change, if any, for every peer.
    fn announce(&mut self, shared: &Shared, kind: Kind, name: Bytes, up: bool) {
        if let Some(frame) = self.local.apply(kind, name, up) {
            let keys: Vec<PeerKey> = self.out.keys().copied().collect();
            for key in keys {
                self.queue(shared, key, |buf| frame.encode(buf));
            }
        }
    }

    /// Queue `write` for the peer; drops the link past the bound.
    fn queue(&mut self, shared: &Shared, key: PeerKey, write: impl FnOnce(&mut BytesMut)) -> bool {
        let Some(out) = self.out.get_mut(&key) else {
            return false;
        };
        if !out.up {
            return false;
        }
        write(&mut out.buf);
        if out.buf.len() > OUT_LIMIT {
            out.up = false;
            out.buf = BytesMut::new();
            out.kill.notify_one();
            shared.cluster.count_link_overflow();
            self.recount(shared);
            let id = self
                .keys
                .iter()
                .find(|(_, k)| **k == key)
                .map_or("?", |(id, _)| id.as_str());
            tracing::warn!(
                "cluster bus: link to node {id} dropped: over {OUT_LIMIT} bytes queued; \
                 messages to it are lost until it is back"
            );
            return false;
        }
        out.ready.notify_one();
        true
    }
}

struct Dialer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

pub(super) struct Links {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    dialers: HashMap<String, Dialer>,
    me: Bytes,
    listener: JoinHandle<()>,
}

impl Links {
    /// Listens on `listener` (TCP on the bus port) for the links peers dial.
    pub(super) fn start(shared: Arc<Shared>, me: &str, listener: TcpListener) -> Links {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::spawn(accept(shared.clone(), state.clone(), listener));
        Links {
            shared,
            state,
            dialers: HashMap::new(),
            me: Bytes::copy_from_slice(me.as_bytes()),
            listener,
        }
    }

    /// Gossip's live peers: dial the new ones, drop the links of the others.
    pub(super) fn sync<'a>(&mut self, live: impl Iterator<Item = (&'a str, SocketAddr)>) {
        let live: HashMap<&str, SocketAddr> = live.collect();
        let gone: Vec<String> = self
            .dialers
            .iter()
            .filter(|(id, d)| live.get(id.as_str()) != Some(&d.addr))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.drop_peer(&id, !live.contains_key(id.as_str()));
        }
        for (id, addr) in live {
            if self.dialers.contains_key(id) {
                continue;
            }
            let key = {
                let mut state = lock(&self.state);
                let key = state.key(id);
                state.out.insert(
                    key,
                    Outgoing {
                        buf: BytesMut::new(),
                        up: false,
                        ready: Arc::new(Notify::new()),
                        kill: Arc::new(Notify::new()),
                    },
                );
                key
            };
            let task = tokio::spawn(dial(
                self.shared.clone(),
                self.state.clone(),
                self.me.clone(),
                id.to_string(),
                key,
                addr,
            ));
            self.dialers.insert(id.to_string(), Dialer { addr, task });
        }
    }

    /// This node's replicas (from the cluster state), which every SPUBLISH
    /// here goes to.
    pub(super) fn set_replicas(&mut self, mut ids: Vec<String>) {
        ids.sort();
        let mut state = lock(&self.state);
        if state.replicas != ids {
            state.replicas = ids;
            let view = state.snapshot();
            self.shared.cluster.set_peer_interest(view);
        }
    }

    /// Stop dialling a peer; when it is dead or forgotten, also close the
    /// link it dialled and forget its interest.
    fn drop_peer(&mut self, id: &str, dead: bool) {
        if let Some(d) = self.dialers.remove(id) {
            d.task.abort();
        }
        let mut state = lock(&self.state);
        if let Some(key) = state.keys.get(id).copied() {
            state.out.remove(&key);
            state.acked(&self.shared, key, None);
            state.recount(&self.shared);
        }
        if dead {
            if let Some(close) = state.readers.remove(id) {
                close.notify_one();
            }
            if state.remote.remove(id).is_some() {
                let view = state.snapshot();
                self.shared.cluster.set_peer_interest(view);
            }
        }
    }

    /// Something a worker handed over: queue it for the peers.
    pub(super) fn take(&mut self, item: Forward) {
        let mut state = lock(&self.state);
        match item {
            Forward::Publish {
                shard,
                channel,
                payload,
                targets,
            } => {
                let t = if shard { 9 } else { 6 };
                self.shared
                    .cluster
                    .forward_taken(channel.len() + payload.len());
                let mut sent = 0;
                for key in targets {
                    let queued = state.queue(&self.shared, key, |buf| {
                        buf.reserve(HEADER + channel.len() + payload.len());
                        buf.put_u8(t);
                        buf.put_u32(channel.len() as u32);
                        buf.put_u32(payload.len() as u32);
                        buf.put_slice(&channel);
                        buf.put_slice(&payload);
                    });
                    sent += u64::from(queued);
                }
                if sent > 0 {
                    self.shared.cluster.count_sent(sent);
                }
            }
            Forward::Interest { kind, name, up } => state.announce(&self.shared, kind, name, up),
            Forward::Hold {
                worker,
                client,
                names,
            } => {
                for (kind, name) in &names {
                    state.announce(&self.shared, *kind, name.clone(), true);
                }
                let keys: Vec<PeerKey> = state.out.keys().copied().collect();
                let sync = Frame::Sync { token: client };
                let waiting = keys
                    .into_iter()
                    .filter(|key| state.queue(&self.shared, *key, |buf| sync.encode(buf)))
                    .collect();
                let mut hold = Hold {
                    worker,
                    names,
                    waiting,
                    until: Instant::now() + HOLD_FOR,
                    released: false,
                };
                if hold.waiting.is_empty() {
                    hold.release(&self.shared, client);
                }
                state.holds.insert(client, hold);
            }
            Forward::Unhold { client } => {
                if let Some(hold) = state.holds.remove(&client) {
                    for (kind, name) in hold.names {
                        state.announce(&self.shared, kind, name, false);
                    }
                }
            }
        }
    }

    /// The bus cron: release the holds that waited long enough.
    pub(super) fn expire_holds(&mut self) {
        let now = Instant::now();
        let mut state = lock(&self.state);
        for (client, hold) in &mut state.holds {
            if hold.until <= now {
                hold.release(&self.shared, *client);
            }
        }
    }

    pub(super) fn shutdown(&mut self) {
        self.listener.abort();
        for (_, d) in self.dialers.drain() {
            d.task.abort();
        }
        for (_, close) in lock(&self.state).readers.drain() {
            close.notify_one();
        }
    }
}

/// The writing side of this node's link to one peer, for as long as the
/// peer is live: dial, send the whole interest, then what is queued.
async fn dial(
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    me: Bytes,
    id: String,
    key: PeerKey,
    addr: SocketAddr,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                backoff = BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                tracing::debug!("cluster bus: link to node {id} at {addr} is up");
                serve_link(&shared, &state, &me, key, stream).await;
                tracing::debug!("cluster bus: link to node {id} at {addr} is down");
                let mut state = lock(&state);
                if let Some(out) = state.out.get_mut(&key) {
                    out.up = false;
                    out.buf = BytesMut::new();
                }
                state.acked(&shared, key, None);
                state.recount(&shared);
            }
            Err(e) => tracing::debug!("cluster bus: cannot dial node {id} at {addr}: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn serve_link(
    shared: &Shared,
    state: &Mutex<State>,
    me: &Bytes,
    key: PeerKey,
    stream: TcpStream,
) {
    let (ready, kill) = {
        let mut state = lock(state);
        let State { local, out, .. } = &mut *state;
        let Some(out) = out.get_mut(&key) else {
            return;
        };
        out.buf = BytesMut::new();
        Frame::Hello { id: me.clone() }.encode(&mut out.buf);
        for frame in local.frames() {
            frame.encode(&mut out.buf);
        }
        out.up = true;
        let handles = (out.ready.clone(), out.kill.clone());
        state.recount(shared);
        handles
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut acks = BytesMut::with_capacity(256);
    loop {
        // Acks waiting while the writer is busy (a steady flow of
        // messages) are read here, so that holds do not wait for a pause.
        loop {
            match rd.try_read_buf(&mut acks) {
                Ok(0) => return,
                Ok(_) if read_acks(shared, state, key, &mut acks) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                _ => return,
            }
        }
        let batch = match lock(state).out.get_mut(&key) {
            Some(out) if out.up => std::mem::take(&mut out.buf),
            _ => return,
        };
        if batch.is_empty() {
            tokio::select! {
                _ = ready.notified() => continue,
                _ = kill.notified() => return,
                // The peer writes only `Ack`s on this link.
                r = rd.read_buf(&mut acks) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if !read_acks(shared, state, key, &mut acks) {
                            return;
                        }
                        continue;
                    }
                },
            }
        }
        tokio::select! {
            r = wr.write_all(&batch) => if r.is_err() { return },
            _ = kill.notified() => return,
        }
    }
}

/// The `Ack`s a peer wrote back; false if it wrote anything else.
fn read_acks(shared: &Shared, state: &Mutex<State>, key: PeerKey, buf: &mut BytesMut) -> bool {
    loop {
        match Frame::decode(buf) {
            Ok(None) => return true,
            Ok(Some(Frame::Ack { token })) => lock(state).acked(shared, key, Some(token)),
            _ => return false,
        }
    }
}

async fn accept(shared: Arc<Shared>, state: Arc<Mutex<State>>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(read_link(shared.clone(), state.clone(), stream));
            }
            Err(e) => {
                tracing::warn!("cluster bus: accept: {e}");
                tokio::time::sleep(BACKOFF_MIN).await;
            }
        }
    }
}

/// The reading side of a link a peer dialled: its interest and the
/// messages it forwards.
async fn read_link(shared: Arc<Shared>, state: Arc<Mutex<State>>, stream: TcpStream) {
    let (mut stream, mut back) = stream.into_split();
    let close = Arc::new(Notify::new());
    let mut peer: Option<String> = None;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut lookup = Lookup::default();
    'link: loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = stream.read_buf(&mut buf) => if matches!(r, Ok(0) | Err(_)) {
                break;
            },
            _ = close.notified() => break,
        }
        let mut interest_changed = false;
        let mut rung = WorkerSet::default();
        let mut acks = BytesMut::new();
        loop {
            let frame = match Frame::decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("cluster bus: dropping a link from {peer:?}: {e}");
                    break 'link;
                }
            };
            match (frame, &peer) {
                (Frame::Hello { id }, None) => {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    let mut state = lock(&state);
                    if let Some(old) = state.readers.insert(id.clone(), close.clone()) {
                        old.notify_one();
                    }
                    state
                        .remote
                        .insert(id.clone(), Arc::new(PeerSet::default()));
                    interest_changed = true;
                    peer = Some(id);
                }
                (frame @ (Frame::Publish { .. } | Frame::ShardPublish { .. }), Some(_)) => {
                    shared.cluster.count_received(1);
                    let (ns, channel, payload) = match frame {
                        Frame::ShardPublish { channel, payload } => {
                            (Namespace::Shard, channel, payload)
                        }
                        Frame::Publish { channel, payload } => {
                            (Namespace::Global, channel, payload)
                        }
                        _ => continue,
                    };
                    let Some((message, workers)) =
                        inbound_message(&shared.registry, ns, channel, &payload, &mut lookup)
                    else {
                        continue;
                    };
                    wait_for_room(&shared, workers, &mut rung).await;
                    let message = Arc::new(message);
                    for w in workers.iter() {
                        shared.cluster.post(w, Mail::Deliver(message.clone()));
                        rung.insert(w);
                    }
                }
                (frame @ (Frame::Sub { .. } | Frame::Unsub { .. }), Some(id)) => {
                    let mut state = lock(&state);
                    if let Some(set) = state.remote.get_mut(id) {
                        Arc::make_mut(set).apply(frame);
                        interest_changed = true;
                    }
                }
                (Frame::Sync { token }, Some(_)) => Frame::Ack { token }.encode(&mut acks),
                (frame, _) => {
                    tracing::warn!("cluster bus: unexpected {frame:?} from {peer:?}");
                    break 'link;
                }
            }
        }
        ring(&shared, &mut rung);
        if interest_changed {
            let view = lock(&state).snapshot();
            shared.cluster.set_peer_interest(view);
        }
        // Only now: the interest before each `Sync` is in the snapshot.
        if !acks.is_empty() && back.write_all(&acks).await.is_err() {
            break;
        }
    }
    // The link is gone: so is the interest it carried (unless a newer link
    // of the same peer took over).
    if let Some(id) = peer {
        let mut state = lock(&state);
        if state
            .readers
            .get(&id)
            .is_some_and(|c| Arc::ptr_eq(c, &close))
        {
            state.readers.remove(&id);
            state.remote.remove(&id);
            let view = state.snapshot();
            shared.cluster.set_peer_interest(view);
        }
    }
}

fn ring(shared: &Shared, rung: &mut WorkerSet) {
    for w in rung.iter() {
        shared.doorbells.ring(w);
    }
    *rung = WorkerSet::default();
}

/// Waits until each of `workers` has room in its mailbox (the workers are
/// woken meanwhile, so that they drain it).
async fn wait_for_room(shared: &Shared, workers: WorkerSet, rung: &mut WorkerSet) {
    while workers
        .iter()
        .any(|w| shared.cluster.inbound_bytes(w) > IN_LIMIT)
    {
        ring(shared, rung);
        tokio::time::sleep(IN_RECHECK).await;
    }
}
