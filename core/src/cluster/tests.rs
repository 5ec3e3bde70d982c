//! Tests of the cluster state machine as a whole: admin replies and errors
//! (texts from Redis 7.2.4's `cluster.c`, checked against a redis-server
//! 7.0.15 cluster where 7.0 and 7.2 agree), renderings against output
//! captured from that cluster, claims, failover and routing.

use super::*;
use crate::resp::args::Args;
use crate::resp::encode::Proto;

const A: &str = "432db750da54b3d5ade2d900c753f459f58e016c";
const B: &str = "59842a06895be50589d2680b301a8082e78dec90";
const C: &str = "de4dfd7307570589293a2814b2e7b8eda193ee1f";
const R: &str = "ffb809c71a66580edbae0ce7c6e8330df6d3b3c7";

/// nodes.conf of 127.0.0.1:30001 in a 3-master redis-server 7.0.15 cluster
/// made by `redis-cli --cluster create`.
const NODES_CONF_70: &str = "\
59842a06895be50589d2680b301a8082e78dec90 127.0.0.1:30002@40002 master - 0 1796049206897 2 connected 5461-10922
de4dfd7307570589293a2814b2e7b8eda193ee1f 127.0.0.1:30003@40003 master - 0 1796049206195 3 connected 10923-16383
432db750da54b3d5ade2d900c753f459f58e016c 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
vars currentEpoch 3 lastVoteEpoch 0
";

/// Its CLUSTER NODES at the same time (Redis's line order is its hash table's).
const NODES_70: &str = "\
59842a06895be50589d2680b301a8082e78dec90 127.0.0.1:30002@40002 master - 0 1796049209913 2 connected 5461-10922
de4dfd7307570589293a2814b2e7b8eda193ee1f 127.0.0.1:30003@40003 master - 0 1796049210918 3 connected 10923-16383
432db750da54b3d5ade2d900c753f459f58e016c 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";

fn id(text: &str) -> NodeId {
    NodeId::parse(text.as_bytes()).unwrap()
}

fn args(line: &str) -> Args {
    line.split(' ').map(str::as_bytes).collect()
}

fn run(c: &mut Cluster, line: &str) -> Reply {
    c.command(args(line).list(), 0).0
}

fn err(reply: Reply) -> String {
    match reply {
        Reply::Error(e) => String::from_utf8(e).unwrap(),
        other => panic!("not an error: {other:?}"),
    }
}

fn boot(seed: u64) -> Boot {
    Boot { now: 1, seed }
}

fn addr(port: u16) -> Addr {
    Addr {
        ip: "127.0.0.1".into(),
        port,
        cport: port + 10000,
        hostname: None,
    }
}

fn fresh(port: u16) -> Cluster {
    Cluster::new(addr(port), Settings::default(), boot(u64::from(port)))
}

/// The captured node 30001, its peers alive and their ping times as captured.
fn captured() -> Cluster {
    let mut c = Cluster::load(NODES_CONF_70, Settings::default(), boot(1)).unwrap();
    c.set_heard(&id(B), 1796049209913, 1796049210918, 15000);
    c.set_heard(&id(C), 1796049210918, 1796049210918, 15000);
    c
}

/// One gossip round: every node's claim to every other node.
fn gossip(nodes: &mut [Cluster], now: u64) {
    let claims: Vec<Claim> = nodes.iter().map(|n| n.claim().clone()).collect();
    for node in nodes.iter_mut() {
        for claim in &claims {
            node.apply_claim(claim, now);
        }
    }
}

/// `masters` masters splitting the slots evenly as `redis-cli --cluster
/// create` does, each master followed by `replicas` replicas.
fn cluster(masters: usize, replicas: usize) -> Vec<Cluster> {
    let mut nodes: Vec<Cluster> = (0..masters * (1 + replicas))
        .map(|i| fresh(30001 + i as u16))
        .collect();
    for m in 0..masters {
        let start = m * SLOTS / masters;
        let end = (m + 1) * SLOTS / masters - 1;
        let node = &mut nodes[m * (1 + replicas)];
        assert_eq!(
            run(node, &format!("CLUSTER ADDSLOTSRANGE {start} {end}")),
            Reply::Ok
        );
        assert_eq!(
            run(node, &format!("CLUSTER SET-CONFIG-EPOCH {}", m + 1)),
            Reply::Ok
        );
    }
    gossip(&mut nodes, 0);
    for m in 0..masters {
        let master = nodes[m * (1 + replicas)].myself().id;
        for r in 1..=replicas {
            let replica = &mut nodes[m * (1 + replicas) + r];
            assert_eq!(
                run(replica, &format!("CLUSTER REPLICATE {master}")),
                Reply::Ok
            );
        }
    }
    for _ in 0..3 {
        gossip(&mut nodes, 0);
    }
    for i in 0..nodes.len() {
        let ids: Vec<NodeId> = nodes.iter().map(|n| n.myself().id).collect();
        for other in ids {
            nodes[i].set_liveness(&other, Liveness::Alive, 0);
            nodes[i].set_heard(&other, 0, 0, 15_000);
        }
    }
    nodes
}

/// The nodes at `judges` lose `lost` (their gossip layers find it silent
/// past the node timeout), then all of `nodes` exchange failure reports.
fn lose(nodes: &mut [Cluster], judges: &[usize], lost: NodeId, now: u64) {
    for &i in judges {
        nodes[i].set_liveness(&lost, Liveness::Dead, now);
    }
    exchange_reports(nodes, now);
}

/// One gossip round of failure reports: every node's to every other.
fn exchange_reports(nodes: &mut [Cluster], now: u64) {
    let reports: Vec<(NodeId, Reports)> =
        nodes.iter().map(|n| (n.myself().id, n.reports())).collect();
    for node in nodes.iter_mut() {
        for (reporter, r) in &reports {
            node.apply_reports(reporter, r, now);
        }
    }
}

fn signature(node: &Cluster) -> String {
    config_signature(&node.nodes_text()).unwrap_or_default()
}

fn assert_agree(nodes: &[&Cluster]) {
    let first = signature(nodes[0]);
    for node in nodes {
        assert_eq!(signature(node), first);
    }
}

fn lost(effects: &[Effect]) -> Vec<(Slot, Slot)> {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::LostSlots(s) => Some(s.ranges()),
            _ => None,
        })
        .unwrap_or_default()
}

// ---- admin commands: replies and errors --------------------------------

#[test]
fn addslots_parses_every_argument_before_checking_any() {
    let mut c = fresh(30001);
    assert_eq!(run(&mut c, "CLUSTER ADDSLOTS 1 2"), Reply::Ok);
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTS 1 x")),
        "ERR Invalid or out of range slot"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTS 3 1")),
        "ERR Slot 1 is already busy"
    );
    assert_eq!(owner_of(&c, 3), None, "nothing changes on error");
    for bad in ["20000", "16384", "-1", "01", "+1", " 1"] {
        let e = err(run(&mut c, &format!("CLUSTER ADDSLOTS {bad}")));
        assert_eq!(e, "ERR Invalid or out of range slot", "{bad}");
    }
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTS 5 5")),
        "ERR Slot 5 specified multiple times"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER DELSLOTS 1 1")),
        "ERR Slot 1 specified multiple times"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER DELSLOTS 9")),
        "ERR Slot 9 is already unassigned"
    );
    assert_eq!(run(&mut c, "CLUSTER DELSLOTS 1"), Reply::Ok);
    assert_eq!(c.myself().slots.ranges(), vec![(2, 2)]);
}

fn owner_of(c: &Cluster, slot: Slot) -> Option<NodeId> {
    c.owner(slot).map(|n| n.id)
}

