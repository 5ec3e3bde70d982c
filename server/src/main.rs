//! `ringcast`: the broker process. Reads the configuration (a redis.conf-style
//! file, then `--name value` flags), starts one worker per core, listens, and
//! shuts down cleanly on SIGTERM/SIGINT.

mod acceptor;
mod backend;
mod connection;
mod metrics;
mod open_files;
mod sampler;
mod worker;

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use ringcast_core::config::{Config, LogLevel, OpenFiles};
use ringcast_core::shared::{ServerInfo, Shared};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("ringcast: {e:#}");
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

fn level_filter(level: LogLevel) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match level {
        LogLevel::Debug => LevelFilter::TRACE,
        LogLevel::Verbose => LevelFilter::DEBUG,
        LogLevel::Notice => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
    }
}

/// Logs to stderr at `level`; the returned function changes the level of the
/// running subscriber (`CONFIG SET loglevel`).
fn init_logging(level: LogLevel) -> sampler::SetLogLevel {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(level_filter(level));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    Box::new(move |level| {
        if handle.modify(|f| *f = level_filter(level)).is_ok() {
            tracing::info!("log level set to {level:?}");
        }
    })
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
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", Config::usage());
        return Ok(());
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "ringcast {} (redis protocol {})",
            ringcast_core::VERSION,
            ringcast_core::REDIS_VERSION
        );
        return Ok(());
    }
    let (mut config, config_file) = load_config(&args)?;
    let set_log_level = init_logging(config.loglevel);

    let cpus = worker::usable_cpus();
    if config.threads == 0 {
        config.threads = cpus.len().clamp(1, ringcast_core::registry::MAX_WORKERS);
    }
    let workers = config.threads;
    let reserved = open_files::reserved(workers, config.metrics_port != 0);
    config.maxclients = open_files::fit_maxclients(config.maxclients, reserved)?;
    // Past startup the limit already holds the reserve, so nothing is too few.
    config.open_files =
        OpenFiles::new(move |wanted| open_files::fit_maxclients(wanted, reserved).unwrap_or(0));
    let backend = backend::choose(config.io_backend).map_err(|e| anyhow::anyhow!(e))?;

    // Listen before starting workers so a bad address fails fast.
    let mut listeners = Vec::new();
    for addr in &config.bind {
        let l = TcpListener::bind((addr.as_str(), config.port))
            .with_context(|| format!("cannot listen on {addr}:{}", config.port))?;
        listeners.push(l);
    }
    let port = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .map_or(config.port, |a| a.port());

    let (doorbells, endpoints) = ringcast_core::mesh::mesh(workers, config.ring_capacity);
    let info = ServerInfo {
        started: std::time::Instant::now(),
        pid: std::process::id(),
        run_id: run_id(),
        port,
        workers,
        io_backend: backend.name().to_string(),
        config_file,
        executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    };
    let shared = Arc::new(Shared::new(config.clone(), info, doorbells.clone()));
    sampler::spawn(shared.clone(), set_log_level).context("cannot start the sampler thread")?;
    if config.metrics_port != 0 {
        metrics::spawn(shared.clone(), &config.metrics_bind, config.metrics_port).with_context(
            || {
                format!(
                    "cannot serve metrics on {}:{}",
                    config.metrics_bind, config.metrics_port
                )
            },
        )?;
    }

    tracing::info!(
        "ringcast {} (redis protocol {}) pid={} workers={workers} backend={} port={port}",
        ringcast_core::VERSION,
        ringcast_core::REDIS_VERSION,
        std::process::id(),
        backend.describe(),
    );

    // Either a signal or a worker exiting early ends the wait below.
    let (events_tx, events) = crossbeam_channel::unbounded::<String>();
    let mut senders = Vec::new();
    let mut handles = Vec::new();
    for (id, endpoint) in endpoints.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::unbounded();
        senders.push(tx);
        let spec = worker::WorkerSpec {
            id,
            shared: shared.clone(),
            endpoint,
            incoming: rx,
            backend,
            cpu: (!cpus.is_empty()).then(|| cpus[id % cpus.len()]),
        };
        let events_tx = events_tx.clone();
        let h = std::thread::Builder::new()
            .name(format!("ringcast-w{id}"))
            .spawn(move || {
                let r = worker::run(spec);
                let _ = events_tx.send(format!("worker {id} exited"));
                r
            })
            .context("cannot start a worker thread")?;
        handles.push(h);
    }

    let next = Arc::new(AtomicUsize::new(0));
    let mut listener_fds = Vec::new();
    let mut acceptors = Vec::new();
    for listener in listeners {
        listener_fds.push(listener.as_raw_fd());
        let a = acceptor::Acceptor {
            listener,
            shared: shared.clone(),
            workers: senders.clone(),
            next: next.clone(),
        };
        acceptors.push(
            std::thread::Builder::new()
                .name("ringcast-accept".into())
                .spawn(move || a.run())
                .context("cannot start the acceptor")?,
        );
    }
    tracing::info!("Ready to accept connections tcp");

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("ringcast-signals".into())
        .spawn(move || {
            if let Some(s) = signals.forever().next() {
                let _ = events_tx.send(format!("received signal {s}"));
            }
        })
        .context("cannot start the signal thread")?;
    let why = events.recv().unwrap_or_default();
    tracing::info!("{why}, shutting down");
    shared.shutting_down.store(true, Ordering::Release);
    for fd in listener_fds {
        // SAFETY: the listeners are still open (owned by the acceptor threads);
        // shutdown wakes their blocking accept() so they can exit.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
    for w in 0..workers {
        doorbells.ring(w);
    }
    let mut failed = false;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("{e:#}");
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    for a in acceptors {
        let _ = a.join();
    }
    if failed {
        bail!("a worker failed");
    }
    tracing::info!("ringcast is now ready to exit, bye bye...");
    Ok(())
}
