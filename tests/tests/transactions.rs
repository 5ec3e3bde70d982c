//! Transactions as Redis 7.2 answers them for a server without keys:
//! MULTI, EXEC, DISCARD, WATCH, UNWATCH; errors while queueing and the
//! EXECABORT they lead to; EXEC refused by a check; the output of every
//! queued command in place in EXEC's reply (subscribe confirmations
//! included, however many); CLIENT REPLY, CLIENT KILL, HELLO, QUIT and
//! RESET around a transaction; ACL rules checked when queueing and again
//! at EXEC; CLIENT LIST; the bound on what a transaction may queue.
//!
//! All but two run against redis-server too (`RINGCAST_TEST_TARGET=redis`):
//! where Redis 7.0 (Debian's) differs from 7.2, the test says so.

use ringcast_tests::resp::{self, Proto};
use ringcast_tests::{
    Backend, Opts, RawConn, Server, backend_tests, connect_on_worker, eventually, ringcast_only,
    target,
};

const OK: &[u8] = b"+OK\r\n";
const QUEUED: &[u8] = b"+QUEUED\r\n";
const EXECABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";

/// Sends MULTI, then each command (expecting `+QUEUED`).
fn queue(c: &mut RawConn, commands: &[&[&str]]) {
    c.cmd_expect(&["MULTI"], OK);
    for args in commands {
        c.cmd_expect(args, QUEUED);
    }
}

/// Redis 7.2's NOPERM for a command (7.0 says "this user").
fn noperm_command(user: &str, cmd: &str) -> String {
    if target().is_redis() {
        format!("NOPERM this user has no permissions to run the '{cmd}' command")
    } else {
        format!("NOPERM User {user} has no permissions to run the '{cmd}' command")
    }
}

/// Redis 7.2's NOPERM for a channel (7.0 words it differently).
fn noperm_channel() -> &'static str {
    if target().is_redis() {
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    } else {
        "NOPERM No permissions to access a channel"
    }
}

