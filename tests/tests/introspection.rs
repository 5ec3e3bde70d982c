//! PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB / HELP,
//! INFO fields, and CLIENT INFO / CLIENT LIST (ids and worker placement).

use ringcast_tests::resp::Proto;
use ringcast_tests::{
    Backend, Frame, Opts, Server, backend_tests, eventually, ringcast_only, target, worker_of,
};

fn sorted_names(reply: Frame) -> Vec<String> {
    let mut names: Vec<String> = reply.items().iter().map(Frame::text).collect();
    names.sort();
    names
}

fn pubsub_channels_lists_channels_with_subscribers_but_not_patterns(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["PUBSUB", "CHANNELS"], b"*0\r\n");
    let mut s1 = server.conn();
    let mut s2 = server.conn();
    s1.sub("SUBSCRIBE", &["news.a", "news.b", "other"], &[1, 2, 3]);
    s2.sub("SUBSCRIBE", &["news.a"], &[1]);
    s2.sub("PSUBSCRIBE", &["pat*"], &[2]);
    s2.sub("SSUBSCRIBE", &["shard"], &[1]);
    assert_eq!(
        sorted_names(c.cmd(&["PUBSUB", "CHANNELS"])),
        ["news.a", "news.b", "other"]
    );
    assert_eq!(
        sorted_names(c.cmd(&["PUBSUB", "CHANNELS", "news.*"])),
        ["news.a", "news.b"]
    );
    c.cmd_expect(&["PUBSUB", "CHANNELS", "nomatch*"], b"*0\r\n");
    s1.sub("UNSUBSCRIBE", &["news.b"], &[2]);
    assert_eq!(
        sorted_names(c.cmd(&["PUBSUB", "CHANNELS", "news.*"])),
        ["news.a"]
    );
}

fn pubsub_numsub_counts_channel_subscribers_only_in_argument_order(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut s1 = server.conn();
    let mut s2 = server.conn();
    s1.sub("SUBSCRIBE", &["a", "b"], &[1, 2]);
    s2.sub("SUBSCRIBE", &["a"], &[1]);
    s2.sub("PSUBSCRIBE", &["*"], &[2]);
    s2.sub("SSUBSCRIBE", &["b"], &[1]);
    c.cmd_expect(
        &["PUBSUB", "NUMSUB", "b", "a", "zzz", "a"],
        b"*8\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n$3\r\nzzz\r\n:0\r\n$1\r\na\r\n:2\r\n",
    );
}

fn pubsub_numsub_without_channels_is_empty_array(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["PUBSUB", "NUMSUB"], b"*0\r\n");
    c.cmd_expect(&["PUBSUB", "SHARDNUMSUB"], b"*0\r\n");
}

fn pubsub_numpat_counts_unique_patterns(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["PUBSUB", "NUMPAT"], b":0\r\n");
    let mut s1 = server.conn();
    let mut s2 = server.conn();
    s1.sub("PSUBSCRIBE", &["a*", "b*"], &[1, 2]);
    s2.sub("PSUBSCRIBE", &["a*"], &[1]);
    s2.sub("SUBSCRIBE", &["a"], &[2]);
    c.cmd_expect(&["PUBSUB", "NUMPAT"], b":2\r\n");
    s1.sub("PUNSUBSCRIBE", &["a*"], &[1]);
    c.cmd_expect(&["PUBSUB", "NUMPAT"], b":2\r\n");
    s2.sub("PUNSUBSCRIBE", &["a*"], &[1]);
    c.cmd_expect(&["PUBSUB", "NUMPAT"], b":1\r\n");
}

fn pubsub_shardchannels_and_shardnumsub_see_only_shard_channels(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut s1 = server.conn();
    let mut s2 = server.conn();
    s1.sub("SSUBSCRIBE", &["s.1", "s.2"], &[1, 2]);
    s2.sub("SSUBSCRIBE", &["s.1"], &[1]);
    s2.sub("SUBSCRIBE", &["g.1"], &[1]);
    assert_eq!(
        sorted_names(c.cmd(&["PUBSUB", "SHARDCHANNELS"])),
        ["s.1", "s.2"]
    );
    assert_eq!(
        sorted_names(c.cmd(&["PUBSUB", "SHARDCHANNELS", "*.2"])),
        ["s.2"]
    );
    assert_eq!(sorted_names(c.cmd(&["PUBSUB", "CHANNELS"])), ["g.1"]);
    c.cmd_expect(
        &["PUBSUB", "SHARDNUMSUB", "s.1", "s.2", "g.1"],
        b"*6\r\n$3\r\ns.1\r\n:2\r\n$3\r\ns.2\r\n:1\r\n$3\r\ng.1\r\n:0\r\n",
    );
}

