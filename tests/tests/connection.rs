//! Connection commands a pub/sub server must answer like Redis: PING, ECHO,
//! QUIT, RESET, HELLO, AUTH, SELECT, CLIENT, FLUSHALL/FLUSHDB/DBSIZE, and
//! the errors for unknown commands and wrong arity.

use ringcast_tests::resp::{self, Proto};
use ringcast_tests::{
    Backend, Frame, Opts, Server, backend_tests, eventually, ringcast_only, target,
};

/// Server name and version HELLO reports.
fn hello_identity(server: &Server) -> (String, String) {
    if target().is_redis() {
        (
            "redis".into(),
            server.info("server")["redis_version"].clone(),
        )
    } else {
        ("redis".into(), "7.2.4".into())
    }
}

/// The exact HELLO reply: a map in RESP3, a flat array in RESP2.
fn hello_reply(server: &Server, proto: Proto, id: i64) -> Vec<u8> {
    let (name, version) = hello_identity(server);
    let mut out = match proto {
        Proto::Resp2 => b"*14\r\n".to_vec(),
        Proto::Resp3 => b"%7\r\n".to_vec(),
    };
    let proto_number = match proto {
        Proto::Resp2 => 2,
        Proto::Resp3 => 3,
    };
    for (key, value) in [
        ("server", resp::bulk(name.as_bytes())),
        ("version", resp::bulk(version.as_bytes())),
        ("proto", resp::int(proto_number)),
        ("id", resp::int(id)),
        ("mode", resp::bulk(b"standalone")),
        ("role", resp::bulk(b"master")),
        ("modules", b"*0\r\n".to_vec()),
    ] {
        out.extend(resp::bulk(key.as_bytes()));
        out.extend(value);
    }
    out
}

const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";

fn ping_replies_pong_or_its_argument(b: Backend) {
    let server = Server::with_backend(b);
    for proto in Proto::BOTH {
        let mut c = server.conn_proto(proto);
        c.cmd_expect(&["PING"], b"+PONG\r\n");
        c.cmd_expect(&["PING", "hello"], b"$5\r\nhello\r\n");
        c.cmd_expect(&["PING", ""], b"$0\r\n\r\n");
        c.cmd_expect(
            &["PING", "a", "b"],
            b"-ERR wrong number of arguments for 'ping' command\r\n",
        );
    }
}

fn echo_replies_its_argument_as_bulk(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["ECHO", "hi there"], b"$8\r\nhi there\r\n");
    c.send(&resp::command(&[&b"ECHO"[..], b"\0\r\n\xff"]));
    c.expect(b"$4\r\n\0\r\n\xff\r\n");
    c.cmd_expect(
        &["ECHO"],
        b"-ERR wrong number of arguments for 'echo' command\r\n",
    );
    c.cmd_expect(
        &["ECHO", "a", "b"],
        b"-ERR wrong number of arguments for 'echo' command\r\n",
    );
}

fn command_names_are_case_insensitive(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["pInG"], b"+PONG\r\n");
    c.cmd_expect(&["echo", "x"], b"$1\r\nx\r\n");
    c.sub("subscribe", &["a"], &[1]);
    c.sub("Unsubscribe", &["a"], &[0]);
}

fn inline_commands_are_parsed_like_redis(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"PING\r\n");
    c.expect(b"+PONG\r\n");
    c.send(b"PING\n");
    c.expect(b"+PONG\r\n");
    c.send(b"ECHO   spaced    \r\n");
    c.expect(b"$6\r\nspaced\r\n");
    c.send(b"ECHO \"a b\"\r\n");
    c.expect(b"$3\r\na b\r\n");
    c.send(b"ECHO 'c d'\r\n");
    c.expect(b"$3\r\nc d\r\n");
    c.send(b"ECHO \"\\x41\\n\"\r\n");
    c.expect(b"$2\r\nA\n\r\n");
    c.send(b"SUBSCRIBE a b\r\n");
    c.expect(&resp::confirmations(
        Proto::Resp2,
        "subscribe",
        &["a", "b"],
        &[1, 2],
    ));
    c.send(b"PING\r\n");
    c.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

