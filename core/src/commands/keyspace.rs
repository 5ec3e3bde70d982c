//! The empty keyspace ringcast presents (FLUSHALL, FLUSHDB, DBSIZE), TIME,
//! and DEBUG (only `DEBUG SLEEP`, and only when `enable-debug-command` allows).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Ctx, Exec};
use crate::config::DebugCommand;
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode;

/// FLUSHALL / FLUSHDB [ASYNC|SYNC]: there is nothing to flush.
pub(super) fn flush(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    match args.to_vec()[..] {
        [_] => encode::simple(ctx.reply, b"OK"),
        [_, mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {
            encode::simple(ctx.reply, b"OK")
        }
        _ => encode::error(ctx.reply, errors::SYNTAX),
    }
    Exec::Done
}

pub(super) fn dbsize(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    encode::integer(ctx.reply, 0);
    Exec::Done
}

pub(super) fn time(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    encode::array(ctx.reply, 2);
    encode::bulk(ctx.reply, now.as_secs().to_string().as_bytes());
    encode::bulk(ctx.reply, now.subsec_micros().to_string().as_bytes());
    Exec::Done
}

/// Whether `enable-debug-command` lets this connection use DEBUG (checked,
/// as Redis does, right after arity and before authentication).
pub(super) fn debug_allowed(ctx: &Ctx<'_>) -> bool {
    match ctx.shared.config.load().enable_debug_command {
        DebugCommand::Yes => true,
        DebugCommand::Local => ctx.session.peer_loopback,
        DebugCommand::No => false,
    }
}

/// `DEBUG SLEEP <seconds>`: blocks the worker that owns this connection, as
/// Redis's blocks the server; used to make a worker fall behind on purpose.
pub(super) fn debug(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if args[1].eq_ignore_ascii_case(b"sleep") && args.len() == 3 {
        encode::simple(ctx.reply, b"OK");
        return match sleep_time(&args[2]) {
            Some(d) => Exec::Sleep(d),
            None => Exec::Done,
        };
    }
    let e = errors::unknown_subcommand(&args[1], "DEBUG");
    encode::error(ctx.reply, e);
    Exec::Done
}

/// The sleep `DEBUG SLEEP <seconds>` asks for, read as Redis reads it:
/// `strtod` of the longest numeric prefix (so `abc` is 0), converted to
/// whole microseconds. What does not fit in those microseconds (NaN, 1e20,
/// negative times) makes Redis's `nanosleep` fail at once: no sleep.
fn sleep_time(arg: &[u8]) -> Option<Duration> {
    let secs = strtod_prefix(arg);
    let micros = secs * 1e6;
    if !(micros >= 1.0 && micros < i64::MAX as f64) {
        return None;
    }
    Some(Duration::from_micros(micros as u64))
}

/// The value of the longest prefix of `arg` that parses as a float, 0 if none
/// (C's `strtod`, which skips leading whitespace).
fn strtod_prefix(arg: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(arg);
    let text = text.trim_start();
    (1..=text.len())
        .rev()
        .filter(|&n| text.is_char_boundary(n))
        .find_map(|n| text[..n].parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_sleep_reads_seconds_as_strtod_and_never_overflows() {
        assert_eq!(sleep_time(b"0.5"), Some(Duration::from_millis(500)));
        assert_eq!(sleep_time(b" 2xyz"), Some(Duration::from_secs(2)));
        assert_eq!(sleep_time(b"abc"), None);
        assert_eq!(sleep_time(b"0"), None);
        assert_eq!(sleep_time(b"-1"), None);
        assert_eq!(sleep_time(b"1e20"), None);
        assert_eq!(sleep_time(b"nan"), None);
        assert_eq!(sleep_time(b"inf"), None);
        assert_eq!(sleep_time(b"1e9"), Some(Duration::from_secs(1_000_000_000)));
    }
}
