//! The RESP request decoder (`resp::decode`), fed arbitrary client bytes.
//!
//! A fuzz input is one control byte, then the bytes a client sends:
//!
//! - bit 0: the client is authenticated (else the unauthenticated limits apply);
//! - bits 1-2: which [`RequestLimits`] (Redis's defaults, or small ones that
//!   let short inputs reach every limit);
//! - bits 3-7: seed of one of the ways the stream is cut into reads.
//!
//! Properties:
//!
//! 1. Cutting the stream into reads anywhere gives the same requests and the
//!    same error as one read of everything. The one allowed difference is
//!    Redis's own: a line still without its end once more than `max_inline`
//!    bytes wait is "too big", even if its end would have come in the next read.
//! 2. Every error is one of Redis 7.2's protocol error texts.
//! 3. The decoder holds at most a small constant plus a bounded multiple of the
//!    bytes it was given (each argument costs a 16-byte range and at least 6
//!    bytes of input), and its read-sizing hint (`pending_bulk_len`, which
//!    counts the request read so far) stays within a small constant of twice
//!    the bytes buffered: a declared but unsent bulk does not make the server
//!    reserve its declared size.
//! 4. Before authentication only the two "unauthenticated" errors can differ
//!    from an authenticated client's outcome.
//! 5. Every request is non-empty and decodes to itself again once written as
//!    a RESP multibulk.

use bytes::{Buf, BytesMut};
use ringcast_core::resp::decode::{Decoder, ProtocolError, Request, RequestLimits};

use super::meter;

/// Every request decoded, then the error that stopped decoding (`None`: the
/// decoder waits for more bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    requests: Vec<Vec<Vec<u8>>>,
    end: Option<ProtocolError>,
}

/// Heap the decoder may hold while it waits, beyond [`HELD_PER_BYTE`] for each
/// byte given: a handful of argument slots and the buffer's shared header.
const HELD_CONST: isize = 1024;
/// An argument costs at least 6 bytes of input (`$0\r\n` and two skipped
/// bytes) and a 32-byte slot, in a vector that may be up to twice too big.
const HELD_PER_BYTE: isize = 11;
/// Heap one `decode` call may use at its peak (it includes the request it
/// returns), per byte buffered: an inline line of one-byte words costs a
/// 32-byte slot per 2 bytes, in a vector up to twice too big.
const TRANSIENT_PER_BYTE: isize = 40;
/// Largest read-sizing hint for a bulk none of whose bytes have arrived yet.
const HINT_FLOOR: usize = 16 * 1024;

/// Redis 7.2's protocol error texts (`networking.c`), except the
/// `expected '$'` one, which carries a byte.
const REDIS_TEXTS: &[&[u8]] = &[
    b"Protocol error: too big inline request",
    b"Protocol error: unbalanced quotes in request",
    b"Protocol error: too big mbulk count string",
    b"Protocol error: invalid multibulk length",
    b"Protocol error: unauthenticated multibulk length",
    b"Protocol error: too big bulk count string",
    b"Protocol error: invalid bulk length",
    b"Protocol error: unauthenticated bulk length",
];

/// Checks one fuzz input; panics naming the property that fails.
pub(crate) fn check(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let authenticated = control & 1 == 1;
    let limits = limits(control >> 1 & 3);
    let seed = control >> 3;

    let whole = feed(stream, &[stream.len()], authenticated, &limits);
    if let Some(error) = &whole.end {
        check_error_text(error);
    }
    for request in &whole.requests {
        check_reencodes(request);
    }

    let other = feed(stream, &[stream.len()], !authenticated, &limits);
    let (authed, unauthed) = if authenticated {
        (&whole, &other)
    } else {
        (&other, &whole)
    };
    check_unauthenticated_only_adds_limits(authed, unauthed);

    let bytewise = vec![1; stream.len()];
    let split = feed(stream, &bytewise, authenticated, &limits);
    check_same_as_whole(&whole, &split, "one byte per read");
    let sizes = random_sizes(stream.len(), seed, &limits);
    let split = feed(stream, &sizes, authenticated, &limits);
    check_same_as_whole(&whole, &split, &format!("reads of {sizes:?}"));
}

fn limits(choice: u8) -> RequestLimits {
    let small = |max_inline, max_multibulk, max_bulk, unauth_max_multibulk, unauth_max_bulk| {
        RequestLimits {
            max_inline,
            max_multibulk,
            max_bulk,
            unauth_max_multibulk,
            unauth_max_bulk,
        }
    };
    match choice {
        0 => RequestLimits::default(),
        1 => small(16, 8, 64, 3, 8),
        2 => small(256, 1024, 4096, 10, 100),
        _ => small(4, 2, 3, 1, 1),
    }
}

/// Read sizes that cover `len` bytes, drawn from `seed`: mostly short reads,
/// some around `max_inline`, some long.
fn random_sizes(len: usize, seed: u8, limits: &RequestLimits) -> Vec<usize> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (u64::from(seed) << 32) ^ len as u64;
    let mut next = || {
        // xorshift64: cheap and deterministic.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let spans = [
        3,
        17,
        limits.max_inline.saturating_add(2).min(1 << 20),
        4096,
    ];
    let mut sizes = Vec::new();
    let mut covered = 0;
    while covered < len {
        let r = next();
        let span = spans[(r % 4) as usize] as u64;
        let size = 1 + ((r >> 8) % span) as usize;
        sizes.push(size);
        covered += size;
    }
    sizes
}

