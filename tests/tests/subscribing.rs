//! SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE and their UNSUBSCRIBE counterparts:
//! confirmation frames byte for byte (RESP2 arrays, RESP3 pushes), counts,
//! the three separate namespaces, and binary-safe names.

use ringcast_tests::resp::{self, Frame, Proto};
use ringcast_tests::{Backend, RawConn, Server, backend_tests};

fn subscribe_confirms_each_channel_in_order_with_running_count(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["a", "b", "c"], &[1, 2, 3]);
    }
}

fn psubscribe_count_is_channels_plus_patterns(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["a"], &[1]);
        c.sub("PSUBSCRIBE", &["p*", "q?"], &[2, 3]);
        c.sub("SUBSCRIBE", &["b"], &[4]);
    }
}

fn ssubscribe_count_is_shard_channels_only(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["a"], &[1]);
        c.sub("PSUBSCRIBE", &["p*"], &[2]);
        c.sub("SSUBSCRIBE", &["s1", "s2"], &[1, 2]);
        // And shard channels do not count towards the others.
        c.sub("SUBSCRIBE", &["b"], &[3]);
        c.sub("SUNSUBSCRIBE", &["s1"], &[1]);
    }
}

fn subscribing_again_confirms_with_unchanged_count(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["a", "a"], &[1, 1]);
        c.sub("SUBSCRIBE", &["a"], &[1]);
        c.sub("PSUBSCRIBE", &["p*", "p*"], &[2, 2]);
        c.sub("SSUBSCRIBE", &["s", "s"], &[1, 1]);
    }
}

fn unsubscribe_confirms_every_argument_even_if_never_subscribed(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["a", "b"], &[1, 2]);
        c.sub("UNSUBSCRIBE", &["x", "a", "a"], &[2, 1, 1]);
        c.sub("PSUBSCRIBE", &["p*"], &[2]);
        c.sub("PUNSUBSCRIBE", &["q*", "p*"], &[2, 1]);
        c.sub("SSUBSCRIBE", &["s"], &[1]);
        c.sub("SUNSUBSCRIBE", &["t", "s"], &[1, 0]);
    }
}

fn unsubscribe_of_unknown_channel_outside_pubsub_mode_confirms_zero(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("UNSUBSCRIBE", &["a", "b"], &[0, 0]);
        c.sub("PUNSUBSCRIBE", &["p*"], &[0]);
        c.sub("SUNSUBSCRIBE", &["s"], &[0]);
        // Still not in subscribed mode: ordinary commands work in RESP2 too.
        c.cmd_expect(&["ECHO", "still-normal"], b"$12\r\nstill-normal\r\n");
    }
}

fn unsubscribe_without_channels_replies_null_and_zero(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        for (cmd, kind) in [
            ("UNSUBSCRIBE", "unsubscribe"),
            ("PUNSUBSCRIBE", "punsubscribe"),
            ("SUNSUBSCRIBE", "sunsubscribe"),
        ] {
            c.cmd_expect(&[cmd], &resp::confirmation(proto, kind, None, 0));
        }
        // Exactly one frame each: the next reply is the PING's.
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
}

fn unsubscribe_without_channels_while_holding_only_patterns_replies_null(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("PSUBSCRIBE", &["p*"], &[1]);
        // No channel held: one null frame carrying the pattern count.
        c.cmd_expect(
            &["UNSUBSCRIBE"],
            &resp::confirmation(proto, "unsubscribe", None, 1),
        );
        c.cmd_expect(
            &["SUNSUBSCRIBE"],
            &resp::confirmation(proto, "sunsubscribe", None, 0),
        );
        c.sub("PUNSUBSCRIBE", &["p*"], &[0]);
    }
}

