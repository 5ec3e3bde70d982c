//! INFO: Redis 7.2's sections, field names, order and text format, filled
//! with what ringcast knows. Fields that only make sense with a keyspace,
//! persistence or replication are present with the values an empty,
//! non-persistent primary reports, so dashboards and client libraries that
//! read them find them. Process figures (memory, CPU, rates) come from the
//! server's sampler through `Shared::process`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Ctx, Exec};
use crate::acl::LogReason;
use crate::registry::Namespace;
use crate::resp::args::ArgList;
use crate::resp::encode;
use crate::shared::Shared;
use crate::stats::{Disconnect, bytes_to_human, format_cpu};

/// Every section, in the order Redis prints them; `ringcast` (our own, like
/// a module's section) comes last.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "ringcast",
];

/// What `INFO` without arguments (or `INFO default`) prints.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "ringcast",
];

/// The sections an INFO request selects (Redis's `genInfoSectionDict`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    all: bool,
    names: Vec<String>,
}

impl Selection {
    pub(crate) fn parse(args: ArgList<'_>) -> Selection {
        let mut sel = Selection {
            all: false,
            names: Vec::new(),
        };
        if args.is_empty() {
            sel.names = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
        }
        for a in args {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            match name.as_str() {
                "default" => sel
                    .names
                    .extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
                "all" | "everything" => sel.all = true,
                // Redis's alias for the modules section.
                "module_list" => sel.names.push("modules".into()),
                _ => sel.names.push(name),
            }
        }
        sel
    }

    fn wants(&self, section: &str) -> bool {
        self.all || self.names.iter().any(|n| n == section)
    }

    /// The sections to print, in Redis's order, each once.
    pub(crate) fn sections(&self) -> impl Iterator<Item = &'static str> + '_ {
        SECTIONS.iter().copied().filter(|s| self.wants(s))
    }
}

/// INFO [section ...]: a bulk string (RESP2) or verbatim string (RESP3).
/// Unknown sections add nothing, so `INFO nosuch` is an empty string.
pub(super) fn info(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    let text = render(ctx.shared, &Selection::parse(args.slice(1..)));
    let proto = ctx.session.proto;
    encode::verbatim(ctx.reply, b"txt", text.as_bytes(), proto);
    Exec::Done
}

pub(crate) fn render(sh: &Shared, sel: &Selection) -> String {
    let mut t = String::new();
    for section in sel.sections() {
        if !t.is_empty() {
            t.push_str("\r\n");
        }
        section_text(sh, section, &mut t);
    }
    t
}

fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn section_text(sh: &Shared, section: &str, t: &mut String) {
    match section {
        "server" => server(sh, t),
        "clients" => clients(sh, t),
        "memory" => memory(sh, t),
        "persistence" => persistence(sh, t),
        "stats" => stats(sh, t),
        "replication" => replication(sh, t),
        "cpu" => cpu(sh, t),
        "modules" => t.push_str("# Modules\r\n"),
        // Per-command figures are not kept; the headers are there so
        // parsers that expect the sections find them.
        "commandstats" => t.push_str("# Commandstats\r\n"),
        "latencystats" => t.push_str("# Latencystats\r\n"),
        "errorstats" => {
            t.push_str("# Errorstats\r\n");
            for (code, n) in sh.errors.snapshot() {
                let _ = write!(t, "errorstat_{code}:count={n}\r\n");
            }
        }
        "cluster" => {
            let on = u8::from(sh.cluster.enabled());
            let _ = write!(t, "# Cluster\r\ncluster_enabled:{on}\r\n");
        }
        "keyspace" => t.push_str("# Keyspace\r\n"),
        "ringcast" => ringcast(sh, t),
        _ => {}
    }
}

