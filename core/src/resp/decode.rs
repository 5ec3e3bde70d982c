//! Incremental decoder for client requests: RESP multibulk arrays
//! (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`) and inline commands (`ECHO hi\r\n`).
//!
//! It reproduces Redis 7.2 (`processInputBuffer`, `processInlineBuffer`,
//! `processMultibulkBuffer` and `sdssplitargs`): the same inputs are accepted,
//! the same ones are rejected, and rejections carry the same error texts.
//!
//! The connection owns a `BytesMut` read buffer, only ever appends to it, and
//! calls [`Decoder::decode`] after each read; the decoder finds the complete
//! request at the front and where its arguments lie in it, and the request
//! runs from the buffer itself (an [`ArgList`]) before its bytes are consumed:
//! nothing is allocated, copied or reference-counted per argument. Progress
//! on a partial request is kept in the decoder, so a request that trickles in
//! over many reads is scanned once.
//!
//! Redis quirks kept on purpose, because clients and tests can observe them:
//! - A header line (`*N`, `$N`) ends at its first `\r`; the byte after that
//!   `\r`, and the two bytes after a bulk payload, are skipped unchecked.
//! - Redis finds line ends with `strchr`, which stops at a NUL byte: a NUL
//!   before the end of a header or inline line means the line never ends, and
//!   the request waits until it grows too big.
//! - Numbers follow `string2ll`: no `+`, no leading zero, no `-0`, at most
//!   20 characters.
//! - A multibulk count `<= 0`, and an inline line of blanks, are no request.
//! - A line is only "too big" while its end has not arrived: an inline line
//!   over 64 KiB whose newline is already buffered is accepted, as in Redis.

use std::ops::Range;

use bytes::{Buf, BytesMut};

use super::args::{ArgList, Args};

/// Argument slots reserved when a multibulk count arrives; more are added as
/// arguments arrive. (Redis reserves up to 1024 for the count alone, which
/// would let a 7-byte `*1024\r\n` hold 32 KiB here.)
const INITIAL_ARGS: usize = 16;

/// The read-sizing hint for a bulk payload none of which has arrived yet
/// (Redis's read size, `PROTO_IOBUF_LEN`); it grows to twice what arrived.
const READ_AHEAD_FLOOR: usize = 16 * 1024;

/// Request size limits; `Default` gives Redis's defaults.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// Longest inline request or header line still waiting for its end
    /// (Redis `PROTO_INLINE_MAX_SIZE`, 64 KiB).
    pub max_inline: usize,
    /// Largest multibulk count. Redis 7.2 accepts up to `INT_MAX` (it grows
    /// argv as arguments arrive, so a large count costs nothing up front).
    pub max_multibulk: usize,
    /// Largest bulk length (`proto-max-bulk-len`, 512 MiB).
    pub max_bulk: usize,
    /// Largest multibulk count before authentication (10).
    pub unauth_max_multibulk: usize,
    /// Largest bulk length before authentication (16384).
    pub unauth_max_bulk: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_inline: 64 * 1024,
            max_multibulk: i32::MAX as usize,
            max_bulk: 512 * 1024 * 1024,
            unauth_max_multibulk: 10,
            unauth_max_bulk: 16384,
        }
    }
}

/// A request Redis would refuse with `-ERR Protocol error: ...` and then close
/// the connection. `Display` gives the text after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `*` line that is not a number, or a count above the limit.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// Count above the unauthenticated limit while authentication is required.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// An argument line that does not start with `$`; `got` is that first byte.
    #[error("Protocol error: expected '$', got '{}'", char::from(shown_byte(*.got)))]
    ExpectedDollar { got: u8 },
    /// `$` line that is not a number, negative, or above `proto-max-bulk-len`.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// Bulk above the unauthenticated limit while authentication is required.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// Inline request with an unterminated quote, or a closing quote not
    /// followed by a blank.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// More than 64 KiB of inline request without a newline.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// More than 64 KiB of `*` line without a `\r`.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCountString,
    /// More than 64 KiB of `$` line without a `\r`.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCountString,
}

impl ProtocolError {
    /// The exact bytes Redis sends after `-ERR ` (before `\r\n`).
    ///
    /// Same as `Display` except for [`ProtocolError::ExpectedDollar`] with a
    /// byte above 0x7f: Redis sends that byte raw, which a `str` cannot hold
    /// (`Display` shows it as the Latin-1 character instead).
    pub fn message_bytes(&self) -> Vec<u8> {
        match self {
            ProtocolError::ExpectedDollar { got } => {
                let mut text = b"Protocol error: expected '$', got '".to_vec();
                text.push(shown_byte(*got));
                text.push(b'\'');
                text
            }
            other => other.to_string().into_bytes(),
        }
    }
}

/// Redis replaces `\r` and `\n` in error texts with spaces so the reply stays
/// one line; every other byte is sent as is.
fn shown_byte(byte: u8) -> u8 {
    match byte {
        b'\r' | b'\n' => b' ',
        other => other,
    }
}

