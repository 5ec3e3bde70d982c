//! Per-subscriber verification of what arrived against what was published.
//!
//! Every (publisher, channel) pair is one *stream* whose sequence numbers start
//! at 0 and grow by one. A [`StreamCheck`] follows one stream as messages
//! arrive and, once the publisher says how many it sent, tells exactly how many
//! were lost (including the tail that never came), arrived out of order, or
//! arrived twice. A [`SubscriberCheck`] holds the streams one connection must
//! see and counts anything else as corrupt.

use serde::Serialize;
use std::collections::HashMap;

/// Verification totals; any non-zero count except `received` fails a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Messages that arrived (duplicates included).
    pub received: u64,
    /// Messages published (and promised) that never arrived.
    pub lost: u64,
    /// Messages that arrived after a later message of the same stream.
    pub reordered: u64,
    /// Messages that arrived more than once.
    pub duplicates: u64,
    /// Messages this subscriber should not see, or whose bytes are damaged.
    pub corrupt: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.received += o.received;
        self.lost += o.lost;
        self.reordered += o.reordered;
        self.duplicates += o.duplicates;
        self.corrupt += o.corrupt;
    }

    /// True when nothing was lost, reordered, duplicated or damaged.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.reordered == 0 && self.duplicates == 0 && self.corrupt == 0
    }
}

/// Follows one (publisher, channel) stream.
///
/// Gaps are remembered as half-open ranges of missing sequence numbers, so a
/// late arrival can be told apart from a duplicate. In a clean run the range
/// list stays empty and `observe` is one compare and one add.
#[derive(Debug, Default, Clone)]
pub struct StreamCheck {
    next: u64,
    missing: Vec<(u64, u64)>,
    received: u64,
    reordered: u64,
    duplicates: u64,
}

impl StreamCheck {
    /// Records the arrival of `seq`.
    #[inline]
    pub fn observe(&mut self, seq: u64) {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.missing.push((self.next, seq));
            self.next = seq + 1;
        } else {
            self.late(seq);
        }
    }

    #[cold]
    fn late(&mut self, seq: u64) {
        // Ranges are disjoint and sorted, so the candidate is found by binary search.
        let i = self.missing.partition_point(|&(_, end)| end <= seq);
        match self.missing.get(i).copied() {
            Some((start, end)) if start <= seq => {
                self.reordered += 1;
                match (start == seq, end == seq + 1) {
                    (true, true) => {
                        self.missing.remove(i);
                    }
                    (true, false) => self.missing[i].0 += 1,
                    (false, true) => self.missing[i].1 -= 1,
                    (false, false) => {
                        self.missing[i].1 = seq;
                        self.missing.insert(i + 1, (seq + 1, end));
                    }
                }
            }
            _ => self.duplicates += 1,
        }
    }

    /// Final counts once the publisher reports it sent `sent` messages
    /// (sequence numbers `0..sent`) on this stream, every one answered.
    pub fn finish(&self, sent: u64) -> Counts {
        self.finish_sent(Sent {
            answered: sent,
            sent,
        })
    }

    /// Final counts given what the publisher sent on this stream and how
    /// many of those the server answered. Only answered messages were
    /// promised, so only they can be lost; one sent and never answered (the
    /// publisher gave up waiting) may or may not arrive, and is no phantom.
    pub fn finish_sent(&self, Sent { answered, sent }: Sent) -> Counts {
        let overlap = |lo: u64, hi: u64| -> u64 {
            self.missing
                .iter()
                .map(|&(s, e)| e.min(hi).saturating_sub(s.max(lo)))
                .sum()
        };
        let lost = overlap(0, answered) + answered.saturating_sub(self.next);
        // Sequence numbers at or past `sent` were never published: a server
        // that invents or replays messages is caught here.
        let phantom = self
            .next
            .saturating_sub(sent)
            .saturating_sub(overlap(sent, self.next));
        Counts {
            received: self.received,
            lost,
            reordered: self.reordered,
            duplicates: self.duplicates,
            corrupt: phantom,
        }
    }
}

/// What a publisher did on one stream: messages sent (sequence numbers
/// `0..sent`) and, of those, the first `answered` got their PUBLISH reply.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub answered: u64,
    pub sent: u64,
}

/// Stream key: publisher id in the high half, channel index in the low half.
#[inline]
pub fn stream_key(publisher: u32, channel: u32) -> u64 {
    ((publisher as u64) << 32) | channel as u64
}

/// The streams one subscriber connection must receive, and what it got.
///
/// Streams live in a vector found through a hash index; the last stream used
/// is remembered, because consecutive messages usually belong to the same one
/// (always, in a single-channel fan-out), which skips the hash lookup.
#[derive(Debug)]
pub struct SubscriberCheck {
    streams: Vec<StreamCheck>,
    keys: Vec<u64>,
    index: HashMap<u64, u32, foldhash::fast::FixedState>,
    last: Option<(u64, u32)>,
    /// Messages outside the expected streams or with damaged bytes.
    pub corrupt: u64,
}

impl SubscriberCheck {
    /// A check expecting exactly the given (publisher, channel) streams.
    pub fn new(expected: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut s = SubscriberCheck {
            streams: Vec::new(),
            keys: Vec::new(),
            index: HashMap::default(),
            last: None,
            corrupt: 0,
        };
        for (p, c) in expected {
            let key = stream_key(p, c);
            if !s.index.contains_key(&key) {
                s.index.insert(key, s.streams.len() as u32);
                s.streams.push(StreamCheck::default());
                s.keys.push(key);
            }
        }
        s
    }

