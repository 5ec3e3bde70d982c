//! Workloads: the knobs a user sets (shape, counts, sizes, rates) and the
//! concrete topology they resolve to — which channels each subscriber
//! listens on and which channels each publisher publishes to.
//!
//! The topology is data, so the engine has one code path for every shape and
//! each subscriber can compute exactly which (publisher, channel) streams it
//! must receive.

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::conn::Naming;
use crate::payload::HEADER_LEN;

/// What kind of pub/sub traffic to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Every subscriber on the same channels; every publisher publishes to all of them.
    Fanout,
    /// N publisher→subscriber pairs, each on its own channel.
    Pairs,
    /// Many channels; each subscriber on a random subset; channels split among publishers.
    Spread,
    /// Each subscriber PSUBSCRIBEs a pattern matching exactly one channel.
    Patterns,
    /// Fan-out over SSUBSCRIBE / SPUBLISH.
    Sharded,
    /// SUBSCRIBE/UNSUBSCRIBE churn with many channels already held, while publishing (fan-out).
    Churn,
    /// Server RSS per idle subscriber connection.
    Memory,
}

/// Where the latency probe wants each publisher relative to the
/// subscribers of its channels, on a server with several workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Wherever the server puts it.
    Any,
    /// On the same worker as its (first) subscriber.
    Same,
    /// On another worker than its (first) subscriber.
    Cross,
}

/// How subscribers subscribe (and publishers publish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubKind {
    Channel,
    Pattern,
    Shard,
}

impl SubKind {
    pub fn subscribe_verb(self) -> &'static [u8] {
        match self {
            SubKind::Channel => b"SUBSCRIBE",
            SubKind::Pattern => b"PSUBSCRIBE",
            SubKind::Shard => b"SSUBSCRIBE",
        }
    }

    pub fn publish_verb(self) -> &'static [u8] {
        match self {
            SubKind::Shard => b"SPUBLISH",
            _ => b"PUBLISH",
        }
    }

    /// The first element of the message frames a subscriber receives.
    pub fn message_kind(self) -> &'static [u8] {
        match self {
            SubKind::Channel => b"message",
            SubKind::Pattern => b"pmessage",
            SubKind::Shard => b"smessage",
        }
    }
}

/// Workload flags, shared by `run` and (as presets) by `compare`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct Workload {
    /// Traffic shape.
    #[arg(long, value_enum, default_value = "fanout")]
    pub shape: Shape,
    /// Publisher connections [default: fanout/sharded/patterns/churn 1, spread 4, pairs = subscribers].
    #[arg(long)]
    pub publishers: Option<u32>,
    /// Subscriber connections [default: fanout/sharded/patterns 100, spread 500, pairs 1, churn 10].
    #[arg(long)]
    pub subscribers: Option<u32>,
    /// Channels [default: fanout/sharded/churn 1, spread 10000, pairs/patterns one per subscriber].
    #[arg(long)]
    pub channels: Option<u32>,
    /// Channels each subscriber joins in the spread shape.
    #[arg(long, default_value_t = 100)]
    pub channels_per_subscriber: u32,
    /// Payload size in bytes (at least the 32-byte verification header).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Closed loop: PUBLISHes in flight per publisher connection.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Seconds of publishing, measured.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of publishing before --duration, left out of the figures:
    /// every message is still verified, but latency counts only messages
    /// (intended to be) sent after it, and rates and CPU per message are
    /// measured from its end. The time series marks it.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub warmup: f64,
    /// Stop each publisher after this many messages (instead of / before --duration).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Open loop: total publish rate in messages/s across all publishers.
    /// Latency is then measured from each message's intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Non-matching patterns held by an extra connection while publishing.
    #[arg(long, default_value_t = 0)]
    pub noise_patterns: u32,
    /// Churn shape: channels already subscribed (by idle holder connections).
    #[arg(long, default_value_t = 1_000_000)]
    pub held_channels: u32,
    /// Churn shape: SUBSCRIBE+UNSUBSCRIBE pairs in flight on the churning connection.
    #[arg(long, default_value_t = 32)]
    pub churn_window: usize,
    /// Fan-out shapes: this many more subscribers on every channel that
    /// stop reading once subscribed, as consumers that cannot keep up
    /// among the others. Their deliveries are not
    /// verified (the server may cut them at its output buffer limit); every
    /// other subscriber still must get everything, and the report says how
    /// many of them the server closed. Needs --rate.
    #[arg(long, default_value_t = 0)]
    pub stalled_subscribers: u32,
    /// Memory shape: idle subscriber connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: u32,
    /// Closed loop: pause publishing while more than this many MiB of
    /// promised deliveries are not yet received, so a slow reader cannot pile
    /// up unbounded server output buffers.
    #[arg(long, default_value_t = 32.0)]
    pub max_backlog_mib: f64,
    /// Seed for the spread shape's random subscriptions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prefix of every channel and pattern name.
    #[arg(long, default_value = "rcb")]
    pub prefix: String,
    /// Skip the byte-by-byte padding check (header, length and order are still verified).
    #[arg(long)]
    pub no_check_padding: bool,
    /// Latency probe: one pinned thread paces the publishers precisely,
    /// sends, and busy-reads every socket; the tool's own floor (the same
    /// probe against a minimal relay inside the tool) and half a PING round
    /// trip are measured in the same run. Needs --rate; shapes pairs, fanout, spread.
    #[arg(long)]
    pub probe: bool,
    /// Latency probe: each publisher on the same worker as its subscriber,
    /// on another one, or anywhere (checked with CLIENT INFO's io-thread).
    #[arg(long, value_enum, default_value = "any")]
    pub placement: Placement,
}

