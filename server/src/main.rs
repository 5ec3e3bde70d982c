//! `ringcast`: the broker process. Reads the configuration (a redis.conf-style
//! file, then `--name value` flags), starts one worker per core, listens, and
//! shuts down cleanly on SIGTERM/SIGINT.

mod acceptor;
mod backend;
mod connection;
mod health;
mod logging;
mod memory;
mod metrics;
mod open_files;
mod sampler;
mod tls;
mod worker;

use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, bail};
use crossbeam_channel::Sender;
use ringcast_core::config::{AclFiles, AclStore, Config, OpenFiles, TlsCheck};
use ringcast_core::frame::SharedMessage;
use ringcast_core::mesh::{Doorbells, Endpoint};
use ringcast_core::shared::{ServerInfo, Shared};

use crate::acceptor::Handoff;

#[global_allocator]
static GLOBAL: memory::Counted<mimalloc::MiMalloc> = memory::Counted(mimalloc::MiMalloc);

fn main() {
    memory::disable_transparent_huge_pages();
    match run() {
        Ok(()) => {}
        Err(e) => {
            if logging::active() {
                // In the log's own format (a JSON line under `log-format json`).
                tracing::error!("{e:#}");
            } else {
                eprintln!("ringcast: {e:#}");
            }
            std::process::exit(1);
        }
    }
}

/// Build the configuration as redis-server does: an optional config file as
/// the first argument, then flags that override it.
fn load_config(args: &[String]) -> anyhow::Result<(Config, String)> {
    let mut config = Config::default();
    let mut rest = args;
    let mut file = String::new();
    if let Some(first) = args.first()
        && !first.starts_with("--")
    {
        let text = std::fs::read_to_string(first)
            .with_context(|| format!("cannot read config file {first}"))?;
        config.apply_file(&text).with_context(|| first.clone())?;
        file = std::fs::canonicalize(first)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| first.clone());
        rest = &args[1..];
    }
    config.apply_args(rest)?;
    Ok((config, file))
}

fn run_id() -> String {
    let mut bytes = [0u8; 20];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if answer_without_starting(&args) {
        return Ok(());
    }
    let (mut config, config_file) = load_config(&args)?;
    let set_log_level = logging::init(config.loglevel, config.log_format);
    let cpus = worker::usable_cpus();
    settle(&mut config, &cpus)?;
    let backend = backend::choose(config.io_backend).map_err(anyhow::Error::msg)?;
    let tls = start_tls(&mut config)?;
    // Listen before starting workers so a bad address fails fast.
    let listeners = listen(&config)?;
    let (doorbells, endpoints) = ringcast_core::mesh::mesh(
        config.threads,
        config.ring_capacity,
        config.bytes_per_ring(config.threads),
    );
    let info = server_info(&config, &listeners, backend, config_file);
    let shared = Arc::new(Shared::new(config, info, doorbells.clone()));
    shared.load_acl().map_err(anyhow::Error::msg)?;
    let readiness = health::Readiness::new(shared.info.workers);
    start_observers(&shared, &readiness, set_log_level)?;
    tracing::info!(
        "ringcast {} (redis protocol {}) pid={} workers={} backend={} port={} tls-port={}",
        ringcast_core::VERSION,
        ringcast_core::REDIS_VERSION,
        shared.info.pid,
        shared.info.workers,
        backend.describe(),
        shared.info.port,
        shared.config.load().tls.port,
    );
    // Either a signal or a worker exiting early ends the wait below.
    let (events_tx, events) = crossbeam_channel::unbounded::<String>();
    let workers = start_workers(&shared, &readiness, endpoints, backend, &cpus, &events_tx)?;
    let kinds: Vec<&str> = ["tcp", "tls"]
        .into_iter()
        .filter(|kind| listeners.iter().any(|l| l.kind() == *kind))
        .collect();
    let acceptors = start_acceptors(listeners, &shared, &workers.senders, tls)?;
    readiness.accepting();
    for kind in kinds {
        tracing::info!("Ready to accept connections {kind}");
    }
    watch_signals(events_tx)?;
    let why = events.recv().unwrap_or_default();
    tracing::info!("{why}, shutting down");
    shut_down(&shared, &doorbells, workers.threads, acceptors)
}

