//! ringcast through a real client library (the `redis` crate): connection
//! setup (HELLO, CLIENT SETINFO, AUTH), RESP2 pub/sub, RESP3 pushes.

use redis::{PushKind, Value};
use ringcast_tests::client::{redis_resp2, redis_resp3};
use ringcast_tests::{Backend, Opts, PATIENCE, Server, backend_tests};
use std::time::Instant;

fn redis_crate_connects_and_pings_over_resp2_and_resp3(b: Backend) {
    let server = Server::with_backend(b);
    let mut c2 = redis_resp2(&server);
    let pong: String = redis::cmd("PING").query(&mut c2).expect("PING");
    assert_eq!(pong, "PONG");
    let (mut c3, _pushes) = redis_resp3(&server);
    let pong: String = redis::cmd("PING").query(&mut c3).expect("PING");
    assert_eq!(pong, "PONG");
}

fn redis_crate_authenticates_with_url_password(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("s3cret"));
    let mut c2 = redis_resp2(&server);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("x")
        .arg("y")
        .query(&mut c2)
        .expect("PUBLISH");
    assert_eq!(n, 0);
    let (mut c3, _pushes) = redis_resp3(&server);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("x")
        .arg("y")
        .query(&mut c3)
        .expect("PUBLISH");
    assert_eq!(n, 0);
}

fn redis_crate_resp2_pubsub_receives_messages_and_pmessages(b: Backend) {
    let server = Server::with_backend(b);
    let mut sub_conn = redis_resp2(&server);
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.subscribe("news").expect("SUBSCRIBE");
    pubsub.psubscribe("sport.*").expect("PSUBSCRIBE");
    pubsub.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut publisher = redis_resp2(&server);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("sport.tennis")
        .arg("ace")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1);
    let msg = pubsub.get_message().expect("message");
    assert_eq!(msg.get_channel_name(), "news");
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
    let msg = pubsub.get_message().expect("pmessage");
    assert_eq!(msg.get_channel_name(), "sport.tennis");
    assert_eq!(msg.get_pattern::<String>().unwrap(), "sport.*");
    assert_eq!(msg.get_payload::<String>().unwrap(), "ace");
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(counts, [("news".to_owned(), 1)]);
}

fn redis_crate_resp3_receives_pushes_while_running_commands(b: Backend) {
    let server = Server::with_backend(b);
    let (mut sub, pushes) = redis_resp3(&server);
    sub.subscribe_resp3("chat").expect("SUBSCRIBE");
    let mut publisher = redis_resp2(&server);
    // The subscription is confirmed once a later command's reply is read.
    let _: String = redis::cmd("PING").query(&mut sub).unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("chat")
        .arg("hi")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1);
    let mut got = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !got
        .iter()
        .any(|p: &redis::PushInfo| p.kind == PushKind::Message)
    {
        assert!(Instant::now() < deadline, "no message push; got {got:?}");
        let _: String = redis::cmd("PING").query(&mut sub).unwrap();
        got.extend(pushes.try_iter());
    }
    assert_eq!(got[0].kind, PushKind::Subscribe, "{got:?}");
    let message = got.iter().find(|p| p.kind == PushKind::Message).unwrap();
    assert_eq!(
        message.data,
        [
            Value::BulkString(b"chat".to_vec()),
            Value::BulkString(b"hi".to_vec())
        ]
    );
}

fn redis_crate_resp3_self_publish_returns_the_count(b: Backend) {
    let server = Server::with_backend(b);
    let (mut c, pushes) = redis_resp3(&server);
    c.subscribe_resp3("me").expect("SUBSCRIBE");
    // The library skips pushes while waiting for the reply, in either order.
    let n: i64 = redis::cmd("PUBLISH")
        .arg("me")
        .arg("self")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let _: String = redis::cmd("PING").query(&mut c).unwrap();
    let kinds: Vec<PushKind> = pushes.try_iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [PushKind::Subscribe, PushKind::Message]);
}

backend_tests!(
    redis_crate_connects_and_pings_over_resp2_and_resp3,
    redis_crate_authenticates_with_url_password,
    redis_crate_resp2_pubsub_receives_messages_and_pmessages,
    redis_crate_resp3_receives_pushes_while_running_commands,
    redis_crate_resp3_self_publish_returns_the_count,
);
