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
//! A channel table is split into shards by key hash, and grows by one shard
//! each time it holds more than `SHARD_LOAD` (4) channels per shard (linear
//! hashing, invariant 8), so a shard always holds a few entries. A shard is
//! an `ArcSwap` holding an immutable array of `(hash, Entry)` slots plus
//! a mutex that only writers of that shard take. An `Entry` holds the key,
//! its hash, a bit set of workers with subscribers and one atomic counter
//! word per worker (the worker's subscriber count and the sequence number of
//! its latest subscribe there, invariant 6), so counts change in place and
//! only *creating* or *removing* an entry copies its shard's few slots.
//! Shards live in segments of doubling size, allocated as the table grows
//! into them and never moved, so a reader finds its shard with no lock and
//! no extra indirection. A bitmap beside each segment's shards tells which
//! of them hold entries (invariant 7), so PUBSUB CHANNELS skips the empty
//! ones.
//!
//! The entry is also the one copy of the channel's name: a subscriber's
//! worker keeps a [`Name`] (a reference to the entry) in its local index
//! and in the connection's set of subscriptions, and gives the subscription
//! back through it ([`Registry::unsubscribe_name`]) without a search. A
//! lookup reports a matching pattern as its `Name` too, which a message
//! carries to the other workers. A name of up to 30 bytes is stored inside
//! the entry itself, so most entries are one allocation, created and freed
//! once.
//!
//! Patterns are indexed by their literal prefix (the bytes before the first
//! `*?[\`): a sharded map prefix → bucket of patterns (sorted by pattern bytes),
//! plus the set of distinct prefix lengths. A publish to channel `c` looks only
//! at the buckets of `c[..n]` for each present prefix length `n`, and glob-
//! matches only the patterns found there, so its cost does not grow with
//! patterns whose prefix `c` does not start with. A shard's snapshot is a
//! hash table of buckets held inline, each carrying its prefix's hash and
//! reading the prefix itself from its patterns. A bucket of one pattern
//! (`news.1.*`, `news.2.*`, …) is that pattern's entry and nothing more; a
//! larger one is a persistent B+-tree whose leaves are sorted slices of at
//! most `NODE_MAX` patterns (so a small bucket is one slice) and whose
//! versions share all unchanged nodes: thousands of patterns with one prefix
//! (`news.*.1`, `news.*.2`, …) cost O(log n) per change, not a copy of the
//! bucket.
//!
//! Snapshots, buckets and tree nodes are immutable once published: a writer
//! builds a new version beside the old and swaps it in, so a reader sees the
//! old or the new one whole.
//!
//! # Invariants
//!
//! Let `count[w]` be an entry's counter for worker `w` and `bit[w]` that
//! worker's bit in the entry's worker set.
//!
//! 1. `count[w]` crosses zero (0 → 1 or 1 → 0) only while the shard's write
//!    lock is held, and only on the entry that is in the shard's *current*
//!    snapshot (found again after taking the lock, in the shard the current
//!    addressing names: invariant 8). Without the lock, a
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
//!    Invariant 6 tells the target worker which of its subscriptions a
//!    lookup counted.
//! 6. **A count says which subscriptions it covers.** Each worker numbers its
//!    subscribes with its own sequence (a `u64` it increments per subscribe,
//!    never shared) and passes it to [`Registry::subscribe`] and
//!    [`Registry::psubscribe`]; only worker `w`'s own thread passes worker id
//!    `w`. `count[w]` is the low 32 bits of one `AtomicU64` whose high 32 bits
//!    hold `seq[w]`, the low 32 bits of the sequence of `w`'s latest subscribe
//!    to the entry. Every subscribe sets both in one atomic step (the CAS of
//!    the lock-free path, the CAS of the locked path, or the initial value of
//!    a new entry); an unsubscribe changes only the count. A lookup reads the
//!    word once and reports `o = seq[w]` beside the count ([`Lookup::seq`]).
//!    Then a subscription of `w` with sequence `s` to that channel or pattern
//!    is counted in that lookup **iff** `s <= O` (and it was not unsubscribed
//!    before the read), where `O` is `o` widened by the receiving worker to
//!    the largest value `<= N` with low 32 bits `o`, `N` being its current
//!    sequence ([`widen_seq`]); exact while fewer than 2^32 subscribes happen
//!    on `w` between the lookup and the delivery. Why: `w`'s subscribes to an
//!    entry write its word in `w`'s program order, with rising sequences, so
//!    the word's modification order lists them by sequence and the read falls
//!    between the subscribe numbered `O` and the next. A subscribe into a
//!    *re-created* entry follows, in `w`'s program order, the unsubscribe that
//!    took `w`'s count in the old entry to zero (invariant 4: an entry is
//!    removed only with every counter at zero and never revived), hence every
//!    subscribe `w` recorded there: a lookup of the old entry never covers it.
//!    A worker that delivers a message only to its subscriptions with
//!    `s <= O` therefore delivers exactly what the PUBLISH reply counted, less
//!    what was unsubscribed in between, and never to a subscriber whose
//!    SUBSCRIBE came after the lookup.
//! 7. **Populated shards.** A channel table keeps one bit per shard, changed
//!    only by the holder of that shard's lock: set just *before* the snapshot
//!    with the shard's first entry is published, cleared just *after* the one
//!    without its last entry is. So a shard whose snapshot holds an entry has
//!    its bit set at every instant, and outside the lock the bit is set iff
//!    the shard holds an entry; PUBSUB CHANNELS visits only the shards with a
//!    bit set (and none when the table's channel count is zero).
//! 8. **Growth.** A channel's shard is named by the table's *addressing*
//!    (linear hashing: `2^level + split` shards, one atomic word), which
//!    changes only when a shard is split, and a split of shard `i` holds
//!    `i`'s lock and the new shard's. It publishes, in this order, the new
//!    shard's snapshot with the channels that move there, the addressing
//!    that names the new shard, and shard `i`'s snapshot without them; a
//!    split never creates or removes an entry, it moves the same `Arc`. So
//!    a writer that locked the shard the addressing names for its channel,
//!    and finds the addressing still names it, holds the channel's one
//!    shard until it unlocks; and a lock-free reader that finds the
//!    addressing unchanged for its channel *after* reading the snapshot read
//!    the channel's shard (if a split emptied it of the channel, the reader
//!    read the store that followed the new addressing, so it sees that and
//!    reads again). Every shard below the shard count of a loaded
//!    addressing exists. One thread splits at a time (the `grow` lock), and
//!    PUBSUB CHANNELS holds that lock so that no channel moves while it
//!    visits the shards. Shards are never merged back: an emptied table
//!    keeps 64 bytes per shard it grew to.
//!
//! Lock order, when two are held: pattern shard lock, then the prefix-length
//! lock; a table's `grow` lock, then the shard being split, then the new
//! one. Readers take no lock at all.
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
//! Count and sequence share one word (invariant 6), so reading them together
//! needs no ordering between variables either. A populated-shard bit is set
//! (`AcqRel` read-modify-write) before the snapshot store that it covers, so
//! a `channels()` that starts after a subscribe returned loads the bit set and
//! then that snapshot or a later one (invariant 7). A split stores the new
//! shard's snapshot, then the addressing (`Release`), then the old shard's
//! snapshot; a reader loads the addressing (`Acquire`), the snapshot, and
//! the addressing again: a reader that sees the new addressing sees the new
//! shard filled, and one that sees the old shard emptied sees the new
//! addressing on its second load (invariant 8). Nothing here needs a total
//! order across different variables, so `SeqCst` is not used.
//!
//! The races between removal and increment (with the packed counter word),
//! the bit-before-counter order, which subscriptions a lookup covers, the
//! populated-shard bits and lookups and writers racing a split are
//! model-checked with loom (`loom_tests`, run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p ringcast-core --release -- loom`).
//!
//! # Cost
//!
//! Creating or removing a channel copies its shard's slots: at most a few
//! (`SHARD_LOAD` on average, whatever the number of channels), one refcount
//! increment each, and the matching decrements when the old snapshot is
//! freed. Growing the table splits one shard per `SHARD_LOAD` channels
//! created (a copy of the same few slots), so creating a channel costs O(1)
//! amortised; removing one never splits. (With a fixed 65,536 shards it was
//! a copy of ~15 entries and a hash table at a million channels, and the
//! copy dominated.) Subscribing a second connection of a worker to a
//! channel is one CAS; the first connection of a worker to an existing
//! channel takes the shard lock but copies nothing. A channel costs, in the
//! registry, its entry (refcount, key up to 30 bytes inline, hash, worker
//! bits, the counters' length and 8 bytes per worker: 80 bytes with one or
//! two workers), a longer key's bytes and about 28 bytes of slot and shard.
//! A [`Name`] is one 8-byte pointer (a thin `Arc`: the entry stores its
//! counters' length), and a channel is referred to three times: by its
//! shard's slot, the worker's index and the connection's set. At a million
//! channels over 100 connections the whole server allocates 182 MB (it was
//! 220 MB with two-word names; redis-server 7.0: 208 MB).
//!
//! A lookup hashes the channel once, loads the addressing, the shard's
//! snapshot and the addressing again, and scans the few hashes of the
//! shard; for global publishes then one probe per distinct pattern prefix
//! length and a glob match per pattern in the buckets found.
//!
//! Adding or removing a pattern copies its prefix shard's hash table (one
//! slot per distinct prefix in that shard, one refcount increment each) and
//! the root-to-leaf path of the bucket's tree, at most `NODE_MAX` pointers per level (plus one sibling
//! when a node splits or merges): O(log n) for a bucket of n patterns, three
//! levels at 40,000. Walking a bucket is walking its leaf slices, so a
//! lookup pays nothing for the tree beyond one step per leaf.
//!
//! PUBSUB CHANNELS reads the populated-shard bitmap (one word per 64 shards)
//! and the snapshots of populated shards only.
//!
//! A worker giving back many subscriptions at once (UNSUBSCRIBE naming many
//! channels or none, PUNSUBSCRIBE likewise, a connection closing) hands
//! them over in one batch ([`Registry::unsubscribe_names`],
//! [`Registry::punsubscribe_names`]): the lock-free decrements first, then
//! the last subscribers of the worker grouped by shard, each shard locked
//! once and its snapshot rebuilt and stored once for all its removals. A
//! pattern shard's next table is built in one pass over the old one,
//! leaving out the buckets the batch changed (found by address, the
//! bucket of a one-pattern entry without reading a prefix) and adding
//! their next versions: once per command instead of once per pattern, and
//! nothing to copy for a shard the batch empties (it gets the table's
//! shared empty snapshot). The replaced snapshots are freed after their
//! shard is unlocked. Each entry still crosses
//! zero under its shard's lock, in the current snapshot, and leaves it in
//! the same critical section (invariants 1 to 3, 7 and 8 as for one
//! removal); a lookup meanwhile may see some shards before and some after
//! their removals, which no client can tell apart, none being confirmed
//! before the batch returns (invariant 5).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, PoisonError, TryLockError};

use bytes::Bytes;
use hashbrown::HashTable;
use triomphe::ThinArc;
/// Key hashing for shard choice and shard tables: seeded per registry, so
/// that clients cannot aim many channels at one shard. Fixed under loom,
/// whose exploration replays each execution and so needs the same shard
/// choices every time.
#[cfg(not(loom))]
type RandomState = foldhash::fast::RandomState;
#[cfg(loom)]
type RandomState = foldhash::fast::FixedState;

use self::sync::{ArcSwap, AtomicU64, AtomicUsize, Mutex, MutexGuard};
use crate::WorkerId;
use crate::glob;

/// The synchronisation primitives of the registry, replaced by loom's models
/// under `cfg(loom)` so that the remove-versus-increment protocol can be
/// checked exhaustively.
mod sync {
    #[cfg(not(loom))]
    pub(super) use arc_swap::ArcSwap;
    #[cfg(not(loom))]
    pub(super) use std::sync::atomic::{AtomicU64, AtomicUsize};
    #[cfg(not(loom))]
    pub(super) use std::sync::{Mutex, MutexGuard};

    #[cfg(loom)]
    pub(super) use loom::sync::atomic::{AtomicU64, AtomicUsize};
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

        pub(super) fn load_full(&self) -> std::sync::Arc<T> {
            self.load()
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

/// Shards a channel namespace starts with: `2^BASE_LEVEL`.
///
/// A namespace grows by one shard each time its channels exceed
/// [`SHARD_LOAD`] per shard (see "Growth" in the module docs), so that
/// creating or removing a channel copies a shard of a few entries whatever
/// the number of channels.
#[cfg(not(any(loom, fuzzing)))]
const BASE_LEVEL: u32 = 6;
/// Two shards under loom, which models every lock it is given (three
/// channels split one), and in fuzz builds, which make a registry per input
/// and grow it with a handful of channels.
#[cfg(loom)]
const BASE_LEVEL: u32 = 1;
#[cfg(all(fuzzing, not(loom)))]
const BASE_LEVEL: u32 = 1;

/// A namespace never has more than `2^MAX_LEVEL` shards (under loom, four).
#[cfg(not(loom))]
const MAX_LEVEL: u32 = if usize::BITS > 40 {
    40
} else {
    usize::BITS - 2
};
#[cfg(loom)]
const MAX_LEVEL: u32 = 2;

/// Average channels per shard above which a namespace adds a shard.
///
/// A change to a channel's entry copies its shard's slots (16 bytes and one
/// refcount increment each); a shard costs 64 bytes besides its slots. 4
/// keeps both small: a few slots per copy, 32 bytes per channel in all.
#[cfg(not(loom))]
const SHARD_LOAD: usize = 4;
#[cfg(loom)]
const SHARD_LOAD: usize = 1;

/// Shards of the pattern prefix map. Patterns are far fewer than channels.
#[cfg(not(any(loom, fuzzing)))]
const PATTERN_SHARDS: usize = 256;
#[cfg(any(loom, fuzzing))]
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
        ones(self.0)
    }

    /// Whether no worker is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The positions of the set bits of `bits`, ascending.
fn ones(mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if bits == 0 {
            return None;
        }
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        Some(i)
    })
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

/// One subscribed pattern matching a published channel: its name is the
/// registry's entry (a refcount, never a copy, and it carries its hash).
#[derive(Clone, Debug)]
pub struct PatternHit {
    pub pattern: Name,
    pub hits: Hits,
}

/// Reusable result buffer of a publish lookup (clear()ed and refilled; no allocation in steady state).
///
/// Besides the counts, a lookup reports which subscriptions it counted: for
/// each *hit* (hit 0 is the channel, hit `1 + i` is `patterns[i]`) and each
/// worker with subscribers there, the low 32 bits of the sequence number of
/// that worker's latest subscribe it saw (invariant 6; widen it with
/// [`widen_seq`]).
#[derive(Default)]
pub struct Lookup {
    pub channel: Hits,
    pub patterns: Vec<PatternHit>,
    /// `seqs[hit * stride + w]`: sequence read for worker `w` at `hit`,
    /// 0 where `w` has no subscriber there.
    seqs: Vec<u32>,
    /// The registry's worker count.
    stride: usize,
}

impl Lookup {
    /// The sequence this lookup read for worker `w` at `hit` (0 = the
    /// channel, `1 + i` = `patterns[i]`). Meaningful only where `w` is in
    /// that hit's worker set; 0 elsewhere and out of range.
    pub fn seq(&self, hit: usize, w: WorkerId) -> u32 {
        if w >= self.stride {
            return 0;
        }
        self.seqs.get(hit * self.stride + w).copied().unwrap_or(0)
    }

    /// Every sequence of the last lookup, `stride()` per hit, hits in
    /// order (channel first): one slice to copy into a message whole.
    pub fn seqs(&self) -> &[u32] {
        &self.seqs
    }

    /// Sequences per hit in [`Lookup::seqs`] (the registry's worker count).
    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// Widens a 32-bit sequence `low` that a lookup reported for worker `w` into
/// `w`'s 64-bit numbering: the largest value `<= current` whose low 32 bits
/// are `low`, where `current` is `w`'s sequence number now (its latest
/// subscribe). Exact while fewer than 2^32 subscribes happened on `w` since
/// the lookup (invariant 6). `None` when no such value exists (`low` was
/// never issued: `current < 2^32` and `low > current`), in which case the
/// lookup counted none of `w`'s current subscriptions.
pub fn widen_seq(low: u32, current: u64) -> Option<u64> {
    let behind = (current as u32).wrapping_sub(low);
    current.checked_sub(u64::from(behind))
}

/// Who subscribes to one channel or pattern: a bit per worker and a counter
/// word per worker. See the module invariants for who may change what.
///
/// A counter word packs the worker's subscriber count (low 32 bits) and the
/// low 32 bits of the sequence number of its latest subscribe to this entry
/// (high 32 bits), so both change in one atomic step (invariant 6).
///
/// The counters sit inline (a slice tail sized for the worker count), and so
/// does a key of up to [`INLINE_KEY`] bytes: most entries are one allocation,
/// which a lookup touches once and an unsubscribe frees once.
///
/// A reference to it is one pointer (a thin `Arc`: the counters' length is
/// stored in the entry, not in every reference), and the entry and a
/// worker's index and a connection's set each hold one per channel.
/// `triomphe` provides the thin `Arc`: std's `Arc` of a slice-tailed type
/// is a two-word pointer, and a thin one without it needs unsafe code.
#[derive(Clone)]
struct Entry(ThinArc<Head, AtomicU64>);

/// An entry's fields apart from its counters.
struct Head {
    key: Key,
    /// The registry's hash of `key` ([`Registry::hash`]), kept so that
    /// neither a shard split nor a holder's hash table reads the key again.
    hash: u64,
    workers: AtomicU64,
}

impl std::ops::Deref for Entry {
    type Target = Head;

