//! A request's arguments, as commands see them.
//!
//! A multibulk request is run straight from the connection's read buffer:
//! the decoder notes where each argument lies in the request's bytes, and
//! a command reads its arguments through an [`ArgList`], a view of those
//! bytes and ranges. Nothing is allocated, copied or reference-counted per
//! argument on the way to the command; a command that keeps a name (a
//! channel it subscribes to, a user it creates) copies those bytes itself.
//!
//! [`Args`] owns its bytes: inline requests (unescaped, so no longer the
//! bytes that arrived), requests kept beyond their turn (a PUBLISH that
//! waits for ring room, MULTI's queue, what EXEC ran), and tests.

use std::ops::{Bound, Index, Range, RangeBounds};

/// A request's arguments: ranges of one byte slice (never empty when a
/// command runs: `args[0]` is its name).
#[derive(Clone, Copy)]
pub struct ArgList<'a> {
    bytes: &'a [u8],
    spans: &'a [Range<usize>],
}

impl<'a> ArgList<'a> {
    /// The arguments at `spans` of `bytes` (each range within it).
    pub fn new(bytes: &'a [u8], spans: &'a [Range<usize>]) -> Self {
        ArgList { bytes, spans }
    }

    pub fn len(self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(self) -> bool {
        self.spans.is_empty()
    }

    /// The argument at `i`, if there is one.
    pub fn get(self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|r| &self.bytes[r.clone()])
    }

    pub fn first(self) -> Option<&'a [u8]> {
        self.get(0)
    }

    pub fn last(self) -> Option<&'a [u8]> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The arguments in `range` (as `&args[range]` on a slice).
    pub fn slice(self, range: impl RangeBounds<usize>) -> ArgList<'a> {
        let bounds: (Bound<usize>, Bound<usize>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        ArgList {
            bytes: self.bytes,
            spans: &self.spans[bounds],
        }
    }

    /// The arguments in `range` as far as there are any (as
    /// `args.get(range).unwrap_or_default()` on a slice).
    pub fn within(self, range: Range<usize>) -> ArgList<'a> {
        let end = range.end.min(self.len());
        self.slice(range.start.min(end)..end)
    }

    pub fn iter(self) -> Iter<'a> {
        Iter {
            bytes: self.bytes,
            spans: self.spans.iter(),
        }
    }

    /// Bytes the arguments hold (not counting the request's framing).
    pub fn payload_len(self) -> usize {
        self.spans.iter().map(|r| r.len()).sum()
    }

    /// The arguments as a vector of slices: for commands off the hot path
    /// that match on them as a slice (`[opt, value]`) or walk them in pairs.
    pub fn to_vec(self) -> Vec<&'a [u8]> {
        self.iter().collect()
    }

    /// An owned copy of these arguments.
    pub fn to_args(self) -> Args {
        let mut args = Args {
            bytes: Vec::with_capacity(self.payload_len()),
            spans: Vec::with_capacity(self.len()),
        };
        for a in self.iter() {
            args.push(a);
        }
        args
    }
}

impl<'a> Index<usize> for ArgList<'a> {
    type Output = [u8];

    fn index(&self, i: usize) -> &[u8] {
        &self.bytes[self.spans[i].clone()]
    }
}

impl<'a> IntoIterator for ArgList<'a> {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The arguments of an [`ArgList`], in order.
#[derive(Clone)]
pub struct Iter<'a> {
    bytes: &'a [u8],
    spans: std::slice::Iter<'a, Range<usize>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        self.spans.next().map(|r| &bytes[r.clone()])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let bytes = self.bytes;
        self.spans.next_back().map(|r| &bytes[r.clone()])
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::fmt::Debug for ArgList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|a| a.escape_ascii().to_string()))
            .finish()
    }
}

/// Arguments that own their bytes, laid end to end.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Args {
    bytes: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl Args {
    pub fn list(&self) -> ArgList<'_> {
        ArgList::new(&self.bytes, &self.spans)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Add an argument at the end.
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(arg);
        self.spans.push(start..self.bytes.len());
    }

    /// Heap bytes held (for memory accounting: MULTI's queue).
    pub fn memory(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * std::mem::size_of::<Range<usize>>()
    }
}

impl<'a> FromIterator<&'a [u8]> for Args {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut args = Args::default();
        for a in iter {
            args.push(a);
        }
        args
    }
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.list().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_its_arguments_from_their_ranges() {
        let bytes = b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n";
        let spans = [8..15, 21..23, 29..29];
        let args = ArgList::new(bytes, &spans);
        assert_eq!(args.len(), 3);
        assert_eq!(&args[0], b"PUBLISH");
        assert_eq!(args.get(1), Some(&b"ch"[..]));
        assert_eq!(args.last(), Some(&b""[..]));
        assert_eq!(args.get(3), None);
        let rest = args.slice(1..);
        assert_eq!(rest.len(), 2);
        assert_eq!(&rest[0], b"ch");
        assert!(args.slice(3..).is_empty());
        assert_eq!(args.payload_len(), 9);
        let owned = args.to_args();
        assert_eq!(
            owned.list().iter().collect::<Vec<_>>(),
            args.iter().collect::<Vec<_>>()
        );
    }
}
