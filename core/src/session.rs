//! Per-connection session state: protocol version, subscriptions held,
//! authentication, name, reply mode. Owned by the worker that owns the
//! connection; commands read and change it.

use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexSet;

use crate::acl::{User, Users};
use crate::client::ClientMeta;
use crate::commands::Transaction;
use crate::registry::{Name, NameHasher};
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

/// Channel-like subscriptions of one kind held by a session, under the
/// names the registry holds (searched with [`Registry::name_ref`]).
///
/// [`Registry::name_ref`]: crate::registry::Registry::name_ref
pub type Subscriptions = IndexSet<Name, NameHasher>;

#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub proto: Proto,
    /// Logged in (or admitted without a password): see [`Session::auth_required`].
    pub authenticated: bool,
    /// The ACL user the connection runs as (`default` until AUTH).
    pub user: Arc<User>,
    /// The table of users `user` was read from (for the default user's state).
    pub users: Arc<Users>,
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
    /// Open between MULTI and EXEC or DISCARD.
    pub transaction: Option<Box<Transaction>>,
    /// In MONITOR mode: sees every command run, may not touch the keyspace.
    pub monitor: bool,
    pub meta: Arc<ClientMeta>,
}

impl Session {
    /// A new connection, logged in as `default` if that user takes no password.
    pub fn new(meta: Arc<ClientMeta>, users: Arc<Users>, peer_loopback: bool) -> Self {
        let user = users.default_user().clone();
        let authenticated = user.nopass() && user.enabled();
        Session {
            id: meta.id,
            proto: Proto::Resp2,
            authenticated,
            user,
            users,
            ever_authenticated: authenticated,
            name: None,
            db: 0,
            reply_mode: ReplyMode::On,
            peer_loopback,
            channels: Subscriptions::default(),
            patterns: Subscriptions::default(),
            shard_channels: Subscriptions::default(),
            transaction: None,
            monitor: false,
            meta,
        }
    }

    /// The client proved who it is (AUTH, HELLO ... AUTH).
    pub fn log_in(&mut self, user: Arc<User>, users: Arc<Users>) {
        self.authenticated = true;
        self.ever_authenticated = true;
        self.set_user(user, users);
    }

    /// Back to the default user, logged in only if it takes no password
    /// (RESET; Redis's `clientSetDefaultAuth`).
    pub fn log_out(&mut self, users: Arc<Users>) {
        let user = users.default_user().clone();
        self.authenticated = user.nopass() && user.enabled();
        self.set_user(user, users);
    }

    fn set_user(&mut self, user: Arc<User>, users: Arc<Users>) {
        if user.name != self.user.name {
            *crate::lock(&self.meta.user) = user.name.clone();
        }
        self.user = user;
        self.users = users;
    }

    /// Redis's `authRequired`: not logged in, and the default user is
    /// disabled or has a password.
    pub fn auth_required(&self) -> bool {
        !self.authenticated && self.users.auth_required()
    }

    /// Take the user's current rules from a new table of users. False if
    /// the connection must be closed: its user was deleted (or replaced by
    /// `ACL LOAD`), or it holds a subscription its user may no longer have
    /// (Redis's `ACLKillPubsubClientsIfNeeded`).
    pub fn refresh_acl(&mut self, users: &Arc<Users>) -> bool {
        let Some(next) = users
            .get(&self.user.name)
            .filter(|u| u.id == self.user.id)
            .cloned()
        else {
            return false;
        };
        if !Arc::ptr_eq(&next, &self.user)
            && self.in_pubsub()
            && !self.user.channels_kept_by(&next)
            && !self.subscriptions_allowed(&next)
        {
            return false;
        }
        self.user = next;
        self.users = users.clone();
        true
    }

    /// Whether `user` may hold every subscription this session holds.
    fn subscriptions_allowed(&self, user: &User) -> bool {
        self.patterns.iter().all(|p| user.allows_channel(p, true))
            && self.channels.iter().all(|c| user.allows_channel(c, false))
            && self
                .shard_channels
                .iter()
                .all(|c| user.allows_channel(c, false))
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
