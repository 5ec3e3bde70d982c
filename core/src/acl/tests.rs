//! Rule parsing and the text rules are shown back as, against the strings
//! Redis 7.2's own test suite expects (`tests/unit/acl.tcl`, `acl-v2.tcl`).

use bytes::Bytes;

use super::*;
use crate::resp::args::Args;

const D: Defaults = Defaults { allchannels: false };

fn user(rules: &str) -> User {
    let mut u = User::new(1, Bytes::from_static(b"u"), D);
    set(&mut u, rules);
    u
}

fn set(u: &mut User, rules: &str) {
    let ops: Vec<&[u8]> = rules.split(' ').map(str::as_bytes).collect();
    for op in merge_selector_args(ops).unwrap() {
        u.apply(&op, D).unwrap();
    }
}

fn described(u: &User) -> String {
    String::from_utf8(u.describe()).unwrap()
}

fn commands(u: &User) -> String {
    u.root().describe_commands()
}

#[test]
fn new_and_default_users_describe_as_redis() {
    assert_eq!(
        described(&user("")),
        "off sanitize-payload resetchannels -@all"
    );
    let acl = Acl::new(None, D);
    assert_eq!(
        described(acl.users().default_user()),
        "on nopass sanitize-payload ~* &* +@all"
    );
    let with_pass = Acl::new(Some("secret"), D);
    let d = with_pass.users().default_user().clone();
    assert!(d.password_ok(b"secret") && !d.password_ok(b"other"));
    assert!(with_pass.users().auth_required());
    assert!(!acl.users().auth_required());
    assert_eq!(
        described(&user("on nopass resetchannels &foo +@all")),
        "on nopass sanitize-payload resetchannels &foo +@all"
    );
}

#[test]
fn command_rules_compact_as_redis() {
    let mut u = user("+@all -@hash -@slow +hget");
    assert_eq!(commands(&u), "+@all -@hash -@slow +hget");
    set(&mut u, "-@hash");
    assert_eq!(commands(&u), "+@all -@slow +hget -@hash");
    set(&mut u, "+@hash");
    assert_eq!(commands(&u), "+@all -@slow +hget +@hash");
    set(&mut u, "-@all");
    assert_eq!(commands(&u), "-@all");
    set(&mut u, "-@string -@slow +@all");
    assert_eq!(commands(&u), "+@all");
    set(&mut u, "-@all +@HASH +@hash +@HaSh");
    assert_eq!(commands(&u), "-@all +@hash");
    set(&mut u, "-@all +HGET +hget +hGeT");
    assert_eq!(commands(&u), "-@all +hget");
    set(&mut u, "-@all +@hash +@slow +@set +@set +@slow +@hash");
    assert_eq!(commands(&u), "-@all +@set +@slow +@hash");
    set(&mut u, "-@all +hget -hset +hset -hget");
    assert_eq!(commands(&u), "-@all +hset -hget");
    set(
        &mut u,
        "-@all +client|list +client|list +config|get +config +acl|list -acl",
    );
    assert_eq!(commands(&u), "-@all +client|list +config -acl");
    set(&mut u, "-@all +select|0 +select|0 +debug|segfault +debug");
    assert_eq!(commands(&u), "-@all +select|0 +debug");
    set(&mut u, "-@all -@dangerous");
    assert_eq!(commands(&u), "-@all -@dangerous");
    set(&mut u, "-@all +config +config|get -config|set +config");
    assert_eq!(commands(&u), "-@all +config");
    set(&mut u, "+@all -client|kill");
    assert_eq!(commands(&u), "+@all -client|kill");
}

#[test]
fn key_and_channel_patterns_are_kept_and_shown_back() {
    let u = user("%R~foo1 %W~bar1 ~baz1 %RW~qux %R~qux &channel1 &ch2 +get");
    assert_eq!(
        String::from_utf8(u.root().keys_field()).unwrap(),
        "%R~foo1 %W~bar1 ~baz1 ~qux"
    );
    assert_eq!(
        String::from_utf8(u.root().channels_field()).unwrap(),
        "&channel1 &ch2"
    );
    assert_eq!(
        described(&u),
        "off sanitize-payload %R~foo1 %W~bar1 ~baz1 ~qux resetchannels &channel1 &ch2 -@all +get"
    );
    let all = user("allkeys allchannels");
    assert_eq!(all.root().keys_field(), b"~*");
    assert_eq!(all.root().channels_field(), b"&*");
    assert_eq!(described(&all), "off sanitize-payload ~* &* -@all");
}

