//! The named shape presets that every comparison covers (the shape matrix of
//! the benchmarking guide), usable alone with `run --preset NAME`.

use crate::plan::{Placement, Shape, Workload};

/// A named workload.
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    /// In the default `compare` matrix (others only when named in `--shapes`).
    pub default: bool,
    /// Latency presets: the rates (msg/s, all publishers) `compare` runs it
    /// at, one table row group each; `run --preset` takes the first.
    pub rates: &'static [f64],
    /// Fewest server workers the shape means something with (ringcast is
    /// started with at least this many threads for it).
    pub min_workers: usize,
    apply: fn(&mut Workload, bool),
}

impl Preset {
    /// Sets the preset's shape fields on `w`; `quick` shrinks the large setups.
    pub fn apply(&self, w: &mut Workload, quick: bool) {
        w.publishers = None;
        w.subscribers = None;
        w.channels = None;
        w.rate = None;
        w.noise_patterns = 0;
        w.payload = 64;
        w.probe = false;
        w.placement = Placement::Any;
        (self.apply)(w, quick);
        if let Some(&r) = self.rates.first() {
            w.rate = Some(r);
        }
    }
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "pairs1",
        about: "1 publisher -> 1 subscriber, 64 B, max rate",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Pairs;
            w.subscribers = Some(1);
        },
    },
    Preset {
        name: "pairs8",
        about: "8 publisher -> subscriber pairs, 64 B, max rate",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Pairs;
            w.subscribers = Some(8);
        },
    },
    Preset {
        name: "fanout100",
        about: "1 publisher -> 100 subscribers on one channel, 64 B",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Fanout;
            w.subscribers = Some(100);
        },
    },
    Preset {
        name: "fanout1000",
        about: "1 publisher -> 1000 subscribers on one channel, 64 B",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Fanout;
            w.subscribers = Some(1000);
        },
    },
    Preset {
        name: "spread",
        about: "10,000 channels, 500 subscribers x 100 channels, 4 publishers",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Spread;
            w.channels = Some(10_000);
            w.subscribers = Some(500);
            w.channels_per_subscriber = 100;
            w.publishers = Some(4);
        },
    },
    Preset {
        name: "patterns",
        about: "100 subscribers, each PSUBSCRIBEs a pattern matching its channel",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Patterns;
            w.subscribers = Some(100);
        },
    },
    Preset {
        name: "patterns-noise",
        about: "patterns, plus 10,000 non-matching patterns held",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Patterns;
            w.subscribers = Some(100);
            w.noise_patterns = 10_000;
        },
    },
    Preset {
        name: "large4k",
        about: "4 KiB payload to 50 subscribers",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Fanout;
            w.subscribers = Some(50);
            w.payload = 4096;
        },
    },
    Preset {
        name: "large64k",
        about: "64 KiB payload to 50 subscribers",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Fanout;
            w.subscribers = Some(50);
            w.payload = 65536;
        },
    },
    Preset {
        name: "openloop",
        about: "open loop latency: 10 pairs at a fixed 50,000 msg/s in total",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Pairs;
            w.subscribers = Some(10);
            w.rate = Some(50_000.0);
        },
    },
    Preset {
        name: "churn",
        about: "SUBSCRIBE/UNSUBSCRIBE churn with 1,000,000 channels held (quick: 100,000), publishing to 10 subscribers",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, quick| {
            w.shape = Shape::Churn;
            w.subscribers = Some(10);
            w.held_channels = if quick { 100_000 } else { 1_000_000 };
        },
    },
    Preset {
        name: "memory",
        about: "server RSS per idle subscriber connection at 10,000 connections (quick: 2,000)",
        default: true,
        rates: &[],
        min_workers: 1,
        apply: |w, quick| {
            w.shape = Shape::Memory;
            w.connections = if quick { 2_000 } else { 10_000 };
        },
    },
    Preset {
        name: "sharded",
        about: "SSUBSCRIBE/SPUBLISH: 1 publisher -> 100 subscribers on one shard channel",
        default: false,
        rates: &[],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Sharded;
            w.subscribers = Some(100);
        },
    },
    Preset {
        name: "latency-pairs1",
        about: "latency probe: 1 pair, publisher on its subscriber's worker, beside the tool's floor",
        default: false,
        rates: &[1_000.0, 10_000.0, 100_000.0],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Pairs;
            w.subscribers = Some(1);
            w.probe = true;
            w.placement = Placement::Same;
        },
    },
    Preset {
        name: "latency-pairs10",
        about: "latency probe: 10 pairs, each publisher on its subscriber's worker",
        default: false,
        rates: &[1_000.0, 10_000.0, 100_000.0],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Pairs;
            w.subscribers = Some(10);
            w.probe = true;
            w.placement = Placement::Same;
        },
    },
    Preset {
        name: "latency-fanout100",
        about: "latency probe: 1 publisher -> 100 subscribers (rate = published msg/s)",
        default: false,
        rates: &[1_000.0, 10_000.0],
        min_workers: 1,
        apply: |w, _| {
            w.shape = Shape::Fanout;
            w.subscribers = Some(100);
            w.probe = true;
        },
    },
    Preset {
        name: "latency-cross",
        about: "latency probe: 1 pair, publisher and subscriber on different workers (ringcast >= 2 workers)",
        default: false,
        rates: &[1_000.0, 10_000.0, 100_000.0],
        min_workers: 2,
        apply: |w, _| {
            w.shape = Shape::Pairs;
            w.subscribers = Some(1);
            w.probe = true;
            w.placement = Placement::Cross;
        },
    },
];

