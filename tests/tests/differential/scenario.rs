//! Random pub/sub scenarios: a few clients, and steps in which one client
//! sends one command or a small pipeline of commands.
//!
//! Names come from small alphabets so that subscriptions, patterns and
//! publishes collide; odd bytes (CR, LF, NUL, invalid UTF-8, long strings)
//! go into names, payloads and the arguments of commands that fail. The
//! generator keeps a rough model of each client (protocol, what it holds) only
//! to make likely-interesting choices; nothing is asserted from the model, the
//! servers' own answers are compared.
//!
//! Generation uses its own small PRNG (SplitMix64), so a seed names the same
//! scenario whatever random-number crate version the workspace uses.

use std::collections::BTreeSet;

/// A deterministic PRNG (SplitMix64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` percent.
    pub(crate) fn percent(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn pick_bytes(&mut self, items: &[&'static [u8]]) -> &'static [u8] {
        items[self.below(items.len())]
    }
}

/// One command: its name and arguments, as sent.
pub(crate) type Command = Vec<Vec<u8>>;

/// One client sends one command or a pipeline of commands (one write).
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub client: usize,
    pub commands: Vec<Command>,
}

/// Replies Redis sends in an order it does not define.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unordered {
    /// `UNSUBSCRIBE` / `PUNSUBSCRIBE` / `SUNSUBSCRIBE` without arguments: one
    /// confirmation per name held, in the order of a hash table (Redis 7.0
    /// keeps patterns in subscription order, 7.2 in a hash table).
    UnsubscribeAll,
    /// `PUBSUB CHANNELS` / `PUBSUB SHARDCHANNELS`: names in hash-table order.
    ChannelList,
}

impl Step {
    /// Whether the step ends with QUIT: the server closes the connection
    /// after its reply, so nothing may follow it on that connection.
    pub(crate) fn quits(&self) -> bool {
        self.commands
            .last()
            .is_some_and(|c| c[0].eq_ignore_ascii_case(b"quit"))
    }

    /// The step's reply order is undefined (such steps hold a single
    /// command, so the whole reply can be compared as a multiset).
    pub(crate) fn unordered(&self) -> Option<Unordered> {
        let [cmd] = &self.commands[..] else {
            return None;
        };
        let name = cmd[0].to_ascii_lowercase();
        match &name[..] {
            b"unsubscribe" | b"punsubscribe" | b"sunsubscribe" if cmd.len() == 1 => {
                Some(Unordered::UnsubscribeAll)
            }
            b"pubsub"
                if cmd.len() >= 2
                    && (cmd[1].eq_ignore_ascii_case(b"channels")
                        || cmd[1].eq_ignore_ascii_case(b"shardchannels")) =>
            {
                Some(Unordered::ChannelList)
            }
            _ => None,
        }
    }
}

/// A whole scenario: how many clients (connected in index order at the
/// start, so ringcast places client k on worker k mod 2) and the steps.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub seed: u64,
    pub clients: usize,
    /// The server's `requirepass`, if any: clients start unauthenticated.
    pub password: Option<&'static [u8]>,
    pub steps: Vec<Step>,
}

/// Inputs the generator can leave out, by name: the known ringcast
/// differences (see `KNOWN_UNFIXED_DIFFERENCES` in `differential.rs`) are
/// avoided this way until they are fixed.
pub(crate) const PROBES: &[&str] = &[
    "nul-in-echoed-error",
    "invalid-utf8-in-echoed-error",
    "cross-protocol-command",
    "crlf-in-hello-option-error",
    "reset-after-reply-skip",
    "quit-with-reply-silenced",
    "quit-while-subscribed",
];