/// Decodes the requests of one connection, keeping partial progress between
/// reads.
#[derive(Debug)]
pub struct Decoder {
    limits: RequestLimits,
    state: State,
    /// Where the arguments of the multibulk request being read lie (kept
    /// between requests for its allocation: see [`Decoder::recycle`]).
    spans: Vec<Range<usize>>,
}

/// A complete request at the front of the buffer given to [`Decoder::decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A multibulk request: the buffer's first `len` bytes, its arguments at
    /// `spans` of them.
    Multibulk {
        len: usize,
        spans: Vec<Range<usize>>,
    },
    /// An inline request (`len` bytes with its newline), its arguments
    /// unescaped.
    Inline { len: usize, args: Args },
}

impl Request {
    /// Bytes at the front of the buffer the request came in: the caller
    /// consumes them once done with its arguments.
    pub fn wire_len(&self) -> usize {
        match self {
            Request::Multibulk { len, .. } | Request::Inline { len, .. } => *len,
        }
    }

    /// Its arguments, read from `buf`: the buffer it was decoded from, its
    /// front untouched since.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> ArgList<'a> {
        match self {
            Request::Multibulk { len, spans } => ArgList::new(&buf[..*len], spans),
            Request::Inline { args, .. } => args.list(),
        }
    }
}

#[derive(Debug, Default)]
enum State {
    /// Between requests: the next byte decides the request type.
    #[default]
    Start,
    /// Waiting for the newline that ends an inline request.
    Inline(LineScan),
    /// Waiting for the end of the `*<count>` line.
    Count(LineScan),
    /// Reading the arguments of a multibulk request.
    Args(Multibulk),
}

#[derive(Debug)]
struct Multibulk {
    /// Arguments still to read.
    remaining: usize,
    /// Bytes of the request read so far (from the buffer front).
    pos: usize,
    bulk: Bulk,
}

#[derive(Debug)]
enum Bulk {
    /// Waiting for the end of the `$<len>` line.
    Header(LineScan),
    /// Waiting for `len` payload bytes plus the two that follow them; `seen`
    /// of those were buffered at the last call.
    Payload { len: usize, seen: usize },
}

/// Where the search for a line end resumes, so each byte is looked at once.
#[derive(Debug, Default)]
struct LineScan {
    /// Bytes at the buffer front known to hold neither the terminator nor NUL.
    scanned: usize,
    /// A NUL came before the terminator: like `strchr`, the search never
    /// succeeds for this line.
    blocked: bool,
}

impl LineScan {
    /// Position of the first `terminator` in `buf`, unless a NUL comes first.
    fn find(&mut self, buf: &[u8], terminator: u8) -> Option<usize> {
        if self.blocked {
            return None;
        }
        let from = self.scanned.min(buf.len());
        match memchr::memchr2(terminator, 0, &buf[from..]) {
            Some(offset) if buf[from + offset] == 0 => {
                self.blocked = true;
                None
            }
            Some(offset) => {
                self.scanned = from + offset;
                Some(from + offset)
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }
}

impl Decoder {
    pub fn new(limits: RequestLimits) -> Self {
        Decoder {
            limits,
            state: State::Start,
            spans: Vec::new(),
        }
    }

    /// Hand back the `spans` of a [`Request::Multibulk`] once it has run, so
    /// the next request reuses their allocation.
    pub fn recycle(&mut self, mut spans: Vec<Range<usize>>) {
        if spans.capacity() > self.spans.capacity() && spans.capacity() <= INITIAL_ARGS {
            spans.clear();
            self.spans = spans;
        }
    }

    /// [`Decoder::decode`], the request copied out of the buffer and its
    /// bytes consumed: for requests that must outlive the buffer (tests, tools).
    pub fn decode_owned(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Args>, ProtocolError> {
        let Some(request) = self.decode(buf, authenticated)? else {
            return Ok(None);
        };
        let args = request.args(buf).to_args();
        buf.advance(request.wire_len());
        if let Request::Multibulk { spans, .. } = request {
            self.recycle(spans);
        }
        Ok(Some(args))
    }

    /// Finds the next complete request at the front of `buf`: its bytes stay
    /// there, and the caller consumes them ([`Request::wire_len`]) once it is done
    /// with the request's arguments, before calling again.
    ///
    /// `Ok(None)` means more bytes are needed; call again once more have been
    /// appended to the same buffer (whose front must not be touched in
    /// between). Empty requests (`*0\r\n`, `*-10\r\n`, a blank inline line)
    /// are skipped. `authenticated` is false only while a password is
    /// required and not yet given (Redis `authRequired`); it then enforces
    /// the unauthenticated limits. After an error the connection must be
    /// closed: the decoder state is no longer meaningful.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Request>, ProtocolError> {
        loop {
            match std::mem::take(&mut self.state) {
                State::Start => match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => self.state = State::Count(LineScan::default()),
                    Some(_) => self.state = State::Inline(LineScan::default()),
                },
                State::Inline(mut scan) => {
                    let Some(newline) = scan.find(buf, b'\n') else {
                        if buf.len() > self.limits.max_inline {
                            return Err(ProtocolError::TooBigInlineRequest);
                        }
                        self.state = State::Inline(scan);
                        return Ok(None);
                    };
                    let line_len = match newline.checked_sub(1) {
                        Some(before) if buf[before] == b'\r' => before,
                        _ => newline,
                    };
                    let args = split_args(&buf[..line_len])?;
                    if !args.is_empty() {
                        return Ok(Some(Request::Inline {
                            len: newline + 1,
                            args,
                        }));
                    }
                    buf.advance(newline + 1);
                }
                State::Count(mut scan) => {
                    let Some(cr) = header_line(
                        &mut scan,
                        buf,
                        self.limits.max_inline,
                        ProtocolError::TooBigMbulkCountString,
                    )?
                    else {
                        self.state = State::Count(scan);
                        return Ok(None);
                    };
                    let count = string2ll(&buf[1..cr])
                        .filter(|&n| !exceeds(n, self.limits.max_multibulk))
                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                    if !authenticated && exceeds(count, self.limits.unauth_max_multibulk) {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength);
                    }
                    if let Ok(remaining @ 1..) = usize::try_from(count) {
                        self.spans.clear();
                        // A large count costs little until its arguments arrive.
                        self.spans.reserve(remaining.min(INITIAL_ARGS));
                        self.state = State::Args(Multibulk {
                            remaining,
                            pos: cr + 2,
                            bulk: Bulk::Header(LineScan::default()),
                        });
                    } else {
                        // No request (Redis skips it).
                        buf.advance(cr + 2);
                    }
                }
                State::Args(request) => match self.read_args(request, buf, authenticated)? {
                    Ok(len) => {
                        let spans = std::mem::take(&mut self.spans);
                        return Ok(Some(Request::Multibulk { len, spans }));
                    }
                    Err(partial) => {
                        self.state = State::Args(partial);
                        return Ok(None);
                    }
                },
            }
        }
    }

