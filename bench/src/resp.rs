//! RESP2/RESP3 reading and writing, by hand, on caller-owned buffers.
//!
//! The load generator parses millions of push frames per second straight out of
//! one large read buffer per connection. A client library would allocate per
//! message and hide the exact bytes, so this module does the little it needs
//! itself: [`parse_frame`] borrows every element from the buffer (no allocation),
//! [`skip_value`] steps over any reply (HELLO maps, nested arrays) during setup,
//! and [`write_command`] appends a command in RESP array form.

use std::fmt;

/// Most elements a frame parsed by [`parse_frame`] can carry. Pub/sub frames
/// have at most four (`pmessage`, pattern, channel, payload).
pub const MAX_ELEMS: usize = 4;

/// One element of a frame, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    /// `$n` bulk string (also RESP3 verbatim strings are not expected here).
    Bulk(&'a [u8]),
    /// `:n` integer.
    Int(i64),
    /// `+text` simple string.
    Simple(&'a [u8]),
    /// `-text` error.
    Error(&'a [u8]),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
}

/// A top-level reply or push: either one scalar, or a flat aggregate of scalars.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// True for `*` arrays and `>` pushes; false for a lone scalar.
    pub aggregate: bool,
    /// True when the frame came as a RESP3 push (`>`).
    pub push: bool,
    /// Number of valid entries in `elems`.
    pub len: usize,
    pub elems: [Elem<'a>; MAX_ELEMS],
}

impl<'a> Frame<'a> {
    /// The valid elements.
    pub fn elems(&self) -> &[Elem<'a>] {
        &self.elems[..self.len]
    }
}

/// The peer sent bytes this module cannot read; the connection is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn err<T>(what: &str, buf: &[u8], at: usize) -> Result<T, ProtocolError> {
    let end = (at + 32).min(buf.len());
    Err(ProtocolError(format!(
        "{what} near {:?}",
        String::from_utf8_lossy(&buf[at.min(end)..end])
    )))
}

/// Reads a signed decimal terminated by CRLF starting at `pos`.
/// Returns `Ok(None)` when the line is not complete yet.
#[inline]
fn read_int(buf: &[u8], mut pos: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
    let start = pos;
    let neg = buf.get(pos) == Some(&b'-');
    if neg {
        pos += 1;
    }
    let mut v: i64 = 0;
    loop {
        let Some(&b) = buf.get(pos) else {
            return Ok(None);
        };
        match b {
            b'0'..=b'9' => {
                v = match v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add((b - b'0') as i64))
                {
                    Some(v) => v,
                    None => return err("integer overflow", buf, start),
                };
                pos += 1;
            }
            b'\r' => {
                let Some(&lf) = buf.get(pos + 1) else {
                    return Ok(None);
                };
                if lf != b'\n' || pos == start || (neg && pos == start + 1) {
                    return err("bad integer line", buf, start);
                }
                return Ok(Some((if neg { -v } else { v }, pos + 2)));
            }
            _ => return err("bad integer", buf, start),
        }
    }
}

/// Reads a text line (simple string / error body) starting at `pos`.
#[inline]
fn read_line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let Some(rest) = buf.get(pos..) else {
        return Ok(None);
    };
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((&rest[..cr], pos + cr + 2))),
        Some(_) => err("bare CR in line", buf, pos),
    }
}

/// Parses one scalar element at `pos`. `Ok(None)` means "need more bytes".
#[inline]
fn parse_elem(buf: &[u8], pos: usize) -> Result<Option<(Elem<'_>, usize)>, ProtocolError> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    match tag {
        b'$' => {
            let Some((n, body)) = read_int(buf, pos + 1)? else {
                return Ok(None);
            };
            if n < 0 {
                return Ok(Some((Elem::Null, body)));
            }
            let n = n as usize;
            let end = body + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return err("bulk string not terminated by CRLF", buf, end);
            }
            Ok(Some((Elem::Bulk(&buf[body..end]), end + 2)))
        }
        b':' => Ok(read_int(buf, pos + 1)?.map(|(v, next)| (Elem::Int(v), next))),
        b'+' => Ok(read_line(buf, pos + 1)?.map(|(s, next)| (Elem::Simple(s), next))),
        b'-' => Ok(read_line(buf, pos + 1)?.map(|(s, next)| (Elem::Error(s), next))),
        b'_' => {
            if buf.len() < pos + 3 {
                return Ok(None);
            }
            if &buf[pos + 1..pos + 3] != b"\r\n" {
                return err("bad null", buf, pos);
            }
            Ok(Some((Elem::Null, pos + 3)))
        }
        _ => err("unexpected type byte", buf, pos),
    }
}