fn pipelined_commands_are_answered_in_order(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        let arg = format!("m{i}");
        batch.extend(resp::command(&["ECHO", &arg]));
        expected.extend(resp::bulk(arg.as_bytes()));
        batch.extend(b"PING\r\n");
        expected.extend(b"+PONG\r\n");
    }
    c.send(&batch);
    c.expect(&expected);
}

fn requests_split_into_single_bytes_are_reassembled(b: Backend) {
    let server = Server::with_backend(b);
    let mut sub = server.conn();
    sub.sub("SUBSCRIBE", &["slow"], &[1]);
    let mut c = server.conn();
    for byte in resp::command(&["PUBLISH", "slow", "drip"]) {
        c.send(&[byte]);
    }
    c.expect(b":1\r\n");
    sub.expect_message("slow", "drip");
    for byte in b"ECHO inline\r\n" {
        c.send(&[*byte]);
    }
    c.expect(b"$6\r\ninline\r\n");
}

fn quit_replies_ok_and_closes_ignoring_what_follows(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"QUIT\r\nPING\r\n");
    c.expect(b"+OK\r\n");
    c.expect_closed();
}

fn reset_drops_subscriptions_name_and_protocol(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.cmd_expect(&["CLIENT", "SETNAME", "before"], b"+OK\r\n");
    c.cmd_expect(&["SELECT", "3"], b"+OK\r\n");
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.sub("PSUBSCRIBE", &["p*"], &[2]);
    c.sub("SSUBSCRIBE", &["s"], &[1]);
    // Silently: no unsubscribe frames, just +RESET.
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    c.proto = Proto::Resp2;
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$-1\r\n");
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let mut other = server.conn();
    other.publish("PUBLISH", "a", "x", 0);
    other.publish("PUBLISH", "px", "x", 0);
    other.publish("SPUBLISH", "s", "x", 0);
    // RESP2 again: a null channel is $-1 now.
    c.cmd_expect(
        &["UNSUBSCRIBE"],
        &resp::confirmation(Proto::Resp2, "unsubscribe", None, 0),
    );
}

fn hello_3_replies_server_map_byte_exact(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    c.cmd_expect(&["HELLO", "3"], &hello_reply(&server, Proto::Resp3, id));
    // The connection now speaks RESP3: a null is `_`.
    c.cmd_expect(&["CLIENT", "GETNAME"], b"_\r\n");
}

fn hello_2_replies_flat_array_byte_exact(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    let id = c.cmd(&["CLIENT", "ID"]).int();
    c.cmd_expect(&["HELLO", "2"], &hello_reply(&server, Proto::Resp2, id));
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$-1\r\n");
}

fn hello_without_version_keeps_current_protocol(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    c.cmd_expect(&["HELLO"], &hello_reply(&server, Proto::Resp2, id));
    c.hello3();
    c.cmd_expect(&["HELLO"], &hello_reply(&server, Proto::Resp3, id));
}

fn hello_with_unsupported_version_replies_noproto(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    for v in ["1", "4", "0"] {
        c.cmd_expect(&["HELLO", v], b"-NOPROTO unsupported protocol version\r\n");
    }
    c.cmd_expect(
        &["HELLO", "three"],
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    // Still RESP2.
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$-1\r\n");
}

fn hello_setname_names_the_client(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let reply = c.cmd(&["HELLO", "3", "SETNAME", "myname"]);
    assert!(matches!(reply, Frame::Map(_)), "{reply:?}");
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$6\r\nmyname\r\n");
    c.cmd_expect(
        &["HELLO", "3", "BOGUS"],
        b"-ERR Syntax error in HELLO option 'BOGUS'\r\n",
    );
}

fn auth_without_configured_password_is_an_error(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["AUTH", "x"],
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    );
    // Without a password the default user takes any password.
    c.cmd_expect(&["AUTH", "nobody", "x"], WRONGPASS);
    c.cmd_expect(&["AUTH", "default", "x"], b"+OK\r\n");
    c.cmd_expect(
        &["AUTH"],
        b"-ERR wrong number of arguments for 'auth' command\r\n",
    );
}