/// `--help` and `--version`: print and return true.
fn answer_without_starting(args: &[String]) -> bool {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", Config::usage());
        return true;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "ringcast {} (redis protocol {})",
            ringcast_core::VERSION,
            ringcast_core::REDIS_VERSION
        );
        return true;
    }
    false
}

/// Settle what the configuration leaves to the machine: the number of
/// workers (every usable core, within the CPU quota, by default) and `maxclients`, fitted to the
/// open-file limit now and on every `CONFIG SET`.
fn settle(config: &mut Config, cpus: &[usize]) -> anyhow::Result<()> {
    if config.threads == 0 {
        config.threads = worker::default_count(cpus.len());
    }
    let reserved = open_files::reserved(config.threads, config.metrics_port != 0);
    config.maxclients = open_files::fit_maxclients(config.maxclients, reserved)?;
    // Past startup the limit already holds the reserve, so nothing is too few.
    config.open_files =
        OpenFiles::new(move |wanted| open_files::fit_maxclients(wanted, reserved).unwrap_or(0));
    config.acl_files = AclFiles::new(AclFile);
    Ok(())
}

/// The ACL file on disk (`aclfile`).
struct AclFile;

impl AclStore for AclFile {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    /// As Redis's `ACLSaveToFile`: a temporary file beside it, synced, then
    /// renamed over it, so a crash leaves the old file or the new one.
    fn write(&self, path: &str, content: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = format!("{path}.tmp-{}", std::process::id());
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(content)?;
            f.sync_all()
        });
        let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        renamed
    }
}

/// With a `tls-port`, the TLS context (a bad or missing file stops the
/// server here, naming it), and the check `CONFIG SET` makes before a new
/// TLS configuration goes live.
fn start_tls(config: &mut Config) -> anyhow::Result<Option<Arc<tls::TlsContext>>> {
    if config.tls.port == 0 {
        return Ok(None);
    }
    let context = tls::TlsContext::new(&config.tls)
        .map_err(|why| anyhow::anyhow!("Failed to configure TLS: {why}"))?;
    let reload = context.clone();
    config.tls_check = TlsCheck::new(move |c| reload.reload(c));
    Ok(Some(context))
}

/// A listening socket, plain (`port`) or TLS (`tls-port`).
struct Listener {
    socket: TcpListener,
    tls: bool,
}

impl Listener {
    fn kind(&self) -> &'static str {
        if self.tls { "tls" } else { "tcp" }
    }
}

/// One listener per `bind` address on `port` and one on `tls-port`; a port
/// of 0 has no listener, as in Redis (and one of them must be set).
fn listen(config: &Config) -> anyhow::Result<Vec<Listener>> {
    if config.port == 0 && config.tls.port == 0 {
        bail!("Configured to not listen anywhere, exiting.");
    }
    let mut listeners = Vec::new();
    for (port, tls) in [(config.port, false), (config.tls.port, true)] {
        if port == 0 {
            continue;
        }
        for addr in &config.bind {
            let socket = TcpListener::bind((addr.as_str(), port))
                .with_context(|| format!("cannot listen on {addr}:{port}"))?;
            listeners.push(Listener { socket, tls });
        }
    }
    Ok(listeners)
}

fn server_info(
    config: &Config,
    listeners: &[Listener],
    backend: backend::Backend,
    config_file: String,
) -> ServerInfo {
    let port = listeners
        .iter()
        .find(|l| !l.tls)
        .and_then(|l| l.socket.local_addr().ok())
        .map_or(config.port, |a| a.port());
    ServerInfo {
        started: std::time::Instant::now(),
        pid: std::process::id(),
        run_id: run_id(),
        port,
        workers: config.threads,
        io_backend: backend.name().to_string(),
        config_file,
        executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    }
}