    /// Bytes at the buffer front that belong to arguments of the request
    /// being read, already found: Redis has moved these out of its query
    /// buffer into the command's arguments by then, so they are not what
    /// `client-query-buffer-limit` and CLIENT LIST's `qbuf` count.
    pub fn parsed_len(&self) -> usize {
        match &self.state {
            State::Args(request) => request.pos,
            _ => 0,
        }
    }

    /// While the decoder waits for a bulk payload: how many bytes the buffer
    /// front should have room for, a hint for sizing the next read: the
    /// request so far, then the payload plus its `\r\n`, but at most twice
    /// as much of it as has arrived (and at least 16 KiB). Room for a large argument is thus made
    /// in a few doubling steps as it arrives, and a declared but unsent bulk
    /// (`$536870912`) does not get its declared size reserved.
    pub fn pending_bulk_len(&self) -> Option<usize> {
        match &self.state {
            State::Args(Multibulk {
                bulk: Bulk::Payload { len, seen },
                pos,
                ..
            }) => {
                let ahead = seen.saturating_mul(2).max(READ_AHEAD_FLOOR);
                Some(pos.saturating_add(len.saturating_add(2).min(ahead)))
            }
            _ => None,
        }
    }

    /// Reads arguments until the request is complete (`Ok(Ok(its length))`)
    /// or the buffer runs dry (`Ok(Err(partial))`), noting where each lies in
    /// `self.spans`.
    fn read_args(
        &mut self,
        mut request: Multibulk,
        buf: &[u8],
        authenticated: bool,
    ) -> Result<Result<usize, Multibulk>, ProtocolError> {
        loop {
            let rest = &buf[request.pos..];
            match &mut request.bulk {
                Bulk::Header(scan) => {
                    let Some(cr) = header_line(
                        scan,
                        rest,
                        self.limits.max_inline,
                        ProtocolError::TooBigBulkCountString,
                    )?
                    else {
                        return Ok(Err(request));
                    };
                    if rest[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar { got: rest[0] });
                    }
                    let len = string2ll(&rest[1..cr])
                        .filter(|&n| n >= 0 && !exceeds(n, self.limits.max_bulk))
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    if !authenticated && len > self.limits.unauth_max_bulk {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    request.pos += cr + 2;
                    request.bulk = Bulk::Payload { len, seen: 0 };
                }
                Bulk::Payload { len, seen } => {
                    let len = *len;
                    if rest.len() < len.saturating_add(2) {
                        *seen = rest.len();
                        return Ok(Err(request));
                    }
                    self.spans.push(request.pos..request.pos + len);
                    // Redis skips the two bytes after the payload unchecked.
                    request.pos += len + 2;
                    request.remaining -= 1;
                    if request.remaining == 0 {
                        return Ok(Ok(request.pos));
                    }
                    request.bulk = Bulk::Header(LineScan::default());
                }
            }
        }
    }
}