#[test]
fn selectors_are_described_after_the_root() {
    let u = user("on (~key2 +set) (%R~key3 &ch +get  +@pubsub)");
    assert_eq!(u.selectors().len(), 2);
    assert_eq!(
        described(&u),
        "on sanitize-payload resetchannels -@all (~key2 resetchannels -@all +set) (%R~key3 resetchannels &ch -@all +get +@pubsub)"
    );
    let mut u = u;
    set(&mut u, "clearselectors");
    assert!(u.selectors().is_empty());
    assert_eq!(merge_selector_args([&b"(~x"[..], b"+get"]), Err(0));
}

#[test]
fn passwords_are_sha256_hex_and_removable() {
    let mut u = user("on >passwd1");
    assert!(u.password_ok(b"passwd1") && !u.password_ok(b"passwd2"));
    set(
        &mut u,
        "#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6",
    );
    assert!(u.password_ok(b"passwd4"));
    set(&mut u, "<passwd1");
    assert!(!u.password_ok(b"passwd1"));
    assert_eq!(u.apply(b"<passwd1", D), Err(RuleError::NoSuchPassword));
    assert_eq!(
        u.apply(
            b"#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e",
            D
        ),
        Err(RuleError::BadHash)
    );
    assert_eq!(
        u.apply(
            b"!34344E4D60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6",
            D
        ),
        Err(RuleError::BadHash)
    );
    set(&mut u, "off");
    assert!(!u.password_ok(b"passwd4"), "a disabled user cannot log in");
    set(&mut u, "on nopass");
    assert!(u.password_ok(b"anything"));
    assert_eq!(u.passwords().count(), 0);
}

#[test]
fn bad_rules_get_redis_errors() {
    let mut u = user("");
    assert_eq!(u.apply(b"+nosuchcommand", D), Err(RuleError::Unknown));
    assert_eq!(u.apply(b"+@nosuchcategory", D), Err(RuleError::Unknown));
    assert_eq!(u.apply(b"-select|0", D), Err(RuleError::Unknown));
    assert_eq!(
        u.apply(b"+config|get|x", D),
        Err(RuleError::FirstArgOfSubcommand)
    );
    assert_eq!(u.apply(b"+debug|", D), Err(RuleError::Syntax));
    assert_eq!(u.apply(b"bogus", D), Err(RuleError::Syntax));
    assert_eq!(u.apply(b"(on)", D), Err(RuleError::Syntax));
    set(&mut u, "allkeys allchannels");
    assert_eq!(u.apply(b"~foo", D), Err(RuleError::KeysAfterAll));
    assert_eq!(u.apply(b"&foo", D), Err(RuleError::ChannelsAfterAll));
    assert_eq!(
        RuleError::ChannelsAfterAll.to_string(),
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
    );
}