/// Parses one complete top-level frame from the start of `buf`.
///
/// Returns the frame and the number of bytes it used, or `Ok(None)` when `buf`
/// holds only part of a frame. Aggregates must be flat with at most
/// [`MAX_ELEMS`] elements: that covers every pub/sub push and reply the
/// generator reads on its hot path.
#[inline]
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, ProtocolError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let mut frame = Frame {
        aggregate: false,
        push: false,
        len: 0,
        elems: [Elem::Null; MAX_ELEMS],
    };
    if tag == b'*' || tag == b'>' {
        let Some((n, mut pos)) = read_int(buf, 1)? else {
            return Ok(None);
        };
        frame.aggregate = true;
        frame.push = tag == b'>';
        if n < 0 {
            return Ok(Some((frame, pos)));
        }
        let n = n as usize;
        if n > MAX_ELEMS {
            return err("aggregate larger than expected", buf, 0);
        }
        for i in 0..n {
            let Some((e, next)) = parse_elem(buf, pos)? else {
                return Ok(None);
            };
            frame.elems[i] = e;
            pos = next;
        }
        frame.len = n;
        Ok(Some((frame, pos)))
    } else {
        let Some((e, next)) = parse_elem(buf, 0)? else {
            return Ok(None);
        };
        frame.elems[0] = e;
        frame.len = 1;
        Ok(Some((frame, next)))
    }
}

/// Reads `$<len>\r\n<bytes>\r\n` at `pos` on the fast path: lengths of at
/// most 9 digits, no sign. `None` means "not this simple shape, or
/// incomplete" and the caller falls back to [`parse_frame`].
#[inline(always)]
fn fast_bulk(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if *buf.get(pos)? != b'$' {
        return None;
    }
    let mut i = pos + 1;
    let mut len = 0usize;
    loop {
        let b = *buf.get(i)?;
        if b.is_ascii_digit() {
            len = len * 10 + (b - b'0') as usize;
            i += 1;
            if i - pos > 10 {
                return None;
            }
        } else {
            break;
        }
    }
    if i == pos + 1 || buf.get(i..i + 2)? != b"\r\n" {
        return None;
    }
    let start = i + 2;
    let end = start + len;
    if buf.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    Some((&buf[start..end], end + 2))
}

/// The exact bytes a pub/sub message frame starts with, so the hot path can
/// recognise it with one comparison: e.g. `*3\r\n$7\r\nmessage\r\n`, or with
/// `>` for RESP3 pushes.
pub fn message_head(push: bool, kind: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.push(if push { b'>' } else { b'*' });
    v.push(if kind == b"pmessage" { b'4' } else { b'3' });
    v.extend_from_slice(b"\r\n");
    write_bulk_header(&mut v, kind.len());
    v.extend_from_slice(kind);
    v.extend_from_slice(b"\r\n");
    v
}

/// Fast path for the frame that dominates a subscriber's input: a message
/// starting with `head` (see [`message_head`]), with a pattern element first
/// when `with_pattern`. Returns (channel, payload, bytes used), or `None`
/// when the bytes are anything else or incomplete — then use [`parse_frame`].
#[inline(always)]
pub fn parse_message<'a>(
    buf: &'a [u8],
    head: &[u8],
    with_pattern: bool,
) -> Option<(&'a [u8], &'a [u8], usize)> {
    if !buf.starts_with(head) {
        return None;
    }
    let mut pos = head.len();
    if with_pattern {
        pos = fast_bulk(buf, pos)?.1;
    }
    let (channel, pos) = fast_bulk(buf, pos)?;
    let (payload, pos) = fast_bulk(buf, pos)?;
    Some((channel, payload, pos))
}