/// Finds the `\r` ending a `*` or `$` line, once the byte after it has arrived
/// too. Errors with `too_big` when no `\r` is in sight and more than
/// `max_inline` bytes wait.
fn header_line(
    scan: &mut LineScan,
    buf: &[u8],
    max_inline: usize,
    too_big: ProtocolError,
) -> Result<Option<usize>, ProtocolError> {
    match scan.find(buf, b'\r') {
        None if buf.len() > max_inline => Err(too_big),
        None => Ok(None),
        // Redis wants one byte after the `\r` (meant to be `\n`, not checked).
        Some(cr) if cr + 2 > buf.len() => Ok(None),
        Some(cr) => Ok(Some(cr)),
    }
}

/// Whether `value` is above `limit` (a negative value never is).
fn exceeds(value: i64, limit: usize) -> bool {
    u64::try_from(value).is_ok_and(|v| v > limit as u64)
}

/// Redis's `string2ll`: a decimal `i64` with an optional `-`, no `+`, no
/// leading zeros (only `0` itself), no `-0`, and fewer than 21 characters.
fn string2ll(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() >= 21 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = u64::from(first - b'0');
    for &digit in rest {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// C `isspace` in the "C" locale, which Redis uses for character classes.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Redis's `sdssplitargs`: splits an inline line into arguments, honouring
/// `"..."` (with `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<any>` escapes) and
/// `'...'` (with only `\'`). A closing quote must be followed by a blank or
/// the end of the line. The arguments are copied out of `line`.
///
/// Hand-written because the exact Redis rules (which blanks end a token, what
/// a closing quote may touch) are the behaviour being reproduced.
fn split_args(line: &[u8]) -> Result<Args, ProtocolError> {
    // The line holds no NUL (the newline search stops at one), so reading
    // past its end as NUL mirrors the C string walk.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Args::default();
    let mut p = 0;
    loop {
        while at(p) != 0 && is_c_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(args);
        }
        let start = p;
        // Becomes Some once a quote opens: from then on bytes are unescaped.
        let mut owned: Option<Vec<u8>> = None;
        let mut end = p;
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(p);
            if in_double {
                let text = owned.get_or_insert_with(Vec::new);
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && let (Some(high), Some(low)) = (hex_value(at(p + 2)), hex_value(at(p + 3)))
                {
                    text.push(high * 16 + low);
                    p += 4;
                } else if c == b'\\' && at(p + 1) != 0 {
                    text.push(match at(p + 1) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => b'\x08',
                        b'a' => b'\x07',
                        other => other,
                    });
                    p += 2;
                } else if c == b'"' {
                    closing_quote(at(p + 1))?;
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    text.push(c);
                    p += 1;
                }
            } else if in_single {
                let text = owned.get_or_insert_with(Vec::new);
                if c == b'\\' && at(p + 1) == b'\'' {
                    text.push(b'\'');
                    p += 2;
                } else if c == b'\'' {
                    closing_quote(at(p + 1))?;
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    text.push(c);
                    p += 1;
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        end = p;
                        if c != 0 {
                            p += 1;
                        }
                        break;
                    }
                    b'"' | b'\'' => {
                        // The unquoted prefix (`ab` in `ab"cd"`) joins the argument.
                        owned = Some(line[start..p].to_vec());
                        in_double = c == b'"';
                        in_single = c == b'\'';
                    }
                    _ => {}
                }
                p += 1;
            }
        }
        match owned {
            Some(text) => args.push(&text),
            None => args.push(&line[start..end]),
        }
    }
}