    #[inline]
    fn deref(&self) -> &Head {
        &self.0.header.header
    }
}

/// Longest key an entry holds inline; a longer one has an allocation of its
/// own. 30 keeps [`Key`] as large as the `Bytes` it replaced (32 bytes).
const INLINE_KEY: usize = 30;

/// A channel's or pattern's bytes as its entry holds them. Never shared
/// apart from the entry: whoever needs the name beyond a lookup holds the
/// entry ([`Name`]), so no refcounted buffer of its own is needed.
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Boxed(Box<[u8]>),
}

impl Key {
    fn new(key: &[u8]) -> Key {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key);
                Key::Inline { len, bytes }
            }
            _ => Key::Boxed(key.into()),
        }
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Key::Boxed(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// A counter word holding `count` subscribers, the latest with sequence `seq`
/// (only its low 32 bits are kept).
fn pack(seq: u64, count: u32) -> u64 {
    (seq << 32) | u64::from(count)
}

/// The subscriber count of a counter word.
fn count_of(word: u64) -> u32 {
    word as u32
}

/// The low 32 bits of the latest subscribe's sequence in a counter word.
fn seq_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// What a lock-free decrement attempt found.
enum FastDecrement {
    Done,
    /// The counter is at 1: crossing zero needs the shard lock.
    NeedsLock,
    /// The counter is at 0: nothing to take away.
    NotCounted,
}

impl Entry {
    /// A new entry for `key` (whose registry hash is `hash`) holding one
    /// subscriber of worker `w` (sequence `seq`), with counters for at least
    /// `workers` workers.
    fn new(key: &[u8], hash: u64, workers: usize, w: WorkerId, seq: u64) -> Self {
        let head = Head {
            // A copy, so the key never pins a larger buffer it was sliced from.
            key: Key::new(key),
            hash,
            workers: AtomicU64::new(1 << w),
        };
        // One counter per worker (`w < workers <= MAX_WORKERS`, which
        // `Registry::new` and every caller check).
        let counts = (0..workers).map(|i| AtomicU64::new(if i == w { pack(seq, 1) } else { 0 }));
        Entry(ThinArc::from_header_and_iter(head, counts))
    }

    /// The per-worker counters.
    #[inline]
    fn counts(&self) -> &[AtomicU64] {
        &self.0.slice
    }

    /// Whether `a` and `b` are the same entry.
    #[inline]
    fn ptr_eq(a: &Entry, b: &Entry) -> bool {
        a.0.as_ptr() == b.0.as_ptr()
    }

    #[cfg(all(test, not(loom)))]
    fn strong_count(this: &Entry) -> usize {
        ThinArc::strong_count(&this.0)
    }

    /// Adds a subscriber of `w` (sequence `seq`) without the lock if `w`
    /// already has one: count and sequence in one CAS (invariant 6).
    fn try_increment(&self, w: WorkerId, seq: u64) -> bool {
        let counter = &self.counts()[w];
        let mut word = counter.load(Ordering::Acquire);
        while count_of(word) != 0 {
            let next = pack(seq, count_of(word) + 1);
            match counter.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
        false
    }

    /// Removes a subscriber of `w` without the lock if `w` keeps at least
    /// one. The sequence stays: it still names the latest subscribe.
    fn try_decrement(&self, w: WorkerId) -> FastDecrement {
        let counter = &self.counts()[w];
        let mut word = counter.load(Ordering::Acquire);
        loop {
            match count_of(word) {
                0 => return FastDecrement::NotCounted,
                1 => return FastDecrement::NeedsLock,
                _ => match counter.compare_exchange_weak(
                    word,
                    word - 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return FastDecrement::Done,
                    Err(now) => word = now,
                },
            }
        }
    }

    /// Adds a subscriber of `w` (sequence `seq`). Caller holds the shard
    /// lock and found this entry in the current snapshot.
    fn increment_locked(&self, w: WorkerId, seq: u64) {
        let counter = &self.counts()[w];
        let mut word = counter.load(Ordering::Acquire);
        if count_of(word) == 0 {
            // Bit first: once the counter is non-zero, a lock-free incrementer
            // may return, and its subscriber must already be visible. A zero
            // counter stays zero until the CAS below (invariant 1: we hold the
            // lock).
            self.workers.fetch_or(1 << w, Ordering::AcqRel);
        }
        // Lock-free incrementers and decrementers may move a non-zero counter
        // concurrently (never to zero), hence the CAS.
        loop {
            let next = pack(seq, count_of(word) + 1);
            match counter.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
    }

    /// Removes a subscriber of `w`; returns whether the entry is now empty
    /// and must be removed. Caller holds the shard lock and found this entry
    /// in the current snapshot.
    fn decrement_locked(&self, w: WorkerId) -> bool {
        let counter = &self.counts()[w];
        let mut word = counter.load(Ordering::Acquire);
        loop {
            if count_of(word) == 0 {
                return false;
            }
            // Lock-free incrementers may move the counter concurrently (never
            // across zero), hence the CAS.
            match counter.compare_exchange_weak(word, word - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if count_of(word) == 1 => {
                    let before = self.workers.fetch_and(!(1 << w), Ordering::AcqRel);
                    return before & !(1 << w) == 0;
                }
                Ok(_) => return false,
                Err(now) => word = now,
            }
        }
    }

    /// Current subscribers. Workers whose counter reads zero (a concurrent
    /// last unsubscribe) are left out so that `count` and `workers` agree.
    /// For each worker reported, writes the sequence read with its count to
    /// `seqs[w]` (when `seqs` is that long).
    fn hits(&self, seqs: &mut [u32]) -> Hits {
        let mut hits = Hits::default();
        for w in WorkerSet(self.workers.load(Ordering::Acquire)).iter() {
            if let Some(counter) = self.counts().get(w) {
                let word = counter.load(Ordering::Acquire);
                if count_of(word) != 0 {
                    hits.workers.insert(w);
                    hits.count += u64::from(count_of(word));
                    if let Some(seq) = seqs.get_mut(w) {
                        *seq = seq_of(word);
                    }
                }
            }
        }
        hits
    }
}

/// A channel's or pattern's name as the registry holds it, shared with
/// whoever holds a subscription to it.
///
/// [`Registry::subscribe_name`] and [`Registry::psubscribe_name`] return it:
/// a reference to the registry's own entry for the name. A worker's local
/// index and a connection's set of subscriptions keep it instead of a copy
/// of the name (so a channel's name is allocated once, however many hold
/// it), and giving the subscription back ([`Registry::unsubscribe_name`])
/// goes straight to the entry without searching for it.
///
/// Hashes as its registry hash alone; a table of names is keyed by
/// [`Name::hash_value`] and searched with a [`NameRef`] of the same
/// registry.
#[derive(Clone)]
pub struct Name(Entry);

impl Name {
    /// The name's bytes, as the registry stores them.
    pub fn bytes(&self) -> &[u8] {
        &self.0.key
    }

    /// The registry's hash of the name ([`Registry::hash`]).
    pub fn hash_value(&self) -> u64 {
        self.0.hash
    }
}

impl std::ops::Deref for Name {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0.key
    }
}

impl AsRef<[u8]> for Name {
    fn as_ref(&self) -> &[u8] {
        &self.0.key
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        Entry::ptr_eq(&self.0, &other.0) || *self.0.key == *other.0.key
    }
}

impl Eq for Name {}

impl Hash for Name {
    // Equal names have equal bytes, hence equal registry hashes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.key.escape_ascii())
    }
}

/// The bytes of a name with their registry hash ([`Registry::name_ref`]):
/// what a table of [`Name`]s is searched with.
#[derive(Clone, Copy, Debug)]
pub struct NameRef<'a> {
    hash: u64,
    bytes: &'a [u8],
}

impl<'a> NameRef<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The registry's hash of the name ([`Registry::hash`]).
    pub fn hash_value(&self) -> u64 {
        self.hash
    }
}

/// An entry compared and ordered by key: how a bucket's leaves keep their
/// patterns sorted by bytes, each cloned with one refcount increment.
#[derive(Clone)]
struct ByKey(Entry);

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        *self.0.key == *other.0.key
    }
}

impl Eq for ByKey {}

impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

/// A pattern shard's snapshot: its buckets, found by the registry hash of
/// their prefix, which each bucket carries (so that neither a lookup nor a
/// rewrite hashes a prefix twice, and a rewrite never reads one).
type Buckets = HashTable<Bucket>;

/// One shard: the snapshot readers load, and the lock its writers share.
struct Shard<S> {
    snapshot: ArcSwap<S>,
    write: Mutex<()>,
}

impl<S> Shard<S> {
    /// A shard starting from `empty`, one snapshot shared by all shards of a
    /// table so that untouched shards cost no allocation.
    fn new(empty: &Arc<S>) -> Self {
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
}

impl Shard<Buckets> {
    /// Publishes a copy of the current snapshot with `bucket` in place of
    /// the one of its prefix (or added). Caller holds the lock.
    fn put(&self, bucket: Bucket) {
        let mut next = Buckets::clone(&self.snapshot.load());
        let (hash, prefix) = (bucket.hash, bucket.prefix());
        match next.find_entry(hash, |b| b.is(hash, prefix)) {
            Ok(mut held) => *held.get_mut() = bucket,
            Err(absent) => {
                absent
                    .into_table()
                    .insert_unique(hash, bucket, Bucket::hash_of);
            }
        }
        self.snapshot.store(Arc::new(next));
    }

    /// Publishes a copy of the current snapshot without the bucket of
    /// `prefix` (of hash `hash`). Caller holds the lock.
    fn drop_bucket(&self, hash: u64, prefix: &[u8]) {
        let mut next = Buckets::clone(&self.snapshot.load());
        if let Ok(held) = next.find_entry(hash, |b| b.is(hash, prefix)) {
            held.remove();
        }
        // Give memory back after mass removals; the rehash is amortised over
        // the removals that shrank the set.
        if next.len() * 4 < next.capacity() {
            next.shrink_to_fit(Bucket::hash_of);
        }
        self.snapshot.store(Arc::new(next));
    }
}

/// Picks a pattern shard from the registry hash of a prefix. Uses bits
/// 32.. so the choice is independent of the bits the shard's own table uses
/// (low bits for the bucket, top 7 for the tag).
fn pattern_shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (PATTERN_SHARDS - 1)
}

/// A channel shard's snapshot: its entries with their hashes, in no
/// particular order, exactly as long as it needs to be (every change builds
/// a new one anyway). A shard holds a few entries (`SHARD_LOAD` on average),
/// so a search is a scan of a few adjacent hashes.
type Slots = Box<[Slot]>;

#[derive(Clone)]
struct Slot {
    hash: u64,
    entry: Entry,
}

/// The entry for `key` (whose hash is `hash`) among `slots`.
fn find_slot<'s>(slots: &'s [Slot], hash: u64, key: &[u8]) -> Option<&'s Entry> {
    slots
        .iter()
        .find(|s| s.hash == hash && *s.entry.key == *key)
        .map(|s| &s.entry)
}

/// `slots` without the slot of `entry`.
fn without(slots: &[Slot], entry: &Entry) -> Slots {
    let mut rest = Vec::with_capacity(slots.len().saturating_sub(1));
    rest.extend(
        slots
            .iter()
            .filter(|s| !Entry::ptr_eq(&s.entry, entry))
            .cloned(),
    );
    rest.into_boxed_slice()
}

/// Which shard holds a channel, by linear hashing: a table of
/// `2^level + split` shards, in which shards `0..split` have already been
/// split at this level (their channels spread over them and the shards
/// `2^level..2^level + split`). Packed in one word, which a reader loads
/// whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Addressing {
    level: u32,
    split: usize,
}

impl Addressing {
    const SPLIT_BITS: u32 = 48;

    fn pack(self) -> u64 {
        (u64::from(self.level) << Self::SPLIT_BITS) | self.split as u64
    }

    fn unpack(word: u64) -> Self {
        Addressing {
            level: (word >> Self::SPLIT_BITS) as u32,
            split: (word & ((1 << Self::SPLIT_BITS) - 1)) as usize,
        }
    }

    fn shards(self) -> usize {
        (1 << self.level) + self.split
    }

    /// The shard of a channel whose hash is `hash`.
    fn shard_of(self, hash: u64) -> usize {
        let bits = hash as usize;
        let low = bits & ((1 << self.level) - 1);
        if low < self.split {
            bits & ((1 << (self.level + 1)) - 1)
        } else {
            low
        }
    }

    /// The addressing once shard `split` has been split into itself and
    /// shard `2^level + split`.
    fn after_split(self) -> Addressing {
        if self.split + 1 == 1 << self.level {
            Addressing {
                level: self.level + 1,
                split: 0,
            }
        } else {
            Addressing {
                level: self.level,
                split: self.split + 1,
            }
        }
    }
}

/// Where shard `i` of a channel table lives: its segment and its place
/// there. Segment 0 holds the first `2^BASE_LEVEL` shards, segment `k ≥ 1`
/// the shards `2^(BASE_LEVEL + k - 1)..2^(BASE_LEVEL + k)`.
fn segment_of(i: usize) -> (usize, usize) {
    let bits = usize::BITS - i.leading_zeros();
    if bits <= BASE_LEVEL {
        (0, i)
    } else {
        ((bits - BASE_LEVEL) as usize, i - (1 << (bits - 1)))
    }
}

/// Shards in segment `k`.
fn segment_len(k: usize) -> usize {
    match k {
        0 => 1 << BASE_LEVEL,
        _ => 1 << (BASE_LEVEL as usize + k - 1),
    }
}

/// A run of a channel table's shards, allocated when the table first grows
/// into it and never moved: a reader finds a shard with one load.
struct Segment {
    shards: Box<[Shard<Slots>]>,
    /// Bit `i % 64` of word `i / 64` is set iff the segment's shard `i`
    /// holds an entry (invariant 7); changed under that shard's lock.
    populated: Box<[AtomicU64]>,
}