fn server(sh: &Shared, t: &mut String) {
    let i = &sh.info;
    let up = i.started.elapsed().as_secs();
    let now = unix_now();
    let hz = sh.config.load().hz;
    let os = sh
        .process
        .os
        .get()
        .cloned()
        .unwrap_or_else(|| format!("{} {}", std::env::consts::OS, std::env::consts::ARCH));
    let _ = write!(
        t,
        "# Server\r\n\
         redis_version:{}\r\n\
         ringcast_version:{}\r\n\
         redis_git_sha1:00000000\r\n\
         redis_git_dirty:0\r\n\
         redis_build_id:0\r\n\
         redis_mode:standalone\r\n\
         os:{os}\r\n\
         arch_bits:{}\r\n\
         monotonic_clock:POSIX clock_gettime\r\n\
         multiplexing_api:{}\r\n\
         atomicvar_api:c11-builtin\r\n\
         gcc_version:0.0.0\r\n\
         process_id:{}\r\n\
         process_supervised:{}\r\n\
         run_id:{}\r\n\
         tcp_port:{}\r\n\
         server_time_usec:{}\r\n\
         uptime_in_seconds:{up}\r\n\
         uptime_in_days:{}\r\n\
         hz:{hz}\r\n\
         configured_hz:{hz}\r\n\
         lru_clock:{}\r\n\
         executable:{}\r\n\
         config_file:{}\r\n\
         io_threads_active:0\r\n",
        crate::REDIS_VERSION,
        crate::VERSION,
        usize::BITS,
        i.io_backend,
        i.pid,
        sh.process.supervised.get().copied().unwrap_or("no"),
        i.run_id,
        sh.config.load().port,
        now.as_micros(),
        up / 86400,
        now.as_secs() & ((1 << 24) - 1),
        i.executable,
        i.config_file,
    );
}

fn clients(sh: &Shared, t: &mut String) {
    let config = sh.config.load();
    let max = |f: fn(&crate::stats::WorkerStats) -> &std::sync::atomic::AtomicU64| {
        sh.stats
            .iter()
            .map(|s| f(s).load(Relaxed))
            .max()
            .unwrap_or(0)
    };
    let _ = write!(
        t,
        "# Clients\r\n\
         connected_clients:{}\r\n\
         cluster_connections:0\r\n\
         maxclients:{}\r\n\
         client_recent_max_input_buffer:{}\r\n\
         client_recent_max_output_buffer:{}\r\n\
         blocked_clients:0\r\n\
         tracking_clients:0\r\n\
         pubsub_clients:{}\r\n\
         watching_clients:0\r\n\
         clients_in_timeout_table:0\r\n\
         total_watched_keys:0\r\n\
         total_blocking_keys:0\r\n\
         total_blocking_keys_on_nokey:0\r\n",
        sh.connected_clients(),
        config.maxclients,
        max(|s| &s.max_input_buffer),
        max(|s| &s.max_output_buffer),
        sh.total(|s| &s.pubsub_clients),
    );
}

fn memory(sh: &Shared, t: &mut String) {
    let p = &sh.process;
    let used = p.used_memory.load(Relaxed);
    // INFO may run between samples: keep peak >= current, as Redis does.
    let peak = p.used_memory_peak.fetch_max(used, Relaxed).max(used);
    let rss = p.rss.load(Relaxed);
    let startup = p.used_memory_startup.load(Relaxed);
    let system = p.total_system_memory.load(Relaxed);
    let clients = sh.total(|s| &s.output_memory);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let allocator = p.allocator.get().map_or("libc", |s| s.as_str());
    let _ = write!(
        t,
        "# Memory\r\n\
         used_memory:{used}\r\n\
         used_memory_human:{}\r\n\
         used_memory_rss:{rss}\r\n\
         used_memory_rss_human:{}\r\n\
         used_memory_peak:{peak}\r\n\
         used_memory_peak_human:{}\r\n\
         used_memory_peak_perc:{:.2}%\r\n\
         used_memory_overhead:{used}\r\n\
         used_memory_startup:{startup}\r\n\
         used_memory_dataset:0\r\n\
         used_memory_dataset_perc:0.00%\r\n\
         allocator_allocated:{used}\r\n\
         allocator_active:{used}\r\n\
         allocator_resident:{rss}\r\n\
         total_system_memory:{system}\r\n\
         total_system_memory_human:{}\r\n\
         used_memory_lua:0\r\n\
         used_memory_vm_eval:0\r\n\
         used_memory_lua_human:0B\r\n\
         used_memory_scripts_eval:0\r\n\
         number_of_cached_scripts:0\r\n\
         number_of_functions:0\r\n\
         number_of_libraries:0\r\n\
         used_memory_vm_functions:0\r\n\
         used_memory_vm_total:0\r\n\
         used_memory_vm_total_human:0B\r\n\
         used_memory_functions:0\r\n\
         used_memory_scripts:0\r\n\
         used_memory_scripts_human:0B\r\n\
         maxmemory:0\r\n\
         maxmemory_human:0B\r\n\
         maxmemory_policy:noeviction\r\n\
         allocator_frag_ratio:1.00\r\n\
         allocator_frag_bytes:0\r\n\
         allocator_rss_ratio:{:.2}\r\n\
         allocator_rss_bytes:{}\r\n\
         rss_overhead_ratio:1.00\r\n\
         rss_overhead_bytes:0\r\n\
         mem_fragmentation_ratio:{:.2}\r\n\
         mem_fragmentation_bytes:{}\r\n\
         mem_not_counted_for_evict:0\r\n\
         mem_replication_backlog:0\r\n\
         mem_total_replication_buffers:0\r\n\
         mem_clients_slaves:0\r\n\
         mem_clients_normal:{clients}\r\n\
         mem_cluster_links:0\r\n\
         mem_aof_buffer:0\r\n\
         mem_allocator:{allocator}\r\n\
         active_defrag_running:0\r\n\
         lazyfree_pending_objects:0\r\n\
         lazyfreed_objects:0\r\n",
        bytes_to_human(used),
        bytes_to_human(rss),
        bytes_to_human(peak),
        ratio(used, peak) * 100.0,
        bytes_to_human(system),
        ratio(rss, used),
        rss as i64 - used as i64,
        ratio(rss, used),
        rss as i64 - used as i64,
    );
}