/// Reads `n` confirmations of `kind`; returns their channels and counts in
/// arrival order (Redis walks its own hash table, so the order of channels
/// is not specified, only that each held one comes once).
fn read_confirmations(c: &mut RawConn, kind: &str, n: usize) -> (Vec<String>, Vec<i64>) {
    let mut names = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..n {
        let frame = c.read_frame();
        match (c.proto, &frame) {
            (Proto::Resp2, Frame::Array(_)) | (Proto::Resp3, Frame::Push(_)) => {}
            _ => panic!("confirmation has the wrong frame type: {frame:?}"),
        }
        let (k, rest) = frame.pubsub().expect("pub/sub frame");
        assert_eq!(k, kind.as_bytes(), "{frame:?}");
        names.push(rest[0].text());
        counts.push(rest[1].int());
    }
    names.sort();
    (names, counts)
}

fn unsubscribe_without_channels_drops_every_channel_one_frame_each(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["a", "b", "c"], &[1, 2, 3]);
        c.sub("PSUBSCRIBE", &["p*"], &[4]);
        c.send_cmd(&["UNSUBSCRIBE"]);
        let (names, counts) = read_confirmations(&mut c, "unsubscribe", 3);
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(counts, [3, 2, 1], "the pattern still counts");
        c.cmd_expect(&["PING"], pong(proto));
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", "a", "x", 0);
        publisher.publish("PUBLISH", "px", "y", 1);
        c.expect_pmessage("p*", "px", "y");
        c.sub("PUNSUBSCRIBE", &["p*"], &[0]);
    }
}

fn punsubscribe_without_patterns_drops_every_pattern_one_frame_each(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("PSUBSCRIBE", &["a*", "b*"], &[1, 2]);
        c.sub("SUBSCRIBE", &["ch"], &[3]);
        c.send_cmd(&["PUNSUBSCRIBE"]);
        let (names, counts) = read_confirmations(&mut c, "punsubscribe", 2);
        assert_eq!(names, ["a*", "b*"]);
        assert_eq!(counts, [2, 1]);
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", "ax", "x", 0);
        c.sub("UNSUBSCRIBE", &["ch"], &[0]);
    }
}

fn sunsubscribe_without_channels_drops_every_shard_channel_one_frame_each(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["ch"], &[1]);
        c.sub("SSUBSCRIBE", &["s1", "s2"], &[1, 2]);
        c.send_cmd(&["SUNSUBSCRIBE"]);
        let (names, counts) = read_confirmations(&mut c, "sunsubscribe", 2);
        assert_eq!(names, ["s1", "s2"]);
        assert_eq!(counts, [1, 0], "shard counts ignore the global channel");
        c.sub("UNSUBSCRIBE", &["ch"], &[0]);
    }
}

fn channel_and_shard_channel_of_same_name_are_separate_subscriptions(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["x"], &[1]);
        c.sub("SSUBSCRIBE", &["x"], &[1]);
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", "x", "global", 1);
        c.expect_message("x", "global");
        publisher.publish("SPUBLISH", "x", "shard", 1);
        c.expect_smessage("x", "shard");
        // Dropping one leaves the other.
        c.sub("UNSUBSCRIBE", &["x"], &[0]);
        publisher.publish("PUBLISH", "x", "gone", 0);
        publisher.publish("SPUBLISH", "x", "still", 1);
        c.expect_smessage("x", "still");
        c.sub("SUNSUBSCRIBE", &["x"], &[0]);
    }
}

fn patterns_never_receive_spublish(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("PSUBSCRIBE", &["*"], &[1]);
        let mut publisher = server.conn();
        publisher.publish("SPUBLISH", "x", "shard", 0);
        publisher.publish("PUBLISH", "marker", "m", 1);
        // The marker is the very next frame: nothing came for the SPUBLISH.
        c.expect_pmessage("*", "marker", "m");
        c.sub("PUNSUBSCRIBE", &["*"], &[0]);
    }
}

fn publish_never_reaches_shard_subscribers(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SSUBSCRIBE", &["x"], &[1]);
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", "x", "global", 0);
        publisher.publish("SPUBLISH", "x", "shard", 1);
        c.expect_smessage("x", "shard");
        c.sub("SUNSUBSCRIBE", &["x"], &[0]);
    }
}

