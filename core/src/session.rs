//! Per-connection session state: protocol version, subscriptions held,
//! authentication, name, reply mode. Owned by the worker that owns the
//! connection; commands read and change it.

use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexSet;

use crate::client::ClientMeta;
use crate::resp::encode::Proto;

/// `CLIENT REPLY` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the next command.
    SkipNext,
}

/// Channel-like subscriptions of one kind held by a session.
pub type Subscriptions = IndexSet<Bytes, foldhash::fast::RandomState>;

#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub proto: Proto,
    pub authenticated: bool,
    /// Authenticated at some point of the connection's life (RESET may have
    /// logged it out since): only a client that never was has its output
    /// capped (`hub::UNAUTHENTICATED_OUTPUT_LIMIT`).
    pub ever_authenticated: bool,
    pub name: Option<Bytes>,
    pub db: i64,
    pub reply_mode: ReplyMode,
    /// Connected from a loopback address (`enable-debug-command local`).
    pub peer_loopback: bool,
    pub channels: Subscriptions,
    pub patterns: Subscriptions,
    pub shard_channels: Subscriptions,
    pub meta: Arc<ClientMeta>,
}

impl Session {
    pub fn new(meta: Arc<ClientMeta>, authenticated: bool, peer_loopback: bool) -> Self {
        Session {
            id: meta.id,
            proto: Proto::Resp2,
            authenticated,
            ever_authenticated: authenticated,
            name: None,
            db: 0,
            reply_mode: ReplyMode::On,
            peer_loopback,
            channels: Subscriptions::default(),
            patterns: Subscriptions::default(),
            shard_channels: Subscriptions::default(),
            meta,
        }
    }

    /// The client proved who it is (AUTH, HELLO ... AUTH).
    pub fn log_in(&mut self) {
        self.authenticated = true;
        self.ever_authenticated = true;
    }

    /// The count Redis reports in `subscribe`/`psubscribe` confirmations:
    /// channels plus patterns (shard channels are counted on their own).
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// In pub/sub mode while it holds any channel, pattern or shard channel.
    pub fn in_pubsub(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty() || !self.shard_channels.is_empty()
    }

    /// Mirror subscription counts into the client directory for `CLIENT LIST`.
    pub fn publish_counts(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.meta.channels.store(self.channels.len(), Relaxed);
        self.meta.patterns.store(self.patterns.len(), Relaxed);
        self.meta
            .shard_channels
            .store(self.shard_channels.len(), Relaxed);
    }
}
