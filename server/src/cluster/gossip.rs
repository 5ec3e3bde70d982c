//! Membership and claims over chitchat (see `docs/cluster-membership.md`):
//! each node publishes its [`Claim`] as one key, `config`, so a peer never
//! sees one half of a change; scuttlebutt anti-entropy brings every
//! version to every live node. A second key, `pfail`, carries the peers
//! the node judges unreachable ([`Reports`]), for the majority rule of
//! `ringcast_core::cluster`'s failure reports. ringcast applies its own absolute node
//! timeout to chitchat's heartbeats instead of the phi detector: a peer
//! whose heartbeat has not advanced for `cluster-node-timeout` is suspect,
//! for twice that dead (its node-to-node link is dropped). Both are this
//! node's own suspicion (`fail?`); the verdict `fail` takes a majority.
//!
//! Everything here runs on the bus thread; nothing of it reaches a worker.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chitchat::transport::UdpTransport;
use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, ProtocolVersion,
};
use ringcast_core::cluster::{Claim, Liveness, NodeId, Reports};

/// The key holding a node's claim.
const CONFIG_KEY: &str = "config";
/// The key holding the node's failure reports.
const REPORTS_KEY: &str = "pfail";
/// Unrelated clusters on one network reject each other's gossip.
const CLUSTER_ID: &str = "ringcast";
const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
/// How often a MEET address is sent a handshake until it shows up.
const MEET_EVERY: Duration = Duration::from_secs(1);
/// How long a MEET is tried (Redis's handshake gives up too).
const MEET_FOR: Duration = Duration::from_secs(60);
/// How long a forgotten node's records are ignored (Redis's blacklist TTL).
const FORGET_BAN: Duration = Duration::from_secs(60);
/// Every this many polls each peer's latest claim is delivered again, as
/// Redis's pings repeat it (merging is idempotent; some rules act on it).
const REDELIVER_EVERY: u32 = 10;
/// How late a poll may come (they are due every 100 ms) before the time
/// this node missed is not held against its peers' silence.
const STALL: Duration = Duration::from_millis(500);

/// What one poll found out.
#[derive(Default)]
pub(super) struct News {
    /// Claims to merge, each peer's latest.
    pub claims: Vec<Claim>,
    /// Liveness changes.
    pub liveness: Vec<(NodeId, Liveness)>,
    /// When each peer was last heard of (unix ms), for CLUSTER NODES.
    pub heard: Vec<(NodeId, u64)>,
    /// Failure reports, each peer's latest (again from time to time, so
    /// that they stay fresh).
    pub reports: Vec<(NodeId, Reports)>,
}

/// What this node knows of a peer's gossip.
struct Peer {
    generation: u64,
    heartbeat: u64,
    advanced: Instant,
    /// The claim text last merged.
    text: String,
    /// The reports text last delivered.
    reports: String,
    verdict: Liveness,
    addr: SocketAddr,
}

pub(super) struct Gossip {
    handle: ChitchatHandle,
    me: String,
    peers: HashMap<String, Peer>,
    meets: Vec<(SocketAddr, Instant, Instant)>,
    banned: HashMap<String, Instant>,
    polls: u32,
    last_poll: Option<Instant>,
    /// The reports text last published.
    reports: String,
}

/// How the gossip layer starts.
pub(super) struct Start {
    pub id: NodeId,
    /// Orders this run's records after every earlier run's.
    pub generation: u64,
    pub listen: SocketAddr,
    pub advertise: SocketAddr,
    pub seeds: Vec<String>,
    pub claim: String,
    pub node_timeout: Duration,
}

impl Gossip {
    pub(super) async fn start(start: Start) -> anyhow::Result<Gossip> {
        let grace = (start.node_timeout * 10).max(Duration::from_secs(10));
        let config = ChitchatConfig {
            chitchat_id: ChitchatId::new(start.id.as_str(), start.generation, start.advertise),
            cluster_id: CLUSTER_ID.to_string(),
            gossip_interval: GOSSIP_INTERVAL,
            listen_addr: start.listen,
            seed_nodes: start.seeds,
            failure_detector_config: FailureDetectorConfig {
                dead_node_grace_period: grace,
                ..FailureDetectorConfig::default()
            },
            marked_for_deletion_grace_period: grace,
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: ProtocolVersion::V1,
        };
        let initial = vec![(CONFIG_KEY.to_string(), start.claim)];
        let handle = chitchat::spawn_chitchat(config, initial, &UdpTransport).await?;
        Ok(Gossip {
            handle,
            me: start.id.as_str().to_string(),
            peers: HashMap::new(),
            meets: Vec::new(),
            banned: HashMap::new(),
            polls: 0,
            last_poll: None,
            reports: String::new(),
        })
    }

    /// Publish this node's claim.
    pub(super) async fn publish(&self, claim: String) {
        let chitchat = self.handle.chitchat();
        chitchat
            .lock()
            .await
            .self_node_state()
            .set(CONFIG_KEY, claim);
    }

    /// Publish this node's failure reports, if they changed.
    pub(super) async fn publish_reports(&mut self, reports: String) {
        if reports == self.reports {
            return;
        }
        let chitchat = self.handle.chitchat();
        chitchat
            .lock()
            .await
            .self_node_state()
            .set(REPORTS_KEY, reports.clone());
        self.reports = reports;
    }

    /// CLUSTER MEET: handshake with this bus address until it shows up.
    pub(super) fn meet(&mut self, addr: SocketAddr) {
        let now = Instant::now();
        self.meets.retain(|(a, _, _)| *a != addr);
        self.meets.push((addr, now, now + MEET_FOR));
        let _ = self.handle.gossip(addr);
    }