#[test]
fn slot_ranges_check_order_arity_and_overlap() {
    let mut c = fresh(30001);
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTSRANGE 1")),
        "ERR wrong number of arguments for 'cluster|addslotsrange' command"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTSRANGE 1 2 3")),
        "ERR wrong number of arguments for 'cluster|addslotsrange' command"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTSRANGE 5 3")),
        "ERR start slot number 5 is greater than end slot number 3"
    );
    assert_eq!(
        run(&mut c, "CLUSTER ADDSLOTSRANGE 0 5460 6000 6000"),
        Reply::Ok
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTSRANGE 1 3")),
        "ERR Slot 1 is already busy"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER DELSLOTSRANGE 1 3 2 4")),
        "ERR Slot 2 specified multiple times"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER DELSLOTSRANGE 1 3 x 4")),
        "ERR Invalid or out of range slot"
    );
    assert_eq!(run(&mut c, "CLUSTER DELSLOTSRANGE 0 99"), Reply::Ok);
    assert_eq!(c.myself().slots.ranges(), vec![(100, 5460), (6000, 6000)]);
}

#[test]
fn setslot_errors_follow_redis_order() {
    let mut c = captured();
    let setslot = |c: &mut Cluster, rest: &str| err(run(c, &format!("CLUSTER SETSLOT {rest}")));
    assert_eq!(
        err(run(&mut c, "CLUSTER SETSLOT 1")),
        "ERR wrong number of arguments for 'cluster|setslot' command"
    );
    let syntax = "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";
    assert_eq!(setslot(&mut c, "1 foo"), syntax);
    assert_eq!(setslot(&mut c, "1 STABLE x"), syntax);
    assert_eq!(setslot(&mut c, "1 NODE"), syntax);
    assert_eq!(
        setslot(&mut c, "99999 STABLE"),
        "ERR Invalid or out of range slot"
    );
    assert_eq!(
        setslot(&mut c, &format!("6000 MIGRATING {B}")),
        "ERR I'm not the owner of hash slot 6000"
    );
    assert_eq!(
        setslot(&mut c, "1 MIGRATING abc"),
        "ERR I don't know about node abc"
    );
    assert_eq!(
        setslot(&mut c, &format!("1 IMPORTING {B}")),
        "ERR I'm already the owner of hash slot 1"
    );
    assert_eq!(
        setslot(&mut c, "6000 IMPORTING abc"),
        "ERR I don't know about node abc"
    );
    assert_eq!(setslot(&mut c, "1 NODE abc"), "ERR Unknown node abc");
    assert_eq!(
        setslot(&mut c, "1 NODE 0000000000000000000000000000000000000000"),
        "ERR Unknown node 0000000000000000000000000000000000000000"
    );
    let mut replica = cluster(1, 1).remove(1);
    assert_eq!(
        setslot(&mut replica, "1 STABLE"),
        "ERR Please use SETSLOT only with masters."
    );
}

#[test]
fn open_slots_render_on_the_myself_line_in_slot_order() {
    let mut c = captured();
    run(&mut c, "CLUSTER BUMPEPOCH");
    for line in [
        format!("CLUSTER SETSLOT 1 MIGRATING {B}"),
        format!("CLUSTER SETSLOT 6000 IMPORTING {B}"),
        format!("CLUSTER SETSLOT 7 MIGRATING {B}"),
    ] {
        assert_eq!(run(&mut c, &line), Reply::Ok);
    }
    c.set_ping_times(&id(A), 0, 1796049233000);
    let line = c
        .nodes_text()
        .lines()
        .find(|l| l.starts_with(A))
        .unwrap()
        .to_string();
    assert_eq!(
        line,
        "432db750da54b3d5ade2d900c753f459f58e016c 127.0.0.1:30001@40001 myself,master - 0 1796049233000 4 connected 0-5460 \
         [1->-59842a06895be50589d2680b301a8082e78dec90] [7->-59842a06895be50589d2680b301a8082e78dec90] \
         [6000-<-59842a06895be50589d2680b301a8082e78dec90]"
    );
    // The open slots survive a restart, and STABLE closes them.
    let restarted = Cluster::load(&c.nodes_conf(), Settings::default(), boot(2)).unwrap();
    let open = |c: &Cluster| {
        c.nodes_text()
            .lines()
            .find(|l| l.starts_with(A))
            .unwrap()
            .split_once(" 0-5460")
            .unwrap()
            .1
            .to_string()
    };
    assert_eq!(open(&restarted), open(&c));
    for slot in [1, 6000, 7] {
        assert_eq!(
            run(&mut c, &format!("CLUSTER SETSLOT {slot} STABLE")),
            Reply::Ok
        );
    }
    assert!(!c.nodes_text().contains('['));
}

#[test]
fn setslot_node_moves_the_slot_and_an_import_closes_with_a_new_epoch() {
    let mut nodes = cluster(3, 0);
    let (a, b) = (nodes[0].myself().id, nodes[1].myself().id);
    // B imports slot 0 from A, as redis-cli reshard does.
    assert_eq!(
        run(&mut nodes[1], &format!("CLUSTER SETSLOT 0 IMPORTING {a}")),
        Reply::Ok
    );
    assert_eq!(
        run(&mut nodes[0], &format!("CLUSTER SETSLOT 0 MIGRATING {b}")),
        Reply::Ok
    );
    assert_eq!(
        run(&mut nodes[1], &format!("CLUSTER SETSLOT 0 NODE {b}")),
        Reply::Ok
    );
    assert_eq!(
        nodes[1].myself().config_epoch,
        4,
        "bumped past the 3 epochs known"
    );
    let (reply, effects) = nodes[0].command(args(&format!("CLUSTER SETSLOT 0 NODE {b}")).list(), 0);
    assert_eq!(reply, Reply::Ok);
    assert_eq!(lost(&effects), vec![(0, 0)]);
    assert!(!nodes[0].nodes_text().contains('['), "migration closed");
    gossip(&mut nodes, 0);
    assert_agree(&nodes.iter().collect::<Vec<_>>());
    assert_eq!(owner_of(&nodes[2], 0), Some(b));
}

#[test]
fn a_master_giving_away_its_last_slot_becomes_a_replica_of_the_taker() {
    let mut nodes = cluster(2, 0);
    let b = nodes[1].myself().id;
    let (reply, _) = nodes[0].command(args(&format!("CLUSTER SETSLOT 0 NODE {b}")).list(), 0);
    assert_eq!(reply, Reply::Ok);
    assert!(nodes[0].myself().is_master());
    assert_eq!(
        run(&mut nodes[0], "CLUSTER DELSLOTSRANGE 1 8191"),
        Reply::Ok
    );
    assert_eq!(run(&mut nodes[0], "CLUSTER ADDSLOTS 1"), Reply::Ok);
    assert_eq!(
        run(&mut nodes[0], &format!("CLUSTER SETSLOT 1 NODE {b}")),
        Reply::Ok
    );
    assert!(nodes[0].myself().is_replica());
    assert_eq!(nodes[0].myself().master, Some(b));
    assert_eq!(nodes[0].myself().shard_id, nodes[1].myself().shard_id);
}

#[test]
fn meet_checks_ports_and_address_then_asks_the_gossip_layer() {
    let mut c = fresh(30001);
    let e = |c: &mut Cluster, line: &str| err(run(c, line));
    assert_eq!(
        e(&mut c, "CLUSTER MEET 127.0.0.1 x"),
        "ERR Invalid base port specified: x"
    );
    assert_eq!(
        e(&mut c, "CLUSTER MEET 127.0.0.1 30002 y"),
        "ERR Invalid bus port specified: y"
    );
    assert_eq!(
        e(&mut c, "CLUSTER MEET 999.0.0.1 30002"),
        "ERR Invalid node address specified: 999.0.0.1:30002"
    );
    assert_eq!(
        e(&mut c, "CLUSTER MEET 127.0.0.1 0"),
        "ERR Invalid node address specified: 127.0.0.1:0"
    );
    assert_eq!(
        e(&mut c, "CLUSTER MEET 127.0.0.1 70000"),
        "ERR Invalid node address specified: 127.0.0.1:70000"
    );
    assert_eq!(
        e(&mut c, "CLUSTER MEET 127.0.0.1 60000"),
        "ERR Invalid node address specified: 127.0.0.1:60000",
        "the default bus port, 70000, is out of range"
    );
    assert_eq!(
        e(&mut c, "CLUSTER MEET 127.0.0.1 30002 1 2"),
        "ERR unknown subcommand or wrong number of arguments for 'MEET'. Try CLUSTER HELP."
    );
    let (reply, effects) = c.command(args("CLUSTER MEET 127.0.0.1 30002").list(), 0);
    assert_eq!(reply, Reply::Ok);
    let meet = Effect::Meet {
        ip: "127.0.0.1".into(),
        port: 30002,
        cport: 40002,
    };
    assert_eq!(effects, vec![meet]);
    let (_, effects) = c.command(args("CLUSTER MEET 0:0::1 7000 17001").list(), 0);
    let meet = Effect::Meet {
        ip: "::1".into(),
        port: 7000,
        cport: 17001,
    };
    assert_eq!(effects, vec![meet]);
}

