//! MONITOR: the connection is shown every command any client runs, on any
//! worker, as Redis shows it (see `crate::monitor` for the feed, and
//! `hub::observe` for who gets which line).

use super::{Ctx, Exec};
use crate::client::flags;
use crate::resp::args::ArgList;
use crate::resp::encode;

/// `MONITOR`: `+OK`, then the feed. Already monitoring, Redis ignores it
/// without a reply. The hub registers the connection with the feed once the
/// command is done, before the `+OK` can reach the client.
pub(super) fn monitor(ctx: &mut Ctx<'_>, _args: ArgList<'_>) -> Exec {
    if ctx.session.monitor {
        return Exec::Done;
    }
    ctx.session.monitor = true;
    ctx.session.meta.set_flag(flags::MONITOR, true);
    encode::simple(ctx.reply, b"OK");
    Exec::Done
}
