//! ACL users as Redis 7.2 has them: rules shown back by ACL GETUSER/LIST,
//! AUTH and HELLO with users, NOPERM for commands and channels, the ACL
//! log and its INFO counters, subscribers closed when their channels are
//! revoked or their user deleted, the ACL file and `user` config lines.
//!
//! Most run against redis-server too (`RINGCAST_TEST_TARGET=redis`); where
//! Redis 7.0 (Debian's) differs from 7.2, the test says so.

use ringcast_tests::resp::{self, Proto};
use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, connect_on_worker, eventually,
    ringcast_only, target,
};

const OK: &[u8] = b"+OK\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
/// Redis 7.2's NOPERM for a channel (7.0 words it differently).
fn noperm_channel() -> &'static [u8] {
    if target().is_redis() {
        b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
    } else {
        b"-NOPERM No permissions to access a channel\r\n"
    }
}

/// Redis 7.2's NOPERM for a command (7.0 says "this user").
fn noperm_command(user: &str, cmd: &str) -> Vec<u8> {
    if target().is_redis() {
        format!("-NOPERM this user has no permissions to run the '{cmd}' command\r\n").into_bytes()
    } else {
        format!("-NOPERM User {user} has no permissions to run the '{cmd}' command\r\n")
            .into_bytes()
    }
}

/// A user's rules as Redis 7.2 shows them (7.0 leaves out `sanitize-payload`).
fn rules(text: &str) -> String {
    if target().is_redis() {
        text.replace(" sanitize-payload", "")
    } else {
        text.to_string()
    }
}

/// GETUSER flags as Redis 7.2 lists them (7.0 has no `sanitize-payload`).
fn flags(list: &[&str]) -> Vec<String> {
    list.iter()
        .filter(|f| !(target().is_redis() && **f == "sanitize-payload"))
        .map(|f| f.to_string())
        .collect()
}

/// An INFO `acl_access_denied_*` counter (Redis 7.2's; 7.0 has none).
fn denied(server: &Server, what: &str, expected: u64) {
    if !target().is_redis() {
        assert_eq!(
            server.info_u64("stats", &format!("acl_access_denied_{what}")),
            expected
        );
    }
}
/// SHA-256 of `p1` and of `pw`, as ACL rules show passwords.
const P1_HASH: &str = "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a";
const PW_HASH: &str = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4";

fn bulk_list(frame: &Frame) -> Vec<String> {
    frame.items().iter().map(Frame::text).collect()
}

/// A RESP2 map reply as (key, value) pairs.
fn pairs(frame: &Frame) -> Vec<(String, Frame)> {
    match frame {
        Frame::Map(m) => m.iter().map(|(k, v)| (k.text(), v.clone())).collect(),
        _ => frame
            .items()
            .chunks(2)
            .map(|kv| (kv[0].text(), kv[1].clone()))
            .collect(),
    }
}

fn field(frame: &Frame, name: &str) -> Frame {
    pairs(frame)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {frame:?}"))
        .1
}

/// A connection logged in as `user` with `pass`.
fn login(server: &Server, user: &str, pass: &str) -> RawConn {
    let mut c = server.raw();
    c.cmd_expect(&["AUTH", user, pass], OK);
    c
}

fn client_list(server: &Server) -> String {
    server.conn().cmd(&["CLIENT", "LIST"]).text()
}

