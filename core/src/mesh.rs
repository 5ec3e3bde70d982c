//! The inter-worker mesh: one bounded ring per ordered pair of workers, and a
//! doorbell per worker to wake it when it sleeps.
//!
//! A worker that publishes to subscribers held by another worker pushes the
//! shared message into the ring `self → target` ([`Endpoint::push`]) and, at
//! the end of its event-loop turn, calls [`Endpoint::flush`], which wakes each
//! target it pushed to only if that target is parked, so a busy target costs a
//! single load and is never woken more than once per turn. The target's
//! inbound task waits in [`Endpoint::poll_idle`] and empties its rings with
//! [`Endpoint::drain`]. When a ring is full, the producer stops reading its
//! publishers and calls [`Endpoint::want_room`]; the consumer rings it after it
//! pops. Draining never waits for anything, so two workers cannot deadlock.
//! [`Doorbells::ring`] lets any thread (the acceptor handing over a socket,
//! shutdown) wake a worker too.
//!
//! The rings are `rtrb` ring buffers: wait-free single-producer/single-consumer,
//! bounded (memory stays bounded and a full ring is back-pressure), and both
//! halves are `Send`, so each moves into the worker thread that owns that end.
//! A ring is bounded twice: by items (`rtrb`'s capacity) and by bytes, the
//! sum of the [`Weigh::weight`] of the items in it, so a few huge messages
//! fill a ring as surely as many small ones. The producer counts the bytes it
//! pushed, the consumer the bytes it popped (one atomic per ring, written by
//! the consumer only); an item heavier than the whole byte budget still goes
//! into an otherwise empty ring, so nothing is ever stuck.
//! The doorbells are written here because they are small, and the wake-up
//! rules below are exactly what the workers need.
//!
//! # Doorbell protocol and its invariants
//!
//! Each worker has a `state` word with two bits, `PARKED` and `RUNG`, and a
//! waker slot behind a mutex. The mutex is only taken to park and to wake a
//! parked worker, never on the path of a push to a busy worker.
//!
//! 1. **No lost push.** The consumer sets `PARKED` (RMW), then a `SeqCst`
//!    fence, then looks at its rings. A producer pushes (release store of the
//!    ring's tail), then a `SeqCst` fence, then loads `state`. By the fences,
//!    either the producer sees `PARKED` and rings, or the consumer sees the
//!    item and does not sleep (Dekker's pattern).
//! 2. **No lost ring.** [`Doorbells::ring`] sets `RUNG` with an RMW; parking
//!    sets `PARKED` with an RMW. The two are ordered on the one word: either
//!    the parking RMW sees `RUNG` and returns `Ready`, or the ringer sees
//!    `PARKED` and wakes the waker.
//! 3. **The waker is there when `PARKED` is seen.** The consumer stores its
//!    waker before its parking RMW (release), and a ringer takes the waker
//!    only after its own RMW (acquire) read `PARKED`, so the store is visible.
//! 4. **Whoever takes a waker wakes it.** The slot is only emptied by a ringer
//!    that then calls `wake` (outside the lock). So while the consumer is
//!    pending, its latest waker is either in the slot or has been woken. Only
//!    the ringer that turns `PARKED` into `PARKED|RUNG` wakes; later ringers
//!    see `RUNG` already set and know a wake is under way.
//! 5. **`Ready` consumes the ring.** Every `Ready` that follows a ring clears
//!    the state with a swap (acquire), so whatever the ringer wrote before
//!    ringing is visible to the woken worker, and one ring gives one `Ready`.
//! 6. **No lost room.** [`Endpoint::want_room`] sets the pair's room flag, a
//!    `SeqCst` fence, then looks at the ring again (items and bytes), ringing
//!    itself if there is already room; [`Endpoint::drain`] pops (release store
//!    of the head, then release store of the popped-bytes counter), a `SeqCst`
//!    fence, then takes the flags of the rings it popped from and rings those
//!    producers. Same Dekker pattern as 1.
//!
//! Spurious wake-ups are allowed (a stale waker may be woken, a `Ready` may
//! find nothing to do); lost ones are not.
//!
//! There is no `unsafe` in this module.
//!
//! # Model checking
//!
//! The protocol is checked with `loom` (the rings are modelled by two atomic
//! counters with rtrb's orderings):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p ringcast-core --release mesh::loom
//! ```

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;
use rtrb::{Consumer, Producer, PushError, RingBuffer};

use crate::WorkerId;

use self::sync::{AtomicBool, AtomicU8, AtomicU64, Mutex, Ordering, fence};

/// std atomics normally, loom's when model checking (`--cfg loom`).
mod sync {
    #[cfg(loom)]
    pub(super) use ::loom::sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering, fence},
    };
    #[cfg(not(loom))]
    pub(super) use std::sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering, fence},
    };
}

/// What an item costs while it waits in a ring, in bytes.
pub trait Weigh {
    fn weight(&self) -> usize;
}

const PARKED: u8 = 0b01;
const RUNG: u8 = 0b10;

