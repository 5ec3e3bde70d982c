//! Servers the tool starts itself (ringcast, redis-server, nats-server),
//! each on a free loopback port, optionally over TLS, stopped when dropped.

use crate::conn::{Proto, Target};
use crate::sys;
use crate::tls::TlsClient;
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::Serialize;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server `compare` knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Ringcast,
    Redis,
    /// nats-server, spoken to in the NATS core protocol.
    Nats,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Ringcast => "ringcast",
            ServerKind::Redis => "redis",
            ServerKind::Nats => "nats",
        }
    }

    /// The protocol the tool speaks to it (RESP2 before `--resp` applies).
    pub fn proto(self) -> Proto {
        match self {
            ServerKind::Nats => Proto::Nats,
            _ => Proto::Resp2,
        }
    }
}

/// Where to look for the ringcast binary, in order.
fn ringcast_candidates(explicit: &Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.clone()];
    }
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("RINGCAST_BIN") {
        v.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        // Prefer the optimised build even when this tool is a debug build.
        if let Some(target) = dir.parent() {
            v.push(target.join("release").join("ringcast"));
        }
        v.push(dir.join("ringcast"));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        v.push(PathBuf::from(t).join("release").join("ringcast"));
    }
    v.push(PathBuf::from("target/release/ringcast"));
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

/// Finds the ringcast binary or explains how to get one.
pub fn find_ringcast(explicit: &Option<PathBuf>) -> Result<PathBuf> {
    let cands = ringcast_candidates(explicit);
    if let Some(p) = cands.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    bail!(
        "ringcast binary not found (looked at: {}).\n\
         Build it with `cargo build --release -p ringcast-server`, pass --ringcast-bin PATH, \
         or compare nothing but redis-server with --servers redis.",
        cands
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Finds redis-server or explains how to install it.
pub fn find_redis(explicit: &Option<PathBuf>) -> Result<PathBuf> {
    find_redis_in(explicit, std::env::var_os("PATH"))
}

fn find_redis_in(explicit: &Option<PathBuf>, path: Option<std::ffi::OsString>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.clone());
        }
        bail!("--redis-bin {}: no such file", p.display());
    }
    if let Some(p) = on_path("redis-server", path) {
        return Ok(p);
    }
    bail!(
        "redis-server not found on PATH.\n\
         Install it with `apt-get install -y redis-server` (Debian/Ubuntu; the packaged service \
         need not run: the benchmark starts its own instance on a free port), pass \
         --redis-bin PATH, or benchmark ringcast alone with --servers ringcast."
    )
}

/// Finds nats-server or explains how to install it.
pub fn find_nats(explicit: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.clone());
        }
        bail!("--nats-bin {}: no such file", p.display());
    }
    // Debian installs it in /usr/sbin, which not every PATH holds.
    let path = std::env::join_paths(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]),
    )
    .ok();
    if let Some(p) = on_path("nats-server", path) {
        return Ok(p);
    }
    bail!(
        "nats-server not found on PATH or in /usr/sbin.\n\
         Install it with `apt-get install -y nats-server` (the packaged service need not run: \
         the benchmark starts its own instance on a free port), or pass --nats-bin PATH."
    )
}

