//! `ringcast`: the broker process. Reads the configuration (a redis.conf-style
//! file, then `--name value` flags), starts one worker per core, listens, and
//! shuts down cleanly on SIGTERM/SIGINT or `SHUTDOWN`. Runs under an init
//! system as redis-server does (`daemonize`, `pidfile`, `supervised`,
//! `logfile`, `dir`: see `supervise`); SIGHUP is ignored, as by Redis.

mod acceptor;
mod backend;
mod cluster;
mod connection;
mod health;
mod listeners;
mod logging;
mod memory;
mod metrics;
mod open_files;
mod sampler;
mod supervise;
mod tls;
mod worker;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use anyhow::{Context, bail};
use crossbeam_channel::Sender;
use ringcast_core::config::{AclFiles, AclStore, Config, OpenFiles, Relisten, TlsCheck};
use ringcast_core::frame::SharedMessage;
use ringcast_core::mesh::{Doorbells, Endpoint};
use ringcast_core::shared::{ServerInfo, Shared};

use crate::acceptor::Handoff;
use crate::listeners::{Listener, Listeners, listen};
use crate::supervise::{PidFile, Supervisor};

#[global_allocator]
static GLOBAL: memory::Counted<mimalloc::MiMalloc> = memory::Counted(mimalloc::MiMalloc);

fn main() {
    memory::disable_transparent_huge_pages();
    match run() {
        Ok(()) => {}
        Err(e) => {
            logging::fatal(&e);
            std::process::exit(1);
        }
    }
}

/// Build the configuration as redis-server does: an optional config file as
/// the first argument, then flags that override it. Also gives the path of
/// the file (absolute; empty without one) and the warning about the Redis
/// directives it ignores (an error with `strict-config yes`).
fn load_config(args: &[String]) -> anyhow::Result<(Config, String, Option<String>)> {
    let mut config = Config::default();
    let mut rest = args;
    let mut file = String::new();
    if let Some(first) = args.first()
        && !first.starts_with("--")
    {
        let text = std::fs::read_to_string(first)
            .with_context(|| format!("cannot read config file {first}"))?;
        config.apply_file_at(&text, first, &mut read_include)?;
        file = std::fs::canonicalize(first)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| first.clone());
        rest = &args[1..];
    }
    config.apply_args(rest)?;
    let warning = config.ignored_report()?;
    Ok((config, file, warning))
}

