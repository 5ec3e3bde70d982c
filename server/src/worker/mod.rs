//! A worker thread: its own monoio runtime, its hub, the task that drains
//! inbound rings and takes over new connections, and a housekeeping timer.
//! What its tasks share is in `state` ([`Worker`]).

pub(crate) mod state;

pub(crate) use state::Moves;
use state::Worker;

use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ringcast_core::frame::SharedMessage;
use ringcast_core::hub::Hub;
use ringcast_core::mesh::Endpoint;
use ringcast_core::shared::Shared;

use crate::acceptor::Handoff;
use crate::backend::{self, Backend};
use crate::health::Readiness;
use crate::memory::IdleTrim;

/// How often the worker's own housekeeping (returning idle memory, reading
/// its CPU time) looks; the hub's cron runs at `hz` (`Hub::cron_interval`).
const TRIM_INTERVAL: Duration = Duration::from_millis(100);
/// How often the worker reads its own CPU time for INFO.
const CPU_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to take what is queued for them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub(crate) struct WorkerSpec {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub readiness: Arc<Readiness>,
    pub endpoint: Endpoint<SharedMessage>,
    pub incoming: Receiver<Handoff>,
    pub moves: Moves,
    pub backend: Backend,
    pub cpu: Option<usize>,
}

pub(crate) fn run(spec: WorkerSpec) -> anyhow::Result<()> {
    if let Some(cpu) = spec.cpu {
        pin_to_cpu(cpu);
    }
    let mut rt = backend::build_runtime(spec.backend)
        .map_err(|e| anyhow::anyhow!("worker {}: cannot build its runtime: {e}", spec.id))?;
    let WorkerSpec {
        id,
        shared,
        readiness,
        endpoint,
        incoming,
        moves,
        backend,
        ..
    } = spec;
    rt.block_on(async move {
        let _running = readiness.worker_running();
        let worker = Rc::new(Worker::new(
            Hub::new(id, shared.clone(), endpoint),
            matches!(backend, Backend::Uring(_)),
            moves,
        ));
        monoio::spawn(cron(worker.clone()));
        // A task of its own, not this future: the runtime polls the future
        // it blocks on again and again while it wakes itself, before any
        // other task, so a yield here would not let the writers run.
        monoio::spawn(intake(worker.clone(), incoming, shared)).await;
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        deliver_what_arrived(&worker, deadline).await;
        // Flush what clients were promised, for a bounded time, then stop.
        worker.with_hub(|h| h.close_all());
        while worker.hub().connections() > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(5)).await;
            worker.with_hub(|h| h.close_all());
        }
        if worker.hub().connections() > 0 {
            // Out of time: the rest of the queued output goes, and each
            // connection closes once the write it is in (whole frames) ends —
            // unless its peer does not read at all, so this waits too only
            // for a bounded time.
            worker.with_hub(|h| h.abandon_output());
            let last = Instant::now() + SHUTDOWN_GRACE;
            while worker.hub().connections() > 0 && Instant::now() < last {
                monoio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tracing::debug!(
            "worker {id} stopped with {} connections left",
            worker.hub().connections()
        );
    });
    Ok(())
}

