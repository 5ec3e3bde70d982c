//! RESP reply encoder: writes RESP2 or RESP3 values into an output buffer.
//!
//! Commands build their replies through these functions so that the choice
//! between RESP2 and RESP3 shapes (null, map, push, verbatim) lives in one place.

use bytes::{BufMut, BytesMut};

/// Protocol version a connection speaks (chosen with `HELLO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

impl Proto {
    pub fn version(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

fn header(out: &mut BytesMut, kind: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(kind);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// `+OK`-style status reply.
pub fn simple(out: &mut BytesMut, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.put_u8(b'+');
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

/// Error reply; `msg` carries its code (`ERR ...`, `NOAUTH ...`).
/// `-<msg>\r\n`. A CR or LF inside `msg` (client bytes an error echoes)
/// becomes a space, as Redis maps them, so the reply cannot be split.
pub fn error(out: &mut BytesMut, msg: impl AsRef<[u8]>) {
    let msg = msg.as_ref();
    out.reserve(msg.len() + 3);
    out.put_u8(b'-');
    let start = out.len();
    out.put_slice(msg);
    for b in &mut out[start..] {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    out.put_slice(b"\r\n");
}

pub fn integer(out: &mut BytesMut, n: i64) {
    header(out, b':', n);
}

pub fn bulk(out: &mut BytesMut, data: &[u8]) {
    header(out, b'$', data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Null bulk string: `$-1` in RESP2, `_` in RESP3.
pub fn null(out: &mut BytesMut, proto: Proto) {
    match proto {
        Proto::Resp2 => out.put_slice(b"$-1\r\n"),
        Proto::Resp3 => out.put_slice(b"_\r\n"),
    }
}

/// Null array reply: `*-1` in RESP2, `_` in RESP3.
pub fn null_array(out: &mut BytesMut, proto: Proto) {
    match proto {
        Proto::Resp2 => out.put_slice(b"*-1\r\n"),
        Proto::Resp3 => out.put_slice(b"_\r\n"),
    }
}

pub fn array(out: &mut BytesMut, len: usize) {
    header(out, b'*', len as i64);
}

/// Set header: `~` in RESP3, a plain array in RESP2.
pub fn set(out: &mut BytesMut, len: usize, proto: Proto) {
    let kind = if proto == Proto::Resp3 { b'~' } else { b'*' };
    header(out, kind, len as i64);
}

/// Push header (pub/sub frames): `>` in RESP3, an array in RESP2.
pub fn push(out: &mut BytesMut, len: usize, proto: Proto) {
    let kind = if proto == Proto::Resp3 { b'>' } else { b'*' };
    header(out, kind, len as i64);
}

/// Map header of `pairs` key/value pairs: `%` in RESP3, a flat array in RESP2.
pub fn map(out: &mut BytesMut, pairs: usize, proto: Proto) {
    match proto {
        Proto::Resp3 => header(out, b'%', pairs as i64),
        Proto::Resp2 => header(out, b'*', 2 * pairs as i64),
    }
}

/// Verbatim string (`=` with a 3-letter format in RESP3, a bulk string in RESP2),
/// as Redis sends INFO and CLIENT INFO.
pub fn verbatim(out: &mut BytesMut, format: &[u8; 3], text: &[u8], proto: Proto) {
    match proto {
        Proto::Resp2 => bulk(out, text),
        Proto::Resp3 => {
            header(out, b'=', text.len() as i64 + 4);
            out.reserve(text.len() + 6);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_stay_on_one_line() {
        let mut out = BytesMut::new();
        error(&mut out, b"ERR x\r\n+INJECTED");
        assert_eq!(&out[..], b"-ERR x  +INJECTED\r\n");
    }

    fn enc(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut out = BytesMut::new();
        f(&mut out);
        out.to_vec()
    }

    #[test]
    fn scalars_are_encoded_as_redis_does() {
        assert_eq!(enc(|o| simple(o, b"OK")), b"+OK\r\n");
        assert_eq!(enc(|o| error(o, "ERR x")), b"-ERR x\r\n");
        assert_eq!(enc(|o| integer(o, -3)), b":-3\r\n");
        assert_eq!(enc(|o| bulk(o, b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(enc(|o| bulk(o, b"")), b"$0\r\n\r\n");
    }

    #[test]
    fn null_and_aggregates_follow_the_protocol_version() {
        assert_eq!(enc(|o| null(o, Proto::Resp2)), b"$-1\r\n");
        assert_eq!(enc(|o| null(o, Proto::Resp3)), b"_\r\n");
        assert_eq!(enc(|o| push(o, 3, Proto::Resp2)), b"*3\r\n");
        assert_eq!(enc(|o| push(o, 3, Proto::Resp3)), b">3\r\n");
        assert_eq!(enc(|o| map(o, 2, Proto::Resp2)), b"*4\r\n");
        assert_eq!(enc(|o| map(o, 2, Proto::Resp3)), b"%2\r\n");
        assert_eq!(enc(|o| set(o, 1, Proto::Resp3)), b"~1\r\n");
    }

    #[test]
    fn verbatim_is_bulk_in_resp2_and_typed_in_resp3() {
        assert_eq!(
            enc(|o| verbatim(o, b"txt", b"hi", Proto::Resp2)),
            b"$2\r\nhi\r\n"
        );
        assert_eq!(
            enc(|o| verbatim(o, b"txt", b"hi", Proto::Resp3)),
            b"=6\r\ntxt:hi\r\n"
        );
    }
}
