//! A selector: one set of permissions (commands, key patterns, channel
//! patterns). A user has a root selector and any number of `(...)` ones;
//! a command is allowed if any of them allows it.
//!
//! Command permissions are a bitmap over [`table::REDIS_COMMANDS`], kept
//! together with the ordered rules that built it (Redis's `command_rules`),
//! which is what `ACL LIST` and `ACL GETUSER` show back.

use bytes::Bytes;

use super::RuleError;
use super::table::{self, CommandId, WORDS};
use crate::glob;
use crate::resp::args::ArgList;

/// A key pattern and what it allows (`~p`: both, `%R~p`, `%W~p`). ringcast
/// has no keys: patterns are shown and saved back, and checked only against
/// WATCH's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KeyPattern {
    pattern: Bytes,
    read: bool,
    write: bool,
}

impl KeyPattern {
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match (self.read, self.write) {
            (true, false) => b"%R~",
            (false, true) => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    allkeys: bool,
    pub(super) allchannels: bool,
    allcommands: bool,
    /// Built from `+@all` rather than `-@all`: commands added later would
    /// be allowed (Redis's reserved bit); decides the `+@all`/`-@all` prefix.
    future: bool,
    allowed: [u64; WORDS],
    /// First arguments allowed for an otherwise denied command (`+select|0`).
    first_args: Vec<(CommandId, Vec<Bytes>)>,
    keys: Vec<KeyPattern>,
    pub(super) channels: Vec<Bytes>,
    /// How each of `channels` is checked (same order).
    channel_matches: Vec<ChannelMatch>,
    /// The command rules in the order that matters, lowercase (`+@pubsub -publish`).
    rules: String,
}

/// Outcome of checking a command against a selector or a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// Ordered as Redis ranks them (`ACL_DENIED_CMD` < `ACL_DENIED_KEY` <
    /// `ACL_DENIED_CHANNEL`).
    Command,
    /// The argument at this index is a key the user may not use.
    Key(usize),
    /// The argument at this index names a channel the user may not use.
    Channel(usize),
}

/// Which arguments of a command name channels the ACL checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelArgs {
    None,
    /// `PUBLISH channel msg`, `SPUBLISH`.
    First,
    /// `SUBSCRIBE channel...`, `SSUBSCRIBE`: every argument.
    All,
    /// `PSUBSCRIBE pattern...`: every argument, compared literally.
    AllPatterns,
    /// `WATCH key...`: no channels, every argument a key (its key spec asks
    /// for no read or write access, so any key pattern may allow it).
    Keys,
}

impl ChannelArgs {
    pub fn of(name: &str) -> ChannelArgs {
        match name {
            "publish" | "spublish" => ChannelArgs::First,
            "subscribe" | "ssubscribe" => ChannelArgs::All,
            "psubscribe" => ChannelArgs::AllPatterns,
            "watch" => ChannelArgs::Keys,
            _ => ChannelArgs::None,
        }
    }
}

/// How one channel pattern is checked on the publish path. Most ACL channel
/// patterns are a literal (`orders`) or a literal prefix and a star
/// (`orders.*`), which one byte comparison decides; the glob runs only for
/// the others, and only on channels that start with the pattern's literal
/// prefix (every channel it matches does). Before any of that, the first
/// eight bytes of the literal prefix are compared as one word with the
/// channel's, which rules out most non-matching patterns without a call to
/// `memcmp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChannelMatch {
    kind: MatchKind,
    /// The literal prefix's first (up to) eight bytes.
    head: Head,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatchKind {
    /// No glob character: the channel equals the pattern.
    Exact,
    /// The literal prefix of this many bytes, then only `*`: the channel
    /// starts with it and is not empty (the glob matches no empty string).
    Prefix(usize),
    /// The literal prefix of this many bytes, then the glob decides.
    Glob(usize),
}

/// Up to eight leading bytes as a little-endian word, with the mask of the
/// bytes that are there. A channel shorter than a pattern's head reads as
/// zero bytes past its end, which no pattern byte equals (a pattern holds no
/// NUL, see [`has_spaces`]), so the word comparison never admits it wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    word: u64,
    mask: u64,
}