/// Build the mesh: one Endpoint per worker (move each into its worker thread)
/// and the shared doorbells. Each ring holds at most `ring_capacity` items
/// and `ring_bytes` bytes of them (one larger item fits in an empty ring).
///
/// Panics if `ring_capacity` is 0 (nothing could ever be pushed).
pub fn mesh<T: Send + Weigh>(
    workers: usize,
    ring_capacity: usize,
    ring_bytes: usize,
) -> (Arc<Doorbells>, Vec<Endpoint<T>>) {
    assert!(
        ring_capacity > 0,
        "mesh rings need room for at least one item"
    );
    let doorbells = Arc::new(Doorbells {
        bells: (0..workers)
            .map(|_| CachePadded::new(Bell::new()))
            .collect(),
        room_wanted: (0..workers * workers)
            .map(|_| RoomFlag(AtomicBool::new(false)))
            .collect(),
        popped_bytes: (0..workers * workers)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
        workers,
    });
    let mut outbound: Vec<Vec<Option<Producer<T>>>> = (0..workers)
        .map(|_| (0..workers).map(|_| None).collect())
        .collect();
    let mut inbound: Vec<Vec<Option<Consumer<T>>>> = (0..workers)
        .map(|_| (0..workers).map(|_| None).collect())
        .collect();
    for from in 0..workers {
        for to in (0..workers).filter(|&to| to != from) {
            let (producer, consumer) = RingBuffer::new(ring_capacity);
            outbound[from][to] = Some(producer);
            inbound[to][from] = Some(consumer);
        }
    }
    let endpoints = outbound
        .into_iter()
        .zip(inbound)
        .enumerate()
        .map(|(id, (outbound, inbound))| Endpoint {
            id,
            doorbells: Arc::clone(&doorbells),
            outbound: outbound.into_boxed_slice(),
            inbound: inbound.into_boxed_slice(),
            to_flush: Vec::with_capacity(workers),
            flush_marked: vec![false; workers].into_boxed_slice(),
            drained_from: Vec::with_capacity(workers),
            pushed_bytes: vec![0; workers].into_boxed_slice(),
            popped_local: vec![0; workers].into_boxed_slice(),
            ring_bytes: ring_bytes as u64,
        })
        .collect();
    (doorbells, endpoints)
}

/// A point in each outbound ring of one worker: how many bytes it had
/// pushed into each when the fence was taken ([`Endpoint::fence`]). It is
/// *passed* ([`Endpoint::passed`]) once every consumer has popped that
/// much: everything the worker pushed before the fence has then been taken
/// by its target, and whatever is pushed into any ring afterwards is taken
/// after it. A connection that moves to another worker takes a fence from
/// its old worker and runs its next command only once it is passed, so no
/// subscriber sees a message it publishes after the move before one it
/// published before (invariant 1 across a move).
///
/// Counted in bytes, as the rings' budget is: every item must weigh at
/// least one byte for a fence to see it (messages always do).
#[derive(Debug, Clone)]
pub struct Fence {
    from: WorkerId,
    /// Bytes pushed into ring `from → to`, indexed by `to`.
    marks: Box<[u64]>,
}

impl Fence {
    /// The worker whose rings it marks.
    pub fn from(&self) -> WorkerId {
        self.from
    }
}

/// The doorbells of all workers, shared by every thread that may need to wake one.
pub struct Doorbells {
    bells: Box<[CachePadded<Bell>]>,
    /// `room_wanted[to * workers + from]`: the producer of ring from→to waits for room.
    /// Grouped by consumer, which scans its own row after each drain.
    room_wanted: Box<[RoomFlag]>,
    /// `popped_bytes[to * workers + from]`: bytes the consumer `to` has
    /// popped from ring from→to, ever (written by that consumer only).
    popped_bytes: Box<[CachePadded<AtomicU64>]>,
    workers: usize,
}

impl Doorbells {
    /// Wake worker `w` if it is parked in poll_idle; otherwise make its next poll_idle return Ready at once.
    /// Used by other threads (acceptor handing over a socket, shutdown) and internally.
    ///
    /// Panics if `w` is not a worker of this mesh.
    pub fn ring(&self, w: WorkerId) {
        self.bells[w].ring();
    }

    fn room_flag(&self, from: WorkerId, to: WorkerId) -> &RoomFlag {
        &self.room_wanted[to * self.workers + from]
    }

    fn popped(&self, from: WorkerId, to: WorkerId) -> &AtomicU64 {
        &self.popped_bytes[to * self.workers + from]
    }
}

/// One worker's end of the mesh: the producers of its outbound rings and the
/// consumers of its inbound rings.
pub struct Endpoint<T> {
    id: WorkerId,
    doorbells: Arc<Doorbells>,
    /// Indexed by target; `None` at `id`.
    outbound: Box<[Option<Producer<T>>]>,
    /// Indexed by source; `None` at `id`.
    inbound: Box<[Option<Consumer<T>>]>,
    /// Targets pushed to since the last flush, each once.
    to_flush: Vec<WorkerId>,
    flush_marked: Box<[bool]>,
    /// Scratch for `drain`, kept to avoid allocating per turn.
    drained_from: Vec<WorkerId>,
    /// Bytes pushed into each outbound ring, ever (this producer's own count).
    pushed_bytes: Box<[u64]>,
    /// Bytes popped from each inbound ring, ever (mirrors `Doorbells::popped_bytes`).
    popped_local: Box<[u64]>,
    /// Byte budget of each ring.
    ring_bytes: u64,
}