/// A closing quote must be followed by a blank or the end of the line.
fn closing_quote(next: u8) -> Result<(), ProtocolError> {
    if next != 0 && !is_c_space(next) {
        return Err(ProtocolError::UnbalancedQuotes);
    }
    Ok(())
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How decoding a whole input ends, after the requests it yields.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum End {
        NeedMore,
        Error(ProtocolError),
    }

    /// Every request decoded, then how decoding stopped.
    type Outcome = (Vec<Vec<Vec<u8>>>, End);

    /// Feeds `input` in the given chunks, decoding after each one as the
    /// server does after each read.
    fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, auth: bool) -> Outcome {
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut buf = BytesMut::new();
        let mut requests = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode_owned(&mut buf, auth) {
                    Ok(Some(args)) => {
                        requests.push(args.list().iter().map(<[u8]>::to_vec).collect())
                    }
                    Ok(None) => break,
                    Err(e) => return (requests, End::Error(e)),
                }
            }
        }
        (requests, End::NeedMore)
    }

    fn decode_whole(input: &[u8], auth: bool) -> Outcome {
        decode_chunks([input], auth)
    }

    fn args(list: &[&[u8]]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.to_vec()).collect()
    }

    fn err(e: ProtocolError) -> End {
        End::Error(e)
    }

    struct Case {
        input: Vec<u8>,
        authenticated: bool,
        requests: Vec<Vec<Vec<u8>>>,
        end: End,
        /// False when the outcome depends on how much is buffered at once
        /// (an over-long inline line is fine only if its newline came with it).
        chunk_invariant: bool,
    }

    fn case(input: &[u8], requests: &[&[&[u8]]], end: End) -> Case {
        Case {
            input: input.to_vec(),
            authenticated: true,
            requests: requests.iter().map(|r| args(r)).collect(),
            end,
            chunk_invariant: true,
        }
    }

    fn unauth(mut c: Case) -> Case {
        c.authenticated = false;
        c
    }

    /// Inputs and what Redis does with them; every error text was checked
    /// against a real redis-server by sending the same bytes.
    fn cases() -> Vec<Case> {
        use End::NeedMore;
        use ProtocolError::*;
        let big = |prefix: &[u8], fill: u8, n: usize, suffix: &[u8]| {
            let mut v = prefix.to_vec();
            v.resize(prefix.len() + n, fill);
            v.extend_from_slice(suffix);
            v
        };
        let mut long_inline = case(
            &big(b"ECHO ", b'A', 65 * 1024, b"\r\n"),
            &[&[b"ECHO", &[b'A'; 65 * 1024]]],
            NeedMore,
        );
        long_inline.chunk_invariant = false;
        vec![
            // Well-formed multibulk requests.
            case(b"*1\r\n$4\r\nPING\r\n", &[&[b"PING"]], NeedMore),
            case(
                b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nPING\r\n",
                &[&[b"ECHO", b"hi"], &[b"PING"]],
                NeedMore,
            ),
            case(
                b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n",
                &[&[b"PUBLISH", b"ch", b""]],
                NeedMore,
            ),
            case(
                b"*2\r\n$4\r\nECHO\r\n$7\r\na\0\r\nb\n\xff\r\n",
                &[&[b"ECHO", b"a\0\r\nb\n\xff"]],
                NeedMore,
            ),
            case(b"*1\r\n$4\r\nPI\0G\r\n", &[&[b"PI\0G"]], NeedMore),
            case(b"*1\r\n$4\r\nPIN", &[], NeedMore),
            case(b"*2\r\n$4\r\nECHO\r\n", &[], NeedMore),
            // Empty requests are skipped.
            case(b"*0\r\n*1\r\n$4\r\nPING\r\n", &[&[b"PING"]], NeedMore),
            case(b"*-10\r\nPING\r\n", &[&[b"PING"]], NeedMore),
            case(b"*-9223372036854775808\r\n", &[], NeedMore),
            case(b"\r\nPING\r\n", &[&[b"PING"]], NeedMore),
            case(b"  \t \x0b\r\n\n", &[], NeedMore),
            // Redis does not check the bytes after `\r` or after a payload.
            case(b"*1\rX$4\r\nPINGxy", &[&[b"PING"]], NeedMore),
            case(
                b"*1\r\n$4\r\nPINGxyPING\r\n",
                &[&[b"PING"], &[b"PING"]],
                NeedMore,
            ),
            // A NUL before the line end: the line never ends (strchr).
            case(b"*1\0\r\n$4\r\nPING\r\n", &[], NeedMore),
            case(b"*1\r\n$4\0\r\nPING\r\n", &[], NeedMore),
            case(b"PI\0NG\r\n", &[], NeedMore),
            // Inline requests: lone `\n`, stray `\r`, quoting like sdssplitargs.
            case(b"\nPING\n", &[&[b"PING"]], NeedMore),
            case(b"PING\r\r\n", &[&[b"PING"]], NeedMore),
            case(b"  SET  k\tv \r\n", &[&[b"SET", b"k", b"v"]], NeedMore),
            case(b"SET k \"a b\"\r\n", &[&[b"SET", b"k", b"a b"]], NeedMore),
            case(b"ECHO 'a\\'b'\r\n", &[&[b"ECHO", b"a'b"]], NeedMore),
            case(b"ECHO 'a\\nb'\r\n", &[&[b"ECHO", b"a\\nb"]], NeedMore),
            case(b"ECHO \"\\x41\\n\"\r\n", &[&[b"ECHO", b"A\n"]], NeedMore),
            case(
                b"ECHO \"\\t\\b\\a\\r\\q\\\"\\\\\"\r\n",
                &[&[b"ECHO", b"\t\x08\x07\rq\"\\"]],
                NeedMore,
            ),
            case(b"ECHO \"\\xZZ\\x4\"\r\n", &[&[b"ECHO", b"xZZx4"]], NeedMore),
            case(b"ECHO \"\\xfF\"\r\n", &[&[b"ECHO", b"\xff"]], NeedMore),
            case(b"ab\"c d\" e\r\n", &[&[b"abc d", b"e"]], NeedMore),
            case(b"ECHO \"\" ''\r\n", &[&[b"ECHO", b"", b""]], NeedMore),
            case(
                b"a\x0bb \"c\"\x0bd\r\n",
                &[&[b"a\x0bb", b"c", b"d"]],
                NeedMore,
            ),
            case(b"ECHO \xc3\xa9\r\n", &[&[b"ECHO", b"\xc3\xa9"]], NeedMore),
            long_inline,
            // Quoting errors.
            case(b"ECHO \"abc\r\n", &[], err(UnbalancedQuotes)),
            case(b"ECHO \"abc\\\r\n", &[], err(UnbalancedQuotes)),
            case(b"ECHO 'abc\r\n", &[], err(UnbalancedQuotes)),
            case(b"ECHO \"a\"b\r\n", &[], err(UnbalancedQuotes)),
            case(b"ECHO 'a'b\r\n", &[], err(UnbalancedQuotes)),
            case(b"ECHO a\"b c\"d\r\n", &[], err(UnbalancedQuotes)),
            case(
                b"PING\r\nECHO \"x\r\n",
                &[&[b"PING"]],
                err(UnbalancedQuotes),
            ),
            // Multibulk count errors.
            case(b"*x\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*01\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*+1\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*-0\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*1 \r\n", &[], err(InvalidMultibulkLength)),
            case(b"*1\n$4\r\nPING\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*2147483648\r\n", &[], err(InvalidMultibulkLength)),
            case(b"*2147483647\r\n", &[], NeedMore),
            case(b"*2000000\r\n", &[], NeedMore),
            // Bulk length errors.
            case(b"*1\r\n$x\r\n", &[], err(InvalidBulkLength)),
            case(b"*1\r\n$\r\n", &[], err(InvalidBulkLength)),
            case(b"*1\r\n$-1\r\n", &[], err(InvalidBulkLength)),
            case(b"*1\r\n$-0\r\n", &[], err(InvalidBulkLength)),
            case(b"*1\r\n$+4\r\nPING\r\n", &[], err(InvalidBulkLength)),
            case(b"*1\r\n$04\r\nPING\r\n", &[], err(InvalidBulkLength)),
            case(
                b"*1\r\n$9223372036854775808\r\n",
                &[],
                err(InvalidBulkLength),
            ),
            case(b"*1\r\n$536870913\r\n", &[], err(InvalidBulkLength)),
            case(b"*1\r\n$536870912\r\n", &[], NeedMore),
            // Argument lines must start with `$`.
            case(b"*1\r\nfoo\r\n", &[], err(ExpectedDollar { got: b'f' })),
            case(b"*1\r\n\x01\r\n", &[], err(ExpectedDollar { got: 1 })),
            case(b"*1\r\n\xff\r\n", &[], err(ExpectedDollar { got: 0xff })),
            case(b"*1\r\n\n\r\n", &[], err(ExpectedDollar { got: b'\n' })),
            case(b"*1\r\n\r\n", &[], err(ExpectedDollar { got: b'\r' })),
            case(b"*1\r\nfoo", &[], NeedMore),
            case(
                b"*3\r\n$4\r\nECHO\r\n$3\r\nabc\r\nfoo\r\n",
                &[],
                err(ExpectedDollar { got: b'f' }),
            ),
            // Lines still waiting for their end beyond 64 KiB.
            case(&big(b"", b'A', 64 * 1024, b""), &[], NeedMore),
            case(
                &big(b"", b'A', 64 * 1024 + 1, b""),
                &[],
                err(TooBigInlineRequest),
            ),
            case(
                &big(b"PI\0", b'G', 64 * 1024, b"\r\n"),
                &[],
                err(TooBigInlineRequest),
            ),
            case(
                &big(b"*", b'1', 64 * 1024, b""),
                &[],
                err(TooBigMbulkCountString),
            ),
            case(&big(b"*", b'1', 64 * 1024 - 1, b""), &[], NeedMore),
            case(
                &big(b"*1\0", b'1', 64 * 1024, b"\r\n"),
                &[],
                err(TooBigMbulkCountString),
            ),
            case(
                &big(b"*1\r\n$", b'1', 64 * 1024, b""),
                &[],
                err(TooBigBulkCountString),
            ),
            case(&big(b"*1\r\n$", b'1', 64 * 1024 - 1, b""), &[], NeedMore),
            // Before authentication (a password is set and not yet given).
            unauth(case(b"*11\r\n", &[], err(UnauthenticatedMultibulkLength))),
            unauth(case(b"*10\r\n", &[], NeedMore)),
            unauth(case(b"*-20\r\n", &[], NeedMore)),
            unauth(case(b"*2147483648\r\n", &[], err(InvalidMultibulkLength))),
            unauth(case(
                b"*1\r\n$16385\r\n",
                &[],
                err(UnauthenticatedBulkLength),
            )),
            unauth(case(b"*1\r\n$16384\r\n", &[], NeedMore)),
            unauth(case(b"*1\r\n$-1\r\n", &[], err(InvalidBulkLength))),
            unauth(case(b"*1\r\n$536870913\r\n", &[], err(InvalidBulkLength))),
            unauth(case(
                b"PING a b c d e f g h i j k l\r\n",
                &[&[
                    b"PING", b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i", b"j", b"k", b"l",
                ]],
                NeedMore,
            )),
        ]
    }

    #[test]
    fn decodes_table_of_inputs_like_redis() {
        for c in cases() {
            let got = decode_whole(&c.input, c.authenticated);
            let want = (c.requests.clone(), c.end.clone());
            assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(&c.input));
        }
    }

    #[test]
    fn outcome_does_not_depend_on_how_input_is_split() {
        for c in cases().into_iter().filter(|c| c.chunk_invariant) {
            let want = (c.requests.clone(), c.end.clone());
            let one_byte_at_a_time = decode_chunks(c.input.chunks(1), c.authenticated);
            assert_eq!(
                one_byte_at_a_time,
                want,
                "bytewise {:?}",
                String::from_utf8_lossy(&c.input)
            );
            // Two-way splits of the long inputs would take long; their
            // byte-at-a-time run above already covers every boundary.
            if c.input.len() > 4096 {
                continue;
            }
            for at in 0..=c.input.len() {
                let (head, tail) = c.input.split_at(at);
                let got = decode_chunks([head, tail], c.authenticated);
                assert_eq!(
                    got,
                    want,
                    "split at {at} of {:?}",
                    String::from_utf8_lossy(&c.input)
                );
            }
        }
    }

    #[test]
    fn long_inline_line_is_too_big_when_its_newline_is_late() {
        let mut line = b"ECHO ".to_vec();
        line.resize(65 * 1024, b'A');
        let outcome = decode_chunks([&line[..], b"\r\n"], true);
        assert_eq!(
            outcome,
            (vec![], End::Error(ProtocolError::TooBigInlineRequest))
        );
    }

    #[test]
    fn error_texts_match_redis_byte_for_byte() {
        use ProtocolError::*;
        let expected: [(ProtocolError, &[u8]); 13] = [
            (
                InvalidMultibulkLength,
                b"Protocol error: invalid multibulk length",
            ),
            (
                UnauthenticatedMultibulkLength,
                b"Protocol error: unauthenticated multibulk length",
            ),
            (
                ExpectedDollar { got: b'f' },
                b"Protocol error: expected '$', got 'f'",
            ),
            (
                ExpectedDollar { got: 1 },
                b"Protocol error: expected '$', got '\x01'",
            ),
            (
                ExpectedDollar { got: 0xff },
                b"Protocol error: expected '$', got '\xff'",
            ),
            (
                ExpectedDollar { got: b'\r' },
                b"Protocol error: expected '$', got ' '",
            ),
            (
                ExpectedDollar { got: b'\n' },
                b"Protocol error: expected '$', got ' '",
            ),
            (InvalidBulkLength, b"Protocol error: invalid bulk length"),
            (
                UnauthenticatedBulkLength,
                b"Protocol error: unauthenticated bulk length",
            ),
            (
                UnbalancedQuotes,
                b"Protocol error: unbalanced quotes in request",
            ),
            (
                TooBigInlineRequest,
                b"Protocol error: too big inline request",
            ),
            (
                TooBigMbulkCountString,
                b"Protocol error: too big mbulk count string",
            ),
            (
                TooBigBulkCountString,
                b"Protocol error: too big bulk count string",
            ),
        ];
        for (error, text) in expected {
            assert_eq!(error.message_bytes(), text, "{error:?}");
            if text.is_ascii() {
                assert_eq!(error.to_string().as_bytes(), text, "{error:?}");
            }
        }
    }

    #[test]
    fn bulk_arguments_are_read_from_the_buffer_which_keeps_them_until_consumed() {
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n*1"[..]);
        let base = buf.as_ptr() as usize;
        let mut decoder = Decoder::new(RequestLimits::default());
        let request = decoder.decode(&mut buf, true).unwrap().unwrap();
        assert_eq!(request.wire_len(), 25);
        let args = request.args(&buf);
        assert_eq!(args[0].as_ptr() as usize, base + 8);
        assert_eq!(args[1].as_ptr() as usize, base + 18);
        assert_eq!(args.iter().collect::<Vec<_>>(), [&b"ECHO"[..], b"hello"]);
        assert_eq!(buf.len(), 27, "nothing consumed");
        buf.advance(request.wire_len());
        let Request::Multibulk { spans, .. } = request else {
            panic!("a multibulk request");
        };
        let kept = spans.as_ptr();
        decoder.recycle(spans);
        buf.extend_from_slice(b"\r\n$4\r\nPING\r\n");
        let again = decoder.decode(&mut buf, true).unwrap().unwrap();
        assert_eq!(again.args(&buf).iter().collect::<Vec<_>>(), [&b"PING"[..]]);
        let Request::Multibulk { spans, .. } = again else {
            panic!("a multibulk request");
        };
        assert_eq!(spans.as_ptr(), kept, "the recycled ranges are reused");
    }

    #[test]
    fn inline_requests_own_their_arguments_and_leave_the_line_to_consume() {
        let mut buf = BytesMut::from(&b"ECHO \"a\\x41\" hello\r\nPING"[..]);
        let mut decoder = Decoder::new(RequestLimits::default());
        let request = decoder.decode(&mut buf, true).unwrap().unwrap();
        assert_eq!(request.wire_len(), 20);
        assert_eq!(
            request.args(&buf).iter().collect::<Vec<_>>(),
            [&b"ECHO"[..], b"aA", b"hello"]
        );
        assert_eq!(buf.len(), 24, "nothing consumed");
    }

    #[test]
    fn partial_line_is_not_rescanned_on_the_next_read() {
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut buf = BytesMut::new();
        for n in 1..=100 {
            buf.extend_from_slice(b"A");
            assert_eq!(decoder.decode(&mut buf, true), Ok(None));
            match &decoder.state {
                State::Inline(scan) => assert_eq!(scan.scanned, n),
                other => panic!("unexpected state {other:?}"),
            }
        }
    }

    #[test]
    fn pending_bulk_len_grows_with_the_payload_that_arrived() {
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$100000\r\nabc"[..]);
        // The request so far (13 bytes before the payload) stays in front.
        let head = 13;
        assert_eq!(decoder.decode(&mut buf, true), Ok(None));
        assert_eq!(decoder.pending_bulk_len(), Some(head + 16 * 1024));
        assert_eq!(&buf[head..], b"abc");
        buf.resize(head + 20_000, b'x');
        assert_eq!(decoder.decode(&mut buf, true), Ok(None));
        assert_eq!(decoder.pending_bulk_len(), Some(head + 40_000));
        buf.resize(head + 60_000, b'x');
        assert_eq!(decoder.decode(&mut buf, true), Ok(None));
        assert_eq!(decoder.pending_bulk_len(), Some(head + 100_002));
    }

    #[test]
    fn declared_but_unsent_bulk_does_not_ask_for_its_declared_size() {
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf, true), Ok(None));
        assert_eq!(decoder.pending_bulk_len(), Some(buf.len() + 16 * 1024));
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$10\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf, true), Ok(None));
        assert_eq!(decoder.pending_bulk_len(), Some(buf.len() + 12));
    }

    #[test]
    fn large_multibulk_count_reserves_few_argument_slots() {
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut buf = BytesMut::from(&b"*2147483647\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf, true), Ok(None));
        match &decoder.state {
            State::Args(_) => assert!(decoder.spans.capacity() <= INITIAL_ARGS),
            other => panic!("unexpected state {other:?}"),
        }
    }

    #[test]
    fn limits_can_be_lowered() {
        let limits = RequestLimits {
            max_multibulk: 2,
            max_bulk: 3,
            ..RequestLimits::default()
        };
        let mut decoder = Decoder::new(limits.clone());
        let mut buf = BytesMut::from(&b"*3\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf, true),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf, true),
            Err(ProtocolError::InvalidBulkLength)
        );
    }

    #[test]
    fn string2ll_follows_redis_rules() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        // 21 characters are too many even when the value would fit.
        assert_eq!(string2ll(b"-00000000000000000001"), None);
    }

    fn encode(request: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", request.len()).into_bytes();
        for arg in request {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Cuts `input` into chunks at the (sorted) positions `cuts` pick.
    fn split_at_random<'a>(input: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for to in points {
            chunks.push(&input[from..to]);
            from = to;
        }
        chunks.push(&input[from..]);
        chunks
    }

    proptest! {
        #[test]
        fn random_multibulk_requests_round_trip_across_random_splits(
            requests in prop::collection::vec(
                prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6),
                1..6,
            ),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let input: Vec<u8> = requests.iter().flat_map(|r| encode(r)).collect();
            let chunks = split_at_random(&input, &cuts);
            let outcome = decode_chunks(chunks, true);
            prop_assert_eq!(outcome, (requests, End::NeedMore));
        }

        #[test]
        fn mixed_inline_and_multibulk_pipelines_decode_in_order(
            requests in prop::collection::vec(
                (any::<bool>(), prop::collection::vec("[a-zA-Z0-9_:.-]{1,12}", 1..5)),
                1..8,
            ),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut input = Vec::new();
            let mut want = Vec::new();
            for (inline, words) in &requests {
                let request: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
                if *inline {
                    input.extend_from_slice(words.join(" ").as_bytes());
                    input.extend_from_slice(b"\r\n");
                } else {
                    input.extend_from_slice(&encode(&request));
                }
                want.push(request);
            }
            let chunks = split_at_random(&input, &cuts);
            prop_assert_eq!(decode_chunks(chunks, true), (want, End::NeedMore));
        }
    }
}
