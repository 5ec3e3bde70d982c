//! Differential test: random pub/sub scenarios run on ringcast and on a
//! redis-server started by the test, every client's received bytes compared
//! step by step, reply by reply and push by push.
//!
//! ```text
//! cargo build -p ringcast-server && cargo test -p ringcast-tests --test differential
//! RINGCAST_DIFF_SEEDS=2000 cargo test -p ringcast-tests --test differential   # seeds 0..2000
//! RINGCAST_DIFF_SEEDS=5000..6000 ...   # a range of seeds
//! RINGCAST_DIFF_SEED=1234 ...          # replay one seed
//! RINGCAST_DIFF_KEEP_GOING=1 ...       # report every failing seed, not only the first
//! RINGCAST_DIFF_TRACE=1 ... -- --nocapture   # print every step as it runs
//! RINGCAST_DIFF_PROBE_KNOWN=1 ...      # also generate the inputs of KNOWN_UNFIXED_DIFFERENCES
//! REDIS_SERVER_BIN=/path/to/redis-server ...   # the reference server (default: redis-server)
//! ```
//!
//! Layout: `differential/scenario.rs` generates scenarios from a seed,
//! `differential/replay.rs` runs one on both servers and settles every
//! client after each step, `differential/normalise.rs` holds the only
//! normalisations applied before comparing: the differences listed in
//! `docs/redis-differences.md` and the orders Redis does not define.
//!
//! A failure prints the seed and a transcript of the scenario shrunk to the
//! fewest steps that still show a difference.

#[path = "differential/normalise.rs"]
mod normalise;
#[path = "differential/replay.rs"]
mod replay;
#[path = "differential/scenario.rs"]
mod scenario;

use normalise::{Reference, normalise};
use replay::{Received, Setup, StepResult, Unit};
use ringcast_tests::Backend;
use ringcast_tests::resp::show;
use scenario::{Avoid, PROBES, Scenario, Step, generate};
use std::ops::Range;

/// Differences from Redis 7.2 that are ringcast bugs, found by this test and
/// not fixed yet: (probe, what differs). The generator leaves out the inputs
/// of each listed probe (see `scenario::PROBES`); remove an entry once the
/// bug is fixed, and the test covers those inputs again.
const KNOWN_UNFIXED_DIFFERENCES: &[(&str, &str)] = &[];

/// Intended differences (rows of `docs/redis-differences.md`) that no
/// normalisation can hide, so the generator leaves their inputs out too.
const INTENDED_BUT_NOT_NORMALISED: &[(&str, &str)] = &[(
    "quit-with-reply-silenced",
    "row 14: QUIT with its +OK silenced closes at once; Redis keeps the connection, counted by PUBLISH, until its next write",
)];

/// Seeds the default `cargo test` runs.
const DEFAULT_SEEDS: Range<u64> = 0..16;

/// The password of the scenarios that run with one.
const PASSWORD: &[u8] = b"pw";

#[test]
fn ringcast_matches_redis_on_random_pubsub_scenarios() {
    check_seeds("ringcast_matches_redis_on_random_pubsub_scenarios", None);
}

/// The same with `requirepass` set: clients start unauthenticated, and
/// AUTH, HELLO AUTH and RESET move them in and out; the order in which
/// arity, authentication and the subscribed context are checked shows.
#[test]
fn ringcast_matches_redis_on_random_scenarios_with_a_password() {
    check_seeds(
        "ringcast_matches_redis_on_random_scenarios_with_a_password",
        Some(PASSWORD),
    );
}

