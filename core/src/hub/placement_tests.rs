//! Sans-IO tests of moving a connection between workers (`placement`).

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::placement::{MOVE_AFTER, SETTLE};
use super::tests::{World, cmd, world_with};
use super::*;
use crate::config::Config;

fn world(workers: usize) -> World {
    world_with(workers, 1024, Config::default())
}

fn message(channel: &str, payload: &str) -> Vec<u8> {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        channel.len(),
        payload.len()
    )
    .into_bytes()
}

fn subscriber(w: &mut World, worker: usize, channel: &str) -> (usize, ConnKey) {
    let c = w.connect(worker);
    w.send(c, &cmd(&["SUBSCRIBE", channel]));
    w.output(c);
    c
}

/// Publish `payload` on `channel`: the reader's status.
fn publish(w: &mut World, c: (usize, ConnKey), channel: &str, payload: &str) -> Input {
    w.send(c, &cmd(&["PUBLISH", channel, payload]))
}

/// Run the departure as the server does: the reader stopped on
/// `Input::Move`, the writer sends what is queued and hands back.
fn depart(w: &mut World, c: (usize, ConnKey)) -> (Vec<u8>, Departure) {
    assert!(w.hubs[c.0].prepare_departure(c.1));
    let replies = w.output(c);
    let mut cx = Context::from_waker(Waker::noop());
    let mut batch = Vec::new();
    assert_eq!(
        w.hubs[c.0].poll_output(c.1, &mut cx, &mut batch),
        Poll::Ready(Output::Depart)
    );
    let departure = w.hubs[c.0].depart(c.1).expect("it may move");
    (replies, departure)
}

/// A publisher on worker 0 whose `MOVE_AFTER` publishes all went to the
/// subscribers of `c` on worker 1: chosen to move there.
fn chosen_to_move(w: &mut World) -> (usize, ConnKey) {
    let publisher = w.connect(0);
    let mut last = Input::NeedMore;
    for i in 0..MOVE_AFTER {
        last = publish(w, publisher, "c", &i.to_string());
    }
    assert_eq!(last, Input::Move(1));
    publisher
}

fn moved(w: &World) -> u64 {
    w.shared.since_reset(|s| &s.connections_moved)
}

/// A publisher on worker 0 whose only subscriber is on worker 1 moves
/// there after `MOVE_AFTER` publishes, keeps its id, and its subscriber
/// gets every message once, in order — those published before the move
/// (still in the ring when it left) before those published after.
#[test]
fn a_publisher_whose_subscribers_are_on_another_worker_moves_there_in_order() {
    let mut w = world(2);
    let sub = subscriber(&mut w, 1, "c");
    let publisher = w.connect(0);
    w.send(publisher, &cmd(&["CLIENT", "ID"]));
    let id = w.output(publisher);
    let n = MOVE_AFTER as usize;
    for i in 0..n - 1 {
        assert_eq!(
            publish(&mut w, publisher, "c", &i.to_string()),
            Input::NeedMore
        );
    }
    assert_eq!(
        publish(&mut w, publisher, "c", &(n - 1).to_string()),
        Input::Move(1)
    );
    let (replies, departure) = depart(&mut w, publisher);
    assert_eq!(replies, b":1\r\n".repeat(n));
    assert_eq!(departure.to(), 1);
    assert_eq!(w.hubs[0].connections(), 0);
    assert!(
        !w.hubs[1].may_resume(&departure),
        "what it published is still in the ring"
    );
    w.hubs[1].drain_inbound();
    assert!(w.hubs[1].may_resume(&departure));
    let key = w.hubs[1].arrive(departure);
    let publisher = (1, key);
    for i in n..n + 10 {
        assert_eq!(
            publish(&mut w, publisher, "c", &i.to_string()),
            Input::NeedMore
        );
    }
    w.send(publisher, &cmd(&["CLIENT", "ID"]));
    let out = w.output(publisher);
    let mut expected = b":1\r\n".repeat(10);
    expected.extend_from_slice(&id);
    assert_eq!(out, expected, "same client id after the move");
    let want: Vec<u8> = (0..n + 10)
        .flat_map(|i| message("c", &i.to_string()))
        .collect();
    assert_eq!(w.output(sub), want);
    assert_eq!(moved(&w), 1);
    let meta = w.shared.clients.get(integer(&id)).expect("listed");
    assert_eq!(meta.worker.load(std::sync::atomic::Ordering::Relaxed), 1);
}

/// The reply `:<id>\r\n` as a number.
fn integer(reply: &[u8]) -> u64 {
    std::str::from_utf8(&reply[1..reply.len() - 2])
        .expect("ascii")
        .parse()
        .expect("a number")
}

/// With three workers, the new worker waits until every worker has taken
/// what the old one pushed before the move, not only itself.
#[test]
fn a_moved_publisher_waits_for_every_ring_of_its_old_worker() {
    let mut w = world(3);
    let _c = subscriber(&mut w, 1, "c");
    let d = subscriber(&mut w, 2, "d");
    let publisher = w.connect(0);
    publish(&mut w, publisher, "d", "before");
    let mut last = Input::NeedMore;
    for i in 0..MOVE_AFTER {
        last = publish(&mut w, publisher, "c", &i.to_string());
    }
    assert_eq!(last, Input::Move(1));
    let (_, departure) = depart(&mut w, publisher);
    w.hubs[1].drain_inbound();
    assert!(
        !w.hubs[1].may_resume(&departure),
        "worker 2 has not taken its message yet"
    );
    w.hubs[2].drain_inbound();
    assert!(w.hubs[1].may_resume(&departure));
    let publisher = (1, w.hubs[1].arrive(departure));
    publish(&mut w, publisher, "d", "after");
    w.hubs[2].drain_inbound();
    let mut want = message("d", "before");
    want.extend(message("d", "after"));
    assert_eq!(w.output(d), want);
}

