//! Access control: Redis 7.2's ACL users, without I/O.
//!
//! A [`User`] has flags (`on`/`off`, `nopass`), SHA-256 password hashes and
//! selectors ([`Selector`]: commands, key patterns, channel patterns). The
//! table of users ([`Users`]) is immutable once built: every change builds a
//! new table and publishes it through an `ArcSwap`, then bumps an epoch.
//! Connections keep an `Arc` of their user, so checking a command (and its
//! channels) on the publish path reads only that user: no lock, no
//! allocation. A worker that sees the epoch move re-reads the table for all
//! its connections at once (`Hub::acl_sweep`): a connection whose user was
//! deleted or replaced is closed, a subscriber whose user may no longer use
//! one of its channels is closed, the others pick up their user's new rules.
//!
//! Rule parsing and the text it is shown back as (`ACL LIST`, `ACL GETUSER`,
//! `ACL SAVE`) follow `acl.c` byte for byte, including rules about keys and
//! commands ringcast does not serve, so an ACL file written for Redis loads
//! unchanged and is saved back the same.

mod file;
mod log;
mod selector;
pub mod table;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use file::{AclFileError, check_user_line, load_user_lines, parse_file, render_file};
pub use log::{LogEntry, LogReason};
pub use selector::{ChannelArgs, Denied, Selector};
pub use table::CommandId;

use crate::lock;
use crate::resp::args::ArgList;

/// Why a rule was refused; the texts are Redis's (`ACLSetUserStringError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    Unknown,
    #[error(
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
    )]
    KeysAfterAll,
    #[error(
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
    )]
    ChannelsAfterAll,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error(
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    )]
    BadHash,
    #[error("Duplicate user found. A user can only be defined once in config files")]
    Duplicate,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
}

/// A password hash: 64 lowercase hex digits.
type Hash = [u8; 64];

fn hash_password(password: &[u8]) -> Hash {
    let digest = Sha256::digest(password);
    let mut hex = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        hex[i * 2] = b"0123456789abcdef"[usize::from(b >> 4)];
        hex[i * 2 + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    hex
}

fn parse_hash(hex: &[u8]) -> Result<Hash, RuleError> {
    let ok = hex.len() == 64 && hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let mut hash = [0u8; 64];
    if !ok {
        return Err(RuleError::BadHash);
    }
    hash.copy_from_slice(hex);
    Ok(hash)
}

/// Compare without an early exit, so reply timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What new selectors and `reset` start with (`acl-pubsub-default`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub allchannels: bool,
}

#[derive(Clone, Debug)]
pub struct User {
    /// Identity: kept by `ACL SETUSER`, new for a user created again or
    /// loaded from a file, so connections of a deleted user are never
    /// taken for connections of its namesake.
    pub id: u64,
    pub name: Bytes,
    enabled: bool,
    nopass: bool,
    skip_sanitize: bool,
    passwords: Vec<Hash>,
    /// The root selector first.
    selectors: Vec<Selector>,
}

impl User {
    /// A new user: `off`, no password, no permissions.
    pub fn new(id: u64, name: Bytes, defaults: Defaults) -> User {
        User {
            id,
            name,
            enabled: false,
            nopass: false,
            skip_sanitize: false,
            passwords: Vec::new(),
            selectors: vec![Selector::new(defaults.allchannels)],
        }
    }

    /// The `default` user of a server without ACL configuration: every
    /// permission, no password.
    fn new_default(id: u64, defaults: Defaults) -> User {
        let mut u = User::new(id, Bytes::from_static(b"default"), defaults);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let applied = u.apply(op.as_bytes(), defaults);
            debug_assert!(applied.is_ok());
        }
        u
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn nopass(&self) -> bool {
        self.nopass
    }

    pub fn passwords(&self) -> impl Iterator<Item = &[u8]> {
        self.passwords.iter().map(|h| &h[..])
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// The selectors besides the root one.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors[1..]
    }