fn persistence(sh: &Shared, t: &mut String) {
    let started = unix_now()
        .as_secs()
        .saturating_sub(sh.info.started.elapsed().as_secs());
    let _ = write!(
        t,
        "# Persistence\r\n\
         loading:0\r\n\
         async_loading:0\r\n\
         current_cow_peak:0\r\n\
         current_cow_size:0\r\n\
         current_cow_size_age:0\r\n\
         current_fork_perc:0.00\r\n\
         current_save_keys_processed:0\r\n\
         current_save_keys_total:0\r\n\
         rdb_changes_since_last_save:0\r\n\
         rdb_bgsave_in_progress:0\r\n\
         rdb_last_save_time:{started}\r\n\
         rdb_last_bgsave_status:ok\r\n\
         rdb_last_bgsave_time_sec:-1\r\n\
         rdb_current_bgsave_time_sec:-1\r\n\
         rdb_saves:0\r\n\
         rdb_last_cow_size:0\r\n\
         rdb_last_load_keys_expired:0\r\n\
         rdb_last_load_keys_loaded:0\r\n\
         aof_enabled:0\r\n\
         aof_rewrite_in_progress:0\r\n\
         aof_rewrite_scheduled:0\r\n\
         aof_last_rewrite_time_sec:-1\r\n\
         aof_current_rewrite_time_sec:-1\r\n\
         aof_last_bgrewrite_status:ok\r\n\
         aof_rewrites:0\r\n\
         aof_rewrites_consecutive_failures:0\r\n\
         aof_last_write_status:ok\r\n\
         aof_last_cow_size:0\r\n\
         module_fork_in_progress:0\r\n\
         module_fork_last_cow_size:0\r\n"
    );
}