/// The presets a `--shapes` name stands for: one preset, or every latency
/// preset for `latency`.
pub fn select(name: &str) -> Vec<&'static Preset> {
    if name == "latency" {
        return PRESETS.iter().filter(|p| !p.rates.is_empty()).collect();
    }
    find(name).into_iter().collect()
}

pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// A rate for a table label: `1k`, `100k`, `2.5k`, `500`.
pub fn rate_label(r: f64) -> String {
    if r >= 1000.0 {
        format!("{}k", r / 1000.0)
    } else {
        format!("{r}")
    }
}

/// Text listing of every preset, each with the flags it stands for.
pub fn listing() -> String {
    let mut s = String::from(
        "Each preset stands for the flags under it; flags given on the command line \
         (run --preset NAME, compare --shapes NAME) override them.\n\n",
    );
    for p in PRESETS {
        let mut w = Workload::defaults();
        p.apply(&mut w, false);
        s.push_str(&format!(
            "{:<18} {}{}{}\n{:<18} {}\n",
            p.name,
            p.about,
            if p.rates.is_empty() {
                String::new()
            } else {
                let rates: Vec<String> = p.rates.iter().map(|&r| rate_label(r)).collect();
                format!("; at {} msg/s", rates.join(", "))
            },
            if p.default {
                ""
            } else if !p.rates.is_empty() {
                "  (compare --shapes latency)"
            } else {
                "  (not in the default matrix)"
            },
            "",
            w.flags().join(" ")
        ));
    }
    s
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

    #[test]
    fn every_preset_resolves_to_a_valid_plan() {
        for p in PRESETS {
            let mut w = Cli::parse_from(["x"]).w;
            p.apply(&mut w, true);
            let plan = w.plan();
            assert!(plan.is_ok(), "{}: {:?}", p.name, plan.err());
        }
    }

    #[test]
    fn latency_group_names_every_latency_preset_and_rates_read_short() {
        let names: Vec<&str> = select("latency").iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "latency-pairs1",
                "latency-pairs10",
                "latency-fanout100",
                "latency-cross"
            ]
        );
        assert!(select("latency").iter().all(|p| {
            let mut w = Cli::parse_from(["x"]).w;
            p.apply(&mut w, false);
            w.probe && w.rate == Some(p.rates[0])
        }));
        assert_eq!(select("nonsense").len(), 0);
        assert_eq!(rate_label(1000.0), "1k");
        assert_eq!(rate_label(100_000.0), "100k");
        assert_eq!(rate_label(2500.0), "2.5k");
        assert_eq!(rate_label(500.0), "500");
    }

    #[test]
    fn preset_names_are_unique() {
        for (i, a) in PRESETS.iter().enumerate() {
            assert!(PRESETS[i + 1..].iter().all(|b| b.name != a.name));
        }
    }
}