/// Redis 7.2's NOPERM for a key (7.0 words it differently).
fn noperm_key() -> &'static str {
    if target().is_redis() {
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    } else {
        "NOPERM No permissions to access a key"
    }
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn multi_exec_and_discard_answer_as_redis(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["EXEC"], b"-ERR EXEC without MULTI\r\n");
    c.cmd_expect(&["DISCARD"], b"-ERR DISCARD without MULTI\r\n");
    c.cmd_expect(
        &["MULTI", "x"],
        b"-ERR wrong number of arguments for 'multi' command\r\n",
    );
    c.cmd_expect(
        &["DISCARD", "x"],
        b"-ERR wrong number of arguments for 'discard' command\r\n",
    );
    // A refused EXEC discards the transaction (there is none here) and says so.
    c.cmd_expect(
        &["EXEC", "x"],
        b"-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    );
    c.cmd_expect(&["MULTI"], OK);
    c.cmd_expect(&["EXEC"], b"*0\r\n");
    queue(&mut c, &[&["PING"], &["ECHO", "hi"], &["UNWATCH"]]);
    // Errors of MULTI and WATCH inside MULTI do not spoil the transaction.
    c.cmd_expect(&["MULTI"], b"-ERR MULTI calls can not be nested\r\n");
    c.cmd_expect(
        &["WATCH", "k"],
        b"-ERR WATCH inside MULTI is not allowed\r\n",
    );
    c.cmd_expect(&["EXEC"], b"*3\r\n+PONG\r\n$2\r\nhi\r\n+OK\r\n");
    c.cmd_expect(&["EXEC"], b"-ERR EXEC without MULTI\r\n");
    queue(&mut c, &[&["PUBLISH", "ch", "x"]]);
    c.cmd_expect(&["DISCARD"], OK);
    c.cmd_expect(&["EXEC"], b"-ERR EXEC without MULTI\r\n");
    // An error a command replies when it runs is one element of the array.
    queue(
        &mut c,
        &[&["PING", "a", "b"], &["SELECT", "99"], &["SELECT", "1"]],
    );
    c.cmd_expect(
        &["EXEC"],
        b"*3\r\n-ERR wrong number of arguments for 'ping' command\r\n-ERR DB index is out of range\r\n+OK\r\n",
    );
    // EXEC refused while in MULTI discards the transaction.
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(
        &["EXEC", "x"],
        b"-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    );
    c.cmd_expect(&["EXEC"], b"-ERR EXEC without MULTI\r\n");
}

fn watch_and_unwatch_answer_ok_and_never_abort_exec(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut other = server.conn();
    c.cmd_expect(
        &["WATCH"],
        b"-ERR wrong number of arguments for 'watch' command\r\n",
    );
    c.cmd_expect(
        &["UNWATCH", "k"],
        b"-ERR wrong number of arguments for 'unwatch' command\r\n",
    );
    c.cmd_expect(&["WATCH", "a", "b"], OK);
    c.cmd_expect(&["UNWATCH"], OK);
    c.cmd_expect(&["UNWATCH"], OK);
    // FLUSHALL touches only keys that exist: with none, EXEC runs.
    c.cmd_expect(&["WATCH", "a"], OK);
    other.cmd_expect(&["FLUSHALL"], OK);
    c.cmd_expect(&["FLUSHDB"], OK);
    queue(&mut c, &[&["FLUSHALL"], &["PING"]]);
    other.cmd_expect(&["FLUSHALL"], OK);
    c.cmd_expect(&["EXEC"], b"*2\r\n+OK\r\n+PONG\r\n");
}

fn errors_while_queueing_make_exec_abort(b: Backend) {
    let server = Server::start(Opts::new(b));
    let mut c = server.conn();
    let refusals: [(&[&str], &[u8]); 4] = [
        (
            &["NOSUCH", "a"],
            b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n",
        ),
        (
            &["CLIENT", "NOSUCH"],
            b"-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n",
        ),
        (
            &["ECHO", "a", "b"],
            b"-ERR wrong number of arguments for 'echo' command\r\n",
        ),
        (
            &["DEBUG", "SLEEP", "0"],
            b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n",
        ),
    ];
    for (refused, error) in refusals {
        queue(&mut c, &[&["PING"]]);
        c.cmd_expect(refused, error);
        c.cmd_expect(&["PING"], QUEUED);
        c.cmd_expect(&["EXEC"], EXECABORT);
        // The transaction is gone.
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    );
    c.cmd_expect(&["DISCARD"], OK);
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn exec_refused_by_a_check_discards_the_transaction(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("pw"));
    let mut c = server.raw();
    c.cmd_expect(
        &["EXEC"],
        b"-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n",
    );
    c.cmd_expect(&["MULTI"], b"-NOAUTH Authentication required.\r\n");
    c.cmd_expect(&["AUTH", "pw"], OK);
    // A RESP2 subscriber may not run EXEC (nor MULTI).
    c.sub("SUBSCRIBE", &["ch"], &[1]);
    c.cmd_expect(
        &["MULTI"],
        b"-ERR Can't execute 'multi': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    c.cmd_expect(
        &["EXEC"],
        b"-EXECABORT Transaction discarded because of: Can't execute 'exec': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
}

fn subscribe_family_inside_exec_puts_each_confirmation_in_the_reply(b: Backend) {
    let server = Server::with_backend(b);
    for proto in Proto::BOTH {
        let mut c = server.conn_proto(proto);
        queue(
            &mut c,
            &[
                &["SUBSCRIBE", "a", "b"],
                &["PSUBSCRIBE", "p*"],
                &["SSUBSCRIBE", "s"],
                &["PING"],
                &["UNSUBSCRIBE", "a", "b"],
                &["PUNSUBSCRIBE"],
                &["SUNSUBSCRIBE"],
            ],
        );
        // Seven commands, nine frames: Redis counts commands in the header
        // and gives each confirmation its own element. EXEC may not block,
        // so SSUBSCRIBE is refused; SUBSCRIBE and PSUBSCRIBE are exempted.
        let ping: &[u8] = match proto {
            Proto::Resp2 => b"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            Proto::Resp3 => b"+PONG\r\n",
        };
        let expected = concat(&[
            b"*7\r\n",
            &resp::confirmations(proto, "subscribe", &["a", "b"], &[1, 2]),
            &resp::confirmation(proto, "psubscribe", Some(b"p*"), 3),
            b"-ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n",
            ping,
            &resp::confirmations(proto, "unsubscribe", &["a", "b"], &[2, 1]),
            &resp::confirmation(proto, "punsubscribe", Some(b"p*"), 0),
            &resp::confirmation(proto, "sunsubscribe", None, 0),
        ]);
        c.cmd_expect(&["EXEC"], &expected);
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
}

fn shutdown_is_not_allowed_inside_multi(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["MULTI"], OK);
    c.cmd_expect(
        &["SHUTDOWN", "NOSAVE"],
        b"-ERR Command not allowed inside a transaction\r\n",
    );
    // Refused while queueing: the transaction is spoilt, and the server runs on.
    c.cmd_expect(
        &["EXEC"],
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn monitor_inside_exec_is_refused_and_the_rest_runs(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    queue(&mut c, &[&["MONITOR"], &["PING"]]);
    // EXEC may not block, and a monitor could: Redis refuses it there.
    c.cmd_expect(
        &["EXEC"],
        b"*2\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n+PONG\r\n",
    );
    // Not a monitor afterwards: it still runs commands.
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn a_resp2_client_that_subscribes_in_exec_runs_the_rest(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut publisher = server.conn();
    queue(
        &mut c,
        &[
            &["SUBSCRIBE", "ch"],
            &["PUBLISH", "other", "m"],
            &["ECHO", "e"],
        ],
    );
    // The checks of the subscribed mode apply when queueing, not inside EXEC.
    let expected = concat(&[
        b"*3\r\n",
        &resp::confirmation(Proto::Resp2, "subscribe", Some(b"ch"), 1),
        b":0\r\n$1\r\ne\r\n",
    ]);
    c.cmd_expect(&["EXEC"], &expected);
    publisher.publish("PUBLISH", "ch", "later", 1);
    c.expect_message("ch", "later");
}

fn publish_to_itself_inside_exec_arrives_after_the_reply(b: Backend) {
    // Redis 7.0 puts a client's own message in the middle of the EXEC
    // reply (before its PUBLISH's reply); 7.2 defers it to after EXEC.
    ringcast_only!("Redis 7.0 sends a publisher its own message inside the EXEC reply");
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.sub("SUBSCRIBE", &["foo"], &[1]);
    queue(
        &mut c,
        &[
            &["PING", "abc"],
            &["PUBLISH", "foo", "bar"],
            &["PUBLISH", "foo", "vaz"],
            &["PING", "def"],
        ],
    );
    let expected = concat(&[
        b"*4\r\n$3\r\nabc\r\n:1\r\n:1\r\n$3\r\ndef\r\n",
        &resp::message(Proto::Resp3, b"foo", b"bar"),
        &resp::message(Proto::Resp3, b"foo", b"vaz"),
    ]);
    c.cmd_expect(&["EXEC"], &expected);
    // tests/unit/pubsub.tcl "unsubscribe inside multi, and publish to self".
    c.sub("SUBSCRIBE", &["bar", "baz"], &[2, 3]);
    queue(
        &mut c,
        &[
            &["PING", "abc"],
            &["UNSUBSCRIBE", "bar"],
            &["UNSUBSCRIBE", "baz"],
            &["PING", "def"],
        ],
    );
    let expected = concat(&[
        b"*4\r\n$3\r\nabc\r\n",
        &resp::confirmation(Proto::Resp3, "unsubscribe", Some(b"bar"), 2),
        &resp::confirmation(Proto::Resp3, "unsubscribe", Some(b"baz"), 1),
        b"$3\r\ndef\r\n",
    ]);
    c.cmd_expect(&["EXEC"], &expected);
    c.cmd_expect(&["PUBLISH", "foo", "vaz"], b":1\r\n");
    c.expect_message("foo", "vaz");
}

fn hello_inside_exec_changes_the_protocol_of_the_replies_after_it(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    queue(
        &mut c,
        &[&["HELLO", "3"], &["PING"], &["CLIENT", "GETNAME"]],
    );
    c.send_cmd(&["EXEC"]);
    let (frame, raw) = c
        .try_read_raw_frame(ringcast_tests::PATIENCE)
        .expect("EXEC reply");
    assert_eq!(frame.items().len(), 3);
    assert!(
        raw.starts_with(b"*3\r\n%7\r\n$6\r\nserver\r\n"),
        "{}",
        resp::show(&raw)
    );
    assert!(raw.ends_with(b"+PONG\r\n_\r\n"), "{}", resp::show(&raw));
    c.proto = Proto::Resp3;
    queue(&mut c, &[&["HELLO", "2"], &["CLIENT", "GETNAME"]]);
    c.send_cmd(&["EXEC"]);
    let (_, raw) = c
        .try_read_raw_frame(ringcast_tests::PATIENCE)
        .expect("EXEC reply");
    assert!(
        raw.starts_with(b"*2\r\n*14\r\n$6\r\nserver\r\n"),
        "{}",
        resp::show(&raw)
    );
    assert!(raw.ends_with(b"$-1\r\n"), "{}", resp::show(&raw));
}

fn client_reply_inside_exec_silences_replies_but_not_confirmations(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    queue(
        &mut c,
        &[
            &["PING"],
            &["CLIENT", "REPLY", "OFF"],
            &["SUBSCRIBE", "z"],
            &["PING"],
            &["CLIENT", "REPLY", "ON"],
            &["PING", "x"],
        ],
    );
    let expected = concat(&[
        b"*6\r\n+PONG\r\n",
        &resp::confirmation(Proto::Resp2, "subscribe", Some(b"z"), 1),
        b"+OK\r\n*2\r\n$4\r\npong\r\n$1\r\nx\r\n",
    ]);
    c.cmd_expect(&["EXEC"], &expected);
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    // A SKIP run by EXEC skips the reply of the command after EXEC.
    queue(&mut c, &[&["CLIENT", "REPLY", "SKIP"], &["PING", "in"]]);
    c.cmd_expect(&["EXEC"], b"*2\r\n$2\r\nin\r\n");
    c.send_cmd(&["PING", "skipped"]);
    c.cmd_expect(&["PING", "shown"], b"$5\r\nshown\r\n");
    // A SKIP before MULTI silences MULTI's reply only (inside MULTI,
    // CLIENT REPLY is queued like any other command).
    c.send_cmd(&["CLIENT", "REPLY", "SKIP"]);
    c.send_cmd(&["MULTI"]);
    c.cmd_expect(&["PING", "z"], QUEUED);
    c.cmd_expect(&["CLIENT", "REPLY", "SKIP"], QUEUED);
    c.cmd_expect(&["EXEC"], b"*2\r\n$1\r\nz\r\n");
    c.send_cmd(&["PING", "skipped"]);
    c.cmd_expect(&["PING", "after"], b"$5\r\nafter\r\n");
}

fn client_kill_of_itself_inside_exec_ends_the_reply_and_runs_the_rest(b: Backend) {
    let server = Server::with_backend(b);
    let mut subscriber = server.conn();
    subscriber.sub("SUBSCRIBE", &["k"], &[1]);
    let mut c = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int().to_string();
    queue(
        &mut c,
        &[
            &["PING"],
            &["CLIENT", "KILL", "ID", &id, "SKIPME", "no"],
            &["PUBLISH", "k", "after-kill"],
            &["SUBSCRIBE", "z"],
        ],
    );
    // The reply of CLIENT KILL is the last thing written.
    c.cmd_expect(&["EXEC"], b"*4\r\n+PONG\r\n:1\r\n");
    c.expect_closed();
    subscriber.expect_message("k", "after-kill");
}

fn quit_and_reset_run_at_once_inside_multi(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    );
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    c.cmd_expect(&["EXEC"], b"-ERR EXEC without MULTI\r\n");
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(&["QUIT"], OK);
    c.expect_closed();
}

fn debug_sleep_inside_exec_replies_in_place(b: Backend) {
    let server = Server::start(Opts::new(b).debug_command());
    let mut c = server.conn();
    queue(
        &mut c,
        &[&["PING", "a"], &["DEBUG", "SLEEP", "0.01"], &["PING", "b"]],
    );
    c.cmd_expect(&["EXEC"], b"*3\r\n$1\r\na\r\n+OK\r\n$1\r\nb\r\n");
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

/// One `name=value` field of a CLIENT INFO / CLIENT LIST line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

fn client_list_shows_the_transaction(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut other = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    let line = |other: &mut RawConn| {
        other
            .cmd(&["CLIENT", "LIST", "ID", &id.to_string()])
            .text()
            .trim_end()
            .to_string()
    };
    let before = line(&mut other);
    assert_eq!(field(&before, "flags"), "N");
    assert_eq!(field(&before, "multi"), "-1");
    assert_eq!(field(&before, "multi-mem"), "0");
    c.cmd_expect(&["MULTI"], OK);
    let empty = line(&mut other);
    assert_eq!(field(&empty, "flags"), "x");
    assert_eq!(field(&empty, "multi"), "0");
    assert_eq!(field(&empty, "multi-mem"), "0");
    c.cmd_expect(&["PUBLISH", "ch", "payload"], QUEUED);
    c.cmd_expect(&["CLIENT", "INFO"], QUEUED);
    let two = line(&mut other);
    assert_eq!(field(&two, "multi"), "2");
    assert!(
        field(&two, "multi-mem").parse::<u64>().unwrap() > 0,
        "{two}"
    );
    // The last command seen is the last one queued.
    assert_eq!(field(&two, "cmd"), "client|info");
    // Inside EXEC the client is still in MULTI, and its command is EXEC.
    c.send_cmd(&["EXEC"]);
    let reply = c.read_frame();
    let inside = reply.items()[1].text();
    assert_eq!(field(&inside, "flags"), "x");
    assert_eq!(field(&inside, "multi"), "2");
    assert_eq!(field(&inside, "cmd"), "exec");
    let after = line(&mut other);
    assert_eq!(field(&after, "flags"), "N");
    assert_eq!(field(&after, "multi"), "-1");
    assert_eq!(field(&after, "multi-mem"), "0");
    // Pub/sub and MULTI together (RESP3): `Px`.
    c.hello3();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["MULTI"], OK);
    assert_eq!(field(&line(&mut other), "flags"), "Px");
    c.cmd_expect(&["DISCARD"], OK);
    assert_eq!(field(&line(&mut other), "flags"), "P");
}

fn acl_rules_are_checked_when_queueing_and_again_at_exec(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">pw",
            "+@all",
            "-info",
            "resetchannels",
            "&ch*",
        ],
        OK,
    );
    admin.cmd_expect(&["ACL", "LOG", "RESET"], OK);
    let mut c = server.raw();
    c.cmd_expect(&["AUTH", "alice", "pw"], OK);
    // Refused while queueing: the transaction is spoiled.
    c.cmd_expect(&["MULTI"], OK);
    c.cmd_expect(
        &["PUBLISH", "other", "x"],
        format!("-{}\r\n", noperm_channel()).as_bytes(),
    );
    c.cmd_expect(
        &["INFO"],
        format!("-{}\r\n", noperm_command("alice", "info")).as_bytes(),
    );
    c.cmd_expect(&["PING"], QUEUED);
    c.cmd_expect(&["EXEC"], EXECABORT);
    let log = admin.cmd(&["ACL", "LOG"]);
    let entry = |log: &ringcast_tests::Frame, i: usize, name: &str| -> String {
        let e = &log.items()[i];
        let items = e.items();
        let at = items
            .iter()
            .position(|f| f.bytes() == Some(name.as_bytes()))
            .unwrap_or_else(|| panic!("no {name} in {e:?}"));
        items[at + 1].text()
    };
    assert_eq!(entry(&log, 0, "object"), "info");
    assert_eq!(entry(&log, 0, "context"), "multi");
    assert_eq!(entry(&log, 1, "object"), "other");
    assert_eq!(entry(&log, 1, "reason"), "channel");
    assert_eq!(entry(&log, 1, "context"), "multi");
    // Allowed when queued, no longer at EXEC.
    admin.cmd_expect(&["ACL", "LOG", "RESET"], OK);
    queue(
        &mut c,
        &[
            &["PUBLISH", "ch1", "x"],
            &["PING"],
            &["SUBSCRIBE", "ch2", "ch3"],
        ],
    );
    admin.cmd_expect(
        &["ACL", "SETUSER", "alice", "-ping", "resetchannels", "&ch1"],
        OK,
    );
    c.cmd_expect(
        &["EXEC"],
        b"*3\r\n:0\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to access one of the channels used as arguments\r\n",
    );
    let log = admin.cmd(&["ACL", "LOG"]);
    assert_eq!(log.items().len(), 2);
    assert_eq!(entry(&log, 0, "object"), "ch2");
    assert_eq!(entry(&log, 0, "reason"), "channel");
    assert_eq!(entry(&log, 1, "object"), "ping");
    assert_eq!(entry(&log, 1, "reason"), "command");
    for i in 0..2 {
        assert_eq!(entry(&log, i, "context"), "multi");
        let info = entry(&log, i, "client-info");
        assert_eq!(field(&info, "cmd"), "exec");
        assert_eq!(field(&info, "flags"), "x");
        assert_eq!(field(&info, "multi"), "3");
    }
    // EXEC itself refused: the transaction is discarded.
    admin.cmd_expect(&["ACL", "SETUSER", "alice", "+ping", "-exec"], OK);
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(
        &["EXEC"],
        format!(
            "-EXECABORT Transaction discarded because of: {}\r\n",
            noperm_command("alice", "exec")
        )
        .as_bytes(),
    );
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let log = admin.cmd(&["ACL", "LOG"]);
    assert_eq!(entry(&log, 0, "object"), "exec");
    assert_eq!(entry(&log, 0, "context"), "multi");
    // WATCH's arguments are keys: key patterns apply to them.
    admin.cmd_expect(
        &["ACL", "SETUSER", "alice", "+exec", "resetkeys", "%R~k*"],
        OK,
    );
    c.cmd_expect(&["WATCH", "k1", "k2"], OK);
    let denied = format!("-{}\r\n", noperm_key());
    c.cmd_expect(&["WATCH", "k1", "x"], denied.as_bytes());
    let log = admin.cmd(&["ACL", "LOG"]);
    assert_eq!(entry(&log, 0, "object"), "x");
    assert_eq!(entry(&log, 0, "reason"), "key");
    assert_eq!(entry(&log, 0, "context"), "toplevel");
    // Inside MULTI the ACL check comes first: a denied WATCH spoils the
    // transaction, an allowed one is only refused.
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(
        &["WATCH", "k1"],
        b"-ERR WATCH inside MULTI is not allowed\r\n",
    );
    c.cmd_expect(&["EXEC"], b"*1\r\n+PONG\r\n");
    queue(&mut c, &[&["PING"]]);
    c.cmd_expect(&["WATCH", "x"], denied.as_bytes());
    c.cmd_expect(&["EXEC"], EXECABORT);
}

fn many_publishes_in_one_exec_reach_another_worker_in_order(b: Backend) {
    // A ring of one message: the EXEC waits for room again and again (ringcast).
    let server = Server::start(Opts::new(b).ring_capacity(1));
    let mut subscriber = connect_on_worker(&server, 1);
    subscriber.sub("SUBSCRIBE", &["c"], &[1]);
    let mut c = connect_on_worker(&server, 0);
    let n = 200;
    let mut pipeline = resp::command(&["MULTI"]);
    for i in 0..n {
        pipeline.extend(resp::command(&["PUBLISH", "c", &i.to_string()]));
    }
    pipeline.extend(resp::command(&["EXEC"]));
    pipeline.extend(resp::command(&["PING", "after"]));
    c.send(&pipeline);
    let mut expected = OK.to_vec();
    expected.extend(QUEUED.repeat(n));
    expected.extend(format!("*{n}\r\n").as_bytes());
    expected.extend(b":1\r\n".repeat(n));
    expected.extend(b"$5\r\nafter\r\n");
    c.expect(&expected);
    for i in 0..n {
        subscriber.expect_message("c", &i.to_string());
    }
}

fn queued_commands_count_against_the_query_buffer_limit(b: Backend) {
    // Redis 7.2 puts no bound on a transaction; ringcast applies Redis
    // 7.4's: queued commands plus unread input within client-query-buffer-limit.
    ringcast_only!("Redis 7.2 does not bound what MULTI queues");
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"], OK);
    let mut c = server.conn();
    c.cmd_expect(&["MULTI"], OK);
    let payload = "x".repeat(100 * 1024);
    for _ in 0..10 {
        c.cmd_expect(&["PUBLISH", "ch", &payload], QUEUED);
    }
    // 1000 KiB queued: with the next 100 KiB read, over 1 MiB. Closed as a
    // query buffer overflow, before it is queued.
    let _ = c.try_send(&resp::command(&["PUBLISH", "ch", &payload]));
    c.expect_closed();
    eventually("the overflow is counted", || {
        server.info_u64("stats", "client_query_buffer_limit_disconnections") == 1
    });
    // Below the bound a transaction is not disturbed, and EXEC frees it.
    let mut d = server.conn();
    d.cmd_expect(&["MULTI"], OK);
    for _ in 0..5 {
        d.cmd_expect(&["PUBLISH", "ch", &payload], QUEUED);
    }
    d.cmd_expect(&["EXEC"], &concat(&[b"*5\r\n", &b":0\r\n".repeat(5)]));
    d.cmd_expect(&["MULTI"], OK);
    for _ in 0..5 {
        d.cmd_expect(&["PUBLISH", "ch", &payload], QUEUED);
    }
    d.cmd_expect(&["DISCARD"], OK);
    d.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn command_docs_list_the_transaction_commands(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["COMMAND", "INFO", "multi"],
        b"*1\r\n*10\r\n$5\r\nmulti\r\n:1\r\n*5\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+allow_busy\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@transaction\r\n*0\r\n*0\r\n*0\r\n",
    );
    c.cmd_expect(
        &["COMMAND", "INFO", "exec", "discard", "unwatch"],
        b"*3\r\n*10\r\n$4\r\nexec\r\n:1\r\n*4\r\n+noscript\r\n+loading\r\n+stale\r\n+skip_slowlog\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@slow\r\n+@transaction\r\n*0\r\n*0\r\n*0\r\n*10\r\n$7\r\ndiscard\r\n:1\r\n*5\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+allow_busy\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@transaction\r\n*0\r\n*0\r\n*0\r\n*10\r\n$7\r\nunwatch\r\n:1\r\n*5\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+allow_busy\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@transaction\r\n*0\r\n*0\r\n*0\r\n",
    );
    let listed = c
        .cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "transaction"])
        .items()
        .iter()
        .map(|f| f.text())
        .collect::<std::collections::BTreeSet<_>>();
    let expected: std::collections::BTreeSet<String> =
        ["discard", "exec", "multi", "unwatch", "watch"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(listed, expected);
    let cat = c.cmd(&["ACL", "CAT", "transaction"]);
    assert_eq!(cat.items().len(), 5);
}

backend_tests!(
    multi_exec_and_discard_answer_as_redis,
    watch_and_unwatch_answer_ok_and_never_abort_exec,
    errors_while_queueing_make_exec_abort,
    exec_refused_by_a_check_discards_the_transaction,
    subscribe_family_inside_exec_puts_each_confirmation_in_the_reply,
    monitor_inside_exec_is_refused_and_the_rest_runs,
    shutdown_is_not_allowed_inside_multi,
    a_resp2_client_that_subscribes_in_exec_runs_the_rest,
    publish_to_itself_inside_exec_arrives_after_the_reply,
    hello_inside_exec_changes_the_protocol_of_the_replies_after_it,
    client_reply_inside_exec_silences_replies_but_not_confirmations,
    client_kill_of_itself_inside_exec_ends_the_reply_and_runs_the_rest,
    quit_and_reset_run_at_once_inside_multi,
    debug_sleep_inside_exec_replies_in_place,
    client_list_shows_the_transaction,
    acl_rules_are_checked_when_queueing_and_again_at_exec,
    many_publishes_in_one_exec_reach_another_worker_in_order,
    queued_commands_count_against_the_query_buffer_limit,
    command_docs_list_the_transaction_commands,
);