/// The concrete topology of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: SubKind,
    pub channels: u32,
    /// Channel indices per subscriber connection.
    pub subscribers: Vec<Vec<u32>>,
    /// Channel indices per publisher connection, published round-robin.
    pub publishers: Vec<Vec<u32>>,
}

impl Workload {
    /// Seconds every publisher sends for: warm-up, then the measured part.
    pub fn publish_seconds(&self) -> f64 {
        self.warmup.max(0.0) + self.duration
    }

    /// The ids of every workload flag (clap's, which are the field names).
    pub fn flag_ids() -> Vec<String> {
        Workload::augment_args(clap::Command::new("workload"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    }

    /// Takes from `from` the fields whose flags are in `given`: the flags
    /// given on the command line, over a preset's values.
    pub fn override_with(&mut self, from: &Workload, given: &[String]) -> Result<()> {
        if given.is_empty() {
            return Ok(());
        }
        let mut mine = serde_json::to_value(&*self)?;
        let theirs = serde_json::to_value(from)?;
        for id in given {
            let Some(v) = theirs.get(id) else {
                bail!("no workload flag {id:?}");
            };
            mine[id] = v.clone();
        }
        *self = serde_json::from_value(mine)?;
        Ok(())
    }

    /// The flags that turn the defaults into this workload, as typed on a
    /// command line (`--shape fanout --subscribers 100`).
    pub fn flags(&self) -> Vec<String> {
        let (Ok(mine), Ok(base)) = (
            serde_json::to_value(self),
            serde_json::to_value(Workload::defaults()),
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for id in Workload::flag_ids() {
            let (v, d) = (&mine[&id], &base[&id]);
            // The shape always shows: it is what the other flags shape.
            if v == d && id != "shape" {
                continue;
            }
            let flag = format!("--{}", id.replace('_', "-"));
            match v {
                serde_json::Value::Bool(true) => out.push(flag),
                serde_json::Value::Bool(false) | serde_json::Value::Null => {}
                serde_json::Value::String(t) => out.push(format!("{flag} {t}")),
                other => out.push(format!("{flag} {other}")),
            }
        }
        out
    }

    /// The workload with every flag at its default.
    pub fn defaults() -> Workload {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            w: Workload,
        }
        <Only as clap::Parser>::parse_from(["ringcast-bench"]).w
    }

    pub fn validate(&self) -> Result<()> {
        if self.payload < HEADER_LEN {
            bail!("--payload must be at least {HEADER_LEN} bytes (the verification header)");
        }
        if self.window == 0 || self.churn_window == 0 {
            bail!("windows must be at least 1");
        }
        if !self.duration.is_finite() || self.duration <= 0.0 {
            bail!("--duration must be positive");
        }
        if !self.warmup.is_finite() || self.warmup < 0.0 {
            bail!("--warmup must be 0 or more seconds");
        }
        if let Some(r) = self.rate
            && (!r.is_finite() || r <= 0.0)
        {
            bail!("--rate must be positive");
        }
        if self.probe {
            if self.rate.is_none() {
                bail!(
                    "--probe measures latency at a fixed rate: give --rate (msg/s, all publishers together)"
                );
            }
            if !matches!(self.shape, Shape::Pairs | Shape::Fanout | Shape::Spread) {
                bail!("--probe runs the pairs, fanout and spread shapes");
            }
        } else if self.placement != Placement::Any {
            bail!("--placement needs --probe");
        }
        if self.stalled_subscribers > 0 {
            // The closed loop bounds what is promised and not yet received,
            // which deliveries to stalled subscribers would never leave.
            if self.rate.is_none() || self.probe {
                bail!("--stalled-subscribers needs an open-loop run (--rate, without --probe)");
            }
            if !matches!(self.shape, Shape::Fanout | Shape::Sharded) {
                bail!("--stalled-subscribers runs the fanout and sharded shapes");
            }
        }
        Ok(())
    }

    /// Resolves shape defaults into the topology.
    pub fn plan(&self) -> Result<Plan> {
        self.validate()?;
        let (kind, subs_default, pubs_default, chans_default) = match self.shape {
            Shape::Fanout => (SubKind::Channel, 100, 1, 1),
            Shape::Sharded => (SubKind::Shard, 100, 1, 1),
            Shape::Churn => (SubKind::Channel, 10, 1, 1),
            Shape::Pairs => {
                let n = self.subscribers.or(self.publishers).unwrap_or(1);
                (SubKind::Channel, n, n, n)
            }
            Shape::Spread => (SubKind::Channel, 500, 4, 10_000),
            Shape::Patterns => {
                let n = self.subscribers.unwrap_or(100);
                (SubKind::Pattern, n, 1, n)
            }
            Shape::Memory => (SubKind::Channel, 0, 0, 0),
        };
        let s = self.subscribers.unwrap_or(subs_default);
        let p = self.publishers.unwrap_or(pubs_default);
        let c = self.channels.unwrap_or(chans_default);
        if self.shape != Shape::Memory && (s == 0 || p == 0 || c == 0) {
            bail!("publishers, subscribers and channels must all be at least 1");
        }
        let (subscribers, publishers): (Vec<Vec<u32>>, Vec<Vec<u32>>) = match self.shape {
            Shape::Fanout | Shape::Sharded | Shape::Churn => {
                let all: Vec<u32> = (0..c).collect();
                (vec![all.clone(); s as usize], vec![all; p as usize])
            }
            Shape::Pairs => {
                if s != p || c != s {
                    bail!("pairs: publishers, subscribers and channels must be equal");
                }
                let each: Vec<Vec<u32>> = (0..s).map(|i| vec![i]).collect();
                (each.clone(), each)
            }
            Shape::Patterns => {
                if c != s {
                    bail!(
                        "patterns: one channel (and pattern) per subscriber; --channels must equal --subscribers"
                    );
                }
                let subs = (0..s).map(|i| vec![i]).collect();
                (subs, split_round_robin(c, p))
            }
            Shape::Spread => {
                let k = self.channels_per_subscriber.min(c);
                let mut rng = fastrand::Rng::with_seed(self.seed);
                let subs = (0..s).map(|_| sample_distinct(&mut rng, c, k)).collect();
                (subs, split_round_robin(c, p))
            }
            Shape::Memory => (Vec::new(), Vec::new()),
        };
        if publishers.iter().any(|v| v.is_empty()) {
            bail!("more publishers than channels: some publisher would have nothing to publish");
        }
        Ok(Plan {
            kind,
            channels: c,
            subscribers,
            publishers,
        })
    }
}

/// Channel `i` goes to publisher `i % p`.
fn split_round_robin(channels: u32, p: u32) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); p as usize];
    for c in 0..channels {
        out[(c % p) as usize].push(c);
    }
    out
}

