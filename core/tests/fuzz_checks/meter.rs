//! A counting global allocator: how many heap bytes this thread holds, and the
//! most it held since the last [`reset_peak`].
//!
//! Counts are per thread, so `cargo test` running checks on several threads
//! keeps them apart; a check reads them around code that runs on its own
//! thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Wraps the system allocator and keeps the per-thread counts.
pub(crate) struct Meter;

#[global_allocator]
static METER: Meter = Meter;

thread_local! {
    // Const-initialised and without destructors: reading them never allocates,
    // which an allocator must not do.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with` fails only while the thread is being torn down: then the
    // counts no longer matter.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are the caller's; the bookkeeping only
// touches thread-local `Cell`s, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Heap bytes this thread holds now (allocated minus freed, on this thread).
pub(crate) fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Starts a new peak window at the current level.
pub(crate) fn reset_peak() {
    PEAK.with(|peak| peak.set(live()));
}

/// The highest [`live`] since the last [`reset_peak`].
pub(crate) fn peak() -> isize {
    PEAK.with(Cell::get)
}

/// Runs `f` and returns how many heap bytes it left allocated (negative if it
/// freed more than it allocated).
pub(crate) fn net(f: impl FnOnce()) -> isize {
    let before = live();
    f();
    live() - before
}
