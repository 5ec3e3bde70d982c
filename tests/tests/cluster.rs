//! Cluster mode (`cluster-enabled yes`): a single node that owns every slot
//! (CLUSTER's replies, routing errors, nodes.conf across a restart, the
//! `sunsubscribe` push when a slot leaves), then several nodes joined by
//! gossip (MEET, `redis-cli --cluster create` and `check`, failover after
//! `kill -9`).
//!
//! The single-node tests run against `redis-server --cluster-enabled yes`
//! too (`RINGCAST_TEST_TARGET=redis`); the multi-node ones need ringcast's
//! failover (Redis fails over only to replicas) and run against ringcast.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringcast_tests::resp::Frame;
use ringcast_tests::{Backend, Opts, RawConn, Server, eventually, free_port, ringcast_only};

/// A directory of its own for a test's nodes.conf files, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "ringcast-cluster-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Dir(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A cluster node with its nodes.conf at `conf`, a bus port of its own and
/// the given node timeout.
fn node(conf: &str, timeout_ms: u64) -> Server {
    node_on_bus(conf, timeout_ms, bus_port())
}

/// A port for a node's bus: free for gossip (UDP) as well as TCP, and
/// never handed out twice in this process, whose tests run in parallel.
/// Taken below Linux's ephemeral range (32768 and up by default), so that
/// no outgoing connection can take it between here and the node binding it.
fn bus_port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    const LOW: u32 = 20000;
    const SPAN: u32 = 12000;
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let seed = std::process::id().wrapping_mul(7919);
    for n in 0.. {
        let n = (taken.len() as u32).wrapping_add(n);
        let port = (LOW + seed.wrapping_add(n.wrapping_mul(104_729)) % SPAN) as u16;
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free && !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
    unreachable!("some port in {LOW}..{} is free", LOW + SPAN)
}

fn node_on_bus(conf: &str, timeout_ms: u64, bus_port: u16) -> Server {
    let opts = Opts::new(Backend::Epoll)
        .threads(1)
        .common_arg("cluster-enabled", "yes")
        .common_arg("cluster-config-file", conf)
        .common_arg("cluster-port", &bus_port.to_string())
        .common_arg("cluster-node-timeout", &timeout_ms.to_string());
    Server::start(opts)
}

fn text(frame: &Frame) -> String {
    frame.text()
}

fn cluster_info(c: &mut RawConn) -> String {
    text(&c.cmd(&["CLUSTER", "INFO"]))
}

fn myid(c: &mut RawConn) -> String {
    text(&c.cmd(&["CLUSTER", "MYID"]))
}