impl<T: Send + Weigh> Endpoint<T> {
    pub fn id(&self) -> WorkerId {
        self.id
    }

    pub fn workers(&self) -> usize {
        self.outbound.len()
    }

    /// Room in ring self→to for one more item weighing `weight` bytes:
    /// below its item capacity, and within its byte budget (or empty of bytes).
    ///
    /// Panics if `to` is this worker or not a worker of the mesh.
    pub fn has_room(&self, to: WorkerId, weight: usize) -> bool {
        if self.producer(to).is_full() {
            return false;
        }
        let popped = self.doorbells.popped(self.id, to).load(Ordering::Acquire);
        let in_flight = self.pushed_bytes[to] - popped;
        in_flight == 0 || in_flight.saturating_add(weight as u64) <= self.ring_bytes
    }

    /// Bytes pushed into all of this worker's outbound rings and not yet popped.
    pub fn outbound_bytes(&self) -> u64 {
        (0..self.outbound.len())
            .filter(|&to| to != self.id)
            .map(|to| self.bytes_in_flight(to))
            .sum()
    }

    /// Bytes pushed into ring self→to and not yet popped.
    pub fn bytes_in_flight(&self, to: WorkerId) -> u64 {
        self.pushed_bytes[to] - self.doorbells.popped(self.id, to).load(Ordering::Acquire)
    }

    /// Push into ring self→to. Does not wake `to` yet; remembers it for `flush`. Err(item) if full.
    ///
    /// Panics if `to` is this worker or not a worker of the mesh.
    pub fn push(&mut self, to: WorkerId, item: T) -> Result<(), T> {
        let producer = self.outbound[to]
            .as_mut()
            .expect("a worker has no ring to itself");
        let weight = item.weight() as u64;
        producer.push(item).map_err(|PushError::Full(item)| item)?;
        self.pushed_bytes[to] += weight;
        if !self.flush_marked[to] {
            self.flush_marked[to] = true;
            self.to_flush.push(to);
        }
        Ok(())
    }

    /// Ring the doorbell of every worker pushed to since the last flush — only those that are parked
    /// (a cheap load when they are not) — so a target is woken at most once per event-loop turn.
    pub fn flush(&mut self) {
        if self.to_flush.is_empty() {
            return;
        }
        // Invariant 1: the pushes above happen before we look at `PARKED`.
        fence(Ordering::SeqCst);
        for to in self.to_flush.drain(..) {
            self.flush_marked[to] = false;
            let bell = &self.doorbells.bells[to];
            if bell.is_parked() {
                bell.ring();
            }
        }
    }

    /// Ask to be rung once ring self→to has room for an item of `weight`
    /// bytes again (the consumer rings us after it pops).
    ///
    /// If the ring already has room again, this worker's own doorbell is rung
    /// at once, so its next poll_idle returns Ready.
    ///
    /// Panics if `to` is this worker or not a worker of the mesh.
    pub fn want_room(&mut self, to: WorkerId, weight: usize) {
        let flag = self.doorbells.room_flag(self.id, to);
        if flag.request(|| self.has_room(to, weight)) {
            self.doorbells.ring(self.id);
        }
    }

    /// Pop everything currently in all inbound rings, calling f(from, item) in per-ring FIFO order.
    /// Rings the producers that asked for room. Never waits. Returns items popped.
    pub fn drain(&mut self, mut f: impl FnMut(WorkerId, T)) -> usize {
        self.drain_while(|from, item| {
            f(from, item);
            true
        })
    }

    /// Like [`Endpoint::drain`], but stops as soon as `f` returns false
    /// (after taking that item): what is left stays in the rings, in order.
    pub fn drain_while(&mut self, mut f: impl FnMut(WorkerId, T) -> bool) -> usize {
        let mut popped = 0;
        let mut more = true;
        self.drained_from.clear();
        for (from, consumer) in self.inbound.iter_mut().enumerate() {
            let Some(consumer) = consumer else { continue };
            // Only what is there now: a fast producer cannot keep us here.
            let n = consumer.slots();
            if n == 0 || !more {
                continue;
            }
            let (mut taken, mut bytes) = (0, 0u64);
            if let Ok(chunk) = consumer.read_chunk(n) {
                // Dropping the iterator frees exactly the slots it yielded.
                for item in chunk {
                    taken += 1;
                    bytes += item.weight() as u64;
                    if !f(from, item) {
                        more = false;
                        break;
                    }
                }
            }
            // Single writer: a plain store of the new total (release: the
            // pops above happen before a producer can see the room).
            self.popped_local[from] += bytes;
            self.doorbells
                .popped(from, self.id)
                .store(self.popped_local[from], Ordering::Release);
            popped += taken;
            self.drained_from.push(from);
        }
        if popped > 0 {
            // Invariant 6: the pops above happen before we look at the flags.
            fence(Ordering::SeqCst);
            for &from in &self.drained_from {
                if self.doorbells.room_flag(from, self.id).take() {
                    self.doorbells.ring(from);
                }
            }
        }
        popped
    }