/// Skips one complete value of any RESP2/RESP3 type starting at `pos`, nested
/// aggregates included. Returns the position after it, or `Ok(None)` when
/// incomplete. Used for setup replies (HELLO's map) that the hot path never sees.
pub fn skip_value(buf: &[u8], pos: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    match tag {
        b'*' | b'>' | b'~' | b'%' | b'|' => {
            let Some((n, mut p)) = read_int(buf, pos + 1)? else {
                return Ok(None);
            };
            if n < 0 {
                return Ok(Some(p));
            }
            let count = if tag == b'%' || tag == b'|' { 2 * n } else { n };
            for _ in 0..count {
                match skip_value(buf, p)? {
                    Some(next) => p = next,
                    None => return Ok(None),
                }
            }
            Ok(Some(p))
        }
        b'$' | b'=' | b'!' => {
            let Some((n, body)) = read_int(buf, pos + 1)? else {
                return Ok(None);
            };
            if n < 0 {
                return Ok(Some(body));
            }
            let end = body + n as usize + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {
            Ok(read_line(buf, pos + 1)?.map(|(_, n)| n))
        }
        _ => err("unexpected type byte", buf, pos),
    }
}

/// Parses one command (an array of bulk strings) from the start of `buf`,
/// as a server reads it: `args` receives the byte range of every argument.
/// Returns the bytes used, or `Ok(None)` when the command is incomplete.
/// Used by the floor relay, which must read any SUBSCRIBE the tool sends.
pub fn parse_command(
    buf: &[u8],
    args: &mut Vec<std::ops::Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    args.clear();
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    if tag != b'*' {
        return err("expected a command array", buf, 0);
    }
    let Some((n, mut pos)) = read_int(buf, 1)? else {
        return Ok(None);
    };
    for _ in 0..n.max(0) {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return err("expected a bulk string argument", buf, pos);
        }
        let Some((len, body)) = read_int(buf, pos + 1)? else {
            return Ok(None);
        };
        let Ok(len) = usize::try_from(len) else {
            return err("negative argument length", buf, pos);
        };
        let end = body + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return err("argument not terminated by CRLF", buf, end);
        }
        args.push(body..end);
        pos = end + 2;
    }
    Ok(Some(pos))
}

