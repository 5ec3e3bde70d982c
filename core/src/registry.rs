//! The shared subscription registry: which workers hold subscribers for a
//! channel or pattern, and how many.
//!
//! One `Registry` is shared by every worker through an `Arc`. Publishers on any
//! core call [`Registry::lookup`], which never blocks and never takes a lock:
//! it loads immutable snapshots through `arc-swap` and reads atomic counters.
//! Subscribers call [`Registry::subscribe`] and friends, which change counters
//! in place or copy-on-write one small shard of the map. Each worker keeps its
//! own local index of *which connections* subscribe; the registry only knows
//! per-worker counts, so a publisher knows which workers to forward to and what
//! to reply to PUBLISH.
//!
//! # Layout
//!
//! Three separate namespaces: global channels, shard channels (SSUBSCRIBE; the
//! same structure, separate table) and patterns.
//!
//! A channel table is split into [`CHANNEL_SHARDS`] shards by key hash. A shard
//! is an `ArcSwap` holding an immutable hash set of `Arc<Entry>` plus a mutex
//! that only writers of that shard take. An `Entry` holds the key, a bit set
//! of workers with subscribers and one atomic counter per worker, so counts
//! change in place and only *creating* or *removing* an entry copies its shard.
//!
//! Patterns are indexed by their literal prefix (the bytes before the first
//! `*?[\`): a sharded map prefix → bucket of patterns (sorted by pattern bytes),
//! plus the set of distinct prefix lengths. A publish to channel `c` looks only
//! at the buckets of `c[..n]` for each present prefix length `n`, and glob-
//! matches only the patterns found there, so its cost does not grow with
//! patterns whose prefix `c` does not start with.
//!
//! # Invariants
//!
//! Let `count[w]` be an entry's counter for worker `w` and `bit[w]` that
//! worker's bit in the entry's worker set.
//!
//! 1. `count[w]` crosses zero (0 → 1 or 1 → 0) only while the shard's write
//!    lock is held, and only on the entry that is in the shard's *current*
//!    snapshot (found again after taking the lock). Without the lock, a
//!    counter moves only between values ≥ 1 (CAS from n ≥ 1 to n + 1, or
//!    from n ≥ 2 to n − 1).
//! 2. `bit[w]` changes only under the same lock: it is set just *before*
//!    `count[w]` leaves zero and cleared just *after* it returns to zero. So
//!    at every instant `count[w] > 0` implies `bit[w]` (a reader following
//!    the bits finds every counted subscriber; a set bit over a zero counter
//!    is skipped), whenever no writer holds the lock `bit[w] == (count[w] > 0)`,
//!    and while a writer holds it no other thread can make any counter of
//!    that shard become or stop being zero.
//! 3. An entry whose worker set becomes empty is removed from its shard in the
//!    same critical section. So every entry in a current snapshot has at
//!    least one subscriber once its writer releases the lock, and channel /
//!    pattern counts (PUBSUB CHANNELS, NUMPAT) are exact.
//! 4. A removed entry has every counter at zero forever: reviving a counter
//!    needs either a CAS from n ≥ 1 (impossible, all are 0) or the lock and the
//!    current snapshot (which no longer holds it). A subscriber that loaded a
//!    stale snapshot and finds a zero counter falls back to the locked path,
//!    which creates a fresh entry. This settles the race between a remover on
//!    one worker and a subscriber incrementing the same entry on another:
//!    either the CAS lands first (the count never reaches zero, no removal) or
//!    the removal does (the CAS fails, the subscriber retries under the lock).
//! 5. Readers never write. A lookup racing a subscribe may miss it, and one
//!    racing an unsubscribe may still report it (the target worker's local
//!    index then finds no connection); neither has been confirmed yet.
//!
//! Lock order, when two are held: pattern shard lock, then the prefix-length
//! lock. Readers take no lock at all.
//!
//! # Memory ordering
//!
//! A `subscribe` that has returned on thread A must be seen by every `lookup`
//! that starts afterwards on thread B, where "afterwards" is a happens-before
//! edge through something external (A confirms to a client, the client
//! publishes through B). New entries are published by `ArcSwap::store`, which
//! releases the fully built snapshot to every later `load`. Counter and worker-
//! set updates are read-modify-writes with `AcqRel`, loads are `Acquire`: by
//! write-read coherence a load that happens after a write sees it (or a later
//! value) whatever the ordering. Release/Acquire is what carries the *other*
//! variables along: a lock-free incrementer that reads a counter made non-zero
//! by the locked path also sees the worker bit set before it (invariant 2), so
//! everything a returned subscribe relied on happens-before the external edge.
//! Nothing here needs a total order across different variables, so `SeqCst` is
//! not used.
//!
//! The races between removal and increment, and the bit-before-counter order,
//! are model-checked with loom (`loom_tests`, run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringcast-core --release loom_tests`).
//!
//! # Cost
//!
//! Creating or removing a channel clones its shard's hash set: one refcount
//! increment per entry of that shard (usually a cache miss each at scale), a
//! table copy, and the matching decrements when the old snapshot is freed.
//! With [`CHANNEL_SHARDS`] = 65536 a shard holds ~15 entries at 1,000,000
//! channels, and a new-channel subscribe or last unsubscribe there measured
//! about 2 µs on a small VM (about 6 µs with 8192 shards, i.e. the copy
//! dominates; a persistent hash trie would copy a similar number of child
//! pointers per level, so plain sharding was kept for its simplicity).
//! Subscribing a second connection of a worker to a channel is one CAS; the
//! first connection of a worker to an existing channel takes the shard lock
//! but copies nothing. A lookup is one hash probe, plus for global publishes
//! one probe per distinct pattern prefix length and a glob match per pattern
//! in the buckets found.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use foldhash::fast::RandomState;

use self::sync::{ArcSwap, AtomicU32, AtomicU64, AtomicUsize, Mutex, MutexGuard};
use crate::WorkerId;
use crate::glob;

/// The synchronisation primitives of the registry, replaced by loom's models
/// under `cfg(loom)` so that the remove-versus-increment protocol can be
/// checked exhaustively.
mod sync {
    #[cfg(not(loom))]
    pub(super) use arc_swap::ArcSwap;
    #[cfg(not(loom))]
    pub(super) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
    #[cfg(not(loom))]
    pub(super) use std::sync::{Mutex, MutexGuard};

    #[cfg(loom)]
    pub(super) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
    #[cfg(loom)]
    pub(super) use loom::sync::{Mutex, MutexGuard};