/// Shutting down: stop reading requests, then deliver what is already in
/// the inbound rings a turn at a time, the writers sending between turns
/// (so subscribers that read are not pushed past their output limit by
/// everything at once), until the rings stay empty — the other workers
/// stop publishing at the same time — or the deadline.
async fn deliver_what_arrived(worker: &Worker, deadline: std::time::Instant) {
    worker.with_hub(|h| h.stop_intake());
    let mut quiet = 0;
    while quiet < 3 && Instant::now() < deadline {
        let delivered = worker.with_hub(|h| h.drain_turn());
        let empty = !worker.hub().inbound_pending();
        quiet = if delivered == 0 && empty {
            quiet + 1
        } else {
            0
        };
        // A timer, not a bare yield: the worker then waits for events once,
        // so the writers' completions are seen before the next turn.
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Take what arrives for this worker — messages in its inbound rings and
/// new connections from the acceptor — until shutdown begins.
async fn intake(worker: Rc<Worker>, incoming: Receiver<Handoff>, shared: Arc<Shared>) {
    loop {
        poll_fn(|cx| worker.hub().poll_idle(cx)).await;
        deliver_inbound(&worker).await;
        while let Ok(handoff) = incoming.try_recv() {
            crate::connection::spawn(worker.clone(), handoff);
        }
        let stopping = shared.shutting_down.load(Ordering::Acquire);
        take_arrivals(&worker, stopping);
        if stopping {
            return;
        }
    }
}

/// Start the connections that moved here and may run now. Those still
/// waiting for another worker to take what their old worker published are
/// looked at again by a timer (a wait this worker's own rings end wakes it
/// through its doorbell anyway). Shutting down, those still waiting are
/// closed: running them now could put their next message before one they
/// published earlier.
fn take_arrivals(worker: &Rc<Worker>, stopping: bool) {
    let waiting = worker.take_arrivals(|arrival| {
        crate::connection::arrive(worker.clone(), arrival);
    });
    if waiting && stopping {
        worker.abandon_arrivals();
        return;
    }
    if waiting && worker.claim_retry() {
        let shared = worker.hub().shared().clone();
        let id = worker.hub().worker();
        let worker = worker.clone();
        monoio::spawn(async move {
            monoio::time::sleep(Duration::from_millis(1)).await;
            worker.retry_done();
            shared.doorbells.ring(id);
        });
    }
}

/// Deliver what the other workers published here, a turn (about 64 KiB of
/// messages) at a time, letting the writers run between turns — as Redis
/// writes to its clients between event-loop turns — so that a subscriber
/// that reads is not pushed past its output limit by a whole ring's worth
/// queued at once.
async fn deliver_inbound(worker: &Worker) {
    loop {
        if worker.with_hub(|h| h.drain_turn()) == 0 {
            // The rings are empty, or the worker is congested (its backlog
            // rings the doorbell when it clears).
            return;
        }
        yield_now().await;
    }
}

/// Let the rest of the worker run, the input of its other connections
/// included, then continue: what a connection does between turns of its
/// requests ([`ringcast_core::hub::Input::Yield`]).
///
/// On io_uring, [`yield_now`] is not enough: the runtime runs ready tasks
/// round after round and submits and reaps I/O only between rounds, and
/// with `DEFER_TASKRUN` the completions of other sockets' reads are posted
/// only when the worker waits for events, which it does only once no task
/// is ready. A connection that yields and is ready again at once would
/// keep the rest of the worker's input waiting for as long as it has
/// requests. So the connection waits for an I/O operation of its own
/// instead, a zero-length write to `/dev/null`: it completes only once
/// the worker has submitted it, and the connection runs again after the
/// others, with what their sockets brought. (monoio has no no-op
/// operation to submit instead.)
pub(crate) async fn yield_to_io(null: Option<&monoio::fs::File>) {
    match null {
        Some(null) => {
            let (res, _) = null.write_at(&b""[..], 0).await;
            if res.is_err() {
                yield_now().await;
            }
        }
        None => yield_now().await,
    }
}

/// `/dev/null` opened for writing, for [`yield_to_io`]; without it (no
/// such device) a connection yields as a plain task.
pub(super) fn open_null() -> Option<monoio::fs::File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| tracing::warn!("cannot open /dev/null: {e}"))
        .ok()?;
    monoio::fs::File::from_std(file)
        .map_err(|e| tracing::warn!("cannot use /dev/null: {e}"))
        .ok()
}

