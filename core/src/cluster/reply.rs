//! The reply of a CLUSTER command as a value, encoded for RESP2 or RESP3 by
//! the crate's encoder when the server sends it.

use bytes::BytesMut;

use crate::resp::encode::{self, Proto};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A status line (`+BUMPED 5`).
    Status(String),
    /// An error line, without the leading `-`.
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    /// A bulk string in RESP2, verbatim `txt` in RESP3 (CLUSTER NODES, INFO).
    Text(String),
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    pub(super) fn bulk(text: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(text.into())
    }

    pub(super) fn error(text: impl Into<Vec<u8>>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    pub fn encode(&self, out: &mut BytesMut, proto: Proto) {
        match self {
            Reply::Ok => encode::simple(out, b"OK"),
            Reply::Status(s) => encode::simple(out, s.as_bytes()),
            Reply::Error(e) => encode::error(out, e),
            Reply::Int(n) => encode::integer(out, *n),
            Reply::Bulk(b) => encode::bulk(out, b),
            Reply::Null => encode::null(out, proto),
            Reply::Text(t) => encode::verbatim(out, b"txt", t.as_bytes(), proto),
            Reply::Array(items) => {
                encode::array(out, items.len());
                for item in items {
                    item.encode(out, proto);
                }
            }
            Reply::Map(pairs) => {
                encode::map(out, pairs.len(), proto);
                for (k, v) in pairs {
                    k.encode(out, proto);
                    v.encode(out, proto);
                }
            }
        }
    }

    /// The encoded bytes (tests, and callers without a buffer at hand).
    pub fn to_resp(&self, proto: Proto) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.encode(&mut out, proto);
        out.to_vec()
    }
}