/// A publisher whose messages also reach its own worker's subscribers, or
/// several other workers', stays where it is.
#[test]
fn a_publisher_with_subscribers_on_its_own_or_several_workers_stays() {
    let mut w = world(3);
    subscriber(&mut w, 0, "mine");
    subscriber(&mut w, 1, "mine");
    subscriber(&mut w, 1, "spread");
    subscriber(&mut w, 2, "spread");
    let publisher = w.connect(0);
    for i in 0..3 * MOVE_AFTER {
        let channel = if i % 2 == 0 { "mine" } else { "spread" };
        assert_eq!(publish(&mut w, publisher, channel, "x"), Input::NeedMore);
        w.output(publisher);
    }
    // Publishes that reach nobody neither count nor break the count.
    let lone = w.connect(0);
    for i in 0..MOVE_AFTER {
        let channel = if i % 2 == 0 { "nobody" } else { "spread" };
        assert_eq!(publish(&mut w, lone, channel, "x"), Input::NeedMore);
    }
    assert_eq!(moved(&w), 0);
}

/// A connection holding a subscription (RESP3 publishes while
/// subscribed), one in MULTI, and any connection with
/// `migrate-connections no` stay on their worker.
#[test]
fn subscribers_transactions_and_a_disabled_setting_keep_connections_in_place() {
    let mut w = world(2);
    subscriber(&mut w, 1, "c");
    let resp3 = w.connect(0);
    w.send(resp3, &cmd(&["HELLO", "3"]));
    w.send(resp3, &cmd(&["SUBSCRIBE", "own"]));
    let multi = w.connect(0);
    w.send(multi, &cmd(&["MULTI"]));
    for i in 0..2 * MOVE_AFTER {
        assert_eq!(publish(&mut w, resp3, "c", &i.to_string()), Input::NeedMore);
        w.send(multi, &cmd(&["PUBLISH", "c", "x"]));
    }
    // MULTI queues; EXEC publishes them all in one command.
    assert_eq!(w.send(multi, &cmd(&["EXEC"])), Input::NeedMore);
    w.shared.config.rcu(|c| Config {
        migrate_connections: false,
        ..Config::clone(c)
    });
    let plain = w.connect(0);
    for i in 0..2 * MOVE_AFTER {
        assert_eq!(publish(&mut w, plain, "c", &i.to_string()), Input::NeedMore);
    }
    assert_eq!(moved(&w), 0);
}

/// After a move the connection settles: it moves again, if its messages
/// now go elsewhere, only once `SETTLE` has passed.
#[test]
fn a_moved_connection_moves_again_only_after_it_settled() {
    let mut w = world(2);
    let on0 = subscriber(&mut w, 0, "back");
    subscriber(&mut w, 1, "c");
    let publisher = chosen_to_move(&mut w);
    let (_, departure) = depart(&mut w, publisher);
    w.hubs[1].drain_inbound();
    let publisher = (1, w.hubs[1].arrive(departure));
    for _ in 0..2 * MOVE_AFTER {
        assert_eq!(publish(&mut w, publisher, "back", "x"), Input::NeedMore);
    }
    let t = w.hubs[1].now + SETTLE + Duration::from_millis(100);
    w.hubs[1].cron_at(t);
    let mut last = Input::NeedMore;
    for _ in 0..MOVE_AFTER {
        last = publish(&mut w, publisher, "back", "x");
    }
    assert_eq!(last, Input::Move(0));
    w.hubs[0].drain_inbound();
    assert_eq!(
        w.output(on0).len(),
        3 * MOVE_AFTER as usize * message("back", "x").len()
    );
}

/// A CLIENT KILL that names the connection while it is between workers is
/// carried out when it arrives.
#[test]
fn a_kill_that_finds_the_connection_on_its_way_is_carried_out_on_arrival() {
    let mut w = world(2);
    subscriber(&mut w, 1, "c");
    let publisher = chosen_to_move(&mut w);
    let (_, departure) = depart(&mut w, publisher);
    assert_eq!(w.shared.clients.request_kill(departure.id()), Some(1));
    // The new worker looks at its kill requests before the connection is in.
    w.hubs[1].drain_inbound();
    let key = w.hubs[1].arrive(departure);
    let mut shut = Vec::new();
    w.hubs[1].take_shutdowns(&mut shut);
    assert_eq!(shut, [key]);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(
        w.hubs[1].poll_output(key, &mut cx, &mut Vec::new()),
        Poll::Ready(Output::Close)
    );
}

/// A connection chosen to move that is killed before it leaves stays
/// where it is and closes there.
#[test]
fn a_connection_killed_before_it_leaves_does_not_move() {
    let mut w = world(2);
    subscriber(&mut w, 1, "c");
    let publisher = chosen_to_move(&mut w);
    assert!(w.hubs[0].prepare_departure(publisher.1));
    w.output(publisher);
    let id = w.hubs[0].conns[publisher.1].session.id;
    w.shared.clients.request_kill(id);
    w.hubs[0].drain_inbound();
    assert!(w.hubs[0].depart(publisher.1).is_none());
    assert_eq!(w.hubs[0].connections(), 1);
    assert_eq!(moved(&w), 0);
}