fn requirepass_refuses_commands_before_auth_with_noauth(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("s3cret"));
    let mut c = server.raw();
    c.cmd_expect(&["PING"], NOAUTH);
    c.cmd_expect(&["ECHO", "x"], NOAUTH);
    c.cmd_expect(&["SUBSCRIBE", "a"], NOAUTH);
    c.cmd_expect(&["PSUBSCRIBE", "a*"], NOAUTH);
    c.cmd_expect(&["PUBLISH", "a", "x"], NOAUTH);
    c.cmd_expect(&["PUBSUB", "CHANNELS"], NOAUTH);
    c.cmd_expect(&["CLIENT", "ID"], NOAUTH);
    // Command lookup and the command table's arity come before authentication
    // (PING's own argument check comes after).
    c.cmd_expect(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    );
    c.cmd_expect(
        &["ECHO"],
        b"-ERR wrong number of arguments for 'echo' command\r\n",
    );
    c.cmd_expect(&["PING", "a", "b"], NOAUTH);
    // An authenticated publisher sees no subscriber from the refused SUBSCRIBE.
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "a", "x", 0);
}

fn requirepass_hello_needs_auth_option(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("s3cret"));
    let mut c = server.raw();
    // Redis 7.2 names the protocol argument in this text; 7.0 did not.
    let expected: &[u8] = if server.target().is_redis() {
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
    } else {
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
    };
    c.cmd_expect(&["HELLO", "3"], expected);
    c.cmd_expect(&["HELLO", "3", "AUTH", "default", "wrong"], WRONGPASS);
    c.cmd_expect(&["HELLO", "3", "AUTH", "nobody", "s3cret"], WRONGPASS);
    c.cmd_expect(&["PING"], NOAUTH);
    let reply = c.cmd(&["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "n"]);
    assert!(matches!(reply, Frame::Map(_)), "{reply:?}");
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$1\r\nn\r\n");
}

fn requirepass_auth_accepts_password_alone_or_with_default_user(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("s3cret"));
    let mut c = server.raw();
    c.cmd_expect(&["AUTH", "wrong"], WRONGPASS);
    c.cmd_expect(&["PING"], NOAUTH);
    c.cmd_expect(&["AUTH", "s3cret"], b"+OK\r\n");
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let mut d = server.raw();
    d.cmd_expect(&["AUTH", "nobody", "s3cret"], WRONGPASS);
    d.cmd_expect(&["AUTH", "default", "s3cret"], b"+OK\r\n");
    d.sub("SUBSCRIBE", &["a"], &[1]);
    c.publish("PUBLISH", "a", "authed", 1);
    d.expect_message("a", "authed");
}

fn requirepass_allows_quit_and_reset_before_auth(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("s3cret"));
    let mut c = server.raw();
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    c.cmd_expect(&["QUIT"], b"+OK\r\n");
    c.expect_closed();
}

fn reset_forgets_authentication(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("s3cret"));
    let mut c = server.conn();
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    c.cmd_expect(&["PING"], NOAUTH);
}

fn select_accepts_databases_0_to_15(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["SELECT", "0"], b"+OK\r\n");
    c.cmd_expect(&["SELECT", "15"], b"+OK\r\n");
    c.cmd_expect(&["SELECT", "16"], b"-ERR DB index is out of range\r\n");
    c.cmd_expect(&["SELECT", "-1"], b"-ERR DB index is out of range\r\n");
    c.cmd_expect(
        &["SELECT", "x"],
        b"-ERR value is not an integer or out of range\r\n",
    );
    c.cmd_expect(
        &["SELECT"],
        b"-ERR wrong number of arguments for 'select' command\r\n",
    );
}

fn client_id_matches_hello_and_client_info(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    assert!(id > 0);
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.starts_with(&format!("id={id} ")), "{info}");
    let Frame::Map(fields) = c.cmd(&["HELLO", "3"]) else {
        panic!("HELLO 3 is a map")
    };
    let hello_id = fields
        .iter()
        .find(|(k, _)| k.bytes() == Some(b"id"))
        .map(|(_, v)| v.int())
        .expect("HELLO has an id");
    assert_eq!(hello_id, id);
}

fn client_setname_and_getname_round_trip(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$-1\r\n");
    c.cmd_expect(&["CLIENT", "SETNAME", "worker-1"], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$8\r\nworker-1\r\n");
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.contains(" name=worker-1 "), "{info}");
    c.cmd_expect(
        &["CLIENT", "SETNAME", "a b"],
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    );
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$8\r\nworker-1\r\n");
    // The empty name clears it.
    c.cmd_expect(&["CLIENT", "SETNAME", ""], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "GETNAME"], b"$-1\r\n");
}