#[test]
fn forget_bans_the_node_for_a_minute() {
    let mut nodes = cluster(3, 0);
    let c_id = nodes[2].myself().id;
    let c_claim = nodes[2].claim().clone();
    let a = &mut nodes[0];
    assert_eq!(err(run(a, "CLUSTER FORGET abc")), "ERR Unknown node abc");
    let me = a.myself().id;
    assert_eq!(
        err(run(a, &format!("CLUSTER FORGET {me}"))),
        "ERR I tried hard but I can't forget myself..."
    );
    let (reply, effects) = a.command(args(&format!("CLUSTER FORGET {c_id}")).list(), 1_000);
    assert_eq!(reply, Reply::Ok);
    assert!(effects.contains(&Effect::Forget(c_id)));
    assert!(a.node(&c_id).is_none());
    assert_eq!(owner_of(a, 16383), None, "its slots are unbound");
    // Forgotten already: OK, as if another node's gossip did it.
    assert_eq!(run(a, &format!("CLUSTER FORGET {c_id}")), Reply::Ok);
    a.apply_claim(&c_claim, 60_000);
    assert!(a.node(&c_id).is_none(), "banned for 60 s");
    let mut again = c_claim.clone();
    again.version.seq += 1;
    a.apply_claim(&again, 61_001);
    assert!(a.node(&c_id).is_some(), "back after the ban");
    assert_eq!(owner_of(a, 16383), Some(c_id));
    let mut replica = cluster(1, 1).remove(1);
    let master = replica.myself().master.unwrap();
    assert_eq!(
        err(run(&mut replica, &format!("CLUSTER FORGET {master}"))),
        "ERR Can't forget my master!"
    );
}

#[test]
fn replicate_checks_and_sets_the_master() {
    let mut nodes = cluster(2, 0);
    let (a, b) = (nodes[0].myself().id, nodes[1].myself().id);
    let node = &mut nodes[0];
    assert_eq!(
        err(run(node, "CLUSTER REPLICATE abc")),
        "ERR Unknown node abc"
    );
    assert_eq!(
        err(run(node, &format!("CLUSTER REPLICATE {a}"))),
        "ERR Can't replicate myself"
    );
    assert_eq!(
        err(run(node, &format!("CLUSTER REPLICATE {b}"))),
        "ERR To set a master the node must be empty and without assigned slots."
    );
    let mut fresh_nodes = vec![fresh(30005), nodes.remove(1)];
    gossip(&mut fresh_nodes, 0);
    assert_eq!(
        run(&mut fresh_nodes[0], &format!("CLUSTER REPLICATE {b}")),
        Reply::Ok
    );
    assert_eq!(fresh_nodes[0].claim().master, Some(b));
    let replica = fresh_nodes[0].myself().id;
    let mut third = vec![fresh(30006), fresh_nodes.remove(0)];
    gossip(&mut third, 0);
    assert_eq!(
        err(run(&mut third[0], &format!("CLUSTER REPLICATE {replica}"))),
        "ERR I can only replicate a master, not a replica."
    );
}

#[test]
fn config_epochs_are_set_once_on_a_lone_node_and_bumped_on_demand() {
    let mut c = fresh(30001);
    assert_eq!(
        err(run(&mut c, "CLUSTER SET-CONFIG-EPOCH x")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER SET-CONFIG-EPOCH -5")),
        "ERR Invalid config epoch specified: -5"
    );
    assert_eq!(run(&mut c, "CLUSTER SET-CONFIG-EPOCH 5"), Reply::Ok);
    assert_eq!(c.current_epoch(), 5);
    assert_eq!(
        err(run(&mut c, "CLUSTER SET-CONFIG-EPOCH 6")),
        "ERR Node config epoch is already non-zero"
    );
    assert_eq!(
        run(&mut c, "CLUSTER BUMPEPOCH"),
        Reply::Status("STILL 5".into())
    );
    let mut nodes = cluster(2, 0);
    assert_eq!(
        err(run(&mut nodes[0], "CLUSTER SET-CONFIG-EPOCH 9")),
        "ERR The user can assign a config epoch only when the node does not know any other node."
    );
    assert_eq!(
        run(&mut nodes[0], "CLUSTER BUMPEPOCH"),
        Reply::Status("BUMPED 3".into())
    );
    assert_eq!(
        run(&mut nodes[0], "CLUSTER BUMPEPOCH"),
        Reply::Status("STILL 3".into())
    );
    assert_eq!(
        run(&mut nodes[0], "CLUSTER BUMPEPOCH").to_resp(Proto::Resp2),
        b"+STILL 3\r\n"
    );
}

#[test]
fn keyless_subcommands_answer_as_an_empty_redis() {
    let mut c = fresh(30001);
    assert_eq!(run(&mut c, "CLUSTER KEYSLOT foo"), Reply::Int(12182));
    assert_eq!(run(&mut c, "CLUSTER COUNTKEYSINSLOT 1"), Reply::Int(0));
    assert_eq!(
        err(run(&mut c, "CLUSTER COUNTKEYSINSLOT x")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER COUNTKEYSINSLOT 16384")),
        "ERR Invalid slot"
    );
    assert_eq!(
        run(&mut c, "CLUSTER GETKEYSINSLOT 1 10").to_resp(Proto::Resp2),
        b"*0\r\n"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER GETKEYSINSLOT 1 -1")),
        "ERR Invalid slot or number of keys"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER GETKEYSINSLOT x 1")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER GETKEYSINSLOT 1 x")),
        "ERR value is not an integer or out of range"
    );
    let my_id = c.myself().id.to_string();
    assert_eq!(run(&mut c, "CLUSTER MYID"), Reply::Bulk(my_id.into_bytes()));
    let shard = c.myself().shard_id.to_string();
    assert_eq!(
        run(&mut c, "CLUSTER MYSHARDID"),
        Reply::Bulk(shard.into_bytes())
    );
    assert_eq!(run(&mut c, "CLUSTER LINKS"), Reply::Array(vec![]));
    assert_eq!(
        run(&mut c, "CLUSTER COUNT-FAILURE-REPORTS abc"),
        Reply::error("ERR Unknown node abc")
    );
}