/// `name` in one of the directories of `path` (a `PATH`-like list).
fn on_path(name: &str, path: Option<std::ffi::OsString>) -> Option<PathBuf> {
    std::env::split_paths(&path?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Asks the kernel for a free loopback port.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// TLS for a started server: its certificate, and how the tool connects.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA that client certificates are checked against (`tls-ca-cert-file`).
    pub ca: Option<PathBuf>,
    /// Require a client certificate (`tls-auth-clients yes`).
    pub auth_clients: bool,
    /// The client side every connection of the tool uses.
    pub client: Arc<TlsClient>,
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub kind: ServerKind,
    pub bin: PathBuf,
    /// CPUs the server process may use.
    pub cpus: Vec<usize>,
    pub ringcast_threads: usize,
    pub io_backend: String,
    /// More ringcast parameters, `name=value` each.
    pub ringcast_set: Vec<String>,
    pub log_dir: PathBuf,
    /// Listen for TLS only (`--port 0 --tls-port P`), when set.
    pub tls: Option<ServerTls>,
}

impl ServerSpec {
    /// A server of `kind` on every CPU, ringcast with 2 threads, no TLS.
    pub fn new(kind: ServerKind, bin: PathBuf, log_dir: PathBuf) -> ServerSpec {
        ServerSpec {
            kind,
            bin,
            cpus: sys::current_affinity(),
            ringcast_threads: 2,
            io_backend: "auto".into(),
            ringcast_set: Vec::new(),
            log_dir,
            tls: None,
        }
    }

    /// Command-line arguments for a server on `port`.
    fn args(&self, port: u16) -> Vec<String> {
        if self.kind == ServerKind::Nats {
            return self.nats_args(port);
        }
        let mut v: Vec<String> = Vec::new();
        let mut push = |args: &[&str]| v.extend(args.iter().map(|a| a.to_string()));
        let port = port.to_string();
        match &self.tls {
            None => push(&["--port", &port]),
            Some(t) => {
                push(&["--port", "0", "--tls-port", &port]);
                push(&["--tls-cert-file", &t.cert.display().to_string()]);
                push(&["--tls-key-file", &t.key.display().to_string()]);
                if let Some(ca) = &t.ca {
                    push(&["--tls-ca-cert-file", &ca.display().to_string()]);
                }
                push(&[
                    "--tls-auth-clients",
                    if t.auth_clients { "yes" } else { "no" },
                ]);
            }
        }
        match self.kind {
            ServerKind::Redis => {
                push(&["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
                push(&["--daemonize", "no", "--maxclients", "20000"]);
            }
            ServerKind::Ringcast => {
                push(&["--threads", &self.ringcast_threads.to_string()]);
                push(&["--io-backend", &self.io_backend, "--maxclients", "20000"]);
                for set in &self.ringcast_set {
                    let (name, value) = set.split_once('=').unwrap_or((set, ""));
                    push(&[&format!("--{name}"), value]);
                }
            }
            ServerKind::Nats => {}
        }
        v
    }

    /// nats-server on loopback, TLS on the same port when asked (NATS
    /// upgrades a connection after its INFO line).
    fn nats_args(&self, port: u16) -> Vec<String> {
        let mut v: Vec<String> = ["-a", "127.0.0.1", "-p"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        v.push(port.to_string());
        if let Some(t) = &self.tls {
            v.push("--tls".into());
            v.extend(["--tlscert".into(), t.cert.display().to_string()]);
            v.extend(["--tlskey".into(), t.key.display().to_string()]);
            if t.auth_clients {
                v.push("--tlsverify".into());
            }
            if let Some(ca) = &t.ca {
                v.extend(["--tlscacert".into(), ca.display().to_string()]);
            }
        }
        v
    }
}

/// The server could not listen: its port was taken between choosing it and
/// binding it.
#[derive(Debug)]
struct PortTaken(u16);

impl std::fmt::Display for PortTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "port {} was taken before the server could bind it",
            self.0
        )
    }
}

impl std::error::Error for PortTaken {}

/// A running server; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ServerProc {
    pub kind: ServerKind,
    pub port: u16,
    pub log: PathBuf,
    tls: Option<Arc<TlsClient>>,
    child: Child,
}