fn args(words: &[&'static str]) -> Args {
    words.iter().map(|w| w.as_bytes()).collect()
}

fn check(u: &User, words: &[&'static str]) -> Result<(), Denied> {
    let id = table::lookup(words[0].as_bytes()).unwrap();
    u.check(id, args(words).list(), ChannelArgs::of(table::name(id)))
}

#[test]
fn commands_and_channels_are_checked_as_redis() {
    let u = user("on +@pubsub -punsubscribe resetchannels &foo:1 &bar:*");
    assert_eq!(check(&u, &["publish", "foo:1", "m"]), Ok(()));
    assert_eq!(check(&u, &["publish", "bar:x", "m"]), Ok(()));
    assert_eq!(check(&u, &["publish", "zap", "m"]), Err(Denied::Channel(1)));
    assert_eq!(
        check(&u, &["subscribe", "foo:1", "zap"]),
        Err(Denied::Channel(2))
    );
    // A pattern is allowed only if it is one of the user's patterns, literally.
    assert_eq!(check(&u, &["psubscribe", "bar:*"]), Ok(()));
    assert_eq!(
        check(&u, &["psubscribe", "bar:baz"]),
        Err(Denied::Channel(1))
    );
    assert_eq!(check(&u, &["punsubscribe", "x"]), Err(Denied::Command));
    assert_eq!(check(&u, &["unsubscribe", "zap"]), Ok(()));
    assert_eq!(check(&u, &["ping"]), Err(Denied::Command));
    assert_eq!(
        check(&u, &["auth", "a", "b"]),
        Ok(()),
        "no_auth commands are always allowed"
    );
    // A second selector can allow what the root denies.
    let two = user("on +ping (+publish &news)");
    assert_eq!(check(&two, &["publish", "news", "m"]), Ok(()));
    assert_eq!(
        check(&two, &["publish", "other", "m"]),
        Err(Denied::Channel(1))
    );
    let first_arg = user("on +select|0 +client|id");
    assert_eq!(check(&first_arg, &["select", "0"]), Ok(()));
    assert_eq!(check(&first_arg, &["select", "1"]), Err(Denied::Command));
    assert_eq!(check(&first_arg, &["client|id", "id"]), Ok(()));
    assert_eq!(
        check(&first_arg, &["client|list", "list"]),
        Err(Denied::Command)
    );
}

#[test]
fn channel_grants_kept_only_if_every_old_pattern_remains() {
    let old = user("resetchannels &foo:1 &bar:* &orders");
    assert!(old.channels_kept_by(&user("resetchannels &foo:1 &bar:* &orders &baz:qaz &zoo:*")));
    assert!(old.channels_kept_by(&user("allchannels")));
    assert!(!old.channels_kept_by(&user("resetchannels &foo:1")));
    assert!(!user("allchannels").channels_kept_by(&old));
}

#[test]
fn acl_files_load_and_save_back_unchanged() {
    let acl = Acl::new(None, D);
    let text = "user alice on #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6 ~objects:* %R~ro:* resetchannels &news:* -@all +@pubsub +get (~x resetchannels -@all +set)\nuser default on nopass sanitize-payload ~* &* +@all\n";
    let mut id = 10;
    let users = parse_file(text.as_bytes(), "users.acl", &acl.users(), D, || {
        id += 1;
        id
    })
    .unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(
        String::from_utf8(render_file(&users)).unwrap(),
        "user alice on sanitize-payload #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6 ~objects:* %R~ro:* resetchannels &news:* -@all +@pubsub +get (~x resetchannels -@all +set)\nuser default on nopass sanitize-payload ~* &* +@all\n"
    );
    assert_eq!(users.default_user().id, acl.users().default_user().id);
    let bad = "user bob on +nosuch\nfoo\nuser bob on\n";
    let err = parse_file(bad.as_bytes(), "users.acl", &acl.users(), D, || 1).unwrap_err();
    assert_eq!(
        err,
        "users.acl:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. users.acl:2 should start with user keyword followed by the username. WARNING: Duplicate user 'bob' found on line 3. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
    );
}

#[test]
fn config_user_lines_are_checked_when_read() {
    let line = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    assert_eq!(check_user_line(&line("alice on +nosuch"), &[]), Ok(()));
    assert_eq!(
        check_user_line(&line("alice on bogus"), &[])
            .unwrap_err()
            .to_string(),
        "Error in user declaration 'bogus': Syntax error"
    );
    let seen = vec![line("alice on")];
    assert_eq!(
        check_user_line(&line("alice off"), &seen)
            .unwrap_err()
            .to_string(),
        "Error in user declaration 'alice': Duplicate user found. A user can only be defined once in config files"
    );
}

#[test]
fn watch_keys_are_checked_against_any_key_pattern() {
    let u = user("on +watch %R~r:* %W~w:* ~both");
    assert_eq!(check(&u, &["watch", "r:1", "w:1", "both"]), Ok(()));
    assert_eq!(check(&u, &["watch", "r:1", "x"]), Err(Denied::Key(2)));
    assert_eq!(check(&user("on +watch allkeys"), &["watch", "x"]), Ok(()));
    assert_eq!(
        check(&user("on +watch"), &["watch", "x"]),
        Err(Denied::Key(1))
    );
    // A denied key ranks above a denied command, as in Redis.
    let two = user("on +watch ~a (+ping ~*)");
    assert_eq!(check(&two, &["watch", "b"]), Err(Denied::Key(1)));
}
