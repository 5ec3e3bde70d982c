//! Every error reply ringcast's commands and its acceptor send, in one place,
//! so the texts stay byte-identical to Redis 7.2 (clients and test suites
//! match on them). Protocol errors, which end a connection, are the request
//! decoder's own typed error with Redis's texts
//! ([`crate::resp::decode::ProtocolError`]).
//!
//! Each constant or function gives the reply text without the leading `-`
//! and trailing CRLF; `resp::encode::error` adds those (and turns any CR or
//! LF inside into a space, as Redis does, so a reply is always one line).
//! Texts that echo client bytes echo them as Redis does: raw bytes, cut at
//! the first NUL (Redis formats them as C strings) and at 128 bytes where
//! Redis's format has `%.128s`.

pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const DB_INDEX: &str = "ERR DB index is out of range";
pub const SELECT_IN_CLUSTER: &str = "ERR SELECT is not allowed in cluster mode";
pub const MAX_CLIENTS: &str = "ERR max number of clients reached";
/// Sent to a non-loopback client refused by protected mode, before closing
/// (Redis 7.2 `clientAcceptHandler`).
pub const PROTECTED_MODE: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";
pub const CLIENT_NAME_SPACES: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";
pub const NO_SUCH_CLIENT: &str = "ERR No such client";
/// `CLIENT TRACKING ON`: ringcast keeps no keys, so it has nothing to track.
pub const TRACKING_UNSUPPORTED: &str =
    "ERR CLIENT TRACKING is not supported: ringcast has no keyspace to invalidate";
pub const CACHING_WITHOUT_TRACKING: &str = "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled";
pub const DEBUG_DISABLED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
pub const GETKEYS_NO_KEYS: &str = "ERR The command has no key arguments";
pub const GETKEYS_INVALID_COMMAND: &str = "ERR Invalid command specified";
pub const INVALID_CLIENT_ID: &str = "ERR Invalid client ID";
pub const CLIENT_ID_NOT_POSITIVE: &str = "ERR client-id should be greater than 0";
/// `CLIENT KILL MAXAGE` (Redis 7.4's option, accepted here too).
pub const MAXAGE_NOT_INTEGER: &str = "ERR maxage is not an integer or out of range";
pub const PROTOCOL_VERSION_NOT_INTEGER: &str =
    "ERR Protocol version is not an integer or out of range";
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
/// `CONFIG REWRITE` on a server started without a config file.
pub const CONFIG_NO_FILE: &str = "ERR The server is running without a config file";
/// `SHUTDOWN ABORT` with no shutdown under way (one under way reads no more requests).
pub const SHUTDOWN_NOT_IN_PROGRESS: &str = "ERR No shutdown in progress.";
/// `SHUTDOWN` that could not start.
pub const SHUTDOWN_FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

pub const NOPERM_CHANNEL: &str = "NOPERM No permissions to access a channel";
pub const NOPERM_KEY: &str = "NOPERM No permissions to access a key";
pub const ACL_NO_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";
pub const ACL_SAVE_FAILED: &str = "ERR There was an error trying to save the ACLs. Please check the server logs for more information";
pub const ACL_USERNAME_SPACES: &str = "ERR Usernames can't contain spaces or null characters";
pub const ACL_DELETE_DEFAULT: &str = "ERR The 'default' user cannot be removed";
pub const ACL_GENPASS_BITS: &str = "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096";
pub const EXEC_WITHOUT_MULTI: &str = "ERR EXEC without MULTI";
pub const DISCARD_WITHOUT_MULTI: &str = "ERR DISCARD without MULTI";
pub const MULTI_NESTED: &str = "ERR MULTI calls can not be nested";
pub const WATCH_IN_MULTI: &str = "ERR WATCH inside MULTI is not allowed";
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
pub const NOT_IN_MULTI: &str = "ERR Command not allowed inside a transaction";
/// SSUBSCRIBE run by EXEC (Redis denies it to a client that may not block,
/// and EXEC makes its client one; SUBSCRIBE and PSUBSCRIBE are exempted).
pub const SSUBSCRIBE_DENY_BLOCKING: &str =
    "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client";
/// MONITOR run by EXEC (Redis's `monitorCommand` refuses a client that may
/// not block, as every command inside a transaction is).
pub const MONITOR_DENY_BLOCKING: &str = "ERR MONITOR isn't allowed for DENY BLOCKING client";

/// EXEC refused before it runs (wrong arity, NOAUTH, NOPERM, the RESP2
/// subscribed mode): Redis discards the transaction and wraps the refusal
/// (`execCommandAbort`) as its check wrote it, which is without `ERR `.
pub fn execabort(why: &[u8]) -> Vec<u8> {
    let why = why.strip_prefix(b"ERR ").unwrap_or(why);
    let mut e = b"EXECABORT Transaction discarded because of: ".to_vec();
    e.extend_from_slice(why);
    e
}

/// A queued command EXEC finds its user may no longer run (the ACL rules
/// changed since it was queued), with the reason Redis gives for what is
/// denied.
pub fn noperm_at_exec(denied: crate::acl::Denied) -> String {
    use crate::acl::Denied;
    let reason = match denied {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )
}