#[test]
fn links_follow_when_a_peer_was_last_heard() {
    let mut c = captured();
    let line = |c: &Cluster, id: &str| {
        c.nodes_text()
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    // Heard 2 s ago with a 15 s timeout: connected, no ping outstanding.
    c.set_heard(&id(B), 1_000_000, 1_002_000, 15_000);
    assert!(line(&c, B).contains(" master - 0 1000000 2 connected 5461-10922"));
    // Silent for half the timeout: Redis's ping is out since then.
    c.set_heard(&id(B), 1_000_000, 1_008_000, 15_000);
    assert!(line(&c, B).contains(" master - 1007500 1000000 2 connected "));
    // Silent for the whole timeout: disconnected.
    c.set_heard(&id(B), 1_000_000, 1_015_000, 15_000);
    assert!(line(&c, B).contains(" master - 1007500 1000000 2 disconnected "));

    // CLUSTER LINKS: both directions of each connected peer, Redis 7.2's
    // fields, created when the link last came up.
    c.set_heard(&id(B), 1_020_000, 1_020_000, 15_000);
    let links = run(&mut c, "CLUSTER LINKS").to_resp(Proto::Resp2);
    let entry = |direction: &str, node: &str, ctime: u64| {
        format!(
            "*12\r\n$9\r\ndirection\r\n${}\r\n{direction}\r\n$4\r\nnode\r\n$40\r\n{node}\r\n\
             $11\r\ncreate-time\r\n:{ctime}\r\n$6\r\nevents\r\n$1\r\nr\r\n\
             $21\r\nsend-buffer-allocated\r\n:0\r\n$16\r\nsend-buffer-used\r\n:0\r\n",
            direction.len()
        )
    };
    let want = format!(
        "*4\r\n{}{}{}{}",
        entry("to", B, 1_020_000),
        entry("from", B, 1_020_000),
        entry("to", C, 1_796_049_210_918),
        entry("from", C, 1_796_049_210_918),
    );
    assert_eq!(String::from_utf8(links).unwrap(), want);
}

#[test]
fn unknown_subcommands_arity_and_syntax_errors() {
    let mut c = fresh(30001);
    assert_eq!(
        err(run(&mut c, "CLUSTER FOO")),
        "ERR unknown subcommand 'FOO'. Try CLUSTER HELP."
    );
    assert_eq!(
        err(c.command(args("CLUSTER").list(), 0).0),
        "ERR wrong number of arguments for 'cluster' command"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER NODES x")),
        "ERR wrong number of arguments for 'cluster|nodes' command"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER ADDSLOTS")),
        "ERR wrong number of arguments for 'cluster|addslots' command"
    );
    assert_eq!(err(run(&mut c, "CLUSTER RESET bogus")), "ERR syntax error");
    assert_eq!(
        err(run(&mut c, "cluster reset soft extra")),
        "ERR unknown subcommand or wrong number of arguments for 'reset'. Try CLUSTER HELP."
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER FAILOVER bogus")),
        "ERR syntax error"
    );
    assert_eq!(
        err(run(&mut c, "CLUSTER FAILOVER")),
        "ERR You should send CLUSTER FAILOVER to a replica"
    );
    let Reply::Array(help) = run(&mut c, "cluster help") else {
        panic!()
    };
    assert_eq!(help.len(), 58);
    assert_eq!(
        help[0],
        Reply::Status("CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into())
    );
    assert_eq!(help[57], Reply::Status("    Print this help.".into()));
}

#[test]
fn reset_soft_forgets_everyone_and_hard_also_takes_new_ids() {
    let mut nodes = cluster(2, 1);
    let replica = &mut nodes[1];
    let old = replica.myself().id;
    let (reply, effects) = replica.command(args("CLUSTER RESET").list(), 0);
    assert_eq!(reply, Reply::Ok);
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Forget(_)))
            .count(),
        3
    );
    assert!(replica.myself().is_master());
    assert_eq!(replica.nodes().len(), 1);
    assert_eq!(replica.myself().id, old);
    let master = &mut nodes[0];
    let epoch = master.current_epoch();
    assert!(epoch > 0);
    assert_eq!(run(master, "CLUSTER RESET HARD"), Reply::Ok);
    assert_ne!(master.myself().id, old);
    assert_eq!(
        (master.current_epoch(), master.myself().config_epoch),
        (0, 0)
    );
    assert!(master.myself().slots.is_empty());
}

#[test]
fn failover_on_a_replica_takes_the_masters_slots() {
    let mut nodes = cluster(3, 1);
    let master = nodes[0].myself().id;
    let replica = nodes[1].myself().id;
    // A replica that may not fail over on its own still obeys FAILOVER.
    let no_failover = Settings {
        replica_no_failover: true,
        ..Settings::default()
    };
    nodes[1].set_settings(no_failover, 0);
    // The replica, and the other masters, each find the master silent; it
    // alone gets the others' reports.
    for i in [1, 2, 4] {
        nodes[i].set_liveness(&master, Liveness::Dead, 0);
    }
    for i in [2, 4] {
        let (reporter, reports) = (nodes[i].myself().id, nodes[i].reports());
        nodes[1].apply_reports(&reporter, &reports, 0);
    }
    assert!(nodes[1].node(&master).unwrap().is_failed());
    assert!(nodes[1].myself().is_replica());
    assert_eq!(
        err(run(&mut nodes[1], "CLUSTER FAILOVER")),
        "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE"
    );
    for i in [1, 2, 4] {
        nodes[i].set_liveness(&master, Liveness::Alive, 0);
    }
    let (reply, effects) = nodes[1].command(args("CLUSTER FAILOVER").list(), 0);
    assert_eq!(reply, Reply::Ok);
    assert!(nodes[1].myself().is_master());
    assert_eq!(nodes[1].myself().slots.ranges(), vec![(0, 5460)]);
    assert!(
        lost(&effects).is_empty(),
        "a replica keeps serving its master's slots"
    );
    gossip(&mut nodes, 0);
    assert_agree(&nodes.iter().collect::<Vec<_>>());
    assert_eq!(
        nodes[0].myself().master,
        Some(replica),
        "the old master follows"
    );
}

// ---- renderings against redis-server output -----------------------------

#[test]
fn cluster_nodes_lines_match_redis() {
    let c = captured();
    let mut ours: Vec<&str> = Vec::new();
    let text = c.nodes_text();
    ours.extend(text.lines());
    let mut theirs: Vec<&str> = NODES_70.lines().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert!(text.ends_with('\n'));
    assert_eq!(
        run(&mut captured(), "CLUSTER NODES").to_resp(Proto::Resp3),
        [
            format!("={}\r\ntxt:", text.len() + 4).as_bytes(),
            text.as_bytes(),
            b"\r\n"
        ]
        .concat()
    );
}

#[test]
fn cluster_slots_matches_redis_byte_for_byte() {
    let mut c = captured();
    let slot = |start: &str, end: &str, port: &str, id: &str, meta: &str| {
        format!(
            "*3\r\n:{start}\r\n:{end}\r\n*4\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$40\r\n{id}\r\n{meta}\r\n"
        )
    };
    let expected = |meta| {
        format!(
            "*3\r\n{}{}{}",
            slot("0", "5460", "30001", A, meta),
            slot("5461", "10922", "30002", B, meta),
            slot("10923", "16383", "30003", C, meta)
        )
    };
    let reply = run(&mut c, "CLUSTER SLOTS");
    assert_eq!(
        String::from_utf8(reply.to_resp(Proto::Resp2)).unwrap(),
        expected("*0")
    );
    assert_eq!(
        String::from_utf8(reply.to_resp(Proto::Resp3)).unwrap(),
        expected("%0")
    );
}

