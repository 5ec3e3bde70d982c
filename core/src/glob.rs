//! Glob matching for channel patterns (Redis `stringmatchlen`, case-sensitive).
//!
//! Minimal implementation: `matches` follows Redis's recursive algorithm for
//! `*`, `?`, `[...]` (with `^` negation and `a-z` ranges) and `\` escapes;
//! `literal_prefix` gives the part of a pattern every match must start with.

/// The bytes before the first `*`, `?`, `[` or `\` of `pattern`: every string
/// that `pattern` matches starts with them.
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Whether `s` matches the glob `pattern`.
pub fn matches(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut s) = (pattern, s);
    while let (Some(&pc), Some(&sc)) = (p.first(), s.first()) {
        match pc {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                return (0..s.len()).any(|i| matches(&p[1..], &s[i..]));
            }
            b'?' => {}
            b'[' => {
                p = &p[1..];
                let negate = p.first() == Some(&b'^');
                if negate {
                    p = &p[1..];
                }
                let mut hit = false;
                loop {
                    match p {
                        [b'\\', c, ..] => {
                            hit |= *c == sc;
                            p = &p[2..];
                        }
                        [b']', ..] => break,
                        [] => {
                            // Unterminated class: Redis treats the end as the closing bracket.
                            p = &pattern[pattern.len() - 1..];
                            break;
                        }
                        [a, b'-', z, ..] => {
                            let (lo, hi) = if a <= z { (*a, *z) } else { (*z, *a) };
                            hit |= (lo..=hi).contains(&sc);
                            p = &p[3..];
                        }
                        [c, ..] => {
                            hit |= *c == sc;
                            p = &p[1..];
                        }
                    }
                }
                if hit == negate {
                    return false;
                }
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if p[0] != sc {
                    return false;
                }
            }
            _ => {
                if pc != sc {
                    return false;
                }
            }
        }
        p = &p[1..];
        s = &s[1..];
    }
    if s.is_empty() {
        while p.first() == Some(&b'*') {
            p = &p[1..];
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_basic_globs() {
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"a\\*", b"a*"));
        assert!(!matches(b"a\\*", b"ab"));
        assert!(matches(b"a*", b"a"));
        assert!(!matches(b"*a", b""));
        assert!(!matches(b"abc", b"abcd"));
    }

    #[test]
    fn literal_prefix_stops_at_first_special_byte() {
        assert_eq!(literal_prefix(b"news.*"), b"news.");
        assert_eq!(literal_prefix(b"a\\*"), b"a");
        assert_eq!(literal_prefix(b"plain"), b"plain");
        assert_eq!(literal_prefix(b"[x]"), b"");
    }
}
