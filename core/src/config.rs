//! ringcast's configuration: one struct, one table of parameters with their
//! defaults, one parser shared by the config file (redis.conf syntax), the
//! command line (`--name value`, as redis-server takes it) and `CONFIG GET/SET`.
//!
//! Parameter names are Redis's, so existing redis.conf files, deployment
//! scripts and client libraries that ask `CONFIG GET` at connect time keep
//! working.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

/// Which I/O backend the workers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBackend {
    /// io_uring when the kernel allows it, else epoll.
    Auto,
    Uring,
    Epoll,
}

/// Whether `DEBUG` may be used (`enable-debug-command`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugCommand {
    No,
    Yes,
    Local,
}

/// Output buffer limit of one client class (`client-output-buffer-limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OutputLimit {
    /// Close at once past this many bytes (0: no limit).
    pub hard: usize,
    /// Close when over this many bytes for longer than `soft_seconds` (0: no limit).
    pub soft: usize,
    pub soft_seconds: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

/// How log lines are written (`log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event (the default).
    Text,
    /// One JSON object per line, with the event's fields as members.
    Json,
}

/// Whether TLS clients must present a certificate (`tls-auth-clients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAuthClients {
    No,
    /// Required (Redis's default).
    Yes,
    /// Verified when presented, not required.
    Optional,
}

/// The TLS parameters (Redis's `tls-*`). TLS is on when `port` is not 0.
/// Empty strings are unset, as in Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    pub port: u16,
    pub cert_file: String,
    pub key_file: String,
    pub key_file_pass: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub auth_clients: TlsAuthClients,
    /// Space separated, e.g. `TLSv1.2 TLSv1.3` (empty: both).
    pub protocols: String,
    /// TLS 1.2 cipher suites, OpenSSL names separated by `:` (empty: all).
    pub ciphers: String,
    /// TLS 1.3 cipher suites, OpenSSL names separated by `:` (empty: all).
    pub ciphersuites: String,
    pub prefer_server_ciphers: bool,
    pub session_caching: bool,
    pub session_cache_size: usize,
    pub session_cache_timeout: u64,
    /// ringcast's own: seconds a client has to complete its handshake.
    pub handshake_timeout: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            port: 0,
            cert_file: String::new(),
            key_file: String::new(),
            key_file_pass: String::new(),
            ca_cert_file: String::new(),
            ca_cert_dir: String::new(),
            auth_clients: TlsAuthClients::Yes,
            protocols: String::new(),
            ciphers: String::new(),
            ciphersuites: String::new(),
            prefer_server_ciphers: false,
            session_caching: true,
            session_cache_size: 20 * 1024,
            session_cache_timeout: 300,
            handshake_timeout: 10,
        }
    }
}

/// Checks a TLS configuration before `CONFIG SET` makes it live (Redis's
/// `applyTlsCfg`): the server loads the certificate, key and CA files and
/// builds what new TLS connections will use, or says why it cannot. The
/// error is logged by the checker; `CONFIG SET` answers with Redis's text.
/// Without one (a configuration outside a process, in tests) every
/// configuration passes.
#[derive(Clone, Default)]
pub struct TlsCheck(Option<Arc<TlsCheckFn>>);

/// The server's check of a TLS configuration: Ok, or why not.
type TlsCheckFn = dyn Fn(&Config) -> Result<(), String> + Send + Sync;

impl TlsCheck {
    pub fn new(check: impl Fn(&Config) -> Result<(), String> + Send + Sync + 'static) -> Self {
        TlsCheck(Some(Arc::new(check)))
    }
}

/// Not configuration, so never what makes two configurations differ.
impl PartialEq for TlsCheck {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for TlsCheck {}

impl std::fmt::Debug for TlsCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TlsCheck(server)"
        } else {
            "TlsCheck(none)"
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub threads: usize,
    pub io_backend: IoBackend,
    pub requirepass: Option<String>,
    /// Refuse non-loopback clients while no password is set (`protected-mode`).
    pub protected_mode: bool,
    pub maxclients: usize,
    pub output_limit_normal: OutputLimit,
    pub output_limit_pubsub: OutputLimit,
    pub ring_capacity: usize,
    /// Bytes of messages queued towards one worker from all the others
    /// together (split evenly among its inbound rings).
    pub ring_bytes: usize,
    /// Output a worker may have queued and not yet written before it stops
    /// taking new messages (`hub::backlog`).
    pub worker_output_backlog: usize,
    pub enable_debug_command: DebugCommand,
    pub loglevel: LogLevel,
    pub log_format: LogFormat,
    pub timeout: u64,
    pub tcp_keepalive: u64,
    pub databases: i64,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    /// Commands that run at least this many microseconds go to the slow
    /// log (`slowlog-log-slower-than`; -1: off, 0: every command).
    pub slowlog_log_slower_than: i64,
    /// Entries the slow log keeps (`slowlog-max-len`).
    pub slowlog_max_len: u64,
    /// Events lasting at least this many milliseconds are recorded by the
    /// latency monitor (`latency-monitor-threshold`; 0: off).
    pub latency_monitor_threshold: u64,
    /// Port of the Prometheus metrics endpoint (0: off) and its address.
    pub metrics_port: u16,
    pub metrics_bind: String,
    /// The ACL file `ACL LOAD` and `ACL SAVE` use (`aclfile`; empty: none).
    pub aclfile: String,
    /// New users and `reset` get `allchannels` (`acl-pubsub-default allchannels`)
    /// rather than no channel (`resetchannels`, the default).
    pub acl_pubsub_allchannels: bool,
    /// Entries the ACL log keeps (`acllog-max-len`).
    pub acllog_max_len: usize,
    /// `user <name> <rules>...` lines of the config file, in order, the name first.
    pub users: Vec<Vec<String>>,
    pub tls: TlsConfig,
    /// Not a parameter: how the server checks a new TLS configuration.
    pub tls_check: TlsCheck,
    /// Not a parameter: how many clients the process's open-file limit
    /// holds, consulted when `maxclients` changes at runtime.
    pub open_files: OpenFiles,
    /// Not a parameter: how the ACL file is read and written.
    pub acl_files: AclFiles,
}

