//! Redis glob patterns (`PSUBSCRIBE`, `PUBSUB CHANNELS pattern`), byte-exact.
//!
//! This reproduces the semantics of Redis 7.2's `stringmatchlen` (case
//! sensitive), quirks included, because clients observe them:
//!
//! - `*` matches any run of bytes; runs of `*` act as one. `?` matches one byte.
//! - `[abc]`, `[a-z]` (a reversed range like `[z-a]` is swapped), `[^...]`
//!   negates only when `^` comes first. A `]` right after `[` (or `[^`) closes
//!   the class, so `[]` matches nothing and `[^]` any byte. An unterminated `[`
//!   runs to the end of the pattern. A range's end byte is taken literally, even
//!   `]` or `\` (`[a-]` is the range `]`..`a`, left open). Range bounds compare
//!   as C `char`, which is signed on the x86-64 and 64-bit Linux builds Redis
//!   ships: bytes >= 0x80 sort *below* 0x00 (`[a-\xff]` is 0xff, 0x00..`a`).
//! - `\x` matches `x` literally, also inside a class; a trailing lone `\`
//!   matches a `\`.
//! - The empty string is matched only by the empty pattern (not even by `*`).
//! - Two limits Redis added after CVEs, which make the worst case cheap:
//!   once the part of a pattern after a `*` has failed at every later
//!   position of the string, no earlier `*` retries with a longer run
//!   (CVE-2022-36021: a longer run would only start that part even later); and
//!   a match that would need more than 1000 nested `*` is a non-match
//!   (CVE-2024-31228). Together they bound the work on hostile patterns such as
//!   `*?*?*?...` to roughly (nesting limit) × (string length).
//!
//! The registry indexes patterns by [`literal_prefix`] so that a PUBLISH only
//! runs [`matches()`] against patterns that can match the channel.

/// A match needing more nested `*` than this fails (Redis 7.2's limit).
const MAX_NESTING: u32 = 1000;

/// Redis glob match (case-sensitive), with Redis 7.2's CVE limits.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut exhausted = false;
    match_at(pattern, string, 0, &mut exhausted)
}

/// The literal prefix of a pattern: the bytes before the first `*`, `?`, `[` or `\`.
/// Every string the pattern matches starts with it (used to index patterns).
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Matches `pattern` against `string`, where `nesting` counts the `*` already
/// being backtracked over. `exhausted` is set once the rest of the pattern
/// after some `*` failed at every remaining position; from then on every
/// enclosing `*` gives up instead of trying longer runs.
fn match_at(mut pattern: &[u8], mut string: &[u8], nesting: u32, exhausted: &mut bool) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // Redis walks both only while both have bytes left; the empty string thus
    // only matches the empty pattern.
    while let (Some(&p), Some(&c)) = (pattern.first(), string.first()) {
        let used = match p {
            b'*' => {
                let rest = skip_stars(pattern);
                if rest.is_empty() {
                    return true;
                }
                // `rest` starts with an element that needs a byte, so only
                // non-empty suffixes are worth trying.
                while !string.is_empty() {
                    if match_at(rest, string, nesting + 1, exhausted) {
                        return true;
                    }
                    if *exhausted {
                        return false;
                    }
                    string = &string[1..];
                }
                *exhausted = true;
                return false;
            }
            b'?' => 1,
            b'[' => {
                let (hit, len) = class(&pattern[1..], c);
                if !hit {
                    return false;
                }
                1 + len
            }
            b'\\' if pattern.len() >= 2 => {
                if pattern[1] != c {
                    return false;
                }
                2
            }
            // Includes a trailing lone `\`, which stands for itself.
            _ => {
                if p != c {
                    return false;
                }
                1
            }
        };
        pattern = &pattern[used..];
        string = &string[1..];
        if string.is_empty() {
            pattern = skip_stars(pattern);
        }
    }
    pattern.is_empty() && string.is_empty()
}

fn skip_stars(pattern: &[u8]) -> &[u8] {
    let n = pattern.iter().take_while(|&&b| b == b'*').count();
    &pattern[n..]
}