    /// Flags in Redis's order (`on`/`off`, `nopass`, payload sanitizing).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f.push(if self.skip_sanitize {
            "skip-sanitize-payload"
        } else {
            "sanitize-payload"
        });
        f
    }

    /// Apply one rule (Redis's `ACLSetUser`).
    pub fn apply(&mut self, op: &[u8], defaults: Defaults) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if op.is_empty() {
        } else if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.skip_sanitize = true;
        } else if is("sanitize-payload") {
            self.skip_sanitize = false;
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                hash_password(&op[1..])
            } else {
                parse_hash(&op[1..])?
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                hash_password(&op[1..])
            } else {
                parse_hash(&op[1..])?
            };
            let at = self.passwords.iter().position(|p| *p == hash);
            self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(defaults.allchannels);
            let inner = &op[1..op.len() - 1];
            for rule in inner.split(|&c| c == b' ').filter(|r| !r.is_empty()) {
                s.apply(rule)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for op in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(op.as_bytes(), defaults)?;
            }
            if defaults.allchannels {
                self.apply(b"allchannels", defaults)?;
            }
            for op in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(op.as_bytes(), defaults)?;
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// The user as rules, without its name (`ACLDescribeUser`).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flags() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p);
            out.push(b' ');
        }
        out.extend_from_slice(&self.selectors[0].describe());
        for s in self.selectors() {
            out.extend_from_slice(b" (");
            out.extend_from_slice(&s.describe());
            out.push(b')');
        }
        out
    }

    /// Whether `password` opens this user (enabled; `nopass`, or a hash matches).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = hash_password(password);
        // Every hash is compared, so timing says nothing about which matched.
        self.passwords
            .iter()
            .fold(false, |ok, p| constant_time_eq(p, &hash) | ok)
    }

    /// Whether this user may run command `id` with `args`: Ok if any selector
    /// allows it, else the error Redis picks (a channel over the command,
    /// the last argument among channels).
    pub fn check(
        &self,
        id: CommandId,
        args: ArgList<'_>,
        channels: ChannelArgs,
    ) -> Result<(), Denied> {
        let mut worst = Denied::Command;
        for s in &self.selectors {
            match s.check(id, args, channels) {
                Ok(()) => return Ok(()),
                Err(d) => worst = worst.max(d),
            }
        }
        Err(worst)
    }

    /// May this user use `channel` (a pattern, matched literally, if `is_pattern`)?
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.allows_channel(channel, is_pattern))
    }

    /// Every channel permitted by any selector (no selector has `allchannels`)
    /// — or None if some selector allows all.
    fn channel_grants(&self) -> Option<Vec<&Bytes>> {
        if self.selectors.iter().any(|s| s.allchannels) {
            return None;
        }
        Some(self.selectors.iter().flat_map(|s| &s.channels).collect())
    }

    /// Whether every channel pattern `self` grants is still granted,
    /// literally, by `next` (Redis's shortcut before it checks subscribers).
    pub fn channels_kept_by(&self, next: &User) -> bool {
        match (self.channel_grants(), next.channel_grants()) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(old), Some(new)) => old.iter().all(|c| new.contains(c)),
        }
    }
}

/// The table of users, by name in byte order (as `ACL LIST` shows them).
/// Never changed once published: a change builds a new one.
#[derive(Clone, Debug)]
pub struct Users {
    by_name: BTreeMap<Bytes, Arc<User>>,
}

impl Users {
    pub fn get(&self, name: &[u8]) -> Option<&Arc<User>> {
        self.by_name.get(name)
    }

