//! The process's memory: what it has allocated, and giving back to the
//! system what it no longer uses.
//!
//! ringcast allocates with mimalloc (v3). Three things kept memory that the
//! process had freed resident, each measured on Linux (see `RELIABILITY.md`):
//!
//! 1. **Transparent huge pages.** mimalloc advises `MADV_HUGEPAGE` on its
//!    arenas, so under the common `madvise` THP mode the kernel backs them
//!    with 2 MiB pages: a 1 MiB buffer of which 100 bytes were touched costs
//!    2 MiB, and memory mimalloc purges in small pieces stays resident inside
//!    partly freed huge pages (which `khugepaged` fills back in while the
//!    server is idle). ringcast turns THP off for itself at startup
//!    ([`disable_transparent_huge_pages`]), as redis-server does by default
//!    (`disable-thp yes`).
//! 2. **Purging only happens inside the allocator.** mimalloc returns freed
//!    memory to the system a delay after it was freed, but only from within
//!    a later allocation: a worker that goes idle after a burst never makes
//!    one, so nothing is returned. Each worker's cron asks mimalloc to
//!    collect and purge once the worker has gone quiet ([`IdleTrim`]); the
//!    hot path does nothing more.
//! 3. **Buffers that keep their largest size** (a connection's output tail,
//!    its read buffer, its write batch): bounded where they are kept
//!    (`OutputQueue`, `connection.rs`).
//!
//! INFO `used_memory` counts the bytes the process has allocated and not
//! freed ([`Counted`], [`allocated`]), as Redis's does: mimalloc's own
//! committed figure never goes down on Linux, where purged memory stays
//! committed.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};

/// Turn transparent huge pages off for this process (`PR_SET_THP_DISABLE`):
/// from now on no page of it is backed by a huge page, whatever the system
/// setting and whatever the allocator advises. Called first thing in `main`.
pub(crate) fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and only
    // sets a flag on this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(
            "cannot disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A global allocator that counts the bytes allocated and not yet freed.
///
/// Each thread adds to a counter of its own (a relaxed load and store on a
/// cache line no other thread writes); [`allocated`] sums them. Threads past
/// the number of counters share the last one, with atomic additions.
pub(crate) struct Counted<A>(pub A);

/// Counters, one per thread up to `SLOTS - 1`; the last one is shared.
const SLOTS: usize = 64;

#[repr(align(128))]
struct Slot(AtomicIsize);

static LIVE: [Slot; SLOTS] = [const { Slot(AtomicIsize::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Constant-initialised and without a destructor: reading it never
    // allocates, so the allocator itself may use it, even while a thread exits.
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn count(delta: isize) {
    let slot = MY_SLOT.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SLOT.fetch_add(1, Relaxed).min(SLOTS - 1);
            s.set(i);
        }
        i
    });
    let counter = &LIVE[slot].0;
    if slot < SLOTS - 1 {
        // Only this thread writes this counter.
        counter.store(counter.load(Relaxed).wrapping_add(delta), Relaxed);
    } else {
        counter.fetch_add(delta, Relaxed);
    }
}

/// Bytes allocated and not freed, over all threads (a moment's sum: exact
/// when nothing is allocating).
pub(crate) fn allocated() -> u64 {
    let sum: isize = LIVE.iter().map(|s| s.0.load(Relaxed)).sum();
    sum.max(0) as u64
}

// SAFETY: every call is passed to the inner allocator unchanged; the
// counting touches no memory the allocations use.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counted<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by the inner allocator with `layout`.
        unsafe { self.0.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`, with the caller's guarantees for `new_size`.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Ticks (at least 100 ms apart, one per cron run or fewer when `hz` is
/// above 10) without activity before a worker gives memory back: long
/// enough that a short pause in traffic does not pay for a collection.
const QUIET_TICKS: u32 = 2;
/// While a worker stays quiet, it collects again this often (in ticks):
/// other workers may still free memory its heap owns (messages it
/// published), which only its own collection returns.
const RECOLLECT_TICKS: u32 = 50;

/// Gives a worker's freed memory back to the system once the worker has
/// gone quiet. Driven by the worker's cron, so a busy worker pays nothing.
#[derive(Debug, Default)]
pub(crate) struct IdleTrim {
    seen: u64,
    quiet: u32,
}

impl IdleTrim {
    /// One cron tick; `activity` is any figure that changes whenever the
    /// worker reads, writes, delivers, accepts or closes something.
    /// Returns whether it collected (the caller has nothing to do with it).
    pub(crate) fn tick(&mut self, activity: u64) -> bool {
        if activity != self.seen {
            self.seen = activity;
            self.quiet = 0;
            return false;
        }
        self.quiet = self.quiet.saturating_add(1);
        let due = self.quiet == QUIET_TICKS
            || (self.quiet > QUIET_TICKS && self.quiet.is_multiple_of(RECOLLECT_TICKS));
        if due {
            collect();
        }
        due
    }
}

/// Return this thread's empty allocator pages, and every range the
/// allocator has waiting to be purged, to the system now.
fn collect() {
    // SAFETY: mi_collect only works on the calling thread's heap and the
    // allocator's own arenas; it may be called at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_worker_never_collects_and_a_quiet_one_does_once_then_rarely() {
        let mut trim = IdleTrim::default();
        let mut collected = Vec::new();
        for activity in 1..=100 {
            collected.push(trim.tick(activity));
        }
        assert!(collected.iter().all(|c| !c), "busy: no collection");
        let mut quiet = Vec::new();
        for _ in 0..120 {
            if trim.tick(100) {
                quiet.push(trim.quiet);
            }
        }
        assert_eq!(quiet, vec![QUIET_TICKS, 50, 100]);
        assert!(!trim.tick(101), "activity resets the count");
        assert!(!trim.tick(101));
        assert!(trim.tick(101));
    }

    /// This thread's own counter.
    fn mine() -> isize {
        count(0);
        LIVE[MY_SLOT.with(Cell::get)].0.load(Relaxed)
    }

    #[test]
    fn allocations_are_counted_until_freed() {
        let a = Counted(std::alloc::System);
        let layout = Layout::from_size_align(1 << 20, 8).expect("layout");
        let before = mine();
        // SAFETY: a non-zero layout; the block is freed with the layout it
        // has at that point.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(mine() - before, 1 << 20);
            let p = a.realloc(p, layout, 3 << 20);
            assert!(!p.is_null());
            assert_eq!(mine() - before, 3 << 20);
            a.dealloc(p, Layout::from_size_align(3 << 20, 8).expect("layout"));
        }
        assert_eq!(mine(), before);
    }
}
