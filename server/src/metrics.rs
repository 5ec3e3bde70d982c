//! `--metrics-port`: Prometheus metrics over HTTP, on a thread of its own,
//! with the probes an orchestrator asks: `GET /healthz` (200 while the
//! process is up) and `GET /readyz` (200 once the listeners accept and
//! every worker runs, 503 before that and from the start of shutdown; see
//! `crate::health`).
//!
//! Every figure is read at scrape time from the counters workers already keep
//! (`Shared::stats`, single-writer atomics) and from the sampler's process
//! figures, so serving metrics adds nothing to the publish path. The
//! exposition format is written by `prometheus-client`; the delivery latency
//! histogram is the merge of the per-worker bucket counters.
//!
//! The HTTP side is a hand-written handler rather than an HTTP crate: it
//! serves three fixed resources to a scraper or a probe that connects
//! every few seconds, one request per connection, so all it needs is to read
//! a request head and write one response; a server library would add
//! threads, parsing and dependencies for features this never uses.
//!
//! Connections are served concurrently, one task each on a single-threaded
//! monoio runtime owned by this thread, so an idle or slow client never
//! holds back a scrape. A task rather than a hand-written poll loop: each
//! request reads as straight-line code, the runtime's timer gives every
//! connection one deadline for its whole request and response (a client
//! trickling a byte at a time cannot keep its place past it), and monoio is
//! already how the workers do I/O. The epoll driver rather than io_uring:
//! a scrape every few seconds needs no more, and it works wherever the
//! process runs. At most [`MAX_CONNECTIONS`] are served at once; further
//! ones wait in the listen backlog until a place frees up, at the latest
//! when a deadline passes.

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use monoio::{LegacyDriver, RuntimeBuilder};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use ringcast_core::registry::Namespace;
use ringcast_core::shared::Shared;
use ringcast_core::stats::LatencySnapshot;
use ringcast_core::stats::{Disconnect, WorkerStats};

use crate::health::Readiness;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// Descriptors the endpoint may hold: its connections, its listener, its
/// runtime's epoll instance and waker, and `/proc/self/fd` while a scrape
/// counts the open descriptors.
pub(crate) const DESCRIPTORS: usize = MAX_CONNECTIONS + 4;
/// Longest request head read before answering 431 (scrapers send a few hundred bytes).
const MAX_REQUEST: usize = 8 * 1024;
/// Time a connection has, from accept, to send its request and take the response.
const DEADLINE: Duration = Duration::from_secs(5);
/// Wait before accepting again after accept failed (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Bind the endpoint (so a bad address fails at startup) and serve it.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    bind: &str,
    port: u16,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind((bind, port))?;
    listener.set_nonblocking(true)?;
    tracing::info!(
        "metrics on http://{}/metrics",
        listener
            .local_addr()
            .map_or_else(|_| format!("{bind}:{port}"), |a| a.to_string())
    );
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures {
        shared: shared.clone(),
        started: process_start_time(&shared),
    }));
    let site = Site {
        registry,
        readiness,
        shared,
    };
    // The runtime is built on its thread; startup waits to hear it was.
    let (built_tx, built) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ringcast-metrics".into())
        .spawn(move || {
            let mut rt = match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = built_tx.send(Err(e));
                    return;
                }
            };
            let _ = built_tx.send(Ok(()));
            if let Err(e) = rt.block_on(serve(listener, site)) {
                tracing::error!("metrics endpoint stopped: {e}");
            }
        })?;
    built.recv()??;
    Ok(())
}

/// What the endpoint answers from.
struct Site {
    registry: Registry,
    readiness: Arc<Readiness>,
    shared: Arc<Shared>,
}