    /// Stand-in for `arc_swap::ArcSwap` under loom: a linearizable pointer
    /// cell, which is the property of `ArcSwap` the registry relies on.
    #[cfg(loom)]
    pub(super) struct ArcSwap<T>(loom::sync::RwLock<std::sync::Arc<T>>);

    #[cfg(loom)]
    impl<T> ArcSwap<T> {
        pub(super) fn new(value: std::sync::Arc<T>) -> Self {
            ArcSwap(loom::sync::RwLock::new(value))
        }

        pub(super) fn from_pointee(value: T) -> Self {
            Self::new(std::sync::Arc::new(value))
        }

        pub(super) fn load(&self) -> std::sync::Arc<T> {
            std::sync::Arc::clone(
                &self
                    .0
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        }

        pub(super) fn store(&self, value: std::sync::Arc<T>) {
            *self
                .0
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
        }
    }
}

/// Most workers a registry can track (one bit each in a [`WorkerSet`]).
pub const MAX_WORKERS: usize = 64;

/// Shards per channel namespace.
///
/// Creating or removing a channel copies one shard, at a cost proportional to
/// the shard's size (mostly one cache miss per entry for its refcount).
/// 65536 keeps that near 15 entries at a million channels. Untouched shards
/// share one empty snapshot, so an empty namespace costs 16 bytes per shard
/// (1 MiB); PUBSUB CHANNELS, which is rare, walks every shard. Must be a power
/// of two.
#[cfg(not(loom))]
pub const CHANNEL_SHARDS: usize = 65536;
/// Few shards under loom, which models every lock it is given.
#[cfg(loom)]
pub const CHANNEL_SHARDS: usize = 2;

/// Shards of the pattern prefix map. Patterns are far fewer than channels.
#[cfg(not(loom))]
const PATTERN_SHARDS: usize = 256;
#[cfg(loom)]
const PATTERN_SHARDS: usize = 2;

/// Set of workers (bit i = worker i has ≥1 subscriber).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSet(pub u64);

impl WorkerSet {
    /// Whether worker `w` is in the set.
    pub fn contains(self, w: WorkerId) -> bool {
        w < MAX_WORKERS && self.0 & (1 << w) != 0
    }

    /// Adds worker `w` (which must be below [`MAX_WORKERS`]).
    pub fn insert(&mut self, w: WorkerId) {
        debug_assert!(w < MAX_WORKERS);
        self.0 |= 1 << w;
    }

    /// The workers in the set, in ascending order.
    pub fn iter(self) -> impl Iterator<Item = WorkerId> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let w = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(w)
        })
    }

    /// Whether no worker is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Which channel namespace: PUBLISH/SUBSCRIBE or SPUBLISH/SSUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    Global,
    Shard,
}

/// Subscribers of one channel or pattern: which workers, and how many in all.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hits {
    pub workers: WorkerSet,
    pub count: u64,
}

/// One subscribed pattern matching a published channel.
#[derive(Clone, Debug)]
pub struct PatternHit {
    pub pattern: Bytes,
    pub hits: Hits,
}

/// Reusable result buffer of a publish lookup (clear()ed and refilled; no allocation in steady state).
#[derive(Default)]
pub struct Lookup {
    pub channel: Hits,
    pub patterns: Vec<PatternHit>,
}

/// Who subscribes to one channel or pattern: a bit per worker and a counter
/// per worker. See the module invariants for who may change what.
///
/// The counters sit inline (a slice tail sized for the worker count) so that
/// a lookup touches one allocation for the entry and one for its key.
struct EntryOf<C: ?Sized> {
    key: Bytes,
    workers: AtomicU64,
    counts: C,
}

type Entry = EntryOf<[AtomicU32]>;

/// What a lock-free decrement attempt found.
enum FastDecrement {
    Done,
    /// The counter is at 1: crossing zero needs the shard lock.
    NeedsLock,
    /// The counter is at 0: nothing to take away.
    NotCounted,
}

impl Entry {
    /// A new entry holding one subscriber of worker `w`, with counters for
    /// at least `workers` workers.
    fn new(key: &[u8], workers: usize, w: WorkerId) -> Arc<Self> {
        fn build<const N: usize>(key: Bytes, w: WorkerId) -> Arc<Entry> {
            Arc::new(EntryOf {
                key,
                workers: AtomicU64::new(1 << w),
                counts: std::array::from_fn::<_, N, _>(|i| AtomicU32::new(u32::from(i == w))),
            })
        }
        // A copy, so the key never pins a larger buffer it was sliced from.
        let key = Bytes::copy_from_slice(key);
        match workers {
            0..=1 => build::<1>(key, w),
            2 => build::<2>(key, w),
            3..=4 => build::<4>(key, w),
            5..=8 => build::<8>(key, w),
            9..=16 => build::<16>(key, w),
            17..=32 => build::<32>(key, w),
            _ => build::<MAX_WORKERS>(key, w),
        }
    }

    /// Adds a subscriber of `w` without the lock if `w` already has one.
    fn try_increment(&self, w: WorkerId) -> bool {
        let counter = &self.counts[w];
        let mut n = counter.load(Ordering::Acquire);
        while n != 0 {
            match counter.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// Removes a subscriber of `w` without the lock if `w` keeps at least one.
    fn try_decrement(&self, w: WorkerId) -> FastDecrement {
        let counter = &self.counts[w];
        let mut n = counter.load(Ordering::Acquire);
        loop {
            match n {
                0 => return FastDecrement::NotCounted,
                1 => return FastDecrement::NeedsLock,
                _ => match counter.compare_exchange_weak(
                    n,
                    n - 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return FastDecrement::Done,
                    Err(now) => n = now,
                },
            }
        }
    }

    /// Adds a subscriber of `w`. Caller holds the shard lock and found this
    /// entry in the current snapshot.
    fn increment_locked(&self, w: WorkerId) {
        let counter = &self.counts[w];
        if counter.load(Ordering::Acquire) == 0 {
            // Bit first: once the counter is non-zero, a lock-free incrementer
            // may return, and its subscriber must already be visible.
            self.workers.fetch_or(1 << w, Ordering::AcqRel);
        }
        counter.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes a subscriber of `w`; returns whether the entry is now empty
    /// and must be removed. Caller holds the shard lock and found this entry
    /// in the current snapshot.
    fn decrement_locked(&self, w: WorkerId) -> bool {
        let counter = &self.counts[w];
        let mut n = counter.load(Ordering::Acquire);
        loop {
            if n == 0 {
                return false;
            }
            // Lock-free incrementers may move the counter concurrently (never
            // across zero), hence the CAS.
            match counter.compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if n == 1 => {
                    let before = self.workers.fetch_and(!(1 << w), Ordering::AcqRel);
                    return before & !(1 << w) == 0;
                }
                Ok(_) => return false,
                Err(now) => n = now,
            }
        }
    }

    /// Current subscribers. Workers whose counter reads zero (a concurrent
    /// last unsubscribe) are left out so that `count` and `workers` agree.
    fn hits(&self) -> Hits {
        let mut hits = Hits::default();
        for w in WorkerSet(self.workers.load(Ordering::Acquire)).iter() {
            if let Some(counter) = self.counts.get(w) {
                let n = counter.load(Ordering::Acquire);
                if n != 0 {
                    hits.workers.insert(w);
                    hits.count += u64::from(n);
                }
            }
        }
        hits
    }
}

/// Something stored in a shard's hash set, found by its key bytes.
trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        &self.key
    }
}

