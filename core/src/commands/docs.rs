//! What `COMMAND`, `COMMAND INFO` and `COMMAND DOCS` report about each command.
//!
//! Clients read this metadata instead of hard-coding it: redis-cli's
//! interactive mode sends `COMMAND DOCS` at connect for its hints, cluster-aware
//! libraries route by `COMMAND INFO` key specs and tips. So [`DOCS`] carries
//! Redis 7.2's own description (its `src/commands/*.json`, as a Redis 7.2.4
//! server reports it) of every command in the dispatch table, and of every
//! Redis subcommand of the containers ringcast has (CLIENT, CONFIG, COMMAND,
//! PUBSUB, CLUSTER), so a subcommand added to the table finds its docs here.
//!
//! The dispatch table (`super::COMMANDS`) stays the one list of what ringcast
//! answers: replies walk it and look each command up here by full name
//! (`container|sub` for subcommands). Shapes follow Redis's `addReplyCommandInfo`
//! and `addReplyCommandDocs`: sets and maps in RESP3, flat arrays in RESP2.

use bytes::BytesMut;

use super::CommandSpec;
use crate::resp::args::ArgList;
use crate::resp::encode::{self, Proto};
use ArgType::*;

/// An argument's type, as `COMMAND DOCS` names it (the ones these commands use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArgType {
    Str,
    Key,
    Integer,
    Pattern,
    PureToken,
    OneOf,
    Block,
}

impl ArgType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ArgType::Str => "string",
            ArgType::Key => "key",
            ArgType::Integer => "integer",
            ArgType::Pattern => "pattern",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }
}

/// One documented argument. `arguments` is used by `OneOf` and `Block` only;
/// `key_spec_index` by `Key` only (WATCH's keys).
#[derive(Clone, Copy, Debug)]
pub(super) struct Arg {
    pub name: &'static str,
    pub kind: ArgType,
    pub display_text: Option<&'static str>,
    pub key_spec_index: Option<i64>,
    pub token: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    /// `optional`, `multiple`, `multiple_token`, in Redis's order.
    pub flags: &'static [&'static str],
    pub arguments: &'static [Arg],
}

const fn arg(name: &'static str, kind: ArgType) -> Arg {
    Arg {
        name,
        kind,
        display_text: None,
        key_spec_index: None,
        token: None,
        since: None,
        deprecated_since: None,
        flags: &[],
        arguments: &[],
    }
}

// Builders that keep the table below close to Redis's JSON, one argument a line.
impl Arg {
    const fn display(mut self, text: &'static str) -> Self {
        self.display_text = Some(text);
        self
    }
    const fn key_spec(mut self, index: i64) -> Self {
        self.key_spec_index = Some(index);
        self
    }
    const fn token(mut self, token: &'static str) -> Self {
        self.token = Some(token);
        self
    }
    const fn since(mut self, version: &'static str) -> Self {
        self.since = Some(version);
        self
    }
    const fn deprecated_since(mut self, version: &'static str) -> Self {
        self.deprecated_since = Some(version);
        self
    }
    const fn flags(mut self, flags: &'static [&'static str]) -> Self {
        self.flags = flags;
        self
    }
    const fn args(mut self, arguments: &'static [Arg]) -> Self {
        self.arguments = arguments;
        self
    }
}

/// A key spec of the one shape these commands use: keys start at a fixed
/// index (`begin_search` `index`) and run as a `range` (`find_keys`).
#[derive(Clone, Copy, Debug)]
pub(super) struct KeySpec {
    pub flags: &'static [&'static str],
    pub begin_index: i64,
    pub last_key: i64,
    pub key_step: i64,
    pub limit: i64,
}

/// Everything Redis reports about one command or subcommand.
#[derive(Clone, Copy, Debug)]
pub(super) struct CommandDoc {
    /// Full name, lowercase: `publish`, `client|list`.
    pub name: &'static str,
    /// Redis's arity. Replies use the dispatch table's, which a test holds to this one.
    #[allow(dead_code)]
    pub arity: i32,
    /// Command flags (`pubsub`, `loading`, `stale`, `fast`...), in Redis's order.
    pub flags: &'static [&'static str],
    /// Legacy (first key, last key, step).
    pub key_range: (i64, i64, i64),
    pub acl_categories: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    pub doc_flags: &'static [&'static str],
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    /// (version, change) pairs.
    pub history: &'static [(&'static str, &'static str)],
    pub arguments: &'static [Arg],
}

impl CommandDoc {
    /// Defaults for the table below, and what an undocumented command reports.
    const NONE: CommandDoc = CommandDoc {
        name: "",
        arity: 0,
        flags: &[],
        key_range: (0, 0, 0),
        acl_categories: &[],
        tips: &[],
        key_specs: &[],
        summary: "",
        since: "",
        group: "",
        complexity: "",
        doc_flags: &[],
        deprecated_since: None,
        replaced_by: None,
        history: &[],
        arguments: &[],
    };
}

/// The docs of a command by full name (`client|list`), exact lowercase.
pub(super) fn lookup(name: &str) -> Option<&'static CommandDoc> {
    DOCS.iter().find(|d| d.name == name)
}

fn doc_of(spec: &CommandSpec) -> &'static CommandDoc {
    // Every table entry has docs (a test checks it); an empty entry beats a panic.
    lookup(spec.name).unwrap_or(&CommandDoc::NONE)
}

/// A command named as `COMMAND INFO` and `COMMAND DOCS` take it: `name` or
/// `container|sub`, case-insensitive (Redis's `lookupCommandBySds`).
pub(super) fn resolve(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut parts = name.split(|&b| b == b'|');
    let top = super::find(super::COMMANDS, parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(top),
        (Some(sub), None) if !top.subcommands.is_empty() => super::find(top.subcommands, sub),
        _ => None,
    }
}

