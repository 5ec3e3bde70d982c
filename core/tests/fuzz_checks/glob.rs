//! Redis glob patterns (`glob::matches`, `glob::literal_prefix`).
//!
//! A fuzz input is a separator byte, then the pattern up to the next
//! separator, then the string (the rest; empty when no separator follows).
//! So `|news.*|news.tech` is the pattern `news.*` against `news.tech`.
//!
//! Properties, for the string and two strings made from the input (the
//! pattern itself, and the pattern's literal prefix followed by the string):
//!
//! 1. `matches` does not panic and finishes (libFuzzer's `-timeout` catches a
//!    run that takes too long: the matcher's work is bounded by about
//!    pattern length × string length).
//! 2. On inputs short enough for it to be cheap, `matches` agrees with
//!    [`stringmatchlen`] below, a line-for-line port of Redis's.
//! 3. `literal_prefix(p)` is a prefix of `p` and of every string `p` matches.

use ringcast_core::glob::{literal_prefix, matches};

/// Longest pattern and string the reference matcher is run on.
const REFERENCE_MAX: usize = 256;

/// Checks one fuzz input; panics naming the property that fails.
pub(crate) fn check(data: &[u8]) {
    let Some((&separator, rest)) = data.split_first() else {
        return;
    };
    let (pattern, string) = match rest.iter().position(|&b| b == separator) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b""[..]),
    };
    let prefix = literal_prefix(pattern);
    assert!(
        pattern.starts_with(prefix),
        "literal prefix {:?} of {:?} is not a prefix of it",
        prefix.escape_ascii().to_string(),
        pattern.escape_ascii().to_string()
    );
    let prefixed = [prefix, string].concat();
    for string in [string, pattern, &prefixed] {
        check_one(pattern, string);
    }
}

fn check_one(pattern: &[u8], string: &[u8]) {
    let shown = || {
        format!(
            "pattern {:?} string {:?}",
            pattern.escape_ascii().to_string(),
            string.escape_ascii().to_string()
        )
    };
    let matched = matches(pattern, string);
    if pattern.len() <= REFERENCE_MAX && string.len() <= REFERENCE_MAX {
        assert_eq!(
            matched,
            stringmatchlen(pattern, string),
            "differs from Redis's stringmatchlen: {}",
            shown()
        );
    }
    if matched {
        assert!(
            string.starts_with(literal_prefix(pattern)),
            "matched a string without the literal prefix {:?}: {}",
            literal_prefix(pattern).escape_ascii().to_string(),
            shown()
        );
    }
}

/// Redis's `stringmatchlen(pattern, plen, string, slen, nocase = 0)`.
pub(crate) fn stringmatchlen(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer_matches = false;
    let (p, s) = (Cursor::new(pattern), Cursor::new(string));
    stringmatchlen_impl(p, s, &mut skip_longer_matches, 0)
}

/// A `const char *` with the length left after it, as Redis walks them.
/// Bytes past the end read as NUL, like the terminator of the strings Redis
/// passes. A byte reads as a C `char` widened to `int`: signed, as on the
/// x86-64 Linux builds Redis ships, which is how class ranges compare.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    len: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor {
            bytes,
            at: 0,
            len: bytes.len(),
        }
    }

    /// `ptr[i]` as a C `char` widened to `int`.
    fn get(&self, i: usize) -> i32 {
        i32::from(self.bytes.get(self.at + i).copied().unwrap_or(0) as i8)
    }

    /// `ptr++; len--;`
    fn step(&mut self) {
        self.at += 1;
        self.len -= 1;
    }

    /// `ptr--; len++;`
    fn back(&mut self) {
        self.at -= 1;
        self.len += 1;
    }
}

fn ch(byte: u8) -> i32 {
    i32::from(byte as i8)
}

/// `stringmatchlen_impl` from Redis 7.2's `util.c`, statement for statement,
/// with `nocase` = 0 and the nesting limit that Redis added in 7.2.6
/// (CVE-2024-31228) and ringcast follows. Inputs of [`REFERENCE_MAX`] bytes
/// never reach that limit.
fn stringmatchlen_impl(
    mut pattern: Cursor,
    mut string: Cursor,
    skip_longer_matches: &mut bool,
    nesting: u32,
) -> bool {
    if nesting > 1000 {
        return false;
    }
    while pattern.len != 0 && string.len != 0 {
        match pattern.get(0) {
            c if c == ch(b'*') => {
                while pattern.len != 0 && pattern.get(1) == ch(b'*') {
                    pattern.step();
                }
                if pattern.len == 1 {
                    return true;
                }
                while string.len != 0 {
                    let mut rest = pattern;
                    rest.step();
                    if stringmatchlen_impl(rest, string, skip_longer_matches, nesting + 1) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    string.step();
                }
                *skip_longer_matches = true;
                return false;
            }
            c if c == ch(b'?') => string.step(),
            c if c == ch(b'[') => {
                pattern.step();
                let not = pattern.get(0) == ch(b'^');
                if not {
                    pattern.step();
                }
                let mut matched = false;
                loop {
                    if pattern.get(0) == ch(b'\\') && pattern.len >= 2 {
                        pattern.step();
                        if pattern.get(0) == string.get(0) {
                            matched = true;
                        }
                    } else if pattern.get(0) == ch(b']') {
                        break;
                    } else if pattern.len == 0 {
                        pattern.back();
                        break;
                    } else if pattern.len >= 3 && pattern.get(1) == ch(b'-') {
                        let mut start = pattern.get(0);
                        let mut end = pattern.get(2);
                        let c = string.get(0);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        pattern.step();
                        pattern.step();
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if pattern.get(0) == string.get(0) {
                        matched = true;
                    }
                    pattern.step();
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                string.step();
            }
            c => {
                if c == ch(b'\\') && pattern.len >= 2 {
                    pattern.step();
                }
                if pattern.get(0) != string.get(0) {
                    return false;
                }
                string.step();
            }
        }
        pattern.step();
        if string.len == 0 {
            while pattern.get(0) == ch(b'*') {
                pattern.step();
            }
            break;
        }
    }
    pattern.len == 0 && string.len == 0
}