/// `Arc<T>` hashed and compared by key, so a `HashSet` of these is a map from
/// key to `T` that can be probed with `&[u8]` and cloned with one refcount
/// increment per element.
struct ByKey<T: ?Sized>(Arc<T>);

impl<T: ?Sized> Clone for ByKey<T> {
    fn clone(&self) -> Self {
        ByKey(Arc::clone(&self.0))
    }
}

impl<T: Keyed + ?Sized> Hash for ByKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `[u8]` for `Borrow<[u8]>` probes to work.
        self.0.key().hash(state);
    }
}

impl<T: Keyed + ?Sized> PartialEq for ByKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<T: Keyed + ?Sized> Eq for ByKey<T> {}

impl<T: Keyed + ?Sized> std::borrow::Borrow<[u8]> for ByKey<T> {
    fn borrow(&self) -> &[u8] {
        self.0.key()
    }
}

type Snapshot<T> = HashSet<ByKey<T>, RandomState>;

/// One shard: the snapshot readers load, and the lock its writers share.
struct Shard<T: ?Sized> {
    snapshot: ArcSwap<Snapshot<T>>,
    write: Mutex<()>,
}

impl<T: Keyed + ?Sized> Shard<T> {
    /// A shard starting from `empty`, one snapshot shared by all shards of a
    /// table so that untouched shards cost no allocation.
    fn new(empty: &Arc<Snapshot<T>>) -> Self {
        Shard {
            snapshot: ArcSwap::new(Arc::clone(empty)),
            write: Mutex::new(()),
        }
    }

    /// Takes the writers' lock. A panic under the lock leaves every snapshot
    /// consistent (they are immutable), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a copy of the current snapshot changed by `edit`. Caller
    /// holds the lock.
    fn rewrite(&self, edit: impl FnOnce(&mut Snapshot<T>)) {
        let mut next = Snapshot::clone(&self.snapshot.load());
        edit(&mut next);
        // Give memory back after mass removals; the rehash is amortised over
        // the removals that shrank the set.
        if next.len() * 4 < next.capacity() {
            next.shrink_to_fit();
        }
        self.snapshot.store(Arc::new(next));
    }
}

/// Picks a shard from the key hash. Uses bits 32.. so the choice is
/// independent of the bits the shard's own table uses (low bits for the
/// bucket, top 7 for the tag).
fn shard_index(hasher: &RandomState, key: &[u8], shards: usize) -> usize {
    (hasher.hash_one(key) >> 32) as usize & (shards - 1)
}

/// One channel namespace.
struct ChannelTable {
    shards: Box<[Shard<Entry>]>,
    /// Channels with ≥1 subscriber; changed under a shard lock.
    len: AtomicUsize,
}

impl ChannelTable {
    fn new(hasher: &RandomState) -> Self {
        ChannelTable {
            shards: {
                let empty = Arc::new(HashSet::with_hasher(hasher.clone()));
                (0..CHANNEL_SHARDS).map(|_| Shard::new(&empty)).collect()
            },
            len: AtomicUsize::new(0),
        }
    }
}

/// All patterns sharing one literal prefix, sorted by pattern bytes (which
/// makes lookups report them in a stable order).
struct Bucket {
    prefix: Bytes,
    patterns: Box<[Arc<Entry>]>,
}

impl Keyed for Bucket {
    fn key(&self) -> &[u8] {
        &self.prefix
    }
}

impl Bucket {
    fn find(&self, pattern: &[u8]) -> Result<usize, usize> {
        self.patterns
            .binary_search_by(|e| e.key.as_ref().cmp(pattern))
    }
}

/// The pattern namespace, indexed by literal prefix.
struct PatternTable {
    shards: Box<[Shard<Bucket>]>,
    /// Distinct prefix lengths with ≥1 bucket, ascending.
    lengths: ArcSwap<Vec<usize>>,
    /// Buckets per prefix length; the writers' side of `lengths`.
    length_counts: Mutex<BTreeMap<usize, usize>>,
    /// Patterns with ≥1 subscriber; changed under a shard lock.
    len: AtomicUsize,
}

impl PatternTable {
    fn new(hasher: &RandomState) -> Self {
        PatternTable {
            shards: {
                let empty = Arc::new(HashSet::with_hasher(hasher.clone()));
                (0..PATTERN_SHARDS).map(|_| Shard::new(&empty)).collect()
            },
            lengths: ArcSwap::from_pointee(Vec::new()),
            length_counts: Mutex::new(BTreeMap::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Records that a bucket with a prefix of `len` bytes appeared or went
    /// away, republishing the length set when a length appears or disappears. Caller holds the bucket's shard lock, so
    /// the new length is visible before the pattern's subscribe returns.
    fn count_length(&self, len: usize, appeared: bool) {
        let mut counts = self
            .length_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let changed = if appeared {
            let n = counts.entry(len).or_insert(0);
            *n += 1;
            *n == 1
        } else {
            match counts.get_mut(&len) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    counts.remove(&len);
                    true
                }
                None => false,
            }
        };
        if changed {
            self.lengths
                .store(Arc::new(counts.keys().copied().collect()));
        }
    }
}

/// The shared subscription registry. See the module docs.
pub struct Registry {
    workers: usize,
    hasher: RandomState,
    global: ChannelTable,
    shard: ChannelTable,
    patterns: PatternTable,
}

impl Registry {
    /// A registry for `workers` workers (ids `0..workers`).
    ///
    /// # Panics
    /// If `workers` is 0 or above [`MAX_WORKERS`].
    pub fn new(workers: usize) -> Self {
        assert!(
            (1..=MAX_WORKERS).contains(&workers),
            "worker count must be in 1..={MAX_WORKERS}"
        );
        let hasher = RandomState::default();
        Registry {
            workers,
            global: ChannelTable::new(&hasher),
            shard: ChannelTable::new(&hasher),
            patterns: PatternTable::new(&hasher),
            hasher,
        }
    }