/// A single node that owns every slot.
fn single_node(dir: &Dir) -> Server {
    let server = node(&dir.file("nodes.conf"), 15000);
    let mut c = server.conn();
    c.cmd_expect(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"], b"+OK\r\n");
    eventually("cluster_state:ok", || {
        cluster_info(&mut c).contains("cluster_state:ok")
    });
    server
}

#[test]
fn single_node_with_every_slot_serves_sharded_pubsub() {
    let dir = Dir::new("serve");
    let server = single_node(&dir);
    let mut sub = server.conn();
    sub.sub("SSUBSCRIBE", &["news"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("SPUBLISH", "news", "hello", 1);
    sub.expect_smessage("news", "hello");
    // Hash tags put channels in one slot.
    sub.sub("SSUBSCRIBE", &["{user1}.a", "{user1}.b"], &[2, 3]);
}

#[test]
fn cluster_introspection_has_redis_shapes() {
    let dir = Dir::new("shapes");
    let server = single_node(&dir);
    let mut c = server.conn();
    let id = myid(&mut c);
    assert_eq!(id.len(), 40);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let info = cluster_info(&mut c);
    for line in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_slots_ok:16384",
        "cluster_known_nodes:1",
        "cluster_size:1",
    ] {
        assert!(info.contains(line), "{line} in {info}");
    }
    let nodes = text(&c.cmd(&["CLUSTER", "NODES"]));
    let fields: Vec<&str> = nodes.trim_end().split(' ').collect();
    assert_eq!(fields[0], id);
    assert_eq!(fields[2], "myself,master");
    assert_eq!(fields[8], "0-16383");
    let slots = c.cmd(&["CLUSTER", "SLOTS"]);
    let range = &slots.items()[0];
    assert_eq!(range.items()[0].int(), 0);
    assert_eq!(range.items()[1].int(), 16383);
    assert_eq!(range.items()[2].items()[1].int(), i64::from(server.port()));
    assert_eq!(text(&range.items()[2].items()[2]), id);
    let shards = c.cmd(&["CLUSTER", "SHARDS"]);
    assert_eq!(shards.items().len(), 1);
    c.cmd_expect(&["CLUSTER", "KEYSLOT", "foo"], b":12182\r\n");
    c.cmd_expect(&["CLUSTER", "KEYSLOT", "{user1}.x"], b":8106\r\n");
    let info = server.info("cluster");
    assert_eq!(info.get("cluster_enabled").map(String::as_str), Some("1"));
}

#[test]
fn channels_in_different_slots_are_crossslot() {
    let dir = Dir::new("crossslot");
    let server = single_node(&dir);
    let mut c = server.conn();
    c.cmd_expect(
        &["SSUBSCRIBE", "a", "b"],
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
    );
    c.cmd_expect(
        &["SELECT", "1"],
        b"-ERR SELECT is not allowed in cluster mode\r\n",
    );
    c.cmd_expect(&["SELECT", "0"], b"+OK\r\n");
    c.cmd_expect(&["READONLY"], b"+OK\r\n");
    c.cmd_expect(&["READWRITE"], b"+OK\r\n");
    c.cmd_expect(&["ASKING"], b"+OK\r\n");
}

#[test]
fn a_node_without_slots_is_down_for_sharded_pubsub() {
    let dir = Dir::new("down");
    let server = node(&dir.file("nodes.conf"), 15000);
    let mut c = server.conn();
    assert!(cluster_info(&mut c).contains("cluster_state:fail"));
    c.cmd_expect(
        &["SPUBLISH", "a", "x"],
        b"-CLUSTERDOWN Hash slot not served\r\n",
    );
    c.cmd_expect(
        &["SSUBSCRIBE", "a"],
        b"-CLUSTERDOWN Hash slot not served\r\n",
    );
    // Without channels SUNSUBSCRIBE always runs.
    c.cmd_expect(
        &["SUNSUBSCRIBE"],
        b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n",
    );
}

#[test]
fn nodes_conf_keeps_id_and_slots_across_a_restart() {
    let dir = Dir::new("restart");
    let conf = dir.file("nodes.conf");
    let server = node(&conf, 15000);
    let mut c = server.conn();
    c.cmd_expect(
        &["CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "300"],
        b"+OK\r\n",
    );
    let id = myid(&mut c);
    let saved = std::fs::read_to_string(&conf).expect("nodes.conf written");
    assert!(saved.contains(&id), "{saved}");
    drop(c);
    drop(server);
    let server = node(&conf, 15000);
    let mut c = server.conn();
    assert_eq!(myid(&mut c), id);
    let nodes = text(&c.cmd(&["CLUSTER", "NODES"]));
    assert!(nodes.trim_end().ends_with(" 0-100 200-300"), "{nodes}");
}

#[test]
fn losing_a_slot_unsubscribes_its_shard_channel_subscribers() {
    let dir = Dir::new("lost");
    let server = single_node(&dir);
    let mut sub = server.conn();
    // `foo` is in slot 12182, `bar` in 5061.
    sub.sub("SSUBSCRIBE", &["foo"], &[1]);
    sub.sub("SSUBSCRIBE", &["bar"], &[2]);
    let mut admin = server.conn();
    admin.cmd_expect(&["CLUSTER", "DELSLOTS", "12182"], b"+OK\r\n");
    sub.expect(b"*3\r\n$12\r\nsunsubscribe\r\n$3\r\nfoo\r\n:1\r\n");
    admin.cmd_expect(
        &["SPUBLISH", "foo", "x"],
        b"-CLUSTERDOWN Hash slot not served\r\n",
    );
}

#[test]
fn cluster_commands_answer_disabled_without_cluster_mode() {
    let server = Server::start(Opts::new(Backend::Epoll).threads(1));
    let mut c = server.conn();
    let disabled = b"-ERR This instance has cluster support disabled\r\n";
    c.cmd_expect(&["CLUSTER", "INFO"], disabled);
    c.cmd_expect(&["READONLY"], disabled);
    c.cmd_expect(&["ASKING"], disabled);
    c.cmd_expect(
        &["SSUBSCRIBE", "a", "b"],
        b"*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$1\r\nb\r\n:2\r\n",
    );
}

// ---- several nodes ------------------------------------------------------

const TIMEOUT_MS: u64 = 1500;

/// Three nodes and their bus ports.
fn three_nodes(dir: &Dir) -> (Vec<Server>, Vec<u16>) {
    let buses: Vec<u16> = (0..3).map(|_| bus_port()).collect();
    let servers = buses
        .iter()
        .enumerate()
        .map(|(i, bus)| node_on_bus(&dir.file(&format!("nodes-{i}.conf")), TIMEOUT_MS, *bus))
        .collect();
    (servers, buses)
}

/// Within a generous bound, as gossip on a busy machine allows.
fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "not true after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all_ok(servers: &[Server]) -> bool {
    servers
        .iter()
        .all(|s| cluster_info(&mut s.conn()).contains("cluster_state:ok"))
}

#[test]
fn three_nodes_meet_and_route_sharded_pubsub() {
    ringcast_only!("a cluster of ringcast nodes");
    let dir = Dir::new("three");
    let (servers, _) = joined(&dir, 0);
    // `foo` is in slot 12182: the third node's.
    let owner = &servers[2];
    let mut sub = owner.conn();
    sub.sub("SSUBSCRIBE", &["foo"], &[1]);
    owner.conn().publish("SPUBLISH", "foo", "hi", 1);
    sub.expect_smessage("foo", "hi");
    let moved = format!("-MOVED 12182 127.0.0.1:{}\r\n", owner.port());
    servers[0]
        .conn()
        .cmd_expect(&["SPUBLISH", "foo", "x"], moved.as_bytes());
    for s in &servers {
        let known = cluster_info(&mut s.conn());
        assert!(known.contains("cluster_known_nodes:3"), "{known}");
    }
}

fn redis_cli(args: &[&str]) -> (bool, String) {
    match Command::new("redis-cli").args(args).output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ),
        Err(e) => (false, format!("cannot run redis-cli: {e}")),
    }
}

