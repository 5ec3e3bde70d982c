//! ACL files (`aclfile`, `ACL LOAD`, `ACL SAVE`) and `user` lines of the
//! config file, as text: reading them into a table of users and writing a
//! table back. The server reads and writes the file itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{Defaults, RuleError, User, Users, bad_name, merge_selector_args};

/// Why `user` lines of a config file cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AclFileError {
    #[error("Error in user declaration '{op}': {error}")]
    Declaration { op: String, error: RuleError },
    #[error("Error loading ACL rule '{op}' for the user named '{user}': {error}")]
    Rule {
        op: String,
        user: String,
        error: RuleError,
    },
    #[error("Spaces not allowed in ACL usernames")]
    SpacesInName,
}

/// Check a config file's `user <name> rules...` line as Redis does when it
/// reads the file (`ACLAppendUserForLoading`): rules are tried on a scratch
/// user, unknown commands are left for later. `seen` holds the names of the
/// lines before it.
pub fn check_user_line(words: &[String], seen: &[Vec<String>]) -> Result<(), AclFileError> {
    let declaration = |op: &str, error| AclFileError::Declaration {
        op: op.to_string(),
        error,
    };
    let Some(name) = words.first() else {
        return Err(declaration("user", RuleError::Syntax));
    };
    if seen.iter().any(|l| l.first() == Some(name)) {
        return Err(declaration(name, RuleError::Duplicate));
    }
    let rules = &words[1..];
    let merged = merge_selector_args(rules.iter().map(|r| r.as_bytes()))
        .map_err(|at| declaration(&rules[at], RuleError::Syntax))?;
    let defaults = Defaults { allchannels: false };
    let mut scratch = User::new(0, Bytes::new(), defaults);
    for (j, op) in merged.iter().enumerate() {
        match scratch.apply(op, defaults) {
            Ok(()) | Err(RuleError::Unknown) => {}
            // Redis names the argument at the merged index (as it does).
            Err(e) => return Err(declaration(rules.get(j).map_or("", |s| s), e)),
        }
    }
    Ok(())
}

/// Apply the config file's `user` lines to `users` at startup
/// (`ACLLoadConfiguredUsers`): `default` is reset first, others created.
pub fn load_user_lines(
    users: &mut Users,
    lines: &[Vec<String>],
    defaults: Defaults,
    mut next_id: impl FnMut() -> u64,
) -> Result<(), AclFileError> {
    for line in lines {
        let Some((name, rules)) = line.split_first() else {
            continue;
        };
        if bad_name(name.as_bytes()) {
            return Err(AclFileError::SpacesInName);
        }
        let mut user = match users.get(name.as_bytes()) {
            Some(existing) => {
                let mut u = (**existing).clone();
                let _ = u.apply(b"reset", defaults);
                u
            }
            None => User::new(next_id(), Bytes::from(name.clone()), defaults),
        };
        let merged = merge_selector_args(rules.iter().map(|r| r.as_bytes())).unwrap_or_default();
        for op in &merged {
            user.apply(op, defaults)
                .map_err(|error| AclFileError::Rule {
                    op: String::from_utf8_lossy(op).into_owned(),
                    user: name.clone(),
                    error,
                })?;
        }
        if !user.enabled() {
            tracing::info!(
                "The user '{name}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error."
            );
        }
        users.insert(user);
    }
    Ok(())
}

/// Read an ACL file's text into a new table of users (`ACLLoadFromFile`):
/// every line `user <name> rules...`; any error and nothing is loaded (Err
/// is Redis's one-line description of every problem). `default` keeps the
/// identity of `current`'s default user; the others are new users.
pub fn parse_file(
    text: &[u8],
    filename: &str,
    current: &Users,
    defaults: Defaults,
    mut next_id: impl FnMut() -> u64,
) -> Result<Users, String> {
    let mut errors = String::new();
    let mut by_name: BTreeMap<Bytes, Arc<User>> = BTreeMap::new();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let n = i + 1;
        let line = trim(line, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        let argv: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!(
                "{filename}:{n} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = argv[1];
        let shown = String::from_utf8_lossy(name);
        if bad_name(name) {
            errors.push_str(&format!(
                "'{filename}:{n}: username '{shown}' contains invalid characters. "
            ));
            continue;
        }
        if by_name.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{shown}' found on line {n}. "
            ));
            continue;
        }
        let id = if name == b"default" {
            current.default_user().id
        } else {
            next_id()
        };
        let mut user = User::new(id, Bytes::copy_from_slice(name), defaults);
        let merged = match merge_selector_args(argv[2..].iter().copied()) {
            Ok(m) => m,
            Err(_) => {
                errors.push_str(&format!(
                    "{filename}:{n}: Unmatched parenthesis in selector definition."
                ));
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for op in &merged {
            let op = trim(op, b"\t\r\n");
            match user.apply(op, defaults) {
                Ok(()) => {}
                Err(e @ RuleError::Unknown) => errors.push_str(&format!(
                    "{filename}:{n}: Error in applying operation '{}': {e}. ",
                    String::from_utf8_lossy(op)
                )),
                Err(e) if !syntax_error => {
                    errors.push_str(&format!("{filename}:{n}: {e}. "));
                    syntax_error = true;
                }
                Err(_) => {}
            }
        }
        by_name.insert(user.name.clone(), Arc::new(user));
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(errors);
    }
    let mut users = Users { by_name };
    if users.get(b"default").is_none() {
        users.insert(User::new_default(current.default_user().id, defaults));
    }
    Ok(users)
}

/// The table as an ACL file: one `user <name> <rules>` line per user.
pub fn render_file(users: &Users) -> Vec<u8> {
    let mut out = Vec::new();
    for u in users.iter() {
        out.extend_from_slice(b"user ");
        out.extend_from_slice(&u.name);
        out.push(b' ');
        out.extend_from_slice(&u.describe());
        out.push(b'\n');
    }
    out
}

fn trim<'a>(mut s: &'a [u8], chars: &[u8]) -> &'a [u8] {
    while let Some((first, rest)) = s.split_first()
        && chars.contains(first)
    {
        s = rest;
    }
    while let Some((last, rest)) = s.split_last()
        && chars.contains(last)
    {
        s = rest;
    }
    s
}
