//! `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: Redis 7.2's `shutdownCommand`
//! over ringcast's shutdown, which is SIGTERM's: stop reading requests,
//! deliver what already arrived, flush what is queued within the grace
//! period, close every connection, exit 0.
//!
//! ringcast keeps no dataset and has no replicas, so the options that choose
//! whether to save or wait for replicas change nothing: every valid form
//! shuts down at once, as Redis does with nothing to save and no replica to
//! wait for, and the client, as in Redis, gets no reply — its connection
//! closes. `ABORT` always finds no shutdown in progress: once one starts,
//! no request is read any more.

use super::{Ctx, Exec};
use crate::errors;
use crate::resp::args::ArgList;
use crate::resp::encode;

pub(super) fn shutdown(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let (mut save, mut nosave, mut other, mut abort) = (false, false, false, false);
    for a in args.slice(1..) {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" | b"force" => other = true,
            b"abort" => abort = true,
            _ => {
                encode::error(ctx.reply, errors::SYNTAX);
                return Exec::Done;
            }
        }
    }
    if (abort && (save || nosave || other)) || (save && nosave) {
        encode::error(ctx.reply, errors::SYNTAX);
        return Exec::Done;
    }
    if abort {
        encode::error(ctx.reply, errors::SHUTDOWN_NOT_IN_PROGRESS);
        return Exec::Done;
    }
    if save {
        tracing::warn!("SHUTDOWN SAVE: ringcast keeps no dataset, there is nothing to save");
    }
    let who = ctx.session.meta.addr.clone();
    if !ctx
        .shared
        .shutdown
        .request(format!("User requested shutdown (client {who})"))
    {
        tracing::warn!("SHUTDOWN: this process cannot shut itself down");
        encode::error(ctx.reply, errors::SHUTDOWN_FAILED);
        return Exec::Done;
    }
    // No reply, as Redis: the connection closes, and nothing it sent after
    // SHUTDOWN runs.
    Exec::CloseAfterReply
}