/// The names of the probes left out of generated scenarios.
#[derive(Clone, Debug, Default)]
pub(crate) struct Avoid(pub BTreeSet<&'static str>);

impl Avoid {
    pub(crate) fn has(&self, probe: &str) -> bool {
        assert!(PROBES.contains(&probe), "unknown probe {probe:?}");
        self.0.contains(probe)
    }
}

/// Channel names: common ones (that patterns match) and odd ones.
const COMMON_CHANNELS: &[&[u8]] = &[b"a", b"b", b"ab", b"abc", b"news.1", b"news.2"];
const ODD_CHANNELS: &[&[u8]] = &[
    b"",
    b"a\r\nb",
    b"\r\n",
    b"\x00",
    b"a\x00b",
    b"\xc3\xa9t\xc3\xa9",
    b"\xff\xfe",
    b"*",
    b"a*",
    b"[a]",
    b"?",
    b"news",
    b"news.\\",
    b"$3",
];

const COMMON_PATTERNS: &[&[u8]] = &[
    b"*",
    b"a*",
    b"*b",
    b"?",
    b"a?",
    b"[ab]",
    b"news.*",
    b"news.[12]",
    b"a",
    b"ab*",
];
const ODD_PATTERNS: &[&[u8]] = &[
    b"??",
    b"?b*",
    b"[a-b]*",
    b"[b-a]*",
    b"[^a]*",
    b"[^ab]",
    b"[!a]*",
    b"\\*",
    b"a\\*",
    b"\\a*",
    b"a\\",
    b"[",
    b"[]",
    b"[]a]*",
    b"[a",
    b"[\\]]",
    b"[a-]",
    b"[-a]*",
    b"news.[^1]",
    b"*.*",
    b"**",
    b"***b",
    b"*\\?*",
    b"*\r\n*",
    b"*\x00*",
    b"\xc3*",
    b"\xff*",
    b"",
    b"news",
    b"*[\\",
];
/// Pieces of randomly assembled patterns.
const PATTERN_PIECES: &[&[u8]] = &[
    b"*", b"?", b"a", b"b", b"[ab]", b"[^a]", b"[a-c]", b"\\*", b".", b"news", b"[", b"\\", b"]",
    b"^", b"-",
];

const ODD_PAYLOADS: &[&[u8]] = &[
    b"",
    b"\r\n",
    b"a\r\nb",
    b"\n",
    b"\x00",
    b"\x00\x01\x02\xff",
    b"$3\r\nfoo\r\n",
    b"*1\r\n$1\r\na\r\n",
    b"+OK\r\n",
    b"-ERR x\r\n",
    b"\xc3\xa9t\xc3\xa9",
    b"\xff",
];

/// Pieces of arguments that servers echo in error replies.
const ODD_PIECES: &[&[u8]] = &[
    b"x", b"arg", b"\r", b"\n", b"\r\n", b" ", b"'", b"%s", b"\t", b"\x01", b"\x7f",
];
const NUL_PIECES: &[&[u8]] = &[b"\x00", b"a\x00b"];
const INVALID_UTF8_PIECES: &[&[u8]] = &[b"\xff", b"\xc3", b"\xe2\x82", b"\xc3\x28", b"\x80"];
const UTF8_PIECES: &[&[u8]] = &[b"\xc3\xa9", b"\xe2\x82\xac"];

const UNKNOWN_COMMANDS: &[&[u8]] = &[
    b"NOSUCH",
    b"nosuch",
    b"GETX",
    b"PUBSUBX",
    b"SUBSCRIBEX",
    b"P",
    b"x\r\ny",
    b"x\ny",
];

/// Step kinds and their weights.
#[derive(Clone, Copy)]
enum Kind {
    Subscribe,
    UnsubscribeSome,
    UnsubscribeAll,
    Publish,
    Introspect,
    ChannelList,
    Ping,
    Echo,
    Reset,
    Quit,
    ClientReply,
    Hello,
    Misc,
    Auth,
    Unknown,
    Arity,
}

const KINDS: &[(Kind, usize)] = &[
    (Kind::Subscribe, 18),
    (Kind::UnsubscribeSome, 8),
    (Kind::UnsubscribeAll, 4),
    (Kind::Publish, 24),
    (Kind::Introspect, 6),
    (Kind::ChannelList, 3),
    (Kind::Ping, 4),
    (Kind::Echo, 3),
    (Kind::Reset, 2),
    (Kind::Quit, 2),
    (Kind::ClientReply, 5),
    (Kind::Hello, 4),
    (Kind::Misc, 2),
    (Kind::Auth, 3),
    (Kind::Unknown, 5),
    (Kind::Arity, 5),
];

/// What the generator believes about a client (approximate: it assumes
/// commands succeed; only used to bias choices).
#[derive(Clone, Default)]
struct Model {
    resp3: bool,
    /// A `CLIENT REPLY OFF` was sent since the last RESET or reconnection
    /// (whether or not the server accepted it).
    reply_off: bool,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    shards: BTreeSet<Vec<u8>>,
}

impl Model {
    fn subscribed(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shards.is_empty())
    }
}