fn setuser_and_getuser_show_rules_back_as_redis(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["ACL", "SETUSER", "newuser"], OK);
    let list = bulk_list(&c.cmd(&["ACL", "LIST"]));
    assert_eq!(
        list,
        [
            rules("user default on nopass sanitize-payload ~* &* +@all"),
            rules("user newuser off sanitize-payload resetchannels -@all"),
        ]
    );
    c.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "newuser",
            "on",
            ">p1",
            "%R~foo",
            "~bar",
            "&news:*",
            "+@pubsub",
            "-punsubscribe",
            "+client|id",
        ],
        OK,
    );
    for proto in Proto::BOTH {
        c.use_proto(proto);
        let u = c.cmd(&["ACL", "GETUSER", "newuser"]);
        let keys: Vec<String> = pairs(&u).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "flags",
                "passwords",
                "commands",
                "keys",
                "channels",
                "selectors"
            ]
        );
        assert_eq!(
            bulk_list(&field(&u, "flags")),
            flags(&["on", "sanitize-payload"])
        );
        assert_eq!(bulk_list(&field(&u, "passwords")), [P1_HASH]);
        // Redis 7.2 keeps the rules in the order given; 7.0 rebuilt them
        // from its bitmap, in an order of its own.
        let commands = field(&u, "commands").text();
        let expected = "-@all +@pubsub -punsubscribe +client|id";
        if target().is_redis() {
            let mut got: Vec<&str> = commands.split(' ').collect();
            let mut want: Vec<&str> = expected.split(' ').collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want);
        } else {
            assert_eq!(commands, expected);
        }
        assert_eq!(field(&u, "keys").text(), "%R~foo ~bar");
        assert_eq!(field(&u, "channels").text(), "&news:*");
        assert!(field(&u, "selectors").items().is_empty());
    }
    c.cmd(&["HELLO", "2"]);
    c.cmd_expect(&["ACL", "GETUSER", "nosuch"], b"$-1\r\n");
    assert_eq!(bulk_list(&c.cmd(&["ACL", "USERS"])), ["default", "newuser"]);
    c.cmd_expect(&["ACL", "WHOAMI"], b"$7\r\ndefault\r\n");
    c.cmd_expect(
        &["ACL", "SETUSER", "newuser", "+nosuch"],
        b"-ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL\r\n",
    );
    c.cmd_expect(
        &["ACL", "SETUSER", "a a"],
        b"-ERR Usernames can't contain spaces or null characters\r\n",
    );
    c.cmd_expect(
        &["ACL", "SETUSER", "newuser", "&*", "&foo"],
        b"-ERR Error in ACL SETUSER modifier '&foo': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels\r\n",
    );
    // A failed SETUSER changes nothing.
    let channels = field(&c.cmd(&["ACL", "GETUSER", "newuser"]), "channels");
    assert_eq!(channels.text(), "&news:*");
}

fn auth_and_hello_log_in_as_a_user(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(
        &["ACL", "SETUSER", "alice", "on", ">secret", "+@all", "&*"],
        OK,
    );
    admin.cmd_expect(&["ACL", "SETUSER", "bob", "off", ">secret", "+@all"], OK);
    let mut c = server.raw();
    c.cmd_expect(&["AUTH", "alice", "wrong"], WRONGPASS);
    c.cmd_expect(&["AUTH", "nobody", "secret"], WRONGPASS);
    c.cmd_expect(&["AUTH", "bob", "secret"], WRONGPASS);
    c.cmd_expect(&["AUTH", "alice", "secret"], OK);
    c.cmd_expect(&["ACL", "WHOAMI"], b"$5\r\nalice\r\n");
    assert!(client_list(&server).contains(" user=alice "));
    let mut h = server.raw();
    let reply = h.cmd(&["HELLO", "3", "AUTH", "alice", "secret"]);
    assert!(matches!(reply, Frame::Map(_)), "{reply:?}");
    h.cmd_expect(&["ACL", "WHOAMI"], b"$5\r\nalice\r\n");
    let mut bad = server.raw();
    bad.cmd_expect(&["HELLO", "3", "AUTH", "alice", "nope"], WRONGPASS);
    // RESET logs out back to the default user.
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    c.cmd_expect(&["ACL", "WHOAMI"], b"$7\r\ndefault\r\n");
    // A user switched off keeps its connections but cannot log in again.
    admin.cmd_expect(&["ACL", "SETUSER", "alice", "off"], OK);
    h.cmd_expect(&["ACL", "WHOAMI"], b"$5\r\nalice\r\n");
    server
        .raw()
        .cmd_expect(&["AUTH", "alice", "secret"], WRONGPASS);
    denied(&server, "auth", 5);
}