async fn serve(listener: std::net::TcpListener, site: Site) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let site = Rc::new(site);
    let places = Rc::new(Places::new(MAX_CONNECTIONS));
    let mut last_error_logged: Option<Instant> = None;
    loop {
        let place = places.take().await;
        match listener.accept().await {
            Ok((stream, _)) => {
                let site = site.clone();
                monoio::spawn(async move {
                    match monoio::time::timeout(DEADLINE, respond(stream, &site)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!("metrics request: {e}"),
                        Err(_) => tracing::debug!(
                            "metrics request: not done within {DEADLINE:?}, connection closed"
                        ),
                    }
                    drop(place);
                });
            }
            Err(e) => {
                drop(place);
                if last_error_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::debug!("metrics accept: {e}");
                    last_error_logged = Some(Instant::now());
                }
                monoio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The places for connections served at once; the accept loop waits for one.
struct Places {
    free: Cell<usize>,
    waiting: Cell<Option<Waker>>,
}

/// One connection's place, given back when dropped.
struct Place(Rc<Places>);

impl Places {
    fn new(n: usize) -> Places {
        Places {
            free: Cell::new(n),
            waiting: Cell::new(None),
        }
    }

    async fn take(self: &Rc<Self>) -> Place {
        poll_fn(|cx| {
            if self.free.get() == 0 {
                self.waiting.set(Some(cx.waker().clone()));
                return Poll::Pending;
            }
            self.free.set(self.free.get() - 1);
            Poll::Ready(Place(self.clone()))
        })
        .await
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let places = &self.0;
        places.free.set(places.free.get() + 1);
        if let Some(waker) = places.waiting.take() {
            waker.wake();
        }
    }
}

/// A request head as read from the client.
enum Request {
    /// Up to and including the blank line that ends it.
    Complete(Vec<u8>),
    /// The client stopped sending before the blank line.
    Partial(Vec<u8>),
    /// Longer than [`MAX_REQUEST`] without its end.
    TooLarge,
}

async fn respond(mut stream: TcpStream, site: &Site) -> io::Result<()> {
    let request = read_request(&mut stream).await?;
    let (res, _) = stream.write_all(answer(&request, site)).await;
    res.map(drop)
}

async fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let mut head = Vec::new();
    let mut buf = Vec::with_capacity(1024);
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Request::Complete(head));
        }
        if head.len() >= MAX_REQUEST {
            return Ok(Request::TooLarge);
        }
        buf.clear();
        let (res, read) = stream.read(buf).await;
        buf = read;
        match res? {
            0 => return Ok(Request::Partial(head)),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// The whole response (head and body) to a request.
fn answer(request: &Request, site: &Site) -> Vec<u8> {
    let (head, complete) = match request {
        Request::Complete(h) => (h.as_slice(), true),
        Request::Partial(h) => (h.as_slice(), false),
        Request::TooLarge => {
            return response(
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
                true,
            );
        }
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let with_body = method != b"HEAD";
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            let mut body = String::new();
            match prometheus_client::encoding::prometheus_text::encode(&mut body, &site.registry) {
                Ok(()) => response(
                    "200 OK",
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    &body,
                    with_body,
                ),
                Err(_) => response("500 Internal Server Error", "text/plain", "", with_body),
            }
        }
        (b"GET" | b"HEAD", b"/healthz") => response("200 OK", "text/plain", "ok\n", with_body),
        (b"GET" | b"HEAD", b"/readyz") => match site.readiness.check(&site.shared) {
            Ok(()) => response("200 OK", "text/plain", "ready\n", with_body),
            Err(why) => response(
                "503 Service Unavailable",
                "text/plain",
                &format!("not ready: {why}\n"),
                with_body,
            ),
        },
        (b"GET" | b"HEAD", _) => response(
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz or /readyz\n",
            with_body,
        ),
        _ if !complete => response("400 Bad Request", "text/plain", "", true),
        _ => response("405 Method Not Allowed", "text/plain", "", true),
    }
}

fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

/// Reads every figure at scrape time.
struct Figures {
    shared: Arc<Shared>,
    /// `process_start_time_seconds`.
    started: f64,
}

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Figures")
    }
}

type Field = fn(&WorkerStats) -> &AtomicU64;

impl Figures {
    fn counter(
        &self,
        e: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        v: u64,
    ) -> std::fmt::Result {
        let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(v).encode(m)
    }

    fn gauge(&self, e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
        let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(v).encode(m)
    }