fn pubsub_counts_drop_when_a_subscriber_disconnects(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    {
        let mut s = server.conn();
        s.sub("SUBSCRIBE", &["a"], &[1]);
        s.sub("PSUBSCRIBE", &["p*"], &[2]);
        s.sub("SSUBSCRIBE", &["s"], &[1]);
        c.cmd_expect(&["PUBSUB", "NUMSUB", "a"], b"*2\r\n$1\r\na\r\n:1\r\n");
    }
    eventually("NUMSUB a drops to 0 after the subscriber closed", || {
        c.cmd(&["PUBSUB", "NUMSUB", "a"]) == c_numsub("a", 0)
    });
    eventually("NUMPAT drops to 0", || {
        c.cmd(&["PUBSUB", "NUMPAT"]) == Frame::Integer(0)
    });
    eventually("SHARDNUMSUB s drops to 0", || {
        c.cmd(&["PUBSUB", "SHARDNUMSUB", "s"]) == c_numsub("s", 0)
    });
    c.publish("PUBLISH", "a", "x", 0);
    c.publish("PUBLISH", "px", "x", 0);
    c.publish("SPUBLISH", "s", "x", 0);
}

fn c_numsub(ch: &str, n: i64) -> Frame {
    Frame::Array(vec![Frame::Bulk(ch.as_bytes().to_vec()), Frame::Integer(n)])
}

fn pubsub_help_lists_subcommands(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let reply = c.cmd(&["PUBSUB", "HELP"]);
    let lines: Vec<String> = reply.items().iter().map(Frame::text).collect();
    let expected = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
    ];
    assert_eq!(lines.len(), expected.len() + 1, "{lines:#?}");
    assert_eq!(lines[..expected.len()], expected);
    // "Prints this help." in 7.0, "Print this help." in later versions.
    assert!(lines[expected.len()].starts_with("    Print"), "{lines:#?}");
    assert!(
        matches!(reply.items()[0], Frame::Simple(_)),
        "help lines are status strings"
    );
}

fn pubsub_unknown_subcommand_is_an_error_naming_it(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["PUBSUB", "Foo"],
        b"-ERR unknown subcommand 'Foo'. Try PUBSUB HELP.\r\n",
    );
    c.cmd_expect(
        &["PUBSUB"],
        b"-ERR wrong number of arguments for 'pubsub' command\r\n",
    );
    // Subcommands have their own arity (NUMPAT takes no argument); CHANNELS
    // passes the table's arity (-2) and is refused by the command itself.
    c.cmd_expect(
        &["PUBSUB", "NUMPAT", "x"],
        b"-ERR wrong number of arguments for 'pubsub|numpat' command\r\n",
    );
    c.cmd_expect(
        &["PUBSUB", "CHANNELS", "a", "b"],
        b"-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n",
    );
}

fn info_reports_pubsub_counts(b: Backend) {
    let server = Server::with_backend(b);
    let mut s1 = server.conn();
    let mut s2 = server.conn_proto(Proto::Resp3);
    s1.sub("SUBSCRIBE", &["a", "b"], &[1, 2]);
    s1.sub("PSUBSCRIBE", &["p*"], &[3]);
    s2.sub("PSUBSCRIBE", &["p*", "q*"], &[1, 2]);
    s2.sub("SSUBSCRIBE", &["s"], &[1]);
    let info = server.info("");
    assert_eq!(info["pubsub_channels"], "2");
    assert_eq!(info["pubsub_patterns"], "2");
    assert_eq!(info["pubsubshard_channels"], "1");
    assert_eq!(
        info["connected_clients"], "3",
        "two subscribers and the INFO client"
    );
    if !target().is_redis() {
        // pubsub_clients appeared in Redis 7.2.
        assert_eq!(info["pubsub_clients"], "2");
    }
}

