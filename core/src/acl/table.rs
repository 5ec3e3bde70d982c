//! The command table ACL rules are written against: every command and
//! subcommand of Redis 7.2, with its ACL categories. ringcast serves only
//! a few of them, but ACL files and `ACL SETUSER` rules written for Redis
//! name the others (`+get`, `-@keyspace`), and must load and be shown back
//! unchanged. A command's index here is its ACL id (its bit in a selector).

#[path = "table_data.rs"]
mod data;

pub(crate) use data::REDIS_COMMANDS;

/// Redis's categories, in its order (`ACL CAT` lists them so); a
/// category's index is its bit in a command's category mask.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// An ACL command id: its index in `REDIS_COMMANDS`.
pub type CommandId = usize;

/// Words of a selector's command bitmap.
pub(super) const WORDS: usize = REDIS_COMMANDS.len().div_ceil(64);

/// The full name of command `id` (`publish`, `client|list`).
pub fn name(id: CommandId) -> &'static str {
    REDIS_COMMANDS[id].0
}

pub fn categories(id: CommandId) -> u32 {
    REDIS_COMMANDS[id].1
}

/// Commands flagged `no_auth` (AUTH, HELLO, QUIT, RESET): ACL rules never deny them.
pub fn no_auth(id: CommandId) -> bool {
    REDIS_COMMANDS[id].2
}

/// The mask of a category by name, any case.
pub fn category(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// A command by full name, any case (`config|get`), as Redis's
/// `ACLLookupCommand`: `a|b` names a subcommand of the container `a`.
pub fn lookup(name: &[u8]) -> Option<CommandId> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    REDIS_COMMANDS
        .binary_search_by(|(n, _, _)| n.as_bytes().cmp(&lower))
        .ok()
}

/// Whether `id` is a subcommand (its name has a `|`).
pub fn is_subcommand(id: CommandId) -> bool {
    name(id).contains('|')
}

/// The subcommands of container `id` (empty for other commands).
pub fn subcommands(id: CommandId) -> std::ops::Range<CommandId> {
    let prefix = format!("{}|", name(id));
    let start = REDIS_COMMANDS.partition_point(|(n, _, _)| *n < prefix.as_str());
    let len = REDIS_COMMANDS[start..]
        .iter()
        .take_while(|(n, _, _)| n.starts_with(&prefix))
        .count();
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_fits_the_bitmap() {
        assert!(REDIS_COMMANDS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(WORDS * 64 >= REDIS_COMMANDS.len());
    }

    #[test]
    fn lookups_find_commands_and_subcommands_in_any_case() {
        let publish = lookup(b"PUBLISH").unwrap();
        assert_eq!(name(publish), "publish");
        assert_ne!(categories(publish) & category(b"pubsub").unwrap(), 0);
        assert_eq!(name(lookup(b"Config|Get").unwrap()), "config|get");
        assert_eq!(lookup(b"select|0"), None);
        assert!(no_auth(lookup(b"auth").unwrap()));
        let client = lookup(b"client").unwrap();
        assert!(subcommands(client).all(|s| name(s).starts_with("client|")));
        assert!(subcommands(client).len() > 15);
        assert!(subcommands(publish).is_empty());
    }
}