    /// One series per worker, labelled `worker="<n>"`.
    fn per_worker(
        &self,
        e: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        kind: MetricType,
        field: Field,
    ) -> std::fmt::Result {
        let mut m = e.encode_descriptor(name, help, None, kind)?;
        for (w, stats) in self.shared.stats.iter().enumerate() {
            let labels = [("worker", w.to_string())];
            let series = m.encode_family(&labels)?;
            let v = field(stats).load(Relaxed);
            match kind {
                MetricType::Counter => ConstCounter::new(v).encode(series)?,
                _ => ConstGauge::new(v as i64).encode(series)?,
            }
        }
        Ok(())
    }
}

/// The per-worker figures, each exported with a `worker` label.
const WORKER_FIGURES: [(&str, &str, MetricType, Field); 13] = [
    (
        "ringcast_connected_clients",
        "Clients connected",
        MetricType::Gauge,
        |s| &s.connected_clients,
    ),
    (
        "ringcast_pubsub_clients",
        "Clients with at least one subscription",
        MetricType::Gauge,
        |s| &s.pubsub_clients,
    ),
    (
        "ringcast_connections_received",
        "Connections accepted",
        MetricType::Counter,
        |s| &s.connections_received,
    ),
    (
        "ringcast_connections_moved",
        "Connections moved to the worker holding their subscribers",
        MetricType::Counter,
        |s| &s.connections_moved,
    ),
    (
        "ringcast_commands_processed",
        "Commands executed",
        MetricType::Counter,
        |s| &s.commands_processed,
    ),
    (
        "ringcast_messages_published",
        "PUBLISH and SPUBLISH commands executed",
        MetricType::Counter,
        |s| &s.messages_published,
    ),
    (
        "ringcast_messages_delivered",
        "Messages queued for subscribers (one per receiving subscription)",
        MetricType::Counter,
        |s| &s.messages_delivered,
    ),
    (
        "ringcast_error_replies",
        "Error replies sent",
        MetricType::Counter,
        |s| &s.error_replies,
    ),
    (
        "ringcast_net_input_bytes",
        "Bytes read from clients",
        MetricType::Counter,
        |s| &s.net_input_bytes,
    ),
    (
        "ringcast_net_output_bytes",
        "Bytes written to clients",
        MetricType::Counter,
        |s| &s.net_output_bytes,
    ),
    (
        "ringcast_inbound_ring_depth",
        "Messages waiting in the worker's inbound rings (sampled `hz` times a second)",
        MetricType::Gauge,
        |s| &s.inbound_depth,
    ),
    (
        "ringcast_paused_publishers",
        "Publishers paused until a full inter-worker ring drains",
        MetricType::Gauge,
        |s| &s.paused_publishers,
    ),
    (
        "ringcast_output_buffer_bytes",
        "Bytes queued for the worker's clients (sampled `hz` times a second)",
        MetricType::Gauge,
        |s| &s.output_memory,
    ),
];

impl Collector for Figures {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut e;
        self.build_info(e)?;
        for (name, help, kind, field) in WORKER_FIGURES {
            self.per_worker(e, name, help, kind, field)?;
        }
        self.disconnections(e)?;
        self.worker_cpu(e)?;
        self.server_figures(e)?;
        self.process_figures(e)?;
        self.delivery_latency(e)
    }
}