fn client_setinfo_accepts_library_name_and_version(b: Backend) {
    ringcast_only!("CLIENT SETINFO appeared in Redis 7.2");
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "SETINFO", "lib-ver", "1.2.3"], b"+OK\r\n");
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.contains(" lib-name=mylib "), "{info}");
    assert!(info.contains(" lib-ver=1.2.3"), "{info}");
    let reply = c.cmd(&["CLIENT", "SETINFO", "bogus", "x"]);
    assert!(reply.is_error(), "{reply:?}");
}

fn client_unknown_subcommand_is_an_error(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["CLIENT", "FOO"],
        b"-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n",
    );
    c.cmd_expect(
        &["CLIENT"],
        b"-ERR wrong number of arguments for 'client' command\r\n",
    );
    c.cmd_expect(
        &["CLIENT", "ID", "x"],
        b"-ERR wrong number of arguments for 'client|id' command\r\n",
    );
}

fn client_kill_by_id_closes_the_target_connection(b: Backend) {
    let server = Server::with_backend(b);
    let mut victim = server.conn();
    let victim_id = victim.cmd(&["CLIENT", "ID"]).int().to_string();
    victim.sub("SUBSCRIBE", &["v"], &[1]);
    // Two workers: the killer may well sit on the other one.
    let mut killer = server.conn();
    killer.cmd_expect(&["CLIENT", "KILL", "ID", &victim_id], b":1\r\n");
    victim.expect_closed();
    killer.cmd_expect(&["CLIENT", "KILL", "ID", "999999"], b":0\r\n");
    eventually("the killed subscriber leaves the channel", || {
        killer.cmd(&["PUBLISH", "v", "x"]) == Frame::Integer(0)
    });
}

fn client_reply_off_suppresses_replies_but_not_pushes(b: Backend) {
    let server = Server::with_backend(b);
    for proto in Proto::BOTH {
        let mut c = server.conn_proto(proto);
        let channel = format!("off.{proto:?}");
        c.send_cmd(&["CLIENT", "REPLY", "OFF"]);
        c.send_cmd(&["PING"]);
        // Subscribe confirmations are pushes: still sent.
        c.sub("SUBSCRIBE", &[&channel], &[1]);
        c.send_cmd(&["PING"]);
        let mut publisher = server.conn();
        publisher.publish("PUBLISH", &channel, "pushed", 1);
        c.expect_message(&channel, "pushed");
        c.sub("UNSUBSCRIBE", &[&channel], &[0]);
        c.cmd_expect(&["CLIENT", "REPLY", "ON"], b"+OK\r\n");
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
}

fn client_reply_skip_suppresses_only_the_next_reply(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send_cmd(&["CLIENT", "REPLY", "SKIP"]);
    c.send_cmd(&["ECHO", "skipped"]);
    c.cmd_expect(&["ECHO", "shown"], b"$5\r\nshown\r\n");
    c.cmd_expect(&["CLIENT", "REPLY", "ON"], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "REPLY", "MAYBE"], b"-ERR syntax error\r\n");
}

fn flush_commands_reply_as_an_empty_keyspace(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["FLUSHALL"], b"+OK\r\n");
    c.cmd_expect(&["FLUSHDB"], b"+OK\r\n");
    c.cmd_expect(&["DBSIZE"], b":0\r\n");
}

