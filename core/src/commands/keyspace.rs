//! The empty keyspace ringcast presents (FLUSHALL, FLUSHDB, DBSIZE), TIME,
//! and DEBUG (only `DEBUG SLEEP`, and only when `enable-debug-command` allows).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::config::DebugCommand;
use crate::errors;
use crate::hub::{ConnKey, Exec, Hub};
use crate::resp::encode;

/// FLUSHALL / FLUSHDB [ASYNC|SYNC]: there is nothing to flush.
pub fn flush(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    match args {
        [_] => encode::simple(&mut hub.reply, b"OK"),
        [_, mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {
            encode::simple(&mut hub.reply, b"OK")
        }
        _ => encode::error(&mut hub.reply, errors::SYNTAX),
    }
    Exec::Done
}

pub fn dbsize(hub: &mut Hub, _key: ConnKey, _args: &[Bytes]) -> Exec {
    encode::integer(&mut hub.reply, 0);
    Exec::Done
}

pub fn time(hub: &mut Hub, _key: ConnKey, _args: &[Bytes]) -> Exec {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    encode::array(&mut hub.reply, 2);
    encode::bulk(&mut hub.reply, now.as_secs().to_string().as_bytes());
    encode::bulk(&mut hub.reply, now.subsec_micros().to_string().as_bytes());
    Exec::Done
}

/// Whether `enable-debug-command` lets this connection use DEBUG (checked,
/// as Redis does, right after arity and before authentication).
pub fn debug_allowed(hub: &Hub, key: ConnKey) -> bool {
    match hub.shared.config.load().enable_debug_command {
        DebugCommand::Yes => true,
        DebugCommand::Local => hub.conns[key].local_addr_loopback,
        DebugCommand::No => false,
    }
}

/// DEBUG SLEEP <seconds>: blocks the worker that owns this connection, as
/// Redis's blocks the server; used to make a worker fall behind on purpose.
pub fn debug(hub: &mut Hub, _key: ConnKey, args: &[Bytes]) -> Exec {
    if args[1].eq_ignore_ascii_case(b"sleep") && args.len() == 3 {
        let secs = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse::<f64>().ok());
        match secs {
            Some(s) if s.is_finite() && s >= 0.0 => {
                encode::simple(&mut hub.reply, b"OK");
                return Exec::Sleep(Duration::from_secs_f64(s));
            }
            _ => encode::error(&mut hub.reply, errors::TIMEOUT_NOT_FLOAT),
        }
        return Exec::Done;
    }
    let e = errors::unknown_subcommand(&args[1], "DEBUG");
    encode::error(&mut hub.reply, &e);
    Exec::Done
}