impl Segment {
    fn new(len: usize, empty: &Arc<Slots>) -> Self {
        Segment {
            shards: (0..len).map(|_| Shard::new(empty)).collect(),
            populated: (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// One channel namespace.
struct ChannelTable {
    /// The packed [`Addressing`]; changed only by a split, under the
    /// `grow` lock and the locks of both shards concerned (invariant 8).
    addressing: AtomicU64,
    segments: Box<[OnceLock<Segment>]>,
    /// The snapshot of every empty shard.
    empty: Arc<Slots>,
    /// Held by the one thread splitting shards, and by PUBSUB CHANNELS so
    /// that no channel moves while it visits the shards.
    grow: Mutex<()>,
    /// Channels with ≥1 subscriber; changed under a shard lock.
    len: AtomicUsize,
}

impl ChannelTable {
    fn new() -> Self {
        let table = ChannelTable {
            addressing: AtomicU64::new(
                Addressing {
                    level: BASE_LEVEL,
                    split: 0,
                }
                .pack(),
            ),
            segments: (BASE_LEVEL..=MAX_LEVEL).map(|_| OnceLock::new()).collect(),
            empty: Arc::new(Box::default()),
            grow: Mutex::new(()),
            len: AtomicUsize::new(0),
        };
        table.segment(0);
        // Loom does not model `OnceLock`: every segment (four shards in all)
        // exists before any thread starts.
        #[cfg(loom)]
        for k in 1..table.segments.len() {
            table.segment(k);
        }
        table
    }

    fn addressing(&self) -> Addressing {
        Addressing::unpack(self.addressing.load(Ordering::Acquire))
    }

    /// Segment `k`, allocated on first use.
    fn segment(&self, k: usize) -> &Segment {
        self.segments[k].get_or_init(|| Segment::new(segment_len(k), &self.empty))
    }

    /// Shard `i` if its segment exists (it does for every `i` below the
    /// shard count of an addressing that was loaded: invariant 8).
    fn shard(&self, i: usize) -> Option<&Shard<Slots>> {
        let (k, at) = segment_of(i);
        self.segments.get(k)?.get()?.shards.get(at)
    }

    /// Shard `i`, allocating its segment if need be (`i` below
    /// `2^MAX_LEVEL`).
    fn writable(&self, i: usize) -> &Shard<Slots> {
        let (k, at) = segment_of(i);
        &self.segment(k).shards[at]
    }

    /// Records whether shard `i` holds entries. Caller holds its lock.
    fn mark(&self, i: usize, populated: bool) {
        let (k, at) = segment_of(i);
        let word = &self.segment(k).populated[at / 64];
        let bit = 1u64 << (at % 64);
        if populated {
            word.fetch_or(bit, Ordering::AcqRel);
        } else {
            word.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Calls `f` with the entry of `key` (hash `hash`) in the snapshot of
    /// its shard, or with `None`, and returns what `f` returns. Lock-free.
    /// `f` may be called more than once (once per split that moved the key
    /// away meanwhile); only its last result is returned.
    fn read<R>(&self, hash: u64, key: &[u8], mut f: impl FnMut(Option<&Entry>) -> R) -> R {
        let mut at = self.addressing();
        loop {
            let i = at.shard_of(hash);
            let found = match self.shard(i) {
                Some(shard) => f(find_slot(&shard.snapshot.load(), hash, key)),
                None => f(None),
            };
            // Invariant 8: if a split moved the key out of shard i since
            // `at` was read, the snapshot read may be one without it; it is
            // then in the shard the addressing names now.
            let now = self.addressing();
            if now.shard_of(hash) == i {
                return found;
            }
            at = now;
        }
    }

    /// Locks the shard that holds (or would hold) a channel whose hash is
    /// `hash`, and returns its index, the shard and the guard. Moving the
    /// channel elsewhere takes the same lock (a split), so it stays there
    /// until the guard is dropped.
    fn lock(&self, hash: u64) -> (usize, &Shard<Slots>, MutexGuard<'_, ()>) {
        let mut at = self.addressing();
        loop {
            let i = at.shard_of(hash);
            let shard = self.writable(i);
            let guard = shard.lock();
            let now = self.addressing();
            if now.shard_of(hash) == i {
                return (i, shard, guard);
            }
            at = now;
        }
    }

    /// Publishes `rest` as shard `i`'s snapshot once entries left it.
    /// Caller holds the shard's lock.
    fn publish_without(&self, i: usize, shard: &Shard<Slots>, rest: Slots) {
        if rest.is_empty() {
            shard.snapshot.store(Arc::clone(&self.empty));
            // Invariant 7: the bit goes down after the last entry left.
            self.mark(i, false);
        } else {
            shard.snapshot.store(Arc::new(rest));
        }
    }

    /// Takes one subscriber of `w` from `entry`, removing the entry with
    /// its last subscriber.
    fn release(&self, entry: &Entry, w: WorkerId) {
        match entry.try_decrement(w) {
            FastDecrement::Done | FastDecrement::NotCounted => {}
            FastDecrement::NeedsLock => self.release_locked(entry, w),
        }
    }

    /// The locked path of [`ChannelTable::release`], once `w`'s counter
    /// was found at 1.
    fn release_locked(&self, entry: &Entry, w: WorkerId) {
        let (i, shard, _lock) = self.lock(entry.hash);
        let current = shard.snapshot.load();
        // Not there: removed already, every counter at zero (invariant 4).
        if !current.iter().any(|s| Entry::ptr_eq(&s.entry, entry)) {
            return;
        }
        if entry.decrement_locked(w) {
            let rest = without(&current, entry);
            drop(current);
            self.publish_without(i, shard, rest);
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// [`ChannelTable::release_locked`] for every entry of `group`, which
    /// the addressing `at` placed in one shard: one lock, one new snapshot
    /// and one store for all of them. An entry that a split moved out of
    /// the shard since `at` was read is released on its own afterwards.
    /// `gone` is scratch space (left empty).
    fn release_group<'e>(
        &self,
        at: Addressing,
        group: &[&'e Entry],
        w: WorkerId,
        gone: &mut Vec<&'e Entry>,
    ) {
        let Some(first) = group.first() else {
            return;
        };
        let i = at.shard_of(first.hash);
        let shard = self.writable(i);
        let lock = shard.lock();
        // Invariant 8: with the lock held, the entries the addressing
        // still places here stay here.
        let now = self.addressing();
        let mut moved = Vec::new();
        let current = shard.snapshot.load();
        gone.clear();
        for &entry in group {
            if now.shard_of(entry.hash) != i {
                moved.push(entry);
            } else if current.iter().any(|s| Entry::ptr_eq(&s.entry, entry))
                && entry.decrement_locked(w)
            {
                // Invariant 3: removed in this critical section.
                gone.push(entry);
            }
            // Else not there: removed already, every counter at zero
            // (invariant 4).
        }
        if !gone.is_empty() {
            let mut rest = Vec::with_capacity(current.len().saturating_sub(gone.len()));
            rest.extend(
                current
                    .iter()
                    .filter(|s| !gone.iter().any(|g| Entry::ptr_eq(&s.entry, g)))
                    .cloned(),
            );
            drop(current);
            self.publish_without(i, shard, rest.into_boxed_slice());
            self.len.fetch_sub(gone.len(), Ordering::AcqRel);
            gone.clear();
        }
        drop(lock);
        for entry in moved {
            self.release_locked(entry, w);
        }
    }

    /// Adds shards while the table holds more than [`SHARD_LOAD`] channels
    /// per shard. One thread grows the table at a time; a writer finding
    /// another one at it carries on (the grower sees its channel counted).
    fn grow(&self) {
        let _grower = match self.grow.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        loop {
            let at = self.addressing();
            let wanted = self.len.load(Ordering::Acquire).div_ceil(SHARD_LOAD);
            if at.shards() >= wanted || at.level >= MAX_LEVEL {
                return;
            }
            self.split(at);
        }
    }

    /// Splits shard `at.split` into itself and shard `2^level + split`, the
    /// channels whose next hash bit is set moving to the new shard
    /// (invariant 8). Caller holds the `grow` lock.
    fn split(&self, at: Addressing) {
        let from = at.split;
        let to = from + (1 << at.level);
        let next = at.after_split();
        let (source, target) = (self.writable(from), self.writable(to));
        let _source = source.lock();
        let _target = target.lock();
        let current = source.snapshot.load();
        let moving = current
            .iter()
            .filter(|s| next.shard_of(s.hash) == to)
            .count();
        if moving == 0 {
            self.addressing.store(next.pack(), Ordering::Release);
            return;
        }
        let mut stay = Vec::with_capacity(current.len() - moving);
        let mut moved = Vec::with_capacity(moving);
        for slot in current.iter() {
            if next.shard_of(slot.hash) == to {
                moved.push(slot.clone());
            } else {
                stay.push(slot.clone());
            }
        }
        drop(current);
        // The new shard first, then the addressing that names it, then the
        // old shard without what moved: a reader sees each channel at least
        // in the shard its addressing names, or retries.
        self.mark(to, true);
        target.snapshot.store(Arc::new(moved.into_boxed_slice()));
        self.addressing.store(next.pack(), Ordering::Release);
        if stay.is_empty() {
            source.snapshot.store(Arc::clone(&self.empty));
            self.mark(from, false);
        } else {
            source.snapshot.store(Arc::new(stay.into_boxed_slice()));
        }
    }

    /// Every shard allocated so far, with its index and its populated bit.
    #[cfg(test)]
    fn shards_and_bits(&self) -> Vec<(usize, &Shard<Slots>, bool)> {
        let mut out = Vec::new();
        for (k, segment) in self.segments.iter().enumerate() {
            let Some(segment) = segment.get() else {
                continue;
            };
            let base = if k == 0 { 0 } else { segment_len(k) };
            for (at, shard) in segment.shards.iter().enumerate() {
                let bit = segment.populated[at / 64].load(Ordering::Acquire) >> (at % 64) & 1;
                out.push((base + at, shard, bit == 1));
            }
        }
        out
    }

    /// The shards holding entries (and, racing writers, maybe a few that just
    /// became empty).
    fn populated_shards(&self) -> impl Iterator<Item = &Shard<Slots>> {
        self.segments
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|segment| {
                segment
                    .populated
                    .iter()
                    .enumerate()
                    .flat_map(move |(i, word)| {
                        ones(word.load(Ordering::Acquire))
                            .map(move |bit| &segment.shards[i * 64 + bit])
                    })
            })
    }
}

/// Most patterns in a leaf, and most subtrees under a branch, of a bucket's
/// tree.
const NODE_MAX: usize = 64;
/// A node left with fewer than this after a removal is merged with a sibling.
const NODE_MIN: usize = NODE_MAX / 4;

type Pattern = ByKey;

/// A node of a bucket's persistent B+-tree. Immutable once built, shared by
/// every version of the bucket that did not change it, never empty, and
/// every leaf of a tree is at the same depth.
#[derive(Clone)]
enum Node {
    /// Patterns in ascending byte order.
    Leaf(Arc<[Pattern]>),
    /// Subtrees in ascending order of their patterns.
    Branch(Arc<[Node]>),
}

impl Node {
    fn first_key(&self) -> &[u8] {
        match self {
            Node::Leaf(leaf) => leaf.first().map_or(&[], |p| p.0.key.as_ref()),
            Node::Branch(children) => children.first().map_or(&[], Node::first_key),
        }
    }

    /// Patterns of a leaf, or subtrees of a branch.
    fn width(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.len(),
            Node::Branch(children) => children.len(),
        }
    }

    /// The subtree of `children` where `key` is or would go.
    fn child_for(children: &[Node], key: &[u8]) -> usize {
        children
            .partition_point(|c| c.first_key() <= key)
            .saturating_sub(1)
    }

    fn find(&self, key: &[u8]) -> Option<&Entry> {
        match self {
            Node::Leaf(leaf) => leaf
                .binary_search_by(|p| p.0.key.as_ref().cmp(key))
                .ok()
                .and_then(|i| leaf.get(i))
                .map(|p| &p.0),
            Node::Branch(children) => children.get(Self::child_for(children, key))?.find(key),
        }
    }

    /// Calls `f` on every pattern, in ascending byte order.
    #[inline]
    fn for_each<F: FnMut(&Entry)>(&self, f: &mut F) {
        match self {
            Node::Leaf(leaf) => leaf.iter().for_each(|p| f(&p.0)),
            Node::Branch(children) => children.iter().for_each(|c| c.for_each(f)),
        }
    }

    /// A node holding `items`, split in two halves when they are too many.
    fn build<T>(items: Vec<T>, make: fn(Arc<[T]>) -> Node) -> (Node, Option<Node>) {
        if items.len() <= NODE_MAX {
            return (make(items.into()), None);
        }
        let mut left = items;
        let right = left.split_off(left.len() / 2);
        (make(left.into()), Some(make(right.into())))
    }

    /// This node with `pattern` (absent from it) added: a copy of the path
    /// to its leaf; the second node is a right sibling when this one split.
    fn insert(&self, pattern: Pattern) -> (Node, Option<Node>) {
        match self {
            Node::Leaf(leaf) => {
                let at = leaf.partition_point(|p| *p < pattern);
                let mut items = Vec::with_capacity(leaf.len() + 1);
                items.extend_from_slice(&leaf[..at]);
                items.push(pattern);
                items.extend_from_slice(&leaf[at..]);
                Self::build(items, Node::Leaf)
            }
            Node::Branch(children) => {
                let i = Self::child_for(children, &pattern.0.key);
                let (child, split) = children[i].insert(pattern);
                let mut items = children.to_vec();
                items[i] = child;
                if let Some(right) = split {
                    items.insert(i + 1, right);
                }
                Self::build(items, Node::Branch)
            }
        }
    }

    /// This node without `key` (present in it), or `None` if that empties
    /// it. A child left narrower than [`NODE_MIN`] is merged with a sibling.
    fn remove(&self, key: &[u8]) -> Option<Node> {
        match self {
            Node::Leaf(leaf) => {
                let items: Vec<Pattern> = leaf
                    .iter()
                    .filter(|p| p.0.key.as_ref() != key)
                    .cloned()
                    .collect();
                (!items.is_empty()).then(|| Node::Leaf(items.into()))
            }
            Node::Branch(children) => {
                let i = Self::child_for(children, key);
                let mut items = children.to_vec();
                match children[i].remove(key) {
                    None => {
                        items.remove(i);
                    }
                    Some(child) if child.width() < NODE_MIN && items.len() > 1 => {
                        // Merge with the right neighbour, or the left one
                        // for the last child.
                        let at = i.min(items.len() - 2);
                        let (left, right) = if at == i {
                            (child, items[i + 1].clone())
                        } else {
                            (items[at].clone(), child)
                        };
                        let (merged, split) = Self::merge(left, right);
                        items[at] = merged;
                        match split {
                            Some(node) => items[at + 1] = node,
                            None => {
                                items.remove(at + 1);
                            }
                        }
                    }
                    Some(child) => items[i] = child,
                }
                (!items.is_empty()).then(|| Node::Branch(items.into()))
            }
        }
    }

    /// Two adjacent siblings (same depth, so same kind) as one node, or two
    /// balanced ones when they do not fit in one.
    fn merge(left: Node, right: Node) -> (Node, Option<Node>) {
        match (&left, &right) {
            (Node::Leaf(a), Node::Leaf(b)) => Self::build([&a[..], &b[..]].concat(), Node::Leaf),
            (Node::Branch(a), Node::Branch(b)) => {
                Self::build([&a[..], &b[..]].concat(), Node::Branch)
            }
            // Siblings always share a depth; left as they are otherwise.
            _ => (left, Some(right)),
        }
    }
}

/// All patterns sharing one literal prefix, sorted by pattern bytes (which
/// makes lookups report them in a stable order).
///
/// Immutable once published: a change builds a new bucket. A bucket of one
/// pattern (the common case: `news.1.*`, `news.2.*`, …) holds that
/// pattern's entry and nothing else, so it costs no allocation of its own;
/// its prefix is read from its patterns, never stored. More patterns sit
/// in a persistent B+-tree whose leaves are sorted slices: a bucket of up
/// to [`NODE_MAX`] patterns is a single slice, as fast to walk as it can
/// be; a large one shares every node but the changed root-to-leaf path
/// with the version it replaces, so changing it costs O(log n) under the
/// lock, never a copy of the whole bucket, and walking it is walking slices.
#[derive(Clone)]
struct Bucket {
    /// The registry hash of the prefix ([`Registry::hash`]).
    hash: u64,
    /// The prefix's length: it is the first `prefix_len` bytes of every
    /// pattern of the bucket.
    prefix_len: usize,
    patterns: Patterns,
}

/// A bucket's patterns: one, held as it is, or a tree of two or more.
#[derive(Clone)]
enum Patterns {
    One(Pattern),
    Tree(Node),
}

impl Bucket {
    fn new(hash: u64, prefix_len: usize, entry: Entry) -> Bucket {
        Bucket {
            hash,
            prefix_len,
            patterns: Patterns::One(ByKey(entry)),
        }
    }

    /// What the snapshot's table hashes a bucket by.
    fn hash_of(bucket: &Bucket) -> u64 {
        bucket.hash
    }

    /// The literal prefix of the bucket's patterns.
    fn prefix(&self) -> &[u8] {
        let first = match &self.patterns {
            Patterns::One(p) => &p.0.key[..],
            Patterns::Tree(root) => root.first_key(),
        };
        first.get(..self.prefix_len).unwrap_or(first)
    }

    /// Whether this is the bucket of `prefix`, whose registry hash is `hash`.
    #[inline]
    fn is(&self, hash: u64, prefix: &[u8]) -> bool {
        self.hash == hash && self.prefix() == prefix
    }

    fn find(&self, pattern: &[u8]) -> Option<&Entry> {
        match &self.patterns {
            Patterns::One(p) => (*p.0.key == *pattern).then_some(&p.0),
            Patterns::Tree(root) => root.find(pattern),
        }
    }

    /// [`Bucket::is`] for the bucket `entry`'s pattern (of prefix `prefix`)
    /// belongs in: the bucket of that entry alone is, without reading a
    /// prefix.
    fn is_of(&self, hash: u64, prefix: &[u8], entry: &Entry) -> bool {
        self.hash == hash
            && match &self.patterns {
                Patterns::One(p) if Entry::ptr_eq(&p.0, entry) => true,
                _ => self.prefix() == prefix,
            }
    }

    /// [`Bucket::find`] for `entry`'s pattern, comparing no bytes when the
    /// bucket holds that entry alone.
    fn find_entry(&self, entry: &Entry) -> Option<&Entry> {
        match &self.patterns {
            Patterns::One(p) if Entry::ptr_eq(&p.0, entry) => Some(&p.0),
            _ => self.find(&entry.key),
        }
    }

    /// Calls `f` on every pattern, in ascending byte order.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(&Entry)) {
        match &self.patterns {
            Patterns::One(p) => f(&p.0),
            Patterns::Tree(root) => root.for_each(&mut f),
        }
    }

    /// This bucket with `entry` added (its key not yet present).
    fn with(&self, entry: Entry) -> Bucket {
        let added = ByKey(entry);
        let root = match &self.patterns {
            Patterns::One(held) if added < *held => Node::Leaf(Arc::new([added, held.clone()])),
            Patterns::One(held) => Node::Leaf(Arc::new([held.clone(), added])),
            Patterns::Tree(root) => match root.insert(added) {
                (root, None) => root,
                (left, Some(right)) => Node::Branch(Arc::new([left, right])),
            },
        };
        Bucket {
            patterns: Patterns::Tree(root),
            ..*self
        }
    }

    /// This bucket without `pattern` (which it holds), or `None` if it was
    /// the last one.
    fn without(&self, pattern: &[u8]) -> Option<Bucket> {
        let Patterns::Tree(root) = &self.patterns else {
            return None;
        };
        let mut root = root.remove(pattern)?;
        // A root branch left with one subtree gives way to it.
        while let Node::Branch(children) = &root
            && let [only] = &children[..]
        {
            root = only.clone();
        }
        let patterns = match &root {
            Node::Leaf(leaf) if leaf.len() == 1 => Patterns::One(leaf[0].clone()),
            _ => Patterns::Tree(root),
        };
        Some(Bucket { patterns, ..*self })
    }
}

/// The pattern namespace, indexed by literal prefix.
struct PatternTable {
    shards: Box<[Shard<Buckets>]>,
    /// The snapshot of every shard without buckets, shared: a shard that
    /// a batch empties publishes it instead of allocating one.
    empty: Arc<Buckets>,
    /// Distinct prefix lengths with ≥1 bucket, ascending.
    lengths: ArcSwap<Vec<usize>>,
    /// Buckets per prefix length; the writers' side of `lengths`.
    length_counts: Mutex<BTreeMap<usize, usize>>,
    /// Patterns with ≥1 subscriber; changed under a shard lock.
    len: AtomicUsize,
}

impl PatternTable {
    fn new() -> Self {
        let empty = Arc::new(Buckets::new());
        PatternTable {
            shards: (0..PATTERN_SHARDS).map(|_| Shard::new(&empty)).collect(),
            empty,
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

impl PatternTable {
    /// The snapshot following `old` in a batch: `old`'s buckets in one
    /// pass, less the `changed` ones (by address in `old`), plus their next
    /// versions where they have one. The shared empty snapshot when none is
    /// left.
    fn rebuilt(&self, old: &Buckets, mut changed: Vec<(usize, Option<Bucket>)>) -> Arc<Buckets> {
        let kept = old.len() - changed.len();
        let next_len = kept + changed.iter().filter(|c| c.1.is_some()).count();
        if next_len == 0 {
            return Arc::clone(&self.empty);
        }
        let mut next = Buckets::with_capacity(next_len);
        if kept > 0 {
            changed.sort_unstable_by_key(|c| c.0);
            for bucket in old {
                let at = std::ptr::from_ref(bucket) as usize;
                if changed.binary_search_by_key(&at, |c| c.0).is_err() {
                    next.insert_unique(bucket.hash, bucket.clone(), Bucket::hash_of);
                }
            }
        }
        for (_, bucket) in changed {
            if let Some(bucket) = bucket {
                next.insert_unique(bucket.hash, bucket, Bucket::hash_of);
            }
        }
        Arc::new(next)
    }

    /// [`PatternTable::count_length`] for buckets that went away, with
    /// prefixes of `lens` bytes: one lock, and one new length set if a
    /// length disappears. Caller holds the buckets' shard lock.
    fn forget_lengths(&self, lens: &[usize]) {
        if lens.is_empty() {
            return;
        }
        let mut counts = self
            .length_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut changed = false;
        for len in lens {
            match counts.get_mut(len) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    counts.remove(len);
                    changed = true;
                }
                None => {}
            }
        }
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
            global: ChannelTable::new(),
            shard: ChannelTable::new(),
            patterns: PatternTable::new(),
            hasher,
        }
    }

    fn table(&self, ns: Namespace) -> &ChannelTable {
        match ns {
            Namespace::Global => &self.global,
            Namespace::Shard => &self.shard,
        }
    }

    /// The pattern shard of the prefix whose registry hash is `hash`.
    fn pattern_shard(&self, hash: u64) -> &Shard<Buckets> {
        &self.patterns.shards[pattern_shard_of(hash)]
    }

    /// The registry's hash of a channel or pattern name: what a [`Name`]
    /// carries, and what places a channel in its shard.
    pub fn hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    /// `name` with its hash, to search a table of [`Name`]s with.
    pub fn name_ref<'a>(&self, name: &'a [u8]) -> NameRef<'a> {
        NameRef {
            hash: self.hash(name),
            bytes: name,
        }
    }

    /// Worker `w` gained one subscription to `channel` (one connection),
    /// with `seq` the worker's sequence number for this subscribe (invariant
    /// 6: it must exceed every sequence `w` passed before). Visible to every
    /// lookup that starts after this returns.
    ///
    /// # Panics
    /// If `w` is not below the worker count given to [`Registry::new`].
    pub fn subscribe(&self, ns: Namespace, channel: &Bytes, w: WorkerId, seq: u64) {
        self.subscribe_name(ns, channel, w, seq);
    }

    /// [`Registry::subscribe`], returning the channel's [`Name`]: the
    /// holder gives the subscription back with
    /// [`Registry::unsubscribe_name`].
    ///
    /// # Panics
    /// If `w` is not below the worker count given to [`Registry::new`].
    pub fn subscribe_name(&self, ns: Namespace, channel: &[u8], w: WorkerId, seq: u64) -> Name {
        assert!(w < self.workers, "worker id out of range");
        let table = self.table(ns);
        let hash = self.hash(channel);
        // Lock-free when `w` already has a subscriber here. A stale
        // snapshot does no harm: a removed entry's counters stay at zero
        // (invariant 4), so the increment only lands on a live entry.
        if let Some(shard) = table.shard(table.addressing().shard_of(hash))
            && let Some(entry) = find_slot(&shard.snapshot.load(), hash, channel)
            && entry.try_increment(w, seq)
        {
            return Name(Entry::clone(entry));
        }
        let (i, shard, lock) = table.lock(hash);
        let current = shard.snapshot.load();
        if let Some(entry) = find_slot(&current, hash, channel) {
            entry.increment_locked(w, seq);
            return Name(Entry::clone(entry));
        }
        if current.is_empty() {
            // Invariant 7: the bit goes up before the first entry is published.
            table.mark(i, true);
        }
        let entry = Entry::new(channel, hash, self.workers, w, seq);
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(Slot {
            hash,
            entry: Entry::clone(&entry),
        });
        drop(current);
        shard.snapshot.store(Arc::new(next.into_boxed_slice()));
        let len = table.len.fetch_add(1, Ordering::AcqRel) + 1;
        drop(lock);
        if len > SHARD_LOAD * table.addressing().shards() {
            table.grow();
        }
        Name(entry)
    }

    /// Worker `w` lost one subscription to `channel`. A subscription that was
    /// never counted is ignored.
    pub fn unsubscribe(&self, ns: Namespace, channel: &[u8], w: WorkerId) {
        if w >= self.workers {
            return;
        }
        let table = self.table(ns);
        let hash = self.hash(channel);
        if let Some(entry) = table.read(hash, channel, |e| e.cloned()) {
            table.release(&entry, w);
        }
    }

    /// Worker `w` gives back one subscription to the channel `name`, which
    /// [`Registry::subscribe_name`] returned for `ns` (to any worker).
    pub fn unsubscribe_name(&self, ns: Namespace, name: &Name, w: WorkerId) {
        if w < self.workers {
            self.table(ns).release(&name.0, w);
        }
    }

    /// Worker `w` gives back one subscription to each of `names`, which
    /// [`Registry::subscribe_name`] returned for `ns`: what as many calls of
    /// [`Registry::unsubscribe_name`] would do, in one pass. The channels
    /// that lose their last subscriber are removed shard by shard, with one
    /// lock, one new snapshot and one store per shard, not per channel.
    /// Every removal is done when this returns. A lookup meanwhile may see
    /// some of them and not others, as it may see any unsubscribe that is
    /// not confirmed yet (invariant 5).
    pub fn unsubscribe_names<'n>(
        &self,
        ns: Namespace,
        names: impl IntoIterator<Item = &'n Name>,
        w: WorkerId,
    ) {
        if w >= self.workers {
            return;
        }
        let table = self.table(ns);
        // The lock-free step first: only the last subscriber of `w` in an
        // entry needs its shard's lock.
        let mut last: Vec<&Entry> = names
            .into_iter()
            .map(|name| &name.0)
            .filter(|entry| matches!(entry.try_decrement(w), FastDecrement::NeedsLock))
            .collect();
        let at = table.addressing();
        last.sort_unstable_by_key(|entry| at.shard_of(entry.hash));
        let mut gone = Vec::new();
        for group in last.chunk_by(|a, b| at.shard_of(a.hash) == at.shard_of(b.hash)) {
            table.release_group(at, group, w, &mut gone);
        }
    }

    /// Worker `w` gained one subscription to `pattern` (one connection),
    /// with `seq` as for [`Registry::subscribe`]. Visible to every lookup
    /// that starts after this returns.
    ///
    /// # Panics
    /// If `w` is not below the worker count given to [`Registry::new`].
    pub fn psubscribe(&self, pattern: &Bytes, w: WorkerId, seq: u64) {
        self.psubscribe_name(pattern, w, seq);
    }

    /// [`Registry::psubscribe`], returning the pattern's [`Name`]: the
    /// holder gives the subscription back with
    /// [`Registry::punsubscribe_name`].
    ///
    /// # Panics
    /// If `w` is not below the worker count given to [`Registry::new`].
    pub fn psubscribe_name(&self, pattern: &[u8], w: WorkerId, seq: u64) -> Name {
        assert!(w < self.workers, "worker id out of range");
        let prefix = glob::literal_prefix(pattern);
        let hash = self.hash(prefix);
        let shard = self.pattern_shard(hash);
        if let Some(bucket) = shard.snapshot.load().find(hash, |b| b.is(hash, prefix))
            && let Some(entry) = bucket.find(pattern)
            && entry.try_increment(w, seq)
        {
            return Name(Entry::clone(entry));
        }
        let _lock = shard.lock();
        let current = shard.snapshot.load();
        let old = current.find(hash, |b| b.is(hash, prefix)).cloned();
        drop(current);
        if let Some(entry) = old.as_ref().and_then(|b| b.find(pattern)) {
            entry.increment_locked(w, seq);
            return Name(Entry::clone(entry));
        }
        let entry = Entry::new(pattern, self.hash(pattern), self.workers, w, seq);
        let bucket = match &old {
            Some(bucket) => bucket.with(Entry::clone(&entry)),
            None => Bucket::new(hash, prefix.len(), Entry::clone(&entry)),
        };
        shard.put(bucket);
        if old.is_none() {
            self.patterns.count_length(prefix.len(), true);
        }
        self.patterns.len.fetch_add(1, Ordering::AcqRel);
        Name(entry)
    }

    /// Worker `w` lost one subscription to `pattern`. A subscription that was
    /// never counted is ignored.
    pub fn punsubscribe(&self, pattern: &[u8], w: WorkerId) {
        if w >= self.workers {
            return;
        }
        let prefix = glob::literal_prefix(pattern);
        let hash = self.hash(prefix);
        {
            let current = self.pattern_shard(hash).snapshot.load();
            let Some(entry) = current
                .find(hash, |b| b.is(hash, prefix))
                .and_then(|b| b.find(pattern))
            else {
                return;
            };
            match entry.try_decrement(w) {
                FastDecrement::Done | FastDecrement::NotCounted => return,
                FastDecrement::NeedsLock => {}
            }
        }
        self.punsubscribe_locked(pattern, w);
    }

    /// Worker `w` gives back one subscription to the pattern `name`, which
    /// [`Registry::psubscribe_name`] returned (to any worker).
    pub fn punsubscribe_name(&self, name: &Name, w: WorkerId) {
        if w >= self.workers {
            return;
        }
        match name.0.try_decrement(w) {
            FastDecrement::Done | FastDecrement::NotCounted => {}
            FastDecrement::NeedsLock => self.punsubscribe_locked(&name.0.key, w),
        }
    }

    /// Worker `w` gives back one subscription to each of `names`, which
    /// [`Registry::psubscribe_name`] returned: what as many calls of
    /// [`Registry::punsubscribe_name`] would do, in one pass. The patterns
    /// that lose their last subscriber are removed prefix shard by prefix
    /// shard, with one lock and one new snapshot of the shard's buckets
    /// per shard (and one update of the prefix lengths), not per pattern.
    /// Every removal is done when this returns.
    pub fn punsubscribe_names<'n>(&self, names: impl IntoIterator<Item = &'n Name>, w: WorkerId) {
        if w >= self.workers {
            return;
        }
        // (prefix hash, prefix, pattern) of every last subscriber of `w`,
        // sorted so that a shard's patterns, and a bucket's, are adjacent
        // (prefixes are compared only when their hashes are equal).
        let mut last: Vec<(u64, &[u8], &Entry)> = names
            .into_iter()
            .filter(|name| matches!(name.0.try_decrement(w), FastDecrement::NeedsLock))
            .map(|name| {
                let prefix = glob::literal_prefix(&name.0.key);
                (self.hash(prefix), prefix, &name.0)
            })
            .collect();
        last.sort_unstable_by(|a, b| {
            let order = |hash: u64| (pattern_shard_of(hash), hash);
            order(a.0).cmp(&order(b.0)).then_with(|| a.1.cmp(b.1))
        });
        for group in last.chunk_by(|a, b| pattern_shard_of(a.0) == pattern_shard_of(b.0)) {
            // The shard's previous snapshot is freed here, once unlocked.
            drop(self.punsubscribe_group(group, w));
        }
    }

    /// The locked path of [`Registry::punsubscribe_names`] for the patterns
    /// of one prefix shard, sorted by prefix hash and prefix. Returns the
    /// snapshot it replaced, for the caller to free outside the lock.
    fn punsubscribe_group(
        &self,
        group: &[(u64, &[u8], &Entry)],
        w: WorkerId,
    ) -> Option<Arc<Buckets>> {
        let &(hash, _, _) = group.first()?;
        let shard = self.pattern_shard(hash);
        let _lock = shard.lock();
        let current = shard.snapshot.load_full();
        // Each changed bucket, by its address in `current`, with its next
        // version (`None`: it is gone).
        let mut changed: Vec<(usize, Option<Bucket>)> = Vec::new();
        let mut emptied = Vec::new();
        let mut removed = 0;
        for bucket_group in group.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let (hash, prefix, first) = bucket_group[0];
            let Some(old) = current.find(hash, |b| b.is_of(hash, prefix, first)) else {
                continue;
            };
            let mut next: Option<Option<Bucket>> = None;
            for &(_, _, given) in bucket_group {
                let bucket = match &next {
                    None => old,
                    Some(Some(bucket)) => bucket,
                    Some(None) => break,
                };
                let Some(entry) = bucket.find_entry(given) else {
                    continue;
                };
                if !entry.decrement_locked(w) {
                    continue;
                }
                // Invariant 3: removed in this critical section.
                removed += 1;
                next = Some(bucket.without(&given.key));
            }
            if let Some(next) = next {
                if next.is_none() {
                    emptied.push(prefix.len());
                }
                changed.push((std::ptr::from_ref(old) as usize, next));
            }
        }
        if changed.is_empty() {
            return None;
        }
        shard
            .snapshot
            .store(self.patterns.rebuilt(&current, changed));
        self.patterns.forget_lengths(&emptied);
        self.patterns.len.fetch_sub(removed, Ordering::AcqRel);
        Some(current)
    }

