//! LATENCY LATEST, HISTORY, RESET, GRAPH, DOCTOR, HISTOGRAM and HELP over
//! the latency monitor (`crate::latency`), which every worker feeds.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{CommandSpec, Ctx, Exec, FLAT, cmd, docs, help};
use crate::errors;
use crate::latency::DoctorSettings;
use crate::resp::args::ArgList;
use crate::resp::encode;

pub(super) static LATENCY: &[CommandSpec] = &[
    cmd("latency|doctor", 2, 0, latency_doctor),
    cmd("latency|graph", 3, 0, latency_graph),
    cmd("latency|histogram", -2, 0, latency_histogram),
    cmd("latency|history", 3, 0, latency_history),
    cmd("latency|latest", 2, 0, latency_latest),
    cmd("latency|reset", -2, 0, |ctx, a| {
        let events: Vec<&[u8]> = a.slice(2..).to_vec();
        let n = ctx.shared.latency.reset(&events);
        encode::integer(ctx.reply, n as i64);
        Exec::Done
    }),
    cmd("latency|help", 2, 0, |ctx, _| {
        help(
            ctx,
            &[
                "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "GRAPH <event>",
                "    Return an ASCII latency graph for the <event> class.",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HISTOGRAM [COMMAND ...]",
                "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                "    If no commands are specified then all histograms are replied.",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `LATENCY LATEST`: `[event, time, latest ms, worst ms]` per event.
fn latency_latest(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let latest = ctx.shared.latency.latest();
    encode::array(ctx.reply, latest.len());
    for l in latest {
        encode::array(ctx.reply, 4);
        encode::bulk(ctx.reply, l.event.as_bytes());
        encode::integer(ctx.reply, l.time as i64);
        encode::integer(ctx.reply, l.latency_ms as i64);
        encode::integer(ctx.reply, l.max_ms as i64);
    }
    Exec::Done
}

/// `LATENCY HISTORY event`: `[time, ms]` per sample, oldest first; empty
/// for an unknown event.
fn latency_history(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let samples = ctx.shared.latency.history(&args[2]);
    encode::array(ctx.reply, samples.len());
    for (time, ms) in samples {
        encode::array(ctx.reply, 2);
        encode::integer(ctx.reply, time as i64);
        encode::integer(ctx.reply, ms as i64);
    }
    Exec::Done
}

fn latency_graph(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    match ctx.shared.latency.graph(&args[2], unix_now()) {
        Some(graph) => {
            let proto = ctx.session.proto;
            encode::verbatim(ctx.reply, b"txt", graph.as_bytes(), proto);
        }
        None => encode::error(ctx.reply, errors::no_latency_samples(&args[2])),
    }
    Exec::Done
}

fn latency_doctor(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let config = ctx.shared.config.load();
    let settings = DoctorSettings {
        latency_threshold_ms: config.latency_monitor_threshold,
        slowlog_slower_than_us: config.slowlog_log_slower_than,
    };
    let report = ctx.shared.latency.doctor(settings, unix_now());
    let proto = ctx.session.proto;
    encode::verbatim(ctx.reply, b"txt", report.as_bytes(), proto);
    Exec::Done
}

/// `LATENCY HISTOGRAM [command ...]`: a map of each command that has calls
/// (all of them, or those named and the subcommands of a container named)
/// to its calls and cumulative `histogram_usec`. Unknown names are skipped.
fn latency_histogram(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let ids: Vec<u16> = if args.len() == 2 {
        (0..FLAT.len() as u16).collect()
    } else {
        args.slice(2..)
            .iter()
            .filter_map(docs::resolve)
            .flat_map(|c| std::iter::once(c).chain(c.subcommands))
            .filter_map(super::id_of)
            .collect()
    };
    let found: Vec<_> = ids
        .into_iter()
        .filter_map(|id| Some((id, ctx.shared.latency.histogram(id)?)))
        .collect();
    let proto = ctx.session.proto;
    encode::map(ctx.reply, found.len(), proto);
    for (id, (calls, steps)) in found {
        encode::bulk(ctx.reply, super::name_of(id).as_bytes());
        encode::map(ctx.reply, 2, proto);
        encode::bulk(ctx.reply, b"calls");
        encode::integer(ctx.reply, calls as i64);
        encode::bulk(ctx.reply, b"histogram_usec");
        encode::map(ctx.reply, steps.len(), proto);
        for (usec, count) in steps {
            encode::integer(ctx.reply, usec as i64);
            encode::integer(ctx.reply, count as i64);
        }
    }
    Exec::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_id_has_a_histogram_slot() {
        assert!(FLAT.len() <= crate::latency::COMMAND_SLOTS);
    }
}
