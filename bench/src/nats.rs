//! The NATS core protocol, as much as the tool needs to drive `nats-server`
//! with the same shapes, verification and figures as a Redis-protocol
//! server: `INFO`/`CONNECT` (verbose off), `SUB`, `PUB`, `MSG`, `PING`/`PONG`.
//!
//! Why no client crate: the load engine owns every socket and its read
//! buffer, parses frames in place and counts each message as it is read
//! (one event loop per thread, no allocation per message). The NATS client
//! crates bring their own runtime (tokio), tasks and message objects,
//! which would put a different engine — and a different client cost —
//! under the NATS column than under the Redis ones. The subset used here
//! is five verbs of a line protocol.
//!
//! Mapping: a channel `rcb:<i>:c` becomes the subject `rcb.<i>.c`, and a
//! pattern `rcb:<i>:*` the wildcard `rcb.<i>.*` (NATS wildcards match whole
//! tokens). With verbose off the server answers nothing to PUB or SUB, so
//! a `PING` after a batch stands in for the replies: its `PONG` says that
//! every command before it was processed (subscriptions are in place,
//! messages were routed), in order.

use crate::conn::ReadBuf;
use crate::plan::Shape;
use anyhow::{Result, bail};
use std::io::{Read, Write};

/// Why a shape has no NATS core equivalent, if it has none.
pub fn unsupported(shape: Shape) -> Option<&'static str> {
    match shape {
        Shape::Sharded => Some("NATS core has no sharded channels"),
        Shape::Churn => Some(
            "the churn shape counts SUBSCRIBE/UNSUBSCRIBE confirmations, which NATS does not send",
        ),
        _ => None,
    }
}

/// What a subscriber or a publisher reads from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A delivery: subject and payload.
    Msg {
        subject: &'a [u8],
        payload: &'a [u8],
    },
    /// The server checks we are alive: answer PONG.
    Ping,
    /// The answer to one of our PINGs.
    Pong,
    /// `+OK` (verbose mode only), `INFO` updates: nothing to do.
    Other,
    /// `-ERR '...'`.
    Err(&'a [u8]),
}

/// Longest control line accepted (INFO can be long; MSG lines are short).
const MAX_LINE: usize = 64 * 1024;

/// One frame from the start of `buf`, and the bytes it used; `Ok(None)`
/// while incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>> {
    let Some(nl) = memchr_crlf(buf) else {
        if buf.len() > MAX_LINE {
            bail!("NATS control line longer than {MAX_LINE} bytes");
        }
        return Ok(None);
    };
    let line = &buf[..nl];
    let after = nl + 2;
    if let Some(rest) = line.strip_prefix(b"MSG ") {
        let fields: Vec<&[u8]> = rest
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty())
            .collect();
        // MSG <subject> <sid> [reply-to] <#bytes>
        let (subject, len) = match fields.as_slice() {
            [subject, _sid, len] | [subject, _sid, _, len] => (*subject, *len),
            _ => bail!("bad MSG line {:?}", String::from_utf8_lossy(line)),
        };
        let len = parse_len(len)?;
        let end = after + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            bail!("MSG payload not followed by CRLF");
        }
        return Ok(Some((
            Frame::Msg {
                subject,
                payload: &buf[after..end],
            },
            end + 2,
        )));
    }
    let frame = match line {
        b"PING" => Frame::Ping,
        b"PONG" => Frame::Pong,
        b"+OK" => Frame::Other,
        _ if line.starts_with(b"INFO ") => Frame::Other,
        _ if line.starts_with(b"-ERR") => Frame::Err(line[4..].trim_ascii()),
        _ => bail!("unexpected NATS line {:?}", String::from_utf8_lossy(line)),
    };
    Ok(Some((frame, after)))
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_len(digits: &[u8]) -> Result<usize> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        bail!("bad MSG size {:?}", String::from_utf8_lossy(digits));
    }
    Ok(digits
        .iter()
        .fold(0usize, |v, d| v * 10 + usize::from(d - b'0')))
}

/// Reads the server's `INFO` line, the first thing it sends (before TLS).
/// Returns whether the server asks for TLS.
pub fn read_info<S: Read>(s: &mut S) -> Result<bool> {
    // Byte by byte: nothing after the line may be consumed, since TLS may
    // start right after it.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut b)? == 0 {
            bail!("server closed the connection before INFO");
        }
        line.push(b[0]);
        if line.len() > MAX_LINE {
            bail!("INFO line longer than {MAX_LINE} bytes");
        }
    }
    if !line.starts_with(b"INFO ") {
        bail!(
            "expected INFO from a NATS server, got {:?}",
            String::from_utf8_lossy(&line)
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&line[5..]).unwrap_or_default();
    Ok(info["tls_required"].as_bool().unwrap_or(false))
}