fn unknown_command_error_quotes_name_and_first_arguments(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    );
    c.cmd_expect(
        &["NoSuch", "a", "b c"],
        b"-ERR unknown command 'NoSuch', with args beginning with: 'a' 'b c' \r\n",
    );
    // Arguments are listed while the list (quotes and spaces included) is
    // shorter than 128 bytes, each cut to what is left of those 128.
    let a = "a".repeat(100);
    let b_ = "b".repeat(60);
    let expected = format!(
        "-ERR unknown command 'NOSUCH', with args beginning with: '{a}' '{}' \r\n",
        "b".repeat(25)
    );
    c.cmd_expect(&["NOSUCH", &a, &b_, "c", "d"], expected.as_bytes());
    // The connection carries on.
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn keyspace_commands_are_unknown(b: Backend) {
    ringcast_only!("redis-server has a keyspace");
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["GET", "k"],
        b"-ERR unknown command 'GET', with args beginning with: 'k' \r\n",
    );
    c.cmd_expect(
        &["SET", "k", "v"],
        b"-ERR unknown command 'SET', with args beginning with: 'k' 'v' \r\n",
    );
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn debug_is_refused_when_not_enabled(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["DEBUG", "SLEEP", "0"],
        b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n",
    );
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn debug_sleep_zero_replies_ok_when_enabled(b: Backend) {
    let server = Server::start(Opts::new(b).debug_command());
    let mut c = server.conn();
    c.cmd_expect(&["DEBUG", "SLEEP", "0"], b"+OK\r\n");
}

fn command_introspection_describes_pubsub_commands(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    assert!(c.cmd(&["COMMAND", "COUNT"]).int() > 0);
    let info = c.cmd(&["COMMAND", "INFO", "publish", "nosuchcommand"]);
    let entries = info.items();
    assert_eq!(entries.len(), 2, "{info:?}");
    assert_eq!(entries[0].items()[0].text(), "publish");
    assert_eq!(entries[0].items()[1].int(), 3, "PUBLISH arity");
    assert_eq!(entries[1], Frame::Null);
    let docs = c.cmd(&["COMMAND", "DOCS", "subscribe"]);
    assert!(!docs.is_error(), "{docs:?}");
    c.cmd_expect(&["CLIENT", "NO-EVICT", "on"], b"+OK\r\n");
}

fn config_get_answers_maxclients(b: Backend) {
    let server = Server::start(Opts::new(b).maxclients(77));
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "GET", "maxclients"],
        b"*2\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n",
    );
    c.cmd_expect(&["CONFIG", "GET", "no-such-parameter"], b"*0\r\n");
}

/// Integers are read as Redis's `string2ll` reads them: no leading zero,
/// no `-0`.
fn integers_with_a_leading_zero_or_minus_zero_are_not_integers(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    for args in [&["SELECT", "03"][..], &["SELECT", "-0"]] {
        c.cmd_expect(args, b"-ERR value is not an integer or out of range\r\n");
    }
    c.cmd_expect(
        &["HELLO", "03"],
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    c.cmd_expect(&["SELECT", "0"], b"+OK\r\n");
}

backend_tests!(
    integers_with_a_leading_zero_or_minus_zero_are_not_integers,
    ping_replies_pong_or_its_argument,
    echo_replies_its_argument_as_bulk,
    command_names_are_case_insensitive,
    inline_commands_are_parsed_like_redis,
    pipelined_commands_are_answered_in_order,
    requests_split_into_single_bytes_are_reassembled,
    quit_replies_ok_and_closes_ignoring_what_follows,
    reset_drops_subscriptions_name_and_protocol,
    hello_3_replies_server_map_byte_exact,
    hello_2_replies_flat_array_byte_exact,
    hello_without_version_keeps_current_protocol,
    hello_with_unsupported_version_replies_noproto,
    hello_setname_names_the_client,
    auth_without_configured_password_is_an_error,
    requirepass_refuses_commands_before_auth_with_noauth,
    requirepass_hello_needs_auth_option,
    requirepass_auth_accepts_password_alone_or_with_default_user,
    requirepass_allows_quit_and_reset_before_auth,
    reset_forgets_authentication,
    select_accepts_databases_0_to_15,
    client_id_matches_hello_and_client_info,
    client_setname_and_getname_round_trip,
    client_setinfo_accepts_library_name_and_version,
    client_unknown_subcommand_is_an_error,
    client_kill_by_id_closes_the_target_connection,
    client_reply_off_suppresses_replies_but_not_pushes,
    client_reply_skip_suppresses_only_the_next_reply,
    flush_commands_reply_as_an_empty_keyspace,
    unknown_command_error_quotes_name_and_first_arguments,
    keyspace_commands_are_unknown,
    debug_is_refused_when_not_enabled,
    debug_sleep_zero_replies_ok_when_enabled,
    command_introspection_describes_pubsub_commands,
    config_get_answers_maxclients,
);