/// `k` distinct values from `0..n`, sorted.
fn sample_distinct(rng: &mut fastrand::Rng, n: u32, k: u32) -> Vec<u32> {
    let mut picked = std::collections::BTreeSet::new();
    while (picked.len() as u32) < k {
        picked.insert(rng.u32(0..n));
    }
    picked.into_iter().collect()
}

impl Plan {
    /// The names a subscriber on channels `chans` subscribes to: the channel
    /// names, or each channel's private pattern.
    pub fn subscription_names(&self, naming: &Naming, chans: &[u32]) -> Vec<Vec<u8>> {
        chans
            .iter()
            .map(|&c| match self.kind {
                SubKind::Pattern => naming.pattern(c),
                _ => naming.channel(c),
            })
            .collect()
    }

    /// For each channel, the publishers that publish to it.
    pub fn publishers_by_channel(&self) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); self.channels as usize];
        for (p, chans) in self.publishers.iter().enumerate() {
            for &c in chans {
                out[c as usize].push(p as u32);
            }
        }
        out
    }

    /// The (publisher, channel) streams subscriber `s` must receive.
    pub fn expected_streams(&self, s: usize, by_channel: &[Vec<u32>]) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for &c in &self.subscribers[s] {
            for &p in &by_channel[c as usize] {
                out.push((p, c));
            }
        }
        out
    }

    /// Deliveries one message on channel `c` must produce.
    pub fn receivers_per_channel(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.channels as usize];
        for chans in &self.subscribers {
            for &c in chans {
                out[c as usize] += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        w: Workload,
    }

    fn workload(args: &[&str]) -> Workload {
        let mut v = vec!["x"];
        v.extend_from_slice(args);
        Cli::parse_from(v).w
    }

    #[test]
    fn fanout_defaults_put_every_subscriber_on_the_one_channel() {
        let p = workload(&[]).plan().unwrap();
        assert_eq!(p.subscribers.len(), 100);
        assert!(p.subscribers.iter().all(|s| s == &[0]));
        assert_eq!(p.publishers, vec![vec![0]]);
        let by = p.publishers_by_channel();
        assert_eq!(p.expected_streams(5, &by), vec![(0, 0)]);
    }

    #[test]
    fn spread_subscribers_get_distinct_channels_and_every_channel_one_publisher() {
        let p = workload(&[
            "--shape",
            "spread",
            "--subscribers",
            "20",
            "--channels",
            "1000",
        ])
        .plan()
        .unwrap();
        for s in &p.subscribers {
            assert_eq!(s.len(), 100);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
        }
        let by = p.publishers_by_channel();
        assert!(by.iter().all(|v| v.len() == 1));
        assert_eq!(p.publishers.len(), 4);
    }

    #[test]
    fn pairs_follow_subscriber_count() {
        let p = workload(&["--shape", "pairs", "--subscribers", "8"])
            .plan()
            .unwrap();
        assert_eq!(p.publishers.len(), 8);
        assert_eq!(p.subscribers[3], vec![3]);
        assert_eq!(p.publishers[3], vec![3]);
    }

    #[test]
    fn every_flag_can_override_a_preset() {
        let given = Workload::flag_ids();
        assert!(given.len() >= 20, "{given:?}");
        let from = workload(&[
            "--shape",
            "spread",
            "--subscribers",
            "7",
            "--payload",
            "100",
            "--probe",
            "--placement",
            "cross",
            "--warmup",
            "2",
        ]);
        let mut w = Workload::defaults();
        w.override_with(&from, &given).unwrap();
        assert_eq!(w.flags(), from.flags());
        assert_eq!(
            from.flags(),
            [
                "--shape spread",
                "--subscribers 7",
                "--payload 100",
                "--warmup 2.0",
                "--probe",
                "--placement cross"
            ]
        );
        // Only what is given is taken.
        let mut w = workload(&["--subscribers", "3", "--payload", "200"]);
        w.override_with(&from, &["payload".to_string()]).unwrap();
        assert_eq!((w.subscribers, w.payload), (Some(3), 100));
        assert!(w.override_with(&from, &["nonsense".to_string()]).is_err());
    }

    #[test]
    fn payload_smaller_than_header_is_refused() {
        assert!(workload(&["--payload", "8"]).plan().is_err());
    }
}