/// Let every other ready task of this worker run once, then continue.
///
/// The task is woken by another, freshly spawned one: monoio puts a task
/// that wakes itself while it runs at the *front* of its queue, so a plain
/// `wake_by_ref` would run it again before anything else. Woken from
/// another task, it goes to the back, behind the tasks already ready.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        let waker = cx.waker().clone();
        monoio::spawn(async move { waker.wake() });
        std::task::Poll::Pending
    })
    .await;
}

async fn cron(worker: Rc<Worker>) {
    let mut trim = IdleTrim::default();
    let mut trimmed = Instant::now();
    let mut sampled = trimmed;
    loop {
        // Read each time: `CONFIG SET hz` takes effect from the next run.
        let interval = worker.hub().cron_interval();
        monoio::time::sleep(interval).await;
        worker.with_hub(|h| h.cron());
        let now = Instant::now();
        if now.duration_since(trimmed) < TRIM_INTERVAL {
            continue;
        }
        trimmed = now;
        trim.tick(activity(&worker.hub()));
        if now.duration_since(sampled) >= CPU_INTERVAL {
            sampled = now;
            // This worker thread's own CPU time, once a second, for INFO.
            let cpu = crate::sampler::rusage(libc::RUSAGE_THREAD);
            let h = worker.hub();
            let stats = h.shared().worker_stats(h.worker());
            stats.cpu_sys_us.store(cpu.sys_us, Ordering::Relaxed);
            stats.cpu_user_us.store(cpu.user_us, Ordering::Relaxed);
        }
    }
}

/// A figure that changes whenever the worker reads, writes, delivers,
/// accepts or closes anything: when it stays put, the worker is idle.
fn activity(hub: &Hub) -> u64 {
    let s = hub.shared().worker_stats(hub.worker());
    [
        &s.reads_processed,
        &s.writes_processed,
        &s.messages_delivered,
        &s.connections_received,
        &s.connected_clients,
    ]
    .iter()
    .fold(0u64, |sum, c| sum.wrapping_add(c.load(Ordering::Relaxed)))
}

/// Pin the calling thread to one CPU of `server_cpulist`.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!(
                "server_cpulist: could not pin a worker to cpu {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// CPUs this process may run on, in order.