/// `CONNECT` with verbose and echo settings for the tool, then `PING`.
pub fn write_connect(out: &mut Vec<u8>, user: Option<&str>, pass: Option<&str>) {
    let mut opts = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "tls_required": false,
        "lang": "rust",
        "version": env!("CARGO_PKG_VERSION"),
        "name": "ringcast-bench",
        "protocol": 1,
        "echo": true,
        "headers": false,
        "no_responders": false,
    });
    if let Some(u) = user {
        opts["user"] = u.into();
    }
    if let Some(p) = pass {
        opts["pass"] = p.into();
    }
    out.extend_from_slice(b"CONNECT ");
    out.extend_from_slice(opts.to_string().as_bytes());
    out.extend_from_slice(b"\r\nPING\r\n");
}

/// Reads (blocking) until the PONG that answers our PING; answers the
/// server's PINGs on the way; fails on `-ERR`.
pub fn await_pong<S: Read + Write>(s: &mut S, rb: &mut ReadBuf) -> Result<()> {
    loop {
        while let Some((f, used)) = parse(rb.unparsed())? {
            let f = match f {
                Frame::Err(e) => bail!("server replied -ERR {}", String::from_utf8_lossy(e)),
                Frame::Pong => Frame::Pong,
                Frame::Ping => Frame::Ping,
                Frame::Msg { .. } | Frame::Other => Frame::Other,
            };
            rb.consume(used);
            match f {
                Frame::Pong => return Ok(()),
                Frame::Ping => s.write_all(b"PONG\r\n")?,
                _ => {}
            }
        }
        if rb.read_from(s)? == 0 {
            bail!("server closed the connection");
        }
    }
}

/// `SUB <subject> <sid>` for each name, sids `first_sid + 1 ..`, then a PING
/// whose PONG confirms them all.
pub fn write_subs(out: &mut Vec<u8>, names: &[Vec<u8>], first_sid: usize) {
    for (i, n) in names.iter().enumerate() {
        out.extend_from_slice(b"SUB ");
        out.extend_from_slice(n);
        out.push(b' ');
        crate::resp::push_int(out, (first_sid + i + 1) as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"PING\r\n");
}

/// `PUB <subject> <len>\r\n`: what goes before a payload.
pub fn pub_head(subject: &[u8], len: usize) -> Vec<u8> {
    let mut v = b"PUB ".to_vec();
    v.extend_from_slice(subject);
    v.push(b' ');
    crate::resp::push_int(&mut v, len as u64);
    v.extend_from_slice(b"\r\n");
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_frames_are_parsed_with_and_without_reply_subject() {
        let buf = b"MSG rcb.1.c 7 5\r\nhello\r\nMSG rcb.2.c 9 _INBOX.x 2\r\nhi\r\nPING\r\n";
        let (f, used) = parse(buf).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Msg {
                subject: b"rcb.1.c",
                payload: b"hello"
            }
        );
        let (f, used2) = parse(&buf[used..]).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Msg {
                subject: b"rcb.2.c",
                payload: b"hi"
            }
        );
        let (f, _) = parse(&buf[used + used2..]).unwrap().unwrap();
        assert_eq!(f, Frame::Ping);
    }

    #[test]
    fn partial_frames_wait_and_payloads_may_hold_crlf() {
        let buf = b"MSG a.b 1 4\r\n\r\n\r\n\r\n";
        assert_eq!(parse(&buf[..10]).unwrap(), None);
        assert_eq!(parse(&buf[..18]).unwrap(), None);
        let (f, used) = parse(buf).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Msg {
                subject: b"a.b",
                payload: b"\r\n\r\n"
            }
        );
        assert_eq!(used, buf.len());
    }

    #[test]
    fn errors_and_control_lines() {
        let (f, _) = parse(b"-ERR 'Authorization Violation'\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(f, Frame::Err(b"'Authorization Violation'"));
        assert_eq!(parse(b"+OK\r\n").unwrap().unwrap().0, Frame::Other);
        assert_eq!(parse(b"INFO {}\r\n").unwrap().unwrap().0, Frame::Other);
        assert!(parse(b"HELLO\r\n").is_err());
        assert!(parse(b"MSG a 1 x\r\n").is_err());
    }

    #[test]
    fn subscriptions_get_distinct_sids_and_a_closing_ping() {
        let mut out = Vec::new();
        write_subs(&mut out, &[b"a.1".to_vec(), b"a.*".to_vec()], 10);
        assert_eq!(out, b"SUB a.1 11\r\nSUB a.* 12\r\nPING\r\n");
        assert_eq!(pub_head(b"rcb.0.c", 64), b"PUB rcb.0.c 64\r\n");
    }

    #[test]
    fn connect_is_json_with_verbose_off_and_credentials() {
        let mut out = Vec::new();
        write_connect(&mut out, Some("u"), Some("p"));
        let text = String::from_utf8(out).unwrap();
        let json = text
            .strip_prefix("CONNECT ")
            .and_then(|t| t.strip_suffix("\r\nPING\r\n"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["verbose"], false);
        assert_eq!(
            (v["user"].as_str(), v["pass"].as_str()),
            (Some("u"), Some("p"))
        );
    }
}