fn channel_pattern_and_payload_are_binary_safe(b: Backend) {
    let channel: &[u8] = b"ch\0an\r\nnel\xff";
    let pattern: &[u8] = b"ch\0*\xff";
    let payload: &[u8] = b"pay\r\n\0load\xfe$3\r\n";
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.send(&resp::command(&[&b"SUBSCRIBE"[..], channel]));
        c.expect(&resp::confirmation(proto, "subscribe", Some(channel), 1));
        c.send(&resp::command(&[&b"PSUBSCRIBE"[..], pattern]));
        c.expect(&resp::confirmation(proto, "psubscribe", Some(pattern), 2));
        c.send(&resp::command(&[&b"SSUBSCRIBE"[..], channel]));
        c.expect(&resp::confirmation(proto, "ssubscribe", Some(channel), 1));
        let mut publisher = server.conn();
        publisher.send(&resp::command(&[&b"PUBLISH"[..], channel, payload]));
        publisher.expect(b":2\r\n");
        c.expect(&resp::message(proto, channel, payload));
        c.expect(&resp::pmessage(proto, pattern, channel, payload));
        publisher.send(&resp::command(&[&b"SPUBLISH"[..], channel, payload]));
        publisher.expect(b":1\r\n");
        c.expect(&resp::smessage(proto, channel, payload));
        // A channel differing only after a NUL byte is another channel.
        publisher.send(&resp::command(&[&b"PUBLISH"[..], b"ch\0other", payload]));
        publisher.expect(b":0\r\n");
    }
}

fn empty_channel_name_and_empty_payload_are_allowed(b: Backend) {
    for proto in Proto::BOTH {
        let server = Server::with_backend(b);
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &[""], &[1]);
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", "", "", 1);
        c.expect_message("", "");
    }
}

fn pubsub_mode_lasts_while_any_subscription_remains(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let refused = |cmd: &str| {
        format!(
            "-ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
        )
    };
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.sub("PSUBSCRIBE", &["p*"], &[2]);
    c.sub("SSUBSCRIBE", &["s"], &[1]);
    c.sub("UNSUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["ECHO", "x"], refused("echo").as_bytes());
    c.sub("PUNSUBSCRIBE", &["p*"], &[0]);
    // The shard channel alone keeps the client in pub/sub mode.
    c.cmd_expect(&["ECHO", "x"], refused("echo").as_bytes());
    c.sub("SUNSUBSCRIBE", &["s"], &[0]);
    c.cmd_expect(&["ECHO", "x"], b"$1\r\nx\r\n");
}

fn pong(proto: Proto) -> &'static [u8] {
    match proto {
        Proto::Resp2 => b"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        Proto::Resp3 => b"+PONG\r\n",
    }
}

backend_tests!(
    subscribe_confirms_each_channel_in_order_with_running_count,
    psubscribe_count_is_channels_plus_patterns,
    ssubscribe_count_is_shard_channels_only,
    subscribing_again_confirms_with_unchanged_count,
    unsubscribe_confirms_every_argument_even_if_never_subscribed,
    unsubscribe_of_unknown_channel_outside_pubsub_mode_confirms_zero,
    unsubscribe_without_channels_replies_null_and_zero,
    unsubscribe_without_channels_while_holding_only_patterns_replies_null,
    unsubscribe_without_channels_drops_every_channel_one_frame_each,
    punsubscribe_without_patterns_drops_every_pattern_one_frame_each,
    sunsubscribe_without_channels_drops_every_shard_channel_one_frame_each,
    channel_and_shard_channel_of_same_name_are_separate_subscriptions,
    patterns_never_receive_spublish,
    publish_never_reaches_shard_subscribers,
    channel_pattern_and_payload_are_binary_safe,
    empty_channel_name_and_empty_payload_are_allowed,
    pubsub_mode_lasts_while_any_subscription_remains,
);