fn check_seeds(test: &str, password: Option<&'static [u8]>) {
    let Some(reference) = reference_server() else {
        eprintln!("skipped: no redis-server to compare with (set REDIS_SERVER_BIN)");
        return;
    };
    let avoid = if std::env::var_os("RINGCAST_DIFF_PROBE_KNOWN").is_some() {
        Avoid::default()
    } else {
        Avoid(
            KNOWN_UNFIXED_DIFFERENCES
                .iter()
                .chain(INTENDED_BUT_NOT_NORMALISED)
                .map(|(p, _)| *p)
                .collect(),
        )
    };
    let keep_going = std::env::var_os("RINGCAST_DIFF_KEEP_GOING").is_some();
    let seeds = seeds();
    let total = seeds.len();
    let mut failures = Vec::new();
    for (n, seed) in seeds.into_iter().enumerate() {
        if n > 0 && n % 100 == 0 {
            eprintln!("{test}: {n} of {total} seeds, {} failing", failures.len());
        }
        let scenario = generate(seed, password, &avoid);
        let setup = setup(seed);
        if let Some(failure) = run(&scenario, &setup, reference) {
            let report = shrink_and_report(test, scenario, &setup, reference, failure);
            if !keep_going {
                panic!("{report}");
            }
            eprintln!("{report}");
            failures.push(seed);
        }
    }
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn every_known_difference_names_a_probe_of_the_generator() {
    for (probe, what) in KNOWN_UNFIXED_DIFFERENCES
        .iter()
        .chain(INTENDED_BUT_NOT_NORMALISED)
    {
        assert!(
            PROBES.contains(probe),
            "{probe:?} ({what}) is not in PROBES"
        );
    }
}

/// The reference server's version decides the one normalisation that depends
/// on it; `None` when there is no redis-server to run.
fn reference_server() -> Option<Reference> {
    let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or_else(|| panic!("{bin} --version printed {text:?}"));
    Some(Reference {
        is_7_0: version.starts_with("7.0."),
    })
}

/// `RINGCAST_DIFF_SEED=s` → `[s]`; `RINGCAST_DIFF_SEEDS=n` → `0..n`;
/// `RINGCAST_DIFF_SEEDS=a..b` → `a..b`; otherwise [`DEFAULT_SEEDS`].
fn seeds() -> Vec<u64> {
    let parse = |s: &str| -> u64 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a seed number: {s:?}"))
    };
    if let Ok(one) = std::env::var("RINGCAST_DIFF_SEED") {
        return vec![parse(&one)];
    }
    match std::env::var("RINGCAST_DIFF_SEEDS") {
        Ok(spec) => match spec.split_once("..") {
            Some((a, b)) => (parse(a)..parse(b)).collect(),
            None => (0..parse(&spec)).collect(),
        },
        Err(_) => DEFAULT_SEEDS.collect(),
    }
}

/// Both I/O backends take turns, by seed.
fn setup(seed: u64) -> Setup {
    Setup {
        backend: if seed.is_multiple_of(2) {
            Backend::Uring
        } else {
            Backend::Epoll
        },
    }
}

/// A step whose normalised frames differ for at least one client.
struct Failure {
    step: usize,
    clients: Differing,
}

/// Runs a scenario; `None` when every step matched.
fn run(scenario: &Scenario, setup: &Setup, reference: Reference) -> Option<Failure> {
    let trace = std::env::var_os("RINGCAST_DIFF_TRACE").is_some();
    let outcome = replay::replay(
        scenario,
        setup,
        |i, step, result| {
            if trace {
                eprintln!("#{i} c{}: {}", step.client, describe_step(step));
                for (c, units) in result.redis.iter().enumerate() {
                    let redis: Vec<String> = units.iter().map(|u| show(&raw(u))).collect();
                    let ours: Vec<String> =
                        result.ringcast[c].iter().map(|u| show(&raw(u))).collect();
                    eprintln!(
                        "   c{c} redis    {}\n   c{c} ringcast {}",
                        redis.join(" "),
                        ours.join(" ")
                    );
                }
            }
            compare(step, result, reference)
        },
        |late: Received| {
            let clients: Vec<_> = late
                .into_iter()
                .enumerate()
                .filter(|(_, units)| !units.is_empty())
                .map(|(c, units)| (c, Vec::new(), units.iter().map(raw).collect()))
                .collect();
            if clients.is_empty() {
                Ok(())
            } else {
                Err(clients)
            }
        },
    );
    outcome
        .err()
        .map(|(step, clients)| Failure { step, clients })
}

fn raw(unit: &Unit) -> Vec<u8> {
    match unit {
        Unit::Frame(_, raw) => raw.clone(),
        Unit::Closed => b"<connection closed>".to_vec(),
        Unit::Silent => b"<nothing more within the wait>".to_vec(),
    }
}

/// (client, redis frames, ringcast frames) for each client that differs.
type Differing = Vec<(usize, Vec<Vec<u8>>, Vec<Vec<u8>>)>;

fn compare(step: &Step, result: &StepResult, reference: Reference) -> Result<(), Differing> {
    let differing: Differing = (0..result.redis.len())
        .filter_map(|c| {
            let acting = c == step.client;
            let redis = normalise(&result.redis[c], step, acting, reference, true);
            let ringcast = normalise(&result.ringcast[c], step, acting, reference, false);
            (redis != ringcast).then_some((c, redis, ringcast))
        })
        .collect();
    if differing.is_empty() {
        Ok(())
    } else {
        Err(differing)
    }
}