/// Tests byte `c` against the class whose body starts right after `[`.
/// Returns whether it matched and how many body bytes the class spans
/// (through the closing `]`, or all of `body` when unterminated).
fn class(body: &[u8], c: u8) -> (bool, usize) {
    let negate = body.first() == Some(&b'^');
    let mut i = usize::from(negate);
    let mut hit = false;
    loop {
        let left = body.len() - i;
        if left == 0 {
            break (hit != negate, body.len());
        }
        if left >= 2 && body[i] == b'\\' {
            hit |= body[i + 1] == c;
            i += 2;
        } else if body[i] == b']' {
            break (hit != negate, i + 1);
        } else if left >= 3 && body[i + 1] == b'-' {
            // C `char` is signed where Redis runs; compare the way it does.
            let (a, b) = (body[i] as i8, body[i + 2] as i8);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            hit |= (lo..=hi).contains(&(c as i8));
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every rule of the pattern language, one row each: (pattern, string, matches).
    /// All rows agree with a real redis-server (PSUBSCRIBE the pattern, PUBLISH the string).
    const TABLE: &[(&[u8], &[u8], bool)] = &[
        // literals
        (b"", b"", true),
        (b"", b"a", false),
        (b"abc", b"abc", true),
        (b"abc", b"abd", false),
        (b"abc", b"ab", false),
        (b"ab", b"abc", false),
        (b"ABC", b"abc", false),
        // star
        (b"*", b"anything", true),
        (b"*", b"", false),
        (b"**", b"", false),
        (b"a*", b"a", true),
        (b"a***", b"a", true),
        (b"*a", b"a", true),
        (b"*a", b"ba", true),
        (b"*a", b"ab", false),
        (b"a*b", b"ab", true),
        (b"a*b", b"axxb", true),
        (b"a*b", b"axxbx", false),
        (b"a**b", b"axb", true),
        (b"*a*b*", b"xxaxxbxx", true),
        (b"*a*b*", b"xxbxxaxx", false),
        (b"news.*", b"news.tech", true),
        (b"news.*", b"news.", true),
        (b"news.*", b"news", false),
        (b"*.*.*", b"a.b.c", true),
        (b"*.*.*", b"a.b", false),
        (b"*ab*ab", b"abab", true),
        (b"*ab*ab", b"aabab", true),
        (b"*ab*ab", b"ababa", false),
        // question mark
        (b"?", b"a", true),
        (b"?", b"", false),
        (b"?", b"ab", false),
        (b"a?c", b"abc", true),
        (b"a?c", b"ac", false),
        (b"??*", b"ab", true),
        (b"??*", b"a", false),
        (b"*?", b"a", true),
        (b"*??", b"a", false),
        // classes
        (b"[abc]", b"b", true),
        (b"[abc]", b"d", false),
        (b"[abc]", b"", false),
        (b"h[ae]llo", b"hello", true),
        (b"h[ae]llo", b"hallo", true),
        (b"h[ae]llo", b"hillo", false),
        (b"[a-c]", b"b", true),
        (b"[a-c]", b"d", false),
        (b"[c-a]", b"b", true),
        (b"[c-a]", b"d", false),
        (b"[a-cx-z]", b"y", true),
        (b"[-a]", b"-", true),
        (b"[a-]", b"-", false),
        (b"[a-]", b"]", true),
        (b"[a-]", b"_", true),
        (b"[a-]", b"b", false),
        (b"[a-]x", b"ax", false),
        (b"[a-", b"a", true),
        (b"[a-", b"-", true),
        (b"[a-", b"b", false),
        (b"[a-\\]", b"\\", true),
        (b"[a-\\]", b"]", true),
        // negation
        (b"[^a]", b"b", true),
        (b"[^a]", b"a", false),
        (b"[^a-c]", b"b", false),
        (b"[^a-c]", b"d", true),
        (b"[a^]", b"^", true),
        (b"[a^]", b"b", false),
        (b"[^^]", b"^", false),
        (b"[^-a]", b"-", false),
        // `]` right after `[` closes the class
        (b"[]", b"]", false),
        (b"[]", b"", false),
        (b"[]a]", b"a]", false),
        (b"[^]", b"x", true),
        (b"[^]", b"]", true),
        (b"[^]a", b"xa", true),
        (b"[^]", b"", false),
        // unterminated class runs to the end of the pattern
        (b"[", b"[", false),
        (b"[", b"", false),
        (b"[abc", b"b", true),
        (b"[abc", b"bc", false),
        (b"[^", b"x", true),
        (b"[^", b"", false),
        (b"[^abc", b"x", true),
        (b"[^abc", b"a", false),
        (b"a[b", b"ab", true),
        (b"a[*", b"a*", true),
        (b"a[*", b"ax", false),
        // escapes
        (b"\\*", b"*", true),
        (b"\\*", b"a", false),
        (b"\\?", b"?", true),
        (b"\\?", b"a", false),
        (b"\\[a]", b"[a]", true),
        (b"\\[a]", b"a", false),
        (b"\\a", b"a", true),
        (b"\\\\", b"\\", true),
        (b"a\\", b"a\\", true),
        (b"a\\", b"a", false),
        (b"\\", b"\\", true),
        (b"*\\", b"x\\", true),
        // escapes inside a class
        (b"[\\]]", b"]", true),
        (b"[\\]]", b"\\", false),
        (b"[\\^a]", b"^", true),
        (b"[\\-z]", b"-", true),
        (b"[\\-z]", b"y", false),
        (b"[\\]", b"]", true),
        (b"[\\]", b"\\", false),
        (b"[\\", b"\\", true),
        (b"[a\\", b"\\", true),
        (b"[^\\]]", b"]", false),
        (b"[^\\]]", b"a", true),
        // binary bytes
        (b"a\0b", b"a\0b", true),
        (b"a?b", b"a\0b", true),
        (b"[\0]", b"\0", true),
        (b"*\xff", b"\x80\xff", true),
        (b"[\x80-\xff]", b"\x90", true),
        (b"[\x80-\xff]", b"a", false),
        (b"\xff*", b"\xff\r\n", true),
        // ranges compare as signed chars: 0xff sorts below 'a'
        (b"[a-\xff]", b"\xff", true),
        (b"[a-\xff]", b"\0", true),
        (b"[a-\xff]", b"a", true),
        (b"[a-\xff]", b"b", false),
        (b"[a-\xff]", b"\x90", false),
        (b"[\x7f-\x80]", b"\x7f", true),
        (b"[\x7f-\x80]", b"\x90", true),
        (b"[\x7f-\x80]", b"a", true),
    ];

    #[test]
    fn table_of_pattern_rules_matches_redis() {
        for &(pattern, string, want) in TABLE {
            assert_eq!(
                matches(pattern, string),
                want,
                "pattern {:?} string {:?}",
                pattern.escape_ascii().to_string(),
                string.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn table_agrees_with_reference_matcher() {
        for &(pattern, string, want) in TABLE {
            assert_eq!(
                reference(pattern, string),
                want,
                "reference on {pattern:?} {string:?}"
            );
        }
    }

    #[test]
    fn alternating_star_question_pattern_of_50k_bytes_completes() {
        let pattern = b"*?".repeat(25_000);
        let string = vec![b'a'; 100_000];
        // More than 1000 nested stars would be needed: a non-match.
        assert!(!matches(&pattern, &string));
        let mut string = vec![b'a'; 10_000];
        string.push(b'b');
        let mut pattern = b"*a".repeat(25_000);
        pattern.push(b'c');
        assert!(!matches(&pattern, &string));
    }

    #[test]
    fn star_runs_far_beyond_nesting_limit_still_collapse_to_one() {
        let mut pattern = vec![b'*'; 50_000];
        pattern.push(b'x');
        assert!(matches(&pattern, b"abcx"));
        assert!(!matches(&pattern, b"abcy"));
    }

    #[test]
    fn nesting_up_to_limit_matches_and_beyond_limit_does_not() {
        // Each `*a` nests once; the final `b` is matched at depth n.
        let subject = |n: usize| {
            let mut s = b"a".repeat(n);
            s.push(b'b');
            s
        };
        let pattern = |n: usize| {
            let mut p = b"*a".repeat(n);
            p.push(b'b');
            p
        };
        assert!(matches(&pattern(1000), &subject(1000)));
        assert!(!matches(&pattern(1001), &subject(1001)));
        // A final `*` matches without recursing, so it does not count.
        let mut p = b"*a".repeat(1000);
        p.push(b'*');
        assert!(matches(&p, &subject(1000)));
    }

    #[test]
    fn hostile_star_patterns_against_long_strings_complete() {
        let long = vec![b'a'; 200_000];
        let mut few_stars = b"a*".repeat(30);
        few_stars.push(b'b');
        for pattern in [
            b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".to_vec(),
            few_stars,
            b"*[a-z]".repeat(2000),
            b"*\\a".repeat(2000),
        ] {
            assert!(!matches(&pattern, &long), "{}", pattern.escape_ascii());
        }
        assert!(matches(b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", &long));
    }

    #[test]
    fn literal_prefix_stops_at_first_special_byte() {
        assert_eq!(literal_prefix(b"news.*"), b"news.");
        assert_eq!(literal_prefix(b"news"), b"news");
        assert_eq!(literal_prefix(b""), b"");
        assert_eq!(literal_prefix(b"*"), b"");
        assert_eq!(literal_prefix(b"a?b"), b"a");
        assert_eq!(literal_prefix(b"ab[c]"), b"ab");
        assert_eq!(literal_prefix(b"ab\\*c"), b"ab");
        assert_eq!(literal_prefix(b"a]^-b*"), b"a]^-b");
    }

    // ---- reference matcher: parse once into tokens, then plain DP ----

    #[derive(Debug)]
    enum Token {
        Star,
        AnyByte,
        Byte(u8),
        /// (negated, single bytes, inclusive signed ranges)
        Class(bool, Vec<u8>, Vec<(i8, i8)>),
    }

    fn tokenize(p: &[u8]) -> Vec<Token> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    out.push(Token::Star);
                    i += 1;
                }
                b'?' => {
                    out.push(Token::AnyByte);
                    i += 1;
                }
                b'\\' if i + 1 < p.len() => {
                    out.push(Token::Byte(p[i + 1]));
                    i += 2;
                }
                b'[' => {
                    i += 1;
                    let neg = p.get(i) == Some(&b'^');
                    if neg {
                        i += 1;
                    }
                    let (mut bytes, mut ranges) = (Vec::new(), Vec::new());
                    while i < p.len() {
                        if p[i] == b'\\' && i + 1 < p.len() {
                            bytes.push(p[i + 1]);
                            i += 2;
                        } else if p[i] == b']' {
                            i += 1;
                            break;
                        } else if i + 2 < p.len() && p[i + 1] == b'-' {
                            let (a, b) = (p[i] as i8, p[i + 2] as i8);
                            ranges.push((a.min(b), a.max(b)));
                            i += 3;
                        } else {
                            bytes.push(p[i]);
                            i += 1;
                        }
                    }
                    out.push(Token::Class(neg, bytes, ranges));
                }
                b => {
                    out.push(Token::Byte(b));
                    i += 1;
                }
            }
        }
        out
    }

    fn token_eats(t: &Token, c: u8) -> bool {
        match t {
            Token::Star => unreachable!(),
            Token::AnyByte => true,
            Token::Byte(b) => *b == c,
            Token::Class(neg, bytes, ranges) => {
                let inside = bytes.contains(&c)
                    || ranges
                        .iter()
                        .any(|&(lo, hi)| lo <= c as i8 && c as i8 <= hi);
                inside != *neg
            }
        }
    }

    /// Glob semantics without any pruning: `ok[i][j]` = tokens[i..] match s[j..].
    fn reference(pattern: &[u8], s: &[u8]) -> bool {
        if s.is_empty() {
            return pattern.is_empty();
        }
        let toks = tokenize(pattern);
        let (n, m) = (toks.len(), s.len());
        let mut ok = vec![vec![false; m + 1]; n + 1];
        ok[n][m] = true;
        for i in (0..n).rev() {
            for j in (0..=m).rev() {
                ok[i][j] = match &toks[i] {
                    Token::Star => ok[i + 1][j] || (j < m && ok[i][j + 1]),
                    t => j < m && token_eats(t, s[j]) && ok[i + 1][j + 1],
                };
            }
        }
        ok[0][0]
    }

    fn bytes_from(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
    }

    const PATTERN_BYTES: &[u8] = b"ab*?[]^-\\\xff\x80";
    const STRING_BYTES: &[u8] = b"ab]^-\\\xff\x80*";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn agrees_with_reference_on_small_alphabets(
            pattern in bytes_from(PATTERN_BYTES, 12),
            string in bytes_from(STRING_BYTES, 10),
        ) {
            prop_assert_eq!(matches(&pattern, &string), reference(&pattern, &string));
        }

        #[test]
        fn agrees_with_reference_on_star_heavy_patterns(
            pattern in bytes_from(b"a*b?*", 16),
            string in bytes_from(b"ab", 14),
        ) {
            prop_assert_eq!(matches(&pattern, &string), reference(&pattern, &string));
        }

        #[test]
        fn every_match_starts_with_literal_prefix(
            pattern in bytes_from(b"ab*?[\\", 8),
            string in bytes_from(b"ab", 8),
        ) {
            if matches(&pattern, &string) {
                prop_assert!(string.starts_with(literal_prefix(&pattern)));
            }
        }

        #[test]
        fn pattern_matches_its_literal_prefix_plus_filler(
            prefix in bytes_from(b"abc.:", 6),
            rest in bytes_from(b"ab*?", 6),
            tail in bytes_from(b"ab", 6),
        ) {
            let pattern = [prefix.as_slice(), b"*", rest.as_slice()].concat();
            let string = [prefix.as_slice(), tail.as_slice()].concat();
            prop_assert_eq!(literal_prefix(&pattern), prefix.as_slice());
            if matches(&pattern, &string) {
                prop_assert!(string.starts_with(literal_prefix(&pattern)));
            }
        }
    }
}
