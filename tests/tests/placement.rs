//! Moving a publisher to the worker that holds its subscribers
//! (`migrate-connections`): it moves once its messages all go there, keeps
//! its identity, and no subscriber loses, reorders or sees twice a message
//! across the move.

use ringcast_tests::client::{connect_on_worker, worker_of};
use ringcast_tests::flow::{OrderCheck, delivered_payload, pipelined, publishes};
use ringcast_tests::{Backend, Opts, Server, backend_tests, ringcast_only};

const MESSAGES: usize = 5_000;

fn moved(server: &Server) -> u64 {
    server.info("ringcast")["connections_moved"]
        .parse()
        .expect("connections_moved is a number")
}

/// Subscribers on worker 1 only; a publisher placed on worker 0 pipelines
/// `MESSAGES` PUBLISHes. It ends up on worker 1 with the same client id,
/// every subscriber got every message once and in order, every reply
/// counted them, and CLIENT KILL still finds it.
fn a_publisher_moves_to_its_subscribers_worker_losing_nothing(b: Backend) {
    ringcast_only!("redis-server has one event loop");
    let server = Server::start(Opts::new(b).threads(2).migrate_connections());
    let mut subs: Vec<_> = (0..3)
        .map(|_| {
            let mut s = connect_on_worker(&server, 1);
            s.sub("SUBSCRIBE", &["c"], &[1]);
            s
        })
        .collect();
    let mut publisher = connect_on_worker(&server, 0);
    let id = publisher.cmd(&["CLIENT", "ID"]).int();
    let requests = publishes("PUBLISH", 7, MESSAGES, |_| "c".into());
    let (mut publisher, replies) = pipelined(publisher, requests, MESSAGES)
        .join()
        .expect("publisher");
    assert!(
        replies.iter().all(|r| r.int() == 3),
        "each reached all three"
    );
    for (i, sub) in subs.iter_mut().enumerate() {
        let mut order = OrderCheck::default();
        for _ in 0..MESSAGES {
            let frame = sub.read_frame();
            order.record(&format!("subscriber {i}"), delivered_payload(&frame));
        }
        assert!(!sub.has_input(), "subscriber {i}: nothing more");
    }
    assert_eq!(worker_of(&mut publisher), Some(1));
    assert_eq!(publisher.cmd(&["CLIENT", "ID"]).int(), id);
    assert_eq!(moved(&server), 1);
    let line = server
        .conn()
        .cmd(&["CLIENT", "LIST", "ID", &id.to_string()]);
    assert!(line.text().contains("io-thread=1"), "{}", line.text());
    let mut killer = server.conn();
    assert_eq!(
        killer.cmd(&["CLIENT", "KILL", "ID", &id.to_string()]).int(),
        1
    );
    publisher.expect_closed();
}

/// Publishers that move while others keep publishing to subscribers on
/// both workers: per-publisher order and the count of deliveries hold for
/// every subscriber, whichever worker each publisher ends on.
fn moves_keep_every_publishers_order_among_others(b: Backend) {
    ringcast_only!("redis-server has one event loop");
    let server = Server::start(Opts::new(b).threads(2).migrate_connections());
    // "near.N" has subscribers on worker 1 only; "both" on both workers.
    let mut near = connect_on_worker(&server, 1);
    near.sub("SUBSCRIBE", &["near.0", "near.1", "near.2"], &[1, 2, 3]);
    let mut both: Vec<_> = [0, 1]
        .into_iter()
        .map(|w| {
            let mut s = connect_on_worker(&server, w);
            s.sub("SUBSCRIBE", &["both"], &[1]);
            s
        })
        .collect();
    let mut publishers = Vec::new();
    for id in 0..4 {
        let conn = connect_on_worker(&server, 0);
        let requests = if id < 3 {
            publishes("PUBLISH", id, MESSAGES, move |_| format!("near.{id}"))
        } else {
            publishes("PUBLISH", id, MESSAGES, |_| "both".into())
        };
        publishers.push(pipelined(conn, requests, MESSAGES));
    }
    for p in publishers {
        let (_, replies) = p.join().expect("publisher");
        assert!(replies.iter().all(|r| r.int() >= 1));
    }
    let mut order = OrderCheck::default();
    for _ in 0..3 * MESSAGES {
        let frame = near.read_frame();
        order.record("near", delivered_payload(&frame));
    }
    for (w, sub) in both.iter_mut().enumerate() {
        let mut order = OrderCheck::default();
        for _ in 0..MESSAGES {
            let frame = sub.read_frame();
            order.record(&format!("both on worker {w}"), delivered_payload(&frame));
        }
    }
    assert_eq!(
        moved(&server),
        3,
        "the three near publishers moved, not the other"
    );
}

/// With `migrate-connections no` (and by default in these tests) a
/// publisher stays on the worker it was placed on.
fn with_migration_off_a_publisher_stays(b: Backend) {
    ringcast_only!("redis-server has one event loop");
    let server = Server::start(Opts::new(b).threads(2));
    let mut sub = connect_on_worker(&server, 1);
    sub.sub("SUBSCRIBE", &["c"], &[1]);
    let publisher = connect_on_worker(&server, 0);
    let requests = publishes("PUBLISH", 0, 1_000, |_| "c".into());
    let (mut publisher, _) = pipelined(publisher, requests, 1_000)
        .join()
        .expect("publisher");
    assert_eq!(worker_of(&mut publisher), Some(0));
    assert_eq!(moved(&server), 0);
    // Switched on at run time, it applies to the next publishes.
    let mut admin = server.conn();
    admin.cmd_expect(&["CONFIG", "SET", "migrate-connections", "yes"], b"+OK\r\n");
    let requests = publishes("PUBLISH", 1, 1_000, |_| "c".into());
    let (mut publisher, _) = pipelined(publisher, requests, 1_000)
        .join()
        .expect("publisher");
    assert_eq!(worker_of(&mut publisher), Some(1));
    for _ in 0..2_000 {
        sub.read_frame();
    }
}

backend_tests!(
    a_publisher_moves_to_its_subscribers_worker_losing_nothing,
    moves_keep_every_publishers_order_among_others,
    with_migration_off_a_publisher_stays,
);