#[test]
fn redis_cli_creates_and_checks_a_cluster_and_a_master_fails_over() {
    ringcast_only!("failover without replicas is ringcast's");
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("skipped: no redis-cli");
        return;
    }
    let dir = Dir::new("create");
    let (mut servers, _) = three_nodes(&dir);
    let addrs: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.push("--cluster-yes");
    let (ok, out) = redis_cli(&args);
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    wait_for(
        "cluster_state:ok everywhere",
        Duration::from_secs(30),
        || all_ok(&servers),
    );
    let (ok, out) = redis_cli(&["--cluster", "check", &addrs[0]]);
    assert!(ok, "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    // `foo` (slot 12182) belongs to the third master: kill it.
    let victim = servers.pop().expect("three servers");
    let victim_id = myid(&mut victim.conn());
    victim.signal(libc::SIGKILL);
    let _ = victim.wait_exit();
    let limit = Duration::from_millis(TIMEOUT_MS * 2) + Duration::from_secs(20);
    wait_for("a survivor owns slot 12182", limit, || {
        servers.iter().all(|s| {
            let slots = s.conn().cmd(&["CLUSTER", "SLOTS"]);
            slots.items().iter().any(|r| {
                let (start, end) = (r.items()[0].int(), r.items()[1].int());
                (start..=end).contains(&12182) && text(&r.items()[2].items()[2]) != victim_id
            })
        })
    });
    let heir = servers
        .iter()
        // The other survivor answers MOVED to it.
        .find(|s| matches!(s.conn().cmd(&["SPUBLISH", "foo", "x"]), Frame::Integer(0)))
        .expect("one survivor serves slot 12182");
    let mut sub = heir.conn();
    sub.sub("SSUBSCRIBE", &["foo"], &[1]);
    heir.conn().publish("SPUBLISH", "foo", "after", 1);
    sub.expect_smessage("foo", "after");
}

/// Three masters splitting the slots as `redis-cli --cluster create` does,
/// joined by MEET, then `extra` more nodes met but given no slots; each
/// with its bus port.
fn joined(dir: &Dir, extra: usize) -> (Vec<Server>, Vec<u16>) {
    joined_with_timeout(dir, extra, TIMEOUT_MS)
}

/// [`joined`] with another `cluster-node-timeout`.
fn joined_with_timeout(dir: &Dir, extra: usize, timeout_ms: u64) -> (Vec<Server>, Vec<u16>) {
    let buses: Vec<u16> = (0..3 + extra).map(|_| bus_port()).collect();
    let servers: Vec<Server> = buses
        .iter()
        .enumerate()
        .map(|(i, bus)| node_on_bus(&dir.file(&format!("nodes-{i}.conf")), timeout_ms, *bus))
        .collect();
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (s, (start, end)) in servers.iter().zip(ranges) {
        s.conn()
            .cmd_expect(&["CLUSTER", "ADDSLOTSRANGE", start, end], b"+OK\r\n");
    }
    let mut first = servers[0].conn();
    for (s, bus) in servers.iter().zip(&buses).skip(1) {
        let (port, bus) = (s.port().to_string(), bus.to_string());
        first.cmd_expect(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus], b"+OK\r\n");
    }
    let n = servers.len();
    wait_for(
        "every node knows every other, cluster_state:ok",
        Duration::from_secs(30),
        || {
            all_ok(&servers)
                && servers.iter().all(|s| {
                    cluster_info(&mut s.conn()).contains(&format!("cluster_known_nodes:{n}\r\n"))
                })
        },
    );
    (servers, buses)
}