/// `-NOPERM User <name> has no permissions to run the '<cmd>' command`
/// (`cmd` is the full name: `client|kill`).
pub fn noperm_command(user: &[u8], cmd: &str) -> Vec<u8> {
    quoted(
        "NOPERM User ",
        user,
        &format!(" has no permissions to run the '{cmd}' command"),
    )
}

/// What `ACL DRYRUN` answers for a denied channel (Redis's verbose form).
pub fn noperm_channel_verbose(user: &[u8], channel: &[u8]) -> Vec<u8> {
    let mut e = quoted("User ", user, " has no permissions to access the '");
    e.extend_from_slice(channel);
    e.extend_from_slice(b"' channel");
    e
}

/// What `ACL DRYRUN` answers for a denied key (Redis's verbose form).
pub fn noperm_key_verbose(user: &[u8], key: &[u8]) -> Vec<u8> {
    let mut e = quoted("User ", user, " has no permissions to access the '");
    e.extend_from_slice(key);
    e.extend_from_slice(b"' key");
    e
}

/// What `ACL DRYRUN` answers for a denied command (without `NOPERM`).
pub fn noperm_command_verbose(user: &[u8], cmd: &str) -> Vec<u8> {
    quoted(
        "User ",
        user,
        &format!(" has no permissions to run the '{cmd}' command"),
    )
}

/// `ACL SETUSER` with a rule it refuses.
pub fn acl_setuser_modifier(op: &[u8], why: &str) -> Vec<u8> {
    quoted(
        "ERR Error in ACL SETUSER modifier '",
        c_str(op, usize::MAX),
        &format!("': {why}"),
    )
}

/// `ACL SETUSER` with a `(` never closed.
pub fn acl_unmatched_parenthesis(op: &[u8]) -> Vec<u8> {
    quoted(
        "ERR Unmatched parenthesis in acl selector starting at '",
        c_str(op, usize::MAX),
        "'.",
    )
}

/// `ACL CAT <category>` with an unknown category.
pub fn acl_unknown_category(name: &[u8]) -> Vec<u8> {
    quoted("ERR Unknown category '", c_str(name, 128), "'")
}

/// `ACL DRYRUN` for a user that does not exist.
pub fn acl_user_not_found(name: &[u8]) -> Vec<u8> {
    quoted("ERR User '", c_str(name, usize::MAX), "' not found")
}

/// `ACL DRYRUN` for a command ringcast does not know.
pub fn acl_command_not_found(name: &[u8]) -> Vec<u8> {
    quoted("ERR Command '", c_str(name, usize::MAX), "' not found")
}

/// The ACL file cannot be opened (`ACL LOAD`, startup): the path and the
/// system's reason, as `strerror` words it.
pub fn acl_file_open(path: &str, e: &std::io::Error) -> String {
    format!("Error loading ACLs, opening file '{path}': {}", strerror(e))
}