/// The files an `include` names, with their text: one file, or for a name
/// with wildcards (in its last part) the files that match, in name order,
/// none being no error (Redis's `loadServerConfig`).
fn read_include(path: &str) -> Result<Vec<(String, String)>, String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|text| (path.to_string(), text))
            .map_err(|e| {
                format!(
                    "Fatal error, can't open config file '{path}': {}",
                    ringcast_core::errors::strerror(&e)
                )
            })
    };
    if !path.contains(['*', '?', '[']) {
        return read(path).map(|file| vec![file]);
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or((".", path));
    let dir = if dir.is_empty() { "/" } else { dir };
    if dir.contains(['*', '?', '[']) {
        return Err(format!(
            "'{path}': wildcards are only read in the file name"
        ));
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| ringcast_core::glob::matches(pattern.as_bytes(), name.as_bytes()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .map(|name| read(&format!("{}/{name}", dir.trim_end_matches('/'))))
        .collect()
}

/// Moves to `dir` (as Redis does while reading the configuration) and keeps
/// the absolute working directory in it, which `CONFIG GET dir` answers.
fn move_to_dir(config: &mut Config) -> anyhow::Result<()> {
    if !config.dir.is_empty() {
        std::env::set_current_dir(&config.dir).map_err(|e| {
            anyhow::anyhow!(
                "Can't chdir to '{}': {}",
                config.dir,
                ringcast_core::errors::strerror(&e)
            )
        })?;
    }
    if let Ok(cwd) = std::env::current_dir() {
        config.dir = cwd.display().to_string();
    }
    Ok(())
}

/// SIGHUP is ignored, as by Redis (a closed terminal does not stop it).
fn ignore_sighup() {
    // SAFETY: setting the disposition of SIGHUP to SIG_IGN installs no
    // handler code; no other thread exists yet.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

fn run_id() -> String {
    let mut bytes = [0u8; 20];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The arguments, each of which must be UTF-8 (the configuration is text);
/// one that is not is an error naming it, not a panic.
fn command_line() -> anyhow::Result<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not valid UTF-8"))
        })
        .collect()
}

fn run() -> anyhow::Result<()> {
    let args = command_line()?;
    if answer_without_starting(&args) {
        return Ok(());
    }
    ignore_sighup();
    let (mut config, config_file, set_log_level) = configure(&args)?;
    let supervisor = Supervisor::from_config(&config);
    let cpus = worker::usable_cpus();
    settle(&mut config, &cpus)?;
    // Workers are pinned only when asked: a worker pinned to a core that
    // another busy process also runs on waits for it, where an unpinned
    // one moves to a free core (the scheduler keeps a busy worker where
    // it is anyway).
    let pinned =
        ringcast_core::config::parse_cpulist(&config.server_cpulist).map_err(anyhow::Error::msg)?;
    let backend = backend::choose(config.io_backend).map_err(anyhow::Error::msg)?;
    let tls = start_tls(&config)?;
    // Listen before starting workers so a bad address fails fast (and,
    // when daemonizing, in the foreground).
    let listeners = listen(&config)?;
    // As Redis: a supervised process stays in the foreground.
    let daemonized = config.daemonize && !supervisor.is_some();
    if daemonized {
        supervise::daemonize()?;
    }
    let _pidfile = PidFile::create(&config, daemonized);
    let (doorbells, endpoints) = ringcast_core::mesh::mesh(
        config.threads,
        config.ring_capacity,
        config.bytes_per_ring(config.threads),
    );
    let info = server_info(&config, &listeners, backend, config_file);
    let shared = Arc::new(Shared::new(config, info, doorbells.clone()));
    let _ = shared.process.supervised.set(supervisor.name());
    shared.load_acl().map_err(anyhow::Error::msg)?;
    let readiness = health::Readiness::new(shared.info.workers);
    start_observers(&shared, &readiness, set_log_level)?;
    if shared.cluster.enabled() {
        cluster::start(&shared)?;
    }
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
    // A signal, a SHUTDOWN or a worker exiting early ends the wait below.
    // Signals are watched before anything says the process is ready (log,
    // READY=1, /readyz), so that a SIGTERM sent on seeing it is a clean
    // shutdown, not the default action that kills the process.
    let (events_tx, events) = crossbeam_channel::unbounded::<String>();
    watch_signals(events_tx.clone())?;
    let shutdown = events_tx.clone();
    shared.shutdown.install(move |why| {
        let _ = shutdown.send(why);
    });
    let workers = start_workers(&shared, &readiness, endpoints, backend, &pinned, &events_tx)?;
    let kinds: Vec<&str> = ["tcp", "tls"]
        .into_iter()
        .filter(|kind| listeners.iter().any(|l| l.kind() == *kind))
        .collect();
    let acceptors = Listeners::new(shared.clone(), workers.senders.clone(), tls);
    install_listener_hooks(&shared, &acceptors);
    acceptors.start(listeners)?;
    readiness.accepting();
    for kind in kinds {
        tracing::info!("Ready to accept connections {kind}");
    }
    supervisor.ready();
    let why = events.recv().unwrap_or_default();
    tracing::info!("{why}, shutting down");
    supervisor.stopping();
    shut_down(&shared, &doorbells, workers.threads, &acceptors)
}

/// The configuration read, the process moved to its `dir`, logging
/// started and the warning about ignored Redis directives given.
fn configure(args: &[String]) -> anyhow::Result<(Config, String, logging::SetLogLevel)> {
    let (mut config, config_file, ignored) = load_config(args)?;
    move_to_dir(&mut config)?;
    let set_log_level = logging::init(&config)?;
    if let Some(warning) = ignored {
        tracing::warn!("{warning}");
    }
    // Reported once; the list is of no use any more.
    config.ignored = Default::default();
    Ok((config, config_file, set_log_level))
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
        // One worker per usable core, or per core of `server_cpulist`.
        let listed = ringcast_core::config::parse_cpulist(&config.server_cpulist)
            .map_err(anyhow::Error::msg)?
            .len();
        config.threads = worker::default_count(if listed > 0 { listed } else { cpus.len() });
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

    /// `CONFIG SET dir`: the whole process moves (Redis's `chdir`).
    fn chdir(&self, dir: &str) -> std::io::Result<String> {
        std::env::set_current_dir(dir)?;
        Ok(std::env::current_dir()?.display().to_string())
    }
}

/// With a `tls-port`, the TLS context (a bad or missing file stops the
/// server here, naming it).
fn start_tls(config: &Config) -> anyhow::Result<Option<Arc<tls::TlsContext>>> {
    if config.tls.port == 0 {
        return Ok(None);
    }
    tls::TlsContext::new(&config.tls)
        .map(Some)
        .map_err(|why| anyhow::anyhow!("Failed to configure TLS: {why}"))
}

/// What `CONFIG SET` applies through the listeners: a new TLS configuration
/// is loaded (the check before it goes live), a new `port`, `bind` or
/// `tls-port` is listened on.
fn install_listener_hooks(shared: &Arc<Shared>, listeners: &Arc<Listeners>) {
    let mut config = (**shared.config.load()).clone();
    let tls = listeners.clone();
    config.tls_check = TlsCheck::new(move |c| tls.reload_tls(c));
    let (relisten, live) = (listeners.clone(), shared.clone());
    config.relisten = Relisten::new(move |new, param| {
        let old = live.config.load();
        relisten.relisten(new, &old, param)
    });
    shared.config.store(Arc::new(config));
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
    let (move_tx, move_rx): (Vec<_>, Vec<_>) = (0..endpoints.len())
        .map(|_| crossbeam_channel::unbounded())
        .unzip();
    let move_tx: Arc<[_]> = move_tx.into();
    for ((id, endpoint), moves) in endpoints.into_iter().enumerate().zip(move_rx) {
        let (tx, rx) = crossbeam_channel::unbounded();
        workers.senders.push(tx);
        let spec = worker::WorkerSpec {
            id,
            shared: shared.clone(),
            readiness: readiness.clone(),
            endpoint,
            incoming: rx,
            moves: worker::Moves::new(move_tx.clone(), moves),
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
    listeners: &Listeners,
) -> anyhow::Result<()> {
    shared.shutting_down.store(true, Ordering::Release);
    listeners.close();
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
    if failed {
        bail!("a worker failed");
    }
    tracing::info!("ringcast is now ready to exit, bye bye...");
    Ok(())
}