fn stats(sh: &Shared, t: &mut String) {
    let p = &sh.process;
    let kbps = |bps: u64| bps as f64 / 1024.0;
    let _ = write!(
        t,
        "# Stats\r\n\
         total_connections_received:{}\r\n\
         total_commands_processed:{}\r\n\
         instantaneous_ops_per_sec:{}\r\n\
         total_net_input_bytes:{}\r\n\
         total_net_output_bytes:{}\r\n\
         total_net_repl_input_bytes:0\r\n\
         total_net_repl_output_bytes:0\r\n\
         instantaneous_input_kbps:{:.2}\r\n\
         instantaneous_output_kbps:{:.2}\r\n\
         instantaneous_input_repl_kbps:0.00\r\n\
         instantaneous_output_repl_kbps:0.00\r\n\
         rejected_connections:{}\r\n\
         sync_full:0\r\n\
         sync_partial_ok:0\r\n\
         sync_partial_err:0\r\n\
         expired_keys:0\r\n\
         expired_stale_perc:0.00\r\n\
         expired_time_cap_reached_count:0\r\n\
         expire_cycle_cpu_milliseconds:0\r\n\
         evicted_keys:0\r\n\
         evicted_clients:0\r\n\
         total_eviction_exceeded_time:0\r\n\
         current_eviction_exceeded_time:0\r\n\
         keyspace_hits:0\r\n\
         keyspace_misses:0\r\n\
         pubsub_channels:{}\r\n\
         pubsub_patterns:{}\r\n\
         pubsubshard_channels:{}\r\n\
         latest_fork_usec:0\r\n\
         total_forks:0\r\n\
         migrate_cached_sockets:0\r\n\
         slave_expires_tracked_keys:0\r\n\
         active_defrag_hits:0\r\n\
         active_defrag_misses:0\r\n\
         active_defrag_key_hits:0\r\n\
         active_defrag_key_misses:0\r\n\
         total_active_defrag_time:0\r\n\
         current_active_defrag_time:0\r\n\
         tracking_total_keys:0\r\n\
         tracking_total_items:0\r\n\
         tracking_total_prefixes:0\r\n\
         unexpected_error_replies:0\r\n\
         total_error_replies:{}\r\n\
         dump_payload_sanitizations:0\r\n\
         total_reads_processed:{}\r\n\
         total_writes_processed:{}\r\n\
         io_threaded_reads_processed:0\r\n\
         io_threaded_writes_processed:0\r\n\
         client_query_buffer_limit_disconnections:{}\r\n\
         client_output_buffer_limit_disconnections:{}\r\n\
         reply_buffer_shrinks:0\r\n\
         reply_buffer_expands:0\r\n\
         acl_access_denied_auth:{}\r\n\
         acl_access_denied_cmd:{}\r\n\
         acl_access_denied_key:{}\r\n\
         acl_access_denied_channel:{}\r\n\
         total_messages_published:{}\r\n\
         total_messages_delivered:{}\r\n",
        sh.since_reset(|s| &s.connections_received),
        sh.since_reset(|s| &s.commands_processed),
        p.ops_per_sec.load(Relaxed),
        sh.since_reset(|s| &s.net_input_bytes),
        sh.since_reset(|s| &s.net_output_bytes),
        kbps(p.input_bps.load(Relaxed)),
        kbps(p.output_bps.load(Relaxed)),
        sh.rejected_since_reset(),
        sh.registry.channel_count(Namespace::Global),
        sh.registry.pattern_count(),
        sh.registry.channel_count(Namespace::Shard),
        sh.since_reset(|s| &s.error_replies),
        sh.since_reset(|s| &s.reads_processed),
        sh.since_reset(|s| &s.writes_processed),
        sh.since_reset(|s| s.disconnections(Disconnect::QueryBufferLimit)),
        sh.since_reset(|s| s.disconnections(Disconnect::OutputBufferLimit)),
        sh.acl.denied(LogReason::Auth),
        sh.acl.denied(LogReason::Command),
        sh.acl.denied(LogReason::Key),
        sh.acl.denied(LogReason::Channel),
        sh.since_reset(|s| &s.messages_published),
        sh.since_reset(|s| &s.messages_delivered),
    );
    // ringcast's own: TLS handshakes that failed or timed out.
    let _ = write!(
        t,
        "tls_handshake_failures:{}\r\n",
        sh.tls_failures_since_reset()
    );
}

fn replication(sh: &Shared, t: &mut String) {
    let _ = write!(
        t,
        "# Replication\r\n\
         role:master\r\n\
         connected_slaves:0\r\n\
         master_failover_state:no-failover\r\n\
         master_replid:{}\r\n\
         master_replid2:0000000000000000000000000000000000000000\r\n\
         master_repl_offset:0\r\n\
         second_repl_offset:-1\r\n\
         repl_backlog_active:0\r\n\
         repl_backlog_size:1048576\r\n\
         repl_backlog_first_byte_offset:0\r\n\
         repl_backlog_histlen:0\r\n",
        sh.info.run_id,
    );
}