/// CLUSTER NODES as lines of fields.
fn nodes_of(server: &Server) -> Vec<Vec<String>> {
    text(&server.conn().cmd(&["CLUSTER", "NODES"]))
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

/// The link field of `id`'s line in `server`'s CLUSTER NODES.
fn link_of(server: &Server, id: &str) -> Option<String> {
    nodes_of(server)
        .into_iter()
        .find(|f| f[0] == id)
        .map(|f| f[7].clone())
}

/// CLUSTER LINKS as (direction, node) pairs, each entry checked for
/// Redis 7.2's six fields in order.
fn links_of(server: &Server) -> Vec<(String, String)> {
    let reply = server.conn().cmd(&["CLUSTER", "LINKS"]);
    reply
        .items()
        .iter()
        .map(|link| {
            let fields = link.items();
            let names: Vec<String> = fields.iter().step_by(2).map(Frame::text).collect();
            assert_eq!(
                names,
                [
                    "direction",
                    "node",
                    "create-time",
                    "events",
                    "send-buffer-allocated",
                    "send-buffer-used"
                ]
            );
            assert!(fields[5].int() > 0, "create-time {:?}", fields[5]);
            (fields[1].text(), fields[3].text())
        })
        .collect()
}

#[test]
fn links_are_connected_while_peers_are_heard_and_disconnected_after_a_kill() {
    ringcast_only!("a cluster of ringcast nodes");
    let dir = Dir::new("links");
    let (mut servers, _) = joined(&dir, 0);
    let ids: Vec<String> = servers.iter().map(|s| myid(&mut s.conn())).collect();
    wait_for("every link connected", Duration::from_secs(30), || {
        servers.iter().all(|s| {
            nodes_of(s)
                .iter()
                .all(|f| f[7] == "connected" && (f[2].contains("myself") || f[5] != "0"))
        })
    });
    for (s, me) in servers.iter().zip(&ids) {
        let mut links = links_of(s);
        links.sort();
        let mut want: Vec<(String, String)> = ids
            .iter()
            .filter(|id| *id != me)
            .flat_map(|id| {
                [
                    ("from".to_string(), id.clone()),
                    ("to".to_string(), id.clone()),
                ]
            })
            .collect();
        want.sort();
        assert_eq!(links, want);
    }

    let victim = servers.pop().expect("three servers");
    victim.signal(libc::SIGKILL);
    let _ = victim.wait_exit();
    let limit = Duration::from_millis(TIMEOUT_MS * 2) + Duration::from_secs(20);
    wait_for("the killed node's link disconnected", limit, || {
        servers
            .iter()
            .all(|s| link_of(s, &ids[2]).as_deref() == Some("disconnected"))
    });
    for s in &servers {
        assert!(links_of(s).iter().all(|(_, node)| *node != ids[2]));
        // The survivors still hear each other.
        let other = nodes_of(s)
            .into_iter()
            .find(|f| !f[2].contains("myself") && f[0] != ids[2])
            .expect("the other survivor");
        assert_eq!(other[7], "connected");
    }
}

/// Whether `server` lists `replica` as a replica of `master` in CLUSTER
/// NODES and after it in CLUSTER SLOTS.
fn lists_replica(server: &Server, replica: &str, master: &str) -> bool {
    let in_nodes = nodes_of(server)
        .iter()
        .any(|f| f[0] == replica && f[2].contains("slave") && f[3] == master);
    let slots = server.conn().cmd(&["CLUSTER", "SLOTS"]);
    let in_slots = slots.items().iter().any(|range| {
        let nodes = range.items();
        nodes.len() == 4
            && nodes[2].items()[2].text() == master
            && nodes[3].items()[2].text() == replica
    });
    in_nodes && in_slots
}

#[test]
fn a_replica_serves_its_masters_shard_channels_and_takes_over_when_it_dies() {
    ringcast_only!("a cluster of ringcast nodes");
    let dir = Dir::new("replica");
    let (mut servers, _) = joined(&dir, 1);
    let ids: Vec<String> = servers.iter().map(|s| myid(&mut s.conn())).collect();
    // `foo` (slot 12182) is the third master's.
    let (master, replica) = (ids[2].clone(), ids[3].clone());
    servers[3]
        .conn()
        .cmd_expect(&["CLUSTER", "REPLICATE", &master], b"+OK\r\n");
    wait_for(
        "every node lists the replica",
        Duration::from_secs(30),
        || servers.iter().all(|s| lists_replica(s, &replica, &master)),
    );

    // Sharded commands of its master's slots run on the replica, others
    // are sent to their master.
    let mut sub = servers[3].conn();
    sub.sub("SSUBSCRIBE", &["foo"], &[1]);
    servers[3].conn().publish("SPUBLISH", "foo", "before", 1);
    sub.expect_smessage("foo", "before");
    let moved = format!("-MOVED 5061 127.0.0.1:{}\r\n", servers[0].port());
    servers[3]
        .conn()
        .cmd_expect(&["SSUBSCRIBE", "bar"], moved.as_bytes());
    let nodes = text(&servers[3].conn().cmd(&["CLUSTER", "NODES"]));
    assert!(
        nodes.contains(&format!("{replica} 127.0.0.1:{}@", servers[3].port())),
        "{nodes}"
    );
    assert!(
        nodes.contains(&format!(" myself,slave {master} ")),
        "{nodes}"
    );

    let victim = servers.remove(2);
    victim.signal(libc::SIGKILL);
    let _ = victim.wait_exit();
    let limit = Duration::from_millis(TIMEOUT_MS * 2) + Duration::from_secs(20);
    wait_for(
        "the replica owns its master's slots everywhere",
        limit,
        || {
            servers.iter().all(|s| {
                nodes_of(s).iter().any(|f| {
                    f[0] == replica && f[2].contains("master") && f[8..] == ["10923-16383"]
                })
            }) && all_ok(&servers)
        },
    );
    // Its subscriber stayed subscribed through the promotion.
    servers[2].conn().publish("SPUBLISH", "foo", "after", 1);
    sub.expect_smessage("foo", "after");
    let moved = format!("-MOVED 12182 127.0.0.1:{}\r\n", servers[2].port());
    servers[0]
        .conn()
        .cmd_expect(&["SPUBLISH", "foo", "x"], moved.as_bytes());
}

// ---- cross-node PUBLISH --------------------------------------------------

/// The last element of a `message`/`pmessage` push: its payload.
fn payload(frame: &Frame) -> String {
    frame.items().last().map(text).unwrap_or_default()
}

/// Publishes `sync-<i>` on `publisher` until every one of `subs` got one,
/// reading away the earlier ones: afterwards the subscribers' interest has
/// reached the publisher's node and nothing is left unread.
fn sync_through(publisher: &mut RawConn, channel: &str, subs: &mut [&mut RawConn]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = vec![false; subs.len()];
    for i in 0.. {
        assert!(
            Instant::now() < deadline,
            "no forwarded message reached every node"
        );
        let marker = format!("sync-{i}");
        publisher.cmd(&["PUBLISH", channel, &marker]);
        for (sub, done) in subs.iter_mut().zip(done.iter_mut()) {
            *done = false;
            while let Ok(frame) = sub.try_read_frame(Duration::from_millis(300)) {
                if payload(&frame) == marker {
                    *done = true;
                    break;
                }
            }
        }
        if done.iter().all(|d| *d) {
            return;
        }
    }
}

/// A counter of CLUSTER INFO (0 when absent, as Redis leaves out zeros).
fn info_counter(server: &Server, name: &str) -> u64 {
    let info = cluster_info(&mut server.conn());
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn publish_reaches_subscribers_on_every_node_in_order_and_only_where_wanted() {
    ringcast_only!("cross-node PUBLISH of ringcast nodes");
    let dir = Dir::new("xpub");
    let (servers, _) = joined(&dir, 0);
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let mut sub_b = b.conn();
    sub_b.sub("SUBSCRIBE", &["news"], &[1]);
    let mut psub_c = c.conn();
    psub_c.sub("PSUBSCRIBE", &["n*"], &[1]);
    let mut publisher = a.conn();
    sync_through(&mut publisher, "news", &mut [&mut sub_b, &mut psub_c]);

    // The reply counts A's own receivers only, as Redis Cluster's does.
    publisher.publish("PUBLISH", "news", "hello", 0);
    sub_b.expect_message("news", "hello");
    psub_c.expect_pmessage("n*", "news", "hello");
    let mut local = a.conn();
    local.sub("SUBSCRIBE", &["news"], &[1]);
    publisher.publish("PUBLISH", "news", "again", 1);
    local.expect_message("news", "again");
    sub_b.expect_message("news", "again");
    psub_c.expect_pmessage("n*", "news", "again");

    // One publisher's messages arrive in order, each once.
    for i in 0..300 {
        publisher.publish("PUBLISH", "news", &format!("seq-{i}"), 1);
    }
    for i in 0..300 {
        let want = format!("seq-{i}");
        local.expect_message("news", &want);
        sub_b.expect_message("news", &want);
        psub_c.expect_pmessage("n*", "news", &want);
    }

    // A channel only C's pattern matches is not sent to B.
    let b_before = info_counter(b, "cluster_stats_messages_publish_received");
    let c_before = info_counter(c, "cluster_stats_messages_publish_received");
    publisher.publish("PUBLISH", "nope", "only-c", 0);
    psub_c.expect_pmessage("n*", "nope", "only-c");
    // Nobody anywhere wants `other`: it goes nowhere.
    publisher.publish("PUBLISH", "other", "x", 0);
    publisher.publish("PUBLISH", "news", "last", 1);
    sub_b.expect_message("news", "last");
    psub_c.expect_pmessage("n*", "news", "last");
    local.expect_message("news", "last");
    assert_eq!(
        info_counter(b, "cluster_stats_messages_publish_received"),
        b_before + 1,
        "B got only `last`"
    );
    assert_eq!(
        info_counter(c, "cluster_stats_messages_publish_received"),
        c_before + 2,
        "C got `only-c` and `last`"
    );
    assert!(info_counter(a, "cluster_stats_messages_publish_sent") >= 600);
    // A node that has no subscriber gets nothing forwarded.
    assert_eq!(
        info_counter(a, "cluster_stats_messages_publish_received"),
        0
    );

    // Interest removed: forwarding stops.
    sub_b.cmd_expect(
        &["UNSUBSCRIBE", "news"],
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n",
    );
    eventually("B's unsubscribe reached A", || {
        let before = info_counter(b, "cluster_stats_messages_publish_received");
        publisher.publish("PUBLISH", "news", "after", 1);
        local.expect_message("news", "after");
        psub_c.expect_pmessage("n*", "news", "after");
        info_counter(b, "cluster_stats_messages_publish_received") == before
    });
    assert!(sub_b.try_read_frame(Duration::from_millis(200)).is_err());
}

#[test]
fn a_peer_killed_and_restarted_gets_messages_again_once_resubscribed() {
    ringcast_only!("cross-node PUBLISH of ringcast nodes");
    let dir = Dir::new("xpub-restart");
    let (mut servers, buses) = joined(&dir, 0);
    let mut publisher = servers[0].conn();
    let mut sub = servers[2].conn();
    sub.sub("SUBSCRIBE", &["news"], &[1]);
    sync_through(&mut publisher, "news", &mut [&mut sub]);
    publisher.publish("PUBLISH", "news", "before", 0);
    sub.expect_message("news", "before");

    let victim = servers.pop().expect("three servers");
    victim.signal(libc::SIGKILL);
    let _ = victim.wait_exit();
    // Messages for the dead node go nowhere; the publisher is unaffected.
    publisher.publish("PUBLISH", "news", "while-down", 0);

    let back = node_on_bus(&dir.file("nodes-2.conf"), TIMEOUT_MS, buses[2]);
    let mut sub = back.conn();
    sub.sub("SUBSCRIBE", &["news"], &[1]);
    sync_through(&mut publisher, "news", &mut [&mut sub]);
    publisher.publish("PUBLISH", "news", "after", 0);
    sub.expect_message("news", "after");
}

#[test]
fn publish_right_after_a_subscribe_reply_on_another_node_is_delivered() {
    ringcast_only!("cross-node PUBLISH of ringcast nodes");
    let dir = Dir::new("xpub-visible");
    let (servers, _) = joined(&dir, 0);
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    // The links are up once one message went each way.
    let (mut warm_b, mut warm_c) = (b.conn(), c.conn());
    warm_b.sub("SUBSCRIBE", &["warm"], &[1]);
    warm_c.sub("SUBSCRIBE", &["warm"], &[1]);
    let mut publisher = a.conn();
    sync_through(&mut publisher, "warm", &mut [&mut warm_b, &mut warm_c]);

    // The replies are sent once A has the interest: no wait needed.
    for i in 0..20 {
        let channel = format!("fresh-{i}");
        let mut sub = b.conn();
        sub.sub("SUBSCRIBE", &[&channel], &[1]);
        let mut psub = c.conn();
        let pattern = format!("fresh-{i}*");
        psub.sub("PSUBSCRIBE", &[&pattern], &[1]);
        publisher.publish("PUBLISH", &channel, "first", 0);
        sub.expect_message(&channel, "first");
        psub.expect_pmessage(&pattern, &channel, "first");
    }
}

#[test]
fn spublish_on_a_master_reaches_sharded_subscribers_of_its_replica() {
    ringcast_only!("cross-node SPUBLISH of ringcast nodes");
    let dir = Dir::new("xspub");
    let (servers, _) = joined(&dir, 0);
    let bus = bus_port();
    let replica = node_on_bus(&dir.file("nodes-3.conf"), TIMEOUT_MS, bus);
    let (port, bus) = (replica.port().to_string(), bus.to_string());
    servers[0]
        .conn()
        .cmd_expect(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus], b"+OK\r\n");
    // `foo` is in slot 12182: the third node's.
    let master = &servers[2];
    let master_id = myid(&mut master.conn());
    let mut r = replica.conn();
    wait_for(
        "the replica knows its master",
        Duration::from_secs(30),
        || text(&r.cmd(&["CLUSTER", "NODES"])).contains(&master_id),
    );
    r.cmd_expect(&["CLUSTER", "REPLICATE", &master_id], b"+OK\r\n");
    let replica_id = myid(&mut r);
    wait_for(
        "the master knows its replica",
        Duration::from_secs(30),
        || {
            text(&master.conn().cmd(&["CLUSTER", "NODES"]))
                .lines()
                .any(|l| l.starts_with(&replica_id) && l.contains(&format!("slave {master_id}")))
        },
    );
    let mut sub = replica.conn();
    sub.sub("SSUBSCRIBE", &["foo"], &[1]);
    let mut publisher = master.conn();
    let deadline = Instant::now() + Duration::from_secs(30);
    'sync: for i in 0.. {
        assert!(Instant::now() < deadline, "no SPUBLISH reached the replica");
        let marker = format!("sync-{i}");
        publisher.publish("SPUBLISH", "foo", &marker, 0);
        while let Ok(frame) = sub.try_read_frame(Duration::from_millis(300)) {
            if payload(&frame) == marker {
                break 'sync;
            }
        }
    }
    for i in 0..50 {
        publisher.publish("SPUBLISH", "foo", &format!("seq-{i}"), 0);
    }
    for i in 0..50 {
        sub.expect_smessage("foo", &format!("seq-{i}"));
    }
}