fn is_reply_skip(cmd: &Command) -> bool {
    cmd.len() == 3
        && cmd[0].eq_ignore_ascii_case(b"client")
        && cmd[1].eq_ignore_ascii_case(b"reply")
        && cmd[2].eq_ignore_ascii_case(b"skip")
}

/// Builds the scenario a seed names.
pub(crate) fn generate(seed: u64, password: Option<&'static [u8]>, avoid: &Avoid) -> Scenario {
    let mut g = Generator {
        rng: Rng::new(seed),
        avoid,
        password,
        first: true,
        models: Vec::new(),
        payloads: 0,
    };
    let clients = g.rng.between(3, 6);
    g.models = vec![Model::default(); clients];
    let mut steps = Vec::new();
    for client in 0..clients {
        if password.is_some() && g.rng.percent(75) {
            let login = g.login(client);
            steps.push(Step {
                client,
                commands: vec![login],
            });
        }
        if g.rng.percent(45) {
            steps.push(Step {
                client,
                commands: vec![g.command(client, &[b"HELLO", b"3"])],
            });
        }
    }
    let count = g.rng.between(25, 60);
    while steps.len() < count {
        steps.push(g.step());
    }
    Scenario {
        seed,
        clients,
        password,
        steps,
    }
}

/// Whether a client is authenticated after `cmd`, on a server whose
/// password is `password` (Redis 7.2's rules; without a password every
/// client is). AUTH and `HELLO ... AUTH` succeed with the default user and
/// the right password and otherwise leave the state as it was; RESET logs
/// the client out.
pub(crate) fn authenticated_after(before: bool, cmd: &Command, password: &[u8]) -> bool {
    let name = cmd[0].to_ascii_lowercase();
    let right = |user: &[u8], pass: &[u8]| user == b"default" && pass == password;
    match (&name[..], cmd.len()) {
        (b"reset", 1) => false,
        (b"auth", 2) => before || cmd[1] == password,
        (b"auth", 3) => before || right(&cmd[1], &cmd[2]),
        (b"hello", n) if n >= 2 => {
            if !matches!(&cmd[1][..], b"2" | b"3") {
                return before;
            }
            let mut auth = None;
            let mut i = 2;
            while i < n {
                let more = n - i - 1;
                if cmd[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
                    auth = Some((&cmd[i + 1], &cmd[i + 2]));
                    i += 3;
                } else if cmd[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
                    i += 2;
                } else {
                    return before;
                }
            }
            before || auth.is_some_and(|(u, p)| right(u, p))
        }
        _ => before,
    }
}

struct Generator<'a> {
    rng: Rng,
    avoid: &'a Avoid,
    password: Option<&'static [u8]>,
    /// The command being generated is the first of its step. Redis 7.2
    /// drops the error of a failed AUTH when earlier replies of the same
    /// pipeline are still unwritten (docs/redis-differences.md, row 7), so
    /// only a step's first command may fail to authenticate.
    first: bool,
    models: Vec<Model>,
    payloads: usize,
}

