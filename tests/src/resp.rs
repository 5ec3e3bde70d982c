//! A small RESP2/RESP3 reader and the encoders the tests use to spell out the
//! exact bytes Redis sends.
//!
//! Hand-written rather than taken from the `redis` crate on purpose: the tests
//! must see frames exactly as they came off the wire (`*3` versus `>3`,
//! `$-1` versus `_`), which a client library normalises away.

/// Protocol version a connection speaks after (or without) `HELLO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Resp2,
    Resp3,
}

impl Proto {
    /// Both versions, for tests that check one behaviour in each.
    pub const BOTH: [Proto; 2] = [Proto::Resp2, Proto::Resp3];
}

/// One RESP value as received.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` (RESP2) or `_` (RESP3).
    Null,
    Array(Vec<Frame>),
    /// RESP3 out-of-band push (`>`).
    Push(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Double(Vec<u8>),
    Boolean(bool),
    BigNumber(Vec<u8>),
    Verbatim(Vec<u8>),
}

impl Frame {
    /// The bytes of a bulk or simple string.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(b) => Some(b),
            _ => None,
        }
    }

    /// A bulk or simple string as text (lossy), for introspection replies.
    pub fn text(&self) -> String {
        match self.bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => panic!("expected a string frame, got {self:?}"),
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            Frame::Integer(n) => *n,
            _ => panic!("expected an integer frame, got {self:?}"),
        }
    }

    /// Elements of an array, set or push.
    pub fn items(&self) -> &[Frame] {
        match self {
            Frame::Array(v) | Frame::Push(v) | Frame::Set(v) => v,
            _ => panic!("expected an aggregate frame, got {self:?}"),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// A pub/sub frame split into its kind (`message`, `subscribe`...) and
    /// the remaining elements; accepts the RESP2 array and the RESP3 push form.
    pub fn pubsub(&self) -> Option<(&[u8], &[Frame])> {
        let items = match self {
            Frame::Array(v) | Frame::Push(v) => v,
            _ => return None,
        };
        let (kind, rest) = items.split_first()?;
        Some((kind.bytes()?, rest))
    }

    /// `(channel, payload)` of a `message` (or `smessage`) frame.
    pub fn message(&self) -> Option<(&[u8], &[u8])> {
        match self.pubsub()? {
            (b"message" | b"smessage", [ch, payload]) => Some((ch.bytes()?, payload.bytes()?)),
            _ => None,
        }
    }

    /// `(pattern, channel, payload)` of a `pmessage` frame.
    pub fn pmessage(&self) -> Option<(&[u8], &[u8], &[u8])> {
        match self.pubsub()? {
            (b"pmessage", [pat, ch, payload]) => {
                Some((pat.bytes()?, ch.bytes()?, payload.bytes()?))
            }
            _ => None,
        }
    }
}

/// Outcome of trying to parse one frame from the front of a buffer.
#[derive(Debug)]
pub enum Parsed {
    /// A whole frame and the number of bytes it used.
    Frame(Frame, usize),
    /// The buffer holds only the beginning of a frame.
    Incomplete,
    /// The bytes are not RESP.
    Invalid(String),
}

/// Parses one frame from the front of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    match parse_at(buf, 0) {
        Ok(Some((frame, end))) => Parsed::Frame(frame, end),
        Ok(None) => Parsed::Incomplete,
        Err(e) => Parsed::Invalid(e),
    }
}

type Step = Result<Option<(Frame, usize)>, String>;

fn line(buf: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[start..start + rel], start + rel + 2))
}

fn number(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad number {}", show(text)))
}

fn parse_at(buf: &[u8], pos: usize) -> Step {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, pos + 1) else {
        return Ok(None);
    };
    let frame = match tag {
        b'+' => Frame::Simple(text.to_vec()),
        b'-' => Frame::Error(text.to_vec()),
        b':' => Frame::Integer(number(text)?),
        b',' => Frame::Double(text.to_vec()),
        b'(' => Frame::BigNumber(text.to_vec()),
        b'#' => Frame::Boolean(text == b"t"),
        b'_' => Frame::Null,
        b'$' | b'=' | b'!' => {
            let len = number(text)?;
            if len < 0 {
                return Ok(Some((Frame::Null, next)));
            }
            let end = next + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("bulk not followed by CRLF".into());
            }
            let body = buf[next..end].to_vec();
            let frame = match tag {
                b'$' => Frame::Bulk(body),
                // `=<len>\r\ntxt:<text>`: keep the text, drop the format tag.
                b'=' if body.len() >= 4 && body[3] == b':' => Frame::Verbatim(body[4..].to_vec()),
                b'=' => Frame::Verbatim(body),
                _ => Frame::Error(body),
            };
            return Ok(Some((frame, end + 2)));
        }
        b'*' | b'>' | b'~' | b'%' | b'|' => {
            let count = number(text)?;
            if count < 0 {
                return Ok(Some((Frame::Null, next)));
            }
            let elems = if matches!(tag, b'%' | b'|') {
                count * 2
            } else {
                count
            };
            let mut items = Vec::with_capacity(elems.min(1024) as usize);
            let mut at = next;
            for _ in 0..elems {
                match parse_at(buf, at)? {
                    Some((f, n)) => {
                        items.push(f);
                        at = n;
                    }
                    None => return Ok(None),
                }
            }
            let frame = match tag {
                b'*' => Frame::Array(items),
                b'>' => Frame::Push(items),
                b'~' => Frame::Set(items),
                b'%' => Frame::Map(pairs(items)),
                // An attribute annotates the next frame; tests never expect one.
                _ => return Err("unexpected attribute frame".into()),
            };
            return Ok(Some((frame, at)));
        }
        other => return Err(format!("unknown RESP type byte {:?}", other as char)),
    };
    Ok(Some((frame, next)))
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Printable form of bytes for assertion messages (escaped, truncated).
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 600;
    let escaped: String = bytes
        .iter()
        .take(MAX)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > MAX {
        format!("{escaped}... ({} bytes)", bytes.len())
    } else {
        escaped
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(&bulk(a.as_ref()));
    }
    out
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn bulk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// The aggregate header of a pub/sub frame: `*n` in RESP2, `>n` in RESP3.
fn push_header(proto: Proto, n: usize) -> Vec<u8> {
    let tag = match proto {
        Proto::Resp2 => '*',
        Proto::Resp3 => '>',
    };
    format!("{tag}{n}\r\n").into_bytes()
}