/// Reads and writes the ACL file for `ACL LOAD`/`ACL SAVE` and startup: the
/// server's file system (this crate does no I/O).
pub trait AclStore: Send + Sync {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>>;
    /// Replace the file's content as one step (write aside, then rename).
    fn write(&self, path: &str, content: &[u8]) -> std::io::Result<()>;
}

/// The server's [`AclStore`]; without one (tests) the file cannot be opened.
#[derive(Clone, Default)]
pub struct AclFiles(Option<Arc<dyn AclStore>>);

impl AclFiles {
    pub fn new(store: impl AclStore + 'static) -> Self {
        AclFiles(Some(Arc::new(store)))
    }

    pub fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        match &self.0 {
            Some(s) => s.read(path),
            None => Err(std::io::ErrorKind::NotFound.into()),
        }
    }

    pub fn write(&self, path: &str, content: &[u8]) -> std::io::Result<()> {
        match &self.0 {
            Some(s) => s.write(path, content),
            None => Err(std::io::ErrorKind::Unsupported.into()),
        }
    }
}

/// Not configuration, so never what makes two configurations differ.
impl PartialEq for AclFiles {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AclFiles {}

impl std::fmt::Debug for AclFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AclFiles")
    }
}

/// How many clients the process's open-file limit can hold, asked with the
/// number wanted: the server raises the limit where it can and answers
/// what it then holds (Redis's `adjustOpenFilesLimit`). Without one (a
/// configuration outside a process, in tests) any number fits.
#[derive(Clone, Default)]
pub struct OpenFiles(Option<Arc<dyn Fn(usize) -> usize + Send + Sync>>);

impl OpenFiles {
    pub fn new(fit: impl Fn(usize) -> usize + Send + Sync + 'static) -> Self {
        OpenFiles(Some(Arc::new(fit)))
    }

    /// Clients the limit holds, at most `wanted`.
    pub fn clients_allowed(&self, wanted: usize) -> usize {
        self.0
            .as_ref()
            .map_or(wanted, |fit| fit(wanted).min(wanted))
    }
}

/// Not configuration, so never what makes two configurations differ.
impl PartialEq for OpenFiles {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for OpenFiles {}

impl std::fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OpenFiles(limited)"
        } else {
            "OpenFiles(any)"
        })
    }
}

impl Config {
    /// The byte budget of each inter-worker ring: a worker's `ring-bytes`
    /// shared by the rings into it.
    pub fn bytes_per_ring(&self, workers: usize) -> usize {
        (self.ring_bytes / workers.saturating_sub(1).max(1)).max(1 << 20)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".to_string()],
            threads: 0,
            io_backend: IoBackend::Auto,
            requirepass: None,
            protected_mode: true,
            maxclients: 10000,
            output_limit_normal: OutputLimit::default(),
            output_limit_pubsub: OutputLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_seconds: 60,
            },
            ring_capacity: 4096,
            ring_bytes: 64 << 20,
            worker_output_backlog: 16 << 20,
            enable_debug_command: DebugCommand::No,
            loglevel: LogLevel::Notice,
            log_format: LogFormat::Text,
            timeout: 0,
            tcp_keepalive: 300,
            databases: 16,
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            metrics_port: 0,
            metrics_bind: "127.0.0.1".to_string(),
            aclfile: String::new(),
            acl_pubsub_allchannels: false,
            acllog_max_len: 128,
            users: Vec::new(),
            tls: TlsConfig::default(),
            tls_check: TlsCheck::default(),
            open_files: OpenFiles::default(),
            acl_files: AclFiles::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    #[error("parameter '{0}' cannot be changed while running")]
    Immutable(String),
    #[error("invalid value for '{name}': {why}")]
    Invalid { name: String, why: String },
    #[error("'{0}' needs a value")]
    MissingValue(String),
    #[error("unbalanced quotes in configuration line")]
    Quotes,
    /// `maxclients` above what the open-file limit holds (Redis's text).
    #[error(
        "The operating system is not able to handle the specified number of clients, try with {try_with}"
    )]
    OpenFilesLimit { try_with: usize },
    /// The new TLS configuration cannot be loaded (Redis's text; the
    /// reason is in the log).
    #[error("Unable to update TLS configuration. Check server logs.")]
    Tls,
}

/// A configuration that cannot be loaded: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// A line of a config file (numbered from 1; `directive` is its first word).
    #[error("line {line}: {error}: {text}")]
    Line {
        line: usize,
        directive: String,
        text: String,
        error: ConfigError,
    },
    /// A `--<directive> <value>...` flag.
    #[error("--{directive}: {error}")]
    Flag {
        directive: String,
        error: ConfigError,
    },
    /// A command-line word where a `--<directive>` flag was expected.
    #[error("unexpected argument '{0}'")]
    UnexpectedArgument(String),
}

/// One configuration parameter: Redis's name, whether `CONFIG SET` may
/// change it live, and how to read and print it.
pub struct Param {
    pub name: &'static str,
    pub live: bool,
    pub help: &'static str,
    set: fn(&mut Config, &[String]) -> Result<(), String>,
    get: fn(&Config) -> String,
}

/// Parameters ringcast accepts but deliberately ignores (it keeps no
/// keyspace, so persistence and replication settings mean nothing to it).
/// They are accepted so existing redis.conf files load, and `CONFIG GET`
/// answers them as an empty-dataset Redis would.
pub const IGNORED: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("daemonize", "no"),
    ("dir", "."),
    ("dbfilename", "dump.rdb"),
    ("logfile", ""),
    ("pidfile", ""),
    ("supervised", "no"),
    ("io-threads", "1"),
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("notify-keyspace-events", ""),
    ("tcp-backlog", "511"),
    ("cluster-enabled", "no"),
    ("slave-read-only", "yes"),
    ("replica-read-only", "yes"),
    // No replication or cluster: no outgoing TLS, no client-side certificate.
    ("tls-replication", "no"),
    ("tls-cluster", "no"),
    ("tls-client-cert-file", ""),
    ("tls-client-key-file", ""),
    ("tls-client-key-file-pass", ""),
    // rustls offers no finite-field Diffie-Hellman suites, so no DH parameters.
    ("tls-dh-params-file", ""),
];

