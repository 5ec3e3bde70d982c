//! Where a sharded pub/sub command may run: Redis 7.2's `getNodeByQuery`,
//! for the commands ringcast has. Shard channels take the place of keys.
//!
//! SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH are never sent ASK or TRYAGAIN:
//! during a migration the source keeps serving the slot until SETSLOT NODE
//! moves it. A replica serves its master's slots to them. EXEC is routed on
//! the channels of the commands it queued and, as in Redis, without those
//! exemptions; ringcast keeps no keys, so every "key" of a slot being
//! migrated counts as missing.

use super::errors;
use super::reply::Reply;
use super::slots::{Slot, key_slot};
use super::{Cluster, Endpoint};
use crate::cluster::node::Node;

/// The connection state routing looks at (the connection keeps it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnFlags {
    /// READONLY: a replica may serve it its master's slots.
    pub readonly: bool,
    /// ASKING: an importing node may serve it the next command.
    pub asking: bool,
}

impl ConnFlags {
    /// READONLY, READWRITE or ASKING (any case, arity checked by the
    /// caller): change the flags and give the reply; None for any other
    /// command.
    pub fn apply(&mut self, command: &[u8]) -> Option<Reply> {
        if command.eq_ignore_ascii_case(b"readonly") {
            self.readonly = true;
        } else if command.eq_ignore_ascii_case(b"readwrite") {
            self.readonly = false;
        } else if command.eq_ignore_ascii_case(b"asking") {
            self.asking = true;
        } else {
            return None;
        }
        Some(Reply::Ok)
    }

    /// After a command other than ASKING, outside MULTI: ASKING lasts for
    /// one command (Redis's `resetClient`).
    pub fn command_done(&mut self) {
        self.asking = false;
    }
}

/// Why a command is not served here, as the client is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `MOVED <slot> <endpoint>:<port>`
    Moved {
        slot: Slot,
        endpoint: String,
    },
    /// `ASK <slot> <endpoint>:<port>`
    Ask {
        slot: Slot,
        endpoint: String,
    },
    CrossSlot,
    TryAgain,
    /// The cluster is down.
    Down,
    DownReadOnly,
    /// The slot has no owner.
    Unbound,
}

impl Redirect {
    /// The error reply, without the leading `-`.
    pub fn error_text(&self) -> Vec<u8> {
        match self {
            Redirect::Moved { slot, endpoint } => errors::moved(*slot, endpoint).into_bytes(),
            Redirect::Ask { slot, endpoint } => errors::ask(*slot, endpoint).into_bytes(),
            Redirect::CrossSlot => errors::CROSSSLOT.into(),
            Redirect::TryAgain => errors::TRYAGAIN.into(),
            Redirect::Down => errors::DOWN.into(),
            Redirect::DownReadOnly => errors::DOWN_READ_ONLY.into(),
            Redirect::Unbound => errors::UNBOUND.into(),
        }
    }
}

impl Cluster {
    /// SSUBSCRIBE, SUNSUBSCRIBE or SPUBLISH with these channels: `Ok` to run
    /// it here. Without channels (SUNSUBSCRIBE alone) it always runs.
    pub fn route_shard<'a>(
        &self,
        channels: impl IntoIterator<Item = &'a [u8]>,
        conn: ConnFlags,
    ) -> Result<(), Redirect> {
        self.route(channels, true, conn)
    }

    /// EXEC of a transaction whose queued commands name these channels.
    pub fn route_exec<'a>(
        &self,
        channels: impl IntoIterator<Item = &'a [u8]>,
        conn: ConnFlags,
    ) -> Result<(), Redirect> {
        self.route(channels, false, conn)
    }

    fn route<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
        pubsubshard: bool,
        conn: ConnFlags,
    ) -> Result<(), Redirect> {
        let mut first: Option<(&[u8], Slot, &Node)> = None;
        let (mut migrating, mut importing, mut multiple_keys, mut missing) =
            (false, false, false, false);
        for key in keys {
            let slot = key_slot(key);
            match first {
                None => {
                    let owner = self.owner(slot).ok_or(Redirect::Unbound)?;
                    first = Some((key, slot, owner));
                    if owner.is_myself() && self.migrating.contains_key(&slot) {
                        migrating = true;
                    } else if self.importing.contains_key(&slot) {
                        importing = true;
                    }
                }
                Some((first_key, first_slot, _)) => {
                    if slot != first_slot {
                        return Err(Redirect::CrossSlot);
                    }
                    multiple_keys |= importing && key != first_key;
                }
            }
            // No keys live here, so a key of an open slot is always missing.
            missing |= (migrating || importing) && !pubsubshard;
        }
        let Some((_, slot, owner)) = first else {
            return Ok(());
        };
        if !self.ok {
            let allowed = if pubsubshard {
                self.settings.allow_pubsubshard_when_down
            } else {
                // Nothing ringcast queues is a write command.
                self.settings.allow_reads_when_down
            };
            if !allowed {
                return Err(Redirect::Down);
            }
        }
        if migrating && missing {
            let target = self.migrating.get(&slot).and_then(|id| self.node(id));
            if let Some(target) = target {
                let endpoint = self.endpoint_with_port(target);
                return Err(Redirect::Ask { slot, endpoint });
            }
        }
        if importing && conn.asking {
            return if multiple_keys && missing {
                Err(Redirect::TryAgain)
            } else {
                Ok(())
            };
        }
        if (conn.readonly || pubsubshard)
            && self.me.is_replica()
            && self.me.master == Some(owner.id)
        {
            return Ok(());
        }
        if owner.is_myself() {
            Ok(())
        } else {
            let endpoint = self.endpoint_with_port(owner);
            Err(Redirect::Moved { slot, endpoint })
        }
    }

    /// What clients are told to connect to (`getPreferredEndpoint`).
    pub(super) fn endpoint(&self, node: &Node) -> String {
        match self.settings.preferred_endpoint {
            Endpoint::Ip => node.addr.ip.clone(),
            Endpoint::Hostname => node.addr.hostname.clone().unwrap_or_else(|| "?".into()),
            Endpoint::Unknown => String::new(),
        }
    }

    fn endpoint_with_port(&self, node: &Node) -> String {
        format!("{}:{}", self.endpoint(node), node.addr.port)
    }
}
