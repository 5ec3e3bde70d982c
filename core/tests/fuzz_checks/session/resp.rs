//! What a client reads: a strict parser of one RESP2 or RESP3 reply frame,
//! and the encoder of the frames the model expects.
//!
//! The parser accepts only what a Redis server sends: lengths that match,
//! `\r\n` after every line and payload, integers written canonically, no
//! line break inside a simple string or error, pushes only at top level, and
//! on a RESP2 connection only RESP2 types.

/// One parsed reply frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    /// `$-1` (RESP2) is `Bulk(None)`.
    Bulk(Option<Vec<u8>>),
    /// `*-1` (RESP2) is `Array(None)`.
    Array(Option<Vec<Frame>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `#`, `,`, `(`, `!`, `=`: kept as their text.
    Scalar(u8, Vec<u8>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
}

impl Frame {
    /// The elements of an array or push.
    pub(crate) fn elements(&self) -> Option<&[Frame]> {
        match self {
            Frame::Array(Some(items)) | Frame::Push(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn bulk(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }
}

/// Deepest nesting accepted (ringcast's deepest reply is `COMMAND DOCS`).
const MAX_DEPTH: usize = 16;

/// Parses the frame at the front of `buf`: `Ok(Some((frame, length)))`,
/// `Ok(None)` when `buf` ends before the frame does, `Err` when the bytes are
/// not a frame a server may send. Which protocol it is in is checked
/// apart ([`speaks`]): a connection may switch between the two.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let mut at = 0;
    match parse_at(buf, &mut at, 0) {
        Ok(frame) => Ok(Some((frame, at))),
        Err(Bad::Short) => Ok(None),
        Err(Bad::Invalid(why)) => Err(why),
    }
}

enum Bad {
    Short,
    Invalid(String),
}

fn invalid<T>(why: impl Into<String>) -> Result<T, Bad> {
    Err(Bad::Invalid(why.into()))
}

/// The line at `*at` up to `\r\n` (which is consumed); it may hold neither
/// `\r` nor `\n`.
fn line<'a>(buf: &'a [u8], at: &mut usize) -> Result<&'a [u8], Bad> {
    let rest = &buf[*at..];
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return match rest.iter().position(|&b| b == b'\r') {
            Some(cr) if cr + 1 < rest.len() => invalid("a '\\r' inside a line"),
            _ => Err(Bad::Short),
        };
    };
    if end == 0 || rest[end - 1] != b'\r' {
        return invalid("a line ending in '\\n' without '\\r'");
    }
    let text = &rest[..end - 1];
    if text.contains(&b'\r') {
        return invalid("a '\\r' inside a line");
    }
    *at += end + 1;
    Ok(text)
}

/// An integer as Redis writes it: optional `-`, no leading zero, no `-0`.
fn integer(text: &[u8]) -> Result<i64, Bad> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits == b"0" || digits[0] != b'0')
        && text != b"-0";
    match std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()) {
        Some(n) if canonical => Ok(n),
        _ => invalid(format!(
            "{:?} is not an integer",
            text.escape_ascii().to_string()
        )),
    }
}

/// A length: a canonical integer ≥ 0, or -1 where `null` allows it.
fn length(text: &[u8], null: bool) -> Result<Option<usize>, Bad> {
    match integer(text)? {
        -1 if null => Ok(None),
        n => match usize::try_from(n) {
            Ok(n) => Ok(Some(n)),
            Err(_) => invalid(format!("length {n}")),
        },
    }
}

/// `len` bytes then `\r\n`.
fn payload<'a>(buf: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], Bad> {
    let rest = &buf[*at..];
    if rest.len() < len.saturating_add(2) {
        return Err(Bad::Short);
    }
    if &rest[len..len + 2] != b"\r\n" {
        return invalid("a payload not followed by \\r\\n");
    }
    *at += len + 2;
    Ok(&rest[..len])
}

fn parse_at(buf: &[u8], at: &mut usize, depth: usize) -> Result<Frame, Bad> {
    if depth > MAX_DEPTH {
        return invalid("nested too deep");
    }
    let Some(&kind) = buf.get(*at) else {
        return Err(Bad::Short);
    };
    *at += 1;
    let text = line(buf, at)?;
    let items = |n: usize, at: &mut usize| -> Result<Vec<Frame>, Bad> {
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(parse_at(buf, at, depth + 1)?);
        }
        Ok(items)
    };
    match kind {
        b'+' => Ok(Frame::Simple(text.to_vec())),
        b'-' => Ok(Frame::Error(text.to_vec())),
        b':' => Ok(Frame::Integer(integer(text)?)),
        b'$' => match length(text, true)? {
            None => Ok(Frame::Bulk(None)),
            Some(n) => Ok(Frame::Bulk(Some(payload(buf, at, n)?.to_vec()))),
        },
        b'*' => match length(text, true)? {
            None => Ok(Frame::Array(None)),
            Some(n) => Ok(Frame::Array(Some(items(n, at)?))),
        },
        b'_' if text.is_empty() => Ok(Frame::Null),
        b'#' if text == b"t" || text == b"f" => Ok(Frame::Scalar(kind, text.to_vec())),
        b',' | b'(' if !text.is_empty() => Ok(Frame::Scalar(kind, text.to_vec())),
        b'!' | b'=' => {
            let n = length(text, false)?.unwrap_or(0);
            let body = payload(buf, at, n)?;
            if kind == b'=' && (body.len() < 4 || body[3] != b':') {
                return invalid("a verbatim string without its format");
            }
            Ok(Frame::Scalar(kind, body.to_vec()))
        }
        b'%' => {
            let n = length(text, false)?.unwrap_or(0);
            let flat = items(n.saturating_mul(2), at)?;
            let mut pairs = Vec::new();
            let mut flat = flat.into_iter();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((k, v));
            }
            Ok(Frame::Map(pairs))
        }
        b'~' => Ok(Frame::Set(items(length(text, false)?.unwrap_or(0), at)?)),
        b'>' if depth == 0 => Ok(Frame::Push(items(length(text, false)?.unwrap_or(0), at)?)),
        _ => invalid(format!(
            "no frame starts with {:?}",
            [&[kind][..], text].concat().escape_ascii().to_string()
        )),
    }
}