impl ServerProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How to reach the server: plain or TLS, RESP2 (NATS for nats-server),
    /// no authentication.
    pub fn target(&self) -> Target {
        Target {
            tls: self.tls.clone(),
            proto: self.kind.proto(),
            ..Target::plain("127.0.0.1", self.port)
        }
    }

    /// Starts the server on a free port and waits until it answers PING.
    /// The port is free when chosen, but something else may bind it before
    /// the server does: then the server exits saying so, and it is started
    /// again on another port.
    pub fn start(spec: &ServerSpec) -> Result<ServerProc> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            match ServerProc::start_on(spec, free_port()?) {
                Err(e) if attempt < ATTEMPTS && e.is::<PortTaken>() => attempt += 1,
                started => return started,
            }
        }
    }

    fn start_on(spec: &ServerSpec, port: u16) -> Result<ServerProc> {
        let mut cmd = Command::new(&spec.bin);
        cmd.args(spec.args(port));
        let log = spec
            .log_dir
            .join(format!("{}-{port}.log", spec.kind.name()));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let cpus = spec.cpus.clone();
        // SAFETY: the closure runs in the child between fork and exec and only
        // makes the sched_setaffinity syscall (async-signal-safe), on a Vec
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || sys::set_affinity(0, &cpus));
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.bin.display()))?;
        let mut p = ServerProc {
            kind: spec.kind,
            port,
            log,
            tls: spec.tls.as_ref().map(|t| t.client.clone()),
            child,
        };
        p.wait_ready(Duration::from_secs(15))?;
        Ok(p)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let t0 = Instant::now();
        let target = self.target();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = log_tail(&self.log);
                if log.to_ascii_lowercase().contains("already in use") {
                    return Err(PortTaken(self.port).into());
                }
                bail!(
                    "{} exited during startup ({status}); its log:\n{}",
                    self.kind.name(),
                    log
                );
            }
            let answered = target.ping();
            // A PING answered while the child has already exited came from
            // whatever else holds the port: the next turn reports the exit.
            if answered.is_ok() && self.child.try_wait()?.is_none() {
                return Ok(());
            }
            if t0.elapsed() > limit {
                bail!(
                    "{} did not answer PING on port {} within {limit:?} ({:#}); its log:\n{}",
                    self.kind.name(),
                    self.port,
                    answered
                        .err()
                        .unwrap_or_else(|| anyhow::anyhow!("no reply")),
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_redis_binary_explains_how_to_install() {
        let e = find_redis_in(&None, Some("/nonexistent-dir".into())).unwrap_err();
        assert!(e.to_string().contains("apt-get install -y redis-server"));
        let e = find_redis(&Some(PathBuf::from("/nonexistent/redis-server"))).unwrap_err();
        assert!(e.to_string().contains("no such file"));
    }

    #[test]
    fn a_taken_port_is_reported_as_such_so_start_can_choose_another() {
        let Ok(bin) = find_redis(&None) else {
            return; // redis-server is not installed here
        };
        let dir = std::env::temp_dir().join(format!("rcb-taken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = ServerSpec::new(ServerKind::Redis, bin, dir.clone());
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let err = ServerProc::start_on(&spec, port)
            .err()
            .expect("bind must fail");
        assert!(err.is::<PortTaken>(), "{err:#}");
        let started = ServerProc::start(&spec).unwrap();
        assert_ne!(started.port, port);
        drop(started);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_ringcast_binary_says_how_to_build_it() {
        let e = find_ringcast(&Some(PathBuf::from("/nonexistent/ringcast"))).unwrap_err();
        assert!(
            e.to_string()
                .contains("cargo build --release -p ringcast-server")
        );
    }

    #[test]
    fn nats_server_listens_on_loopback_with_tls_on_its_one_port() {
        let dir = std::env::temp_dir().join(format!("rcb-nats-args-{}", std::process::id()));
        let mut spec = ServerSpec::new(ServerKind::Nats, "nats-server".into(), dir.clone());
        assert_eq!(spec.args(4222).join(" "), "-a 127.0.0.1 -p 4222");
        let certs = crate::tls::generate_certs(&dir).unwrap();
        let client = crate::tls::TlsArgs {
            tls: true,
            cacert: Some(certs.ca.clone()),
            ..Default::default()
        };
        spec.tls = Some(ServerTls {
            cert: certs.server_cert.clone(),
            key: certs.server_key.clone(),
            ca: None,
            auth_clients: false,
            client: Arc::new(TlsClient::new(&client, "127.0.0.1").unwrap()),
        });
        let args = spec.args(4222).join(" ");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            args.starts_with("-a 127.0.0.1 -p 4222 --tls --tlscert "),
            "{args}"
        );
        assert!(!args.contains("--tlsverify"));
    }

    #[test]
    fn a_tls_server_listens_on_its_tls_port_only() {
        let dir = std::env::temp_dir().join(format!("rcb-args-{}", std::process::id()));
        let certs = crate::tls::generate_certs(&dir).unwrap();
        let client = crate::tls::TlsArgs {
            tls: true,
            cacert: Some(certs.ca.clone()),
            ..Default::default()
        };
        let mut spec = ServerSpec::new(ServerKind::Redis, "redis-server".into(), dir.clone());
        spec.tls = Some(ServerTls {
            cert: certs.server_cert.clone(),
            key: certs.server_key.clone(),
            ca: Some(certs.ca.clone()),
            auth_clients: false,
            client: Arc::new(TlsClient::new(&client, "127.0.0.1").unwrap()),
        });
        let args = spec.args(7000).join(" ");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(args.starts_with("--port 0 --tls-port 7000 --tls-cert-file "));
        assert!(args.contains("--tls-auth-clients no"));
    }
}