/// Feeds `stream` in reads of the given sizes, decoding after each read as the
/// server does, and checks the decoder's memory use along the way.
fn feed(stream: &[u8], sizes: &[usize], authenticated: bool, limits: &RequestLimits) -> Outcome {
    let mut decoder = Decoder::new(limits.clone());
    // Room for the whole stream up front, so appending never reallocates and
    // the buffer costs the same however the stream is cut.
    let mut buf = BytesMut::with_capacity(stream.len());
    let mut requests = Vec::new();
    let base = meter::live();
    // Heap this function holds itself (copies of the requests), so that
    // `live - base - own` is what the decoder holds.
    let mut own = 0;
    let mut given = 0usize;
    let mut rest = stream;
    for &size in sizes {
        let (read, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        own += meter::net(|| buf.extend_from_slice(read));
        given += read.len();
        loop {
            meter::reset_peak();
            let before = meter::live();
            let result = decoder.decode(&mut buf, authenticated);
            let transient = meter::peak() - before;
            assert!(
                transient <= HELD_CONST + TRANSIENT_PER_BYTE * given as isize,
                "decode used {transient} heap bytes at its peak after {given} bytes given"
            );
            match result {
                Ok(Some(request)) => {
                    own += meter::net(|| {
                        requests.push(request.args(&buf).iter().map(<[u8]>::to_vec).collect())
                    });
                    buf.advance(request.wire_len());
                    if let Request::Multibulk { spans, .. } = request {
                        decoder.recycle(spans);
                    }
                }
                Ok(None) => {
                    if let Some(hint) = decoder.pending_bulk_len() {
                        assert!(
                            hint <= (2 * buf.len()).max(buf.len() + HINT_FLOOR),
                            "read hint of {hint} bytes with {} bytes buffered",
                            buf.len()
                        );
                    }
                    break;
                }
                Err(error) => {
                    if is_too_big(&error) {
                        assert!(
                            buf.len() > limits.max_inline,
                            "{error:?} with only {} bytes buffered",
                            buf.len()
                        );
                    }
                    return Outcome {
                        requests,
                        end: Some(error),
                    };
                }
            }
            let held = meter::live() - base - own;
            assert!(
                held <= HELD_CONST + HELD_PER_BYTE * given as isize,
                "decoder holds {held} heap bytes after {given} bytes given"
            );
        }
        let held = meter::live() - base - own;
        assert!(
            held <= HELD_CONST + HELD_PER_BYTE * given as isize,
            "decoder holds {held} heap bytes after {given} bytes given"
        );
    }
    assert!(rest.is_empty(), "read sizes do not cover the stream");
    Outcome {
        requests,
        end: None,
    }
}

fn is_too_big(error: &ProtocolError) -> bool {
    matches!(
        error,
        ProtocolError::TooBigInlineRequest
            | ProtocolError::TooBigMbulkCountString
            | ProtocolError::TooBigBulkCountString
    )
}

fn is_unauthenticated(error: &ProtocolError) -> bool {
    matches!(
        error,
        ProtocolError::UnauthenticatedMultibulkLength | ProtocolError::UnauthenticatedBulkLength
    )
}

fn check_error_text(error: &ProtocolError) {
    let text = error.message_bytes();
    let known = REDIS_TEXTS.contains(&text.as_slice())
        || text
            .strip_prefix(b"Protocol error: expected '$', got '")
            .and_then(|rest| rest.strip_suffix(b"'"))
            // One byte, as `%c` prints it: never NUL (the line would not have
            // ended), never a line break (Redis turns those into spaces).
            .is_some_and(|got| matches!(got, [b] if !matches!(b, 0 | b'\r' | b'\n')));
    assert!(
        known,
        "{error:?} is not a Redis protocol error: {:?}",
        text.escape_ascii().to_string()
    );
    if text.is_ascii() {
        assert_eq!(error.to_string().as_bytes(), text, "Display of {error:?}");
    }
}

fn check_reencodes(request: &[Vec<u8>]) {
    assert!(!request.is_empty(), "an empty request was returned");
    let mut wire = format!("*{}\r\n", request.len()).into_bytes();
    for arg in request {
        wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        wire.extend_from_slice(arg);
        wire.extend_from_slice(b"\r\n");
    }
    let mut decoder = Decoder::new(RequestLimits::default());
    let mut buf = BytesMut::from(&wire[..]);
    let again = decoder.decode_owned(&mut buf, true);
    let again: Option<Vec<Vec<u8>>> = again
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|args| args.list().iter().map(<[u8]>::to_vec).collect());
    assert_eq!(again.as_deref(), Some(request), "request written as RESP");
    assert!(buf.is_empty(), "bytes left after a re-encoded request");
}

fn check_unauthenticated_only_adds_limits(authed: &Outcome, unauthed: &Outcome) {
    let n = unauthed.requests.len();
    assert!(
        authed.requests.len() >= n && authed.requests[..n] == unauthed.requests[..],
        "an unauthenticated client got requests an authenticated one did not"
    );
    if !unauthed.end.as_ref().is_some_and(is_unauthenticated) {
        assert_eq!(
            authed, unauthed,
            "authentication changed more than the unauthenticated limits"
        );
    }
}

fn check_same_as_whole(whole: &Outcome, split: &Outcome, how: &str) {
    if split == whole {
        return;
    }
    let n = split.requests.len();
    let redis_too_big = split.end.as_ref().is_some_and(is_too_big)
        && whole.requests.len() >= n
        && whole.requests[..n] == split.requests[..];
    assert!(
        redis_too_big,
        "{how}: got {split:?}, one read of everything gives {whole:?}"
    );
}