pub(crate) fn usable_cpus() -> Vec<usize> {
    // SAFETY: as above; sched_getaffinity fills the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Workers to start when `threads` is 0: one per usable core (the CPUs the
/// process may run on, so `taskset` and `docker run --cpuset-cpus` count),
/// but no more than a CPU quota (cgroup `cpu.max`, `docker run --cpus`)
/// gives time for, which `available_parallelism` reads, rounded down. Each
/// worker busy-polls its core in turn; more workers than the quota pays for
/// would only be throttled.
pub(crate) fn default_count(usable_cpus: usize) -> usize {
    let quota = std::thread::available_parallelism()
        .ok()
        .map(std::num::NonZero::get);
    let n = fit_to_quota(usable_cpus, quota);
    if n < usable_cpus {
        tracing::info!(
            "the CPU quota allows {n} of the {usable_cpus} usable cores: starting {n} workers (--threads sets the number)"
        );
    }
    n.clamp(1, ringcast_core::registry::MAX_WORKERS)
}

fn fit_to_quota(usable_cpus: usize, quota: Option<usize>) -> usize {
    match (usable_cpus, quota) {
        (0, Some(q)) => q,
        (n, Some(q)) => n.min(q),
        (n, None) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_cpu_quota_below_the_usable_cores_lowers_the_worker_count() {
        assert_eq!(fit_to_quota(64, Some(2)), 2);
        assert_eq!(fit_to_quota(4, Some(4)), 4);
        // available_parallelism is the affinity count when there is no quota.
        assert_eq!(fit_to_quota(4, Some(8)), 4);
        assert_eq!(fit_to_quota(4, None), 4);
        assert_eq!(fit_to_quota(0, Some(3)), 3);
    }

    /// `yield_now` lets a task that is already ready run before the
    /// yielding task continues, on both backends' runtimes.
    #[test]
    fn yield_now_lets_other_ready_tasks_run_first() {
        for backend in [
            backend::choose(ringcast_core::config::IoBackend::Auto),
            Ok(Backend::Epoll),
        ] {
            let Ok(backend) = backend else { continue };
            let mut rt = backend::build_runtime(backend).expect("runtime");
            // Run as a spawned task: the future `block_on` drives is polled
            // apart from the task queue.
            let order = rt.block_on(async {
                monoio::spawn(async {
                    let log = Rc::new(Cell::new(Vec::new()));
                    let other = log.clone();
                    // Ready, but queued behind the task that is running now.
                    let task = monoio::spawn(async move {
                        let mut v = other.take();
                        v.push("other");
                        other.set(v);
                    });
                    for _ in 0..3 {
                        yield_now().await;
                        let mut v = log.take();
                        v.push("yielder");
                        log.set(v);
                    }
                    task.await;
                    log.take()
                })
                .await
            });
            assert_eq!(
                order,
                ["other", "yielder", "yielder", "yielder"],
                "{backend:?}"
            );
        }
    }

    /// A `/dev/null` the write fails on (opened read-only) or none at all:
    /// `yield_to_io` falls back to `yield_now` and still lets a ready task
    /// run before it continues.
    #[test]
    fn yield_to_io_without_a_usable_null_yields_as_a_task() {
        let Ok(backend) = backend::choose(ringcast_core::config::IoBackend::Auto) else {
            return;
        };
        let mut rt = backend::build_runtime(backend).expect("runtime");
        let order = rt.block_on(async {
            monoio::spawn(async {
                let read_only = std::fs::File::open("/dev/null").expect("/dev/null");
                let read_only = monoio::fs::File::from_std(read_only).expect("register");
                let log = Rc::new(Cell::new(Vec::new()));
                for null in [Some(&read_only), None] {
                    let other = log.clone();
                    let task = monoio::spawn(async move {
                        let mut v = other.take();
                        v.push("other");
                        other.set(v);
                    });
                    yield_to_io(null).await;
                    let mut v = log.take();
                    v.push("yielder");
                    log.set(v);
                    task.await;
                }
                log.take()
            })
            .await
        });
        assert_eq!(order, ["other", "yielder", "other", "yielder"]);
    }

    /// A task that keeps yielding with `yield_to_io` lets another task's
    /// read complete and run: on io_uring with `DEFER_TASKRUN` the data
    /// that arrives for an armed read is posted only when the worker waits
    /// for events, which a task that is always ready again (`yield_now`)
    /// never lets it do.
    #[test]
    fn yield_to_io_lets_a_read_that_became_ready_run() {
        let Ok(backend @ Backend::Uring(_)) =
            backend::choose(ringcast_core::config::IoBackend::Auto)
        else {
            return;
        };
        let mut rt = backend::build_runtime(backend).expect("runtime");
        let yields = rt.block_on(async {
            monoio::spawn(async {
                let null = open_null().expect("/dev/null");
                let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
                let theirs = monoio::net::UnixStream::from_std(theirs).expect("register");
                let arrived = Rc::new(Cell::new(false));
                let seen = arrived.clone();
                let reader = monoio::spawn(async move {
                    let (res, _) =
                        monoio::io::AsyncReadRent::read(&mut { theirs }, vec![0u8; 16]).await;
                    res.expect("read");
                    seen.set(true);
                });
                // The read is submitted and armed, with nothing to read yet.
                yield_to_io(Some(&null)).await;
                std::io::Write::write_all(&mut ours, b"x").expect("write");
                let mut yields = 0;
                while !arrived.get() && yields < 10_000 {
                    yield_to_io(Some(&null)).await;
                    yields += 1;
                }
                reader.await;
                yields
            })
            .await
        });
        assert!(yields < 10_000, "the read never ran while a task yielded");
    }
}