    pub fn default_user(&self) -> &Arc<User> {
        // The `default` user is never removed (DELUSER refuses, LOAD recreates it).
        self.by_name
            .get(&b"default"[..])
            .expect("the default user always exists")
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Redis's `authRequired`: clients must authenticate unless the default
    /// user is enabled and takes no password.
    pub fn auth_required(&self) -> bool {
        let d = self.default_user();
        !d.nopass || !d.enabled
    }

    pub fn insert(&mut self, user: User) {
        self.by_name.insert(user.name.clone(), Arc::new(user));
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Arc<User>> {
        self.by_name.remove(name)
    }
}

/// The ACL state shared by every worker.
pub struct Acl {
    users: ArcSwap<Users>,
    /// Bumped after every new table is published (after the store).
    epoch: AtomicU64,
    /// Serializes changes: each builds on the table the last one published.
    edit: Mutex<()>,
    next_id: AtomicU64,
    log: Mutex<log::Log>,
    denied: [AtomicU64; 4],
}

impl Acl {
    /// The `default` user with every permission, and `requirepass` as its
    /// password if set (Redis 7's `requirepass` is the default user's password).
    pub fn new(requirepass: Option<&str>, defaults: Defaults) -> Acl {
        let mut default = User::new_default(0, defaults);
        set_default_password(&mut default, requirepass, defaults);
        let mut by_name = BTreeMap::new();
        by_name.insert(default.name.clone(), Arc::new(default));
        Acl {
            users: ArcSwap::from_pointee(Users { by_name }),
            epoch: AtomicU64::new(0),
            edit: Mutex::new(()),
            next_id: AtomicU64::new(1),
            log: Mutex::new(log::Log::default()),
            denied: Default::default(),
        }
    }

    /// The current table of users.
    pub fn users(&self) -> Arc<Users> {
        self.users.load_full()
    }

    /// Changes so far: a worker that saw another value re-reads the table.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A fresh user identity.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Change the table: `f` works on a copy; if it succeeds the copy is
    /// published and the epoch bumped, otherwise nothing changes.
    pub fn edit<R, E>(&self, f: impl FnOnce(&mut Users) -> Result<R, E>) -> Result<R, E> {
        let _one_at_a_time = lock(&self.edit);
        let mut next = (*self.users.load_full()).clone();
        let r = f(&mut next)?;
        self.users.store(Arc::new(next));
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(r)
    }

    /// The user `name` if `password` opens it.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let users = self.users.load();
        let user = users.get(name)?;
        user.password_ok(password).then(|| user.clone())
    }

    /// `CONFIG SET requirepass`: the default user's passwords become that one
    /// (or `nopass` when empty), as Redis's `ACLUpdateDefaultUserPassword`.
    pub fn set_requirepass(&self, requirepass: Option<&str>, defaults: Defaults) {
        let _ = self.edit(|users| {
            let mut d = (**users.default_user()).clone();
            set_default_password(&mut d, requirepass, defaults);
            users.insert(d);
            Ok::<(), ()>(())
        });
    }

    /// Count a denial (INFO `acl_access_denied_*`) and log it (`ACL LOG`).
    pub fn record(&self, entry: LogEntry, max_len: usize) {
        self.denied[entry.reason as usize].fetch_add(1, Ordering::Relaxed);
        lock(&self.log).add(entry, max_len);
    }

    pub fn denied(&self, what: LogReason) -> u64 {
        self.denied[what as usize].load(Ordering::Relaxed)
    }

    /// Up to `count` log entries, newest first.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        lock(&self.log)
            .entries
            .iter()
            .take(count)
            .cloned()
            .collect()
    }

    pub fn reset_log(&self) {
        lock(&self.log).entries.clear();
    }
}

fn set_default_password(user: &mut User, requirepass: Option<&str>, defaults: Defaults) {
    let _ = user.apply(b"resetpass", defaults);
    let op = match requirepass {
        Some(p) => [&b">"[..], p.as_bytes()].concat(),
        None => b"nopass".to_vec(),
    };
    let _ = user.apply(&op, defaults);
}

/// Selector rules given over several arguments (`(~x`, `+get)`) joined into
/// one, as Redis's `ACLMergeSelectorArguments`; Err is the index of an
/// opening `(` never closed.
pub fn merge_selector_args<'a>(
    ops: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Vec<u8>>, usize> {
    let mut merged = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, op) in ops.into_iter().enumerate() {
        match &mut open {
            None if op.first() == Some(&b'(') && op.last() != Some(&b')') => {
                open = Some((i, op.to_vec()));
            }
            None => merged.push(op.to_vec()),
            Some((_, sel)) => {
                sel.push(b' ');
                sel.extend_from_slice(op);
                if op.last() == Some(&b')') {
                    merged.push(std::mem::take(sel));
                    open = None;
                }
            }
        }
    }
    match open {
        Some((at, _)) => Err(at),
        None => Ok(merged),
    }
}

/// Apply `ops` to a copy of `user`: all of them or none (Err: the rule that
/// failed and why).
pub fn apply_all(
    user: &User,
    ops: &[Vec<u8>],
    defaults: Defaults,
) -> Result<User, (Vec<u8>, RuleError)> {
    let mut next = user.clone();
    for op in ops {
        next.apply(op, defaults).map_err(|e| (op.clone(), e))?;
    }
    Ok(next)
}

/// Whether a user name has a space or NUL (Redis refuses those).
pub fn bad_name(name: &[u8]) -> bool {
    selector::has_spaces(name)
}

#[cfg(test)]
mod tests;