#[test]
fn cluster_shards_entries_match_redis() {
    let mut c = captured();
    let shard = |start: &str, end: &str, port: &str, id: &str| {
        format!(
            "*4\r\n$5\r\nslots\r\n*2\r\n:{start}\r\n:{end}\r\n$5\r\nnodes\r\n*1\r\n*14\r\n\
             $2\r\nid\r\n$40\r\n{id}\r\n$4\r\nport\r\n:{port}\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
             $8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
             $18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
        )
    };
    let Reply::Array(shards) = run(&mut c, "CLUSTER SHARDS") else {
        panic!()
    };
    let mut ours: Vec<String> = shards
        .iter()
        .map(|s| String::from_utf8(s.to_resp(Proto::Resp2)).unwrap())
        .collect();
    let mut theirs = vec![
        shard("0", "5460", "30001", A),
        shard("5461", "10922", "30002", B),
        shard("10923", "16383", "30003", C),
    ];
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn cluster_info_fields_match_redis() {
    let mut c = captured();
    let Reply::Text(info) = run(&mut c, "CLUSTER INFO") else {
        panic!()
    };
    let redis = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
                 cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:3\r\n\
                 cluster_size:3\r\ncluster_current_epoch:3\r\ncluster_my_epoch:1\r\n";
    assert!(info.starts_with(redis), "{info}");
    assert!(info.ends_with("total_cluster_links_buffer_limit_exceeded:0\r\n"));
    c.set_liveness(&id(B), Liveness::Suspect, 0);
    let info = c.info_text();
    assert!(info.starts_with("cluster_state:ok\r\n"), "{info}");
    assert!(info.contains(
        "cluster_slots_ok:10922\r\ncluster_slots_pfail:5462\r\ncluster_slots_fail:0\r\n"
    ));
    c.set_liveness(&id(C), Liveness::Suspect, 0);
    assert!(
        c.info_text().starts_with("cluster_state:fail\r\n"),
        "a minority of masters is reachable"
    );
}

#[test]
fn replicas_render_with_their_masters_epoch_and_hostname() {
    let conf = format!(
        "{NODES_CONF_70}{R} 127.0.0.1:30004@40004,host-four slave {A} 0 1796049240061 4 connected\n"
    );
    let mut c = Cluster::load(&conf, Settings::default(), boot(1)).unwrap();
    run(&mut c, "CLUSTER BUMPEPOCH");
    c.set_heard(&id(R), 1796049240061, 1796049240061, 15000);
    let line = format!("{R} 127.0.0.1:30004@40004,host-four slave {A} 0 1796049240061 4 connected");
    assert!(
        c.nodes_text().lines().any(|l| l == line),
        "{}",
        c.nodes_text()
    );
    let reply = run(&mut c, &format!("CLUSTER REPLICAS {A}")).to_resp(Proto::Resp2);
    assert_eq!(reply, format!("*1\r\n$147\r\n{line}\r\n").into_bytes());
    assert_eq!(
        err(run(&mut c, &format!("CLUSTER REPLICAS {R}"))),
        "ERR The specified node is not a master"
    );
    // CLUSTER SLOTS lists it after its master, with its hostname as metadata.
    let Reply::Array(slots) = c.slots_reply() else {
        panic!()
    };
    let Reply::Array(first) = &slots[0] else {
        panic!()
    };
    assert_eq!(first.len(), 4);
    assert_eq!(
        first[3].to_resp(Proto::Resp2),
        format!(
            "*4\r\n$9\r\n127.0.0.1\r\n:30004\r\n$40\r\n{R}\r\n*2\r\n$8\r\nhostname\r\n$9\r\nhost-four\r\n"
        )
        .into_bytes()
    );
}

#[test]
fn preferred_endpoint_hostname_changes_moved_and_slots() {
    let settings = Settings {
        preferred_endpoint: Endpoint::Hostname,
        ..Settings::default()
    };
    let mut c = Cluster::load(NODES_CONF_70, settings, boot(1)).unwrap();
    let moved = c
        .route_shard([&b"foo"[..]], ConnFlags::default())
        .unwrap_err();
    assert_eq!(moved.error_text(), b"MOVED 12182 ?:30003");
    let Reply::Array(slots) = run(&mut c, "CLUSTER SLOTS") else {
        panic!()
    };
    assert_eq!(
        slots[0].to_resp(Proto::Resp2),
        format!("*3\r\n:0\r\n:5460\r\n*4\r\n$1\r\n?\r\n:30001\r\n$40\r\n{A}\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n")
            .into_bytes()
    );
}

#[test]
fn nodes_conf_round_trips_in_the_72_format() {
    let c = captured();
    let conf = c.nodes_conf();
    let mine = conf.lines().find(|l| l.starts_with(A)).unwrap();
    assert!(
        mine.starts_with(&format!("{A} 127.0.0.1:30001@40001,,tls-port=0,shard-id=")),
        "{mine}"
    );
    assert!(
        mine.ends_with(" myself,master - 0 0 1 connected 0-5460"),
        "{mine}"
    );
    assert!(conf.ends_with("vars currentEpoch 3 lastVoteEpoch 0\n"));
    let again = Cluster::load(&conf, Settings::default(), boot(9)).unwrap();
    assert_eq!(again.myself().id, id(A));
    assert_eq!(again.myself().shard_id, c.myself().shard_id);
    assert_eq!(again.current_epoch(), 3);
    assert_eq!(signature(&again), signature(&c));
    // Peers are disconnected until the gossip layer says otherwise.
    assert_eq!(
        again.nodes_conf(),
        conf.replace(" connected 5", " disconnected 5")
            .replace(" connected 1", " disconnected 1")
    );
    let third = Cluster::load(&again.nodes_conf(), Settings::default(), boot(9)).unwrap();
    assert_eq!(third.nodes_conf(), again.nodes_conf());
}

#[test]
fn nodes_conf_errors_are_refused() {
    let load = |text: &str| Cluster::load(text, Settings::default(), boot(1)).map(|_| ());
    assert_eq!(load("vars currentEpoch 3\n"), Err(ConfError::NoMyself));
    assert!(matches!(
        load(&format!("{A} 127.0.0.1:1@2 myself\n")),
        Err(ConfError::Line { line: 1, .. })
    ));
    assert!(
        load(&format!(
            "{A} 127.0.0.1:1@2 myself,bogus - 0 0 0 connected\n"
        ))
        .is_err()
    );
    assert!(
        load(&format!(
            "{A} 127.0.0.1:1@2 myself,master - 0 0 0 connected 16384\n"
        ))
        .is_err()
    );
    assert!(
        load(&format!(
            "{A} 127.0.0.1:1@2 myself,master - 0 0 0 connected [1->-zz]\n"
        ))
        .is_err()
    );
    assert!(load("vars currentEpoch\n").is_err());
    // An old file without the bus port: port + 10000.
    let c = Cluster::load(
        &format!("{A} 127.0.0.1:7000 myself,master - 0 0 0 connected\n"),
        Settings::default(),
        boot(1),
    )
    .unwrap();
    assert_eq!(c.myself().addr.cport, 17000);
}

#[test]
fn signature_is_what_redis_cli_compares() {
    let text = format!(
        "{B} 127.0.0.1:30002@40002 master - 0 0 2 connected 5461-10922\n\
         {R} 127.0.0.1:30004@40004 slave {A} 0 0 4 connected\n\
         {A} 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 5 0-4 [7->-{B}]\n"
    );
    assert_eq!(
        config_signature(&text).unwrap(),
        format!("{A}:0-4,5|{B}:5461-10922")
    );
    assert_eq!(config_signature(""), None);
}

// ---- claims -------------------------------------------------------------

#[test]
fn a_higher_epoch_claim_takes_slots_and_a_lower_one_does_not() {
    let mut nodes = cluster(3, 0);
    let b = nodes[1].myself().id;
    let mut claim = nodes[1].claim().clone();
    claim.slots.insert(0);
    claim.version.seq += 1;
    claim.config_epoch = 1; // A's own epoch is 1: a collision, no move
    let effects = nodes[2].apply_claim(&claim, 0);
    assert!(effects.is_empty(), "{effects:?}");
    assert_ne!(owner_of(&nodes[2], 0), Some(b));
    claim.config_epoch = 9;
    claim.version.seq += 1;
    nodes[2].apply_claim(&claim, 0);
    assert_eq!(owner_of(&nodes[2], 0), Some(b));
    let effects = nodes[0].apply_claim(&claim, 0);
    assert_eq!(lost(&effects), vec![(0, 0)], "A lost a slot it served");
    assert!(effects.contains(&Effect::SaveConfig));
    let save = effects.iter().position(|e| *e == Effect::SaveConfig);
    let publish = effects.iter().position(|e| *e == Effect::PublishClaim);
    assert!(save < publish, "saved before it is announced: {effects:?}");
    assert_eq!(nodes[0].current_epoch(), 9);
}

#[test]
fn stale_and_repeated_claims_change_nothing() {
    let mut nodes = cluster(2, 0);
    let old = nodes[1].claim().clone();
    let b = nodes[1].myself().id;
    let a = nodes[0].myself().id;
    run(&mut nodes[1], &format!("CLUSTER SETSLOT 8192 NODE {a}"));
    let new = nodes[1].claim().clone();
    assert!(new.version > old.version);
    nodes[0].apply_claim(&new, 0);
    assert!(nodes[0].apply_claim(&old, 0).is_empty());
    assert!(nodes[0].apply_claim(&new, 0).is_empty());
    assert_eq!(
        owner_of(&nodes[0], 8192),
        Some(b),
        "B's epoch is higher: A does not take it"
    );
    assert_eq!(nodes[0].node(&b).unwrap().version, Some(new.version));
}

#[test]
fn equal_epochs_between_masters_resolve_by_id() {
    let mut nodes = vec![fresh(30001), fresh(30002)];
    run(&mut nodes[0], "CLUSTER ADDSLOTS 0");
    run(&mut nodes[1], "CLUSTER ADDSLOTS 1");
    // Both at epoch 0.
    gossip(&mut nodes, 0);
    gossip(&mut nodes, 0);
    let epochs: Vec<u64> = nodes.iter().map(|n| n.myself().config_epoch).collect();
    assert_ne!(epochs[0], epochs[1]);
    let smaller = if nodes[0].myself().id < nodes[1].myself().id {
        0
    } else {
        1
    };
    assert_eq!(epochs[smaller], 1, "the smaller id moved on");
    assert_agree(&nodes.iter().collect::<Vec<_>>());
}

#[test]
fn a_replica_loses_the_slots_its_master_loses() {
    let mut nodes = cluster(2, 1);
    let a = nodes[0].myself().id;
    let c_id = nodes[2].myself().id;
    // A gives slot 0 to C, the other master.
    run(&mut nodes[2], &format!("CLUSTER SETSLOT 0 IMPORTING {a}"));
    run(&mut nodes[2], &format!("CLUSTER SETSLOT 0 NODE {c_id}"));
    let claim = nodes[2].claim().clone();
    let effects = nodes[1].apply_claim(&claim, 0);
    assert_eq!(lost(&effects), vec![(0, 0)]);
    assert!(
        nodes[1].claim().slots.is_empty(),
        "a replica claims no slots"
    );
}

#[test]
fn publish_follows_every_change_of_the_own_claim() {
    let mut c = fresh(30001);
    let before = c.claim().version;
    let (_, effects) = c.command(args("CLUSTER ADDSLOTS 5").list(), 0);
    assert_eq!(effects, vec![Effect::SaveConfig, Effect::PublishClaim]);
    assert_eq!(c.claim().version.seq, before.seq + 1);
    assert_eq!(c.claim().slots.ranges(), vec![(5, 5)]);
    let (_, effects) = c.command(args("CLUSTER NODES").list(), 0);
    assert!(effects.is_empty());
}

// ---- failover -----------------------------------------------------------

#[test]
fn a_dead_masters_replica_takes_over_and_only_it() {
    let mut nodes = cluster(3, 1);
    let dead = nodes[0].myself().id;
    let heir = nodes[1].myself().id;
    lose(&mut nodes[1..], &[0, 1, 2, 3, 4], dead, 0);
    assert!(nodes[1].myself().is_master());
    assert_eq!(nodes[1].myself().slots.ranges(), vec![(0, 5460)]);
    assert!(nodes[1].myself().config_epoch > 3);
    assert_eq!(
        owner_of(&nodes[2], 0),
        Some(dead),
        "others wait for the heir's claim"
    );
    let live = &mut nodes[1..];
    gossip(live, 0);
    let all: Vec<&Cluster> = live.iter().collect();
    assert_agree(&all);
    assert_eq!(owner_of(&nodes[4], 0), Some(heir));
}

#[test]
fn a_dead_master_without_replicas_is_split_among_live_masters() {
    let mut nodes = cluster(3, 0);
    let dead = nodes[2].myself().id;
    lose(&mut nodes[..2], &[0, 1], dead, 0);
    let (a, b) = (&nodes[0], &nodes[1]);
    let took_a = a.myself().slots.len() - 5461;
    let took_b = b.myself().slots.len() - 5461;
    assert!(took_a > 2000 && took_b > 2000, "{took_a} {took_b}");
    assert_eq!(took_a + took_b, 5462);
    gossip(&mut nodes[..2], 0);
    gossip(&mut nodes[..2], 0);
    assert_agree(&[&nodes[0], &nodes[1]]);
    assert!(nodes[0].is_ok());
    // The dead master comes back: it learns it lost everything.
    let live_claims: Vec<Claim> = nodes[..2].iter().map(|n| n.claim().clone()).collect();
    for claim in &live_claims {
        nodes[2].apply_claim(claim, 0);
    }
    assert!(nodes[2].myself().slots.is_empty());
    assert!(nodes[2].myself().is_replica());
    assert_agree(&nodes.iter().collect::<Vec<_>>());
}

#[test]
fn the_minority_side_of_a_partition_takes_no_slots() {
    let mut nodes = cluster(3, 0);
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.myself().id).collect();
    let before = nodes[0].claim().clone();
    // Node 0 is cut off from 1 and 2; each side gossips within itself.
    let timeout = Settings::default().node_timeout_ms;
    lose(&mut nodes[..1], &[0], ids[1], timeout);
    lose(&mut nodes[..1], &[0], ids[2], timeout);
    lose(&mut nodes[1..], &[0, 1], ids[0], timeout);
    let minority = &nodes[0];
    assert_eq!(minority.myself().slots.ranges(), vec![(0, 5460)]);
    assert!(
        minority.claim().same_content(&before),
        "nothing to announce"
    );
    assert!(!minority.is_ok());
    assert_eq!(minority.reports().pfail.len(), 2);
    let text = minority.nodes_text();
    assert_eq!(text.matches(" master,fail? ").count(), 2, "{text}");
    // The majority marks it failed and splits its slots, at once.
    for node in &nodes[1..] {
        assert!(node.node(&ids[0]).unwrap().is_failed());
        assert!(node.nodes_text().contains(" master,fail "));
    }
    let took = nodes[1].myself().slots.len() + nodes[2].myself().slots.len();
    assert_eq!(took, SLOTS);
    for _ in 0..2 {
        gossip(&mut nodes[1..], timeout);
    }
    assert!(nodes[1].is_ok() && nodes[2].is_ok());
    // The partition heals: the minority's slots are gone; it follows.
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                node.set_liveness(id, Liveness::Alive, 3 * timeout);
            }
        }
    }
    for _ in 0..3 {
        gossip(&mut nodes, 3 * timeout);
    }
    assert!(nodes[0].myself().slots.is_empty());
    assert!(nodes[0].myself().is_replica());
    assert_agree(&nodes.iter().collect::<Vec<_>>());
    assert!(nodes.iter().all(Cluster::is_ok));
    assert!(nodes.iter().all(|n| n.reports() == Reports::default()));
}

