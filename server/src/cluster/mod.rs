//! Cluster mode (`cluster-enabled yes`): the `ringcast-bus` thread, which
//! owns this node's [`Cluster`] state machine and runs everything around
//! it. It runs a tokio current-thread runtime (chitchat needs tokio; the
//! workers stay on monoio) and, in one loop:
//!
//! - answers the CLUSTER commands workers hand it ([`BusRequest`]),
//!   publishing the new slot table to the workers *before* the reply, so
//!   a client sees its own change at once;
//! - every 100 ms (Redis's cluster cron) polls gossip: peers' claims into
//!   [`Cluster::apply_claim`], the node-timeout rule into
//!   [`Cluster::set_liveness`], peers' failure reports into
//!   [`Cluster::apply_reports`] (and this node's own out); ticks the state machine; picks up
//!   `CONFIG SET` of the `cluster-*` parameters;
//! - acts on the [`Effect`]s: slots lost go to every worker's mailbox (each
//!   sends `sunsubscribe` to its local subscribers), nodes.conf is written
//!   (`conf`), the claim is published, MEET and FORGET go to gossip.
//!
//! - carries cross-node PUBLISH (`links`): TCP links to every live peer
//!   gossip knows, on the TCP side of the bus port; the PUBLISHes and
//!   interest changes workers hand over ([`Forward`]) go out on them.

mod conf;
mod gossip;
mod links;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ringcast_core::cluster::{
    Addr, Boot, BusRequest, Cluster, Effect, Endpoint, Forward, Mail, Reply, Settings,
};
use ringcast_core::config::Config;
use ringcast_core::shared::Shared;
use tokio::sync::mpsc;

use gossip::Gossip;
use links::Links;

/// Redis's cluster cron period.
const TICK: Duration = Duration::from_millis(100);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The state machine's settings from the configuration.
fn settings(config: &Config) -> Settings {
    let c = &config.cluster;
    let yes = |name: &str, default: bool| {
        config
            .get(name)
            .map_or(default, |v| v.eq_ignore_ascii_case("yes"))
    };
    let preferred_endpoint = match config.get("cluster-preferred-endpoint-type").as_deref() {
        Some("hostname") => Endpoint::Hostname,
        Some("unknown-endpoint") => Endpoint::Unknown,
        _ => Endpoint::Ip,
    };
    Settings {
        require_full_coverage: c.require_full_coverage,
        allow_pubsubshard_when_down: c.allow_pubsubshard_when_down,
        allow_reads_when_down: yes("cluster-allow-reads-when-down", false),
        allow_replica_migration: yes("cluster-allow-replica-migration", true),
        replica_no_failover: yes("cluster-replica-no-failover", false),
        preferred_endpoint,
        orphan_grace_ms: c.node_timeout.max(1000),
        node_timeout_ms: c.node_timeout.max(1),
    }
}

/// The bus port this node listens on.
fn bus_port(config: &Config, port: u16) -> u16 {
    match config.cluster.port {
        0 => port.saturating_add(10000),
        p => p,
    }
}

/// The address this node announces: `cluster-announce-*`, else the first
/// address it listens on (127.0.0.1 when that is every address).
fn my_addr(config: &Config, port: u16) -> Addr {
    let c = &config.cluster;
    let ip = if c.announce_ip.is_empty() {
        config
            .bind
            .iter()
            .map(|b| b.trim_start_matches('-'))
            .filter_map(|b| b.parse::<IpAddr>().ok())
            .find(|ip| !ip.is_unspecified())
            .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
    } else {
        c.announce_ip.clone()
    };
    let hostname = config
        .get("cluster-announce-hostname")
        .filter(|h| !h.is_empty());
    Addr {
        ip,
        port: if c.announce_port == 0 {
            port
        } else {
            c.announce_port
        },
        cport: match c.announce_bus_port {
            0 => bus_port(config, port),
            p => p,
        },
        hostname,
    }
}