/// Appends `args` as one RESP command (array of bulk strings).
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    push_int(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        write_bulk_header(out, a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `$len\r\n`.
#[inline]
pub fn write_bulk_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'$');
    push_int(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends a decimal number without allocating.
#[inline]
pub fn push_int(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Human text for an element, for error messages.
pub fn describe(e: &Elem<'_>) -> String {
    match e {
        Elem::Bulk(b) | Elem::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Elem::Error(b) => format!("-{}", String::from_utf8_lossy(b)),
        Elem::Int(v) => v.to_string(),
        Elem::Null => "(nil)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resp2_message_and_reports_consumed_length() {
        let buf = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\nrest";
        let (f, used) = parse_frame(buf).unwrap().unwrap();
        assert_eq!(used, buf.len() - 4);
        assert!(f.aggregate && !f.push);
        assert_eq!(
            f.elems(),
            &[
                Elem::Bulk(b"message"),
                Elem::Bulk(b"ch"),
                Elem::Bulk(b"hello")
            ]
        );
    }

    #[test]
    fn parses_resp3_push_with_integer() {
        let buf = b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n";
        let (f, used) = parse_frame(buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert!(f.push);
        assert_eq!(f.elems()[2], Elem::Int(1));
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let buf = b"*4\r\n$8\r\npmessage\r\n$3\r\na:*\r\n$3\r\na:b\r\n$4\r\n\r\nxy\r\n";
        for cut in 0..buf.len() {
            assert!(parse_frame(&buf[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (f, _) = parse_frame(buf).unwrap().unwrap();
        // The payload may itself contain CRLF: lengths, not delimiters, decide.
        assert_eq!(f.elems()[3], Elem::Bulk(b"\r\nxy"));
    }

    #[test]
    fn scalar_replies_parse() {
        assert_eq!(
            parse_frame(b":42\r\n").unwrap().unwrap().0.elems()[0],
            Elem::Int(42)
        );
        assert_eq!(
            parse_frame(b"-ERR x\r\n").unwrap().unwrap().0.elems()[0],
            Elem::Error(b"ERR x")
        );
        assert_eq!(
            parse_frame(b"_\r\n").unwrap().unwrap().0.elems()[0],
            Elem::Null
        );
        assert_eq!(
            parse_frame(b"$-1\r\n").unwrap().unwrap().0.elems()[0],
            Elem::Null
        );
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(parse_frame(b"?x\r\n").is_err());
        assert!(parse_frame(b"*1\r\n$1\r\nabX\n").is_err());
        assert!(parse_frame(b":1x\r\n").is_err());
    }

    #[test]
    fn skip_value_steps_over_nested_hello_map() {
        let buf = b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nmodules\r\n*0\r\n+OK\r\n";
        let end = skip_value(buf, 0).unwrap().unwrap();
        assert_eq!(&buf[end..], b"+OK\r\n");
        for cut in 0..end {
            assert!(skip_value(&buf[..cut], 0).unwrap().is_none());
        }
    }

    #[test]
    fn write_command_round_trips_through_parser() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"PUBLISH", b"ch", b"x"]);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nx\r\n");
        let (f, used) = parse_frame(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(f.len, 3);
    }

    #[test]
    fn commands_parse_with_any_argument_count_and_need_every_byte() {
        let mut cmd = Vec::new();
        write_command(&mut cmd, &[b"SUBSCRIBE", b"a", b"bb", b"c", b"d", b"e"]);
        write_command(&mut cmd, &[b"PING"]);
        let mut args = Vec::new();
        let used = parse_command(&cmd, &mut args).unwrap().unwrap();
        let words: Vec<&[u8]> = args.iter().map(|r| &cmd[r.clone()]).collect();
        assert_eq!(words, [&b"SUBSCRIBE"[..], b"a", b"bb", b"c", b"d", b"e"]);
        for cut in 0..used {
            assert!(parse_command(&cmd[..cut], &mut args).unwrap().is_none());
        }
        assert_eq!(parse_command(&cmd[used..], &mut args).unwrap(), Some(14));
        assert!(parse_command(b"+OK\r\n", &mut args).is_err());
    }

    #[test]
    fn fast_message_path_agrees_with_the_general_parser() {
        let frames: [(&[u8], bool, &[u8]); 3] = [
            (
                b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\no\r\n",
                false,
                b"message",
            ),
            (
                b">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$0\r\n\r\n",
                true,
                b"smessage",
            ),
            (
                b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$2\r\nch\r\n$3\r\nabc\r\n",
                false,
                b"pmessage",
            ),
        ];
        for (buf, push, kind) in frames {
            let head = message_head(push, kind);
            let pat = kind == b"pmessage";
            let (ch, payload, used) = parse_message(buf, &head, pat).unwrap();
            let (f, used2) = parse_frame(buf).unwrap().unwrap();
            assert_eq!(used, used2);
            assert_eq!(f.elems()[f.len - 2], Elem::Bulk(ch));
            assert_eq!(f.elems()[f.len - 1], Elem::Bulk(payload));
            for cut in 0..buf.len() {
                assert!(parse_message(&buf[..cut], &head, pat).is_none());
            }
        }
        // Anything else is left to the general parser.
        let head = message_head(false, b"message");
        assert!(
            parse_message(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", &head, false).is_none()
        );
        assert!(parse_message(b"*3\r\n$7\r\nmessage\r\n$-1\r\n", &head, false).is_none());
    }
}