    /// CLUSTER FORGET: ignore this node's records for a while.
    pub(super) fn forget(&mut self, id: &NodeId) {
        self.banned
            .insert(id.as_str().to_string(), Instant::now() + FORGET_BAN);
        self.peers.remove(id.as_str());
    }

    /// The bus addresses of the peers heard of and not dead: where
    /// node-to-node traffic (cross-node PUBLISH) goes.
    pub(super) fn live_peers(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.peers
            .iter()
            .filter(|(_, p)| p.verdict != Liveness::Dead)
            .map(|(id, p)| (id.as_str(), p.addr))
    }

    /// Read what gossip brought since the last poll.
    pub(super) async fn poll(&mut self, node_timeout: Duration, unix_ms: u64) -> News {
        let now = Instant::now();
        // A node that was stopped (SIGSTOP, a stalled host) heard nothing
        // meanwhile, and nobody heard it: its peers' silence over that time
        // says nothing about them. Without this, a node resumed after the
        // node timeout would find every peer dead and take all the slots.
        let stalled = self
            .last_poll
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last))
            .saturating_sub(STALL);
        self.last_poll = Some(now);
        if !stalled.is_zero() {
            tracing::info!("cluster bus: this node stalled for {stalled:?}");
            for peer in self.peers.values_mut() {
                peer.advanced = (peer.advanced + stalled).min(now);
            }
        }
        self.polls = self.polls.wrapping_add(1);
        let redeliver = self.polls.is_multiple_of(REDELIVER_EVERY);
        self.banned.retain(|_, until| *until > now);
        // Each node's latest generation, its heartbeat and claim text.
        type Record = (u64, u64, SocketAddr, Option<String>, Option<String>);
        let mut latest: BTreeMap<String, Record> = BTreeMap::new();
        {
            let chitchat = self.handle.chitchat();
            let guard = chitchat.lock().await;
            for (cc, state) in guard.node_states() {
                let id = &*cc.node_id;
                if id == self.me || self.banned.contains_key(id) {
                    continue;
                }
                let newer = latest
                    .get(id)
                    .is_none_or(|(generation, ..)| cc.generation_id > *generation);
                if newer {
                    latest.insert(
                        id.to_string(),
                        (
                            cc.generation_id,
                            u64::from(state.heartbeat()),
                            cc.gossip_advertise_addr,
                            state.get(CONFIG_KEY).map(str::to_string),
                            state.get(REPORTS_KEY).map(str::to_string),
                        ),
                    );
                }
            }
        }
        let seen: Vec<SocketAddr> = latest.values().map(|(_, _, addr, ..)| *addr).collect();
        self.retry_meets(now, &seen);
        let mut news = News::default();
        for (id, (generation, heartbeat, addr, text, reports)) in latest {
            let Some(node_id) = NodeId::parse(id.as_bytes()) else {
                tracing::debug!("cluster bus: a peer with a malformed node id: {id:?}");
                continue;
            };
            let peer = self.peers.entry(id).or_insert_with(|| Peer {
                generation,
                heartbeat,
                advanced: now,
                text: String::new(),
                reports: String::new(),
                verdict: Liveness::Alive,
                addr,
            });
            if peer.generation != generation || heartbeat > peer.heartbeat {
                peer.generation = generation;
                peer.heartbeat = heartbeat;
                peer.advanced = now;
                peer.addr = addr;
            }
            let silent = now.saturating_duration_since(peer.advanced);
            let verdict = if silent >= node_timeout * 2 {
                Liveness::Dead
            } else if silent >= node_timeout {
                Liveness::Suspect
            } else {
                Liveness::Alive
            };
            if verdict != peer.verdict {
                peer.verdict = verdict;
                news.liveness.push((node_id, verdict));
            }
            let heard_ms = unix_ms.saturating_sub(silent.as_millis() as u64);
            news.heard.push((node_id, heard_ms));
            // Reports count while fresh: deliver them again from time to
            // time, but only those of a peer heard within the node timeout.
            let reports = reports.unwrap_or_default();
            if reports != peer.reports || (redeliver && silent < node_timeout) {
                news.reports.push((node_id, Reports::parse(&reports)));
                peer.reports = reports;
            }
            let Some(text) = text else { continue };
            if text == peer.text && !redeliver {
                continue;
            }
            match Claim::parse(&text) {
                Ok(claim) if claim.id == node_id => {
                    peer.text = text;
                    news.claims.push(claim);
                }
                Ok(_) => {
                    tracing::warn!("cluster bus: node {node_id} published another node's claim")
                }
                Err(e) => {
                    if text != peer.text {
                        tracing::warn!("cluster bus: node {node_id}: {e}");
                        peer.text = text;
                    }
                }
            }
        }
        // Peers whose records chitchat dropped keep their last verdict
        // until their silence makes them dead.
        for (id, peer) in &mut self.peers {
            let silent = now.saturating_duration_since(peer.advanced);
            if silent >= node_timeout * 2
                && peer.verdict != Liveness::Dead
                && let Some(node_id) = NodeId::parse(id.as_bytes())
            {
                peer.verdict = Liveness::Dead;
                news.liveness.push((node_id, Liveness::Dead));
            }
        }
        news
    }

    fn retry_meets(&mut self, now: Instant, seen: &[SocketAddr]) {
        self.meets
            .retain(|(addr, _, until)| !seen.contains(addr) && now < *until);
        for (addr, last, _) in &mut self.meets {
            if now.saturating_duration_since(*last) >= MEET_EVERY {
                *last = now;
                let _ = self.handle.gossip(*addr);
            }
        }
    }

    pub(super) async fn shutdown(self) {
        let _ = self.handle.shutdown().await;
    }
}