    fn table(&self, ns: Namespace) -> &ChannelTable {
        match ns {
            Namespace::Global => &self.global,
            Namespace::Shard => &self.shard,
        }
    }

    fn channel_shard(&self, ns: Namespace, channel: &[u8]) -> &Shard<Entry> {
        &self.table(ns).shards[shard_index(&self.hasher, channel, CHANNEL_SHARDS)]
    }

    fn pattern_shard(&self, prefix: &[u8]) -> &Shard<Bucket> {
        &self.patterns.shards[shard_index(&self.hasher, prefix, PATTERN_SHARDS)]
    }

    /// Worker `w` gained one subscription to `channel` (one connection). Visible to every lookup that starts after this returns.
    ///
    /// # Panics
    /// If `w` is not below the worker count given to [`Registry::new`].
    pub fn subscribe(&self, ns: Namespace, channel: &Bytes, w: WorkerId) {
        assert!(w < self.workers, "worker id out of range");
        let shard = self.channel_shard(ns, channel);
        if let Some(entry) = shard.snapshot.load().get(channel.as_ref())
            && entry.0.try_increment(w)
        {
            return;
        }
        let _lock = shard.lock();
        if let Some(entry) = shard.snapshot.load().get(channel.as_ref()) {
            entry.0.increment_locked(w);
            return;
        }
        let entry = Entry::new(channel, self.workers, w);
        shard.rewrite(|set| {
            set.insert(ByKey(entry));
        });
        self.table(ns).len.fetch_add(1, Ordering::AcqRel);
    }