impl Generator<'_> {
    fn step(&mut self) -> Step {
        let client = self.rng.below(self.models.len());
        let mut commands = Vec::new();
        if self.rng.percent(25) {
            // A pipeline: commands whose replies have a defined order.
            let n = self.rng.between(2, 4);
            while commands.len() < n {
                let kind = self.kind();
                if matches!(kind, Kind::UnsubscribeAll | Kind::ChannelList)
                    || (matches!(kind, Kind::Quit) && !self.quit_ok(client))
                    || (commands.last().is_some_and(is_reply_skip) && self.after_skip_avoided(kind))
                {
                    continue;
                }
                let quits = matches!(kind, Kind::Quit);
                self.first = commands.is_empty();
                commands.extend(self.commands_of(kind, client));
                if quits {
                    break;
                }
            }
        } else {
            let kind = loop {
                let kind = self.kind();
                if !matches!(kind, Kind::Quit) || self.quit_ok(client) {
                    break kind;
                }
            };
            self.first = true;
            commands.extend(self.commands_of(kind, client));
        }
        if let Some(q) = commands.iter().position(|c| {
            c[0].eq_ignore_ascii_case(b"quit")
                || c[0].eq_ignore_ascii_case(b"post")
                || c[0].eq_ignore_ascii_case(b"host:")
        }) {
            commands.truncate(q + 1);
        }
        Step { client, commands }
    }

    /// QUIT is generated unless `CLIENT REPLY` may have silenced its reply,
    /// or the client holds subscriptions, while those are known differences.
    fn quit_ok(&self, client: usize) -> bool {
        let m = &self.models[client];
        let silenced = m.reply_off && self.avoid.has("quit-with-reply-silenced");
        let subscribed = m.subscribed() && self.avoid.has("quit-while-subscribed");
        !silenced && !subscribed
    }

    /// Whether a command of this kind may not follow `CLIENT REPLY SKIP`
    /// while a known difference is avoided.
    fn after_skip_avoided(&self, kind: Kind) -> bool {
        match kind {
            Kind::Reset => self.avoid.has("reset-after-reply-skip"),
            Kind::Quit => self.avoid.has("quit-with-reply-silenced"),
            _ => false,
        }
    }

    fn kind(&mut self) -> Kind {
        let total: usize = KINDS.iter().map(|(_, w)| w).sum();
        let mut at = self.rng.below(total);
        for &(kind, w) in KINDS {
            if at < w {
                return kind;
            }
            at -= w;
        }
        unreachable!("weights add up to total")
    }

    /// A command name in upper, lower or mixed case.
    fn name(&mut self, name: &[u8]) -> Vec<u8> {
        match self.rng.below(10) {
            0 => name.to_ascii_lowercase(),
            1 => name
                .iter()
                .map(|b| {
                    if self.rng.percent(50) {
                        b.to_ascii_lowercase()
                    } else {
                        b.to_ascii_uppercase()
                    }
                })
                .collect(),
            _ => name.to_ascii_uppercase(),
        }
    }

    /// Builds a command and updates the client's model as if it succeeded.
    fn command(&mut self, client: usize, args: &[&[u8]]) -> Command {
        let mut cmd: Command = args.iter().map(|a| a.to_vec()).collect();
        cmd[0] = self.name(&cmd[0]);
        self.believe(client, &cmd);
        cmd
    }

    fn believe(&mut self, client: usize, cmd: &Command) {
        let m = &mut self.models[client];
        let name = cmd[0].to_ascii_lowercase();
        let names = cmd[1..].iter().cloned();
        match &name[..] {
            b"subscribe" => m.channels.extend(names),
            b"psubscribe" => m.patterns.extend(names),
            b"ssubscribe" => m.shards.extend(names),
            b"unsubscribe" if cmd.len() == 1 => m.channels.clear(),
            b"punsubscribe" if cmd.len() == 1 => m.patterns.clear(),
            b"sunsubscribe" if cmd.len() == 1 => m.shards.clear(),
            b"unsubscribe" => names.for_each(|n| {
                m.channels.remove(&n);
            }),
            b"punsubscribe" => names.for_each(|n| {
                m.patterns.remove(&n);
            }),
            b"sunsubscribe" => names.for_each(|n| {
                m.shards.remove(&n);
            }),
            b"reset" | b"quit" if cmd.len() == 1 || name == b"quit" => *m = Model::default(),
            b"client"
                if cmd.len() == 3
                    && cmd[1].eq_ignore_ascii_case(b"reply")
                    && cmd[2].eq_ignore_ascii_case(b"off") =>
            {
                m.reply_off = true
            }
            b"hello" if m.resp3 || !m.subscribed() => match cmd.get(1).map(|v| &v[..]) {
                Some(b"3") => m.resp3 = true,
                Some(b"2") => m.resp3 = false,
                _ => {}
            },
            _ => {}
        }
    }

    fn commands_of(&mut self, kind: Kind, client: usize) -> Vec<Command> {
        match kind {
            Kind::Subscribe => vec![self.subscribe(client)],
            Kind::UnsubscribeSome => vec![self.unsubscribe_some(client)],
            Kind::UnsubscribeAll => {
                let name: &[u8] =
                    self.rng
                        .pick_bytes(&[&b"UNSUBSCRIBE"[..], b"PUNSUBSCRIBE", b"SUNSUBSCRIBE"]);
                vec![self.command(client, &[name])]
            }
            Kind::Publish => {
                let n = match self.rng.below(100) {
                    // A burst: order across workers shows.
                    0..=4 => self.rng.between(10, 30),
                    5..=24 => self.rng.between(2, 3),
                    _ => 1,
                };
                (0..n).map(|_| self.publish(client)).collect()
            }
            Kind::Introspect => vec![self.introspect(client)],
            Kind::ChannelList => {
                let sub: &[u8] = self.rng.pick_bytes(&[&b"CHANNELS"[..], b"SHARDCHANNELS"]);
                let sub = self.name(sub);
                if self.rng.percent(40) {
                    vec![self.command(client, &[b"PUBSUB", &sub])]
                } else {
                    let p = self.pattern();
                    vec![self.command(client, &[b"PUBSUB", &sub, &p])]
                }
            }
            Kind::Ping => {
                if self.rng.percent(40) {
                    vec![self.command(client, &[b"PING"])]
                } else {
                    let m = self.payload();
                    vec![self.command(client, &[b"PING", &m])]
                }
            }
            Kind::Echo => {
                let m = self.payload();
                vec![self.command(client, &[b"ECHO", &m])]
            }
            Kind::Reset => vec![self.command(client, &[b"RESET"])],
            Kind::Quit => vec![self.command(client, &[b"QUIT"])],
            Kind::ClientReply => self.client_reply(client),
            Kind::Hello => vec![self.hello(client)],
            Kind::Misc => {
                let args: &[&[u8]] = match self.rng.below(3) {
                    0 => &[b"SELECT", b"0"],
                    1 => &[b"CLIENT", b"GETNAME"],
                    _ => &[b"PUBSUB", b"HELP"],
                };
                vec![self.command(client, args)]
            }
            Kind::Auth => {
                if self.password.is_some() && self.rng.percent(50) {
                    vec![self.login(client)]
                } else {
                    vec![self.auth(client)]
                }
            }
            Kind::Unknown => vec![self.unknown(client)],
            Kind::Arity => vec![self.arity(client)],
        }
    }

    fn channel(&mut self) -> Vec<u8> {
        if self.rng.percent(75) {
            self.rng.pick(COMMON_CHANNELS).to_vec()
        } else if self.rng.percent(90) {
            self.rng.pick(ODD_CHANNELS).to_vec()
        } else {
            vec![b'c'; self.rng.between(100, 300)]
        }
    }

    fn pattern(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0..=10 => self.rng.pick(COMMON_PATTERNS).to_vec(),
            11..=16 => self.rng.pick(ODD_PATTERNS).to_vec(),
            _ => (0..self.rng.between(1, 4))
                .flat_map(|_| self.rng.pick(PATTERN_PIECES).to_vec())
                .collect(),
        }
    }

    fn payload(&mut self) -> Vec<u8> {
        match self.rng.below(50) {
            0..=24 => {
                self.payloads += 1;
                format!("m{}", self.payloads).into_bytes()
            }
            25..=45 => self.rng.pick(ODD_PAYLOADS).to_vec(),
            46..=48 => (0..self.rng.between(200, 2000))
                .map(|i| b'a' + (i % 26) as u8)
                .collect(),
            _ => (0..self.rng.between(60_000, 80_000))
                .map(|i| (i % 251) as u8)
                .collect(),
        }
    }

    /// An argument with odd bytes, of the kind servers echo in errors.
    fn odd_arg(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.rng.between(1, 3) {
            let piece: Vec<u8> = match self.rng.below(12) {
                0 if !self.avoid.has("nul-in-echoed-error") => self.rng.pick(NUL_PIECES).to_vec(),
                1 if !self.avoid.has("invalid-utf8-in-echoed-error") => {
                    self.rng.pick(INVALID_UTF8_PIECES).to_vec()
                }
                2 if !self.avoid.has("invalid-utf8-in-echoed-error") => {
                    // Multi-byte characters across the 128-byte cut.
                    self.rng.pick(UTF8_PIECES).repeat(self.rng.between(30, 80))
                }
                3 if !self.avoid.has("invalid-utf8-in-echoed-error") => {
                    self.rng.pick(UTF8_PIECES).to_vec()
                }
                4 => vec![b'L'; self.rng.between(100, 300)],
                _ => self.rng.pick(ODD_PIECES).to_vec(),
            };
            out.extend(piece);
        }
        out
    }

    fn subscribe(&mut self, client: usize) -> Command {
        let (name, pattern): (&[u8], bool) = match self.rng.below(3) {
            0 => (b"SUBSCRIBE", false),
            1 => (b"PSUBSCRIBE", true),
            _ => (b"SSUBSCRIBE", false),
        };
        let mut args = vec![name.to_vec()];
        let count = if self.rng.percent(5) {
            self.rng.between(10, 25)
        } else {
            self.rng.between(1, 3)
        };
        for _ in 0..count {
            let n = if pattern {
                self.pattern()
            } else {
                self.channel()
            };
            args.push(n);
        }
        if self.rng.percent(10) {
            // The same name twice in one command.
            let again = args[1].clone();
            args.push(again);
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.command(client, &refs)
    }

    fn unsubscribe_some(&mut self, client: usize) -> Command {
        let which = self.rng.below(3);
        let (name, held): (&[u8], Vec<Vec<u8>>) = {
            let m = &self.models[client];
            match which {
                0 => (b"UNSUBSCRIBE", m.channels.iter().cloned().collect()),
                1 => (b"PUNSUBSCRIBE", m.patterns.iter().cloned().collect()),
                _ => (b"SUNSUBSCRIBE", m.shards.iter().cloned().collect()),
            }
        };
        let mut args = vec![name.to_vec()];
        for _ in 0..self.rng.between(1, 3) {
            let n = if !held.is_empty() && self.rng.percent(60) {
                self.rng.pick(&held).clone()
            } else if which == 1 {
                self.pattern()
            } else {
                self.channel()
            };
            args.push(n);
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.command(client, &refs)
    }

    fn publish(&mut self, client: usize) -> Command {
        let shard = self.rng.percent(25);
        let held: Vec<Vec<u8>> = self
            .models
            .iter()
            .flat_map(|m| if shard { &m.shards } else { &m.channels }.iter().cloned())
            .collect();
        let channel = if !held.is_empty() && self.rng.percent(55) {
            self.rng.pick(&held).clone()
        } else {
            self.channel()
        };
        let payload = self.payload();
        let name: &[u8] = if shard { b"SPUBLISH" } else { b"PUBLISH" };
        self.command(client, &[name, &channel, &payload])
    }

    fn introspect(&mut self, client: usize) -> Command {
        let mut args: Vec<Vec<u8>> = vec![b"PUBSUB".to_vec()];
        match self.rng.below(5) {
            0 | 1 => {
                let sub: &[u8] = self.rng.pick_bytes(&[&b"NUMSUB"[..], b"SHARDNUMSUB"]);
                args.push(self.name(sub));
                for _ in 0..self.rng.between(0, 3) {
                    args.push(self.channel());
                }
            }
            2 => args.push(self.name(b"NUMPAT")),
            3 => args.push(self.name(b"HELP")),
            _ => {
                let sub = self.odd_arg();
                args.push(sub);
            }
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.command(client, &refs)
    }

    fn client_reply(&mut self, client: usize) -> Vec<Command> {
        let mode: &[u8] = match self.rng.below(10) {
            0..=2 => b"ON",
            3..=5 => b"OFF",
            6..=8 => b"SKIP",
            _ => b"MAYBE",
        };
        let mode = self.name(mode);
        let mut out = vec![self.command(client, &[b"CLIENT", b"REPLY", &mode])];
        if mode.eq_ignore_ascii_case(b"skip") && self.rng.percent(75) {
            // SKIP acts on the next command: send it in the same pipeline.
            loop {
                let kind = self.kind();
                if matches!(
                    kind,
                    Kind::UnsubscribeAll | Kind::ChannelList | Kind::ClientReply
                ) {
                    continue;
                }
                if self.after_skip_avoided(kind) {
                    continue;
                }
                self.first = false;
                out.extend(self.commands_of(kind, client));
                break;
            }
        }
        out
    }

    fn hello(&mut self, client: usize) -> Command {
        let args: Vec<Vec<u8>> = match self.rng.below(12) {
            0..=3 => vec![b"HELLO".to_vec(), b"3".to_vec()],
            4..=6 => vec![b"HELLO".to_vec(), b"2".to_vec()],
            7 => vec![b"HELLO".to_vec()],
            8 => {
                let v: &[u8] = if self.password.is_some() {
                    // Not an integer is the reply of the settle command
                    // for a client that is not authenticated.
                    self.rng.pick_bytes(&[&b"1"[..], b"4", b"-1", b"0"])
                } else {
                    self.rng.pick_bytes(&[
                        &b"1"[..],
                        b"4",
                        b"-1",
                        b"x",
                        b"",
                        b"3 ",
                        b"99999999999999999999",
                    ])
                };
                vec![b"HELLO".to_vec(), v.to_vec()]
            }
            // Redis 7.0 sets the name before checking authentication, 7.2
            // after (docs/redis-differences.md, row 6): with a password,
            // the name is only set along with a successful AUTH (`login`).
            9 if self.password.is_some() => vec![b"HELLO".to_vec(), b"3".to_vec()],
            9 => vec![
                b"HELLO".to_vec(),
                b"3".to_vec(),
                b"SETNAME".to_vec(),
                self.rng
                    .pick_bytes(&[&b"app"[..], b"bad name", b"x\r\ny", b""])
                    .to_vec(),
            ],
            10 => vec![
                b"HELLO".to_vec(),
                b"2".to_vec(),
                b"AUTH".to_vec(),
                if self.first {
                    self.rng.pick_bytes(&[&b"default"[..], b"nobody"]).to_vec()
                } else {
                    b"default".to_vec()
                },
                b"pw".to_vec(),
            ],
            _ => {
                let mut opt = self.odd_arg();
                if self.avoid.has("crlf-in-hello-option-error") {
                    opt.retain(|&b| b != b'\r' && b != b'\n');
                    opt.push(b'x');
                }
                vec![b"HELLO".to_vec(), b"3".to_vec(), opt]
            }
        };
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.command(client, &refs)
    }

    /// A command that authenticates with the right password.
    fn login(&mut self, client: usize) -> Command {
        let pw = self.password.unwrap_or(b"pw");
        match self.rng.below(4) {
            0 => self.command(client, &[b"AUTH", pw]),
            1 => self.command(client, &[b"AUTH", b"default", pw]),
            2 => self.command(client, &[b"HELLO", b"3", b"AUTH", b"default", pw]),
            _ => self.command(
                client,
                &[b"HELLO", b"2", b"AUTH", b"default", pw, b"SETNAME", b"app"],
            ),
        }
    }

    /// AUTH and HELLO AUTH that fail, or succeed without a password set
    /// (`-WRONGPASS` only as the first command of a step).
    fn auth(&mut self, client: usize) -> Command {
        let pick = if self.first {
            self.rng.below(9)
        } else {
            *self.rng.pick(&[3, 4, 6, 8])
        };
        let args: &[&[u8]] = match pick {
            0 => &[b"AUTH", b"wrong"],
            1 => &[b"AUTH", b"default", b"wrong"],
            2 => &[b"AUTH", b"nobody", b"pw"],
            3 => &[b"AUTH"],
            4 => &[b"AUTH", b"default", b"pw", b"extra"],
            5 => &[b"HELLO", b"3", b"AUTH", b"default", b"wrong"],
            6 => &[b"HELLO", b"3", b"AUTH", b"default"],
            7 => &[b"HELLO", b"2", b"AUTH", b"nobody", b"pw"],
            _ => &[b"HELLO", b"3"],
        };
        self.command(client, args)
    }

    fn unknown(&mut self, client: usize) -> Command {
        let mut name = match self.rng.below(10) {
            // First in its step only: what a server answers before closing
            // on it depends on where its reads split the client's write
            // (Redis reads 16 KiB at a time, ringcast from 1 KiB up), and
            // nothing is sent after it.
            0 if !self.avoid.has("cross-protocol-command") && self.first => {
                self.rng.pick_bytes(&[&b"POST"[..], b"Host:"]).to_vec()
            }
            1 => {
                let mut n = b"X".to_vec();
                n.extend(self.odd_arg());
                n
            }
            2 => vec![b'N'; self.rng.between(120, 200)],
            // A NUL inside a name that a real command's name does not start
            // with: Redis compares names as C strings within one bucket of
            // its command table, so whether `PING\0x` finds PING depends on
            // the table's random hash seed (docs/redis-differences.md, row 16).
            3 if !self.avoid.has("nul-in-echoed-error") => b"NOSUCH\x00PING".to_vec(),
            _ => self.rng.pick(UNKNOWN_COMMANDS).to_vec(),
        };
        if name.is_empty() {
            name = b"NOSUCH".to_vec();
        }
        let mut args = vec![name];
        let n = if self.rng.percent(20) {
            self.rng.between(5, 40)
        } else {
            self.rng.between(0, 3)
        };
        for _ in 0..n {
            args.push(self.odd_arg());
        }
        if matches!(&args[0][..], b"POST" | b"Host:") {
            // Redis closes the connection of what looks like HTTP.
            self.models[client] = Model::default();
        }
        // Not through `command()`: the name keeps its exact bytes.
        args
    }

    fn arity(&mut self, client: usize) -> Command {
        let odd = self.odd_arg();
        let ch = self.channel();
        let args: Vec<&[u8]> = match self.rng.below(17) {
            0 => vec![b"ECHO"],
            1 => vec![b"ECHO", &ch, &odd],
            2 => vec![b"PUBLISH", &ch],
            3 => vec![b"PUBLISH"],
            4 => vec![b"SPUBLISH", &ch],
            5 => vec![b"PUBLISH", &ch, &odd, &odd],
            6 => vec![b"PING", &odd, &odd],
            7 => vec![b"SUBSCRIBE"],
            8 => vec![b"PSUBSCRIBE"],
            9 => vec![b"SSUBSCRIBE"],
            10 => vec![b"PUBSUB"],
            11 => vec![b"PUBSUB", b"NUMPAT", &odd],
            12 => vec![b"PUBSUB", b"CHANNELS", &ch, &odd],
            13 => vec![b"CLIENT", b"REPLY"],
            14 => vec![b"CLIENT", b"REPLY", b"ON", &odd],
            15 => vec![b"RESET", &odd],
            _ => vec![b"CLIENT"],
        };
        self.command(client, &args)
    }
}
