//! What is compared: every client's received bytes, frame by frame, after
//! the normalisations below and nothing else. Each one is either a
//! difference listed in `docs/redis-differences.md` (cited by its row) or an
//! order Redis itself does not define (compared as a multiset).

use crate::replay::Unit;
use crate::scenario::{Step, Unordered};
use ringcast_tests::resp::{self, Frame, Parsed};

/// How the reference redis-server differs from the Redis 7.2 ringcast follows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reference {
    /// Redis 7.0 writes a self-published push before the PUBLISH reply.
    pub is_7_0: bool,
}

/// One client's units in one step, as compared.
pub(crate) fn normalise(
    units: &[Unit],
    step: &Step,
    acting: bool,
    reference: Reference,
    from_redis: bool,
) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = units
        .iter()
        .map(|u| match u {
            Unit::Frame(f, raw) => {
                let frame = hello_identity(f).unwrap_or_else(|| raw.clone());
                if reference.is_7_0 && from_redis {
                    wording_7_0(frame)
                } else {
                    frame
                }
            }
            Unit::Closed => b"<connection closed>".to_vec(),
            Unit::Silent => b"<nothing more within the wait>".to_vec(),
        })
        .collect();
    if acting {
        if let Some(kind) = step.unordered() {
            unordered(&mut frames, kind);
        }
        if reference.is_7_0 {
            self_push_after_reply(&mut frames);
        }
    }
    pattern_order(&mut frames);
    frames
}

/// Differences rows 1 and 2: HELLO's `version` (Redis reports its own,
/// ringcast the 7.2 release it follows) and `id` (Redis's own internal
/// clients take the first ids) are replaced by placeholders; every other
/// field, the frame type and the field order are compared.
fn hello_identity(frame: &Frame) -> Option<Vec<u8>> {
    let (header, fields): (&[u8], Vec<(Frame, Frame)>) = match frame {
        Frame::Map(pairs) => (b"%", pairs.clone()),
        Frame::Array(items) if items.len() == 14 => (
            b"*",
            items
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
        ),
        _ => return None,
    };
    let keys: Vec<Option<&[u8]>> = fields.iter().map(|(k, _)| k.bytes()).collect();
    if keys.first() != Some(&Some(&b"server"[..])) || !keys.contains(&Some(&b"version"[..])) {
        return None;
    }
    let mut out = header.to_vec();
    out.extend(format!("{}\r\n", fields.len() * if header == b"%" { 1 } else { 2 }).as_bytes());
    for (key, value) in &fields {
        out.extend(encode(key));
        out.extend(match key.bytes() {
            Some(b"version") => resp::bulk(b"<version>"),
            Some(b"id") => b":<id>\r\n".to_vec(),
            _ => encode(value),
        });
    }
    Some(out)
}

/// Differences rows 4 and 5: texts Redis 7.0 words otherwise than 7.2, as
/// 7.2 words them: the last line of every `HELP` reply, and the error of
/// HELLO before authentication.
fn wording_7_0(frame: Vec<u8>) -> Vec<u8> {
    const HELP_7_0: &[u8] = b"\r\n+    Prints this help.\r\n";
    const HELP_7_2: &[u8] = b"\r\n+    Print this help.\r\n";
    const NOAUTH_HELLO_7_0: &[u8] = b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n";
    const NOAUTH_HELLO_7_2: &[u8] = b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n";
    if frame == NOAUTH_HELLO_7_0 {
        NOAUTH_HELLO_7_2.to_vec()
    } else if frame.first() == Some(&b'*') && frame.ends_with(HELP_7_0) {
        [&frame[..frame.len() - HELP_7_0.len()], HELP_7_2].concat()
    } else {
        frame
    }
}

/// Encodes the frame kinds a HELLO reply holds.
fn encode(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::Bulk(b) => resp::bulk(b),
        Frame::Simple(s) => [b"+", &s[..], b"\r\n"].concat(),
        Frame::Integer(n) => resp::int(*n),
        Frame::Array(items) => {
            let mut out = format!("*{}\r\n", items.len()).into_bytes();
            items.iter().for_each(|i| out.extend(encode(i)));
            out
        }
        Frame::Null => b"_\r\n".to_vec(),
        other => format!("<{other:?}>").into_bytes(),
    }
}

/// An aggregate frame's header line and the bytes of each element.
type Split = (Vec<u8>, Vec<Vec<u8>>);

/// Splits an aggregate frame's bytes into its header line and the bytes of
/// each element; `None` for anything else.
fn elements(raw: &[u8]) -> Option<Split> {
    if !matches!(raw.first(), Some(b'*' | b'>' | b'~')) {
        return None;
    }
    let line_end = raw.windows(2).position(|w| w == b"\r\n")? + 2;
    let count: usize = std::str::from_utf8(&raw[1..line_end - 2])
        .ok()?
        .parse()
        .ok()?;
    let mut at = line_end;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        match resp::parse(&raw[at..]) {
            Parsed::Frame(_, used) => {
                out.push(raw[at..at + used].to_vec());
                at += used;
            }
            _ => return None,
        }
    }
    Some((raw[..line_end].to_vec(), out))
}

fn pubsub_kind(raw: &[u8]) -> Option<Vec<u8>> {
    let (_, items) = elements(raw)?;
    match resp::parse(items.first()?) {
        Parsed::Frame(Frame::Bulk(kind), _) => Some(kind),
        _ => None,
    }
}