fn info_counts_connections_and_commands(b: Backend) {
    let server = Server::with_backend(b);
    let before = server.info("stats");
    let received: u64 = before["total_connections_received"].parse().unwrap();
    let processed: u64 = before["total_commands_processed"].parse().unwrap();
    let mut c = server.conn();
    for _ in 0..5 {
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
    let after = server.info("stats");
    let received2: u64 = after["total_connections_received"].parse().unwrap();
    let processed2: u64 = after["total_commands_processed"].parse().unwrap();
    assert_eq!(
        received2,
        received + 2,
        "this client and the second INFO client"
    );
    assert!(processed2 >= processed + 6, "{processed} -> {processed2}");
    assert_eq!(after["rejected_connections"], "0");
}

fn info_server_section_describes_the_process(b: Backend) {
    let server = Server::with_backend(b);
    let info = server.info("");
    let version = &info["redis_version"];
    if target().is_redis() {
        assert!(version.starts_with("7."), "{version}");
    } else {
        assert!(
            version.starts_with("7.2."),
            "ringcast emulates Redis 7.2, says {version}"
        );
        assert!(info.contains_key("ringcast_version"), "{info:?}");
    }
    assert_eq!(info["process_id"], server.pid().to_string());
    assert_eq!(info["tcp_port"], server.port().to_string());
    assert_eq!(info["arch_bits"], "64");
    let _: u64 = info["uptime_in_seconds"]
        .parse()
        .expect("uptime is a number");
    assert_eq!(info["cluster_enabled"], "0");
    assert!(info.contains_key("client_output_buffer_limit_disconnections") || target().is_redis());
    // Sections can be asked for one by one.
    let cluster = server.info("cluster");
    assert_eq!(cluster["cluster_enabled"], "0");
    assert!(!cluster.contains_key("redis_version"));
}

fn info_ringcast_section_reports_backend_and_workers(b: Backend) {
    ringcast_only!("the # Ringcast INFO section");
    let server = Server::start(Opts::new(b).threads(3));
    let mut c = server.conn();
    let text = c.cmd(&["INFO"]).text();
    assert!(text.contains("# Ringcast\r\n"), "{text}");
    let info = server.info("");
    assert_eq!(info["io_backend"], b.expected_info(), "backend {b:?}");
    assert_eq!(info["workers"], "3");
}

fn client_info_and_list_carry_id_and_worker(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.starts_with(&format!("id={id} ")), "{info}");
    assert!(info.ends_with('\n'), "{info:?}");
    let list = c.cmd(&["CLIENT", "LIST"]).text();
    assert!(
        list.lines().any(|l| l.starts_with(&format!("id={id} "))),
        "{list}"
    );
    if !target().is_redis() {
        assert!(info.contains(" io-thread="), "{info}");
        assert!(list.lines().all(|l| l.contains(" io-thread=")), "{list}");
    }
}

fn client_info_and_info_are_verbatim_strings_in_resp3(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    let id = c.cmd(&["CLIENT", "ID"]).int();
    let info = c.cmd(&["CLIENT", "INFO"]);
    assert!(matches!(info, Frame::Verbatim(_)), "{info:?}");
    assert!(info.text().starts_with(&format!("id={id} ")), "{info:?}");
    assert!(info.text().contains(" resp=3"), "{info:?}");
    let all = c.cmd(&["INFO"]);
    assert!(matches!(all, Frame::Verbatim(_)), "{all:?}");
}

fn connections_are_placed_on_workers_round_robin(b: Backend) {
    ringcast_only!("worker placement");
    let server = Server::start(Opts::new(b).threads(3));
    let mut conns: Vec<_> = (0..7).map(|_| server.conn()).collect();
    let workers: Vec<usize> = conns
        .iter_mut()
        .map(|c| worker_of(c).expect("io-thread reported"))
        .collect();
    let first = workers[0];
    let expected: Vec<usize> = (0..7).map(|k| (first + k) % 3).collect();
    assert_eq!(
        workers, expected,
        "k-th accepted connection goes to worker k % threads"
    );
}

fn client_ids_are_unique_and_increasing(b: Backend) {
    let server = Server::with_backend(b);
    let ids: Vec<i64> = (0..6)
        .map(|_| server.conn().cmd(&["CLIENT", "ID"]).int())
        .collect();
    for pair in ids.windows(2) {
        assert!(pair[1] > pair[0], "{ids:?}");
    }
}

backend_tests!(
    pubsub_channels_lists_channels_with_subscribers_but_not_patterns,
    pubsub_numsub_counts_channel_subscribers_only_in_argument_order,
    pubsub_numsub_without_channels_is_empty_array,
    pubsub_numpat_counts_unique_patterns,
    pubsub_shardchannels_and_shardnumsub_see_only_shard_channels,
    pubsub_counts_drop_when_a_subscriber_disconnects,
    pubsub_help_lists_subcommands,
    pubsub_unknown_subcommand_is_an_error_naming_it,
    info_reports_pubsub_counts,
    info_counts_connections_and_commands,
    info_server_section_describes_the_process,
    info_ringcast_section_reports_backend_and_workers,
    client_info_and_list_carry_id_and_worker,
    client_info_and_info_are_verbatim_strings_in_resp3,
    connections_are_placed_on_workers_round_robin,
    client_ids_are_unique_and_increasing,
);