fn commands_outside_the_users_rules_get_noperm_and_are_logged(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(&["ACL", "LOG", "RESET"], OK);
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "on",
            ">pspass",
            "+@pubsub",
            "&*",
            "-pubsub|numpat",
        ],
        OK,
    );
    let mut c = login(&server, "psuser", "pspass");
    c.cmd_expect(&["PING"], &noperm_command("psuser", "ping"));
    c.cmd_expect(
        &["PUBSUB", "NUMPAT"],
        &noperm_command("psuser", "pubsub|numpat"),
    );
    c.cmd_expect(&["PING"], &noperm_command("psuser", "ping"));
    c.cmd_expect(&["PUBLISH", "ch", "m"], b":0\r\n");
    // Arity is checked before permissions, as in Redis.
    c.cmd_expect(
        &["ECHO"],
        b"-ERR wrong number of arguments for 'echo' command\r\n",
    );
    denied(&server, "cmd", 3);
    let log = admin.cmd(&["ACL", "LOG"]);
    let entries = log.items();
    assert_eq!(entries.len(), 2);
    let newest = &entries[0];
    assert_eq!(field(newest, "count").int(), 2, "repeated denials merge");
    assert_eq!(field(newest, "reason").text(), "command");
    assert_eq!(field(newest, "context").text(), "toplevel");
    assert_eq!(field(newest, "object").text(), "ping");
    assert_eq!(field(newest, "username").text(), "psuser");
    assert!(
        field(newest, "client-info")
            .text()
            .contains(" user=psuser ")
    );
    assert_eq!(field(&entries[1], "object").text(), "pubsub|numpat");
    if !target().is_redis() {
        // Redis 7.2 fields (7.0 has the first seven only).
        assert_eq!(pairs(newest).len(), 10);
        assert_eq!(field(newest, "entry-id").int(), 0);
        assert_eq!(field(&entries[1], "entry-id").int(), 1);
        let created = field(newest, "timestamp-created").int();
        assert!(field(newest, "timestamp-last-updated").int() >= created);
    }
    assert_eq!(admin.cmd(&["ACL", "LOG", "1"]).items().len(), 1);
    admin.cmd_expect(&["ACL", "LOG", "RESET"], OK);
    admin.cmd_expect(&["ACL", "LOG"], b"*0\r\n");
    server
        .raw()
        .cmd_expect(&["AUTH", "psuser", "bad"], WRONGPASS);
    let auth = admin.cmd(&["ACL", "LOG"]);
    let entry = &auth.items()[0];
    assert_eq!(field(entry, "reason").text(), "auth");
    assert_eq!(field(entry, "object").text(), "AUTH");
    assert_eq!(field(entry, "username").text(), "psuser");
}

fn channels_outside_the_users_patterns_get_noperm(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "on",
            ">pspass",
            "+@all",
            "resetchannels",
            "&foo:1",
            "&bar:*",
        ],
        OK,
    );
    let mut c = login(&server, "psuser", "pspass");
    c.cmd_expect(&["PUBLISH", "foo:1", "m"], b":0\r\n");
    c.cmd_expect(&["PUBLISH", "bar:anything", "m"], b":0\r\n");
    c.cmd_expect(&["PUBLISH", "zap", "m"], noperm_channel());
    c.cmd_expect(&["SPUBLISH", "zap", "m"], noperm_channel());
    c.cmd_expect(&["SUBSCRIBE", "foo:1", "zap"], noperm_channel());
    c.cmd_expect(&["SSUBSCRIBE", "zap"], noperm_channel());
    // A pattern must be one of the user's patterns, literally.
    c.cmd_expect(&["PSUBSCRIBE", "bar:baz"], noperm_channel());
    c.sub("psubscribe", &["bar:*"], &[1]);
    c.sub("subscribe", &["foo:1", "bar:2"], &[2, 3]);
    c.cmd_expect(
        &["UNSUBSCRIBE", "zap"],
        &resp::confirmation(Proto::Resp2, "unsubscribe", Some(b"zap"), 3),
    );
    denied(&server, "channel", 5);
    let log = admin.cmd(&["ACL", "LOG", "1"]);
    let entry = &log.items()[0];
    assert_eq!(field(entry, "reason").text(), "channel");
    assert_eq!(field(entry, "object").text(), "bar:baz");
    // DRYRUN answers without running.
    admin.cmd_expect(&["ACL", "DRYRUN", "psuser", "PUBLISH", "foo:1", "m"], OK);
    let who = if target().is_redis() {
        "This user"
    } else {
        "User psuser"
    };
    let why = format!("{who} has no permissions to access the 'zap' channel");
    admin.cmd_expect(
        &["ACL", "DRYRUN", "psuser", "PUBLISH", "zap", "m"],
        &resp::bulk(why.as_bytes()),
    );
    admin.cmd_expect(
        &["ACL", "DRYRUN", "nobody", "PING"],
        b"-ERR User 'nobody' not found\r\n",
    );
}