impl Figures {
    fn build_info(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let sh = &self.shared;
        let info = [
            ("version", ringcast_core::VERSION.to_string()),
            ("redis_version", ringcast_core::REDIS_VERSION.to_string()),
            ("io_backend", sh.info.io_backend.clone()),
        ];
        let mut m = e.encode_descriptor(
            "ringcast_build_info",
            "Version, emulated Redis version and I/O backend (value is always 1)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1i64).encode(m.encode_family(&info)?)
    }

    /// One series per worker and reason (`hub::closing`), every reason
    /// present from the start so that `rate()` sees the first one.
    fn disconnections(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut m = e.encode_descriptor(
            "ringcast_disconnections",
            "Connections closed, by reason: quit, hangup (closed by the client or a failed read or write), protocol_error, output_buffer_limit, query_buffer_limit, idle_timeout, killed (CLIENT KILL), acl_revoked, shutdown",
            None,
            MetricType::Counter,
        )?;
        for (w, stats) in self.shared.stats.iter().enumerate() {
            for why in Disconnect::ALL {
                let labels = [
                    ("worker", w.to_string()),
                    ("reason", why.label().to_string()),
                ];
                ConstCounter::new(stats.disconnections(why).load(Relaxed))
                    .encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn worker_cpu(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut m = e.encode_descriptor(
            "ringcast_worker_cpu_seconds",
            "CPU time used by the worker thread (sampled every second)",
            None,
            MetricType::Counter,
        )?;
        for (w, s) in self.shared.stats.iter().enumerate() {
            let us = s.cpu_user_us.load(Relaxed) + s.cpu_sys_us.load(Relaxed);
            ConstCounter::new(us as f64 / 1e6)
                .encode(m.encode_family(&[("worker", w.to_string())])?)?;
        }
        Ok(())
    }

    /// Figures of the whole server: refused connections and the registry.
    fn server_figures(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let sh = &self.shared;
        self.counter(
            e,
            "ringcast_rejected_connections",
            "Connections refused (maxclients, protected mode)",
            sh.rejected_connections.load(Relaxed),
        )?;
        self.gauge(
            e,
            "ringcast_pubsub_channels",
            "Channels with subscribers",
            sh.registry.channel_count(Namespace::Global) as i64,
        )?;
        self.gauge(
            e,
            "ringcast_pubsub_shard_channels",
            "Shard channels with subscribers",
            sh.registry.channel_count(Namespace::Shard) as i64,
        )?;
        self.gauge(
            e,
            "ringcast_pubsub_patterns",
            "Patterns with subscribers",
            sh.registry.pattern_count() as i64,
        )?;
        Ok(())
    }

    /// The process figures of the Prometheus client libraries, by their
    /// names and units (client_golang's process collector), then ringcast's.
    fn process_figures(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let p = &self.shared.process;
        let m = e.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.started).encode(m)?;
        if let Some(n) = open_fds() {
            self.gauge(e, "process_open_fds", "Number of open file descriptors", n)?;
        }
        if let Some(n) = max_fds() {
            self.gauge(
                e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                n,
            )?;
        }
        self.gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.rss.load(Relaxed) as i64,
        )?;
        self.gauge(
            e,
            "ringcast_used_memory_bytes",
            "Memory held by the allocator (INFO used_memory)",
            p.used_memory.load(Relaxed) as i64,
        )?;
        let cpu_us = p.cpu_user_us.load(Relaxed) + p.cpu_sys_us.load(Relaxed);
        let m = e.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(cpu_us as f64 / 1e6).encode(m)
    }

    fn delivery_latency(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut latency = LatencySnapshot::default();
        for s in self.shared.stats.iter() {
            s.delivery_latency.merge_into(&mut latency);
        }
        let mut m = e.encode_descriptor(
            "ringcast_delivery_latency_seconds",
            "Time from PUBLISH on one worker to the message being queued for subscribers on another (one in 32 crossing messages is sampled)",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(
            latency.sum_ns as f64 / 1e9,
            latency.count(),
            &latency.finite_buckets(),
            None,
        )
    }
}

/// When the process started, in seconds since the Unix epoch: as the
/// Prometheus clients compute it, its start in clock ticks after boot
/// (`/proc/self/stat`, field 22) plus the boot time (`btime` of
/// `/proc/stat`); else now less the server's uptime.
fn process_start_time(shared: &Shared) -> f64 {
    from_proc_stat().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.saturating_sub(shared.info.started.elapsed())
            .as_secs_f64()
    })
}

fn from_proc_stat() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last `)`, which ends it; field 3 comes next.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_name.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| boot as f64 + ticks as f64 / hz as f64)
}

/// Descriptors the process has open (entries of `/proc/self/fd`, less the
/// one reading it).
fn open_fds() -> Option<i64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(n.saturating_sub(1) as i64)
}

/// The soft open-file limit (`RLIMIT_NOFILE`).
fn max_fds() -> Option<i64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the rlimit it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then(|| i64::try_from(limit.rlim_cur).unwrap_or(i64::MAX))
}