/// Where chitchat listens: the first address listened on, else every one.
fn listen_addr(config: &Config, port: u16) -> SocketAddr {
    let ip = config
        .bind
        .iter()
        .map(|b| b.trim_start_matches('-'))
        .filter_map(|b| b.parse::<IpAddr>().ok())
        .next()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    SocketAddr::new(ip, bus_port(config, port))
}

fn seed(id: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    u64::from_le_bytes(bytes)
        ^ id.iter()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)))
}

/// Load or create this node's state, and start the bus thread. Errors
/// (an unreadable or corrupt nodes.conf, a bus port in use) stop the start.
pub(crate) fn start(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let config = shared.config.load_full();
    let port = shared.info.port;
    let path = config.cluster.config_file.clone();
    let boot = Boot {
        now: unix_ms(),
        seed: seed(shared.info.run_id.as_bytes()),
    };
    let addr = my_addr(&config, port);
    let mut cluster = match conf::read(&path)? {
        Some(text) => {
            let mut c = Cluster::load(&text, settings(&config), boot)
                .with_context(|| format!("cannot load the cluster config file {path}"))?;
            c.set_my_addr(addr, boot.now);
            c
        }
        None => Cluster::new(addr, settings(&config), boot),
    };
    conf::write(&path, &cluster.nodes_conf())
        .with_context(|| format!("cannot write the cluster config file {path}"))?;
    tracing::info!("cluster node {} (config file {path})", cluster.myself().id);
    // Claims made before a restart are republished at once.
    let _ = cluster.tick(boot.now);
    shared.cluster.publish(Arc::new(cluster.clone()));

    let seeds: Vec<String> = cluster
        .nodes()
        .into_iter()
        .filter(|n| !n.is_myself())
        .map(|n| format!("{}:{}", n.addr.ip, n.addr.cport))
        .collect();
    let me = cluster.myself();
    let start = gossip::Start {
        id: me.id,
        generation: boot.now,
        listen: listen_addr(&config, port),
        advertise: SocketAddr::new(
            me.addr.ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
            me.addr.cport,
        ),
        seeds,
        claim: cluster.claim().to_text(),
        node_timeout: Duration::from_millis(config.cluster.node_timeout),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the cluster bus runtime")?;
    let listen = start.listen;
    let my_id = start.id.as_str().to_string();
    let gossip = runtime
        .block_on(Gossip::start(start))
        .context("cannot start the cluster bus")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("cannot listen on the cluster bus port {listen}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    shared
        .cluster
        .install(move |request| tx.send(request).is_ok());
    let (ftx, frx) = mpsc::unbounded_channel();
    shared
        .cluster
        .install_forward(move |item| ftx.send(item).is_ok());
    let links = {
        let _guard = runtime.enter();
        Links::start(shared.clone(), &my_id, listener)
    };
    let bus = BusThread {
        shared: shared.clone(),
        cluster,
        gossip,
        links,
        path,
    };
    std::thread::Builder::new()
        .name("ringcast-bus".into())
        .spawn(move || runtime.block_on(bus.run(rx, frx)))
        .context("cannot start the cluster bus thread")?;
    Ok(())
}

struct BusThread {
    shared: Arc<Shared>,
    cluster: Cluster,
    gossip: Gossip,
    links: Links,
    /// nodes.conf.
    path: String,
}

impl BusThread {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<BusRequest>,
        mut forwards: mpsc::UnboundedReceiver<Forward>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => self.answer(request).await,
                    None => break,
                },
                Some(item) = forwards.recv() => {
                    // What piled up meanwhile, in one go: the link writers
                    // then send each peer's share in one write.
                    self.links.take(item);
                    while let Ok(item) = forwards.try_recv() {
                        self.links.take(item);
                    }
                }
                _ = tick.tick() => {
                    if self.shared.shutting_down.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                    self.cron().await;
                }
            }
        }
        self.links.shutdown();
        self.gossip.shutdown().await;
    }

    async fn answer(&mut self, request: BusRequest) {
        let (mut reply, effects) = self.cluster.command(request.args.list(), unix_ms());
        if let (Reply::Text(text), Some(sub)) = (&mut reply, request.args.list().get(1))
            && sub.eq_ignore_ascii_case(b"info")
        {
            let stats = self.shared.cluster.forward_stats();
            *text = ringcast_core::cluster::forward::splice_info(text, stats);
        }
        self.act(effects).await;
        // Every command may change what routing sees: the snapshot first,
        // then the reply.
        self.shared.cluster.publish(Arc::new(self.cluster.clone()));
        let mail = Mail::Reply {
            client: request.client,
            reply,
        };
        self.shared.post_cluster_mail(request.worker, mail);
    }

    /// Redis's `clusterCron`: gossip news, settings, time.
    async fn cron(&mut self) {
        let config = self.shared.config.load_full();
        let now = unix_ms();
        let mut effects = Vec::new();
        let wanted = settings(&config);
        if *self.cluster.settings() != wanted {
            effects.extend(self.cluster.set_settings(wanted, now));
        }
        let addr = my_addr(&config, self.shared.info.port);
        if self.cluster.myself().addr != addr {
            effects.extend(self.cluster.set_my_addr(addr, now));
        }
        let timeout = Duration::from_millis(config.cluster.node_timeout.max(1));
        let news = self.gossip.poll(timeout, now).await;
        for claim in &news.claims {
            effects.extend(self.cluster.apply_claim(claim, now));
        }
        for (id, liveness) in &news.liveness {
            tracing::info!("cluster node {id} is now {liveness:?}");
            effects.extend(self.cluster.set_liveness(id, *liveness, now));
        }
        let timeout_ms = config.cluster.node_timeout.max(1);
        for (id, heard) in &news.heard {
            self.cluster.set_heard(id, *heard, now, timeout_ms);
        }
        for (id, reports) in &news.reports {
            effects.extend(self.cluster.apply_reports(id, reports, now));
        }
        self.links.sync(self.gossip.live_peers());
        self.links.expire_holds();
        let me = self.cluster.myself().id;
        let replicas = self
            .cluster
            .nodes()
            .into_iter()
            .filter(|n| n.master == Some(me))
            .map(|n| n.id.as_str().to_string())
            .collect();
        self.links.set_replicas(replicas);
        effects.extend(self.cluster.tick(now));
        let reports = self.cluster.reports().to_text();
        self.gossip.publish_reports(reports).await;
        if !effects.is_empty() {
            self.act(effects).await;
            self.shared.cluster.publish(Arc::new(self.cluster.clone()));
        }
    }

    /// Carry out the effects, in order; nodes.conf at most once.
    async fn act(&mut self, effects: Vec<Effect>) {
        let mut saved = false;
        for effect in effects {
            match effect {
                Effect::LostSlots(slots) => {
                    let slots = Arc::new(slots);
                    for w in 0..self.shared.info.workers {
                        self.shared
                            .post_cluster_mail(w, Mail::LostSlots(slots.clone()));
                    }
                }
                Effect::SaveConfig if !saved => {
                    saved = true;
                    if let Err(e) = conf::write(&self.path, &self.cluster.nodes_conf()) {
                        tracing::warn!(
                            "cannot write the cluster config file {}: {}",
                            self.path,
                            ringcast_core::errors::strerror(&e)
                        );
                    }
                }
                Effect::SaveConfig => {}
                Effect::PublishClaim => {
                    self.gossip.publish(self.cluster.claim().to_text()).await;
                }
                Effect::Meet { ip, cport, .. } => match ip.parse::<IpAddr>() {
                    Ok(ip) => self.gossip.meet(SocketAddr::new(ip, cport)),
                    Err(_) => tracing::warn!("cluster bus: cannot meet {ip}:{cport}"),
                },
                Effect::Forget(id) => self.gossip.forget(&id),
            }
        }
    }
}