fn yes_no(v: &[String]) -> Result<bool, String> {
    match one(v)?.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn one(v: &[String]) -> Result<&str, String> {
    match v {
        [x] => Ok(x.as_str()),
        _ => Err("expects one value".into()),
    }
}

fn parse_num<T: std::str::FromStr>(v: &[String]) -> Result<T, String> {
    one(v)?
        .parse()
        .map_err(|_| "not a valid number".to_string())
}

/// An integer within Redis's bounds for the parameter, with Redis's reason
/// when it is not one.
fn parse_range(v: &[String], min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = one(v)?
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

/// Memory sizes as Redis writes them: `32mb`, `8m`, `1gb`, `1024`.
pub fn parse_memory(s: &str) -> Result<usize, String> {
    let lower = s.to_ascii_lowercase();
    let (digits, mul) = [
        ("gb", 1usize << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, mul)| lower.strip_suffix(suffix).map(|d| (d, *mul)))
    .unwrap_or((lower.as_str(), 1));
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("'{s}' is not a memory size"))
}

fn set_output_limit(c: &mut Config, v: &[String]) -> Result<(), String> {
    // Redis takes one or more "class hard soft seconds" groups, given either
    // as separate words or as one quoted string.
    let words: Vec<&str> = v.iter().flat_map(|s| s.split_whitespace()).collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("expects <class> <hard> <soft> <seconds> groups".into());
    }
    let mut next = c.clone();
    for g in words.chunks(4) {
        let limit = OutputLimit {
            hard: parse_memory(g[1])?,
            soft: parse_memory(g[2])?,
            soft_seconds: g[3].parse().map_err(|_| "seconds is not a number")?,
        };
        match g[0].to_ascii_lowercase().as_str() {
            "normal" => next.output_limit_normal = limit,
            "pubsub" => next.output_limit_pubsub = limit,
            // Replicas do not exist here; the class is accepted for redis.conf compatibility.
            "replica" | "slave" => {}
            other => return Err(format!("unknown client class '{other}'")),
        }
    }
    *c = next;
    Ok(())
}

fn fmt_limit(l: &OutputLimit) -> String {
    format!("{} {} {}", l.hard, l.soft, l.soft_seconds)
}