/// A (un)subscribe confirmation: `<kind> <channel> <count>`, with a null
/// channel (`$-1` / `_`) when `channel` is `None`.
pub fn confirmation(proto: Proto, kind: &str, channel: Option<&[u8]>, count: i64) -> Vec<u8> {
    let mut out = push_header(proto, 3);
    out.extend_from_slice(&bulk(kind.as_bytes()));
    match (channel, proto) {
        (Some(ch), _) => out.extend_from_slice(&bulk(ch)),
        (None, Proto::Resp2) => out.extend_from_slice(b"$-1\r\n"),
        (None, Proto::Resp3) => out.extend_from_slice(b"_\r\n"),
    }
    out.extend_from_slice(format!(":{count}\r\n").as_bytes());
    out
}

/// Several confirmations of one kind, one per channel, with counts running
/// from `first_count`, exactly as one multi-channel command produces them.
pub fn confirmations(proto: Proto, kind: &str, channels: &[&str], counts: &[i64]) -> Vec<u8> {
    assert_eq!(channels.len(), counts.len());
    channels
        .iter()
        .zip(counts)
        .flat_map(|(ch, n)| confirmation(proto, kind, Some(ch.as_bytes()), *n))
        .collect()
}

/// `message <channel> <payload>`.
pub fn message(proto: Proto, channel: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = push_header(proto, 3);
    out.extend_from_slice(&bulk(b"message"));
    out.extend_from_slice(&bulk(channel));
    out.extend_from_slice(&bulk(payload));
    out
}

/// `smessage <channel> <payload>`.
pub fn smessage(proto: Proto, channel: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = push_header(proto, 3);
    out.extend_from_slice(&bulk(b"smessage"));
    out.extend_from_slice(&bulk(channel));
    out.extend_from_slice(&bulk(payload));
    out
}

/// `pmessage <pattern> <channel> <payload>`.
pub fn pmessage(proto: Proto, pattern: &[u8], channel: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = push_header(proto, 4);
    out.extend_from_slice(&bulk(b"pmessage"));
    out.extend_from_slice(&bulk(pattern));
    out.extend_from_slice(&bulk(channel));
    out.extend_from_slice(&bulk(payload));
    out
}

/// `:<n>\r\n`.
pub fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resp3_push_with_null_channel() {
        let bytes = confirmation(Proto::Resp3, "unsubscribe", None, 0);
        match parse(&bytes) {
            Parsed::Frame(f, n) => {
                assert_eq!(n, bytes.len());
                assert_eq!(
                    f,
                    Frame::Push(vec![
                        Frame::Bulk(b"unsubscribe".to_vec()),
                        Frame::Null,
                        Frame::Integer(0)
                    ])
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_incomplete_frame_until_last_byte() {
        let bytes = pmessage(Proto::Resp2, b"p*", b"pa", b"hello");
        for cut in 0..bytes.len() {
            assert!(
                matches!(parse(&bytes[..cut]), Parsed::Incomplete),
                "cut {cut}"
            );
        }
        let Parsed::Frame(f, _) = parse(&bytes) else {
            panic!("whole frame must parse")
        };
        assert_eq!(f.pmessage(), Some((&b"p*"[..], &b"pa"[..], &b"hello"[..])));
    }

    #[test]
    fn parses_map_into_pairs() {
        let Parsed::Frame(f, _) = parse(b"%1\r\n$1\r\na\r\n:1\r\n") else {
            panic!()
        };
        assert_eq!(
            f,
            Frame::Map(vec![(Frame::Bulk(b"a".to_vec()), Frame::Integer(1))])
        );
    }

    #[test]
    fn verbatim_string_drops_its_format_tag() {
        let Parsed::Frame(f, _) = parse(b"=8\r\ntxt:id=1\r\n") else {
            panic!()
        };
        assert_eq!(f.text(), "id=1");
    }

    #[test]
    fn rejects_unknown_type_byte() {
        assert!(matches!(parse(b"?x\r\n"), Parsed::Invalid(_)));
    }
}
