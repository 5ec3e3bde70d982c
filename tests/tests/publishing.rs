//! PUBLISH and SPUBLISH: message frames byte for byte, receiver counts,
//! channel-plus-pattern double delivery, self-publishing in RESP3, glob
//! pattern semantics, and per-publisher order.

use ringcast_tests::resp::{self, Proto};
use ringcast_tests::{Backend, Frame, Server, backend_tests, target};

fn publish_without_subscribers_replies_zero(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.publish("PUBLISH", "nobody", "x", 0);
    c.publish("SPUBLISH", "nobody", "x", 0);
}

fn publish_delivers_message_frame_byte_exact(b: Backend) {
    let server = Server::with_backend(b);
    let mut s2 = server.conn();
    let mut s3 = server.conn_proto(Proto::Resp3);
    s2.sub("SUBSCRIBE", &["news"], &[1]);
    s3.sub("SUBSCRIBE", &["news"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "news", "hello world", 2);
    s2.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$11\r\nhello world\r\n");
    s3.expect(b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$11\r\nhello world\r\n");
}

fn publish_delivers_pmessage_frame_byte_exact(b: Backend) {
    let server = Server::with_backend(b);
    let mut s2 = server.conn();
    let mut s3 = server.conn_proto(Proto::Resp3);
    s2.sub("PSUBSCRIBE", &["ne*"], &[1]);
    s3.sub("PSUBSCRIBE", &["ne*"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "news", "hi", 2);
    s2.expect(b"*4\r\n$8\r\npmessage\r\n$3\r\nne*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    s3.expect(b">4\r\n$8\r\npmessage\r\n$3\r\nne*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
}

fn spublish_delivers_smessage_frame_and_counts_shard_subscribers(b: Backend) {
    let server = Server::with_backend(b);
    let mut s2 = server.conn();
    let mut s3 = server.conn_proto(Proto::Resp3);
    s2.sub("SSUBSCRIBE", &["shard"], &[1]);
    s3.sub("SSUBSCRIBE", &["shard"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("SPUBLISH", "shard", "v", 2);
    s2.expect(b"*3\r\n$8\r\nsmessage\r\n$5\r\nshard\r\n$1\r\nv\r\n");
    s3.expect(b">3\r\n$8\r\nsmessage\r\n$5\r\nshard\r\n$1\r\nv\r\n");
}

fn publish_counts_channel_subscribers_plus_matching_pattern_subscriptions(b: Backend) {
    let server = Server::with_backend(b);
    let mut ch1 = server.conn();
    let mut ch2 = server.conn();
    let mut pat = server.conn();
    let mut two_patterns = server.conn();
    let mut other = server.conn();
    ch1.sub("SUBSCRIBE", &["news.tech"], &[1]);
    ch2.sub("SUBSCRIBE", &["news.tech"], &[1]);
    pat.sub("PSUBSCRIBE", &["news.*"], &[1]);
    two_patterns.sub("PSUBSCRIBE", &["news.*", "*.tech"], &[1, 2]);
    other.sub("PSUBSCRIBE", &["sport.*"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "news.tech", "x", 5);
    ch1.expect_message("news.tech", "x");
    ch2.expect_message("news.tech", "x");
    pat.expect_pmessage("news.*", "news.tech", "x");
    // One pmessage per matching pattern, in no specified order.
    let got = [two_patterns.read_frame(), two_patterns.read_frame()];
    let mut pats: Vec<_> = got
        .iter()
        .map(|f| f.pmessage().expect("pmessage").0.to_vec())
        .collect();
    pats.sort();
    assert_eq!(pats, [b"*.tech".to_vec(), b"news.*".to_vec()]);
    publisher.publish("PUBLISH", "sport.x", "y", 1);
    other.expect_pmessage("sport.*", "sport.x", "y");
}

fn client_on_channel_and_matching_pattern_gets_message_then_pmessage(b: Backend) {
    let server = Server::with_backend(b);
    for proto in Proto::BOTH {
        let mut c = server.conn_proto(proto);
        let channel = format!("both.{proto:?}");
        c.sub("SUBSCRIBE", &[&channel], &[1]);
        c.sub("PSUBSCRIBE", &["both.*"], &[2]);
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", &channel, "twice", 2);
        c.expect_message(&channel, "twice");
        c.expect_pmessage("both.*", &channel, "twice");
        c.sub("PUNSUBSCRIBE", &["both.*"], &[1]);
        c.sub("UNSUBSCRIBE", &[&channel], &[0]);
    }
}

fn resp3_self_publish_reply_precedes_own_push(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.sub("SUBSCRIBE", &["me"], &[1]);
    c.send_cmd(&["PUBLISH", "me", "echo"]);
    let push = resp::message(Proto::Resp3, b"me", b"echo");
    if target().is_redis() {
        // Redis 7.0 writes the push first; 7.2 (what ringcast follows) the reply.
        c.expect(&push);
        c.expect(b":1\r\n");
    } else {
        c.expect(b":1\r\n");
        c.expect(&push);
    }
}

fn resp3_self_publish_to_pattern_counts_and_delivers(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.sub("PSUBSCRIBE", &["m*"], &[1]);
    c.send_cmd(&["PUBLISH", "me", "echo"]);
    let mut frames = [c.read_frame(), c.read_frame()];
    if target().is_redis() {
        frames.reverse();
    }
    assert_eq!(frames[0], Frame::Integer(1));
    assert_eq!(
        frames[1].pmessage(),
        Some((&b"m*"[..], &b"me"[..], &b"echo"[..]))
    );
}

fn psubscribe_matches_with_redis_glob_rules(b: Backend) {
    let server = Server::with_backend(b);
    // (pattern, channel, matches) — stringmatchlen semantics.
    let cases: &[(&str, &str, bool)] = &[
        // stringmatchlen never enters its loop for an empty channel: only
        // the empty pattern matches it.
        ("*", "", false),
        ("", "", true),
        ("a*", "a", true),
        ("*", "anything", true),
        ("h?llo", "hello", true),
        ("h?llo", "hllo", false),
        ("h*llo", "hllo", true),
        ("h**llo", "heeello", true),
        ("h[ae]llo", "hallo", true),
        ("h[ae]llo", "hillo", false),
        ("h[^e]llo", "hallo", true),
        ("h[^e]llo", "hello", false),
        ("h[a-c]llo", "hbllo", true),
        ("h[c-a]llo", "hbllo", true),
        ("h[a-c]llo", "hdllo", false),
        ("h\\*llo", "h*llo", true),
        ("h\\*llo", "hello", false),
        ("h[\\]]llo", "h]llo", true),
        ("H*", "hello", false),
        ("a[]b", "a]b", false),
        ("ab[", "ab", false),
        ("a?", "a\u{e9}", false),
        ("*.*.*", "a.b.c", true),
        ("*.*.*", "a.b", false),
    ];
    let mut publisher = server.conn();
    for (pattern, channel, matches) in cases {
        let mut c = server.conn();
        c.sub("PSUBSCRIBE", &[pattern], &[1]);
        publisher.send_cmd(&["PUBLISH", channel, "m"]);
        let expected = if *matches { b":1\r\n" } else { b":0\r\n" };
        let got = publisher.read_frame();
        assert_eq!(
            resp::int(got.int()),
            expected,
            "pattern {pattern:?} vs channel {channel:?}"
        );
        if *matches {
            c.expect_pmessage(pattern, channel, "m");
        }
        c.sub("PUNSUBSCRIBE", &[pattern], &[0]);
    }
}

fn pathological_pattern_answers(b: Backend) {
    let server = Server::with_backend(b);
    let pattern = "*?".repeat(25_000);
    let mut c = server.conn();
    c.sub("PSUBSCRIBE", &[&pattern], &[1]);
    let mut publisher = server.conn();
    // Cannot match (too short) and must not take exponential time to say so.
    publisher.publish("PUBLISH", &"x".repeat(100), "m", 0);
    // CVE-2022-36021 style: many stars followed by a failing tail.
    let mut c2 = server.conn();
    let stars = format!("{}b", "a*".repeat(100));
    c2.sub("PSUBSCRIBE", &[&stars], &[1]);
    publisher.publish("PUBLISH", &"a".repeat(200), "m", 0);
    publisher.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn messages_from_one_publisher_arrive_in_order(b: Backend) {
    let server = Server::with_backend(b);
    let mut subs: Vec<_> = (0..3).map(|_| server.conn()).collect();
    for s in &mut subs {
        s.sub("SUBSCRIBE", &["seq"], &[1]);
    }
    let mut publisher = server.conn();
    const N: usize = 500;
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend(resp::command(&["PUBLISH", "seq", &i.to_string()]));
    }
    publisher.send(&batch);
    for _ in 0..N {
        publisher.expect(b":3\r\n");
    }
    for s in &mut subs {
        for i in 0..N {
            s.expect_message("seq", &i.to_string());
        }
    }
}

fn large_payload_is_delivered_intact(b: Backend) {
    let server = Server::with_backend(b);
    let payload: String = (0..1_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut s2 = server.conn();
    let mut s3 = server.conn_proto(Proto::Resp3);
    s2.sub("SUBSCRIBE", &["big"], &[1]);
    s3.sub("PSUBSCRIBE", &["b*"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "big", &payload, 2);
    s2.expect_message("big", &payload);
    s3.expect_pmessage("b*", "big", &payload);
}

fn publish_with_wrong_arity_is_an_error(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["PUBLISH", "a"],
        b"-ERR wrong number of arguments for 'publish' command\r\n",
    );
    c.cmd_expect(
        &["PUBLISH", "a", "b", "c"],
        b"-ERR wrong number of arguments for 'publish' command\r\n",
    );
    c.cmd_expect(
        &["SPUBLISH", "a"],
        b"-ERR wrong number of arguments for 'spublish' command\r\n",
    );
    c.cmd_expect(
        &["PSUBSCRIBE"],
        b"-ERR wrong number of arguments for 'psubscribe' command\r\n",
    );
    c.cmd_expect(
        &["SSUBSCRIBE"],
        b"-ERR wrong number of arguments for 'ssubscribe' command\r\n",
    );
}

fn publish_reaches_subscribers_whatever_database_either_side_selected(b: Backend) {
    let server = Server::with_backend(b);
    let mut sub = server.conn();
    sub.cmd_expect(&["SELECT", "5"], b"+OK\r\n");
    sub.sub("SUBSCRIBE", &["db"], &[1]);
    let mut publisher = server.conn();
    publisher.cmd_expect(&["SELECT", "9"], b"+OK\r\n");
    publisher.publish("PUBLISH", "db", "x", 1);
    sub.expect_message("db", "x");
}

backend_tests!(
    publish_without_subscribers_replies_zero,
    publish_delivers_message_frame_byte_exact,
    publish_delivers_pmessage_frame_byte_exact,
    spublish_delivers_smessage_frame_and_counts_shard_subscribers,
    publish_counts_channel_subscribers_plus_matching_pattern_subscriptions,
    client_on_channel_and_matching_pattern_gets_message_then_pmessage,
    resp3_self_publish_reply_precedes_own_push,
    resp3_self_publish_to_pattern_counts_and_delivers,
    psubscribe_matches_with_redis_glob_rules,
    pathological_pattern_answers,
    messages_from_one_publisher_arrive_in_order,
    large_payload_is_delivered_intact,
    publish_with_wrong_arity_is_an_error,
    publish_reaches_subscribers_whatever_database_either_side_selected,
);