    /// Worker `w` lost one subscription to `channel`. A subscription that was
    /// never counted is ignored.
    pub fn unsubscribe(&self, ns: Namespace, channel: &[u8], w: WorkerId) {
        if w >= self.workers {
            return;
        }
        let shard = self.channel_shard(ns, channel);
        match shard.snapshot.load().get(channel) {
            None => return,
            Some(entry) => match entry.0.try_decrement(w) {
                FastDecrement::Done | FastDecrement::NotCounted => return,
                FastDecrement::NeedsLock => {}
            },
        }
        let _lock = shard.lock();
        let current = shard.snapshot.load();
        let Some(entry) = current.get(channel) else {
            return;
        };
        if entry.0.decrement_locked(w) {
            drop(current);
            shard.rewrite(|set| {
                set.remove(channel);
            });
            self.table(ns).len.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Worker `w` gained one subscription to `pattern` (one connection).
    /// Visible to every lookup that starts after this returns.
    ///
    /// # Panics
    /// If `w` is not below the worker count given to [`Registry::new`].
    pub fn psubscribe(&self, pattern: &Bytes, w: WorkerId) {
        assert!(w < self.workers, "worker id out of range");
        let prefix = glob::literal_prefix(pattern);
        let shard = self.pattern_shard(prefix);
        if let Some(bucket) = shard.snapshot.load().get(prefix)
            && let Ok(i) = bucket.0.find(pattern)
            && bucket.0.patterns[i].try_increment(w)
        {
            return;
        }
        let _lock = shard.lock();
        let current = shard.snapshot.load();
        let old = current.get(prefix).map(|b| Arc::clone(&b.0));
        drop(current);
        let mut patterns = match &old {
            Some(bucket) => match bucket.find(pattern) {
                Ok(i) => {
                    bucket.patterns[i].increment_locked(w);
                    return;
                }
                Err(_) => bucket.patterns.to_vec(),
            },
            None => Vec::with_capacity(1),
        };
        let entry = Entry::new(pattern, self.workers, w);
        // Promote the key to shared storage now, so that cloning it into
        // every matching lookup is a refcount increment, never an allocation.
        drop(entry.key.clone());
        let at = patterns.partition_point(|e| e.key.as_ref() < pattern.as_ref());
        patterns.insert(at, entry);
        let bucket = Bucket {
            prefix: old
                .as_ref()
                .map_or_else(|| Bytes::copy_from_slice(prefix), |b| b.prefix.clone()),
            patterns: patterns.into_boxed_slice(),
        };
        shard.rewrite(|set| {
            set.replace(ByKey(Arc::new(bucket)));
        });
        if old.is_none() {
            self.patterns.count_length(prefix.len(), true);
        }
        self.patterns.len.fetch_add(1, Ordering::AcqRel);
    }

    /// Worker `w` lost one subscription to `pattern`. A subscription that was
    /// never counted is ignored.
    pub fn punsubscribe(&self, pattern: &[u8], w: WorkerId) {
        if w >= self.workers {
            return;
        }
        let prefix = glob::literal_prefix(pattern);
        let shard = self.pattern_shard(prefix);
        {
            let current = shard.snapshot.load();
            let Some(bucket) = current.get(prefix) else {
                return;
            };
            let Ok(i) = bucket.0.find(pattern) else {
                return;
            };
            match bucket.0.patterns[i].try_decrement(w) {
                FastDecrement::Done | FastDecrement::NotCounted => return,
                FastDecrement::NeedsLock => {}
            }
        }
        let _lock = shard.lock();
        let current = shard.snapshot.load();
        let Some(bucket) = current.get(prefix).map(|b| Arc::clone(&b.0)) else {
            return;
        };
        drop(current);
        let Ok(i) = bucket.find(pattern) else {
            return;
        };
        if !bucket.patterns[i].decrement_locked(w) {
            return;
        }
        if bucket.patterns.len() == 1 {
            shard.rewrite(|set| {
                set.remove(prefix);
            });
            self.patterns.count_length(prefix.len(), false);
        } else {
            let mut patterns = bucket.patterns.to_vec();
            patterns.remove(i);
            let next = Bucket {
                prefix: bucket.prefix.clone(),
                patterns: patterns.into_boxed_slice(),
            };
            shard.rewrite(|set| {
                set.replace(ByKey(Arc::new(next)));
            });
        }
        self.patterns.len.fetch_sub(1, Ordering::AcqRel);
    }

    /// Who receives a publish to `channel` in `ns`: channel subscribers per worker and, for Namespace::Global
    /// only, every subscribed pattern matching it (patterns never see Shard publishes). Lock-free.
    ///
    /// Patterns are reported by ascending literal-prefix length, then by
    /// pattern bytes: the same pattern set always gives the same order.
    pub fn lookup(&self, ns: Namespace, channel: &[u8], out: &mut Lookup) {
        out.patterns.clear();
        out.channel = self
            .channel_shard(ns, channel)
            .snapshot
            .load()
            .get(channel)
            .map_or_else(Hits::default, |e| e.0.hits());
        if ns != Namespace::Global {
            return;
        }
        let lengths = self.patterns.lengths.load();
        for &len in lengths.iter() {
            let Some(prefix) = channel.get(..len) else {
                break; // Lengths ascend: no longer prefix fits either.
            };
            let snapshot = self.pattern_shard(prefix).snapshot.load();
            let Some(bucket) = snapshot.get(prefix) else {
                continue;
            };
            for entry in bucket.0.patterns.iter() {
                if glob::matches(&entry.key, channel) {
                    let hits = entry.hits();
                    if hits.count != 0 {
                        out.patterns.push(PatternHit {
                            pattern: entry.key.clone(),
                            hits,
                        });
                    }
                }
            }
        }
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB for one channel (channel subscribers only).
    pub fn numsub(&self, ns: Namespace, channel: &[u8]) -> u64 {
        self.channel_shard(ns, channel)
            .snapshot
            .load()
            .get(channel)
            .map_or(0, |e| e.0.hits().count)
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: channels with ≥1 subscriber, optionally filtered by glob.
    pub fn channels(&self, ns: Namespace, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for shard in self.table(ns).shards.iter() {
            let snapshot = shard.snapshot.load();
            for entry in snapshot.iter() {
                let entry = &entry.0;
                let wanted = pattern.is_none_or(|p| glob::matches(p, &entry.key));
                if wanted && !entry.hits().workers.is_empty() {
                    out.push(entry.key.clone());
                }
            }
        }
        out
    }

    /// Number of channels with ≥1 subscriber in ns (INFO pubsub_channels / pubsubshard_channels).
    pub fn channel_count(&self, ns: Namespace) -> usize {
        self.table(ns).len.load(Ordering::Acquire)
    }

    /// PUBSUB NUMPAT: unique patterns with ≥1 subscriber.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len.load(Ordering::Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicBool;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn lookup(reg: &Registry, ns: Namespace, channel: &str) -> Lookup {
        let mut out = Lookup::default();
        reg.lookup(ns, channel.as_bytes(), &mut out);
        out
    }

    fn pattern_names(out: &Lookup) -> Vec<&[u8]> {
        out.patterns.iter().map(|p| p.pattern.as_ref()).collect()
    }

    /// Every shard snapshot and the prefix-length set are empty.
    fn assert_fully_empty(reg: &Registry) {
        for table in [&reg.global, &reg.shard] {
            assert!(table.shards.iter().all(|s| s.snapshot.load().is_empty()));
            assert_eq!(table.len.load(Ordering::Relaxed), 0);
        }
        assert!(
            reg.patterns
                .shards
                .iter()
                .all(|s| s.snapshot.load().is_empty())
        );
        assert!(reg.patterns.lengths.load().is_empty());
        assert_eq!(reg.pattern_count(), 0);
    }

    #[test]
    fn worker_set_iterates_members_in_ascending_order() {
        let mut set = WorkerSet::default();
        assert!(set.is_empty());
        set.insert(63);
        set.insert(0);
        set.insert(5);
        assert!(set.contains(5) && set.contains(63) && !set.contains(4));
        assert!(!set.contains(64));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 5, 63]);
    }

    #[test]
    fn lookup_of_unknown_channel_finds_nobody() {
        let reg = Registry::new(4);
        let out = lookup(&reg, Namespace::Global, "nobody");
        assert_eq!(out.channel.count, 0);
        assert!(out.channel.workers.is_empty());
        assert!(out.patterns.is_empty());
        assert_eq!(reg.numsub(Namespace::Global, b"nobody"), 0);
    }

    #[test]
    fn subscribers_are_counted_per_worker() {
        let reg = Registry::new(4);
        let ch = b("news");
        reg.subscribe(Namespace::Global, &ch, 0);
        reg.subscribe(Namespace::Global, &ch, 0);
        reg.subscribe(Namespace::Global, &ch, 3);
        let out = lookup(&reg, Namespace::Global, "news");
        assert_eq!(out.channel.workers.iter().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(out.channel.count, 3);
        assert_eq!(reg.numsub(Namespace::Global, b"news"), 3);
        assert_eq!(reg.channel_count(Namespace::Global), 1);

        reg.unsubscribe(Namespace::Global, b"news", 0);
        let out = lookup(&reg, Namespace::Global, "news");
        assert_eq!(out.channel.workers.iter().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(out.channel.count, 2);
        reg.unsubscribe(Namespace::Global, b"news", 3);
        let out = lookup(&reg, Namespace::Global, "news");
        assert_eq!(out.channel.workers.iter().collect::<Vec<_>>(), vec![0]);
        assert_eq!(out.channel.count, 1);
    }

    #[test]
    fn global_and_shard_namespaces_are_separate() {
        let reg = Registry::new(2);
        reg.subscribe(Namespace::Global, &b("ch"), 0);
        reg.subscribe(Namespace::Shard, &b("ch"), 1);
        reg.subscribe(Namespace::Shard, &b("ch"), 1);
        assert_eq!(reg.numsub(Namespace::Global, b"ch"), 1);
        assert_eq!(reg.numsub(Namespace::Shard, b"ch"), 2);
        let g = lookup(&reg, Namespace::Global, "ch");
        let s = lookup(&reg, Namespace::Shard, "ch");
        assert_eq!(g.channel.workers, WorkerSet(0b01));
        assert_eq!(s.channel.workers, WorkerSet(0b10));
        reg.unsubscribe(Namespace::Shard, b"ch", 1);
        reg.unsubscribe(Namespace::Shard, b"ch", 1);
        assert_eq!(reg.channel_count(Namespace::Shard), 0);
        assert_eq!(reg.channel_count(Namespace::Global), 1);
        assert!(reg.channels(Namespace::Shard, None).is_empty());
        assert_eq!(reg.channels(Namespace::Global, None), vec![b("ch")]);
    }

    #[test]
    fn patterns_match_global_publishes_only() {
        let reg = Registry::new(2);
        reg.psubscribe(&b("c*"), 1);
        reg.subscribe(Namespace::Shard, &b("ch"), 0);
        let s = lookup(&reg, Namespace::Shard, "ch");
        assert!(s.patterns.is_empty());
        assert_eq!(s.channel.count, 1);
        let g = lookup(&reg, Namespace::Global, "ch");
        assert_eq!(pattern_names(&g), vec![b"c*".as_ref()]);
        assert_eq!(g.patterns[0].hits.workers, WorkerSet(0b10));
        assert_eq!(g.channel.count, 0);
    }

    #[test]
    fn last_unsubscribe_removes_the_channel() {
        let reg = Registry::new(2);
        reg.subscribe(Namespace::Global, &b("a"), 0);
        reg.subscribe(Namespace::Global, &b("a"), 1);
        reg.subscribe(Namespace::Global, &b("b"), 1);
        assert_eq!(reg.channel_count(Namespace::Global), 2);
        reg.unsubscribe(Namespace::Global, b"a", 0);
        assert_eq!(reg.channel_count(Namespace::Global), 2);
        reg.unsubscribe(Namespace::Global, b"a", 1);
        assert_eq!(reg.channel_count(Namespace::Global), 1);
        assert_eq!(reg.channels(Namespace::Global, None), vec![b("b")]);
        assert_eq!(reg.numsub(Namespace::Global, b"a"), 0);
        reg.unsubscribe(Namespace::Global, b"b", 1);
        assert_fully_empty(&reg);
    }

    #[test]
    fn channel_is_recreated_after_removal() {
        let reg = Registry::new(2);
        reg.subscribe(Namespace::Global, &b("a"), 0);
        reg.unsubscribe(Namespace::Global, b"a", 0);
        assert_eq!(reg.channel_count(Namespace::Global), 0);
        reg.subscribe(Namespace::Global, &b("a"), 1);
        assert_eq!(reg.channel_count(Namespace::Global), 1);
        let out = lookup(&reg, Namespace::Global, "a");
        assert_eq!(out.channel.workers, WorkerSet(0b10));
        assert_eq!(out.channel.count, 1);
    }

    #[test]
    fn unsubscribe_without_subscription_changes_nothing() {
        let reg = Registry::new(2);
        reg.unsubscribe(Namespace::Global, b"never", 0);
        reg.punsubscribe(b"never*", 0);
        reg.subscribe(Namespace::Global, &b("a"), 0);
        reg.unsubscribe(Namespace::Global, b"a", 1);
        reg.unsubscribe(Namespace::Global, b"a", 7);
        assert_eq!(reg.numsub(Namespace::Global, b"a"), 1);
        reg.psubscribe(&b("p*"), 0);
        reg.punsubscribe(b"p*", 1);
        reg.punsubscribe(b"p?", 0);
        assert_eq!(reg.pattern_count(), 1);
        assert_eq!(lookup(&reg, Namespace::Global, "px").patterns.len(), 1);
    }

    #[test]
    fn channels_are_filtered_by_glob() {
        let reg = Registry::new(1);
        for ch in ["news.a", "news.b", "sport"] {
            reg.subscribe(Namespace::Global, &b(ch), 0);
        }
        let mut all = reg.channels(Namespace::Global, None);
        all.sort();
        assert_eq!(all, vec![b("news.a"), b("news.b"), b("sport")]);
        let mut news = reg.channels(Namespace::Global, Some(b"news.*"));
        news.sort();
        assert_eq!(news, vec![b("news.a"), b("news.b")]);
        assert!(reg.channels(Namespace::Global, Some(b"x*")).is_empty());
    }

    #[test]
    fn patterns_are_counted_per_worker_and_removed_at_zero() {
        let reg = Registry::new(3);
        reg.psubscribe(&b("news.*"), 0);
        reg.psubscribe(&b("news.*"), 2);
        reg.psubscribe(&b("news.*"), 2);
        reg.psubscribe(&b("*"), 1);
        assert_eq!(reg.pattern_count(), 2);
        let out = lookup(&reg, Namespace::Global, "news.x");
        assert_eq!(pattern_names(&out), vec![b"*".as_ref(), b"news.*".as_ref()]);
        assert_eq!(out.patterns[1].hits.workers, WorkerSet(0b101));
        assert_eq!(out.patterns[1].hits.count, 3);
        assert_eq!(out.patterns[0].hits.count, 1);

        reg.punsubscribe(b"news.*", 2);
        reg.punsubscribe(b"news.*", 2);
        assert_eq!(reg.pattern_count(), 2);
        reg.punsubscribe(b"news.*", 0);
        assert_eq!(reg.pattern_count(), 1);
        assert_eq!(
            pattern_names(&lookup(&reg, Namespace::Global, "news.x")),
            vec![b"*".as_ref()]
        );
        assert_eq!(*reg.patterns.lengths.load().as_ref(), vec![0]);
        reg.punsubscribe(b"*", 1);
        assert_fully_empty(&reg);
        reg.psubscribe(&b("news.*"), 1);
        assert_eq!(
            lookup(&reg, Namespace::Global, "news.y").patterns[0]
                .hits
                .workers,
            WorkerSet(0b10)
        );
    }

    #[test]
    fn patterns_sharing_a_prefix_are_all_checked() {
        let reg = Registry::new(1);
        for p in ["a?c", "a*", "ab[cd]", "abd", "a"] {
            reg.psubscribe(&b(p), 0);
        }
        let out = lookup(&reg, Namespace::Global, "abc");
        assert_eq!(
            pattern_names(&out),
            vec![b"a*".as_ref(), b"a?c".as_ref(), b"ab[cd]".as_ref()]
        );
        reg.punsubscribe(b"a?c", 0);
        let out = lookup(&reg, Namespace::Global, "abc");
        assert_eq!(
            pattern_names(&out),
            vec![b"a*".as_ref(), b"ab[cd]".as_ref()]
        );
    }

    #[test]
    fn pattern_order_does_not_depend_on_subscription_order() {
        let forward = Registry::new(1);
        let backward = Registry::new(1);
        let patterns = ["*", "?", "n*", "ne*", "n?ws", "news", "[n]ews", "new?"];
        for p in patterns {
            forward.psubscribe(&b(p), 0);
        }
        for p in patterns.iter().rev() {
            backward.psubscribe(&b(p), 0);
        }
        let a = lookup(&forward, Namespace::Global, "news");
        let b = lookup(&backward, Namespace::Global, "news");
        assert_eq!(pattern_names(&a), pattern_names(&b));
        assert_eq!(a.patterns.len(), 7);
    }

    #[test]
    fn lookup_replaces_previous_results_without_growing() {
        let reg = Registry::new(1);
        reg.psubscribe(&b("a*"), 0);
        reg.psubscribe(&b("*"), 0);
        reg.subscribe(Namespace::Global, &b("ab"), 0);
        let mut out = Lookup::default();
        reg.lookup(Namespace::Global, b"ab", &mut out);
        assert_eq!(out.patterns.len(), 2);
        let capacity = out.patterns.capacity();
        reg.lookup(Namespace::Global, b"zz", &mut out);
        assert_eq!(out.channel.count, 0);
        assert_eq!(pattern_names(&out), vec![b"*".as_ref()]);
        for _ in 0..100 {
            reg.lookup(Namespace::Global, b"ab", &mut out);
        }
        assert_eq!(out.patterns.capacity(), capacity);
        assert_eq!(out.channel.count, 1);
    }

    #[test]
    #[should_panic(expected = "worker id out of range")]
    fn subscribe_rejects_worker_beyond_count() {
        Registry::new(2).subscribe(Namespace::Global, &b("a"), 2);
    }

    /// Races a last unsubscribe on one worker against a first subscribe on
    /// another, many times: the channel must survive with exactly one
    /// subscriber every time.
    #[test]
    fn removal_racing_a_subscribe_on_another_worker_keeps_the_subscriber() {
        let reg = Registry::new(2);
        let ch = b("contended");
        for _ in 0..2000 {
            reg.subscribe(Namespace::Global, &ch, 0);
            std::thread::scope(|s| {
                s.spawn(|| reg.unsubscribe(Namespace::Global, &ch, 0));
                s.spawn(|| reg.subscribe(Namespace::Global, &ch, 1));
            });
            assert_eq!(reg.numsub(Namespace::Global, &ch), 1);
            assert_eq!(reg.channel_count(Namespace::Global), 1);
            assert_eq!(
                lookup(&reg, Namespace::Global, "contended").channel.workers,
                WorkerSet(0b10)
            );
            reg.unsubscribe(Namespace::Global, &ch, 1);
            assert_eq!(reg.channel_count(Namespace::Global), 0);
        }
        assert_fully_empty(&reg);
    }

    /// Tiny xorshift so the stress test needs no extra dependency.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn concurrent_churn_ends_with_exact_counts_and_no_empty_entries() {
        const WORKERS: usize = 4;
        const CHANNELS: [&str; 3] = ["x", "y", "z"];
        const PATTERNS: [&str; 3] = ["x*", "*", "?"];
        // Two threads per worker id, so counters also see contention from
        // the same worker.
        const WRITERS: usize = 2 * WORKERS;
        const MAX_HELD: usize = 20;
        let reg = Registry::new(WORKERS);
        let stop = AtomicBool::new(false);
        let channels: Vec<Bytes> = CHANNELS.iter().map(|c| b(c)).collect();
        let patterns: Vec<Bytes> = PATTERNS.iter().map(|p| b(p)).collect();

        let held: Vec<Vec<usize>> = std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut out = Lookup::default();
                    while !stop.load(Ordering::Relaxed) {
                        for ch in CHANNELS {
                            reg.lookup(Namespace::Global, ch.as_bytes(), &mut out);
                            // Bounded by what the writers can hold at once.
                            assert!(out.channel.count <= (WRITERS * MAX_HELD) as u64);
                            assert!(out.channel.workers.0 >> WORKERS == 0);
                            assert!(out.patterns.len() <= PATTERNS.len());
                        }
                    }
                });
            }
            let writers: Vec<_> = (0..WRITERS)
                .map(|t| {
                    let (reg, channels, patterns) = (&reg, &channels, &patterns);
                    s.spawn(move || {
                        let w = t % WORKERS;
                        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                        // Held subscriptions: channels then patterns.
                        let mut held = vec![0usize; CHANNELS.len() + PATTERNS.len()];
                        for _ in 0..50_000 {
                            let i = rng.below(held.len());
                            let add = held[i] == 0 || (held[i] < MAX_HELD && rng.below(2) == 0);
                            match (i < CHANNELS.len(), add) {
                                (true, true) => reg.subscribe(Namespace::Global, &channels[i], w),
                                (true, false) => {
                                    reg.unsubscribe(Namespace::Global, &channels[i], w)
                                }
                                (false, true) => reg.psubscribe(&patterns[i - CHANNELS.len()], w),
                                (false, false) => {
                                    reg.punsubscribe(&patterns[i - CHANNELS.len()], w)
                                }
                            }
                            if add {
                                held[i] += 1;
                            } else {
                                held[i] -= 1;
                            }
                        }
                        held
                    })
                })
                .collect();
            let held = writers.into_iter().map(|h| h.join().unwrap()).collect();
            stop.store(true, Ordering::Relaxed);
            held
        });

        let expected = |i: usize| -> (WorkerSet, u64) {
            let mut set = WorkerSet::default();
            let mut total = 0;
            for (t, h) in held.iter().enumerate() {
                if h[i] > 0 {
                    set.insert(t % WORKERS);
                    total += h[i] as u64;
                }
            }
            (set, total)
        };
        let mut live_channels = 0;
        for (i, ch) in CHANNELS.iter().enumerate() {
            let (set, total) = expected(i);
            let out = lookup(&reg, Namespace::Global, ch);
            assert_eq!((out.channel.workers, out.channel.count), (set, total));
            live_channels += usize::from(total > 0);
        }
        assert_eq!(reg.channel_count(Namespace::Global), live_channels);
        assert_eq!(reg.channels(Namespace::Global, None).len(), live_channels);
        let mut live_patterns = 0;
        let all = lookup(&reg, Namespace::Global, "x");
        for (j, p) in PATTERNS.iter().enumerate() {
            let (set, total) = expected(CHANNELS.len() + j);
            let hit = all.patterns.iter().find(|h| h.pattern == p.as_bytes());
            match hit {
                Some(h) => assert_eq!((h.hits.workers, h.hits.count), (set, total)),
                None => assert_eq!(total, 0),
            }
            live_patterns += usize::from(total > 0);
        }
        assert_eq!(reg.pattern_count(), live_patterns);

        for (t, h) in held.iter().enumerate() {
            for (i, &n) in h.iter().enumerate() {
                for _ in 0..n {
                    if i < CHANNELS.len() {
                        reg.unsubscribe(Namespace::Global, CHANNELS[i].as_bytes(), t % WORKERS);
                    } else {
                        reg.punsubscribe(PATTERNS[i - CHANNELS.len()].as_bytes(), t % WORKERS);
                    }
                }
            }
        }
        assert_fully_empty(&reg);
    }

    /// Patterns and channels over a tiny alphabet so that glob features and
    /// shared prefixes collide often.
    fn pattern_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop::sample::select(b"ab*?[]^\\-".to_vec()), 0..6)
    }

    fn channel_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop::sample::select(b"ab*?[".to_vec()), 0..6)
    }

    proptest! {
        #[test]
        fn pattern_hits_equal_a_scan_of_all_patterns(
            patterns in proptest::collection::vec((pattern_strategy(), 0..3usize), 0..24),
            removed in proptest::collection::vec(any::<bool>(), 24),
            channels in proptest::collection::vec(channel_strategy(), 1..16),
        ) {
            let reg = Registry::new(3);
            // Expected live subscriptions per (pattern, worker).
            let mut live: BTreeMap<(Vec<u8>, usize), u64> = BTreeMap::new();
            for (p, w) in &patterns {
                reg.psubscribe(&Bytes::copy_from_slice(p), *w);
                *live.entry((p.clone(), *w)).or_default() += 1;
            }
            for ((p, w), gone) in patterns.iter().zip(&removed) {
                if *gone {
                    reg.punsubscribe(p, *w);
                    let n = live.get_mut(&(p.clone(), *w)).unwrap();
                    *n -= 1;
                    if *n == 0 {
                        live.remove(&(p.clone(), *w));
                    }
                }
            }
            let mut by_pattern: BTreeMap<Vec<u8>, Hits> = BTreeMap::new();
            for ((p, w), n) in &live {
                let hits = by_pattern.entry(p.clone()).or_default();
                hits.workers.insert(*w);
                hits.count += n;
            }
            prop_assert_eq!(reg.pattern_count(), by_pattern.len());
            let mut out = Lookup::default();
            for ch in &channels {
                reg.lookup(Namespace::Global, ch, &mut out);
                let mut got: Vec<(Vec<u8>, u64, u64)> = out
                    .patterns
                    .iter()
                    .map(|h| (h.pattern.to_vec(), h.hits.workers.0, h.hits.count))
                    .collect();
                got.sort();
                let want: Vec<(Vec<u8>, u64, u64)> = by_pattern
                    .iter()
                    .filter(|(p, _)| glob::matches(p, ch))
                    .map(|(p, h)| (p.clone(), h.workers.0, h.count))
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}

/// Exhaustive checks of the remove-versus-increment protocol. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p ringcast-core --release registry::loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    fn workers_of(reg: &Registry, channel: &[u8]) -> Hits {
        let mut out = Lookup::default();
        reg.lookup(Namespace::Global, channel, &mut out);
        out.channel
    }

    #[test]
    fn last_unsubscribe_racing_a_subscribe_on_another_worker_keeps_it() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 0);
            let confirmed = Arc::new(AtomicBool::new(false));
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.unsubscribe(Namespace::Global, b"c", 0))
            };
            let subscriber = {
                let (reg, confirmed) = (Arc::clone(&reg), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 1);
                    confirmed.store(true, Ordering::Release);
                })
            };
            // A publisher that learns of the confirmation must see it.
            if confirmed.load(Ordering::Acquire) {
                assert!(workers_of(&reg, b"c").workers.contains(1));
            }
            remover.join().unwrap();
            subscriber.join().unwrap();
            let hits = workers_of(&reg, b"c");
            assert_eq!((hits.workers, hits.count), (WorkerSet(0b10), 1));
            assert_eq!(reg.channel_count(Namespace::Global), 1);
        });
    }

    #[test]
    fn same_worker_resubscribe_racing_its_last_unsubscribe_keeps_it() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(1));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 0);
            let confirmed = Arc::new(AtomicBool::new(false));
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.unsubscribe(Namespace::Global, b"c", 0))
            };
            let subscriber = {
                let (reg, confirmed) = (Arc::clone(&reg), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 0);
                    confirmed.store(true, Ordering::Release);
                })
            };
            if confirmed.load(Ordering::Acquire) {
                assert!(workers_of(&reg, b"c").workers.contains(0));
            }
            remover.join().unwrap();
            subscriber.join().unwrap();
            assert_eq!(reg.numsub(Namespace::Global, b"c"), 1);
            assert_eq!(reg.channel_count(Namespace::Global), 1);
            reg.unsubscribe(Namespace::Global, b"c", 0);
            assert_eq!(reg.channel_count(Namespace::Global), 0);
        });
    }

    /// A second connection of a worker may be counted lock-free while the
    /// first one is still being added under the lock; it must not return
    /// before the worker is visible to publishers.
    #[test]
    fn lock_free_subscribe_behind_a_first_subscribe_is_visible_on_return() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 1);
            let confirmed = Arc::new(AtomicBool::new(false));
            let first = {
                let (reg, ch) = (Arc::clone(&reg), ch.clone());
                thread::spawn(move || reg.subscribe(Namespace::Global, &ch, 0))
            };
            let second = {
                let (reg, confirmed) = (Arc::clone(&reg), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 0);
                    confirmed.store(true, Ordering::Release);
                })
            };
            if confirmed.load(Ordering::Acquire) {
                assert!(workers_of(&reg, b"c").workers.contains(0));
            }
            first.join().unwrap();
            second.join().unwrap();
            assert_eq!(reg.numsub(Namespace::Global, b"c"), 3);
        });
    }

    #[test]
    fn pattern_removal_racing_a_psubscribe_keeps_it() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let p = Bytes::from_static(b"c*");
            reg.psubscribe(&p, 0);
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.punsubscribe(b"c*", 0))
            };
            let subscriber = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.psubscribe(&p, 1))
            };
            remover.join().unwrap();
            subscriber.join().unwrap();
            let mut out = Lookup::default();
            reg.lookup(Namespace::Global, b"cx", &mut out);
            assert_eq!(out.patterns.len(), 1);
            assert_eq!(out.patterns[0].hits.workers, WorkerSet(0b10));
            assert_eq!(reg.pattern_count(), 1);
        });
    }
}