#[test]
fn a_lone_surviving_master_of_three_takes_nothing() {
    let mut nodes = cluster(3, 0);
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.myself().id).collect();
    let timeout = Settings::default().node_timeout_ms;
    for id in &ids[1..] {
        nodes[0].set_liveness(id, Liveness::Dead, 2 * timeout);
    }
    for now in [2 * timeout, 100 * timeout] {
        nodes[0].tick(now);
        assert_eq!(nodes[0].myself().slots.ranges(), vec![(0, 5460)]);
        assert_eq!(nodes[0].failure_quorum(&ids[1]), (1, 2));
        assert!(!nodes[0].node(&ids[1]).unwrap().is_failed());
    }
}

#[test]
fn failure_reports_count_while_fresh_and_from_slot_holding_masters() {
    // 3 masters with a replica each: A (0) dies.
    let mut nodes = cluster(3, 1);
    let a = nodes[0].myself().id;
    let timeout = Settings::default().node_timeout_ms;
    // B's master (2) reports at 0; C's master (4) suspects A only later.
    nodes[2].set_liveness(&a, Liveness::Suspect, 0);
    let (b, b_reports) = (nodes[2].myself().id, nodes[2].reports());
    nodes[4].apply_reports(&b, &b_reports, 0);
    let late = 2 * timeout + 1;
    nodes[4].set_liveness(&a, Liveness::Suspect, late);
    // Replicas' reports do not count.
    for i in [1, 3, 5] {
        nodes[i].set_liveness(&a, Liveness::Dead, late);
        let (r, reports) = (nodes[i].myself().id, nodes[i].reports());
        nodes[4].apply_reports(&r, &reports, late);
    }
    assert_eq!(nodes[4].failure_quorum(&a), (1, 2), "B's report is stale");
    assert!(!nodes[4].node(&a).unwrap().is_failed());
    // B reports again: fresh.
    nodes[4].apply_reports(&b, &b_reports, late);
    assert!(nodes[4].node(&a).unwrap().is_failed());
    assert_eq!(nodes[4].reports().fail, vec![a]);
    assert_eq!(
        nodes[4].myself().slots.len(),
        5462,
        "A's replica is its heir"
    );
    // A replica that judges A unreachable itself adopts the verdict from
    // one report; one that still hears A does not.
    let (c, c_reports) = (nodes[4].myself().id, nodes[4].reports());
    nodes[3].apply_reports(&c, &c_reports, late);
    assert!(nodes[3].node(&a).unwrap().is_failed());
    nodes[1].set_liveness(&a, Liveness::Alive, late);
    nodes[1].apply_reports(&c, &c_reports, late);
    assert!(!nodes[1].node(&a).unwrap().is_failed());
    assert!(nodes[1].myself().is_replica());
    // Heard again, A is no longer failed.
    nodes[4].set_liveness(&a, Liveness::Alive, late + 1);
    assert!(!nodes[4].node(&a).unwrap().is_failed());
    assert_eq!(nodes[4].reports(), Reports::default());
}