/// Whether `frame` uses only the types of RESP `proto`: RESP2 has none of
/// RESP3's, RESP3 writes its nulls as `_`.
pub(crate) fn speaks(frame: &Frame, proto: u8) -> Result<(), String> {
    let own = match frame {
        Frame::Bulk(None) | Frame::Array(None) => proto == 2,
        Frame::Null | Frame::Scalar(..) | Frame::Map(_) | Frame::Set(_) | Frame::Push(_) => {
            proto == 3
        }
        _ => true,
    };
    if !own {
        return Err(format!("{frame:?} on a connection speaking RESP{proto}"));
    }
    let children: Vec<&Frame> = match frame {
        Frame::Array(Some(items)) | Frame::Set(items) | Frame::Push(items) => {
            items.iter().collect()
        }
        Frame::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    children.into_iter().try_for_each(|f| speaks(f, proto))
}

/// Encoder of the frames the model expects, written independently of
/// ringcast's own encoder.
pub(crate) struct Out(pub(crate) Vec<u8>);

impl Out {
    pub(crate) fn new() -> Self {
        Out(Vec::new())
    }

    fn header(&mut self, kind: u8, n: usize) -> &mut Self {
        self.0.push(kind);
        self.0.extend_from_slice(n.to_string().as_bytes());
        self.0.extend_from_slice(b"\r\n");
        self
    }

    /// A push of `n` elements: `>` in RESP3, `*` in RESP2.
    pub(crate) fn push(&mut self, n: usize, proto: u8) -> &mut Self {
        self.header(if proto == 3 { b'>' } else { b'*' }, n)
    }

    pub(crate) fn array(&mut self, n: usize) -> &mut Self {
        self.header(b'*', n)
    }

    /// A map of `n` pairs: `%` in RESP3, a flat array in RESP2.
    pub(crate) fn map(&mut self, n: usize, proto: u8) -> &mut Self {
        if proto == 3 {
            self.header(b'%', n)
        } else {
            self.header(b'*', 2 * n)
        }
    }

    pub(crate) fn bulk(&mut self, data: &[u8]) -> &mut Self {
        self.header(b'$', data.len());
        self.0.extend_from_slice(data);
        self.0.extend_from_slice(b"\r\n");
        self
    }

    /// A null bulk: `$-1` in RESP2, `_` in RESP3.
    pub(crate) fn null(&mut self, proto: u8) -> &mut Self {
        self.0
            .extend_from_slice(if proto == 3 { b"_\r\n" } else { b"$-1\r\n" });
        self
    }

    pub(crate) fn integer(&mut self, n: i64) -> &mut Self {
        self.0.push(b':');
        self.0.extend_from_slice(n.to_string().as_bytes());
        self.0.extend_from_slice(b"\r\n");
        self
    }

    pub(crate) fn simple(&mut self, text: &[u8]) -> &mut Self {
        self.0.push(b'+');
        self.0.extend_from_slice(text);
        self.0.extend_from_slice(b"\r\n");
        self
    }

    pub(crate) fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_redis_sends_and_rejects_the_rest() {
        let ok = |bytes: &[u8], proto| match parse(bytes) {
            Ok(Some((frame, n))) => n == bytes.len() && speaks(&frame, proto).is_ok(),
            _ => false,
        };
        assert!(ok(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$0\r\n\r\n", 2));
        assert!(ok(b">3\r\n$9\r\nsubscribe\r\n_\r\n:0\r\n", 3));
        assert!(ok(b"%1\r\n$1\r\na\r\n*0\r\n", 3));
        assert!(ok(b"=8\r\ntxt:abcd\r\n", 3));
        assert!(!ok(b"_\r\n", 2));
        assert!(!ok(b":01\r\n", 2));
        assert!(!ok(b"$2\r\nabc\r\n", 2));
        assert!(!ok(b"+a\rb\r\n", 2));
        assert!(matches!(parse(b"$5\r\nab"), Ok(None)));
    }
}