    /// The locked path of a pattern unsubscribe, once the lock-free one
    /// found `w`'s counter at 1.
    fn punsubscribe_locked(&self, pattern: &[u8], w: WorkerId) {
        let prefix = glob::literal_prefix(pattern);
        let hash = self.hash(prefix);
        let shard = self.pattern_shard(hash);
        let _lock = shard.lock();
        let current = shard.snapshot.load();
        let Some(bucket) = current.find(hash, |b| b.is(hash, prefix)).cloned() else {
            return;
        };
        drop(current);
        let Some(entry) = bucket.find(pattern) else {
            return;
        };
        if !entry.decrement_locked(w) {
            return;
        }
        match bucket.without(pattern) {
            None => {
                shard.drop_bucket(hash, prefix);
                self.patterns.count_length(prefix.len(), false);
            }
            Some(next) => shard.put(next),
        }
        self.patterns.len.fetch_sub(1, Ordering::AcqRel);
    }

    /// Who receives a publish to `channel` in `ns`: channel subscribers per worker and, for Namespace::Global
    /// only, every subscribed pattern matching it (patterns never see Shard publishes). Lock-free.
    ///
    /// Patterns are reported by ascending literal-prefix length, then by
    /// pattern bytes: the same pattern set always gives the same order.
    /// With each count comes the sequence it was read with, per worker
    /// ([`Lookup::seq`], invariant 6).
    pub fn lookup(&self, ns: Namespace, channel: &[u8], out: &mut Lookup) {
        let stride = self.workers;
        out.stride = stride;
        out.patterns.clear();
        out.seqs.clear();
        out.seqs.resize(stride, 0);
        let seqs = &mut out.seqs;
        out.channel = self.table(ns).read(self.hash(channel), channel, |found| {
            seqs.fill(0);
            found.map_or_else(Hits::default, |e| e.hits(seqs))
        });
        if ns != Namespace::Global {
            return;
        }
        let lengths = self.patterns.lengths.load();
        for &len in lengths.iter() {
            let Some(prefix) = channel.get(..len) else {
                break; // Lengths ascend: no longer prefix fits either.
            };
            let hash = self.hash(prefix);
            let snapshot = self.pattern_shard(hash).snapshot.load();
            let Some(bucket) = snapshot.find(hash, |b| b.is(hash, prefix)) else {
                continue;
            };
            bucket.for_each(|entry| {
                if glob::matches(&entry.key, channel) {
                    let row = out.seqs.len();
                    out.seqs.resize(row + stride, 0);
                    let hits = entry.hits(&mut out.seqs[row..]);
                    if hits.count == 0 {
                        out.seqs.truncate(row);
                    } else {
                        out.patterns.push(PatternHit {
                            pattern: Name(Entry::clone(entry)),
                            hits,
                        });
                    }
                }
            });
        }
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB for one channel (channel subscribers only).
    pub fn numsub(&self, ns: Namespace, channel: &[u8]) -> u64 {
        self.table(ns).read(self.hash(channel), channel, |found| {
            found.map_or(0, |e| e.hits(&mut []).count)
        })
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: channels with ≥1 subscriber, optionally filtered by glob.
    ///
    /// Visits only the shards that hold entries (invariant 7), and none when
    /// the namespace is empty.
    pub fn channels(&self, ns: Namespace, pattern: Option<&[u8]>) -> Vec<Name> {
        let mut out = Vec::new();
        let table = self.table(ns);
        if table.len.load(Ordering::Acquire) == 0 {
            return out;
        }
        // No split meanwhile, so every channel is in exactly one shard
        // while they are visited (invariant 8). Writers carry on.
        let no_split = table.grow.lock().unwrap_or_else(PoisonError::into_inner);
        for shard in table.populated_shards() {
            let snapshot = shard.snapshot.load();
            for slot in snapshot.iter() {
                let entry = &slot.entry;
                let wanted = pattern.is_none_or(|p| glob::matches(p, &entry.key));
                if wanted && !entry.hits(&mut []).workers.is_empty() {
                    out.push(Name(Entry::clone(entry)));
                }
            }
        }
        drop(no_split);
        // The splits that writers left meanwhile.
        table.grow();
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

    /// [`Registry::channels`] as bytes, for tests to compare.
    #[cfg(test)]
    fn channel_bytes(&self, ns: Namespace, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let names = self.channels(ns, pattern);
        names.iter().map(|n| Bytes::copy_from_slice(n)).collect()
    }

    /// The bucket of `prefix` in its shard's current snapshot.
    #[cfg(all(test, not(loom)))]
    fn bucket(&self, prefix: &[u8]) -> Option<Bucket> {
        let hash = self.hash(prefix);
        let snapshot = self.pattern_shard(hash).snapshot.load();
        snapshot.find(hash, |b| b.is(hash, prefix)).cloned()
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

    /// The entry of a channel, found as a lookup finds it.
    fn entry_of(reg: &Registry, ns: Namespace, channel: &[u8]) -> Option<Entry> {
        reg.table(ns)
            .read(reg.hash(channel), channel, |found| found.cloned())
    }

    fn pattern_names(out: &Lookup) -> Vec<&[u8]> {
        out.patterns.iter().map(|p| p.pattern.as_ref()).collect()
    }

    /// Every shard snapshot and the prefix-length set are empty.
    fn assert_fully_empty(reg: &Registry) {
        for table in [&reg.global, &reg.shard] {
            for (_, shard, bit) in table.shards_and_bits() {
                assert!(shard.snapshot.load().is_empty());
                assert!(!bit);
            }
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
        reg.subscribe(Namespace::Global, &ch, 0, 0);
        reg.subscribe(Namespace::Global, &ch, 0, 0);
        reg.subscribe(Namespace::Global, &ch, 3, 0);
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
        reg.subscribe(Namespace::Global, &b("ch"), 0, 0);
        reg.subscribe(Namespace::Shard, &b("ch"), 1, 0);
        reg.subscribe(Namespace::Shard, &b("ch"), 1, 0);
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
        assert!(reg.channel_bytes(Namespace::Shard, None).is_empty());
        assert_eq!(reg.channel_bytes(Namespace::Global, None), vec![b("ch")]);
    }

    #[test]
    fn patterns_match_global_publishes_only() {
        let reg = Registry::new(2);
        reg.psubscribe(&b("c*"), 1, 0);
        reg.subscribe(Namespace::Shard, &b("ch"), 0, 0);
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
        reg.subscribe(Namespace::Global, &b("a"), 0, 0);
        reg.subscribe(Namespace::Global, &b("a"), 1, 0);
        reg.subscribe(Namespace::Global, &b("b"), 1, 0);
        assert_eq!(reg.channel_count(Namespace::Global), 2);
        reg.unsubscribe(Namespace::Global, b"a", 0);
        assert_eq!(reg.channel_count(Namespace::Global), 2);
        reg.unsubscribe(Namespace::Global, b"a", 1);
        assert_eq!(reg.channel_count(Namespace::Global), 1);
        assert_eq!(reg.channel_bytes(Namespace::Global, None), vec![b("b")]);
        assert_eq!(reg.numsub(Namespace::Global, b"a"), 0);
        reg.unsubscribe(Namespace::Global, b"b", 1);
        assert_fully_empty(&reg);
    }

    #[test]
    fn channel_is_recreated_after_removal() {
        let reg = Registry::new(2);
        reg.subscribe(Namespace::Global, &b("a"), 0, 0);
        reg.unsubscribe(Namespace::Global, b"a", 0);
        assert_eq!(reg.channel_count(Namespace::Global), 0);
        reg.subscribe(Namespace::Global, &b("a"), 1, 0);
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
        reg.subscribe(Namespace::Global, &b("a"), 0, 0);
        reg.unsubscribe(Namespace::Global, b"a", 1);
        reg.unsubscribe(Namespace::Global, b"a", 7);
        assert_eq!(reg.numsub(Namespace::Global, b"a"), 1);
        reg.psubscribe(&b("p*"), 0, 0);
        reg.punsubscribe(b"p*", 1);
        reg.punsubscribe(b"p?", 0);
        assert_eq!(reg.pattern_count(), 1);
        assert_eq!(lookup(&reg, Namespace::Global, "px").patterns.len(), 1);
    }

    #[test]
    fn channels_are_filtered_by_glob() {
        let reg = Registry::new(1);
        for ch in ["news.a", "news.b", "sport"] {
            reg.subscribe(Namespace::Global, &b(ch), 0, 0);
        }
        let mut all = reg.channel_bytes(Namespace::Global, None);
        all.sort();
        assert_eq!(all, vec![b("news.a"), b("news.b"), b("sport")]);
        let mut news = reg.channel_bytes(Namespace::Global, Some(b"news.*"));
        news.sort();
        assert_eq!(news, vec![b("news.a"), b("news.b")]);
        assert!(reg.channel_bytes(Namespace::Global, Some(b"x*")).is_empty());
    }

    #[test]
    fn patterns_are_counted_per_worker_and_removed_at_zero() {
        let reg = Registry::new(3);
        reg.psubscribe(&b("news.*"), 0, 0);
        reg.psubscribe(&b("news.*"), 2, 0);
        reg.psubscribe(&b("news.*"), 2, 0);
        reg.psubscribe(&b("*"), 1, 0);
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
        reg.psubscribe(&b("news.*"), 1, 0);
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
            reg.psubscribe(&b(p), 0, 0);
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
            forward.psubscribe(&b(p), 0, 0);
        }
        for p in patterns.iter().rev() {
            backward.psubscribe(&b(p), 0, 0);
        }
        let a = lookup(&forward, Namespace::Global, "news");
        let b = lookup(&backward, Namespace::Global, "news");
        assert_eq!(pattern_names(&a), pattern_names(&b));
        assert_eq!(a.patterns.len(), 7);
    }

    #[test]
    fn lookup_replaces_previous_results_without_growing() {
        let reg = Registry::new(1);
        reg.psubscribe(&b("a*"), 0, 0);
        reg.psubscribe(&b("*"), 0, 0);
        reg.subscribe(Namespace::Global, &b("ab"), 0, 0);
        let mut out = Lookup::default();
        reg.lookup(Namespace::Global, b"ab", &mut out);
        assert_eq!(out.patterns.len(), 2);
        let capacity = out.patterns.capacity();
        reg.lookup(Namespace::Global, b"zz", &mut out);
        assert_eq!(out.channel.count, 0);
        assert_eq!(pattern_names(&out), vec![b"*".as_ref()]);
        let seqs_capacity = out.seqs.capacity();
        for _ in 0..100 {
            reg.lookup(Namespace::Global, b"ab", &mut out);
        }
        assert_eq!(out.patterns.capacity(), capacity);
        assert_eq!(out.seqs.capacity(), seqs_capacity);
        assert_eq!(out.channel.count, 1);
    }

    #[test]
    fn widen_seq_recovers_the_full_sequence_within_2_pow_32() {
        assert_eq!(widen_seq(0, 0), Some(0));
        assert_eq!(widen_seq(5, 7), Some(5));
        assert_eq!(widen_seq(7, 7), Some(7));
        // Never issued yet: nothing below `current` ends in these bits.
        assert_eq!(widen_seq(8, 7), None);
        assert_eq!(widen_seq(u32::MAX, 0), None);
        // Across the 32-bit wrap.
        let n = (1u64 << 32) + 3;
        assert_eq!(widen_seq(3, n), Some(n));
        assert_eq!(widen_seq(0, n), Some(1 << 32));
        assert_eq!(widen_seq(u32::MAX, n), Some((1 << 32) - 1));
        assert_eq!(widen_seq(4, n), Some(4));
        assert_eq!(widen_seq(0, u64::MAX), Some(u64::MAX - u64::from(u32::MAX)));
        assert_eq!(widen_seq(u32::MAX, u64::MAX), Some(u64::MAX));
        // Exactly 2^32 behind is taken for the later value: the bound.
        assert_eq!(widen_seq(3, (1 << 32) + 3), Some((1 << 32) + 3));
    }

    proptest! {
        #[test]
        fn widen_seq_inverts_truncation(current in any::<u64>(), behind in 0..(1u64 << 32)) {
            let Some(seq) = current.checked_sub(behind) else {
                return Ok(());
            };
            prop_assert_eq!(widen_seq(seq as u32, current), Some(seq));
        }
    }

    /// What a worker holding subscriptions numbered `held` (to the looked-up
    /// channel or pattern), whose sequence is now `current`, delivers to.
    fn covered(out: &Lookup, hit: usize, w: WorkerId, held: &[u64], current: u64) -> Vec<u64> {
        let workers = match hit {
            0 => out.channel.workers,
            i => out.patterns[i - 1].hits.workers,
        };
        if !workers.contains(w) {
            return Vec::new();
        }
        let Some(cut) = widen_seq(out.seq(hit, w), current) else {
            return Vec::new();
        };
        held.iter().copied().filter(|&s| s <= cut).collect()
    }

    #[test]
    fn lookup_reports_the_sequence_of_each_workers_latest_subscribe() {
        let reg = Registry::new(3);
        reg.subscribe(Namespace::Global, &b("news"), 0, 4);
        reg.subscribe(Namespace::Global, &b("news"), 2, 10);
        reg.subscribe(Namespace::Global, &b("news"), 2, 11);
        reg.psubscribe(&b("n*"), 1, 7);
        reg.psubscribe(&b("*"), 2, 12);
        let out = lookup(&reg, Namespace::Global, "news");
        assert_eq!(out.stride(), 3);
        assert_eq!(pattern_names(&out), vec![b"*".as_ref(), b"n*".as_ref()]);
        assert_eq!(out.seqs(), &[4, 0, 11, 0, 0, 12, 0, 7, 0]);
        assert_eq!((out.seq(0, 0), out.seq(0, 2)), (4, 11));
        assert_eq!((out.seq(1, 2), out.seq(2, 1)), (12, 7));
        // No subscriber there, no such hit, no such worker.
        assert_eq!((out.seq(0, 1), out.seq(3, 0), out.seq(0, 3)), (0, 0, 0));
        // An unsubscribe changes the count only.
        reg.unsubscribe(Namespace::Global, b"news", 2);
        let out = lookup(&reg, Namespace::Global, "news");
        assert_eq!((out.channel.count, out.seq(0, 2)), (2, 11));
        // Only the low 32 bits travel.
        reg.subscribe(Namespace::Global, &b("news"), 0, (5 << 32) | 9);
        assert_eq!(lookup(&reg, Namespace::Global, "news").seq(0, 0), 9);
        assert_eq!(
            lookup(&reg, Namespace::Shard, "news").seqs(),
            &[0, 0, 0],
            "nobody in the shard namespace"
        );
    }

    /// Worker 1 subscribes a second connection after worker 0 looked the
    /// channel up and before worker 1 delivers: the lookup's sequence tells
    /// worker 1 to leave the newcomer out, so deliveries equal the count.
    #[test]
    fn a_subscribe_after_a_lookup_is_not_covered_by_it() {
        let reg = Registry::new(2);
        let ch = b("news");
        // Worker 1's own sequence, incremented per subscribe.
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            seq
        };
        let first = next();
        reg.subscribe(Namespace::Global, &ch, 1, first);
        let before = lookup(&reg, Namespace::Global, "news");
        let second = next(); // Lock-free path: worker 1 already counted.
        reg.subscribe(Namespace::Global, &ch, 1, second);
        assert!(widen_seq(before.seq(0, 1), second) < Some(second));
        let delivered = covered(&before, 0, 1, &[first, second], second);
        assert_eq!(delivered, vec![first]);
        assert_eq!(delivered.len() as u64, before.channel.count);
        let after = lookup(&reg, Namespace::Global, "news");
        assert_eq!(
            covered(&after, 0, 1, &[first, second], second),
            vec![first, second]
        );

        // A worker's first subscriber (locked path) after a lookup that saw
        // only worker 0's: not counted, not covered.
        reg.subscribe(Namespace::Global, &b("sport"), 0, 1);
        let before = lookup(&reg, Namespace::Global, "sport");
        let third = next();
        reg.subscribe(Namespace::Global, &b("sport"), 1, third);
        assert!(covered(&before, 0, 1, &[third], third).is_empty());
        let after = lookup(&reg, Namespace::Global, "sport");
        assert_eq!(covered(&after, 0, 1, &[third], third), vec![third]);

        // The same for a pattern (hit 1 + i).
        let p = b("new*");
        let fourth = next();
        reg.psubscribe(&p, 1, fourth);
        let before = lookup(&reg, Namespace::Global, "news");
        let fifth = next();
        reg.psubscribe(&p, 1, fifth);
        assert_eq!(before.patterns[0].hits.count, 1);
        assert_eq!(
            covered(&before, 1, 1, &[fourth, fifth], fifth),
            vec![fourth]
        );
        let after = lookup(&reg, Namespace::Global, "news");
        assert_eq!(
            covered(&after, 1, 1, &[fourth, fifth], fifth),
            vec![fourth, fifth]
        );
    }

    /// Worker 1's only subscriber leaves, which removes the channel, and a
    /// new one arrives, which re-creates it: neither a lookup made before
    /// nor a read of the removed entry covers the newcomer.
    #[test]
    fn a_lookup_of_a_removed_entry_never_covers_its_successors_subscribers() {
        let reg = Registry::new(2);
        let ch = b("news");
        reg.subscribe(Namespace::Global, &ch, 1, 1);
        let before = lookup(&reg, Namespace::Global, "news");
        let old = entry_of(&reg, Namespace::Global, &ch).unwrap();
        reg.unsubscribe(Namespace::Global, &ch, 1);
        reg.subscribe(Namespace::Global, &ch, 1, 2);
        assert_eq!(before.seq(0, 1), 1);
        assert!(covered(&before, 0, 1, &[2], 2).is_empty());
        // A lookup that loaded the old snapshot and reads the entry now.
        let mut seqs = [0; 2];
        assert!(old.hits(&mut seqs).workers.is_empty());
        assert_eq!(seqs, [0, 0]);
        // Nor can a stale subscriber revive it (invariant 4).
        assert!(!old.try_increment(1, 3));
        reg.subscribe(Namespace::Global, &ch, 1, 3);
        assert!(old.hits(&mut seqs).workers.is_empty());
        let after = lookup(&reg, Namespace::Global, "news");
        assert_eq!((after.channel.count, after.seq(0, 1)), (2, 3));
        assert_eq!(covered(&after, 0, 1, &[2, 3], 3), vec![2, 3]);
    }

    /// Patterns sharing one prefix, beyond what a slice bucket holds.
    fn same_prefix_pattern(i: usize) -> Bytes {
        // All start with `a` and match any channel starting with `a`:
        // `a*`, `a**`, … and `a?*`, `a?**`, …
        let stars = "*".repeat(i / 2 + 1);
        b(&if i.is_multiple_of(2) {
            format!("a{stars}")
        } else {
            format!("a?{stars}")
        })
    }

    /// Checks the shape of a bucket's tree (every node non-empty and at
    /// most `NODE_MAX` wide, every leaf at one depth, patterns ascending);
    /// returns its patterns with their reference counts (one per node, or
    /// leaf, holding them in any live version), and its depth.
    fn tree_of(bucket: &Bucket) -> (Vec<(Bytes, usize)>, usize) {
        fn walk(node: &Node, out: &mut Vec<(Bytes, usize)>) -> usize {
            assert!((1..=NODE_MAX).contains(&node.width()));
            match node {
                Node::Leaf(leaf) => {
                    out.extend(
                        leaf.iter()
                            .map(|p| (Bytes::copy_from_slice(&p.0.key), Entry::strong_count(&p.0))),
                    );
                    1
                }
                Node::Branch(children) => {
                    let depths: Vec<usize> = children.iter().map(|c| walk(c, out)).collect();
                    assert!(depths.windows(2).all(|d| d[0] == d[1]), "{depths:?}");
                    depths[0] + 1
                }
            }
        }
        let mut patterns = Vec::new();
        let depth = match &bucket.patterns {
            Patterns::One(p) => {
                patterns.push((Bytes::copy_from_slice(&p.0.key), Entry::strong_count(&p.0)));
                1
            }
            Patterns::Tree(root) => {
                // A tree holds two patterns or more.
                assert!(root.width() > 1 || matches!(root, Node::Branch(_)));
                walk(root, &mut patterns)
            }
        };
        assert_eq!(bucket.prefix(), glob::literal_prefix(&patterns[0].0));
        assert!(patterns.windows(2).all(|w| w[0].0 < w[1].0));
        (patterns, depth)
    }

    fn bucket_of(reg: &Registry, prefix: &[u8]) -> Option<Bucket> {
        reg.bucket(prefix)
    }

    /// Subscribes and unsubscribes same-prefix patterns at random so that the
    /// bucket's tree grows, splits, merges and shrinks many times; lookups
    /// must always report exactly the live patterns, in byte order.
    #[test]
    fn a_large_bucket_keeps_its_patterns_and_their_order() {
        const PATTERNS: usize = 3 * NODE_MAX;
        let reg = Registry::new(1);
        let names: Vec<Bytes> = (0..PATTERNS).map(same_prefix_pattern).collect();
        let mut live: BTreeMap<Bytes, u64> = BTreeMap::new();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut deepest = 0;
        for step in 0..6000u64 {
            // Drift: mostly adds in the first and third thousand of steps,
            // mostly removes in between, to cross the thresholds.
            let adding = rng.below(4) != 0;
            let adding = if (step / 1000).is_multiple_of(2) {
                adding
            } else {
                !adding
            };
            let name = &names[rng.below(PATTERNS)];
            if adding {
                reg.psubscribe(name, 0, step);
                *live.entry(name.clone()).or_default() += 1;
            } else if let Some(n) = live.get_mut(name) {
                reg.punsubscribe(name, 0);
                *n -= 1;
                if *n == 0 {
                    live.remove(name);
                }
            }
            let out = lookup(&reg, Namespace::Global, "abc");
            let want: Vec<&[u8]> = live.keys().map(|k| k.as_ref()).collect();
            assert_eq!(pattern_names(&out), want);
            let counts: Vec<u64> = out.patterns.iter().map(|p| p.hits.count).collect();
            assert_eq!(counts, live.values().copied().collect::<Vec<_>>());
            assert_eq!(reg.pattern_count(), live.len());
            match bucket_of(&reg, b"a") {
                Some(bucket) => {
                    let (patterns, depth) = tree_of(&bucket);
                    assert_eq!(patterns.len(), live.len());
                    deepest = deepest.max(depth);
                }
                None => assert!(live.is_empty()),
            }
        }
        assert!(deepest >= 2, "the bucket never outgrew a leaf");
        for (name, n) in live {
            for _ in 0..n {
                reg.punsubscribe(&name, 0);
            }
        }
        assert_fully_empty(&reg);
    }

    /// 10,000 patterns of one prefix in random order in, then out: the tree
    /// keeps its shape at three levels all the way down to empty.
    #[test]
    fn a_bucket_tree_keeps_its_shape_while_it_grows_and_empties() {
        const PATTERNS: usize = 10_000;
        let reg = Registry::new(1);
        let mut names: Vec<Bytes> = (0..PATTERNS)
            .map(|i| Bytes::from(format!("news.*.{i}")))
            .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut shuffle = |names: &mut Vec<Bytes>| {
            for i in (1..names.len()).rev() {
                names.swap(i, rng.below(i + 1));
            }
        };
        shuffle(&mut names);
        let check = |held: usize| match bucket_of(&reg, b"news.") {
            Some(bucket) => {
                let (patterns, depth) = tree_of(&bucket);
                assert_eq!(patterns.len(), held);
                depth
            }
            None => {
                assert_eq!(held, 0);
                0
            }
        };
        for (i, name) in names.iter().enumerate() {
            reg.psubscribe(name, 0, i as u64);
            if i % 250 == 0 {
                check(i + 1);
            }
        }
        assert_eq!(check(PATTERNS), 3);
        shuffle(&mut names);
        for (i, name) in names.iter().enumerate() {
            reg.punsubscribe(name, 0);
            if i % 250 == 0 {
                check(PATTERNS - i - 1);
            }
        }
        check(0);
        assert_fully_empty(&reg);
    }

    /// Patterns of `now` referenced more than in `before`: those in leaves
    /// that the change from `before` to `now` copied instead of sharing.
    fn copied(before: &[(Bytes, usize)], now: &Bucket) -> usize {
        let before: BTreeMap<&Bytes, usize> = before.iter().map(|(k, n)| (k, *n)).collect();
        tree_of(now)
            .0
            .iter()
            .filter(|(k, n)| before.get(k).is_some_and(|b| n > b))
            .count()
    }

    /// A change to a bucket of 10,000 patterns shares all but one path of
    /// the previous version, which stays alive (a reader may hold it).
    #[test]
    fn a_change_to_a_large_bucket_copies_only_a_path() {
        const PATTERNS: u64 = 10_000;
        let reg = Registry::new(1);
        for i in 0..PATTERNS {
            reg.psubscribe(&Bytes::from(format!("news.*.{i}")), 0, i);
        }
        let old = bucket_of(&reg, b"news.").unwrap();
        let (before, _) = tree_of(&old);
        reg.psubscribe(&b("news.*.x"), 0, PATTERNS);
        let added = bucket_of(&reg, b"news.").unwrap();
        assert_eq!(tree_of(&added).0.len(), PATTERNS as usize + 1);
        assert!(copied(&before, &added) <= 2 * NODE_MAX);
        drop(old);
        let (before, _) = tree_of(&added);
        reg.punsubscribe(b"news.*.5000", 0);
        let removed = bucket_of(&reg, b"news.").unwrap();
        assert_eq!(tree_of(&removed).0.len(), PATTERNS as usize);
        assert!(removed.find(b"news.*.5000").is_none());
        assert!(copied(&before, &removed) <= 2 * NODE_MAX);
    }

    #[test]
    fn channels_lists_populated_shards_only_and_the_bits_follow_them() {
        let reg = Registry::new(2);
        assert!(reg.channel_bytes(Namespace::Global, None).is_empty());
        let names: Vec<Bytes> = (0..2000).map(|i| b(&format!("ch:{i}"))).collect();
        for (i, name) in names.iter().enumerate() {
            reg.subscribe(Namespace::Global, name, i % 2, i as u64);
            if i % 3 == 0 {
                reg.subscribe(Namespace::Shard, name, 0, i as u64);
            }
        }
        for name in names.iter().step_by(2) {
            reg.unsubscribe(Namespace::Global, name, 0);
        }
        let bits_match_shards = |table: &ChannelTable| {
            for (i, shard, bit) in table.shards_and_bits() {
                assert_eq!(bit, !shard.snapshot.load().is_empty(), "shard {i}");
            }
        };
        bits_match_shards(&reg.global);
        bits_match_shards(&reg.shard);
        let sorted = |mut v: Vec<Bytes>| {
            v.sort();
            v
        };
        let odd: Vec<Bytes> = names.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(
            sorted(reg.channel_bytes(Namespace::Global, None)),
            sorted(odd)
        );
        let thirds: Vec<Bytes> = names.iter().step_by(3).cloned().collect();
        assert_eq!(
            sorted(reg.channel_bytes(Namespace::Shard, None)),
            sorted(thirds)
        );
        assert_eq!(
            reg.channel_bytes(Namespace::Global, Some(b"ch:1999")),
            vec![b("ch:1999")]
        );
        for name in names.iter().skip(1).step_by(2) {
            reg.unsubscribe(Namespace::Global, name, 1);
        }
        for name in names.iter().step_by(3) {
            reg.unsubscribe(Namespace::Shard, name, 0);
        }
        assert!(reg.channel_bytes(Namespace::Global, None).is_empty());
        assert!(reg.channel_bytes(Namespace::Shard, None).is_empty());
        assert_fully_empty(&reg);
    }

    /// Checks the table's shape: every channel in the shard its addressing
    /// names and in no other, the bits equal to the shards' contents, the
    /// count equal to the channels held, and about `SHARD_LOAD` per shard
    /// on average at most (a writer that found the table being grown by
    /// another may leave it a split or two behind until the next creation).
    fn assert_table_shape(table: &ChannelTable) {
        let at = table.addressing();
        let mut held = 0;
        for (i, shard, bit) in table.shards_and_bits() {
            let snapshot = shard.snapshot.load();
            assert_eq!(bit, !snapshot.is_empty(), "shard {i}");
            assert!(i < at.shards() || snapshot.is_empty(), "shard {i}");
            for slot in snapshot.iter() {
                assert_eq!(at.shard_of(slot.hash), i);
                assert_eq!(slot.hash, slot.entry.hash);
            }
            held += snapshot.len();
        }
        assert_eq!(held, table.len.load(Ordering::Acquire));
        assert!(held <= SHARD_LOAD * (at.shards() + 2));
    }

    #[test]
    fn a_split_moves_only_the_split_shards_channels_to_the_new_one() {
        let mut at = Addressing { level: 2, split: 0 };
        let hashes: Vec<u64> = (0..64).collect();
        for _ in 0..12 {
            let before: Vec<usize> = hashes.iter().map(|&h| at.shard_of(h)).collect();
            let next = at.after_split();
            for (&h, &i) in hashes.iter().zip(&before) {
                let j = next.shard_of(h);
                // Only the split shard's channels move, and only to the new one.
                if i == at.split {
                    assert!(j == i || j == at.split + (1 << at.level));
                } else {
                    assert_eq!(j, i);
                }
                assert!(j < next.shards());
            }
            assert_eq!(next.shards(), at.shards() + 1);
            assert_eq!(Addressing::unpack(next.pack()), next);
            at = next;
        }
        assert_eq!((at.level, at.split), (4, 0));
        for i in 0..1000 {
            let (k, place) = segment_of(i);
            let base = if k == 0 { 0 } else { segment_len(k) };
            assert_eq!(base + place, i);
            assert!(place < segment_len(k));
        }
    }

    #[test]
    fn a_table_grows_with_its_channels_and_keeps_every_one() {
        const CHANNELS: usize = 20_000;
        let reg = Registry::new(2);
        let names: Vec<Bytes> = (0..CHANNELS).map(|i| b(&format!("ch:{i}"))).collect();
        for (i, name) in names.iter().enumerate() {
            reg.subscribe(Namespace::Global, name, i % 2, i as u64 + 1);
            if i % 997 == 0 {
                assert_table_shape(&reg.global);
            }
        }
        assert_table_shape(&reg.global);
        let shards = reg.global.addressing().shards();
        assert_eq!(shards, CHANNELS.div_ceil(SHARD_LOAD));
        for (i, name) in names.iter().enumerate() {
            let out = lookup(&reg, Namespace::Global, std::str::from_utf8(name).unwrap());
            assert_eq!(out.channel.count, 1);
            assert_eq!(out.channel.workers, WorkerSet(1 << (i % 2)));
            assert_eq!(out.seq(0, i % 2), i as u32 + 1);
        }
        let mut listed = reg.channel_bytes(Namespace::Global, None);
        listed.sort();
        let mut want = names.clone();
        want.sort();
        assert_eq!(listed, want);
        for (i, name) in names.iter().enumerate() {
            reg.unsubscribe(Namespace::Global, name, i % 2);
        }
        // Shards are not merged back; they are all empty.
        assert_eq!(reg.global.addressing().shards(), shards);
        assert_fully_empty(&reg);
        assert_table_shape(&reg.global);
    }

    #[test]
    fn names_are_the_registry_entries_and_give_subscriptions_back() {
        let reg = Registry::new(2);
        let first = reg.subscribe_name(Namespace::Global, b"news", 0, 1);
        let second = reg.subscribe_name(Namespace::Global, b"news", 1, 2);
        assert!(Entry::ptr_eq(&first.0, &second.0), "one entry, one name");
        assert_eq!(&first[..], b"news");
        assert_eq!(first.bytes(), &b("news"));
        assert_eq!(first.hash_value(), reg.hash(b"news"));
        assert_eq!(reg.name_ref(b"news").hash_value(), first.hash_value());
        let shard = reg.subscribe_name(Namespace::Shard, b"news", 0, 3);
        assert!(
            !Entry::ptr_eq(&first.0, &shard.0),
            "namespaces are separate"
        );
        assert_eq!(shard, first, "equal as names");
        let pattern = reg.psubscribe_name(b"n*", 1, 4);
        assert_eq!(&pattern[..], b"n*");
        assert_eq!(pattern.hash_value(), reg.hash(b"n*"));

        reg.unsubscribe_name(Namespace::Global, &first, 0);
        assert_eq!(reg.numsub(Namespace::Global, b"news"), 1);
        // Given back twice by mistake: the second finds nothing to take.
        reg.unsubscribe_name(Namespace::Global, &first, 0);
        assert_eq!(reg.numsub(Namespace::Global, b"news"), 1);
        reg.unsubscribe_name(Namespace::Global, &second, 1);
        assert_eq!(reg.channel_count(Namespace::Global), 0);
        assert_eq!(reg.numsub(Namespace::Shard, b"news"), 1);
        reg.unsubscribe_name(Namespace::Shard, &shard, 0);
        reg.punsubscribe_name(&pattern, 1);
        assert_fully_empty(&reg);
        // The names outlive their entries' removal, with their bytes.
        assert_eq!(&first[..], b"news");
    }

    /// Worker 0 creates 50,000 channels (the table splits thousands of
    /// times) and subscribes to a third of worker 1's, while worker 1 gives
    /// back another third of its own by name, a publisher looks up the
    /// ones nobody gives back and PUBSUB CHANNELS lists them: never a
    /// miss, never a duplicate, and every count exact at the end.
    #[test]
    fn growth_racing_subscribes_unsubscribes_and_lookups_keeps_counts_exact() {
        const KEPT: usize = 6000;
        const NEW: usize = 50_000;
        let reg = Registry::new(2);
        let kept: Vec<Bytes> = (0..KEPT).map(|i| b(&format!("kept:{i}"))).collect();
        let new: Vec<Bytes> = (0..NEW).map(|i| b(&format!("new:{i}"))).collect();
        let names: Vec<Name> = kept
            .iter()
            .enumerate()
            .map(|(i, c)| reg.subscribe_name(Namespace::Global, c, 1, i as u64 + 1))
            .collect();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let grower = s.spawn(|| {
                let mut seq = 0;
                for (i, c) in new.iter().enumerate() {
                    seq += 1;
                    reg.subscribe(Namespace::Global, c, 0, seq);
                    // A third of the channels worker 1 keeps.
                    let j = i / 3;
                    if i % 3 == 0 && j < KEPT && j % 3 == 1 {
                        seq += 1;
                        reg.subscribe(Namespace::Global, &kept[j], 0, seq);
                    }
                }
            });
            let giver = s.spawn(|| {
                // One by one, and in batches (one snapshot per shard).
                for (k, chunk) in names.chunks(150).enumerate() {
                    let gone = chunk.iter().enumerate().filter(|(j, _)| j % 3 == 2);
                    if k % 2 == 0 {
                        for (_, name) in gone {
                            reg.unsubscribe_name(Namespace::Global, name, 1);
                        }
                    } else {
                        reg.unsubscribe_names(Namespace::Global, gone.map(|(_, n)| n), 1);
                    }
                }
            });
            s.spawn(|| {
                let mut out = Lookup::default();
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) || rounds < 2 {
                    for (j, c) in kept.iter().enumerate().filter(|(j, _)| j % 3 != 2) {
                        reg.lookup(Namespace::Global, c, &mut out);
                        assert!(out.channel.workers.contains(1), "{c:?} missed");
                        assert!(out.channel.count >= 1);
                        assert_eq!(out.seq(0, 1), j as u32 + 1);
                    }
                    rounds += 1;
                }
            });
            s.spawn(|| {
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) || rounds < 2 {
                    let mut listed = reg.channel_bytes(Namespace::Global, Some(b"kept:*"));
                    let all = listed.len();
                    listed.sort();
                    listed.dedup();
                    assert_eq!(listed.len(), all, "a channel listed twice");
                    for (j, c) in kept.iter().enumerate().filter(|(j, _)| j % 3 != 2) {
                        assert!(listed.binary_search(c).is_ok(), "kept:{j} not listed");
                    }
                    rounds += 1;
                }
            });
            grower.join().unwrap();
            giver.join().unwrap();
            stop.store(true, Ordering::Relaxed);
        });
        for (j, c) in kept.iter().enumerate() {
            let want = u64::from(j % 3 != 2) + u64::from(j % 3 == 1);
            assert_eq!(reg.numsub(Namespace::Global, c), want, "kept:{j}");
        }
        for c in &new {
            assert_eq!(reg.numsub(Namespace::Global, c), 1);
        }
        let live = NEW + KEPT - KEPT / 3;
        assert_eq!(reg.channel_count(Namespace::Global), live);
        assert_eq!(reg.channel_bytes(Namespace::Global, None).len(), live);
        assert_table_shape(&reg.global);
    }

    proptest! {
        /// Subscribes and unsubscribes (mostly subscribes, so the table
        /// grows past its first shards) compared with a plain model.
        #[test]
        fn channel_counts_equal_a_model_through_growth(
            ops in proptest::collection::vec((0..400usize, 0..3usize, 0..4u8), 0..1500),
        ) {
            let reg = Registry::new(3);
            let names: Vec<Bytes> = (0..400).map(|i| b(&format!("c{i}"))).collect();
            let mut held: BTreeMap<(usize, usize), u64> = BTreeMap::new();
            for (c, w, r) in ops {
                let n = held.entry((c, w)).or_default();
                if r != 0 {
                    reg.subscribe(Namespace::Global, &names[c], w, 1);
                    *n += 1;
                } else {
                    reg.unsubscribe(Namespace::Global, &names[c], w);
                    *n = n.saturating_sub(1);
                }
            }
            let mut live = Vec::new();
            for (c, name) in names.iter().enumerate() {
                let mut want = (WorkerSet::default(), 0);
                for w in 0..3 {
                    let n = held.get(&(c, w)).copied().unwrap_or(0);
                    if n > 0 {
                        want.0.insert(w);
                        want.1 += n;
                    }
                }
                let mut out = Lookup::default();
                reg.lookup(Namespace::Global, name, &mut out);
                prop_assert_eq!((out.channel.workers, out.channel.count), want);
                if want.1 > 0 {
                    live.push(name.clone());
                }
            }
            prop_assert_eq!(reg.channel_count(Namespace::Global), live.len());
            let mut listed = reg.channel_bytes(Namespace::Global, None);
            listed.sort();
            live.sort();
            prop_assert_eq!(listed, live);
            assert_table_shape(&reg.global);
        }
    }

    #[test]
    #[should_panic(expected = "worker id out of range")]
    fn subscribe_rejects_worker_beyond_count() {
        Registry::new(2).subscribe(Namespace::Global, &b("a"), 2, 0);
    }

    /// Races a last unsubscribe on one worker against a first subscribe on
    /// another, many times: the channel must survive with exactly one
    /// subscriber every time.
    #[test]
    fn removal_racing_a_subscribe_on_another_worker_keeps_the_subscriber() {
        let reg = Registry::new(2);
        let ch = b("contended");
        for _ in 0..2000 {
            reg.subscribe(Namespace::Global, &ch, 0, 0);
            std::thread::scope(|s| {
                s.spawn(|| reg.unsubscribe(Namespace::Global, &ch, 0));
                s.spawn(|| reg.subscribe(Namespace::Global, &ch, 1, 0));
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
                                (true, true) => {
                                    reg.subscribe(Namespace::Global, &channels[i], w, 0)
                                }
                                (true, false) => {
                                    reg.unsubscribe(Namespace::Global, &channels[i], w)
                                }
                                (false, true) => {
                                    reg.psubscribe(&patterns[i - CHANNELS.len()], w, 0)
                                }
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
        assert_eq!(
            reg.channel_bytes(Namespace::Global, None).len(),
            live_channels
        );
        let mut live_patterns = 0;
        let all = lookup(&reg, Namespace::Global, "x");
        for (j, p) in PATTERNS.iter().enumerate() {
            let (set, total) = expected(CHANNELS.len() + j);
            let hit = all.patterns.iter().find(|h| h.pattern[..] == *p.as_bytes());
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
                reg.psubscribe(&Bytes::copy_from_slice(p), *w, 0);
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
#[cfg(all(test, not(loom)))]
mod batch_tests {
    use super::*;
    use proptest::prelude::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// What a registry shows of its subscriptions: every channel of both
    /// namespaces with its subscribers per worker, every pattern likewise,
    /// the counts INFO reports and the prefix lengths a lookup probes.
    fn observed(reg: &Registry, channels: &[Bytes], patterns: &[Bytes]) -> Vec<String> {
        let mut seen = Vec::new();
        for ns in [Namespace::Global, Namespace::Shard] {
            for c in channels {
                let mut out = Lookup::default();
                reg.lookup(ns, c, &mut out);
                let hits = out.channel;
                seen.push(format!("{ns:?} {c:?} {:?} {}", hits.workers, hits.count));
            }
            let mut listed = reg.channel_bytes(ns, None);
            listed.sort();
            seen.push(format!("{ns:?} {listed:?} {}", reg.channel_count(ns)));
        }
        for p in patterns {
            let hits = reg
                .bucket(glob::literal_prefix(p))
                .and_then(|bucket| bucket.find(p).map(|e| e.hits(&mut [])));
            seen.push(format!("{p:?} {:?}", hits.map(|h| (h.workers, h.count))));
        }
        seen.push(format!(
            "{} {:?}",
            reg.pattern_count(),
            reg.patterns.lengths.load().to_vec()
        ));
        seen
    }

    fn check_tables(reg: &Registry) {
        for table in [&reg.global, &reg.shard] {
            let at = table.addressing();
            let mut held = 0;
            for (i, shard, bit) in table.shards_and_bits() {
                let snapshot = shard.snapshot.load();
                assert_eq!(bit, !snapshot.is_empty(), "shard {i}");
                for slot in snapshot.iter() {
                    assert_eq!(at.shard_of(slot.hash), i);
                    // Invariant 3: every entry left has a subscriber.
                    assert!(!slot.entry.hits(&mut []).workers.is_empty());
                }
                held += snapshot.len();
            }
            assert_eq!(held, table.len.load(Ordering::Acquire));
        }
    }

    #[test]
    fn giving_back_a_thousand_channels_at_once_removes_them_shard_by_shard() {
        let reg = Registry::new(2);
        let names: Vec<Bytes> = (0..4000).map(|i| b(&format!("chan:{i}"))).collect();
        let held: Vec<Name> = names
            .iter()
            .enumerate()
            .map(|(i, c)| reg.subscribe_name(Namespace::Global, c, 0, i as u64 + 1))
            .collect();
        // Worker 1 keeps every fourth; worker 0 subscribes the fifth ones twice.
        for c in names.iter().step_by(4) {
            reg.subscribe(Namespace::Global, c, 1, 1);
        }
        for c in names.iter().step_by(5) {
            reg.subscribe(Namespace::Global, c, 0, 9000);
        }
        let shards = reg.global.addressing().shards();
        reg.unsubscribe_names(Namespace::Global, &held, 0);
        for (i, c) in names.iter().enumerate() {
            let want = u64::from(i % 4 == 0) + u64::from(i % 5 == 0);
            assert_eq!(reg.numsub(Namespace::Global, c), want, "{c:?}");
        }
        let live = names.len()
            - (0..names.len())
                .filter(|i| i % 4 != 0 && i % 5 != 0)
                .count();
        assert_eq!(reg.channel_count(Namespace::Global), live);
        assert_eq!(
            reg.global.addressing().shards(),
            shards,
            "removal never splits"
        );
        check_tables(&reg);
        // Giving back what is not counted any more changes nothing.
        let uncounted = held.iter().enumerate().filter(|(i, _)| i % 5 != 0);
        reg.unsubscribe_names(Namespace::Global, uncounted.map(|(_, n)| n), 0);
        assert_eq!(reg.channel_count(Namespace::Global), live);
        check_tables(&reg);
    }

    #[test]
    fn giving_back_many_patterns_at_once_keeps_buckets_and_prefix_lengths_exact() {
        let reg = Registry::new(2);
        // Distinct prefixes, one shared prefix with many patterns (a tree
        // of several leaves), and prefixes of several lengths.
        let mut patterns: Vec<Bytes> = (0..600).map(|i| b(&format!("news.{i}.*"))).collect();
        patterns.extend((0..300).map(|i| b(&format!("wide.*.{i}"))));
        patterns.extend([b("*"), b("a?"), b("ab*"), b("abc[de]")]);
        let held: Vec<Name> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| reg.psubscribe_name(p, 0, i as u64 + 1))
            .collect();
        reg.psubscribe(&b("wide.*.7"), 1, 1);
        reg.psubscribe(&b("ab*"), 1, 2);
        reg.psubscribe(&b("news.3.*"), 0, 5000);
        reg.punsubscribe_names(&held, 0);
        assert_eq!(reg.pattern_count(), 3);
        assert_eq!(reg.patterns.lengths.load().as_slice(), &[2, 5, 7]);
        let mut out = Lookup::default();
        reg.lookup(Namespace::Global, b"wide.x.7", &mut out);
        assert_eq!(out.patterns.len(), 1);
        assert_eq!(out.patterns[0].hits.workers, WorkerSet(0b10));
        reg.lookup(Namespace::Global, b"news.3.x", &mut out);
        assert_eq!(out.patterns.len(), 1);
        assert_eq!(out.patterns[0].hits.workers, WorkerSet(0b01));
        reg.punsubscribe(b"wide.*.7", 1);
        reg.punsubscribe(b"ab*", 1);
        reg.punsubscribe(b"news.3.*", 0);
        assert_eq!(reg.pattern_count(), 0);
        assert!(reg.patterns.lengths.load().is_empty());
        assert!(
            reg.patterns
                .shards
                .iter()
                .all(|s| s.snapshot.load().is_empty())
        );
    }

    /// One batch that mixes what a PUNSUBSCRIBE can hand over: patterns
    /// sharing a bucket (all of it, or part), patterns another worker
    /// still holds, a name given twice, a name the worker held twice and
    /// names it does not hold; beside buckets the batch leaves alone in the
    /// same shards.
    #[test]
    fn a_mixed_pattern_batch_removes_exactly_the_last_subscriptions() {
        let reg = Registry::new(3);
        let sub = |p: &str, w: WorkerId| reg.psubscribe_name(p.as_bytes(), w, 1);
        // Worker 0's: 2,000 one-pattern buckets, of which the odd ones stay.
        let singles: Vec<Name> = (0..2000).map(|i| sub(&format!("s.{i}.*"), 0)).collect();
        // A bucket given back whole, and one given back in part.
        let whole: Vec<Name> = (0..100).map(|i| sub(&format!("w.*.{i}"), 0)).collect();
        let part: Vec<Name> = (0..100).map(|i| sub(&format!("p.*.{i}"), 0)).collect();
        // Held by worker 1 too, or twice by worker 0.
        let shared = sub("s.0.*", 1);
        let twice = sub("t.*", 0);
        sub("t.*", 0);
        // Worker 1's alone: not counted for worker 0.
        let others = sub("o.*", 1);
        let mut batch: Vec<&Name> = singles.iter().step_by(2).collect();
        batch.extend(&whole);
        batch.extend(part.iter().take(70));
        batch.extend([&shared, &twice, &others, &singles[0], &whole[5]]);
        reg.punsubscribe_names(batch, 0);

        let found = |channel: &str| {
            let mut out = Lookup::default();
            reg.lookup(Namespace::Global, channel.as_bytes(), &mut out);
            let hits: Vec<(Bytes, WorkerSet, u64)> = out
                .patterns
                .iter()
                .map(|p| {
                    (
                        Bytes::copy_from_slice(&p.pattern),
                        p.hits.workers,
                        p.hits.count,
                    )
                })
                .collect();
            hits
        };
        assert_eq!(found("s.0.x"), vec![(b("s.0.*"), WorkerSet(0b10), 1)]);
        assert!(found("s.2.x").is_empty());
        assert_eq!(found("s.3.x"), vec![(b("s.3.*"), WorkerSet(0b01), 1)]);
        assert!(found("w.x.5").is_empty());
        assert!(reg.bucket(b"w.").is_none());
        assert_eq!(found("p.x.70"), vec![(b("p.*.70"), WorkerSet(0b01), 1)]);
        assert!(found("p.x.69").is_empty());
        assert_eq!(found("t.x"), vec![(b("t.*"), WorkerSet(0b01), 1)]);
        assert_eq!(found("o.x"), vec![(b("o.*"), WorkerSet(0b10), 1)]);
        // s.0.*, the 1,000 odd singles, 30 of `part`, t.* and o.*.
        assert_eq!(reg.pattern_count(), 1 + 1000 + 30 + 2);
        let held: usize = reg
            .patterns
            .shards
            .iter()
            .map(|s| s.snapshot.load().len())
            .sum();
        assert_eq!(held, 1 + 1000 + 1 + 2);
        assert_eq!(reg.patterns.lengths.load().as_slice(), &[2, 4, 5, 6, 7]);

        // The rest, in a second batch: every shard ends on the shared
        // empty snapshot, with no bucket left.
        let mut rest: Vec<&Name> = singles.iter().skip(1).step_by(2).collect();
        rest.extend(part.iter().skip(70));
        rest.push(&twice);
        reg.punsubscribe_names(rest, 0);
        reg.punsubscribe_names([&shared, &others], 1);
        assert_eq!(reg.pattern_count(), 0);
        assert!(reg.patterns.lengths.load().is_empty());
        for shard in reg.patterns.shards.iter() {
            assert!(Arc::ptr_eq(
                &shard.snapshot.load_full(),
                &reg.patterns.empty
            ));
        }
    }

    fn pattern_names(out: &Lookup) -> Vec<&[u8]> {
        out.patterns.iter().map(|p| &p.pattern[..]).collect()
    }

    /// A bucket goes from one pattern (held as it is) to a tree and back,
    /// by single changes and by batches, and keeps its prefix and order.
    #[test]
    fn a_bucket_of_one_pattern_grows_into_a_tree_and_back() {
        let reg = Registry::new(1);
        let one = |reg: &Registry| {
            let bucket = reg.bucket(b"a.").expect("the bucket");
            assert_eq!(bucket.prefix(), b"a.");
            matches!(bucket.patterns, Patterns::One(_))
        };
        let z = reg.psubscribe_name(b"a.*z", 0, 1);
        assert!(one(&reg));
        let m = reg.psubscribe_name(b"a.*m", 0, 2);
        assert!(!one(&reg));
        let mut out = Lookup::default();
        reg.lookup(Namespace::Global, b"a.xz", &mut out);
        assert_eq!(pattern_names(&out), [b"a.*z".as_slice()]);
        reg.punsubscribe_name(&m, 0);
        assert!(one(&reg));
        let m = reg.psubscribe_name(b"a.*m", 0, 3);
        let a = reg.psubscribe_name(b"a.*", 0, 4);
        reg.lookup(Namespace::Global, b"a.xm", &mut out);
        assert_eq!(pattern_names(&out), [b"a.*".as_slice(), b"a.*m"]);
        reg.punsubscribe_names([&a, &z], 0);
        assert!(one(&reg));
        reg.lookup(Namespace::Global, b"a.xm", &mut out);
        assert_eq!(pattern_names(&out), [b"a.*m".as_slice()]);
        reg.punsubscribe_names([&m], 0);
        assert!(reg.bucket(b"a.").is_none());
        assert_eq!(reg.pattern_count(), 0);
    }

    fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'b'), Just(b'*'), Just(b'?'), Just(b'.')],
            0..5,
        )
    }

    proptest! {
        /// A batch give-back leaves a registry exactly as giving the same
        /// subscriptions back one at a time does, whatever else is held.
        #[test]
        fn a_batch_equals_one_by_one(
            subs in proptest::collection::vec((name_strategy(), 0..3usize, 0..2usize, 1..3u32), 0..120),
            gone in proptest::collection::vec(any::<bool>(), 120),
        ) {
            let batch = Registry::new(2);
            let single = Registry::new(2);
            let mut channels = Vec::new();
            let mut patterns = Vec::new();
            // (kind, worker, name) of each subscription to give back.
            let mut given = Vec::new();
            let mut seq = 0;
            for (i, (name, kind, w, times)) in subs.iter().enumerate() {
                let name = Bytes::from(name.clone());
                for _ in 0..*times {
                    seq += 1;
                    let held = [&batch, &single].map(|reg| match kind {
                        0 => reg.subscribe_name(Namespace::Global, &name, *w, seq),
                        1 => reg.subscribe_name(Namespace::Shard, &name, *w, seq),
                        _ => reg.psubscribe_name(&name, *w, seq),
                    });
                    if gone[i] {
                        given.push((*kind, *w, held));
                    }
                }
                if *kind == 2 { patterns.push(name) } else { channels.push(name) }
            }
            for (kind, w, [_, name]) in &given {
                match kind {
                    0 => single.unsubscribe_name(Namespace::Global, name, *w),
                    1 => single.unsubscribe_name(Namespace::Shard, name, *w),
                    _ => single.punsubscribe_name(name, *w),
                }
            }
            for w in 0..2 {
                for kind in 0..3 {
                    let names = given
                        .iter()
                        .filter(|(k, v, _)| (*k, *v) == (kind, w))
                        .map(|(_, _, [name, _])| name);
                    match kind {
                        0 => batch.unsubscribe_names(Namespace::Global, names, w),
                        1 => batch.unsubscribe_names(Namespace::Shard, names, w),
                        _ => batch.punsubscribe_names(names, w),
                    }
                }
            }
            prop_assert_eq!(
                observed(&batch, &channels, &patterns),
                observed(&single, &channels, &patterns)
            );
            check_tables(&batch);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    fn workers_of(reg: &Registry, channel: &[u8]) -> Hits {
        lookup(reg, channel).channel
    }

    fn lookup(reg: &Registry, channel: &[u8]) -> Lookup {
        let mut out = Lookup::default();
        reg.lookup(Namespace::Global, channel, &mut out);
        out
    }

    #[test]
    fn last_unsubscribe_racing_a_subscribe_on_another_worker_keeps_it() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 0, 0);
            let confirmed = Arc::new(AtomicBool::new(false));
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.unsubscribe(Namespace::Global, b"c", 0))
            };
            let subscriber = {
                let (reg, confirmed) = (Arc::clone(&reg), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 1, 7);
                    confirmed.store(true, Ordering::Release);
                })
            };
            // A publisher that learns of the confirmation must see it.
            if confirmed.load(Ordering::Acquire) {
                let out = lookup(&reg, b"c");
                assert!(out.channel.workers.contains(1));
                assert_eq!(out.seq(0, 1), 7);
            }
            remover.join().unwrap();
            subscriber.join().unwrap();
            let out = lookup(&reg, b"c");
            assert_eq!(
                (out.channel.workers, out.channel.count),
                (WorkerSet(0b10), 1)
            );
            assert_eq!(out.seq(0, 1), 7);
            assert_eq!(reg.channel_count(Namespace::Global), 1);
        });
    }

    #[test]
    fn same_worker_resubscribe_racing_its_last_unsubscribe_keeps_it() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(1));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 0, 1);
            let confirmed = Arc::new(AtomicBool::new(false));
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.unsubscribe(Namespace::Global, b"c", 0))
            };
            let subscriber = {
                let (reg, confirmed) = (Arc::clone(&reg), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 0, 2);
                    confirmed.store(true, Ordering::Release);
                })
            };
            if confirmed.load(Ordering::Acquire) {
                let out = lookup(&reg, b"c");
                assert!(out.channel.workers.contains(0));
                assert_eq!(out.seq(0, 0), 2);
            }
            remover.join().unwrap();
            subscriber.join().unwrap();
            // Whichever landed first, the count and the latest sequence stay
            // together: the unsubscribe took the count only.
            let out = lookup(&reg, b"c");
            assert_eq!((out.channel.count, out.seq(0, 0)), (1, 2));
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
            reg.subscribe(Namespace::Global, &ch, 1, 0);
            let confirmed = Arc::new(AtomicBool::new(false));
            let first = {
                let (reg, ch) = (Arc::clone(&reg), ch.clone());
                thread::spawn(move || reg.subscribe(Namespace::Global, &ch, 0, 0))
            };
            let second = {
                let (reg, confirmed) = (Arc::clone(&reg), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 0, 0);
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
            reg.psubscribe(&p, 0, 0);
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.punsubscribe(b"c*", 0))
            };
            let subscriber = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.psubscribe(&p, 1, 5))
            };
            remover.join().unwrap();
            subscriber.join().unwrap();
            let out = lookup(&reg, b"cx");
            assert_eq!(out.patterns.len(), 1);
            assert_eq!(out.patterns[0].hits.workers, WorkerSet(0b10));
            assert_eq!(out.seq(1, 1), 5);
            assert_eq!(reg.pattern_count(), 1);
        });
    }

    /// A lookup reads a worker's count and latest sequence in one load: it
    /// can never pair a count with the sequence of a subscribe it did not
    /// count (which split counters would allow).
    #[test]
    fn lookup_reads_count_and_sequence_together() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(1));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 0, 1);
            let worker = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &ch, 0, 2);
                    reg.subscribe(Namespace::Global, &ch, 0, 3);
                })
            };
            // Subscriptions 1..=n held, n the latest: count == sequence.
            let out = lookup(&reg, b"c");
            assert_eq!(out.channel.count, u64::from(out.seq(0, 0)));
            worker.join().unwrap();
            let out = lookup(&reg, b"c");
            assert_eq!((out.channel.count, out.seq(0, 0)), (3, 3));
        });
    }

    /// Worker 0 drops its only subscriber, which removes the entry, then
    /// subscribes again, which re-creates it, while worker 1 subscribes and a
    /// publisher looks up: the lookup covers exactly what it counts, and
    /// never worker 0's newcomer through the old entry.
    #[test]
    fn lookup_racing_removal_and_recreation_covers_what_it_counts() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let ch = Bytes::from_static(b"c");
            reg.subscribe(Namespace::Global, &ch, 0, 1);
            let worker0 = {
                let (reg, ch) = (Arc::clone(&reg), ch.clone());
                thread::spawn(move || {
                    reg.unsubscribe(Namespace::Global, &ch, 0);
                    reg.subscribe(Namespace::Global, &ch, 0, 2);
                })
            };
            let worker1 = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.subscribe(Namespace::Global, &ch, 1, 9))
            };
            let out = lookup(&reg, b"c");
            if out.channel.workers.contains(0) {
                // One subscriber of worker 0 is held at any instant: the
                // first (1) or the newcomer (2), named by the sequence.
                let o = out.seq(0, 0);
                assert!(o == 1 || o == 2);
                let counted = out.channel.count - u64::from(out.channel.workers.contains(1));
                assert_eq!(counted, 1);
            }
            if out.channel.workers.contains(1) {
                assert_eq!(out.seq(0, 1), 9);
            }
            worker0.join().unwrap();
            worker1.join().unwrap();
            let out = lookup(&reg, b"c");
            assert_eq!(
                (out.channel.workers, out.channel.count),
                (WorkerSet(0b11), 2)
            );
            assert_eq!((out.seq(0, 0), out.seq(0, 1)), (2, 9));
            assert_eq!(reg.channel_count(Namespace::Global), 1);
        });
    }

    /// One shard empties (clearing its populated bit) while another gets its
    /// first channel (setting its bit in the same word): PUBSUB CHANNELS
    /// after the confirmation lists the new channel, and the bits end equal
    /// to the shards' contents (invariant 7).
    #[test]
    fn channels_after_a_confirmed_subscribe_lists_it_while_another_shard_empties() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let c = Bytes::from_static(b"c");
            let shard_of = |name: &[u8]| reg.global.addressing().shard_of(reg.hash(name));
            // In the other shard of the two (the hasher is fixed under loom).
            let d = (0..64)
                .map(|i| Bytes::from(format!("d{i}")))
                .find(|d| shard_of(d) != shard_of(&c))
                .expect("a name in the other shard");
            reg.subscribe(Namespace::Global, &d, 1, 1);
            let confirmed = Arc::new(AtomicBool::new(false));
            let subscriber = {
                let (reg, c, confirmed) = (Arc::clone(&reg), c.clone(), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &c, 0, 1);
                    confirmed.store(true, Ordering::Release);
                })
            };
            let remover = {
                let (reg, d) = (Arc::clone(&reg), d.clone());
                thread::spawn(move || reg.unsubscribe(Namespace::Global, &d, 1))
            };
            if confirmed.load(Ordering::Acquire) {
                assert!(reg.channel_bytes(Namespace::Global, None).contains(&c));
            }
            subscriber.join().unwrap();
            remover.join().unwrap();
            assert_eq!(reg.channel_bytes(Namespace::Global, None), vec![c.clone()]);
            for (i, _, bit) in reg.global.shards_and_bits() {
                assert_eq!(bit, i == shard_of(&c), "shard {i}");
            }
        });
    }

    /// A registry of two shards holding `c` (of worker 0) and a filler
    /// channel, where `c` is a channel that the next split (of shard 0, on
    /// the third channel) moves to shard 2.
    /// Also returns `c`'s [`Name`].
    fn registry_before_a_split() -> (Arc<Registry>, Bytes, Name) {
        let reg = Arc::new(Registry::new(2));
        let c = (0..256)
            .map(|i| Bytes::from(format!("c{i}")))
            .find(|c| reg.hash(c) & 3 == 2)
            .expect("a name that moves");
        let name = reg.subscribe_name(Namespace::Global, &c, 0, 1);
        reg.subscribe(Namespace::Global, &Bytes::from_static(b"filler"), 0, 2);
        assert_eq!(reg.global.addressing().shards(), 2);
        (reg, c, name)
    }

    /// A third channel splits shard 0, moving `c` to shard 2, while a
    /// publisher looks `c` up and PUBSUB CHANNELS lists the channels: both
    /// find `c` (confirmed before) exactly once.
    #[test]
    fn lookups_racing_a_split_find_a_confirmed_channel_once() {
        loom::model(|| {
            let (reg, c, _) = registry_before_a_split();
            let grower = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &Bytes::from_static(b"d"), 1, 1)
                })
            };
            let out = lookup(&reg, &c);
            assert_eq!(
                (out.channel.workers, out.channel.count),
                (WorkerSet(0b01), 1)
            );
            assert_eq!(out.seq(0, 0), 1);
            let listed = reg.channel_bytes(Namespace::Global, None);
            assert_eq!(listed.iter().filter(|&n| *n == c).count(), 1);
            assert!(listed.len() <= 3);
            grower.join().unwrap();
            // Split, unless PUBSUB CHANNELS held the table still when the
            // grower came (the next creation splits then).
            let at = reg.global.addressing();
            assert!(at.shards() == 2 || at.shard_of(reg.hash(&c)) == 2);
            assert_eq!(reg.numsub(Namespace::Global, &c), 1);
            assert_eq!(reg.channel_bytes(Namespace::Global, None).len(), 3);
        });
    }

    /// `c`'s last subscriber leaves while a split moves it: it is removed
    /// exactly once, wherever it was, and the bits follow the shards. (With
    /// the removal first, the third channel splits nothing.)
    #[test]
    fn last_unsubscribe_racing_a_split_removes_the_channel() {
        loom::model(|| {
            let (reg, c, name) = registry_before_a_split();
            let grower = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &Bytes::from_static(b"d"), 1, 1)
                })
            };
            // By name, as a worker gives its subscriptions back.
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.unsubscribe_name(Namespace::Global, &name, 0))
            };
            grower.join().unwrap();
            remover.join().unwrap();
            assert_eq!(reg.numsub(Namespace::Global, &c), 0);
            assert_eq!(reg.channel_count(Namespace::Global), 2);
            let mut listed = reg.channel_bytes(Namespace::Global, None);
            listed.sort();
            assert_eq!(
                listed,
                vec![Bytes::from_static(b"d"), Bytes::from_static(b"filler")]
            );
            for (i, shard, bit) in reg.global.shards_and_bits() {
                assert_eq!(bit, !shard.snapshot.load().is_empty(), "shard {i}");
            }
        });
    }

    /// Worker 1's first subscriber of `c` arrives while a split moves `c`:
    /// it is counted once, in the entry that moved, visible on return.
    #[test]
    fn first_subscribe_of_a_worker_racing_a_split_is_counted_once() {
        loom::model(|| {
            let (reg, c, _) = registry_before_a_split();
            let confirmed = Arc::new(AtomicBool::new(false));
            let grower = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &Bytes::from_static(b"d"), 1, 1)
                })
            };
            let subscriber = {
                let (reg, c, confirmed) = (Arc::clone(&reg), c.clone(), Arc::clone(&confirmed));
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &c, 1, 2);
                    confirmed.store(true, Ordering::Release);
                })
            };
            if confirmed.load(Ordering::Acquire) {
                let out = lookup(&reg, &c);
                assert_eq!(
                    (out.channel.workers, out.channel.count),
                    (WorkerSet(0b11), 2)
                );
                assert_eq!(out.seq(0, 1), 2);
            }
            grower.join().unwrap();
            subscriber.join().unwrap();
            assert_eq!(reg.numsub(Namespace::Global, &c), 2);
            assert_eq!(reg.channel_count(Namespace::Global), 3);
        });
    }
    /// Worker 0 gives back, in one batch, `c` (which the split moves) and
    /// `e` (which stays in shard 0) while a third channel splits shard 0:
    /// both are removed exactly once, the batch's removals are visible when
    /// it returns, and the bits follow the shards.
    #[test]
    fn batch_release_racing_a_split_removes_every_channel() {
        loom::model(|| {
            let (reg, c, name) = registry_before_a_split();
            reg.unsubscribe(Namespace::Global, b"filler", 0);
            let e = (0..256)
                .map(|i| Bytes::from(format!("e{i}")))
                .find(|e| reg.hash(e) & 3 == 0)
                .expect("a name that stays");
            let e_name = reg.subscribe_name(Namespace::Global, &e, 0, 3);
            let done = Arc::new(AtomicBool::new(false));
            let grower = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || {
                    reg.subscribe(Namespace::Global, &Bytes::from_static(b"d"), 1, 1)
                })
            };
            let remover = {
                let (reg, done) = (Arc::clone(&reg), Arc::clone(&done));
                thread::spawn(move || {
                    reg.unsubscribe_names(Namespace::Global, [&name, &e_name], 0);
                    done.store(true, Ordering::Release);
                })
            };
            if done.load(Ordering::Acquire) {
                // Confirmed gone: no publish counts them any more.
                assert_eq!(workers_of(&reg, &c).count, 0);
                assert_eq!(workers_of(&reg, &e).count, 0);
            }
            grower.join().unwrap();
            remover.join().unwrap();
            assert_eq!(reg.channel_count(Namespace::Global), 1);
            assert_eq!(
                reg.channel_bytes(Namespace::Global, None),
                vec![Bytes::from_static(b"d")]
            );
            for (i, shard, bit) in reg.global.shards_and_bits() {
                assert_eq!(bit, !shard.snapshot.load().is_empty(), "shard {i}");
            }
        });
    }

    /// Worker 0 gives back two patterns of one bucket and one of another
    /// in one batch while worker 1 subscribes to one of them: worker 1's
    /// stays, counted once, and the rest are gone with their prefixes.
    #[test]
    fn pattern_batch_racing_a_psubscribe_keeps_it() {
        loom::model(|| {
            let reg = Arc::new(Registry::new(2));
            let names = [b"c*".as_slice(), b"c?x", b"dd*"].map(|p| reg.psubscribe_name(p, 0, 1));
            let remover = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.punsubscribe_names(&names, 0))
            };
            let subscriber = {
                let reg = Arc::clone(&reg);
                thread::spawn(move || reg.psubscribe(&Bytes::from_static(b"c?x"), 1, 5))
            };
            remover.join().unwrap();
            subscriber.join().unwrap();
            let out = lookup(&reg, b"cxx");
            assert_eq!(out.patterns.len(), 1);
            assert_eq!(&out.patterns[0].pattern[..], b"c?x");
            assert_eq!(out.patterns[0].hits.workers, WorkerSet(0b10));
            assert_eq!(out.seq(1, 1), 5);
            assert_eq!(reg.pattern_count(), 1);
            assert!(lookup(&reg, b"dd").patterns.is_empty());
            assert_eq!(reg.patterns.lengths.load().as_slice(), &[1]);
        });
    }
}
