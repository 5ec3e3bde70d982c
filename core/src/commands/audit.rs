//! What MONITOR, the slow log and the latency monitor see of a command:
//! whether monitors are shown it, which latency event it counts for,
//! whether a monitor may run it, and which of its arguments are hidden.

use std::sync::LazyLock;

use super::{FLAT, docs};
use crate::resp::args::ArgList;

/// A command's traits, from Redis 7.2's flags for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traits {
    /// `admin`: never shown to monitors (Redis deems them too dangerous).
    pub admin: bool,
    /// `fast`: over the latency threshold it is a `fast-command` event
    /// rather than a `command` one.
    pub fast: bool,
    /// Reads or writes keys, or may be replicated (`readonly`, `write`,
    /// `may_replicate`): a monitor, which Redis marks as a replica, may not
    /// run it.
    pub keyspace: bool,
}

/// Commands Redis flags `may_replicate` (COMMAND INFO hides that flag).
const MAY_REPLICATE: &[&str] = &["publish", "spublish"];

static TRAITS: LazyLock<Vec<Traits>> = LazyLock::new(|| {
    FLAT.iter()
        .map(|c| {
            let flags = docs::lookup(c.name).map_or(&[][..], |d| d.flags);
            Traits {
                admin: flags.contains(&"admin"),
                fast: flags.contains(&"fast"),
                keyspace: flags.contains(&"write")
                    || flags.contains(&"readonly")
                    || MAY_REPLICATE.contains(&c.name),
            }
        })
        .collect()
});

/// The id of `CONFIG SET`, after which the hub reads the slow log and
/// latency settings again.
pub fn config_set_id() -> Option<u16> {
    FLAT.iter()
        .position(|c| c.name == "config|set")
        .map(|at| at as u16)
}

/// The traits of the command with this id (see `super::name_of`).
pub fn traits(id: u16) -> Traits {
    TRAITS.get(usize::from(id)).copied().unwrap_or_default()
}

/// The indexes (ascending) of the arguments Redis 7.2 shows as
/// `(redacted)` to monitors and in the slow log: each command hides them as
/// it parses its arguments (`redactClientCommandArgument`), so an error met
/// before a secret leaves it as it was sent.
pub fn redacted(id: u16, args: ArgList<'_>) -> Vec<usize> {
    match super::name_of(id) {
        // Two or three arguments only; both secrets hidden.
        "auth" if args.len() <= 3 => (1..args.len()).collect(),
        "hello" => hello_secrets(args),
        "acl|setuser" => (2..args.len()).collect(),
        "config|set" if args.len().is_multiple_of(2) => (3..args.len())
            .step_by(2)
            .filter(|&i| sensitive_config(&args[i - 1]))
            .collect(),
        _ => Vec::new(),
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: options are read
/// left to right once the version is valid, and reading stops at the first
/// bad one.
fn hello_secrets(args: ArgList<'_>) -> Vec<usize> {
    let mut hidden = Vec::new();
    if let Some(v) = args.get(1)
        && !matches!(super::parse_i64(v), Some(2 | 3))
    {
        return hidden;
    }
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
            hidden.extend([j + 1, j + 2]);
            j += 3;
        } else if args[j].eq_ignore_ascii_case(b"setname")
            && more >= 1
            && super::connection::valid_name(&args[j + 1])
        {
            j += 2;
        } else {
            break;
        }
    }
    hidden
}

/// Parameters Redis flags `SENSITIVE_CONFIG`: their values are never shown
/// (hidden even where ringcast does not have the parameter, as Redis would).
fn sensitive_config(name: &[u8]) -> bool {
    ["requirepass", "masterauth", "masteruser"]
        .iter()
        .any(|p| name.eq_ignore_ascii_case(p.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::FLAT;
    use crate::resp::args::Args;

    fn id(name: &str) -> u16 {
        FLAT.iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name}")) as u16
    }

    fn args(a: &[&str]) -> Args {
        a.iter().map(|s| s.as_bytes()).collect()
    }

    #[test]
    fn traits_follow_redis_flags() {
        assert!(traits(id("monitor")).admin);
        assert!(traits(id("config|get")).admin);
        assert!(!traits(id("ping")).admin);
        assert!(traits(id("ping")).fast);
        assert!(!traits(id("debug")).fast);
        assert!(traits(id("publish")).keyspace);
        assert!(traits(id("flushall")).keyspace);
        assert!(traits(id("dbsize")).keyspace);
        assert!(!traits(id("subscribe")).keyspace);
    }

    #[test]
    fn secrets_are_hidden_as_redis_hides_them() {
        let r = |a: &[&str]| {
            let owned = args(a);
            let a = owned.list();
            let name = a[0].to_ascii_lowercase();
            let mut cmd = String::from_utf8_lossy(&name).into_owned();
            if matches!(cmd.as_str(), "acl" | "config") {
                cmd = format!(
                    "{cmd}|{}",
                    String::from_utf8_lossy(&a[1].to_ascii_lowercase())
                );
            }
            redacted(id(&cmd), a)
        };
        assert_eq!(r(&["auth", "x"]), vec![1]);
        assert_eq!(r(&["auth", "u", "p"]), vec![1, 2]);
        assert_eq!(r(&["auth", "a", "b", "c"]), Vec::<usize>::new());
        assert_eq!(r(&["hello", "3", "auth", "u", "p"]), vec![3, 4]);
        assert_eq!(r(&["hello", "4", "auth", "u", "p"]), Vec::<usize>::new());
        assert_eq!(
            r(&["hello", "3", "setname", "a b", "auth", "u", "p"]),
            Vec::<usize>::new()
        );
        assert_eq!(
            r(&[
                "hello", "3", "setname", "n", "AUTH", "u", "p", "auth", "v", "q"
            ]),
            vec![5, 6, 8, 9]
        );
        assert_eq!(r(&["acl", "setuser", "a", "on", ">p"]), vec![2, 3, 4]);
        assert_eq!(
            r(&[
                "config",
                "set",
                "timeout",
                "1",
                "requirepass",
                "x",
                "MASTERAUTH",
                "y"
            ]),
            vec![5, 7]
        );
        assert_eq!(r(&["ping", "x"]), Vec::<usize>::new());
    }
}
