//! RESP2 subscribed mode: which commands a subscribed RESP2 client may send,
//! the exact refusal text, PING's array form, and that RESP3 clients have
//! no such restriction.

use ringcast_tests::resp::Proto;
use ringcast_tests::{Backend, Server, backend_tests};

fn refused(cmd: &str) -> Vec<u8> {
    format!(
        "-ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    )
    .into_bytes()
}

fn resp2_subscribed_mode_refuses_other_commands_naming_them_lowercase(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["EcHo", "x"], &refused("echo"));
    c.cmd_expect(&["PUBLISH", "a", "x"], &refused("publish"));
    c.cmd_expect(&["PUBSUB", "NUMSUB", "a"], &refused("pubsub|numsub"));
    c.cmd_expect(&["CLIENT", "ID"], &refused("client|id"));
    c.cmd_expect(&["SELECT", "1"], &refused("select"));
    // The connection is still subscribed and usable.
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "a", "after", 1);
    c.expect_message("a", "after");
}

fn resp2_subscribed_mode_reports_unknown_command_before_context(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(
        &["NOSUCHCMD", "x"],
        b"-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n",
    );
}

fn resp2_subscribed_mode_checks_arity_of_allowed_commands(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(
        &["PING", "a", "b"],
        b"-ERR wrong number of arguments for 'ping' command\r\n",
    );
    c.cmd_expect(
        &["SUBSCRIBE"],
        b"-ERR wrong number of arguments for 'subscribe' command\r\n",
    );
}

fn resp2_subscribed_ping_replies_pong_array(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    c.cmd_expect(&["PING", "hello"], b"*2\r\n$4\r\npong\r\n$5\r\nhello\r\n");
    // Also while only a pattern or only a shard channel is held.
    c.sub("UNSUBSCRIBE", &["a"], &[0]);
    c.sub("PSUBSCRIBE", &["p*"], &[1]);
    c.cmd_expect(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    c.sub("PUNSUBSCRIBE", &["p*"], &[0]);
    c.sub("SSUBSCRIBE", &["s"], &[1]);
    c.cmd_expect(&["PING", "x"], b"*2\r\n$4\r\npong\r\n$1\r\nx\r\n");
    c.sub("SUNSUBSCRIBE", &["s"], &[0]);
    // Out of subscribed mode PING is a status reply again.
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn resp2_subscribed_mode_allows_every_subscribe_command(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.sub("PSUBSCRIBE", &["p*"], &[2]);
    c.sub("SSUBSCRIBE", &["s"], &[1]);
    c.sub("SUNSUBSCRIBE", &["s"], &[0]);
    c.sub("PUNSUBSCRIBE", &["p*"], &[1]);
    c.sub("UNSUBSCRIBE", &["a"], &[0]);
}

fn resp2_subscribed_quit_replies_ok_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["QUIT"], b"+OK\r\n");
    c.expect_closed();
}

fn resp2_subscribed_reset_leaves_subscribed_mode(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.sub("PSUBSCRIBE", &["p*"], &[2]);
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    c.cmd_expect(&["ECHO", "free"], b"$4\r\nfree\r\n");
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "a", "x", 0);
    publisher.publish("PUBLISH", "pa", "x", 0);
}

fn hello_is_refused_in_resp2_subscribed_mode(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["HELLO", "3"], &refused("hello"));
    // Still RESP2: the next confirmation is an array.
    c.sub("UNSUBSCRIBE", &["a"], &[0]);
}

fn resp3_subscribed_client_may_run_any_command(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.sub("SUBSCRIBE", &["a"], &[1]);
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    c.cmd_expect(&["PING", "x"], b"$1\r\nx\r\n");
    c.cmd_expect(&["ECHO", "y"], b"$1\r\ny\r\n");
    c.cmd_expect(&["PUBSUB", "NUMSUB", "a"], b"*2\r\n$1\r\na\r\n:1\r\n");
    c.cmd_expect(&["CLIENT", "SETNAME", "sub"], b"+OK\r\n");
    c.cmd_expect(&["PUBLISH", "elsewhere", "z"], b":0\r\n");
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "a", "m", 1);
    c.expect_message("a", "m");
}

fn resp3_subscribed_client_may_switch_protocol_with_hello(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.sub("SUBSCRIBE", &["a"], &[1]);
    let reply = c.cmd(&["HELLO", "3"]);
    assert!(matches!(reply, ringcast_tests::Frame::Map(_)), "{reply:?}");
    c.sub("UNSUBSCRIBE", &["a"], &[0]);
}

backend_tests!(
    resp2_subscribed_mode_refuses_other_commands_naming_them_lowercase,
    resp2_subscribed_mode_reports_unknown_command_before_context,
    resp2_subscribed_mode_checks_arity_of_allowed_commands,
    resp2_subscribed_ping_replies_pong_array,
    resp2_subscribed_mode_allows_every_subscribe_command,
    resp2_subscribed_quit_replies_ok_and_closes,
    resp2_subscribed_reset_leaves_subscribed_mode,
    hello_is_refused_in_resp2_subscribed_mode,
    resp3_subscribed_client_may_run_any_command,
    resp3_subscribed_client_may_switch_protocol_with_hello,
);
