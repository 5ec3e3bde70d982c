//! Malformed requests: Redis's exact protocol error texts, the connection
//! closed after the error, and the inputs Redis ignores silently.

use ringcast_tests::resp::Proto;
use ringcast_tests::{Backend, Frame, Server, backend_tests, eventually};

/// Sends `bytes` on a fresh connection and expects `error` then a close.
fn expect_protocol_error(server: &Server, bytes: &[u8], error: &str) {
    let mut c = server.conn();
    c.send(bytes);
    c.expect(format!("-ERR Protocol error: {error}\r\n").as_bytes());
    c.expect_closed();
}

fn invalid_multibulk_length_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    for bytes in [
        &b"*abc\r\n"[..],
        b"*1x\r\n",
        b"*2147483648\r\n",
        b"*99999999999999999999\r\n",
    ] {
        expect_protocol_error(&server, bytes, "invalid multibulk length");
    }
}

fn multibulk_argument_without_dollar_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    expect_protocol_error(&server, b"*1\r\nfoo\r\n", "expected '$', got 'f'");
    expect_protocol_error(
        &server,
        b"*2\r\n$4\r\nECHO\r\n:5\r\n",
        "expected '$', got ':'",
    );
}

fn invalid_bulk_length_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    for bytes in [
        &b"*1\r\n$abc\r\n"[..],
        b"*1\r\n$-1\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$9999999999999999999\r\n",
    ] {
        expect_protocol_error(&server, bytes, "invalid bulk length");
    }
}

fn unbalanced_quotes_in_inline_request_are_an_error_and_close(b: Backend) {
    let server = Server::with_backend(b);
    for bytes in [&b"ECHO \"a b\r\n"[..], b"ECHO 'a\r\n", b"ECHO \"a\"b\r\n"] {
        expect_protocol_error(&server, bytes, "unbalanced quotes in request");
    }
}

fn replies_to_commands_before_a_protocol_error_are_sent_first(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"PING\r\nECHO x\r\n*abc\r\nPING\r\n");
    c.expect(b"+PONG\r\n$1\r\nx\r\n-ERR Protocol error: invalid multibulk length\r\n");
    c.expect_closed();
}

fn protocol_error_of_a_subscriber_closes_it_and_drops_its_subscriptions(b: Backend) {
    let server = Server::with_backend(b);
    for proto in Proto::BOTH {
        let mut c = server.conn_proto(proto);
        c.sub("SUBSCRIBE", &["gone"], &[1]);
        c.sub("PSUBSCRIBE", &["gone*"], &[2]);
        c.send(b"*1\r\nfoo\r\n");
        c.expect(b"-ERR Protocol error: expected '$', got 'f'\r\n");
        c.expect_closed();
        let mut other = server.conn();
        eventually(
            "the closed subscriber leaves its channel and pattern",
            || other.cmd(&["PUBLISH", "gone", "x"]) == Frame::Integer(0),
        );
    }
}

fn negative_and_zero_multibulk_counts_are_ignored(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"*-10\r\n*0\r\n*-1\r\nPING\r\n");
    c.expect(b"+PONG\r\n");
    c.send(b"*0\r\n");
    c.send(b"*-1\r\n");
    c.cmd_expect(&["ECHO", "after"], b"$5\r\nafter\r\n");
}

fn empty_lines_are_ignored(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"\r\n\r\n\nPING\r\n");
    c.expect(b"+PONG\r\n");
    c.send(b"   \r\nPING\r\n");
    c.expect(b"+PONG\r\n");
}

fn protocol_errors_in_resp3_use_the_same_text(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn_proto(Proto::Resp3);
    c.send(b"*1\r\n$abc\r\n");
    c.expect(b"-ERR Protocol error: invalid bulk length\r\n");
    c.expect_closed();
}

backend_tests!(
    invalid_multibulk_length_is_an_error_and_closes,
    multibulk_argument_without_dollar_is_an_error_and_closes,
    invalid_bulk_length_is_an_error_and_closes,
    unbalanced_quotes_in_inline_request_are_an_error_and_close,
    replies_to_commands_before_a_protocol_error_are_sent_first,
    protocol_error_of_a_subscriber_closes_it_and_drops_its_subscriptions,
    negative_and_zero_multibulk_counts_are_ignored,
    empty_lines_are_ignored,
    protocol_errors_in_resp3_use_the_same_text,
);