fn cpu(sh: &Shared, t: &mut String) {
    let p = &sh.process;
    let _ = write!(
        t,
        "# CPU\r\n\
         used_cpu_sys:{}\r\n\
         used_cpu_user:{}\r\n\
         used_cpu_sys_children:{}\r\n\
         used_cpu_user_children:{}\r\n",
        format_cpu(p.cpu_sys_us.load(Relaxed)),
        format_cpu(p.cpu_user_us.load(Relaxed)),
        format_cpu(p.cpu_sys_children_us.load(Relaxed)),
        format_cpu(p.cpu_user_children_us.load(Relaxed)),
    );
}

fn ringcast(sh: &Shared, t: &mut String) {
    let i = &sh.info;
    let config = sh.config.load();
    let latency = sh.latency_since_reset();
    let bound = |q| {
        latency
            .quantile_bound_ns(q)
            .map_or_else(|| "-1".to_string(), |ns| (ns / 1000).to_string())
    };
    let _ = write!(
        t,
        "# Ringcast\r\n\
         io_backend:{}\r\n\
         workers:{}\r\n\
         ring_capacity:{}\r\n\
         ring_bytes:{}\r\n\
         idle_timeout_disconnections:{}\r\n\
         paused_publishers:{}\r\n\
         connections_moved:{}\r\n\
         delivery_latency_count:{}\r\n\
         delivery_latency_p50_usec_le:{}\r\n\
         delivery_latency_p99_usec_le:{}\r\n",
        i.io_backend,
        i.workers,
        config.ring_capacity,
        config.ring_bytes,
        sh.since_reset(|s| s.disconnections(Disconnect::IdleTimeout)),
        sh.total(|s| &s.paused_publishers),
        sh.since_reset(|s| &s.connections_moved),
        latency.count(),
        bound(0.5),
        bound(0.99),
    );
    for (w, s) in sh.stats.iter().enumerate() {
        let _ = write!(
            t,
            "worker{w}:clients={},pubsub_clients={},commands={},published={},delivered={},inbound_depth={},ring_bytes_out={},backlog={},backlog_pauses={},paused_publishers={},output_bytes={},used_cpu_sys={},used_cpu_user={}\r\n",
            s.connected_clients.load(Relaxed),
            s.pubsub_clients.load(Relaxed),
            sh.worker_since_reset(w, |s| &s.commands_processed),
            sh.worker_since_reset(w, |s| &s.messages_published),
            sh.worker_since_reset(w, |s| &s.messages_delivered),
            s.inbound_depth.load(Relaxed),
            s.ring_bytes_out.load(Relaxed),
            s.output_backlog.load(Relaxed),
            sh.worker_since_reset(w, |s| &s.backlog_pauses),
            s.paused_publishers.load(Relaxed),
            s.output_memory.load(Relaxed),
            format_cpu(s.cpu_sys_us.load(Relaxed)),
            format_cpu(s.cpu_user_us.load(Relaxed)),
        );
    }
    if sh.cluster.enabled() {
        let _ = write!(
            t,
            "cluster_forward_dropped:{}\r\n",
            sh.cluster.forward_dropped()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(args: &[&str]) -> Vec<&'static str> {
        let args: crate::resp::args::Args = args.iter().map(|a| a.as_bytes()).collect();
        Selection::parse(args.list()).sections().collect()
    }

    #[test]
    fn no_argument_prints_the_default_sections_in_redis_order() {
        assert_eq!(sel(&[]), DEFAULT_SECTIONS);
        assert_eq!(sel(&["default"]), DEFAULT_SECTIONS);
    }

    #[test]
    fn all_and_everything_add_the_per_command_sections() {
        let all = sel(&["all"]);
        assert!(all.contains(&"commandstats") && all.contains(&"latencystats"));
        assert_eq!(all, SECTIONS);
        assert_eq!(sel(&["EVERYTHING"]), SECTIONS);
        assert!(!DEFAULT_SECTIONS.contains(&"commandstats"));
    }

    #[test]
    fn named_sections_print_once_in_redis_order_whatever_the_case() {
        assert_eq!(
            sel(&["keyspace", "CPU", "server", "cpu"]),
            ["server", "cpu", "keyspace"]
        );
        assert_eq!(sel(&["module_list"]), ["modules"]);
    }

    #[test]
    fn unknown_sections_select_nothing() {
        assert!(sel(&["nosuch"]).is_empty());
        assert_eq!(sel(&["nosuch", "cluster"]), ["cluster"]);
    }
}