impl Head {
    fn of(bytes: &[u8]) -> Head {
        let n = bytes.len().min(8);
        let mut word = [0u8; 8];
        word[..n].copy_from_slice(&bytes[..n]);
        Head {
            word: u64::from_le_bytes(word),
            mask: if n == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * n)) - 1
            },
        }
    }

    /// Whether a channel whose head is `channel` may start with this head.
    fn admits(self, channel: Head) -> bool {
        channel.word & self.mask == self.word
    }
}

impl ChannelMatch {
    fn of(pattern: &[u8]) -> ChannelMatch {
        let prefix = glob::literal_prefix(pattern);
        let n = prefix.len();
        let kind = if n == pattern.len() {
            MatchKind::Exact
        } else if pattern[n..].iter().all(|&b| b == b'*') {
            MatchKind::Prefix(n)
        } else {
            MatchKind::Glob(n)
        };
        ChannelMatch {
            kind,
            head: Head::of(prefix),
        }
    }

    /// Whether `channel` (whose [`Head`] is `head`) matches `pattern` (which
    /// this was made from), as `glob::matches` would say.
    fn matches(self, pattern: &[u8], channel: &[u8], head: Head) -> bool {
        if !self.head.admits(head) {
            return false;
        }
        match self.kind {
            MatchKind::Exact => pattern == channel,
            MatchKind::Prefix(n) => !channel.is_empty() && channel.starts_with(&pattern[..n]),
            MatchKind::Glob(n) => {
                channel.starts_with(&pattern[..n]) && glob::matches(pattern, channel)
            }
        }
    }
}

impl Selector {
    /// Whether `channel` is allowed by the channel patterns: a channel is
    /// matched as a glob against each; a pattern (PSUBSCRIBE) only equals
    /// one literally (Redis's `ACLCheckChannelAgainstList`).
    fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        if is_pattern {
            return self.channels.iter().any(|p| &p[..] == channel);
        }
        let head = Head::of(channel);
        self.channels
            .iter()
            .zip(&self.channel_matches)
            .any(|(p, m)| m.matches(p, channel, head))
    }
}

/// Redis rejects spaces and NULs in patterns (`ACLStringHasSpaces`).
pub(super) fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c))
}

impl Selector {
    /// A selector with no permissions; `allchannels` per `acl-pubsub-default`.
    pub(super) fn new(allchannels: bool) -> Selector {
        Selector {
            allkeys: false,
            allchannels,
            allcommands: false,
            future: false,
            allowed: [0; WORDS],
            first_args: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            channel_matches: Vec::new(),
            rules: String::new(),
        }
    }