#[test]
fn a_peer_that_cannot_keep_up_loses_its_link_and_nothing_twice() {
    ringcast_only!("cross-node PUBLISH of ringcast nodes");
    let dir = Dir::new("xpub-overflow");
    let (servers, _) = joined(&dir, 0);
    let (a, b) = (&servers[0], &servers[1]);
    let mut sub = b.conn();
    sub.sub("SUBSCRIBE", &["bulk"], &[1]);
    let mut publisher = a.conn();
    sync_through(&mut publisher, "bulk", &mut [&mut sub]);

    // B stops reading: what A queues for it passes the link's bound.
    b.signal(libc::SIGSTOP);
    let big = "x".repeat(256 << 10);
    let mut i = 0;
    eventually("A dropped its link to B", || {
        for _ in 0..16 {
            publisher.publish("PUBLISH", "bulk", &format!("{i}:{big}"), 0);
            i += 1;
        }
        info_counter(a, "total_cluster_links_buffer_limit_exceeded") >= 1
    });
    b.signal(libc::SIGCONT);
    // Whatever B got of the flood came in order and once each.
    let mut last = None;
    let mut seen_sync = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen_sync {
        assert!(Instant::now() < deadline, "B never got messages again");
        let marker = format!("after-{}", i);
        publisher.publish("PUBLISH", "bulk", &marker, 0);
        i += 1;
        while let Ok(frame) = sub.try_read_frame(Duration::from_millis(300)) {
            let data = payload(&frame);
            if data.starts_with("after-") {
                seen_sync = true;
                continue;
            }
            if let Some(n) = data.split(':').next().and_then(|n| n.parse::<u64>().ok()) {
                assert!(last.is_none_or(|l| n > l), "{n} after {last:?}");
                last = Some(n);
            }
        }
    }
}