/// A subscriber whose user loses one of its channels is closed; one whose
/// channels are all kept stays. Subscribers sit on every worker.
fn subscribers_are_closed_when_their_channels_are_revoked(b: Backend) {
    let server = Server::start(Opts::new(b).threads(3));
    let mut admin = server.conn();
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "on",
            ">pspass",
            "+@all",
            "resetchannels",
            "&foo:1",
            "&bar:*",
            "&orders",
        ],
        OK,
    );
    let workers = server.threads();
    let mut subs = Vec::new();
    for w in 0..workers {
        let mut s = if target().is_redis() {
            server.raw()
        } else {
            connect_on_worker(&server, w)
        };
        s.cmd_expect(&["AUTH", "psuser", "pspass"], OK);
        s.cmd_expect(&["CLIENT", "SETNAME", &format!("pardoned{w}")], OK);
        s.sub("subscribe", &["foo:1"], &[1]);
        s.sub("psubscribe", &["bar:*"], &[2]);
        s.sub("ssubscribe", &["orders"], &[1]);
        subs.push(s);
    }
    // Keeping every pattern (and adding some, or all) closes nobody.
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "resetchannels",
            "&foo:1",
            "&bar:*",
            "&orders",
            "&baz:qaz",
        ],
        OK,
    );
    admin.cmd_expect(&["ACL", "SETUSER", "psuser", "allchannels"], OK);
    admin.publish("PUBLISH", "foo:1", "still", workers as i64);
    for s in &mut subs {
        s.expect_message("foo:1", "still");
    }
    // Losing `bar:*` closes every subscriber of the user, on every worker;
    // nothing published after the change reaches them.
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "psuser",
            "resetchannels",
            "&foo:1",
            "&orders",
        ],
        OK,
    );
    admin.cmd(&["PUBLISH", "foo:1", "after"]);
    for s in &mut subs {
        s.expect_closed();
    }
    eventually("revoked subscribers leave CLIENT LIST", || {
        !client_list(&server).contains("pardoned")
    });
}

fn deleting_a_user_closes_its_connections(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    let mut admin = server.conn();
    admin.cmd_expect(
        &["ACL", "SETUSER", "carol", "on", "nopass", "+@all", "&*"],
        OK,
    );
    let mut sub = login(&server, "carol", "x");
    sub.sub("subscribe", &["news"], &[1]);
    let mut idle = login(&server, "carol", "x");
    admin.cmd_expect(
        &["ACL", "DELUSER", "default"],
        b"-ERR The 'default' user cannot be removed\r\n",
    );
    admin.cmd_expect(&["ACL", "DELUSER", "carol", "nosuch"], b":1\r\n");
    sub.expect_closed();
    idle.expect_closed();
    // Deleting one's own user: the reply comes, then the connection closes.
    admin.cmd_expect(&["ACL", "SETUSER", "dave", "on", "nopass", "+@all"], OK);
    let mut dave = login(&server, "dave", "x");
    dave.cmd_expect(&["ACL", "DELUSER", "dave"], b":1\r\n");
    dave.expect_closed();
    // A user created again under the same name is someone else.
    admin.cmd_expect(&["ACL", "SETUSER", "carol", "on", "nopass", "+@all"], OK);
    eventually("clients of the deleted user leave CLIENT LIST", || {
        !client_list(&server).contains("user=carol")
    });
}

fn requirepass_is_the_default_users_password(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["CONFIG", "SET", "requirepass", "pw"], OK);
    let default = &bulk_list(&c.cmd(&["ACL", "LIST"]))[0];
    assert_eq!(
        default,
        &rules(&format!(
            "user default on sanitize-payload #{PW_HASH} ~* &* +@all"
        ))
    );
    server
        .raw()
        .cmd_expect(&["PING"], b"-NOAUTH Authentication required.\r\n");
    server.raw().cmd_expect(&["AUTH", "pw"], OK);
    // `nopass` given by ACL SETUSER opens the server as an empty requirepass does.
    c.cmd_expect(&["ACL", "SETUSER", "default", "nopass"], OK);
    server.raw().cmd_expect(&["PING"], b"+PONG\r\n");
    c.cmd_expect(&["ACL", "SETUSER", "default", "resetpass", ">pw"], OK);
    c.cmd_expect(&["CONFIG", "SET", "requirepass", ""], OK);
    let default = c.cmd(&["ACL", "GETUSER", "default"]);
    assert_eq!(
        bulk_list(&field(&default, "flags")),
        flags(&["on", "nopass", "sanitize-payload"])
    );
    assert!(field(&default, "passwords").items().is_empty());
}