/// The threads that watch the process from the side: the sampler and, when
/// configured, the metrics endpoint.
fn start_observers(
    shared: &Arc<Shared>,
    readiness: &Arc<health::Readiness>,
    set_log_level: logging::SetLogLevel,
) -> anyhow::Result<()> {
    sampler::spawn(shared.clone(), set_log_level).context("cannot start the sampler thread")?;
    let config = shared.config.load();
    if config.metrics_port != 0 {
        metrics::spawn(
            shared.clone(),
            readiness.clone(),
            &config.metrics_bind,
            config.metrics_port,
        )
        .with_context(|| {
            format!(
                "cannot serve metrics on {}:{}",
                config.metrics_bind, config.metrics_port
            )
        })?;
    }
    Ok(())
}

/// The worker threads, and the channels the acceptors hand connections on.
struct Workers {
    senders: Vec<Sender<Handoff>>,
    threads: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// One worker thread per mesh endpoint; each reports on `events` when it exits.
fn start_workers(
    shared: &Arc<Shared>,
    readiness: &Arc<health::Readiness>,
    endpoints: Vec<Endpoint<SharedMessage>>,
    backend: backend::Backend,
    cpus: &[usize],
    events: &Sender<String>,
) -> anyhow::Result<Workers> {
    let mut workers = Workers {
        senders: Vec::new(),
        threads: Vec::new(),
    };
    for (id, endpoint) in endpoints.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::unbounded();
        workers.senders.push(tx);
        let spec = worker::WorkerSpec {
            id,
            shared: shared.clone(),
            readiness: readiness.clone(),
            endpoint,
            incoming: rx,
            backend,
            cpu: (!cpus.is_empty()).then(|| cpus[id % cpus.len()]),
        };
        let events = events.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ringcast-w{id}"))
            .spawn(move || {
                let r = worker::run(spec);
                let _ = events.send(format!("worker {id} exited"));
                r
            })
            .context("cannot start a worker thread")?;
        workers.threads.push(thread);
    }
    Ok(workers)
}

/// An acceptor thread and the descriptor of its listener (to wake it at shutdown).
type AcceptorThread = (RawFd, JoinHandle<()>);

/// One acceptor thread per listener, all sharing one round-robin counter.
fn start_acceptors(
    listeners: Vec<Listener>,
    shared: &Arc<Shared>,
    workers: &[Sender<Handoff>],
    tls: Option<Arc<tls::TlsContext>>,
) -> anyhow::Result<Vec<AcceptorThread>> {
    let next = Arc::new(AtomicUsize::new(0));
    listeners
        .into_iter()
        .map(|listener| {
            let fd = listener.socket.as_raw_fd();
            let a = acceptor::Acceptor {
                listener: listener.socket,
                shared: shared.clone(),
                workers: workers.to_vec(),
                next: next.clone(),
                tls: if listener.tls { tls.clone() } else { None },
            };
            let thread = std::thread::Builder::new()
                .name("ringcast-accept".into())
                .spawn(move || a.run())
                .context("cannot start the acceptor")?;
            Ok((fd, thread))
        })
        .collect()
}

/// SIGTERM and SIGINT are reported on `events`.
fn watch_signals(events: Sender<String>) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("ringcast-signals".into())
        .spawn(move || {
            if let Some(s) = signals.forever().next() {
                let _ = events.send(format!("received signal {s}"));
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Stop accepting, let every worker flush what its clients were promised
/// and exit, and wait for all of them.
fn shut_down(
    shared: &Shared,
    doorbells: &Doorbells,
    workers: Vec<JoinHandle<anyhow::Result<()>>>,
    acceptors: Vec<AcceptorThread>,
) -> anyhow::Result<()> {
    shared.shutting_down.store(true, Ordering::Release);
    for (fd, _) in &acceptors {
        // SAFETY: the listeners are still open (owned by the acceptor threads);
        // shutdown wakes their blocking accept() so they can exit.
        unsafe {
            libc::shutdown(*fd, libc::SHUT_RDWR);
        }
    }
    for w in 0..workers.len() {
        doorbells.ring(w);
    }
    let mut failed = false;
    for thread in workers {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("{e:#}");
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    for (_, thread) in acceptors {
        let _ = thread.join();
    }
    if failed {
        bail!("a worker failed");
    }
    tracing::info!("ringcast is now ready to exit, bye bye...");
    Ok(())
}