/// A command named by the words of a full call (`COMMAND GETKEYS client list`):
/// the subcommand when the command has them and a second word is given.
pub(super) fn resolve_call(words: ArgList<'_>) -> Option<&'static CommandSpec> {
    let top = super::find(super::COMMANDS, words.first()?)?;
    match words.get(1) {
        Some(sub) if !top.subcommands.is_empty() => super::find(top.subcommands, sub),
        _ => Some(top),
    }
}

/// Whether a command's ACL categories include `category` (`pubsub`, no `@`),
/// as `COMMAND LIST FILTERBY ACLCAT` tests it.
pub(super) fn in_acl_category(spec: &CommandSpec, category: &[u8]) -> bool {
    doc_of(spec).acl_categories.iter().any(|c| {
        c.strip_prefix('@')
            .unwrap_or(c)
            .as_bytes()
            .eq_ignore_ascii_case(category)
    })
}

fn simple_set(out: &mut BytesMut, items: &[&str], proto: Proto) {
    encode::set(out, items.len(), proto);
    for i in items {
        encode::simple(out, i.as_bytes());
    }
}

/// One `COMMAND INFO` entry: the 10-element array of Redis 7.
pub(super) fn write_info(out: &mut BytesMut, spec: &CommandSpec, proto: Proto) {
    let doc = doc_of(spec);
    encode::array(out, 10);
    encode::bulk(out, spec.name.as_bytes());
    encode::integer(out, spec.arity as i64);
    simple_set(out, doc.flags, proto);
    encode::integer(out, doc.key_range.0);
    encode::integer(out, doc.key_range.1);
    encode::integer(out, doc.key_range.2);
    simple_set(out, doc.acl_categories, proto);
    encode::set(out, doc.tips.len(), proto);
    for t in doc.tips {
        encode::bulk(out, t.as_bytes());
    }
    encode::set(out, doc.key_specs.len(), proto);
    for k in doc.key_specs {
        write_key_spec(out, k, proto);
    }
    if spec.subcommands.is_empty() {
        encode::set(out, 0, proto);
    } else {
        encode::array(out, spec.subcommands.len());
        for s in spec.subcommands {
            write_info(out, s, proto);
        }
    }
}

fn write_key_spec(out: &mut BytesMut, k: &KeySpec, proto: Proto) {
    encode::map(out, 3, proto);
    encode::bulk(out, b"flags");
    simple_set(out, k.flags, proto);
    encode::bulk(out, b"begin_search");
    encode::map(out, 2, proto);
    encode::bulk(out, b"type");
    encode::bulk(out, b"index");
    encode::bulk(out, b"spec");
    encode::map(out, 1, proto);
    encode::bulk(out, b"index");
    encode::integer(out, k.begin_index);
    encode::bulk(out, b"find_keys");
    encode::map(out, 2, proto);
    encode::bulk(out, b"type");
    encode::bulk(out, b"range");
    encode::bulk(out, b"spec");
    encode::map(out, 3, proto);
    encode::bulk(out, b"lastkey");
    encode::integer(out, k.last_key);
    encode::bulk(out, b"keystep");
    encode::integer(out, k.key_step);
    encode::bulk(out, b"limit");
    encode::integer(out, k.limit);
}

fn pair(out: &mut BytesMut, key: &str, value: &str) {
    encode::bulk(out, key.as_bytes());
    encode::bulk(out, value.as_bytes());
}

/// One `COMMAND DOCS` value: the doc map of a command (its name is written by the caller).
pub(super) fn write_docs(out: &mut BytesMut, spec: &CommandSpec, proto: Proto) {
    let doc = doc_of(spec);
    let fields = 3
        + usize::from(!doc.complexity.is_empty())
        + usize::from(!doc.doc_flags.is_empty())
        + usize::from(doc.deprecated_since.is_some())
        + usize::from(doc.replaced_by.is_some())
        + usize::from(!doc.history.is_empty())
        + usize::from(!doc.arguments.is_empty())
        + usize::from(!spec.subcommands.is_empty());
    encode::map(out, fields, proto);
    pair(out, "summary", doc.summary);
    pair(out, "since", doc.since);
    pair(out, "group", doc.group);
    // MONITOR is documented without one.
    if !doc.complexity.is_empty() {
        pair(out, "complexity", doc.complexity);
    }
    if !doc.doc_flags.is_empty() {
        encode::bulk(out, b"doc_flags");
        simple_set(out, doc.doc_flags, proto);
    }
    if let Some(v) = doc.deprecated_since {
        pair(out, "deprecated_since", v);
    }
    if let Some(v) = doc.replaced_by {
        pair(out, "replaced_by", v);
    }
    if !doc.history.is_empty() {
        encode::bulk(out, b"history");
        encode::set(out, doc.history.len(), proto);
        for (version, change) in doc.history {
            encode::array(out, 2);
            encode::bulk(out, version.as_bytes());
            encode::bulk(out, change.as_bytes());
        }
    }
    if !doc.arguments.is_empty() {
        encode::bulk(out, b"arguments");
        write_args(out, doc.arguments, proto);
    }
    if !spec.subcommands.is_empty() {
        encode::bulk(out, b"subcommands");
        encode::map(out, spec.subcommands.len(), proto);
        for s in spec.subcommands {
            encode::bulk(out, s.name.as_bytes());
            write_docs(out, s, proto);
        }
    }
}

fn write_args(out: &mut BytesMut, args: &[Arg], proto: Proto) {
    encode::array(out, args.len());
    for a in args {
        let nested = matches!(a.kind, ArgType::OneOf | ArgType::Block);
        let fields = 2
            + usize::from(a.display_text.is_some())
            + usize::from(a.key_spec_index.is_some())
            + usize::from(a.token.is_some())
            + usize::from(a.since.is_some())
            + usize::from(a.deprecated_since.is_some())
            + usize::from(!a.flags.is_empty())
            + usize::from(nested);
        encode::map(out, fields, proto);
        pair(out, "name", a.name);
        pair(out, "type", a.kind.as_str());
        if let Some(v) = a.display_text {
            pair(out, "display_text", v);
        }
        if let Some(i) = a.key_spec_index {
            encode::bulk(out, b"key_spec_index");
            encode::integer(out, i);
        }
        for (key, value) in [
            ("token", a.token),
            ("since", a.since),
            ("deprecated_since", a.deprecated_since),
        ] {
            if let Some(v) = value {
                pair(out, key, v);
            }
        }
        if !a.flags.is_empty() {
            encode::bulk(out, b"flags");
            simple_set(out, a.flags, proto);
        }
        if nested {
            encode::bulk(out, b"arguments");
            write_args(out, a.arguments, proto);
        }
    }
}

// ----- The table -----------------------------------------------------------

pub(super) static DOCS: &[CommandDoc] = &[
    CommandDoc {
        name: "subscribe",
        arity: -2,
        flags: &["pubsub", "noscript", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Listens for messages published to channels.",
        since: "2.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of channels to subscribe to.",
        arguments: &[arg("channel", Str).display("channel").flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "unsubscribe",
        arity: -1,
        flags: &["pubsub", "noscript", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Stops listening to messages posted to channels.",
        since: "2.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of channels to unsubscribe.",
        arguments: &[arg("channel", Str)
            .display("channel")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "psubscribe",
        arity: -2,
        flags: &["pubsub", "noscript", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Listens for messages published to channels that match one or more patterns.",
        since: "2.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of patterns to subscribe to.",
        arguments: &[arg("pattern", Pattern)
            .display("pattern")
            .flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "punsubscribe",
        arity: -1,
        flags: &["pubsub", "noscript", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Stops listening to messages published to channels that match one or more patterns.",
        since: "2.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of patterns to unsubscribe.",
        arguments: &[arg("pattern", Pattern)
            .display("pattern")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "ssubscribe",
        arity: -2,
        flags: &["pubsub", "noscript", "loading", "stale"],
        key_range: (1, -1, 1),
        acl_categories: &["@pubsub", "@slow"],
        key_specs: &[KeySpec {
            flags: &["not_key"],
            begin_index: 1,
            last_key: -1,
            key_step: 1,
            limit: 0,
        }],
        summary: "Listens for messages published to shard channels.",
        since: "7.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of shard channels to subscribe to.",
        arguments: &[arg("shardchannel", Str)
            .display("shardchannel")
            .flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "sunsubscribe",
        arity: -1,
        flags: &["pubsub", "noscript", "loading", "stale"],
        key_range: (1, -1, 1),
        acl_categories: &["@pubsub", "@slow"],
        key_specs: &[KeySpec {
            flags: &["not_key"],
            begin_index: 1,
            last_key: -1,
            key_step: 1,
            limit: 0,
        }],
        summary: "Stops listening to messages posted to shard channels.",
        since: "7.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of shard channels to unsubscribe.",
        arguments: &[arg("shardchannel", Str)
            .display("shardchannel")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "publish",
        arity: 3,
        flags: &["pubsub", "loading", "stale", "fast"],
        acl_categories: &["@pubsub", "@fast"],
        summary: "Posts a message to a channel.",
        since: "2.0.0",
        group: "pubsub",
        complexity: "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        arguments: &[
            arg("channel", Str).display("channel"),
            arg("message", Str).display("message"),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "spublish",
        arity: 3,
        flags: &["pubsub", "loading", "stale", "fast"],
        key_range: (1, 1, 1),
        acl_categories: &["@pubsub", "@fast"],
        key_specs: &[KeySpec {
            flags: &["not_key"],
            begin_index: 1,
            last_key: 0,
            key_step: 1,
            limit: 0,
        }],
        summary: "Post a message to a shard channel",
        since: "7.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        arguments: &[
            arg("shardchannel", Str).display("shardchannel"),
            arg("message", Str).display("message"),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub",
        arity: -2,
        flags: &[],
        acl_categories: &["@slow"],
        summary: "A container for Pub/Sub commands.",
        since: "2.8.0",
        group: "pubsub",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub|channels",
        arity: -2,
        flags: &["pubsub", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Returns the active channels.",
        since: "2.8.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
        arguments: &[arg("pattern", Pattern)
            .display("pattern")
            .flags(&["optional"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub|numsub",
        arity: -2,
        flags: &["pubsub", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Returns a count of subscribers to channels.",
        since: "2.8.0",
        group: "pubsub",
        complexity: "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
        arguments: &[arg("channel", Str)
            .display("channel")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub|numpat",
        arity: 2,
        flags: &["pubsub", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Returns a count of unique pattern subscriptions.",
        since: "2.8.0",
        group: "pubsub",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub|shardchannels",
        arity: -2,
        flags: &["pubsub", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Returns the active shard channels.",
        since: "7.0.0",
        group: "pubsub",
        complexity: "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
        arguments: &[arg("pattern", Pattern)
            .display("pattern")
            .flags(&["optional"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub|shardnumsub",
        arity: -2,
        flags: &["pubsub", "loading", "stale"],
        acl_categories: &["@pubsub", "@slow"],
        summary: "Returns the count of subscribers of shard channels.",
        since: "7.0.0",
        group: "pubsub",
        complexity: "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
        arguments: &[arg("shardchannel", Str)
            .display("shardchannel")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "pubsub|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Returns helpful text about the different subcommands.",
        since: "6.2.0",
        group: "pubsub",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        acl_categories: &["@fast", "@connection"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        summary: "Returns the server's liveliness response.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("message", Str).display("message").flags(&["optional"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "echo",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        acl_categories: &["@fast", "@connection"],
        summary: "Returns the given string.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("message", Str).display("message")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "quit",
        arity: -1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        acl_categories: &["@fast", "@connection"],
        summary: "Closes the connection.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        doc_flags: &["deprecated"],
        deprecated_since: Some("7.2.0"),
        replaced_by: Some("just closing the connection"),
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "reset",
        arity: 1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        acl_categories: &["@fast", "@connection"],
        summary: "Resets the connection.",
        since: "6.2.0",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "hello",
        arity: -1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        acl_categories: &["@fast", "@connection"],
        summary: "Handshakes with the Redis server.",
        since: "6.0.0",
        group: "connection",
        complexity: "O(1)",
        history: &[(
            "6.2.0",
            "`protover` made optional; when called without arguments the command reports the current connection's context.",
        )],
        arguments: &[arg("arguments", Block).flags(&["optional"]).args(&[
            arg("protover", Integer).display("protover"),
            arg("auth", Block)
                .token("AUTH")
                .flags(&["optional"])
                .args(&[
                    arg("username", Str).display("username"),
                    arg("password", Str).display("password"),
                ]),
            arg("clientname", Str)
                .display("clientname")
                .token("SETNAME")
                .flags(&["optional"]),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "auth",
        arity: -2,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        acl_categories: &["@fast", "@connection"],
        summary: "Authenticates the connection.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(N) where N is the number of passwords defined for the user",
        history: &[("6.0.0", "Added ACL style (username and password).")],
        arguments: &[
            arg("username", Str)
                .display("username")
                .since("6.0.0")
                .flags(&["optional"]),
            arg("password", Str).display("password"),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "select",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        acl_categories: &["@fast", "@connection"],
        summary: "Changes the selected database.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("index", Integer).display("index")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client",
        arity: -2,
        flags: &[],
        acl_categories: &["@slow"],
        summary: "A container for client connection commands.",
        since: "2.4.0",
        group: "connection",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|id",
        arity: 2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns the unique client ID of the connection.",
        since: "5.0.0",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|setname",
        arity: 3,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Sets the connection name.",
        since: "2.6.9",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("connection-name", Str).display("connection-name")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|getname",
        arity: 2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns the name of the connection.",
        since: "2.6.9",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|setinfo",
        arity: 4,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Sets information specific to the client or connection.",
        since: "7.2.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("attr", OneOf).args(&[
            arg("libname", Str).display("libname").token("LIB-NAME"),
            arg("libver", Str).display("libver").token("LIB-VER"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|reply",
        arity: 3,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Instructs the server whether to reply to commands.",
        since: "3.2.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("action", OneOf).args(&[
            arg("on", PureToken).display("on").token("ON"),
            arg("off", PureToken).display("off").token("OFF"),
            arg("skip", PureToken).display("skip").token("SKIP"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|list",
        arity: -2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
        tips: &["nondeterministic_output"],
        summary: "Lists open connections.",
        since: "2.4.0",
        group: "connection",
        complexity: "O(N) where N is the number of client connections",
        history: &[
            ("2.8.12", "Added unique client `id` field."),
            ("5.0.0", "Added optional `TYPE` filter."),
            ("6.0.0", "Added `user` field."),
            (
                "6.2.0",
                "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter.",
            ),
            (
                "7.0.0",
                "Added `resp`, `multi-mem`, `rbs` and `rbp` fields.",
            ),
            ("7.0.3", "Added `ssub` field."),
        ],
        arguments: &[
            arg("client-type", OneOf)
                .token("TYPE")
                .since("5.0.0")
                .flags(&["optional"])
                .args(&[
                    arg("normal", PureToken).display("normal").token("NORMAL"),
                    arg("master", PureToken).display("master").token("MASTER"),
                    arg("replica", PureToken)
                        .display("replica")
                        .token("REPLICA"),
                    arg("pubsub", PureToken).display("pubsub").token("PUBSUB"),
                ]),
            arg("client-id", Integer)
                .display("client-id")
                .token("ID")
                .since("6.2.0")
                .flags(&["optional", "multiple"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|info",
        arity: 2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["nondeterministic_output"],
        summary: "Returns information about the connection.",
        since: "6.2.0",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|kill",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
        summary: "Terminates open connections.",
        since: "2.4.0",
        group: "connection",
        complexity: "O(N) where N is the number of client connections",
        history: &[
            ("2.8.12", "Added new filter format."),
            ("2.8.12", "`ID` option."),
            ("3.2.0", "Added `master` type in for `TYPE` option."),
            (
                "5.0.0",
                "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward compatibility.",
            ),
            ("6.2.0", "`LADDR` option."),
        ],
        arguments: &[arg("filter", OneOf).args(&[
            arg("old-format", Str)
                .display("ip:port")
                .deprecated_since("2.8.12"),
            arg("new-format", OneOf).flags(&["multiple"]).args(&[
                arg("client-id", Integer)
                    .display("client-id")
                    .token("ID")
                    .since("2.8.12")
                    .flags(&["optional"]),
                arg("client-type", OneOf)
                    .token("TYPE")
                    .since("2.8.12")
                    .flags(&["optional"])
                    .args(&[
                        arg("normal", PureToken).display("normal").token("NORMAL"),
                        arg("master", PureToken)
                            .display("master")
                            .token("MASTER")
                            .since("3.2.0"),
                        arg("slave", PureToken).display("slave").token("SLAVE"),
                        arg("replica", PureToken)
                            .display("replica")
                            .token("REPLICA")
                            .since("5.0.0"),
                        arg("pubsub", PureToken).display("pubsub").token("PUBSUB"),
                    ]),
                arg("username", Str)
                    .display("username")
                    .token("USER")
                    .flags(&["optional"]),
                arg("addr", Str)
                    .display("ip:port")
                    .token("ADDR")
                    .flags(&["optional"]),
                arg("laddr", Str)
                    .display("ip:port")
                    .token("LADDR")
                    .since("6.2.0")
                    .flags(&["optional"]),
                arg("skipme", OneOf)
                    .token("SKIPME")
                    .flags(&["optional"])
                    .args(&[
                        arg("yes", PureToken).display("yes").token("YES"),
                        arg("no", PureToken).display("no").token("NO"),
                    ]),
            ]),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|no-evict",
        arity: 3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
        summary: "Sets the client eviction mode of the connection.",
        since: "7.0.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("enabled", OneOf).args(&[
            arg("on", PureToken).display("on").token("ON"),
            arg("off", PureToken).display("off").token("OFF"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|no-touch",
        arity: 3,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
        since: "7.2.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("enabled", OneOf).args(&[
            arg("on", PureToken).display("on").token("ON"),
            arg("off", PureToken).display("off").token("OFF"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns helpful text about the different subcommands.",
        since: "5.0.0",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|caching",
        arity: 3,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Instructs the server whether to track the keys in the next request.",
        since: "6.0.0",
        group: "connection",
        complexity: "O(1)",
        arguments: &[arg("mode", OneOf).args(&[
            arg("yes", PureToken).display("yes").token("YES"),
            arg("no", PureToken).display("no").token("NO"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|getredir",
        arity: 2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns the client ID to which the connection's tracking notifications are redirected.",
        since: "6.0.0",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|pause",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
        summary: "Suspends commands processing.",
        since: "3.0.0",
        group: "connection",
        complexity: "O(1)",
        history: &[(
            "6.2.0",
            "`CLIENT PAUSE WRITE` mode added along with the `mode` option.",
        )],
        arguments: &[
            arg("timeout", Integer).display("timeout"),
            arg("mode", OneOf)
                .since("6.2.0")
                .flags(&["optional"])
                .args(&[
                    arg("write", PureToken).display("write").token("WRITE"),
                    arg("all", PureToken).display("all").token("ALL"),
                ]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|tracking",
        arity: -3,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Controls server-assisted client-side caching for the connection.",
        since: "6.0.0",
        group: "connection",
        complexity: "O(1). Some options may introduce additional complexity.",
        arguments: &[
            arg("status", OneOf).args(&[
                arg("on", PureToken).display("on").token("ON"),
                arg("off", PureToken).display("off").token("OFF"),
            ]),
            arg("client-id", Integer)
                .display("client-id")
                .token("REDIRECT")
                .flags(&["optional"]),
            arg("prefix", Str)
                .display("prefix")
                .token("PREFIX")
                .flags(&["optional", "multiple", "multiple_token"]),
            arg("bcast", PureToken)
                .display("bcast")
                .token("BCAST")
                .flags(&["optional"]),
            arg("optin", PureToken)
                .display("optin")
                .token("OPTIN")
                .flags(&["optional"]),
            arg("optout", PureToken)
                .display("optout")
                .token("OPTOUT")
                .flags(&["optional"]),
            arg("noloop", PureToken)
                .display("noloop")
                .token("NOLOOP")
                .flags(&["optional"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|trackinginfo",
        arity: 2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns information about server-assisted client-side caching for the connection.",
        since: "6.2.0",
        group: "connection",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|unblock",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
        summary: "Unblocks a client blocked by a blocking command from a different connection.",
        since: "5.0.0",
        group: "connection",
        complexity: "O(log N) where N is the number of client connections",
        arguments: &[
            arg("client-id", Integer).display("client-id"),
            arg("unblock-type", OneOf).flags(&["optional"]).args(&[
                arg("timeout", PureToken)
                    .display("timeout")
                    .token("TIMEOUT"),
                arg("error", PureToken).display("error").token("ERROR"),
            ]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "client|unpause",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
        summary: "Resumes processing commands from paused clients.",
        since: "6.2.0",
        group: "connection",
        complexity: "O(N) Where N is the number of paused clients",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@dangerous"],
        tips: &[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ],
        summary: "Returns information and statistics about the server.",
        since: "1.0.0",
        group: "server",
        complexity: "O(1)",
        history: &[(
            "7.0.0",
            "Added support for taking multiple section arguments.",
        )],
        arguments: &[arg("section", Str)
            .display("section")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "shutdown",
        arity: -1,
        flags: &[
            "admin",
            "noscript",
            "loading",
            "stale",
            "no_multi",
            "allow_busy",
        ],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        since: "1.0.0",
        group: "server",
        complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        history: &[("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers.")],
        arguments: &[
            arg("save-selector", OneOf).flags(&["optional"]).args(&[
                arg("nosave", PureToken).display("nosave").token("NOSAVE"),
                arg("save", PureToken).display("save").token("SAVE"),
            ]),
            arg("now", PureToken)
                .display("now")
                .token("NOW")
                .since("7.0.0")
                .flags(&["optional"]),
            arg("force", PureToken)
                .display("force")
                .token("FORCE")
                .since("7.0.0")
                .flags(&["optional"]),
            arg("abort", PureToken)
                .display("abort")
                .token("ABORT")
                .since("7.0.0")
                .flags(&["optional"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "config",
        arity: -2,
        flags: &[],
        acl_categories: &["@slow"],
        summary: "A container for server configuration commands.",
        since: "2.0.0",
        group: "server",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "config|get",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Returns the effective values of configuration parameters.",
        since: "2.0.0",
        group: "server",
        complexity: "O(N) when N is the number of configuration parameters provided",
        history: &[(
            "7.0.0",
            "Added the ability to pass multiple pattern parameters in one call",
        )],
        arguments: &[arg("parameter", Str)
            .display("parameter")
            .flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "config|set",
        arity: -4,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Sets configuration parameters in-flight.",
        since: "2.0.0",
        group: "server",
        complexity: "O(N) when N is the number of configuration parameters provided",
        history: &[(
            "7.0.0",
            "Added the ability to set multiple parameters in one call.",
        )],
        arguments: &[arg("data", Block).flags(&["multiple"]).args(&[
            arg("parameter", Str).display("parameter"),
            arg("value", Str).display("value"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "config|resetstat",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Resets the server's statistics.",
        since: "2.0.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "config|rewrite",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Persists the effective configuration to file.",
        since: "2.8.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "config|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Returns helpful text about the different subcommands.",
        since: "5.0.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["nondeterministic_output_order"],
        summary: "Returns detailed information about all commands.",
        since: "2.8.13",
        group: "server",
        complexity: "O(N) where N is the total number of Redis commands",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|count",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns a count of commands.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|info",
        arity: -2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["nondeterministic_output_order"],
        summary: "Returns information about one, multiple or all commands.",
        since: "2.8.13",
        group: "server",
        complexity: "O(N) where N is the number of commands to look up",
        history: &[(
            "7.0.0",
            "Allowed to be called with no argument to get info on all commands.",
        )],
        arguments: &[arg("command-name", Str)
            .display("command-name")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|docs",
        arity: -2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["nondeterministic_output_order"],
        summary: "Returns documentary information about one, multiple or all commands.",
        since: "7.0.0",
        group: "server",
        complexity: "O(N) where N is the number of commands to look up",
        arguments: &[arg("command-name", Str)
            .display("command-name")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|list",
        arity: -2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        tips: &["nondeterministic_output_order"],
        summary: "Returns a list of command names.",
        since: "7.0.0",
        group: "server",
        complexity: "O(N) where N is the total number of Redis commands",
        arguments: &[arg("filterby", OneOf)
            .token("FILTERBY")
            .flags(&["optional"])
            .args(&[
                arg("module-name", Str)
                    .display("module-name")
                    .token("MODULE"),
                arg("category", Str).display("category").token("ACLCAT"),
                arg("pattern", Pattern).display("pattern").token("PATTERN"),
            ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|getkeys",
        arity: -3,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Extracts the key names from an arbitrary command.",
        since: "2.8.13",
        group: "server",
        complexity: "O(N) where N is the number of arguments to the command",
        arguments: &[
            arg("command", Str).display("command"),
            arg("arg", Str)
                .display("arg")
                .flags(&["optional", "multiple"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|getkeysandflags",
        arity: -3,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Extracts the key names and access flags for an arbitrary command.",
        since: "7.0.0",
        group: "server",
        complexity: "O(N) where N is the number of arguments to the command",
        arguments: &[
            arg("command", Str).display("command"),
            arg("arg", Str)
                .display("arg")
                .flags(&["optional", "multiple"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "command|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        summary: "Returns helpful text about the different subcommands.",
        since: "5.0.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "flushall",
        arity: -1,
        flags: &["write"],
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        summary: "Removes all keys from all databases.",
        since: "1.0.0",
        group: "server",
        complexity: "O(N) where N is the total number of keys in all databases",
        history: &[
            ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
            ("6.2.0", "Added the `SYNC` flushing mode modifier."),
        ],
        arguments: &[arg("flush-type", OneOf).flags(&["optional"]).args(&[
            arg("async", PureToken)
                .display("async")
                .token("ASYNC")
                .since("4.0.0"),
            arg("sync", PureToken)
                .display("sync")
                .token("SYNC")
                .since("6.2.0"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "flushdb",
        arity: -1,
        flags: &["write"],
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        summary: "Remove all keys from the current database.",
        since: "1.0.0",
        group: "server",
        complexity: "O(N) where N is the number of keys in the selected database",
        history: &[
            ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
            ("6.2.0", "Added the `SYNC` flushing mode modifier."),
        ],
        arguments: &[arg("flush-type", OneOf).flags(&["optional"]).args(&[
            arg("async", PureToken)
                .display("async")
                .token("ASYNC")
                .since("4.0.0"),
            arg("sync", PureToken)
                .display("sync")
                .token("SYNC")
                .since("6.2.0"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "dbsize",
        arity: 1,
        flags: &["readonly", "fast"],
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &["request_policy:all_shards", "response_policy:agg_sum"],
        summary: "Returns the number of keys in the database.",
        since: "1.0.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "time",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        acl_categories: &["@fast"],
        tips: &["nondeterministic_output"],
        summary: "Returns the server time.",
        since: "2.6.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "debug",
        arity: -2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "A container for debugging commands.",
        since: "1.0.0",
        group: "server",
        complexity: "Depends on subcommand.",
        doc_flags: &["syscmd"],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "monitor",
        arity: 1,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Listens for all requests received by the server in real-time.",
        since: "1.0.0",
        group: "server",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "slowlog",
        arity: -2,
        acl_categories: &["@slow"],
        summary: "A container for slow log commands.",
        since: "2.2.12",
        group: "server",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "slowlog|get",
        arity: -2,
        flags: &["admin", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "nondeterministic_output"],
        summary: "Returns the slow log's entries.",
        since: "2.2.12",
        group: "server",
        complexity: "O(N) where N is the number of entries returned",
        history: &[(
            "4.0.0",
            "Added client IP address, port and name to the reply.",
        )],
        arguments: &[arg("count", Integer).display("count").flags(&["optional"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "slowlog|len",
        arity: 2,
        flags: &["admin", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ],
        summary: "Returns the number of entries in the slow log.",
        since: "2.2.12",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "slowlog|reset",
        arity: 2,
        flags: &["admin", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Clears all entries from the slow log.",
        since: "2.2.12",
        group: "server",
        complexity: "O(N) where N is the number of entries in the slowlog",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "slowlog|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Show helpful text about the different subcommands",
        since: "6.2.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency",
        arity: -2,
        acl_categories: &["@slow"],
        summary: "A container for latency diagnostics commands.",
        since: "2.8.13",
        group: "server",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|doctor",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        summary: "Returns a human-readable latency analysis report.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|graph",
        arity: 3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        summary: "Returns a latency graph for an event.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        arguments: &[arg("event", Str).display("event")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|histogram",
        arity: -2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        summary: "Returns the cumulative distribution of latencies of a subset or all commands.",
        since: "7.0.0",
        group: "server",
        complexity: "O(N) where N is the number of commands with latency information being retrieved.",
        arguments: &[arg("command", Str)
            .display("command")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|history",
        arity: 3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        summary: "Returns timestamp-latency samples for an event.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        arguments: &[arg("event", Str).display("event")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|latest",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ],
        summary: "Returns the latest latency samples for all events.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|reset",
        arity: -2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:agg_sum"],
        summary: "Resets the latency data for one or more events.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        arguments: &[arg("event", Str)
            .display("event")
            .flags(&["optional", "multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "latency|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Returns helpful text about the different subcommands.",
        since: "2.8.13",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl",
        arity: -2,
        flags: &[],
        acl_categories: &["@slow"],
        summary: "A container for Access List Control commands.",
        since: "6.0.0",
        group: "server",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|cat",
        arity: -2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Lists the ACL categories, or the commands inside a category.",
        since: "6.0.0",
        group: "server",
        complexity: "O(1) since the categories and commands are a fixed set.",
        arguments: &[arg("category", Str)
            .display("category")
            .flags(&["optional"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|deluser",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Deletes ACL users, and terminates their connections.",
        since: "6.0.0",
        group: "server",
        complexity: "O(1) amortized time considering the typical user.",
        arguments: &[arg("username", Str)
            .display("username")
            .flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|dryrun",
        arity: -4,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Simulates the execution of a command by a user, without executing the command.",
        since: "7.0.0",
        group: "server",
        complexity: "O(1).",
        arguments: &[
            arg("username", Str).display("username"),
            arg("command", Str).display("command"),
            arg("arg", Str)
                .display("arg")
                .flags(&["optional", "multiple"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|genpass",
        arity: -2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Generates a pseudorandom, secure password that can be used to identify ACL users.",
        since: "6.0.0",
        group: "server",
        complexity: "O(1)",
        arguments: &[arg("bits", Integer).display("bits").flags(&["optional"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|getuser",
        arity: 3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Lists the ACL rules of a user.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N). Where N is the number of password, command and pattern rules that the user has.",
        history: &[
            ("6.2.0", "Added Pub/Sub channel patterns."),
            (
                "7.0.0",
                "Added selectors and changed the format of key and channel patterns from a list to their rule representation.",
            ),
        ],
        arguments: &[arg("username", Str).display("username")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|list",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Dumps the effective rules in ACL file format.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N). Where N is the number of configured users.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|load",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Reloads the rules from the configured ACL file.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N). Where N is the number of configured users.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|log",
        arity: -2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Lists recent security events generated due to ACL rules.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N) with N being the number of entries shown.",
        history: &[(
            "7.2.0",
            "Added entry ID, timestamp created, and timestamp last updated.",
        )],
        arguments: &[arg("operation", OneOf).flags(&["optional"]).args(&[
            arg("count", Integer).display("count"),
            arg("reset", PureToken).token("RESET"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|save",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Saves the effective ACL rules in the configured ACL file.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N). Where N is the number of configured users.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|setuser",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        summary: "Creates and modifies an ACL user and its rules.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N). Where N is the number of rules provided.",
        history: &[
            ("6.2.0", "Added Pub/Sub channel patterns."),
            ("7.0.0", "Added selectors and key based permissions."),
        ],
        arguments: &[
            arg("username", Str).display("username"),
            arg("rule", Str)
                .display("rule")
                .flags(&["optional", "multiple"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|users",
        arity: 2,
        flags: &["admin", "noscript", "loading", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Lists all ACL users.",
        since: "6.0.0",
        group: "server",
        complexity: "O(N). Where N is the number of configured users.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "multi",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        acl_categories: &["@fast", "@transaction"],
        summary: "Starts a transaction.",
        since: "1.2.0",
        group: "transactions",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "exec",
        arity: 1,
        flags: &["noscript", "loading", "stale", "skip_slowlog"],
        acl_categories: &["@slow", "@transaction"],
        summary: "Executes all commands in a transaction.",
        since: "1.2.0",
        group: "transactions",
        complexity: "Depends on commands in the transaction",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "discard",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        acl_categories: &["@fast", "@transaction"],
        summary: "Discards a transaction.",
        since: "2.0.0",
        group: "transactions",
        complexity: "O(N), when N is the number of queued commands",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "watch",
        arity: -2,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        key_range: (1, -1, 1),
        acl_categories: &["@fast", "@transaction"],
        key_specs: &[KeySpec {
            flags: &["RO"],
            begin_index: 1,
            last_key: -1,
            key_step: 1,
            limit: 0,
        }],
        summary: "Monitors changes to keys to determine the execution of a transaction.",
        since: "2.2.0",
        group: "transactions",
        complexity: "O(1) for every key.",
        arguments: &[arg("key", Key)
            .display("key")
            .key_spec(0)
            .flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "unwatch",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        acl_categories: &["@fast", "@transaction"],
        summary: "Forgets about watched keys of a transaction.",
        since: "2.2.0",
        group: "transactions",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|whoami",
        arity: 2,
        flags: &["noscript", "loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Returns the authenticated username of the current connection.",
        since: "6.0.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "acl|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Returns helpful text about the different subcommands.",
        since: "6.0.0",
        group: "server",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster",
        arity: -2,
        flags: &[],
        acl_categories: &["@slow"],
        summary: "A container for Redis Cluster commands.",
        since: "3.0.0",
        group: "cluster",
        complexity: "Depends on subcommand.",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|addslots",
        arity: -3,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Assigns new hash slots to a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of hash slot arguments",
        arguments: &[arg("slot", Integer).display("slot").flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|addslotsrange",
        arity: -4,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Assigns new hash slot ranges to a node.",
        since: "7.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
        arguments: &[arg("range", Block).flags(&["multiple"]).args(&[
            arg("start-slot", Integer).display("start-slot"),
            arg("end-slot", Integer).display("end-slot"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|bumpepoch",
        arity: 2,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["nondeterministic_output"],
        summary: "Advances the cluster config epoch.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|count-failure-reports",
        arity: 3,
        flags: &["admin", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["nondeterministic_output"],
        summary: "Returns the number of active failure reports active for a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the number of failure reports",
        arguments: &[arg("node-id", Str).display("node-id")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|countkeysinslot",
        arity: 3,
        flags: &["stale"],
        acl_categories: &["@slow"],
        summary: "Returns the number of keys in a hash slot.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        arguments: &[arg("slot", Integer).display("slot")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|delslots",
        arity: -3,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Sets hash slots as unbound for a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of hash slot arguments",
        arguments: &[arg("slot", Integer).display("slot").flags(&["multiple"])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|delslotsrange",
        arity: -4,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Sets hash slot ranges as unbound for a node.",
        since: "7.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
        arguments: &[arg("range", Block).flags(&["multiple"]).args(&[
            arg("start-slot", Integer).display("start-slot"),
            arg("end-slot", Integer).display("end-slot"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|failover",
        arity: -2,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Forces a replica to perform a manual failover of its master.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        arguments: &[arg("options", OneOf).flags(&["optional"]).args(&[
            arg("force", PureToken).display("force").token("FORCE"),
            arg("takeover", PureToken)
                .display("takeover")
                .token("TAKEOVER"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|flushslots",
        arity: 2,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Deletes all slots information from a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|forget",
        arity: 3,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Removes a node from the nodes table.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        arguments: &[arg("node-id", Str).display("node-id")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|getkeysinslot",
        arity: 4,
        flags: &["stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns the key names in a hash slot.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the number of requested keys",
        arguments: &[
            arg("slot", Integer).display("slot"),
            arg("count", Integer).display("count"),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        summary: "Returns helpful text about the different subcommands.",
        since: "5.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|info",
        arity: 2,
        flags: &["stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns information about the state of a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|keyslot",
        arity: 3,
        flags: &["stale"],
        acl_categories: &["@slow"],
        summary: "Returns the hash slot for a key.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the number of bytes in the key",
        arguments: &[arg("key", Str).display("key")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|links",
        arity: 2,
        flags: &["stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns a list of all TCP links to and from peer nodes.",
        since: "7.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of Cluster nodes",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|meet",
        arity: -4,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Forces a node to handshake with another node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        history: &[("4.0.0", "Added the optional `cluster_bus_port` argument.")],
        arguments: &[
            arg("ip", Str).display("ip"),
            arg("port", Integer).display("port"),
            arg("cluster-bus-port", Integer)
                .display("cluster-bus-port")
                .since("4.0.0")
                .flags(&["optional"]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|myid",
        arity: 2,
        flags: &["stale"],
        acl_categories: &["@slow"],
        summary: "Returns the ID of a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|myshardid",
        arity: 2,
        flags: &["stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns the shard ID of a node.",
        since: "7.2.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|nodes",
        arity: 2,
        flags: &["stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns the cluster configuration for a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of Cluster nodes",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|replicas",
        arity: 3,
        flags: &["admin", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["nondeterministic_output"],
        summary: "Lists the replica nodes of a master node.",
        since: "5.0.0",
        group: "cluster",
        complexity: "O(N) where N is the number of replicas.",
        arguments: &[arg("node-id", Str).display("node-id")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|replicate",
        arity: 3,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Configure a node as replica of a master node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        arguments: &[arg("node-id", Str).display("node-id")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|reset",
        arity: -2,
        flags: &["admin", "noscript", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Resets a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
        arguments: &[arg("reset-type", OneOf).flags(&["optional"]).args(&[
            arg("hard", PureToken).display("hard").token("HARD"),
            arg("soft", PureToken).display("soft").token("SOFT"),
        ])],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|saveconfig",
        arity: 2,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Forces a node to save the cluster configuration to disk.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|set-config-epoch",
        arity: 3,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Sets the configuration epoch for a new node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        arguments: &[arg("config-epoch", Integer).display("config-epoch")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|setslot",
        arity: -4,
        flags: &["admin", "stale", "no_async_loading"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        summary: "Binds a hash slot to a node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        arguments: &[
            arg("slot", Integer).display("slot"),
            arg("subcommand", OneOf).args(&[
                arg("importing", Str).display("node-id").token("IMPORTING"),
                arg("migrating", Str).display("node-id").token("MIGRATING"),
                arg("node", Str).display("node-id").token("NODE"),
                arg("stable", PureToken).display("stable").token("STABLE"),
            ]),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|shards",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns the mapping of cluster slots to shards.",
        since: "7.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of cluster nodes",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|slaves",
        arity: 3,
        flags: &["admin", "stale"],
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &["nondeterministic_output"],
        summary: "Lists the replica nodes of a master node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the number of replicas.",
        doc_flags: &["deprecated"],
        deprecated_since: Some("5.0.0"),
        replaced_by: Some("`CLUSTER REPLICAS`"),
        arguments: &[arg("node-id", Str).display("node-id")],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "cluster|slots",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        tips: &["nondeterministic_output"],
        summary: "Returns the mapping of cluster slots to nodes.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(N) where N is the total number of Cluster nodes",
        doc_flags: &["deprecated"],
        deprecated_since: Some("7.0.0"),
        replaced_by: Some("`CLUSTER SHARDS`"),
        history: &[
            ("4.0.0", "Added node IDs."),
            ("7.0.0", "Added additional networking metadata field."),
        ],
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "asking",
        arity: 1,
        flags: &["fast"],
        acl_categories: &["@fast", "@connection"],
        summary: "Signals that a cluster client is following an -ASK redirect.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "readonly",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        acl_categories: &["@fast", "@connection"],
        summary: "Enables read-only queries for a connection to a Redis Cluster replica node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
    CommandDoc {
        name: "readwrite",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        acl_categories: &["@fast", "@connection"],
        summary: "Enables read-write queries for a connection to a Reids Cluster replica node.",
        since: "3.0.0",
        group: "cluster",
        complexity: "O(1)",
        ..CommandDoc::NONE
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::commands::{COMMANDS, NO_AUTH};

    fn spec(name: &str) -> &'static CommandSpec {
        resolve(name.as_bytes()).expect(name)
    }

    fn info(name: &str, proto: Proto) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_info(&mut out, spec(name), proto);
        out.to_vec()
    }

    fn docs(name: &str, proto: Proto) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_docs(&mut out, spec(name), proto);
        out.to_vec()
    }

    /// Every table command with its subcommands.
    fn table() -> Vec<&'static CommandSpec> {
        COMMANDS
            .iter()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands))
            .collect()
    }

    // Expected bytes below are Redis 7.2.4's replies to the same requests.

    #[test]
    fn publish_info_is_byte_identical_to_redis_in_both_protocols() {
        assert_eq!(
            info("publish", Proto::Resp2),
            b"*10\r\n$7\r\npublish\r\n:3\r\n*4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@pubsub\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n"
        );
        assert_eq!(
            info("publish", Proto::Resp3),
            b"*10\r\n$7\r\npublish\r\n:3\r\n~4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n~2\r\n+@pubsub\r\n+@fast\r\n~0\r\n~0\r\n~0\r\n"
        );
    }

    #[test]
    fn spublish_info_carries_its_not_key_key_spec() {
        assert_eq!(
            info("spublish", Proto::Resp2),
            b"*10\r\n$8\r\nspublish\r\n:3\r\n*4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*2\r\n+@pubsub\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*1\r\n+not_key\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
        );
        assert_eq!(
            info("spublish", Proto::Resp3),
            b"*10\r\n$8\r\nspublish\r\n:3\r\n~4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~2\r\n+@pubsub\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~1\r\n+not_key\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n"
        );
    }

    #[test]
    fn publish_docs_are_byte_identical_to_redis_in_both_protocols() {
        const COMPLEXITY: &str = "$141\r\nO(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).\r\n";
        let resp2 = format!(
            "*10\r\n$7\r\nsummary\r\n$29\r\nPosts a message to a channel.\r\n$5\r\nsince\r\n$5\r\n2.0.0\r\n$5\r\ngroup\r\n$6\r\npubsub\r\n$10\r\ncomplexity\r\n{COMPLEXITY}$9\r\narguments\r\n*2\r\n*6\r\n$4\r\nname\r\n$7\r\nchannel\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$7\r\nchannel\r\n*6\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$7\r\nmessage\r\n"
        );
        let resp3 = format!(
            "%5\r\n$7\r\nsummary\r\n$29\r\nPosts a message to a channel.\r\n$5\r\nsince\r\n$5\r\n2.0.0\r\n$5\r\ngroup\r\n$6\r\npubsub\r\n$10\r\ncomplexity\r\n{COMPLEXITY}$9\r\narguments\r\n*2\r\n%3\r\n$4\r\nname\r\n$7\r\nchannel\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$7\r\nchannel\r\n%3\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$7\r\nmessage\r\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&docs("publish", Proto::Resp2)),
            resp2
        );
        assert_eq!(
            String::from_utf8_lossy(&docs("publish", Proto::Resp3)),
            resp3
        );
    }

    #[test]
    fn nested_arguments_and_deprecation_are_byte_identical_to_redis() {
        assert_eq!(
            docs("client|no-touch", Proto::Resp3),
            b"%5\r\n$7\r\nsummary\r\n$81\r\nControls whether commands sent by the client affect the LRU/LFU of accessed keys.\r\n$5\r\nsince\r\n$5\r\n7.2.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n%3\r\n$4\r\nname\r\n$7\r\nenabled\r\n$4\r\ntype\r\n$5\r\noneof\r\n$9\r\narguments\r\n*2\r\n%4\r\n$4\r\nname\r\n$2\r\non\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$12\r\ndisplay_text\r\n$2\r\non\r\n$5\r\ntoken\r\n$2\r\nON\r\n%4\r\n$4\r\nname\r\n$3\r\noff\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$12\r\ndisplay_text\r\n$3\r\noff\r\n$5\r\ntoken\r\n$3\r\nOFF\r\n"
        );
        assert_eq!(
            docs("quit", Proto::Resp2),
            b"*14\r\n$7\r\nsummary\r\n$22\r\nCloses the connection.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\ndoc_flags\r\n*1\r\n+deprecated\r\n$16\r\ndeprecated_since\r\n$5\r\n7.2.0\r\n$11\r\nreplaced_by\r\n$27\r\njust closing the connection\r\n"
        );
    }

    #[test]
    fn watch_info_and_docs_carry_its_key_spec_as_redis() {
        assert_eq!(
            info("watch", Proto::Resp2),
            b"*10\r\n$5\r\nwatch\r\n:-2\r\n*5\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+allow_busy\r\n:1\r\n:-1\r\n:1\r\n*2\r\n+@fast\r\n+@transaction\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&docs("watch", Proto::Resp3)),
            "%5\r\n$7\r\nsummary\r\n$69\r\nMonitors changes to keys to determine the execution of a transaction.\r\n$5\r\nsince\r\n$5\r\n2.2.0\r\n$5\r\ngroup\r\n$12\r\ntransactions\r\n$10\r\ncomplexity\r\n$19\r\nO(1) for every key.\r\n$9\r\narguments\r\n*1\r\n%5\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$12\r\ndisplay_text\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n$5\r\nflags\r\n~1\r\n+multiple\r\n"
        );
        assert_eq!(
            info("exec", Proto::Resp3),
            b"*10\r\n$4\r\nexec\r\n:1\r\n~4\r\n+noscript\r\n+loading\r\n+stale\r\n+skip_slowlog\r\n:0\r\n:0\r\n:0\r\n~2\r\n+@slow\r\n+@transaction\r\n~0\r\n~0\r\n~0\r\n"
        );
    }

    #[test]
    fn containers_list_the_subcommands_of_the_table() {
        let pubsub = spec("pubsub");
        let mut out = BytesMut::new();
        write_info(&mut out, pubsub, Proto::Resp3);
        let head = b"*10\r\n$6\r\npubsub\r\n:-2\r\n~0\r\n:0\r\n:0\r\n:0\r\n~1\r\n+@slow\r\n~0\r\n~0\r\n*6\r\n*10\r\n$15\r\npubsub|channels\r\n";
        assert!(out.starts_with(head), "{:?}", String::from_utf8_lossy(&out));
        let mut out = BytesMut::new();
        write_docs(&mut out, pubsub, Proto::Resp2);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with(
                "*10\r\n$7\r\nsummary\r\n$33\r\nA container for Pub/Sub commands.\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("$11\r\nsubcommands\r\n*12\r\n$15\r\npubsub|channels\r\n"),
            "{text}"
        );
    }

    #[test]
    fn every_table_command_has_docs_with_its_arity() {
        for c in table() {
            let doc = lookup(c.name).unwrap_or_else(|| panic!("no docs for {}", c.name));
            assert_eq!(doc.arity, c.arity, "{}", c.name);
            assert!(
                !doc.summary.is_empty() && !doc.since.is_empty(),
                "{}",
                c.name
            );
            assert!(
                !doc.group.is_empty() && (!doc.complexity.is_empty() || c.name == "monitor"),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn no_auth_flag_matches_the_table() {
        for c in table() {
            let documented = doc_of(c).flags.contains(&"no_auth");
            assert_eq!(documented, c.flags & NO_AUTH != 0, "{}", c.name);
        }
    }

    #[test]
    fn doc_entries_are_unique_lowercase_and_well_formed() {
        let mut seen = HashSet::new();
        for d in DOCS {
            assert!(seen.insert(d.name), "duplicate {}", d.name);
            assert_eq!(d.name, d.name.to_ascii_lowercase());
            assert!(
                d.acl_categories.iter().all(|c| c.starts_with('@')),
                "{}",
                d.name
            );
            if let Some((container, _)) = d.name.split_once('|') {
                assert!(lookup(container).is_some(), "{}", d.name);
            }
            check_args(d.name, d.arguments);
        }
    }

    fn check_args(cmd: &str, args: &[Arg]) {
        for a in args {
            let nested = matches!(a.kind, ArgType::OneOf | ArgType::Block);
            assert_eq!(nested, !a.arguments.is_empty(), "{cmd} {}", a.name);
            assert!(
                a.flags
                    .iter()
                    .all(|f| ["optional", "multiple", "multiple_token"].contains(f)),
                "{cmd} {}",
                a.name
            );
            check_args(cmd, a.arguments);
        }
    }

    #[test]
    fn names_resolve_as_redis_looks_them_up() {
        assert_eq!(spec("CLIENT|List").name, "client|list");
        assert_eq!(spec("Publish").name, "publish");
        for missing in [
            "nosuch",
            "publish|x",
            "client|",
            "client|list|x",
            "|",
            "",
            "client|nosuch",
        ] {
            assert!(resolve(missing.as_bytes()).is_none(), "{missing}");
        }
        let words =
            |w: &[&str]| -> crate::resp::args::Args { w.iter().map(|s| s.as_bytes()).collect() };
        assert_eq!(
            resolve_call(words(&["client", "LIST"]).list()).map(|c| c.name),
            Some("client|list")
        );
        assert_eq!(
            resolve_call(words(&["publish", "a", "b"]).list()).map(|c| c.name),
            Some("publish")
        );
        assert_eq!(
            resolve_call(words(&["client"]).list()).map(|c| c.name),
            Some("client")
        );
        assert!(resolve_call(words(&["client", "nosuch"]).list()).is_none());
        assert!(resolve_call(words(&["get", "k"]).list()).is_none());
    }

    #[test]
    fn acl_category_filter_takes_the_name_without_at() {
        assert!(in_acl_category(spec("publish"), b"PubSub"));
        assert!(!in_acl_category(spec("publish"), b"@pubsub"));
        assert!(!in_acl_category(spec("publish"), b"slow"));
    }

    /// Requests through a one-worker hub, as a client sends them; returns the reply bytes.
    fn exchange(requests: &[&[&str]]) -> Vec<Vec<u8>> {
        use std::sync::Arc;
        use std::task::{Context, Poll, Waker};

        use crate::hub::{Hub, Output};
        use crate::shared::{ServerInfo, Shared};

        let (doorbells, mut endpoints) = crate::mesh::mesh(1, 64, 1 << 20);
        let info = ServerInfo::for_tests(1);
        let shared = Arc::new(Shared::new(Default::default(), info, doorbells));
        let mut hub = Hub::new(0, shared, endpoints.remove(0));
        hub.set_turn_time(std::time::Duration::MAX);
        let addr = "127.0.0.1:5000".parse().unwrap();
        let key = hub.connect(addr, addr);
        let mut replies = Vec::new();
        for args in requests {
            let mut req = format!("*{}\r\n", args.len());
            for a in *args {
                req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
            hub.input(key, &mut BytesMut::from(req.as_bytes()));
            let (mut batch, mut reply) = (Vec::new(), Vec::new());
            let mut cx = Context::from_waker(Waker::noop());
            while let Poll::Ready(Output::Write(n)) = hub.poll_output(key, &mut cx, &mut batch) {
                reply.extend(batch.drain(..).flat_map(|b: bytes::Bytes| b.to_vec()));
                hub.sent(key, n);
            }
            replies.push(reply);
        }
        replies
    }

    #[test]
    fn unknown_names_are_null_in_info_and_left_out_of_docs() {
        let r = exchange(&[
            &["COMMAND", "INFO", "nosuch", "publish|x"],
            &["COMMAND", "DOCS", "nosuch"],
            &["HELLO", "3"],
            &["COMMAND", "INFO", "nosuch"],
            &["COMMAND", "DOCS", "nosuch"],
        ]);
        assert_eq!(r[0], b"*2\r\n$-1\r\n$-1\r\n");
        assert_eq!(r[1], b"*0\r\n");
        assert_eq!(r[3], b"*1\r\n_\r\n");
        assert_eq!(r[4], b"%0\r\n");
    }

    #[test]
    fn info_and_docs_take_subcommand_full_names() {
        let r = exchange(&[
            &["COMMAND", "INFO", "CLIENT|LIST"],
            &["COMMAND", "DOCS", "pubsub|numpat"],
        ]);
        assert!(r[0].starts_with(b"*1\r\n*10\r\n$11\r\nclient|list\r\n:-2\r\n"));
        assert!(r[1].starts_with(b"*2\r\n$13\r\npubsub|numpat\r\n*8\r\n$7\r\nsummary\r\n"));
    }

    #[test]
    fn count_is_top_level_and_list_includes_subcommands() {
        let r = exchange(&[&["COMMAND", "COUNT"], &["COMMAND", "LIST"], &["COMMAND"]]);
        assert_eq!(r[0], format!(":{}\r\n", COMMANDS.len()).into_bytes());
        let list = String::from_utf8_lossy(&r[1]);
        assert!(
            list.starts_with(&format!("*{}\r\n", table().len())),
            "{list}"
        );
        assert!(list.contains("\r\nclient|list\r\n"), "{list}");
        assert!(r[2].starts_with(format!("*{}\r\n*10\r\n", COMMANDS.len()).as_bytes()));
    }

    #[test]
    fn list_filters_by_pattern_and_acl_category_as_redis() {
        let r = exchange(&[
            &["COMMAND", "LIST", "FILTERBY", "PATTERN", "PUBSUB|N*"],
            &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "pubsub"],
            &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "@pubsub"],
            &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"],
            &["COMMAND", "LIST", "FILTERBY", "NAME", "x"],
            &["COMMAND", "LIST", "FILTERBY", "PATTERN"],
        ]);
        assert_eq!(
            r[0],
            b"*2\r\n$13\r\npubsub|numsub\r\n$13\r\npubsub|numpat\r\n"
        );
        // Redis 7.2: the eight pub/sub commands and five PUBSUB subcommands (not HELP).
        assert!(r[1].starts_with(b"*13\r\n$9\r\nsubscribe\r\n"));
        assert_eq!(r[2], b"*0\r\n");
        assert_eq!(r[3], b"*0\r\n");
        assert_eq!(r[4], b"-ERR syntax error\r\n");
        assert_eq!(r[5], b"-ERR syntax error\r\n");
    }

    #[test]
    fn getkeys_answers_redis_errors_for_keyless_and_unknown_commands() {
        let r = exchange(&[
            &["COMMAND", "GETKEYS", "publish", "ch", "msg"],
            &["COMMAND", "GETKEYSANDFLAGS", "spublish", "ch", "msg"],
            &["COMMAND", "GETKEYS", "client", "list"],
            &["COMMAND", "GETKEYS", "get", "k"],
            &["COMMAND", "GETKEYS", "client", "nosuch"],
            &["COMMAND", "GETKEYS", "publish"],
            &["COMMAND", "GETKEYS"],
        ]);
        let no_keys = b"-ERR The command has no key arguments\r\n";
        let invalid = b"-ERR Invalid command specified\r\n";
        assert_eq!(r[0], no_keys);
        assert_eq!(r[1], no_keys);
        assert_eq!(r[2], no_keys);
        assert_eq!(r[3], invalid);
        assert_eq!(r[4], invalid);
        assert_eq!(r[5], no_keys, "arity is not checked for keyless commands");
        assert_eq!(
            r[6],
            b"-ERR wrong number of arguments for 'command|getkeys' command\r\n"
        );
    }
}
