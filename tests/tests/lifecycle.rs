//! Process lifecycle: clean exit on SIGTERM, and the I/O backend actually
//! chosen (io_uring, epoll, or epoll as the fallback where io_uring is
//! blocked by seccomp).

use ringcast_tests::{Backend, Opts, Server, backend_tests, ringcast_only};

fn sigterm_exits_with_code_zero(b: Backend) {
    let server = Server::with_backend(b);
    let mut idle = server.conn();
    idle.cmd_expect(&["PING"], b"+PONG\r\n");
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
}

fn sigterm_with_subscribers_connected_exits_zero_and_closes_them(b: Backend) {
    let server = Server::with_backend(b);
    let mut subs: Vec<_> = (0..4).map(|_| server.conn()).collect();
    for s in &mut subs {
        s.sub("SUBSCRIBE", &["a"], &[1]);
    }
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "a", "last", 4);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    for s in &mut subs {
        s.expect_message("a", "last");
        s.drain_until_closed();
    }
}

fn startup_log_names_the_io_backend(b: Backend) {
    ringcast_only!("ringcast's I/O backends");
    let server = Server::with_backend(b);
    let log = server.log();
    let expected = b.expected_info();
    assert!(
        log.contains(expected),
        "startup log does not mention {expected}:\n{log}"
    );
}

fn info_reports_the_backend_in_use(b: Backend) {
    ringcast_only!("ringcast's I/O backends");
    let server = Server::with_backend(b);
    assert_eq!(server.info("")["io_backend"], b.expected_info());
}

/// Where seccomp makes io_uring_setup fail with EPERM (Docker's default
/// profile), `--io-backend auto` must still serve clients, on epoll.
#[test]
fn auto_backend_falls_back_to_epoll_when_io_uring_is_blocked() {
    ringcast_only!("ringcast's I/O backends");
    let server = Server::start(Opts::new(Backend::UringBlocked));
    assert_eq!(server.info("")["io_backend"], "epoll");
    let mut sub = server.conn();
    sub.sub("SUBSCRIBE", &["fallback"], &[1]);
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "fallback", "works", 1);
    sub.expect_message("fallback", "works");
}

backend_tests!(
    sigterm_exits_with_code_zero,
    sigterm_with_subscribers_connected_exits_zero_and_closes_them,
    startup_log_names_the_io_backend,
    info_reports_the_backend_in_use,
);