/// Drops steps, then commands of pipelines, then arguments, while the
/// scenario still fails, and describes the smallest failing scenario found.
fn shrink_and_report(
    test: &str,
    mut scenario: Scenario,
    setup: &Setup,
    reference: Reference,
    failure: Failure,
) -> String {
    let original = scenario.steps.len();
    scenario.steps.truncate(failure.step + 1);
    let mut shrink = Shrinker {
        best: scenario,
        failure,
        attempts: 0,
        setup,
        reference,
    };
    shrink.drop_parts(|s| s.steps.len(), |s, range| drop(s.steps.drain(range)));
    for step in 0..shrink.best.steps.len() {
        if step >= shrink.best.steps.len() {
            break;
        }
        shrink.drop_parts(
            |s| s.steps.get(step).map_or(0, |st| st.commands.len()),
            |s, range| {
                if range.len() < s.steps[step].commands.len() {
                    s.steps[step].commands.drain(range);
                } else {
                    // Never empty a step: that is dropping the step.
                    s.steps.clear();
                }
            },
        );
        for cmd in 0..shrink
            .best
            .steps
            .get(step)
            .map_or(0, |st| st.commands.len())
        {
            // Arguments after the name (index 0 stays).
            let args = |s: &Scenario| {
                s.steps
                    .get(step)
                    .and_then(|st| st.commands.get(cmd))
                    .map_or(0, |c| c.len().saturating_sub(1))
            };
            shrink.drop_parts(args, |s, range| {
                s.steps[step].commands[cmd].drain(range.start + 1..range.end + 1);
            });
        }
    }
    let Shrinker {
        best,
        failure,
        attempts,
        ..
    } = shrink;
    report(test, &best, setup, original, attempts, &failure)
}

/// The smallest failing scenario found so far.
struct Shrinker<'a> {
    best: Scenario,
    failure: Failure,
    attempts: usize,
    setup: &'a Setup,
    reference: Reference,
}

impl Shrinker<'_> {
    /// Tries to remove parts of the best scenario (steps, commands of a
    /// step, arguments of a command: `len` counts them, `remove` takes a
    /// range out), in chunks halving down to single parts, keeping every
    /// removal after which the scenario still fails.
    fn drop_parts(
        &mut self,
        len: impl Fn(&Scenario) -> usize,
        remove: impl Fn(&mut Scenario, std::ops::Range<usize>),
    ) {
        let mut chunk = len(&self.best).div_ceil(2);
        while chunk >= 1 {
            let mut start = 0;
            while start < len(&self.best) {
                let end = (start + chunk).min(len(&self.best));
                let mut candidate = self.best.clone();
                remove(&mut candidate, start..end);
                if !self.keep_if_failing(candidate) {
                    start += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }

    /// Keeps `candidate` (cut after its failing step) if it still fails.
    fn keep_if_failing(&mut self, mut candidate: Scenario) -> bool {
        if candidate.steps.is_empty() {
            return false;
        }
        self.attempts += 1;
        match run(&candidate, self.setup, self.reference) {
            Some(f) => {
                candidate.steps.truncate(f.step + 1);
                self.best = candidate;
                self.failure = f;
                true
            }
            None => false,
        }
    }
}

fn report(
    test: &str,
    scenario: &Scenario,
    setup: &Setup,
    original: usize,
    attempts: usize,
    failure: &Failure,
) -> String {
    let mut out = format!(
        "ringcast differs from redis-server: seed {} ({:?} backend{}), shrunk from {original} to {} steps in {attempts} runs.\n\
         Replay: RINGCAST_DIFF_SEED={} cargo test -p ringcast-tests --test differential {test}\n\
         {} clients, connected in order (client k on ringcast worker k mod 2); steps:\n",
        scenario.seed,
        setup.backend,
        match scenario.password {
            Some(pw) => format!(", requirepass \"{}\"", show(pw)),
            None => String::new(),
        },
        scenario.steps.len(),
        scenario.seed,
        scenario.clients,
    );
    for (i, step) in scenario.steps.iter().enumerate() {
        out.push_str(&format!(
            "  #{i} c{}: {}\n",
            step.client,
            describe_step(step)
        ));
    }
    if failure.step == scenario.steps.len() {
        out.push_str("after the last step, ringcast still sent:\n");
    } else {
        out.push_str(&format!(
            "difference at step #{} (frames after normalisation, settle confirmation last):\n",
            failure.step
        ));
    }
    for (c, redis, ringcast) in &failure.clients {
        out.push_str(&format!("  client {c}:\n"));
        let first = redis
            .iter()
            .zip(ringcast)
            .position(|(a, b)| a != b)
            .unwrap_or(redis.len().min(ringcast.len()));
        for (name, frames) in [("redis   ", redis), ("ringcast", ringcast)] {
            for (i, f) in frames.iter().enumerate() {
                let mark = if i == first { ">>" } else { "  " };
                out.push_str(&format!("    {name} {mark} {}\n", show(f)));
            }
            if frames.len() == first {
                out.push_str(&format!("    {name} >> (nothing)\n"));
            }
        }
    }
    out
}

/// A step's commands, separated by `|`.
fn describe_step(step: &Step) -> String {
    let cmds: Vec<String> = step.commands.iter().map(|c| describe(c)).collect();
    cmds.join(" | ")
}

/// A command as `NAME "arg" "arg"`, long arguments abbreviated.
fn describe(cmd: &[Vec<u8>]) -> String {
    cmd.iter()
        .map(|a| {
            if a.len() > 48 {
                format!("\"{}…\"({} bytes)", show(&a[..24]), a.len())
            } else {
                format!("\"{}\"", show(a))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