#[test]
fn a_slot_nobody_claims_goes_to_its_heir_after_the_grace() {
    // Two reshards of slot 0 cross: A hands it to B while B hands it to A.
    let mut nodes = cluster(3, 0);
    let (a, b) = (nodes[0].myself().id, nodes[1].myself().id);
    run(&mut nodes[1], &format!("CLUSTER SETSLOT 0 NODE {b}"));
    gossip(&mut nodes, 0);
    run(&mut nodes[1], &format!("CLUSTER SETSLOT 0 NODE {a}"));
    run(&mut nodes[0], &format!("CLUSTER SETSLOT 0 NODE {b}"));
    gossip(&mut nodes, 1_000);
    gossip(&mut nodes, 1_000);
    assert!(
        nodes.iter().all(|n| !n.myself().slots.contains(0)),
        "nobody claims slot 0"
    );
    for node in nodes.iter_mut() {
        node.tick(20_000);
    }
    gossip(&mut nodes, 20_000);
    gossip(&mut nodes, 20_000);
    assert_agree(&nodes.iter().collect::<Vec<_>>());
    let owner = owner_of(&nodes[2], 0).unwrap();
    assert!(
        nodes
            .iter()
            .any(|n| n.myself().id == owner && n.myself().slots.contains(0))
    );
}

#[test]
fn a_reshards_partial_claim_leaves_nothing_loose_once_the_full_one_arrives() {
    // redis-cli moves slots 0 and 1 from A to B and tells C of each at once;
    // B's claims reach C later: the one with slot 0 only, then the one with
    // both, which is what C's table already says.
    let mut nodes = cluster(3, 0);
    let (a, b) = (nodes[0].myself().id, nodes[1].myself().id);
    let mut claims = Vec::new();
    for slot in [0, 1] {
        run(
            &mut nodes[1],
            &format!("CLUSTER SETSLOT {slot} IMPORTING {a}"),
        );
        run(
            &mut nodes[0],
            &format!("CLUSTER SETSLOT {slot} MIGRATING {b}"),
        );
        run(&mut nodes[1], &format!("CLUSTER SETSLOT {slot} NODE {b}"));
        run(&mut nodes[0], &format!("CLUSTER SETSLOT {slot} NODE {b}"));
        run(&mut nodes[2], &format!("CLUSTER SETSLOT {slot} NODE {b}"));
        claims.push(nodes[1].claim().clone());
    }
    for claim in &claims {
        nodes[2].apply_claim(claim, 1_000);
    }
    nodes[2].tick(60_000);
    assert_eq!(owner_of(&nodes[2], 1), Some(b));
    assert_eq!(owner_of(&nodes[2], 0), Some(b));
}

#[test]
fn a_slot_handed_to_a_dead_master_goes_to_a_live_one_after_the_grace() {
    // B and its replica die and fail; A's replica turns to B; then A hands
    // slot 100 to B, which will never claim it.
    let mut nodes = cluster(3, 1);
    // Live first: A, A's replica, C, C's replica; then B and its replica.
    nodes.swap(2, 4);
    nodes.swap(3, 5);
    let (b, rb) = (nodes[4].myself().id, nodes[5].myself().id);
    let live = &mut nodes[..4];
    for node in live.iter_mut() {
        node.set_liveness(&rb, Liveness::Dead, 0);
        node.set_liveness(&b, Liveness::Dead, 0);
    }
    exchange_reports(live, 0);
    gossip(live, 0);
    assert_eq!(
        run(&mut live[1], &format!("CLUSTER REPLICATE {b}")),
        Reply::Ok
    );
    gossip(live, 0);
    assert_eq!(
        run(&mut live[0], &format!("CLUSTER SETSLOT 100 NODE {b}")),
        Reply::Ok
    );
    for now in [1_000, 20_000, 20_000, 20_000] {
        for node in live.iter_mut() {
            node.tick(now);
        }
        exchange_reports(live, now);
        gossip(live, now);
    }
    assert_agree(&live.iter().collect::<Vec<_>>());
    let owner = owner_of(&live[0], 100).expect("slot 100 is bound");
    let heir = live
        .iter()
        .find(|n| n.myself().id == owner)
        .expect("a live node owns slot 100");
    assert!(heir.myself().slots.contains(100));
}

// ---- routing ------------------------------------------------------------