/// Each node's line of `server`'s CLUSTER NODES as (id, role, master,
/// slots), without the flags only one node's view has (`myself`, `fail?`,
/// `fail`), in id order.
fn layout(server: &Server) -> Vec<(String, String, String, Vec<String>)> {
    let mut lines: Vec<_> = nodes_of(server)
        .into_iter()
        .map(|f| {
            let role = if f[2].contains("master") {
                "master"
            } else {
                "slave"
            };
            (
                f[0].clone(),
                role.to_string(),
                f[3].clone(),
                f[8..].to_vec(),
            )
        })
        .collect();
    lines.sort();
    lines
}

/// CLUSTER SLOTS as (start, end, master id) triples.
fn slot_masters(server: &Server) -> Vec<(i64, i64, String)> {
    let slots = server.conn().cmd(&["CLUSTER", "SLOTS"]);
    let mut ranges: Vec<_> = slots
        .items()
        .iter()
        .map(|r| {
            let items = r.items();
            (items[0].int(), items[1].int(), items[2].items()[2].text())
        })
        .collect();
    ranges.sort();
    ranges
}

#[test]
fn a_stopped_master_loses_its_slots_to_the_majority_and_rejoins_without_them() {
    ringcast_only!("failover without replicas is ringcast's");
    let dir = Dir::new("stopped");
    let (servers, _) = joined(&dir, 0);
    let ids: Vec<String> = servers.iter().map(|s| myid(&mut s.conn())).collect();
    let stopped = &servers[2];
    stopped.signal(libc::SIGSTOP);
    let limit = Duration::from_millis(TIMEOUT_MS * 2) + Duration::from_secs(20);
    wait_for(
        "the two others own every slot and mark it fail",
        limit,
        || {
            servers[..2].iter().all(|s| {
                let nodes = nodes_of(s);
                let owned: usize = slot_masters(s)
                    .iter()
                    .filter(|(_, _, id)| *id != ids[2])
                    .map(|(start, end, _)| (end - start + 1) as usize)
                    .sum();
                owned == 16384
                    && nodes
                        .iter()
                        .any(|f| f[0] == ids[2] && f[2] == "master,fail" && f.len() == 8)
            }) && all_ok(&servers[..2])
        },
    );
    let before = layout(&servers[0]);
    stopped.signal(libc::SIGCONT);
    wait_for(
        "every node agrees, the resumed one without slots",
        Duration::from_secs(30),
        || {
            let first = layout(&servers[0]);
            let slots = slot_masters(&servers[0]);
            servers
                .iter()
                .all(|s| layout(s) == first && slot_masters(s) == slots)
                && first
                    .iter()
                    .any(|(id, _, _, slots)| *id == ids[2] && slots.is_empty())
                && all_ok(&servers)
                && !text(&servers[0].conn().cmd(&["CLUSTER", "NODES"])).contains("fail")
        },
    );
    // The slots stayed where the majority put them.
    let after = layout(&servers[0]);
    for id in &ids[..2] {
        let slots = |l: &[(String, String, String, Vec<String>)]| {
            l.iter().find(|n| n.0 == *id).map(|n| n.3.clone())
        };
        assert_eq!(slots(&after), slots(&before), "{after:?}");
    }
}