    /// Park protocol for the worker's inbound task: Ready(()) if any inbound ring is non-empty or the
    /// doorbell was rung since the last Ready; otherwise registers cx's waker, marks the worker parked,
    /// re-checks (no lost wake-up), and returns Pending. Wakers may be woken from other threads.
    pub fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.doorbells.bells[self.id].poll_park(cx, || self.has_inbound())
    }

    /// Like [`Endpoint::poll_idle`], but items in the inbound rings do not
    /// make it Ready: only a ring of the doorbell does (a worker that must
    /// not take messages now waits for its own signal).
    pub fn poll_rung(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.doorbells.bells[self.id].poll_park(cx, || false)
    }

    /// A fence at what this worker has pushed so far into each of its
    /// outbound rings ([`Fence`]).
    pub fn fence(&self) -> Fence {
        Fence {
            from: self.id,
            marks: self.pushed_bytes.clone(),
        }
    }

    /// Whether every target of the fence's worker has popped all that
    /// worker pushed before the fence was taken. Lock-free; any worker may ask.
    pub fn passed(&self, fence: &Fence) -> bool {
        fence
            .marks
            .iter()
            .enumerate()
            .filter(|&(to, _)| to != fence.from)
            .all(|(to, &mark)| {
                self.doorbells
                    .popped(fence.from, to)
                    .load(Ordering::Acquire)
                    >= mark
            })
    }

    /// Ring this worker's own doorbell.
    pub fn ring_self(&self) {
        self.doorbells.ring(self.id);
    }

    /// Sum of items waiting in inbound rings (for INFO / metrics).
    pub fn inbound_len(&self) -> usize {
        self.inbound.iter().flatten().map(Consumer::slots).sum()
    }

    fn has_inbound(&self) -> bool {
        self.inbound.iter().flatten().any(|c| !c.is_empty())
    }

    fn producer(&self, to: WorkerId) -> &Producer<T> {
        self.outbound[to]
            .as_ref()
            .expect("a worker has no ring to itself")
    }
}

/// One worker's doorbell: the `PARKED`/`RUNG` word and the parked waker.
struct Bell {
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

impl Bell {
    fn new() -> Self {
        Bell {
            state: AtomicU8::new(0),
            waker: Mutex::new(None),
        }
    }

    /// A plain load; callers put the `SeqCst` fence of invariant 1 before it.
    fn is_parked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PARKED != 0
    }