fn acl_cat_genpass_and_errors_answer_as_redis(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let cats = bulk_list(&c.cmd(&["ACL", "CAT"]));
    assert_eq!(cats.len(), 21);
    assert_eq!(&cats[..3], ["keyspace", "read", "write"]);
    let pubsub = bulk_list(&c.cmd(&["ACL", "CAT", "pubsub"]));
    for name in ["publish", "subscribe", "psubscribe", "pubsub|numsub"] {
        assert!(pubsub.iter().any(|n| n == name), "{name} in {pubsub:?}");
    }
    c.cmd_expect(&["ACL", "CAT", "nope"], b"-ERR Unknown category 'nope'\r\n");
    assert_eq!(c.cmd(&["ACL", "GENPASS"]).text().len(), 64);
    assert_eq!(c.cmd(&["ACL", "GENPASS", "5"]).text().len(), 2);
    c.cmd_expect(
        &["ACL", "GENPASS", "0"],
        b"-ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096\r\n",
    );
    c.cmd_expect(
        &["ACL", "LOAD"],
        b"-ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.\r\n",
    );
    c.cmd_expect(
        &["ACL", "NOSUCH"],
        b"-ERR unknown subcommand 'NOSUCH'. Try ACL HELP.\r\n",
    );
    assert!(c.cmd(&["ACL", "HELP"]).items().len() > 20);
}

fn acl_file_loads_saves_and_closes_replaced_users(b: Backend) {
    ringcast_only!("the harness passes extra flags to ringcast only");
    let dir = std::env::temp_dir().join(format!("ringcast-acl-{}-{b:?}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("users.acl");
    let text = "user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~objects:* %R~ro:* resetchannels &news:* -@all +@pubsub +get\nuser default on nopass sanitize-payload ~* &* +@all\n";
    std::fs::write(&file, text).expect("write acl file");
    let path = file.to_str().expect("utf-8 path");
    let server = Server::start(Opts::new(b).arg("aclfile", path));
    let mut c = server.conn();
    assert_eq!(
        bulk_list(&c.cmd(&["ACL", "LIST"])),
        [
            "user alice on sanitize-payload #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~objects:* %R~ro:* resetchannels &news:* -@all +@pubsub +get",
            "user default on nopass sanitize-payload ~* &* +@all",
        ]
    );
    let mut alice = login(&server, "alice", "pw");
    c.cmd_expect(&["ACL", "SETUSER", "bob", "on", "nopass"], OK);
    c.cmd_expect(&["ACL", "SAVE"], OK);
    let saved = std::fs::read_to_string(&file).expect("saved file");
    assert!(saved.contains("user bob on nopass sanitize-payload resetchannels -@all\n"));
    // LOAD replaces every user but `default`: their clients are closed.
    c.cmd_expect(&["ACL", "LOAD"], OK);
    alice.expect_closed();
    std::fs::write(&file, "user x on +nosuch\nbogus\n").expect("write acl file");
    let reply = c.cmd(&["ACL", "LOAD"]);
    let Frame::Error(e) = reply else {
        panic!("{reply:?}")
    };
    let e = String::from_utf8_lossy(&e).into_owned();
    assert!(e.ends_with("WARNING: ACL errors detected, no change to the previously active ACL rules was performed"), "{e}");
    assert!(
        e.contains(
            ":1: Error in applying operation '+nosuch': Unknown command or category name in ACL. "
        ),
        "{e}"
    );
    assert_eq!(
        bulk_list(&c.cmd(&["ACL", "USERS"])),
        ["alice", "bob", "default"]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn user_lines_of_the_configuration_are_loaded_at_startup(b: Backend) {
    ringcast_only!("the harness passes extra flags to ringcast only");
    let server = Server::start(
        Opts::new(b)
            .arg("user", "worker on >pw &jobs:* +@pubsub")
            .arg("acl-pubsub-default", "resetchannels"),
    );
    let mut c = login(&server, "worker", "pw");
    c.cmd_expect(&["PUBLISH", "jobs:1", "x"], b":0\r\n");
    c.cmd_expect(&["PUBLISH", "other", "x"], noperm_channel());
    let mut admin = server.conn();
    admin.cmd_expect(&["CONFIG", "SET", "acl-pubsub-default", "allchannels"], OK);
    admin.cmd_expect(&["ACL", "SETUSER", "fresh"], OK);
    assert_eq!(
        field(&admin.cmd(&["ACL", "GETUSER", "fresh"]), "channels").text(),
        "&*"
    );
}

backend_tests!(
    setuser_and_getuser_show_rules_back_as_redis,
    auth_and_hello_log_in_as_a_user,
    commands_outside_the_users_rules_get_noperm_and_are_logged,
    channels_outside_the_users_patterns_get_noperm,
    subscribers_are_closed_when_their_channels_are_revoked,
    deleting_a_user_closes_its_connections,
    requirepass_is_the_default_users_password,
    acl_cat_genpass_and_errors_answer_as_redis,
    acl_file_loads_saves_and_closes_replaced_users,
    user_lines_of_the_configuration_are_loaded_at_startup,
);
