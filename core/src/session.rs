//! Per-connection session state: protocol version, subscriptions held,
//! authentication, name, reply mode. Owned by the worker that owns the
//! connection; commands read and change it.

use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::acl::{User, Users};
use crate::client::ClientMeta;
use crate::commands::Transaction;
use crate::registry::{Name, NameRef};
use crate::resp::args::Args;
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

/// Channel-like subscriptions of one kind held by a session: the names the
/// registry holds (no copy of them), in a hash table keyed by the registry
/// hash they carry and searched with [`Registry::name_ref`]. In no
/// particular order, as in Redis (whose UNSUBSCRIBE without arguments walks
/// a hash table).
///
/// [`Registry::name_ref`]: crate::registry::Registry::name_ref
#[derive(Default)]
pub struct Subscriptions(HashTable<Name>);

/// Sets larger than this give memory back once three quarters empty.
const SHRINK_ABOVE: usize = 256;

impl Subscriptions {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, name: NameRef<'_>) -> bool {
        self.0
            .find(name.hash_value(), |held| held[..] == *name.bytes())
            .is_some()
    }

    /// Adds `name`, which the set does not hold.
    pub fn insert(&mut self, name: Name) {
        self.0
            .insert_unique(name.hash_value(), name, Name::hash_value);
    }

    /// Removes `name` and returns it as it was held.
    pub fn take(&mut self, name: NameRef<'_>) -> Option<Name> {
        let held = self.take_unshrunk(name);
        self.shrink();
        held
    }

    /// [`Subscriptions::take`] keeping the room: for a command that takes
    /// many, then calls [`Subscriptions::shrink`] once.
    pub fn take_unshrunk(&mut self, name: NameRef<'_>) -> Option<Name> {
        let held = self
            .0
            .find_entry(name.hash_value(), |held| held[..] == *name.bytes())
            .ok()?;
        Some(held.remove().0)
    }

    /// Where `name` is held, for [`Subscriptions::take_at`]: a command that
    /// drops many names finds a batch of them first, so their cache misses
    /// overlap, then takes them in order.
    pub fn find_index(&self, name: NameRef<'_>) -> Option<usize> {
        self.0
            .find_bucket_index(name.hash_value(), |held| held[..] == *name.bytes())
    }

    /// Removes the name [`Subscriptions::find_index`] found at `index`, if it
    /// is still there (nothing was inserted since; a name taken twice in
    /// one batch is there only the first time).
    pub fn take_at(&mut self, index: usize) -> Option<Name> {
        Some(self.0.get_bucket_entry(index).ok()?.remove().0)
    }

    /// Gives memory back once mostly empty. Amortised over the removals: a
    /// connection that once held 10,000 channels does not keep room for
    /// them.
    pub fn shrink(&mut self) {
        if self.0.capacity() > SHRINK_ABOVE && self.0.len() * 4 < self.0.capacity() {
            self.0.shrink_to_fit(Name::hash_value);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Name> {
        self.0.iter()
    }

    /// The names, moved out one at a time: a caller that is done with each
    /// as it goes (an UNSUBSCRIBE without arguments confirming it) lets go
    /// of it, and frees its entry, while it is still in cache.
    pub fn into_names(self) -> impl ExactSizeIterator<Item = Name> {
        self.0.into_iter()
    }
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

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
    /// The commands EXEC ran (command id and arguments) that the monitors
    /// have not been shown yet; filled only while some connection monitors.
    pub ran_in_exec: Vec<(u16, Args)>,
    pub meta: Arc<ClientMeta>,
    /// Cluster mode: READONLY and ASKING.
    pub cluster: crate::cluster::ConnFlags,
    /// Cluster mode: a CLUSTER command handed to the bus thread.
    pub cluster_wait: ClusterWait,
}

/// Where a CLUSTER command of the connection stands (see `commands::cluster`).
#[derive(Debug, Default)]
pub enum ClusterWait {
    #[default]
    Idle,
    /// Sent to the bus thread; the connection is parked.
    Waiting,
    /// The bus thread's reply, to send when the command runs again.
    Answered(crate::cluster::Reply),
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
            ran_in_exec: Vec::new(),
            meta,
            cluster: Default::default(),
            cluster_wait: ClusterWait::Idle,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Namespace, Registry};

    #[test]
    fn subscriptions_hold_registry_names_and_give_memory_back() {
        let registry = Registry::new(1);
        let mut held = Subscriptions::default();
        let names: Vec<Name> = (0..10_000)
            .map(|i| registry.subscribe_name(Namespace::Global, format!("c{i}").as_bytes(), 0, 1))
            .collect();
        for name in &names {
            assert!(!held.contains(registry.name_ref(name)));
            held.insert(name.clone());
        }
        assert_eq!(held.len(), 10_000);
        assert!(held.contains(registry.name_ref(b"c9999")));
        assert!(!held.contains(registry.name_ref(b"c10000")));
        let full = held.0.capacity();
        for i in 0..9_990 {
            let name = format!("c{i}");
            let taken = held.take(registry.name_ref(name.as_bytes()));
            assert_eq!(taken.as_deref(), Some(name.as_bytes()));
        }
        assert!(held.take(registry.name_ref(b"c0")).is_none());
        assert_eq!(held.len(), 10);
        assert!(
            held.0.capacity() <= SHRINK_ABOVE,
            "capacity {} of {full} kept for 10 channels",
            held.0.capacity()
        );
        let mut rest: Vec<&[u8]> = held.iter().map(|n| &n[..]).collect();
        rest.sort();
        assert_eq!(rest.len(), 10);
        assert_eq!(rest[0], b"c9990");
    }
}