    fn ring(&self) {
        // Invariants 2 and 4: only the ringer that finds `PARKED` without
        // `RUNG` wakes; it read `PARKED` with acquire, so the waker is stored.
        if self.state.fetch_or(RUNG, Ordering::AcqRel) == PARKED {
            let waker = self
                .waker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// The consumer side: `Ready` if rung or `has_work()`, else park and re-check.
    fn poll_park(&self, cx: &mut Context<'_>, has_work: impl Fn() -> bool) -> Poll<()> {
        // Invariant 5: consume a ring (and a stale `PARKED`) with one swap.
        if self.state.load(Ordering::Relaxed) != 0
            && self.state.swap(0, Ordering::AcqRel) & RUNG != 0
        {
            return Poll::Ready(());
        }
        if has_work() {
            return Poll::Ready(());
        }
        {
            let mut slot = self
                .waker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.as_ref() {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // Invariant 3: the waker is stored before `PARKED` is published.
        if self.state.fetch_or(PARKED, Ordering::AcqRel) & RUNG != 0 {
            self.state.swap(0, Ordering::AcqRel);
            return Poll::Ready(());
        }
        // Invariant 1: `PARKED` is published before we look at the rings.
        fence(Ordering::SeqCst);
        if has_work() {
            self.state.swap(0, Ordering::AcqRel);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// "The producer of this ring waits for room" (invariant 6).
struct RoomFlag(AtomicBool);

impl RoomFlag {
    /// Producer side: raise the flag, then look again. Returns true (and
    /// lowers the flag) if there is room already, so the caller wakes itself.
    fn request(&self, has_room: impl FnOnce() -> bool) -> bool {
        self.0.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if has_room() {
            self.0.store(false, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Consumer side, after popping and a `SeqCst` fence: lower the flag if raised.
    fn take(&self) -> bool {
        self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::task::Wake;
    use std::thread;
    use std::time::Duration;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl CountingWaker {
        fn count(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    fn counting() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        (counter, waker)
    }

    /// Test items weigh what they say.
    impl Weigh for u32 {
        fn weight(&self) -> usize {
            *self as usize
        }
    }

    /// A fence is passed only once every ring of its worker was drained up
    /// to it; what is pushed after it does not hold it back.
    #[test]
    fn a_fence_waits_for_every_target_to_pop_what_came_before_it() {
        let (_bells, mut eps) = mesh::<u32>(3, 16, 1 << 20);
        eps[0].push(1, 10).unwrap();
        eps[0].push(2, 20).unwrap();
        let fence = eps[0].fence();
        assert_eq!(fence.from(), 0);
        assert!(!eps[1].passed(&fence));
        // After the fence: not waited for.
        eps[0].push(1, 30).unwrap();
        let mut got = Vec::new();
        eps[1].drain_while(|_, item| {
            got.push(item);
            false
        });
        assert_eq!(got, [10]);
        assert!(!eps[2].passed(&fence), "worker 2 has not popped yet");
        eps[2].drain(|_, _| {});
        assert!(eps[1].passed(&fence));
        assert!(eps[2].passed(&fence));
        // A new fence waits for the item pushed after the first one.
        let later = eps[0].fence();
        assert!(!eps[2].passed(&later));
        eps[1].drain(|_, _| {});
        assert!(eps[2].passed(&later));
    }

    impl Weigh for u64 {
        fn weight(&self) -> usize {
            1
        }
    }

    fn poll<T: Send + Weigh>(endpoint: &Endpoint<T>, waker: &Waker) -> Poll<()> {
        endpoint.poll_idle(&mut Context::from_waker(waker))
    }

    fn drain_all<T: Send + Weigh>(endpoint: &mut Endpoint<T>) -> Vec<(WorkerId, T)> {
        let mut out = Vec::new();
        endpoint.drain(|from, item| out.push((from, item)));
        out
    }

    #[test]
    fn endpoints_are_send_and_doorbells_are_shareable() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<Endpoint<bytes::Bytes>>();
        send_sync::<Doorbells>();
    }

    #[test]
    fn mesh_gives_each_worker_an_endpoint_with_its_id() {
        let (_bells, endpoints) = mesh::<u32>(3, 4, usize::MAX);
        let ids: Vec<_> = endpoints.iter().map(|e| (e.id(), e.workers())).collect();
        assert_eq!(ids, vec![(0, 3), (1, 3), (2, 3)]);
    }

    #[test]
    fn items_arrive_in_push_order_per_ring() {
        let (_bells, mut eps) = mesh::<u32>(3, 8, usize::MAX);
        for i in 0..5 {
            eps[0].push(2, i).unwrap();
            eps[1].push(2, 100 + i).unwrap();
        }
        assert_eq!(eps[2].inbound_len(), 10);
        let got = drain_all(&mut eps[2]);
        let from0: Vec<_> = got.iter().filter(|(f, _)| *f == 0).map(|p| p.1).collect();
        let from1: Vec<_> = got.iter().filter(|(f, _)| *f == 1).map(|p| p.1).collect();
        assert_eq!(from0, vec![0, 1, 2, 3, 4]);
        assert_eq!(from1, vec![100, 101, 102, 103, 104]);
        assert_eq!(eps[2].inbound_len(), 0);
        assert_eq!(eps[2].drain(|_, _| {}), 0);
    }

    #[test]
    fn push_into_full_ring_returns_the_item() {
        let (_bells, mut eps) = mesh::<u32>(2, 2, usize::MAX);
        assert!(eps[0].has_room(1, 1));
        eps[0].push(1, 1).unwrap();
        eps[0].push(1, 2).unwrap();
        assert!(!eps[0].has_room(1, 1));
        assert_eq!(eps[0].push(1, 3), Err(3));
        assert_eq!(eps[1].drain(|_, _| {}), 2);
        assert!(eps[0].has_room(1, 1));
        eps[0].push(1, 3).unwrap();
    }

    #[test]
    fn a_ring_is_full_when_its_bytes_are_used_up() {
        let (_bells, mut eps) = mesh::<u32>(2, 100, 1000);
        assert!(eps[0].has_room(1, 600));
        eps[0].push(1, 600).unwrap();
        assert!(eps[0].has_room(1, 400));
        assert!(!eps[0].has_room(1, 401), "over the byte budget");
        eps[0].push(1, 400).unwrap();
        assert_eq!(eps[0].bytes_in_flight(1), 1000);
        assert!(!eps[0].has_room(1, 1));
        assert_eq!(drain_all(&mut eps[1]), vec![(0, 600), (0, 400)]);
        assert_eq!(eps[0].bytes_in_flight(1), 0);
        // Heavier than the whole budget: fits only into an empty ring.
        assert!(eps[0].has_room(1, 5000));
        eps[0].push(1, 5000).unwrap();
        assert!(!eps[0].has_room(1, 1));
    }

    #[test]
    fn want_room_is_rung_when_bytes_are_popped() {
        let (_bells, mut eps) = mesh::<u32>(2, 100, 1000);
        let (counter, waker) = counting();
        eps[0].push(1, 900).unwrap();
        assert!(!eps[0].has_room(1, 200));
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        eps[0].want_room(1, 200);
        assert_eq!(counter.count(), 0);
        drain_all(&mut eps[1]);
        assert_eq!(
            counter.count(),
            1,
            "the producer is rung once bytes are popped"
        );
        assert!(eps[0].has_room(1, 200));
    }

    #[test]
    fn drain_while_stops_and_leaves_the_rest_in_order() {
        let (_bells, mut eps) = mesh::<u32>(2, 8, usize::MAX);
        for i in 1..=5 {
            eps[0].push(1, i).unwrap();
        }
        let mut got = Vec::new();
        let n = eps[1].drain_while(|_, item| {
            got.push(item);
            item < 2
        });
        assert_eq!((n, got), (2, vec![1, 2]));
        assert_eq!(eps[0].bytes_in_flight(1), 3 + 4 + 5);
        assert_eq!(drain_all(&mut eps[1]), vec![(0, 3), (0, 4), (0, 5)]);
    }

    #[test]
    fn drain_takes_only_what_each_ring_holds_and_reports_count() {
        let (_bells, mut eps) = mesh::<u32>(2, 4, usize::MAX);
        eps[1].push(0, 7).unwrap();
        eps[1].push(0, 8).unwrap();
        assert_eq!(eps[0].drain(|_, _| {}), 2);
    }

    #[test]
    fn poll_idle_is_pending_with_nothing_to_do() {
        let (_bells, eps) = mesh::<u32>(2, 4, usize::MAX);
        let (counter, waker) = counting();
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        assert_eq!(counter.count(), 0);
    }

    #[test]
    fn poll_idle_is_ready_while_an_inbound_ring_holds_items() {
        let (_bells, mut eps) = mesh::<u32>(2, 4, usize::MAX);
        let (_counter, waker) = counting();
        eps[0].push(1, 1).unwrap();
        assert_eq!(poll(&eps[1], &waker), Poll::Ready(()));
        assert_eq!(poll(&eps[1], &waker), Poll::Ready(()));
        drain_all(&mut eps[1]);
        assert_eq!(poll(&eps[1], &waker), Poll::Pending);
    }

    #[test]
    fn flush_wakes_a_parked_target_once_and_push_alone_does_not() {
        let (_bells, mut eps) = mesh::<u32>(2, 8, usize::MAX);
        let (counter, waker) = counting();
        assert_eq!(poll(&eps[1], &waker), Poll::Pending);
        eps[0].push(1, 1).unwrap();
        eps[0].push(1, 2).unwrap();
        assert_eq!(counter.count(), 0, "push must not wake before flush");
        eps[0].flush();
        assert_eq!(counter.count(), 1);
        eps[0].flush();
        assert_eq!(counter.count(), 1, "nothing pushed since the last flush");
        assert_eq!(poll(&eps[1], &waker), Poll::Ready(()));
        assert_eq!(drain_all(&mut eps[1]), vec![(0, 1), (0, 2)]);
        assert_eq!(poll(&eps[1], &waker), Poll::Pending);
    }

    #[test]
    fn flush_does_not_wake_a_busy_target() {
        let (_bells, mut eps) = mesh::<u32>(2, 8, usize::MAX);
        let (counter, waker) = counting();
        // Parked once, then woken and not parked again.
        assert_eq!(poll(&eps[1], &waker), Poll::Pending);
        eps[0].push(1, 1).unwrap();
        eps[0].flush();
        assert_eq!(counter.count(), 1);
        assert_eq!(poll(&eps[1], &waker), Poll::Ready(()));
        eps[0].push(1, 2).unwrap();
        eps[0].flush();
        assert_eq!(counter.count(), 1, "target was not parked");
        assert_eq!(poll(&eps[1], &waker), Poll::Ready(()));
    }

    #[test]
    fn ring_before_parking_makes_the_next_poll_ready_once() {
        let (bells, eps) = mesh::<u32>(2, 4, usize::MAX);
        let (counter, waker) = counting();
        bells.ring(0);
        bells.ring(0);
        assert_eq!(poll(&eps[0], &waker), Poll::Ready(()));
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        assert_eq!(counter.count(), 0);
    }

    #[test]
    fn ring_wakes_a_parked_worker_and_only_that_worker() {
        let (bells, eps) = mesh::<u32>(2, 4, usize::MAX);
        let (c0, w0) = counting();
        let (c1, w1) = counting();
        assert_eq!(poll(&eps[0], &w0), Poll::Pending);
        assert_eq!(poll(&eps[1], &w1), Poll::Pending);
        bells.ring(1);
        bells.ring(1);
        assert_eq!((c0.count(), c1.count()), (0, 1));
        assert_eq!(poll(&eps[1], &w1), Poll::Ready(()));
        assert_eq!(poll(&eps[1], &w1), Poll::Pending);
    }

    #[test]
    fn single_worker_mesh_has_no_rings_but_a_doorbell() {
        let (bells, mut eps) = mesh::<u32>(1, 4, usize::MAX);
        let (counter, waker) = counting();
        assert_eq!(eps[0].inbound_len(), 0);
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        bells.ring(0);
        assert_eq!(counter.count(), 1);
        assert_eq!(poll(&eps[0], &waker), Poll::Ready(()));
        eps[0].flush();
        assert_eq!(eps[0].drain(|_, _| {}), 0);
    }

    #[test]
    fn want_room_is_rung_after_the_consumer_drains() {
        let (_bells, mut eps) = mesh::<u32>(2, 1, usize::MAX);
        let (counter, waker) = counting();
        eps[0].push(1, 1).unwrap();
        assert_eq!(eps[0].push(1, 2), Err(2));
        eps[0].want_room(1, 1);
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        assert_eq!(eps[1].drain(|_, _| {}), 1);
        assert_eq!(counter.count(), 1);
        assert_eq!(poll(&eps[0], &waker), Poll::Ready(()));
        assert!(eps[0].has_room(1, 1));
        // The request was used up: a later drain does not ring again.
        eps[0].push(1, 2).unwrap();
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
        assert_eq!(eps[1].drain(|_, _| {}), 1);
        assert_eq!(counter.count(), 1);
    }

    #[test]
    fn want_room_with_room_already_there_rings_at_once() {
        let (_bells, mut eps) = mesh::<u32>(2, 1, usize::MAX);
        let (_counter, waker) = counting();
        eps[0].want_room(1, 1);
        assert_eq!(poll(&eps[0], &waker), Poll::Ready(()));
        assert_eq!(poll(&eps[0], &waker), Poll::Pending);
    }

    /// Wakes a thread blocked in `thread::park`.
    struct Unparker(thread::Thread);

    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Tells the test thread that a worker ended, and whether it panicked.
    struct ReportOnExit(mpsc::Sender<(WorkerId, bool)>, WorkerId);

    impl Drop for ReportOnExit {
        fn drop(&mut self) {
            let _ = self.0.send((self.1, thread::panicking()));
        }
    }

    /// Every worker sends `per_pair` sequence numbers to every other worker
    /// through tiny rings, optionally while another thread rings doorbells at
    /// random (which would also hide a lost wake-up, hence optional).
    /// Workers sleep in `thread::park` with no timeout, so a lost wake-up
    /// stalls the run; the stall guard is far above any honest run time.
    fn stress(workers: usize, capacity: usize, per_pair: u64, ring_at_random: bool) {
        let (bells, endpoints) = mesh::<u64>(workers, capacity, usize::MAX);
        let (done_tx, done_rx) = mpsc::channel();
        let stop_ringing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ringer = {
            let bells = Arc::clone(&bells);
            let stop = Arc::clone(&stop_ringing);
            thread::spawn(move || {
                let mut w = 0;
                while ring_at_random && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    bells.ring(w % workers);
                    w += 1;
                    thread::yield_now();
                }
            })
        };
        for mut ep in endpoints {
            let done_tx = done_tx.clone();
            thread::spawn(move || {
                let done = ReportOnExit(done_tx, ep.id());
                let waker = Waker::from(Arc::new(Unparker(thread::current())));
                let mut cx = Context::from_waker(&waker);
                let n = ep.workers();
                let me = ep.id();
                let mut next_out = vec![0u64; n];
                let mut next_in = vec![0u64; n];
                let mut received = 0u64;
                let expected = per_pair * (n as u64 - 1);
                loop {
                    ep.drain(|from, seq| {
                        assert_eq!(seq, next_in[from], "ring {from}->{me} out of order");
                        next_in[from] += 1;
                        received += 1;
                    });
                    // More to send with room left: another turn without parking.
                    let mut busy = false;
                    for to in (0..n).filter(|&to| to != me) {
                        // A burst per turn, so rings fill and drain interleave.
                        for i in 0..=(capacity * 2) {
                            if next_out[to] == per_pair {
                                break;
                            }
                            if i == capacity * 2 {
                                busy = true;
                                break;
                            }
                            match ep.push(to, next_out[to]) {
                                Ok(()) => next_out[to] += 1,
                                Err(_) => {
                                    ep.want_room(to, 1);
                                    break;
                                }
                            }
                        }
                    }
                    ep.flush();
                    let sent_all = next_out
                        .iter()
                        .enumerate()
                        .all(|(to, &s)| to == me || s == per_pair);
                    if sent_all && received == expected {
                        break;
                    }
                    while !busy && ep.poll_idle(&mut cx).is_pending() {
                        thread::park();
                    }
                }
                drop(done);
            });
        }
        drop(done_tx);
        for _ in 0..workers {
            let (me, panicked) = done_rx
                .recv_timeout(Duration::from_secs(300))
                .expect("a worker stalled: lost wake-up");
            assert!(!panicked, "worker {me} failed");
        }
        stop_ringing.store(true, std::sync::atomic::Ordering::Relaxed);
        ringer.join().unwrap();
    }

    #[test]
    fn stress_two_workers_lose_nothing_and_keep_order() {
        stress(2, 1, 50_000, false);
    }

    #[test]
    fn stress_four_workers_lose_nothing_and_keep_order() {
        stress(4, 4, 20_000, false);
    }

    #[test]
    fn stress_with_outside_rings_loses_nothing_and_keeps_order() {
        stress(3, 2, 20_000, true);
    }
}

#[cfg(all(test, loom))]
mod loom {
    //! Model checks of the doorbell protocol. rtrb cannot run under loom, so a
    //! ring is modelled by its head and tail counters with rtrb's orderings
    //! (release store after writing, acquire load before reading).

    use super::*;
    use ::loom::future::block_on;
    use ::loom::sync::Arc;
    use ::loom::sync::atomic::{AtomicU64, AtomicUsize};
    use ::loom::thread;
    use std::future::poll_fn;

    struct ModelRing {
        head: AtomicUsize,
        tail: AtomicUsize,
        capacity: usize,
    }

    impl ModelRing {
        fn new(capacity: usize, filled: usize) -> Self {
            ModelRing {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(filled),
                capacity,
            }
        }
        fn push(&self) {
            let tail = self.tail.load(Ordering::Relaxed);
            assert!(tail - self.head.load(Ordering::Acquire) < self.capacity);
            self.tail.store(tail + 1, Ordering::Release);
        }
        fn pop(&self) -> bool {
            let head = self.head.load(Ordering::Relaxed);
            if head == self.tail.load(Ordering::Acquire) {
                return false;
            }
            self.head.store(head + 1, Ordering::Release);
            true
        }
        fn is_empty(&self) -> bool {
            self.head.load(Ordering::Relaxed) == self.tail.load(Ordering::Acquire)
        }
        fn has_room(&self) -> bool {
            self.tail.load(Ordering::Relaxed) - self.head.load(Ordering::Acquire) < self.capacity
        }
    }

    /// What `Endpoint::flush` does for one target.
    fn flush(bell: &Bell) {
        fence(Ordering::SeqCst);
        if bell.is_parked() {
            bell.ring();
        }
    }

    /// The worker's inbound task: wait until `poll_park` is Ready.
    fn idle(bell: &Bell, ring: &ModelRing) {
        block_on(poll_fn(|cx| bell.poll_park(cx, || !ring.is_empty())));
    }

    #[test]
    fn push_and_flush_never_leave_the_consumer_parked() {
        ::loom::model(|| {
            let bell = Arc::new(Bell::new());
            let ring = Arc::new(ModelRing::new(2, 0));
            let producer = {
                let (bell, ring) = (Arc::clone(&bell), Arc::clone(&ring));
                thread::spawn(move || {
                    for _ in 0..2 {
                        ring.push();
                        flush(&bell);
                    }
                })
            };
            // Two rounds: park, wake, pop, park again.
            let mut popped = 0;
            while popped < 2 {
                idle(&bell, &ring);
                while ring.pop() {
                    popped += 1;
                }
            }
            producer.join().unwrap();
        });
    }

    #[test]
    fn ring_racing_with_parking_is_never_lost() {
        ::loom::model(|| {
            let bell = Arc::new(Bell::new());
            let done = Arc::new(AtomicBool::new(false));
            let ringers: Vec<_> = (0..2)
                .map(|_| {
                    let (bell, done) = (Arc::clone(&bell), Arc::clone(&done));
                    thread::spawn(move || {
                        done.store(true, Ordering::Relaxed);
                        bell.ring();
                    })
                })
                .collect();
            // Ready only once rung, and what the ringer wrote is visible.
            block_on(poll_fn(|cx| bell.poll_park(cx, || false)));
            assert!(done.load(Ordering::Relaxed));
            for r in ringers {
                r.join().unwrap();
            }
        });
    }

    #[test]
    fn producer_waiting_for_room_is_always_rung() {
        ::loom::model(|| {
            let producer_bell = Arc::new(Bell::new());
            let flag = Arc::new(RoomFlag(AtomicBool::new(false)));
            let ring = Arc::new(ModelRing::new(1, 1));
            let consumer = {
                let (bell, flag, ring) = (
                    Arc::clone(&producer_bell),
                    Arc::clone(&flag),
                    Arc::clone(&ring),
                );
                thread::spawn(move || {
                    // What `Endpoint::drain` does after popping.
                    assert!(ring.pop());
                    fence(Ordering::SeqCst);
                    if flag.take() {
                        bell.ring();
                    }
                })
            };
            // What the producer does on a full ring: want_room, then idle
            // until there is room.
            if flag.request(|| ring.has_room()) {
                producer_bell.ring();
            }
            block_on(poll_fn(|cx| producer_bell.poll_park(cx, || false)));
            assert!(ring.has_room());
            consumer.join().unwrap();
        });
    }

    /// A ring with room for items but not for bytes: one item of the byte
    /// budget is in it. The consumer pops it and publishes the bytes popped.
    #[test]
    fn producer_waiting_for_byte_room_is_always_rung() {
        ::loom::model(|| {
            let producer_bell = Arc::new(Bell::new());
            let flag = Arc::new(RoomFlag(AtomicBool::new(false)));
            let ring = Arc::new(ModelRing::new(4, 1));
            let popped_bytes = Arc::new(AtomicU64::new(0));
            let pushed_bytes = 1u64;
            let has_byte_room =
                |popped: &AtomicU64| pushed_bytes - popped.load(Ordering::Acquire) == 0;
            let consumer = {
                let (bell, flag, ring, popped) = (
                    Arc::clone(&producer_bell),
                    Arc::clone(&flag),
                    Arc::clone(&ring),
                    Arc::clone(&popped_bytes),
                );
                thread::spawn(move || {
                    // What `Endpoint::drain` does: pop, publish the bytes, fence, flags.
                    assert!(ring.pop());
                    popped.store(1, Ordering::Release);
                    fence(Ordering::SeqCst);
                    if flag.take() {
                        bell.ring();
                    }
                })
            };
            if flag.request(|| has_byte_room(&popped_bytes)) {
                producer_bell.ring();
            }
            block_on(poll_fn(|cx| producer_bell.poll_park(cx, || false)));
            assert!(has_byte_room(&popped_bytes));
            consumer.join().unwrap();
        });
    }
}
