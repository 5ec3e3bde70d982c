//! Every error reply ringcast sends, in one place, so the texts stay
//! byte-identical to Redis 7.2 (clients and test suites match on them).
//!
//! Each function returns the reply text without the leading `-` and trailing
//! CRLF; `resp::encode::error` adds those.

pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const DB_INDEX: &str = "ERR DB index is out of range";
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
pub const TIMEOUT_NOT_FLOAT: &str = "ERR value is not a valid float";
pub const GETKEYS_NO_KEYS: &str = "ERR The command has no key arguments";
pub const GETKEYS_INVALID_COMMAND: &str = "ERR Invalid command specified";

/// `-ERR unknown command '<name>', with args beginning with: '<a>' '<b>' `
pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> String {
    // As Redis: arguments are added while their text is under 128 bytes,
    // each one cut to what is left of those 128.
    let mut listed = String::new();
    for a in args {
        if listed.len() >= 128 {
            break;
        }
        let left = 128 - listed.len();
        listed.push('\'');
        listed.push_str(&sanitize(a, left));
        listed.push_str("' ");
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {listed}",
        sanitize(name, 128)
    )
}

/// `-ERR wrong number of arguments for '<cmd>' command`
pub fn wrong_arity(cmd: &str) -> String {
    format!("ERR wrong number of arguments for '{cmd}' command")
}

/// `-ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        sanitize(sub, 128)
    )
}

/// Reply to a command outside the allowed set in RESP2 subscribed mode.
pub fn subscribed_context(cmd: &[u8]) -> String {
    format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        String::from_utf8_lossy(&cmd.to_ascii_lowercase())
    )
}

/// `-ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
pub fn subcommand_syntax(sub: &[u8], cmd: &str) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        sanitize(sub, 128)
    )
}

/// `CONFIG SET` of a parameter ringcast does not know.
pub fn unknown_config(name: &[u8]) -> String {
    format!(
        "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
        sanitize(name, 128)
    )
}

/// `CONFIG SET` with a value the parameter rejects.
pub fn invalid_config(name: &[u8], value: &[u8], why: &str) -> String {
    format!(
        "ERR CONFIG SET failed (possibly related to argument '{}') - argument couldn't be parsed into {why} - '{}'",
        sanitize(name, 128),
        sanitize(value, 128)
    )
}

/// `CONFIG SET` with a value Redis's apply step refuses (`maxclients` past
/// the open-file limit).
pub fn config_set_failed(name: &[u8], why: &str) -> String {
    format!(
        "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
        sanitize(name, 128)
    )
}

/// Redis prints client-supplied bytes in errors with newlines and other
/// control characters replaced by spaces (so the reply stays one line), and
/// truncated to keep error replies short.
fn sanitize(bytes: &[u8], max: usize) -> String {
    let take = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(take)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
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
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown_command(b"foo", &[]),
            "ERR unknown command 'foo', with args beginning with: "
        );
    }

    #[test]
    fn subscribed_context_names_the_command_in_lowercase() {
        assert_eq!(
            subscribed_context(b"GET"),
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        );
    }
}