#[test]
fn sharded_commands_are_served_moved_or_refused_as_redis_does() {
    let c = captured();
    let route =
        |chans: &[&str]| c.route_shard(chans.iter().map(|s| s.as_bytes()), ConnFlags::default());
    assert_eq!(route(&["bar"]), Ok(()));
    assert_eq!(route(&[]), Ok(()));
    let moved = route(&["foo"]).unwrap_err();
    assert_eq!(moved.error_text(), b"MOVED 12182 127.0.0.1:30003");
    let cross = route(&["a", "foo"]).unwrap_err();
    assert_eq!(
        cross.error_text(),
        b"CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(route(&["{foo}a", "{foo}b"]).unwrap_err(), moved);
    assert_eq!(route(&["channel:news", "bar"]), Err(Redirect::CrossSlot));
    let mut lone = fresh(30001);
    run(&mut lone, "CLUSTER ADDSLOTS 5061");
    assert_eq!(
        lone.route_shard([&b"foo"[..]], ConnFlags::default())
            .unwrap_err()
            .error_text(),
        b"CLUSTERDOWN Hash slot not served"
    );
    // The cluster is down (slots missing) but sharded pub/sub is allowed by default.
    assert!(!lone.is_ok());
    assert_eq!(
        lone.route_shard([&b"bar"[..]], ConnFlags::default()),
        Ok(())
    );
    let strict = Settings {
        allow_pubsubshard_when_down: false,
        ..Settings::default()
    };
    lone.set_settings(strict, 0);
    assert_eq!(
        lone.route_shard([&b"bar"[..]], ConnFlags::default())
            .unwrap_err()
            .error_text(),
        b"CLUSTERDOWN The cluster is down"
    );
}

#[test]
fn a_replica_serves_its_masters_slots_to_sharded_commands() {
    let nodes = cluster(2, 1);
    let replica = &nodes[1];
    // "bar" (5061) is the master's, "foo" (12182) the other master's.
    assert_eq!(
        replica.route_shard([&b"bar"[..]], ConnFlags::default()),
        Ok(())
    );
    let other = replica
        .route_shard([&b"foo"[..]], ConnFlags::default())
        .unwrap_err();
    assert_eq!(other.error_text(), b"MOVED 12182 127.0.0.1:30003");
    // EXEC needs READONLY for that.
    let master = replica
        .route_exec([&b"bar"[..]], ConnFlags::default())
        .unwrap_err();
    assert_eq!(master.error_text(), b"MOVED 5061 127.0.0.1:30001");
    let readonly = ConnFlags {
        readonly: true,
        asking: false,
    };
    assert_eq!(replica.route_exec([&b"bar"[..]], readonly), Ok(()));
}

#[test]
fn migrating_slots_never_ask_sharded_commands_but_exec_is_asked() {
    let mut c = captured();
    run(&mut c, &format!("CLUSTER SETSLOT 5061 MIGRATING {B}"));
    run(&mut c, &format!("CLUSTER SETSLOT 12182 IMPORTING {C}"));
    let none = ConnFlags::default();
    assert_eq!(c.route_shard([&b"bar"[..]], none), Ok(()));
    assert_eq!(
        c.route_exec([&b"bar"[..]], none).unwrap_err().error_text(),
        b"ASK 5061 127.0.0.1:30002"
    );
    let asking = ConnFlags {
        readonly: false,
        asking: true,
    };
    assert_eq!(c.route_shard([&b"foo"[..]], asking), Ok(()));
    assert_eq!(c.route_exec([&b"foo"[..]], asking), Ok(()));
    assert_eq!(
        c.route_exec([&b"{foo}1"[..], b"{foo}2"], asking)
            .unwrap_err()
            .error_text(),
        b"TRYAGAIN Multiple keys request during rehashing of slot"
    );
    assert!(
        c.route_shard([&b"foo"[..]], none).is_err(),
        "without ASKING: MOVED"
    );
}

#[test]
fn readonly_readwrite_and_asking_are_connection_flags() {
    let mut conn = ConnFlags::default();
    assert_eq!(conn.apply(b"READONLY"), Some(Reply::Ok));
    assert!(conn.readonly);
    assert_eq!(conn.apply(b"readwrite"), Some(Reply::Ok));
    assert!(!conn.readonly);
    assert_eq!(conn.apply(b"asking"), Some(Reply::Ok));
    assert!(conn.asking);
    conn.command_done();
    assert!(!conn.asking);
    assert_eq!(conn.apply(b"ping"), None);
    assert_eq!(
        Reply::error(DISABLED).to_resp(Proto::Resp2),
        b"-ERR This instance has cluster support disabled\r\n"
    );
}

#[test]
fn a_replica_moving_to_another_shard_loses_its_old_masters_slots() {
    let mut nodes = cluster(2, 1);
    let other = nodes[2].myself().id;
    let (reply, effects) = nodes[1].command(args(&format!("CLUSTER REPLICATE {other}")).list(), 0);
    assert_eq!(reply, Reply::Ok);
    assert_eq!(lost(&effects), vec![(0, 8191)]);
    assert_eq!(nodes[1].served_slots().ranges(), vec![(8192, 16383)]);
}

#[test]
fn a_restarted_peer_replaces_its_old_claims() {
    let mut nodes = cluster(2, 0);
    let conf = nodes[1].nodes_conf();
    let old = nodes[1].claim().clone();
    let later = Boot {
        now: 5_000,
        seed: 7,
    };
    let restarted = Cluster::load(&conf, Settings::default(), later).unwrap();
    let new = restarted.claim().clone();
    assert!(
        new.version > old.version,
        "a new incarnation orders after the old one"
    );
    assert_eq!(
        (new.id, new.config_epoch, &new.slots),
        (old.id, old.config_epoch, &old.slots)
    );
    nodes[0].apply_claim(&new, 5_000);
    assert!(
        nodes[0].apply_claim(&old, 5_000).is_empty(),
        "the old incarnation is stale"
    );
}

#[test]
fn cluster_shards_groups_a_replica_with_its_master() {
    let nodes = cluster(2, 1);
    let Reply::Array(shards) = nodes[0].shards_reply() else {
        panic!()
    };
    assert_eq!(shards.len(), 2);
    let text = |r: &Reply| String::from_utf8(r.to_resp(Proto::Resp2)).unwrap();
    let first = shards
        .iter()
        .map(text)
        .find(|s| s.contains(":0\r\n:8191\r\n"))
        .unwrap();
    assert!(first.contains("$5\r\nnodes\r\n*2\r\n"), "{first}");
    assert!(first.contains("$4\r\nrole\r\n$7\r\nreplica\r\n"));
    assert!(!first.contains("loading"), "ringcast replicas need no sync");
}

#[test]
fn loose_slots_survive_a_restart() {
    let mut nodes = cluster(2, 0);
    let b = nodes[1].myself().id;
    // B gives away all it has, then turns replica: its slots are unbound
    // in A's view with nobody claiming them.
    assert_eq!(
        run(&mut nodes[1], "CLUSTER DELSLOTSRANGE 8192 16383"),
        Reply::Ok
    );
    let a = nodes[0].myself().id;
    assert_eq!(
        run(&mut nodes[1], &format!("CLUSTER REPLICATE {a}")),
        Reply::Ok
    );
    let claim = nodes[1].claim().clone();
    nodes[0].apply_claim(&claim, 1_000);
    assert_eq!(owner_of(&nodes[0], 8192), None);
    assert!(nodes[0].node(&b).unwrap().is_replica());
    let conf = nodes[0].nodes_conf();
    assert!(
        conf.ends_with("vars currentEpoch 2 lastVoteEpoch 0 looseSlots 8192-16383\n"),
        "{conf}"
    );
    let mut a = Cluster::load(
        &conf,
        Settings::default(),
        Boot {
            now: 2_000,
            seed: 1,
        },
    )
    .unwrap();
    a.tick(2_000 + 14_999);
    assert_eq!(owner_of(&a, 8192), None, "not before the grace");
    a.tick(2_000 + 15_000);
    assert_eq!(
        owner_of(&a, 8192),
        Some(a.myself().id),
        "the heir (A alone) takes them"
    );
    assert!(!a.nodes_conf().contains("looseSlots"));
}

/// nodes.conf of the replica 127.0.0.1:30004 (hostname `host-four`) added
/// to the captured cluster with `redis-cli --cluster add-node --cluster-slave`.
const REPLICA_CONF_70: &str = "\
de4dfd7307570589293a2814b2e7b8eda193ee1f 127.0.0.1:30003@40003 master - 0 1796049236828 3 connected 10923-16383
59842a06895be50589d2680b301a8082e78dec90 127.0.0.1:30002@40002 master - 0 1796049236726 2 connected 5461-10922
432db750da54b3d5ade2d900c753f459f58e016c 127.0.0.1:30001@40001 master - 0 1796049236930 4 connected 0-5460
ffb809c71a66580edbae0ce7c6e8330df6d3b3c7 127.0.0.1:30004@40004,host-four myself,slave 432db750da54b3d5ade2d900c753f459f58e016c 0 0 4 connected
vars currentEpoch 4 lastVoteEpoch 0
";

#[test]
fn cluster_slots_with_a_replica_matches_redis_byte_for_byte() {
    let mut replica = Cluster::load(REPLICA_CONF_70, Settings::default(), boot(1)).unwrap();
    let redis = format!(
        "*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:30001\r\n$40\r\n{A}\r\n*0\r\n\
         *4\r\n$9\r\n127.0.0.1\r\n:30004\r\n$40\r\n{R}\r\n*2\r\n$8\r\nhostname\r\n$9\r\nhost-four\r\n\
         *3\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:30002\r\n$40\r\n{B}\r\n*0\r\n\
         *3\r\n:10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:30003\r\n$40\r\n{C}\r\n*0\r\n"
    );
    let reply = run(&mut replica, "CLUSTER SLOTS").to_resp(Proto::Resp2);
    assert_eq!(String::from_utf8(reply).unwrap(), redis);
    let Reply::Text(info) = run(&mut replica, "CLUSTER INFO") else {
        panic!()
    };
    assert!(info.contains("cluster_known_nodes:4\r\ncluster_size:3\r\ncluster_current_epoch:4\r\ncluster_my_epoch:4\r\n"));
    let me = replica.nodes_text();
    let line = format!("{R} 127.0.0.1:30004@40004,host-four myself,slave {A} 0 0 4 connected");
    assert!(me.lines().any(|l| l == line), "{me}");
}