/// Orders Redis does not define, compared as multisets (not differences):
///
/// - `(P|S)UNSUBSCRIBE` without arguments confirms the names held in the
///   order of a hash table (7.0 keeps patterns in a list, 7.2 in a hash
///   table). The names are compared as a multiset; each confirmation's
///   count stays in place (it falls by one per name whatever the order).
/// - `PUBSUB CHANNELS` / `SHARDCHANNELS` list names in hash-table order:
///   the elements of the reply are compared as a multiset.
///
/// The last frame, the settle confirmation, stays as it is.
fn unordered(frames: &mut [Vec<u8>], kind: Unordered) {
    let Some((_, replies)) = frames.split_last_mut() else {
        return;
    };
    match kind {
        Unordered::UnsubscribeAll => {
            let split: Option<Vec<Split>> = replies.iter().map(|f| elements(f)).collect();
            let Some(mut split) = split else { return };
            if split.iter().any(|(_, items)| items.len() != 3) {
                return;
            }
            let mut names: Vec<Vec<u8>> = split.iter().map(|(_, items)| items[1].clone()).collect();
            names.sort();
            for ((_, items), name) in split.iter_mut().zip(names) {
                items[1] = name;
            }
            for (frame, (header, items)) in replies.iter_mut().zip(split) {
                *frame = [header, items.concat()].concat();
            }
        }
        Unordered::ChannelList => {
            for frame in replies.iter_mut() {
                if let Some((header, mut items)) = elements(frame) {
                    items.sort();
                    *frame = [header, items.concat()].concat();
                }
            }
        }
    }
}

/// Differences row 3: Redis 7.0 writes the push a client receives from its
/// own PUBLISH before the PUBLISH reply, 7.2 (and ringcast) after it. Against
/// a 7.0 server, the acting client's deliveries (which in a step can only
/// come from its own PUBLISH commands) are compared as a sequence of their
/// own, after its other frames: their order among themselves and the order
/// of the replies are both kept, only how the two interleave is not
/// compared. (Moving a reply next to "its" pushes instead would need to know
/// which replies `CLIENT REPLY` silenced.) Against a 7.2 server nothing moves.
fn self_push_after_reply(frames: &mut [Vec<u8>]) {
    let is_delivery = |f: &Vec<u8>| {
        f.first() == Some(&b'>')
            && pubsub_kind(f)
                .is_some_and(|k| matches!(&k[..], b"message" | b"pmessage" | b"smessage"))
    };
    // A stable sort on "is a delivery" keeps both subsequences in order.
    frames.sort_by_key(is_delivery);
}

/// Order Redis does not define: one PUBLISH reaching a client through
/// several of its patterns yields one `pmessage` per pattern in the order
/// of Redis's pattern hash table. A run of `pmessage` frames for the same
/// channel and payload is cut into groups in which no pattern repeats (one
/// group per PUBLISH), and each group is compared as a multiset.
fn pattern_order(frames: &mut [Vec<u8>]) {
    let key = |f: &[u8]| -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let (_, items) = elements(f)?;
        (items.len() == 4 && items[0] == resp::bulk(b"pmessage"))
            .then(|| (items[1].clone(), items[2].clone(), items[3].clone()))
    };
    let mut i = 0;
    while i < frames.len() {
        let Some((pattern, channel, payload)) = key(&frames[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut seen = vec![pattern];
        i += 1;
        while i < frames.len() {
            match key(&frames[i]) {
                Some((p, c, m)) if c == channel && m == payload && !seen.contains(&p) => {
                    seen.push(p);
                    i += 1;
                }
                _ => break,
            }
        }
        frames[start..i].sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_tests::resp::Proto;

    fn int(n: i64) -> Vec<u8> {
        resp::int(n)
    }

    #[test]
    fn self_push_order_of_7_0_and_7_2_compare_equal() {
        let push = |m: &[u8]| resp::message(Proto::Resp3, b"a", m);
        // PUBLISH b (no receiver), PUBLISH a x (to itself), PUBLISH a y.
        let mut v7_0 = vec![int(0), push(b"x"), int(1), push(b"y"), int(1)];
        let mut v7_2 = vec![int(0), int(1), push(b"x"), int(1), push(b"y")];
        self_push_after_reply(&mut v7_0);
        self_push_after_reply(&mut v7_2);
        assert_eq!(v7_0, v7_2);
        // Pushes in another order still differ.
        let mut swapped = vec![int(0), int(1), push(b"y"), int(1), push(b"x")];
        self_push_after_reply(&mut swapped);
        assert_ne!(v7_0, swapped);
    }

    #[test]
    fn pmessages_of_one_publish_compare_as_a_set_but_publishes_stay_apart() {
        let p = |pat: &[u8]| resp::pmessage(Proto::Resp2, pat, b"ab", b"x");
        let mut a = vec![p(b"a*"), p(b"*"), p(b"a*"), p(b"*")];
        let mut b = vec![p(b"*"), p(b"a*"), p(b"*"), p(b"a*")];
        pattern_order(&mut a);
        pattern_order(&mut b);
        assert_eq!(a, b);
        let mut c = vec![p(b"a*"), p(b"a*"), p(b"*"), p(b"*")];
        pattern_order(&mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn unsubscribe_all_keeps_counts_in_place() {
        let conf = |ch: &[u8], n| resp::confirmation(Proto::Resp2, "unsubscribe", Some(ch), n);
        let settle = conf(b"~settle~", 0);
        let mut a = vec![conf(b"b", 1), conf(b"a", 0), settle.clone()];
        let mut b = vec![conf(b"a", 1), conf(b"b", 0), settle.clone()];
        unordered(&mut a, Unordered::UnsubscribeAll);
        unordered(&mut b, Unordered::UnsubscribeAll);
        assert_eq!(a, b);
        assert_eq!(a[2], settle);
    }
}