    fn bit(&self, id: CommandId) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: CommandId, allow: bool) {
        if allow {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Allow or deny a command and, for a container, all its subcommands.
    fn change(&mut self, id: CommandId, allow: bool) {
        self.set_bit(id, allow);
        self.first_args.retain(|(c, _)| *c != id);
        for sub in table::subcommands(id) {
            self.set_bit(sub, allow);
        }
    }

    fn set_category(&mut self, mask: u32, allow: bool) {
        for id in 0..table::REDIS_COMMANDS.len() {
            if table::categories(id) & mask != 0 {
                self.change(id, allow);
            }
        }
    }

    /// Keep `rule` (lowercase, without its sign) as the last one, dropping
    /// the earlier rules it overrides: the same command, category, or a
    /// subcommand or first argument of the command (Redis's
    /// `ACLUpdateCommandRules`).
    fn update_rules(&mut self, rule: &str, allow: bool) {
        let rule = rule.to_ascii_lowercase();
        let kept: Vec<&str> = self
            .rules
            .split(' ')
            .filter(|r| !r.is_empty())
            .filter(|r| {
                let body = &r[1..];
                !(body == rule
                    || (body.len() > rule.len()
                        && body.starts_with(rule.as_str())
                        && body.as_bytes()[rule.len()] == b'|'))
            })
            .collect();
        let mut rules = kept.join(" ");
        if !rules.is_empty() {
            rules.push(' ');
        }
        rules.push(if allow { '+' } else { '-' });
        rules.push_str(&rule);
        self.rules = rules;
    }

    /// Apply one selector rule (Redis's `ACLSetSelector`).
    pub(super) fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || op == b"&*" {
            self.allchannels = true;
            self.channels.clear();
            self.channel_matches.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
            self.channel_matches.clear();
        } else if is("allcommands") || is("+@all") {
            self.allowed = [u64::MAX; WORDS];
            self.allcommands = true;
            self.future = true;
            self.rules.clear();
            self.first_args.clear();
        } else if is("nocommands") || is("-@all") {
            self.allowed = [0; WORDS];
            self.allcommands = false;
            self.future = false;
            self.rules.clear();
            self.first_args.clear();
        } else if op[0] == b'~' || op[0] == b'%' {
            self.add_key_pattern(op)?;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelsAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| &c[..] == pattern) {
                self.channels.push(Bytes::copy_from_slice(pattern));
                self.channel_matches.push(ChannelMatch::of(pattern));
            }
            self.allchannels = false;
        } else if op.len() > 1 && op[1] == b'@' && (op[0] == b'+' || op[0] == b'-') {
            let mask = table::category(&op[2..]).ok_or(RuleError::Unknown)?;
            let allow = op[0] == b'+';
            self.update_rules(&String::from_utf8_lossy(&op[1..]), allow);
            self.set_category(mask, allow);
        } else if op[0] == b'+' {
            self.allow_command(&op[1..])?;
        } else if op[0] == b'-' {
            let id = table::lookup(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change(id, false);
            self.update_rules(table::name(id), false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::KeysAfterAll);
        }
        let (mut read, mut write) = (op[0] == b'~', op[0] == b'~');
        let mut offset = 1;
        if op[0] == b'%' {
            while offset < op.len() {
                match op[offset].to_ascii_uppercase() {
                    b'R' if !read => read = true,
                    b'W' if !write => write = true,
                    b'~' => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            if !read && !write {
                return Err(RuleError::Syntax);
            }
        }
        let pattern = &op[offset..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|k| &k.pattern[..] == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: Bytes::copy_from_slice(pattern),
                read,
                write,
            }),
        }
        self.allkeys = false;
        Ok(())
    }

    /// `+cmd`, `+container|sub`, or `+cmd|first-arg`.
    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&b| b == b'|') else {
            let id = table::lookup(name).ok_or(RuleError::Unknown)?;
            self.change(id, true);
            self.update_rules(table::name(id), true);
            return Ok(());
        };
        let (base, sub) = (&name[..bar], &name[bar + 1..]);
        let id = table::lookup(base).ok_or(RuleError::Unknown)?;
        if table::is_subcommand(id) {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if table::subcommands(id).is_empty() {
            let allowed = match self.first_args.iter_mut().find(|(c, _)| *c == id) {
                Some((_, args)) => args,
                None => {
                    self.first_args.push((id, Vec::new()));
                    &mut self.first_args.last_mut().expect("just pushed").1
                }
            };
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                allowed.push(Bytes::copy_from_slice(sub));
            }
        } else {
            let sub_id = table::lookup(name).ok_or(RuleError::Unknown)?;
            self.change(sub_id, true);
        }
        self.update_rules(&String::from_utf8_lossy(name), true);
        Ok(())
    }

    /// Whether this selector lets command `id` run with `args` (`args[0]`
    /// the command name), and its channel arguments.
    pub(super) fn check(
        &self,
        id: CommandId,
        args: ArgList<'_>,
        channels: ChannelArgs,
    ) -> Result<(), Denied> {
        if !self.allcommands && !table::no_auth(id) && !self.bit(id) {
            let at = if table::is_subcommand(id) { 2 } else { 1 };
            let first_ok = match (self.first_args.iter().find(|(c, _)| *c == id), args.get(at)) {
                (Some((_, allowed)), Some(arg)) => {
                    allowed.iter().any(|a| a.eq_ignore_ascii_case(arg))
                }
                _ => false,
            };
            if !first_ok {
                return Err(Denied::Command);
            }
        }
        if channels == ChannelArgs::Keys {
            return self.check_keys(args);
        }
        if self.allchannels {
            return Ok(());
        }
        let (named, is_pattern) = match channels {
            ChannelArgs::None | ChannelArgs::Keys => return Ok(()),
            ChannelArgs::First => (args.within(1..2), false),
            ChannelArgs::All => (args.within(1..usize::MAX), false),
            ChannelArgs::AllPatterns => (args.within(1..usize::MAX), true),
        };
        match named
            .iter()
            .position(|c| !self.channel_allowed(c, is_pattern))
        {
            Some(i) => Err(Denied::Channel(i + 1)),
            None => Ok(()),
        }
    }

    /// Redis's `ACLSelectorCheckKey` for keys whose spec needs no access
    /// flag (WATCH's): each key must match a key pattern, whatever it allows.
    fn check_keys(&self, args: ArgList<'_>) -> Result<(), Denied> {
        if self.allkeys {
            return Ok(());
        }
        let keys = args.within(1..usize::MAX);
        match keys
            .iter()
            .position(|k| !self.keys.iter().any(|p| glob::matches(&p.pattern, k)))
        {
            Some(i) => Err(Denied::Key(i + 1)),
            None => Ok(()),
        }
    }

    /// May this selector use `channel` (a pattern if `is_pattern`)?
    pub(super) fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels || self.channel_allowed(channel, is_pattern)
    }

    /// `+@all ...` / `-@all ...`: the command part of a description.
    pub fn describe_commands(&self) -> String {
        let mut s = String::from(if self.future { "+@all" } else { "-@all" });
        if !self.rules.is_empty() {
            s.push(' ');
            s.push_str(&self.rules);
        }
        s
    }

    /// `~* ` or the key patterns, each followed by a space.
    fn describe_keys_into(&self, out: &mut Vec<u8>) {
        if self.allkeys {
            out.extend_from_slice(b"~* ");
            return;
        }
        for k in &self.keys {
            k.describe(out);
            out.push(b' ');
        }
    }

    /// The whole selector as rules (`ACLDescribeSelector`).
    pub(super) fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.describe_keys_into(&mut out);
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
        out
    }

    /// `keys` of ACL GETUSER: `~*`, or the patterns separated by spaces.
    pub fn keys_field(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            k.describe(&mut out);
        }
        out
    }

    /// `channels` of ACL GETUSER: `&*`, or `&pattern`s separated by spaces.
    pub fn channels_field(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelMatch, Head, MatchKind};
    use crate::glob;

    /// The shortcuts decide every channel exactly as the glob does.
    #[test]
    fn channel_shortcuts_agree_with_the_glob() {
        let patterns: [&[u8]; 19] = [
            b"orders.europe",
            b"orders.europe.*",
            b"orders.e*",
            b"orders.europe.[a-c]*",
            b"ordersZZ",
            b"",
            b"*",
            b"**",
            b"orders",
            b"orders.*",
            b"orders.**",
            b"orders*x",
            b"o?ders",
            b"orders.\\*",
            b"[o]rders*",
            b"orders.[a-c]",
            b"*.eu",
            b"a*b*",
            b"\\",
        ];
        let channels: [&[u8]; 20] = [
            b"orders.europe",
            b"orders.europe.",
            b"orders.europe.b1",
            b"orders.europ",
            b"orders.e",
            b"ordersZ",
            b"",
            b"o",
            b"orders",
            b"orders.",
            b"orders.eu",
            b"orders*",
            b"orders.*",
            b"ordersx",
            b"oXders",
            b"orders.b",
            b"payments",
            b"x.eu",
            b"ab",
            b"\\",
        ];
        for p in patterns {
            let m = ChannelMatch::of(p);
            for c in channels {
                assert_eq!(
                    m.matches(p, c, Head::of(c)),
                    glob::matches(p, c),
                    "pattern {:?} channel {:?} ({m:?})",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(c)
                );
            }
        }
        assert_eq!(ChannelMatch::of(b"orders").kind, MatchKind::Exact);
        assert_eq!(ChannelMatch::of(b"orders.*").kind, MatchKind::Prefix(7));
        assert_eq!(ChannelMatch::of(b"orders.[a-c]").kind, MatchKind::Glob(7));
    }
}