    /// Records an intact message; a stream this subscriber should not see counts as corrupt.
    #[inline]
    pub fn observe(&mut self, publisher: u32, channel: u32, seq: u64) {
        let key = stream_key(publisher, channel);
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => match self.index.get(&key) {
                Some(&i) => {
                    self.last = Some((key, i));
                    i
                }
                None => {
                    self.corrupt += 1;
                    return;
                }
            },
        };
        self.streams[i as usize].observe(seq);
    }

    /// Records a message whose bytes failed the payload check.
    #[inline]
    pub fn observe_corrupt(&mut self) {
        self.corrupt += 1;
    }

    /// Totals, given how many messages each publisher sent on each channel
    /// (every one answered).
    pub fn finish(&self, sent: impl Fn(u32, u32) -> u64) -> Counts {
        self.finish_sent(|p, c| {
            let n = sent(p, c);
            Sent {
                answered: n,
                sent: n,
            }
        })
    }

    /// Totals, given what each publisher sent on each channel and how much
    /// of it was answered.
    pub fn finish_sent(&self, sent: impl Fn(u32, u32) -> Sent) -> Counts {
        let mut total = Counts {
            corrupt: self.corrupt,
            received: self.corrupt,
            ..Counts::default()
        };
        for (key, s) in self.keys.iter().zip(&self.streams) {
            total.add(&s.finish_sent(sent((key >> 32) as u32, *key as u32)));
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u64], sent: u64) -> Counts {
        let mut s = StreamCheck::default();
        for &q in seqs {
            s.observe(q);
        }
        s.finish(sent)
    }

    #[test]
    fn in_order_complete_stream_is_clean() {
        let c = run(&[0, 1, 2, 3], 4);
        assert_eq!(
            c,
            Counts {
                received: 4,
                ..Counts::default()
            }
        );
        assert!(c.is_clean());
    }

    #[test]
    fn gaps_are_counted_as_lost_exactly() {
        // 2 and 5..=7 never arrive.
        let c = run(&[0, 1, 3, 4, 8, 9], 10);
        assert_eq!(c.lost, 4);
        assert_eq!((c.reordered, c.duplicates, c.corrupt), (0, 0, 0));
    }

    #[test]
    fn tail_loss_is_counted_from_the_published_count() {
        let c = run(&[0, 1, 2], 10);
        assert_eq!(c.lost, 7);
        // A stream that saw nothing at all lost everything published on it.
        assert_eq!(run(&[], 5).lost, 5);
    }

    #[test]
    fn duplicates_are_counted_and_not_mistaken_for_reordering() {
        let c = run(&[0, 1, 1, 2, 0, 2], 3);
        assert_eq!(c.duplicates, 3);
        assert_eq!((c.lost, c.reordered), (0, 0));
        assert_eq!(c.received, 6);
    }

    #[test]
    fn late_arrivals_count_as_reordered_not_lost() {
        // 1 and 3 arrive late, after 4; 6 is never seen.
        let c = run(&[0, 2, 4, 1, 3, 5, 7], 8);
        assert_eq!(c.reordered, 2);
        assert_eq!(c.lost, 1);
        assert_eq!(c.duplicates, 0);
    }

    #[test]
    fn late_arrival_inside_a_long_gap_splits_it() {
        // Gap 1..10, then 5 arrives late, then 5 again (duplicate), then 1 and 9.
        let c = run(&[0, 10, 5, 5, 1, 9], 11);
        assert_eq!(c.reordered, 3);
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.lost, 9 - 3); // 1..=9 missing, three of them came late
    }

    #[test]
    fn sequence_numbers_never_published_are_corrupt() {
        let c = run(&[0, 1, 2, 3, 4], 3);
        assert_eq!(c.corrupt, 2);
        assert_eq!(c.lost, 0);
        // A gap that reaches past the published count is not loss of unpublished messages.
        let c = run(&[0, 6], 3);
        assert_eq!((c.lost, c.corrupt), (2, 1));
    }

    #[test]
    fn unanswered_messages_are_neither_lost_nor_phantoms() {
        let mut s = StreamCheck::default();
        for q in [0, 1, 2, 3, 5] {
            s.observe(q);
        }
        // 8 sent, the first 3 answered: 4, 6 and 7 were never promised.
        let c = s.finish_sent(Sent {
            answered: 3,
            sent: 8,
        });
        assert!(c.is_clean(), "{c:?}");
        assert_eq!(c.received, 5);
        // A gap among answered messages is loss; one past `sent` a phantom.
        s.observe(9);
        let c = s.finish_sent(Sent {
            answered: 5,
            sent: 8,
        });
        assert_eq!((c.lost, c.corrupt), (1, 1));
    }

    #[test]
    fn subscriber_counts_unexpected_streams_as_corrupt_and_sums_streams() {
        let mut s = SubscriberCheck::new([(0, 1), (1, 1)]);
        s.observe(0, 1, 0);
        s.observe(0, 1, 1);
        s.observe(1, 1, 0);
        s.observe(2, 1, 0); // publisher 2 does not publish here
        s.observe(1, 1, 1); // back to a known stream after an unknown one
        s.observe_corrupt();
        let c = s.finish(|p, _| if p == 0 { 2 } else { 3 });
        assert_eq!(c.corrupt, 2);
        assert_eq!(c.lost, 1); // publisher 1 sent 3, two arrived
        assert_eq!(c.received, 6);
    }
}