pub static PARAMS: &[Param] = &[
    Param {
        name: "port",
        live: false,
        help: "TCP port to listen on",
        set: |c, v| {
            c.port = parse_num(v)?;
            Ok(())
        },
        get: |c| c.port.to_string(),
    },
    Param {
        name: "bind",
        live: false,
        help: "addresses to listen on (space separated)",
        set: |c, v| {
            let addrs: Vec<String> = v
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(String::from)
                .collect();
            if addrs.is_empty() {
                return Err("expects at least one address".into());
            }
            c.bind = addrs;
            Ok(())
        },
        get: |c| c.bind.join(" "),
    },
    Param {
        name: "threads",
        live: false,
        help: "worker threads, one per core (0: every usable core)",
        set: |c, v| {
            let n: usize = parse_num(v)?;
            if n > crate::registry::MAX_WORKERS {
                return Err(format!("at most {} threads", crate::registry::MAX_WORKERS));
            }
            c.threads = n;
            Ok(())
        },
        get: |c| c.threads.to_string(),
    },
    Param {
        name: "io-backend",
        live: false,
        help: "auto | uring | epoll",
        set: |c, v| {
            c.io_backend = match one(v)?.to_ascii_lowercase().as_str() {
                "auto" => IoBackend::Auto,
                "uring" | "io_uring" | "io-uring" => IoBackend::Uring,
                "epoll" => IoBackend::Epoll,
                _ => return Err("expects auto, uring or epoll".into()),
            };
            Ok(())
        },
        get: |c| {
            match c.io_backend {
                IoBackend::Auto => "auto",
                IoBackend::Uring => "uring",
                IoBackend::Epoll => "epoll",
            }
            .to_string()
        },
    },
    Param {
        name: "requirepass",
        live: true,
        help: "password clients must AUTH with (empty: none)",
        set: |c, v| {
            let p = one(v)?;
            c.requirepass = (!p.is_empty()).then(|| p.to_string());
            Ok(())
        },
        get: |c| c.requirepass.clone().unwrap_or_default(),
    },
    Param {
        name: "aclfile",
        live: false,
        help: "file of ACL users (ACL LOAD, ACL SAVE; empty: none)",
        set: |c, v| {
            c.aclfile = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.aclfile.clone(),
    },
    Param {
        name: "acl-pubsub-default",
        live: true,
        help: "allchannels | resetchannels: the channels new ACL users start with",
        set: |c, v| {
            c.acl_pubsub_allchannels = match one(v)?.to_ascii_lowercase().as_str() {
                "allchannels" => true,
                "resetchannels" => false,
                _ => {
                    return Err(
                        "argument(s) must be one of the following: allchannels, resetchannels"
                            .into(),
                    );
                }
            };
            Ok(())
        },
        get: |c| {
            if c.acl_pubsub_allchannels {
                "allchannels"
            } else {
                "resetchannels"
            }
            .to_string()
        },
    },
    Param {
        name: "acllog-max-len",
        live: true,
        help: "entries the ACL log keeps",
        set: |c, v| {
            c.acllog_max_len = parse_num(v)?;
            Ok(())
        },
        get: |c| c.acllog_max_len.to_string(),
    },
    Param {
        name: "protected-mode",
        live: true,
        help: "yes | no: without a password, accept loopback clients only",
        set: |c, v| {
            c.protected_mode = yes_no(v)?;
            Ok(())
        },
        get: |c| if c.protected_mode { "yes" } else { "no" }.to_string(),
    },
    Param {
        name: "maxclients",
        live: true,
        help: "maximum connected clients",
        set: |c, v| {
            let n: usize = parse_num(v)?;
            if n == 0 {
                return Err("must be at least 1".into());
            }
            c.maxclients = n;
            Ok(())
        },
        get: |c| c.maxclients.to_string(),
    },
    Param {
        name: "client-output-buffer-limit",
        live: true,
        help: "\"<class> <hard> <soft> <seconds>\" for classes normal and pubsub",
        set: set_output_limit,
        get: |c| {
            format!(
                "normal {} slave 268435456 67108864 60 pubsub {}",
                fmt_limit(&c.output_limit_normal),
                fmt_limit(&c.output_limit_pubsub)
            )
        },
    },
    Param {
        name: "ring-capacity",
        live: false,
        help: "messages each inter-worker ring holds before publishers are paused",
        set: |c, v| {
            let n: usize = parse_num(v)?;
            if n == 0 {
                return Err("must be at least 1".into());
            }
            c.ring_capacity = n;
            Ok(())
        },
        get: |c| c.ring_capacity.to_string(),
    },
    Param {
        name: "ring-bytes",
        live: false,
        help: "bytes of messages queued towards one worker from the others before publishers are paused",
        set: |c, v| {
            let n = parse_memory(one(v)?)?;
            if n < 1 << 20 {
                return Err("must be at least 1mb".into());
            }
            c.ring_bytes = n;
            Ok(())
        },
        get: |c| c.ring_bytes.to_string(),
    },
    Param {
        name: "worker-output-backlog",
        live: true,
        help: "output a worker may have queued and not yet written before it pauses publishers",
        set: |c, v| {
            let n = parse_memory(one(v)?)?;
            if n < 64 << 10 {
                return Err("must be at least 64kb".into());
            }
            c.worker_output_backlog = n;
            Ok(())
        },
        get: |c| c.worker_output_backlog.to_string(),
    },
    Param {
        name: "enable-debug-command",
        live: false,
        help: "no | yes | local: allow DEBUG (SLEEP)",
        set: |c, v| {
            c.enable_debug_command = match one(v)?.to_ascii_lowercase().as_str() {
                "no" => DebugCommand::No,
                "yes" => DebugCommand::Yes,
                "local" => DebugCommand::Local,
                _ => return Err("expects no, yes or local".into()),
            };
            Ok(())
        },
        get: |c| {
            match c.enable_debug_command {
                DebugCommand::No => "no",
                DebugCommand::Yes => "yes",
                DebugCommand::Local => "local",
            }
            .to_string()
        },
    },
    Param {
        name: "loglevel",
        live: true,
        help: "debug | verbose | notice | warning",
        set: |c, v| {
            c.loglevel = match one(v)?.to_ascii_lowercase().as_str() {
                "debug" => LogLevel::Debug,
                "verbose" => LogLevel::Verbose,
                "notice" => LogLevel::Notice,
                "warning" => LogLevel::Warning,
                _ => return Err("expects debug, verbose, notice or warning".into()),
            };
            Ok(())
        },
        get: |c| {
            match c.loglevel {
                LogLevel::Debug => "debug",
                LogLevel::Verbose => "verbose",
                LogLevel::Notice => "notice",
                LogLevel::Warning => "warning",
            }
            .to_string()
        },
    },
    Param {
        name: "timeout",
        live: true,
        help: "close idle non-subscriber clients after this many seconds (0: never)",
        set: |c, v| {
            c.timeout = parse_num(v)?;
            Ok(())
        },
        get: |c| c.timeout.to_string(),
    },
    Param {
        name: "tcp-keepalive",
        live: true,
        help: "TCP keepalive interval in seconds (0: off)",
        set: |c, v| {
            c.tcp_keepalive = parse_num(v)?;
            Ok(())
        },
        get: |c| c.tcp_keepalive.to_string(),
    },
    Param {
        name: "databases",
        live: false,
        help: "number of databases SELECT accepts (pub/sub ignores the database)",
        set: |c, v| {
            let n: i64 = parse_num(v)?;
            if n < 1 {
                return Err("must be at least 1".into());
            }
            c.databases = n;
            Ok(())
        },
        get: |c| c.databases.to_string(),
    },
    Param {
        name: "proto-max-bulk-len",
        live: true,
        help: "largest bulk string a request may carry",
        set: |c, v| {
            let n = parse_memory(one(v)?)?;
            if n < 1 << 20 {
                return Err("must be at least 1mb".into());
            }
            c.proto_max_bulk_len = n;
            Ok(())
        },
        get: |c| c.proto_max_bulk_len.to_string(),
    },
    Param {
        name: "client-query-buffer-limit",
        live: true,
        help: "largest unprocessed input a client may accumulate",
        set: |c, v| {
            let n = parse_memory(one(v)?)?;
            if n < 1 << 20 {
                return Err("must be at least 1mb".into());
            }
            c.client_query_buffer_limit = n;
            Ok(())
        },
        get: |c| c.client_query_buffer_limit.to_string(),
    },
    Param {
        name: "slowlog-log-slower-than",
        live: true,
        help: "log commands that run at least this many microseconds (-1: off, 0: all)",
        set: |c, v| {
            c.slowlog_log_slower_than = parse_range(v, -1, i64::MAX)?;
            Ok(())
        },
        get: |c| c.slowlog_log_slower_than.to_string(),
    },
    Param {
        name: "slowlog-max-len",
        live: true,
        help: "entries the slow log keeps",
        set: |c, v| {
            c.slowlog_max_len = parse_range(v, 0, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| c.slowlog_max_len.to_string(),
    },
    Param {
        name: "latency-monitor-threshold",
        live: true,
        help: "record latency events of at least this many milliseconds (0: off)",
        set: |c, v| {
            c.latency_monitor_threshold = parse_range(v, 0, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| c.latency_monitor_threshold.to_string(),
    },
    Param {
        name: "tls-port",
        live: false,
        help: "TLS port to listen on (0: no TLS)",
        set: |c, v| {
            c.tls.port = parse_num(v)?;
            Ok(())
        },
        get: |c| c.tls.port.to_string(),
    },
    Param {
        name: "tls-cert-file",
        live: true,
        help: "server certificate chain (PEM)",
        set: |c, v| {
            c.tls.cert_file = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.cert_file.clone(),
    },
    Param {
        name: "tls-key-file",
        live: true,
        help: "private key of the server certificate (PEM: PKCS#8, PKCS#1 or SEC1)",
        set: |c, v| {
            c.tls.key_file = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.key_file.clone(),
    },
    Param {
        name: "tls-key-file-pass",
        live: true,
        help: "passphrase of an encrypted PKCS#8 tls-key-file",
        set: |c, v| {
            c.tls.key_file_pass = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.key_file_pass.clone(),
    },
    Param {
        name: "tls-ca-cert-file",
        live: true,
        help: "CA certificates (PEM) client certificates are verified against",
        set: |c, v| {
            c.tls.ca_cert_file = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.ca_cert_file.clone(),
    },
    Param {
        name: "tls-ca-cert-dir",
        live: true,
        help: "directory of CA certificate files (PEM)",
        set: |c, v| {
            c.tls.ca_cert_dir = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.ca_cert_dir.clone(),
    },
    Param {
        name: "tls-auth-clients",
        live: true,
        help: "yes | no | optional: require client certificates",
        set: |c, v| {
            c.tls.auth_clients = match one(v)?.to_ascii_lowercase().as_str() {
                "yes" => TlsAuthClients::Yes,
                "no" => TlsAuthClients::No,
                "optional" => TlsAuthClients::Optional,
                _ => return Err("expects yes, no or optional".into()),
            };
            Ok(())
        },
        get: |c| {
            match c.tls.auth_clients {
                TlsAuthClients::Yes => "yes",
                TlsAuthClients::No => "no",
                TlsAuthClients::Optional => "optional",
            }
            .to_string()
        },
    },
    Param {
        name: "tls-protocols",
        live: true,
        help: "TLS versions accepted, e.g. \"TLSv1.2 TLSv1.3\" (empty: both)",
        set: |c, v| {
            c.tls.protocols = v.join(" ");
            Ok(())
        },
        get: |c| c.tls.protocols.clone(),
    },
    Param {
        name: "tls-ciphers",
        live: true,
        help: "TLS 1.2 cipher suites, OpenSSL names separated by ':' (empty: all)",
        set: |c, v| {
            c.tls.ciphers = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.ciphers.clone(),
    },
    Param {
        name: "tls-ciphersuites",
        live: true,
        help: "TLS 1.3 cipher suites, OpenSSL names separated by ':' (empty: all)",
        set: |c, v| {
            c.tls.ciphersuites = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls.ciphersuites.clone(),
    },
    Param {
        name: "tls-prefer-server-ciphers",
        live: true,
        help: "yes | no: choose the cipher suite by the server's order",
        set: |c, v| {
            c.tls.prefer_server_ciphers = yes_no(v)?;
            Ok(())
        },
        get: |c| {
            if c.tls.prefer_server_ciphers {
                "yes"
            } else {
                "no"
            }
            .to_string()
        },
    },
    Param {
        name: "tls-session-caching",
        live: true,
        help: "yes | no: let clients resume TLS sessions",
        set: |c, v| {
            c.tls.session_caching = yes_no(v)?;
            Ok(())
        },
        get: |c| if c.tls.session_caching { "yes" } else { "no" }.to_string(),
    },
    Param {
        name: "tls-session-cache-size",
        live: true,
        help: "TLS sessions kept for resumption",
        set: |c, v| {
            c.tls.session_cache_size = parse_num(v)?;
            Ok(())
        },
        get: |c| c.tls.session_cache_size.to_string(),
    },
    Param {
        name: "tls-session-cache-timeout",
        live: true,
        help: "accepted for redis.conf compatibility; the session cache evicts by size only",
        set: |c, v| {
            c.tls.session_cache_timeout = parse_num(v)?;
            Ok(())
        },
        get: |c| c.tls.session_cache_timeout.to_string(),
    },
    Param {
        name: "tls-handshake-timeout",
        live: true,
        help: "seconds a TLS client has to complete its handshake (ringcast's own)",
        set: |c, v| {
            let n: u64 = parse_num(v)?;
            if n == 0 {
                return Err("must be at least 1".into());
            }
            c.tls.handshake_timeout = n;
            Ok(())
        },
        get: |c| c.tls.handshake_timeout.to_string(),
    },
    // ringcast's own parameters (no Redis counterpart).
    Param {
        name: "metrics-port",
        live: false,
        help: "serve Prometheus metrics over HTTP on this port (0: off)",
        set: |c, v| {
            c.metrics_port = parse_num(v)?;
            Ok(())
        },
        get: |c| c.metrics_port.to_string(),
    },
    Param {
        name: "metrics-bind",
        live: false,
        help: "address of the metrics endpoint",
        set: |c, v| {
            c.metrics_bind = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.metrics_bind.clone(),
    },
    Param {
        name: "log-format",
        live: false,
        help: "text | json: one JSON object per log line",
        set: |c, v| {
            c.log_format = match one(v)?.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err("expects text or json".into()),
            };
            Ok(())
        },
        get: |c| {
            match c.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }
            .to_string()
        },
    },
];

/// Whether the TLS context (certificate, key, CAs, versions, suites,
/// sessions, client verification) is built from this parameter.
fn tls_context_param(name: &str) -> bool {
    name.starts_with("tls-") && !matches!(name, "tls-port" | "tls-handshake-timeout")
}

pub fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

impl Config {
    /// Set one parameter from its words (as in a config line or `CONFIG SET`).
    /// Ignored Redis parameters are accepted and dropped.
    pub fn set(&mut self, name: &str, values: &[String]) -> Result<(), ConfigError> {
        if name.eq_ignore_ascii_case("user") {
            return self.add_user_line(values);
        }
        if let Some(p) = param(name) {
            if values.is_empty() {
                return Err(ConfigError::MissingValue(name.to_string()));
            }
            return (p.set)(self, values).map_err(|why| ConfigError::Invalid {
                name: p.name.to_string(),
                why,
            });
        }
        if IGNORED.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Ok(());
        }
        Err(ConfigError::Unknown(name.to_string()))
    }

    /// A `user <name> <rules>...` line: checked now as Redis reads it
    /// (syntax, duplicates), applied when the server starts.
    fn add_user_line(&mut self, values: &[String]) -> Result<(), ConfigError> {
        // One quoted value holding the whole line (`--user "name on >pw"`) is
        // split into its words, as `client-output-buffer-limit` groups are.
        let words: Vec<String> = values
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(String::from)
            .collect();
        if words.is_empty() {
            return Err(ConfigError::MissingValue("user".to_string()));
        }
        let values = &words[..];
        crate::acl::check_user_line(values, &self.users).map_err(|e| ConfigError::Invalid {
            name: "user".to_string(),
            why: e.to_string(),
        })?;
        self.users.push(values.to_vec());
        Ok(())
    }

    /// The ACL defaults this configuration gives new users.
    pub fn acl_defaults(&self) -> crate::acl::Defaults {
        crate::acl::Defaults {
            allchannels: self.acl_pubsub_allchannels,
        }
    }

    /// Redis 7.2's protected mode (`clientAcceptHandler`): with
    /// `protected-mode yes` and no password for the default user, a client
    /// whose address is not loopback is refused, whatever `bind` says.
    pub fn protected_mode_denies(&self, peer: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`.
        self.protected_mode && self.requirepass.is_none() && !peer.to_canonical().is_loopback()
    }

    /// `CONFIG SET`: only live parameters.
    pub fn set_live(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        match param(name) {
            Some(p) if p.live => {
                self.set(p.name, &[value.to_string()])?;
                self.check_live(p.name)
            }
            Some(p) => Err(ConfigError::Immutable(p.name.to_string())),
            None => Err(ConfigError::Unknown(name.to_string())),
        }
    }

    /// What Redis checks once a live value is set (its config apply
    /// functions): `maxclients` must fit the open-file limit
    /// (`updateMaxclients`); the caller then keeps the previous configuration.
    fn check_live(&self, name: &str) -> Result<(), ConfigError> {
        if name == "maxclients" {
            let allowed = self.open_files.clients_allowed(self.maxclients);
            if allowed < self.maxclients {
                return Err(ConfigError::OpenFilesLimit { try_with: allowed });
            }
        }
        Ok(())
    }

    /// Redis's apply step, once every pair of a `CONFIG SET` is set: if any
    /// of `names` is a TLS parameter that the TLS context is built from and
    /// TLS is on, the new TLS configuration must load (so that a new
    /// certificate and its key can be set in one command). The error
    /// carries the name of the first such parameter, as Redis's reply does.
    pub fn apply_live(&self, names: &[&str]) -> Result<(), (&'static str, ConfigError)> {
        let Some(first) = names
            .iter()
            .filter_map(|n| param(n))
            .find(|p| tls_context_param(p.name))
        else {
            return Ok(());
        };
        match &self.tls_check.0 {
            Some(check) if self.tls.port != 0 => {
                check(self).map_err(|_| (first.name, ConfigError::Tls))
            }
            _ => Ok(()),
        }
    }

    /// Current value of every parameter (ours and the ignored ones) whose
    /// name matches the glob, as `CONFIG GET` lists them.
    pub fn get_matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let ours = PARAMS.iter().map(|p| (p.name, (p.get)(self)));
        let ignored = IGNORED.iter().map(|(n, v)| (*n, v.to_string()));
        ours.chain(ignored)
            .filter(|(n, _)| crate::glob::matches(&pattern.to_ascii_lowercase(), n.as_bytes()))
            .collect()
    }

    /// Apply a config file's text (redis.conf syntax: `name value...` lines,
    /// `#` comments, quoted values). Errors name the line.
    pub fn apply_file(&mut self, text: &str) -> Result<(), LoadError> {
        for (i, line) in text.lines().enumerate() {
            let at = |error| LoadError::Line {
                line: i + 1,
                directive: line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                text: line.to_string(),
                error,
            };
            let words = split_line(line).map_err(at)?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            self.set(name, values).map_err(at)?;
        }
        Ok(())
    }

    /// Apply command-line arguments: `--name value...` pairs, as redis-server
    /// takes them (values run until the next `--`).
    pub fn apply_args(&mut self, args: &[String]) -> Result<(), LoadError> {
        let mut i = 0;
        while i < args.len() {
            let Some(flag) = args[i].strip_prefix("--") else {
                return Err(LoadError::UnexpectedArgument(args[i].clone()));
            };
            // redis-server joins its arguments into config lines, so one word
            // holding a whole directive (`"--port 6380"`) reads as that line.
            let mut words = split_line(flag)
                .map_err(|error| LoadError::Flag {
                    directive: flag.to_string(),
                    error,
                })?
                .into_iter();
            let name = words.next().unwrap_or_default();
            let name = name.as_str();
            let mut values: Vec<String> = words.collect();
            i += 1;
            // As in redis-server, the word right after a name is its value even
            // when it starts with `--` (`--requirepass --x`); only `save` may be
            // followed by the next name at once (`--save --port 7000`).
            if let Some(first) = args.get(i)
                && values.is_empty()
                && !(first.starts_with("--") && name.eq_ignore_ascii_case("save"))
            {
                values.push(first.clone());
                i += 1;
            }
            while i < args.len() && !args[i].starts_with("--") {
                values.push(args[i].clone());
                i += 1;
            }
            self.set(name, &values).map_err(|error| LoadError::Flag {
                directive: name.to_string(),
                error,
            })?;
        }
        Ok(())
    }

    /// The `--help` text, built from the parameter table.
    pub fn usage() -> String {
        let mut s = String::from(
            "Usage: ringcast [/path/to/ringcast.conf] [--<parameter> <value>...]\n\nParameters (redis.conf names; flags override the file):\n",
        );
        let d = Config::default();
        for p in PARAMS {
            let _ = writeln!(
                s,
                "  --{:<28} {} (default: {:?})",
                p.name,
                p.help,
                (p.get)(&d)
            );
        }
        s
    }
}

/// Split a config line into words the way redis.conf is read (sdssplitargs):
/// whitespace separated, double quotes with escapes, single quotes literal.
fn split_line(line: &str) -> Result<Vec<String>, ConfigError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Vec::new());
    }
    let mut words = Vec::new();
    let mut chars = trimmed.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == first {
                    closed = true;
                    break;
                }
                if c == '\\' && first == '"' {
                    match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('t') => word.push('\t'),
                        Some('r') => word.push('\r'),
                        Some(o) => word.push(o),
                        None => return Err(ConfigError::Quotes),
                    }
                } else {
                    word.push(c);
                }
            }
            if !closed || chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(ConfigError::Quotes);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_redis() {
        let c = Config::default();
        assert_eq!(c.port, 6379);
        assert_eq!(c.maxclients, 10000);
        assert_eq!(c.output_limit_pubsub.hard, 32 << 20);
        assert_eq!(c.output_limit_pubsub.soft, 8 << 20);
        assert_eq!(c.output_limit_pubsub.soft_seconds, 60);
    }

    #[test]
    fn file_then_flags_override() {
        let mut c = Config::default();
        c.apply_file("# comment\nport 7000\nbind 127.0.0.1 ::1\nsave \"\"\n")
            .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        c.apply_args(&["--port".into(), "7001".into()]).unwrap();
        assert_eq!(c.port, 7001);
    }

    #[test]
    fn flag_value_may_start_with_dashes_as_in_redis() {
        let mut c = Config::default();
        let args = ["--requirepass", "--x", "--save", "--port", "7000"];
        c.apply_args(&args.map(String::from)).unwrap();
        assert_eq!(c.requirepass.as_deref(), Some("--x"));
        assert_eq!(c.port, 7000);
    }

    #[test]
    fn one_word_may_hold_a_whole_directive_as_in_redis() {
        let mut c = Config::default();
        let args = ["--port 7002", "--bind 127.0.0.1 ::1"];
        c.apply_args(&args.map(String::from)).unwrap();
        assert_eq!(c.port, 7002);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        let mut c = Config::default();
        let args = ["--bind 127.0.0.1", "::1", "--port", "7003"];
        c.apply_args(&args.map(String::from)).unwrap();
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"], "later words add values");
        assert_eq!(c.port, 7003);
    }

    #[test]
    fn unknown_directive_names_the_line() {
        let err = Config::default()
            .apply_file("port 1\nbogus 3\n")
            .unwrap_err();
        assert_eq!(
            err,
            LoadError::Line {
                line: 2,
                directive: "bogus".into(),
                text: "bogus 3".into(),
                error: ConfigError::Unknown("bogus".into()),
            }
        );
        let message = err.to_string();
        assert!(message.starts_with("line 2:"), "{message}");
        assert!(message.contains("bogus"), "{message}");
    }

    #[test]
    fn file_errors_carry_the_directive_and_why() {
        let err = Config::default()
            .apply_file("# ports\n\n  port \"7000\n")
            .unwrap_err();
        assert!(
            matches!(&err, LoadError::Line { line: 3, directive, error: ConfigError::Quotes, .. } if directive == "port"),
            "{err:?}"
        );
        let err = Config::default().apply_file("maxclients 0\n").unwrap_err();
        assert!(
            matches!(&err, LoadError::Line { line: 1, directive, error: ConfigError::Invalid { .. }, .. } if directive == "maxclients"),
            "{err:?}"
        );
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Config::default().apply_args(&args(&["port", "1"])),
            Err(LoadError::UnexpectedArgument("port".into()))
        );
        let err = Config::default()
            .apply_args(&args(&["--port", "x"]))
            .unwrap_err();
        assert!(
            matches!(&err, LoadError::Flag { directive, error: ConfigError::Invalid { .. } } if directive == "port"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "--port: invalid value for 'port': not a valid number"
        );
        assert_eq!(
            Config::default().apply_args(&args(&["--port"])),
            Err(LoadError::Flag {
                directive: "port".into(),
                error: ConfigError::MissingValue("port".into()),
            })
        );
    }

    #[test]
    fn output_limit_accepts_quoted_group_and_sizes() {
        let mut c = Config::default();
        c.apply_args(&[
            "--client-output-buffer-limit".into(),
            "pubsub 1mb 256kb 1".into(),
        ])
        .unwrap();
        assert_eq!(
            c.output_limit_pubsub,
            OutputLimit {
                hard: 1 << 20,
                soft: 256 << 10,
                soft_seconds: 1
            }
        );
        assert!(
            c.set("client-output-buffer-limit", &["pubsub 1mb".into()])
                .is_err()
        );
    }

    #[test]
    fn only_live_parameters_change_at_runtime() {
        let mut c = Config::default();
        assert!(c.set_live("maxclients", "5").is_ok());
        assert_eq!(c.maxclients, 5);
        assert_eq!(
            c.set_live("port", "1"),
            Err(ConfigError::Immutable("port".into()))
        );
        assert_eq!(
            c.set_live("nope", "1"),
            Err(ConfigError::Unknown("nope".into()))
        );
    }

    #[test]
    fn live_maxclients_must_fit_the_open_file_limit() {
        let mut c = Config {
            open_files: OpenFiles::new(|wanted| wanted.min(96)),
            ..Config::default()
        };
        assert_eq!(
            c.set_live("maxclients", "1000"),
            Err(ConfigError::OpenFilesLimit { try_with: 96 })
        );
        assert_eq!(
            ConfigError::OpenFilesLimit { try_with: 96 }.to_string(),
            "The operating system is not able to handle the specified number of clients, try with 96"
        );
        assert!(c.set_live("maxclients", "96").is_ok());
        assert_eq!(c.maxclients, 96);
        // Startup fits maxclients to the limit itself (lowering it, as Redis
        // does): files and flags are not checked.
        assert!(c.set("maxclients", &["5000".into()]).is_ok());
    }

    #[test]
    fn tls_parameters_have_redis_defaults_and_names() {
        let c = Config::default();
        let get = |name: &str| c.get_matching(name.as_bytes())[0].1.clone();
        assert_eq!(get("tls-port"), "0");
        assert_eq!(get("tls-auth-clients"), "yes");
        assert_eq!(get("tls-session-caching"), "yes");
        assert_eq!(get("tls-prefer-server-ciphers"), "no");
        assert_eq!(get("tls-session-cache-size"), "20480");
        assert_eq!(get("tls-session-cache-timeout"), "300");
        assert_eq!(get("tls-cert-file"), "");
        assert_eq!(get("tls-replication"), "no");
        assert_eq!(get("tls-handshake-timeout"), "10");
    }

    #[test]
    fn tls_parameters_load_from_file_and_flags() {
        let mut c = Config::default();
        c.apply_file(
            "tls-port 6380\ntls-cert-file /a.crt\ntls-key-file /a.key\ntls-auth-clients optional\ntls-protocols \"TLSv1.2 TLSv1.3\"\ntls-dh-params-file /x\n",
        )
        .unwrap();
        assert_eq!(c.tls.port, 6380);
        assert_eq!(c.tls.cert_file, "/a.crt");
        assert_eq!(c.tls.auth_clients, TlsAuthClients::Optional);
        assert_eq!(c.tls.protocols, "TLSv1.2 TLSv1.3");
        let args = [
            "--tls-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
            "--port",
            "0",
        ];
        c.apply_args(&args.map(String::from)).unwrap();
        assert_eq!(c.tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
        assert_eq!(c.port, 0);
        assert!(c.set("tls-auth-clients", &["maybe".into()]).is_err());
        assert_eq!(
            c.set_live("tls-port", "1"),
            Err(ConfigError::Immutable("tls-port".into()))
        );
    }

    #[test]
    fn tls_changes_are_checked_once_all_are_set_and_only_with_tls_on() {
        let checked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = checked.clone();
        let mut c = Config {
            tls_check: TlsCheck::new(move |c| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if c.tls.cert_file == "bad" {
                    Err("Failed to load certificate: bad".into())
                } else {
                    Ok(())
                }
            }),
            ..Config::default()
        };
        c.set_live("tls-cert-file", "bad").unwrap();
        // TLS off: nothing to load, as in Redis.
        assert_eq!(c.apply_live(&["tls-cert-file"]), Ok(()));
        c.tls.port = 6380;
        assert_eq!(
            c.apply_live(&["timeout", "TLS-CERT-FILE", "tls-key-file"]),
            Err(("tls-cert-file", ConfigError::Tls))
        );
        assert_eq!(
            ConfigError::Tls.to_string(),
            "Unable to update TLS configuration. Check server logs."
        );
        c.set_live("tls-cert-file", "good").unwrap();
        assert_eq!(c.apply_live(&["tls-cert-file", "tls-key-file"]), Ok(()));
        // Not the TLS context: nothing to check.
        assert_eq!(c.apply_live(&["tls-handshake-timeout", "timeout"]), Ok(()));
        assert_eq!(checked.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn protected_mode_refuses_only_non_loopback_clients_without_password() {
        let c = Config::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for local in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!c.protected_mode_denies(ip(local)), "{local} is loopback");
        }
        for remote in [
            "10.0.0.1",
            "192.168.1.7",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "0.0.0.0",
        ] {
            assert!(
                c.protected_mode_denies(ip(remote)),
                "{remote} is not loopback"
            );
        }
        let mut with_password = Config::default();
        with_password.set_live("requirepass", "secret").unwrap();
        assert!(!with_password.protected_mode_denies(ip("10.0.0.1")));
        let mut off = Config::default();
        off.set_live("protected-mode", "no").unwrap();
        assert!(!off.protected_mode_denies(ip("10.0.0.1")));
        assert_eq!(
            off.get_matching(b"protected-mode"),
            vec![("protected-mode", "no".to_string())]
        );
        assert!(off.set_live("protected-mode", "maybe").is_err());
    }

    #[test]
    fn protected_mode_message_is_redis_7_2_text() {
        let m = crate::errors::PROTECTED_MODE;
        assert!(m.starts_with("DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. "));
        assert!(m.contains(" 4) Set up an authentication password for the default user. "));
        assert!(
            m.ends_with("in order for the server to start accepting connections from the outside.")
        );
        // Redis's compiled literal is 1067 bytes: `-`, the text, CRLF and NUL.
        assert_eq!(m.len() + 4, 1067);
    }

    #[test]
    fn memory_sizes_use_redis_units() {
        assert_eq!(parse_memory("1gb"), Ok(1 << 30));
        assert_eq!(parse_memory("8MB"), Ok(8 << 20));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert_eq!(parse_memory("12"), Ok(12));
        assert!(parse_memory("x").is_err());
    }

    #[test]
    fn quoted_config_values_keep_spaces() {
        assert_eq!(
            split_line(r#"client-output-buffer-limit "pubsub 1 2 3""#).unwrap(),
            vec!["client-output-buffer-limit", "pubsub 1 2 3"]
        );
        assert_eq!(
            split_line("requirepass 'a b'").unwrap(),
            vec!["requirepass", "a b"]
        );
        assert!(split_line("x \"open").is_err());
    }
}