/// An I/O error as C's `strerror` words it (`No such file or directory`).
pub fn strerror(e: &std::io::Error) -> String {
    let why = e.to_string();
    why.split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `-ERR unknown command '<name>', with args beginning with: '<a>' '<b>' `
pub fn unknown_command(name: &[u8], args: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Vec<u8> {
    // As Redis: arguments are added while their text is under 128 bytes,
    // each one cut to what is left of those 128.
    let mut listed = Vec::new();
    for a in args {
        if listed.len() >= 128 {
            break;
        }
        let left = 128 - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(c_str(a.as_ref(), left));
        listed.extend_from_slice(b"' ");
    }
    let mut e = b"ERR unknown command '".to_vec();
    e.extend_from_slice(c_str(name, 128));
    e.extend_from_slice(b"', with args beginning with: ");
    e.extend_from_slice(&listed);
    e
}

/// `-ERR wrong number of arguments for '<cmd>' command`
pub fn wrong_arity(cmd: &str) -> Vec<u8> {
    format!("ERR wrong number of arguments for '{cmd}' command").into_bytes()
}

/// `-ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> Vec<u8> {
    quoted(
        "ERR unknown subcommand '",
        c_str(sub, 128),
        &format!("'. Try {cmd} HELP."),
    )
}

/// Reply to a command outside the allowed set in RESP2 subscribed mode
/// (`cmd` is the command's full name, lowercase).
pub fn subscribed_context(cmd: &str) -> Vec<u8> {
    format!(
        "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )
    .into_bytes()
}

/// `-ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
pub fn subcommand_syntax(sub: &[u8], cmd: &str) -> Vec<u8> {
    quoted(
        "ERR unknown subcommand or wrong number of arguments for '",
        c_str(sub, 128),
        &format!("'. Try {cmd} HELP."),
    )
}

/// `CONFIG SET` of a parameter ringcast does not know.
pub fn unknown_config(name: &[u8]) -> Vec<u8> {
    quoted(
        "ERR Unknown option or number of arguments for CONFIG SET - '",
        c_str(name, usize::MAX),
        "'",
    )
}

/// `CONFIG SET` refused: the parameter (as typed for a name Redis refuses
/// before reading values, else as Redis names it) and why, in Redis's words.
pub fn config_set_failed(name: &[u8], why: &str) -> Vec<u8> {
    quoted(
        "ERR CONFIG SET failed (possibly related to argument '",
        c_str(name, usize::MAX),
        &format!("') - {why}"),
    )
}

/// `CLIENT SETINFO` with an attribute other than LIB-NAME / LIB-VER.
pub fn unrecognized_option(attr: &[u8]) -> Vec<u8> {
    quoted("ERR Unrecognized option '", c_str(attr, usize::MAX), "'")
}

/// `CLIENT SETINFO` with a value holding spaces or special characters; the
/// attribute is named as the client spelled it.
pub fn attribute_special_chars(attr: &[u8]) -> Vec<u8> {
    quoted(
        "ERR ",
        c_str(attr, usize::MAX),
        " cannot contain spaces, newlines or special characters.",
    )
}

/// `CLIENT LIST TYPE x` / `CLIENT KILL TYPE x` with an unknown type.
pub fn unknown_client_type(kind: &[u8]) -> Vec<u8> {
    quoted("ERR Unknown client type '", c_str(kind, usize::MAX), "'")
}

/// `CLIENT KILL USER x` for a user that does not exist.
pub fn no_such_user(user: &[u8]) -> Vec<u8> {
    quoted("ERR No such user '", c_str(user, usize::MAX), "'")
}

/// `HELLO` with an option it does not know.
pub fn hello_syntax(option: &[u8]) -> Vec<u8> {
    quoted(
        "ERR Syntax error in HELLO option '",
        c_str(option, usize::MAX),
        "'",
    )
}

/// A command that reads or writes keys (or may be replicated, as PUBLISH)
/// sent by a monitor, which Redis marks as a replica.
pub const REPLICA_KEYSPACE: &str = "ERR Replica can't interact with the keyspace";
/// `SLOWLOG GET` with a count below -1 or not a number.
pub const SLOWLOG_COUNT: &str = "ERR count should be greater than or equal to -1";

/// `LATENCY GRAPH` of an event without samples.
pub fn no_latency_samples(event: &[u8]) -> Vec<u8> {
    quoted(
        "ERR No samples available for event '",
        c_str(event, usize::MAX),
        "'",
    )
}

fn quoted(before: &str, echoed: &[u8], after: &str) -> Vec<u8> {
    let mut e = Vec::with_capacity(before.len() + echoed.len() + after.len());
    e.extend_from_slice(before.as_bytes());
    e.extend_from_slice(echoed);
    e.extend_from_slice(after.as_bytes());
    e
}

/// Client bytes as Redis prints them with `%.<max>s`: up to the first NUL
/// (they are C strings to `printf`), at most `max` bytes, otherwise raw.
/// CR and LF are mapped to spaces later, for the whole reply, by
/// `resp::encode::error`.
fn c_str(bytes: &[u8], max: usize) -> &[u8] {
    let end = memchr::memchr(0, bytes).unwrap_or(bytes.len()).min(max);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn unknown_command_lists_the_first_arguments() {
        let args = [Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        assert_eq!(
            unknown_command(b"foo", &args),
            b"ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown_command(b"foo", [b""; 0]),
            b"ERR unknown command 'foo', with args beginning with: "
        );
    }

    #[test]
    fn echoed_bytes_stay_raw_and_stop_at_nul_and_128_bytes() {
        assert_eq!(
            unknown_command(b"f\xffo\0hidden", &[Bytes::from_static(b"x\0y")]),
            b"ERR unknown command 'f\xffo', with args beginning with: 'x' "
        );
        let long = Bytes::from(vec![b'a'; 300]);
        let e = unknown_command(&long, std::slice::from_ref(&long));
        let expected = [
            &b"ERR unknown command '"[..],
            &[b'a'; 128],
            b"', with args beginning with: '",
            &[b'a'; 128],
            b"' ",
        ]
        .concat();
        assert_eq!(e, expected);
    }

    #[test]
    fn unknown_command_stops_listing_once_128_bytes_are_used() {
        let args: Vec<Bytes> = (0..10).map(|_| Bytes::from(vec![b'b'; 60])).collect();
        let e = unknown_command(b"x", &args);
        let listed = &e[b"ERR unknown command 'x', with args beginning with: ".len()..];
        // 60+3, then 60+3 (126 < 128), then 2 bytes of the third: 128 - 126.
        assert_eq!(listed.len(), 63 + 63 + 5);
        assert!(listed.ends_with(b"'bb' "));
    }

    #[test]
    fn subscribed_context_names_the_command() {
        assert_eq!(
            subscribed_context("get"),
            b"ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        );
    }

    #[test]
    fn attribute_errors_name_the_attribute_as_given() {
        assert_eq!(
            attribute_special_chars(b"LIB-NAME"),
            b"ERR LIB-NAME cannot contain spaces, newlines or special characters."
        );
    }
}