#[test]
fn a_subscribe_waits_for_a_peer_that_never_answers_only_for_a_while() {
    ringcast_only!("the SUBSCRIBE wait of ringcast's cross-node PUBLISH");
    let dir = Dir::new("xhold");
    // A node timeout far beyond the test: the stopped peer keeps its link
    // and is never judged, so only the wait's own bound can end the wait.
    let (servers, _) = joined_with_timeout(&dir, 0, 600_000);
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    // Every link up and carrying interest: B and C hear A, C hears B.
    let mut on_b = b.conn();
    on_b.sub("SUBSCRIBE", &["warm"], &[1]);
    let mut on_c = c.conn();
    on_c.sub("SUBSCRIBE", &["warm"], &[1]);
    sync_through(&mut a.conn(), "warm", &mut [&mut on_b, &mut on_c]);
    let mut c_warm = c.conn();
    c_warm.sub("SUBSCRIBE", &["warm-c"], &[1]);
    sync_through(&mut b.conn(), "warm-c", &mut [&mut c_warm]);

    c.signal(libc::SIGSTOP);
    // C will not acknowledge B's new interest; B still answers.
    let mut sub = b.conn();
    sub.sub("SUBSCRIBE", &["fresh"], &[1]);
    // And the interest reached A.
    a.conn().publish("PUBLISH", "fresh", "after", 0);
    sub.expect_message("fresh", "after");
    c.signal(libc::SIGCONT);
}
