//! The 16384 hash slots: a bitmap type for sets of them, their rendering as
//! ranges, and the hash that maps a key (for ringcast, a shard channel) to
//! its slot, exactly as Redis's `keyHashSlot`.

use std::fmt;

/// A hash slot, `0..SLOTS`.
pub type Slot = u16;

/// How many hash slots a Redis Cluster has.
pub const SLOTS: usize = 16384;

const WORDS: usize = SLOTS / 64;

/// A set of slots (Redis keeps the same thing as a 2 KB bitmap per node).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotSet(Box<[u64; WORDS]>);

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet(Box::new([0; WORDS]))
    }
}

impl SlotSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every slot from `start` to `end`, both included.
    pub fn range(start: Slot, end: Slot) -> Self {
        let mut set = Self::new();
        for slot in start..=end {
            set.insert(slot);
        }
        set
    }

    pub fn contains(&self, slot: Slot) -> bool {
        let slot = usize::from(slot);
        slot < SLOTS && self.0[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// Add `slot`; false if it was there already. Slots past the last are ignored.
    pub fn insert(&mut self, slot: Slot) -> bool {
        let slot = usize::from(slot);
        if slot >= SLOTS {
            return false;
        }
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        let added = self.0[word] & bit == 0;
        self.0[word] |= bit;
        added
    }

    /// Remove `slot`; false if it was not there.
    pub fn remove(&mut self, slot: Slot) -> bool {
        let slot = usize::from(slot);
        if slot >= SLOTS {
            return false;
        }
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        let had = self.0[word] & bit != 0;
        self.0[word] &= !bit;
        had
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The slots of `self` that are not in `other`.
    pub fn difference(&self, other: &SlotSet) -> SlotSet {
        let mut out = self.clone();
        for (w, o) in out.0.iter_mut().zip(other.0.iter()) {
            *w &= !o;
        }
        out
    }

    /// The slots, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some((i * 64 + bit) as Slot)
            })
        })
    }

    /// The slots as maximal runs `(start, end)`, ascending, both ends included.
    pub fn ranges(&self) -> Vec<(Slot, Slot)> {
        let mut out: Vec<(Slot, Slot)> = Vec::new();
        for slot in self.iter() {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
    }
}

impl FromIterator<Slot> for SlotSet {
    fn from_iter<I: IntoIterator<Item = Slot>>(iter: I) -> Self {
        let mut set = SlotSet::new();
        for slot in iter {
            set.insert(slot);
        }
        set
    }
}

impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_ranges(&self.ranges()))
    }
}

/// Ranges as CLUSTER NODES writes them: `0-5460 5462 6000-6001`.
pub(crate) fn render_ranges(ranges: &[(Slot, Slot)]) -> String {
    let mut out = String::with_capacity(ranges.len() * 12);
    let mut digits = itoa::Buffer::new();
    for (i, (start, end)) in ranges.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(digits.format(*start));
        if start != end {
            out.push('-');
            out.push_str(digits.format(*end));
        }
    }
    out
}

/// One `N` or `N-M` entry of a CLUSTER NODES line, as a range.
pub(crate) fn parse_range(text: &str) -> Option<(Slot, Slot)> {
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    let start: Slot = start.parse().ok()?;
    let end: Slot = end.parse().ok()?;
    (usize::from(start) < SLOTS && usize::from(end) < SLOTS).then_some((start, end))
}

/// The slot of a key (a shard channel): CRC16 of the whole key, or of the
/// part between the first `{` and the first `}` after it when that part is
/// not empty (a "hash tag", which lets related keys share a slot).
pub fn key_slot(key: &[u8]) -> Slot {
    let tagged = memchr::memchr(b'{', key).and_then(|open| {
        let rest = &key[open + 1..];
        let close = memchr::memchr(b'}', rest)?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS as u16 - 1)
}

/// CRC16-CCITT (XModem: polynomial 0x1021, initial value 0), Redis's `crc16`.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from `redis-cli cluster keyslot` on redis-server 7.0.15.
    #[test]
    fn key_slots_match_redis_including_hash_tags() {
        let vectors: &[(&[u8], Slot)] = &[
            (b"", 0),
            (b"a", 15495),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"{}", 15257),
            (b"{", 4092),
            (b"}", 12090),
            (b"{a", 10276),
            (b"a}", 5921),
            (b"{a}", 15495),
            (b"123456789", 12739),
            (b"hello world", 15332),
            (b"__redis__", 12530),
            (b"channel:news", 1752),
            (b"{channel}:news", 10328),
            (b"x{}y", 16116),
            (b"{{}}", 4092),
            (b"ab{cd}ef{gh}", 12891),
        ];
        for (key, slot) in vectors {
            assert_eq!(key_slot(key), *slot, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn crc16_is_xmodem() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
    }

    #[test]
    fn ranges_merge_runs_and_keep_single_slots_alone() {
        let set: SlotSet = [0, 1, 2, 5, 7, 8, 16383].into_iter().collect();
        assert_eq!(set.ranges(), vec![(0, 2), (5, 5), (7, 8), (16383, 16383)]);
        assert_eq!(render_ranges(&set.ranges()), "0-2 5 7-8 16383");
        assert_eq!(set.len(), 7);
        assert!(SlotSet::new().ranges().is_empty());
        assert_eq!(SlotSet::range(0, 16383).ranges(), vec![(0, 16383)]);
    }

    #[test]
    fn set_operations() {
        let mut a = SlotSet::range(10, 20);
        assert!(!a.insert(10));
        assert!(a.remove(15));
        assert!(!a.remove(15));
        assert!(!a.insert(16384));
        let b = SlotSet::range(18, 30);
        assert_eq!(a.difference(&b).ranges(), vec![(10, 14), (16, 17)]);
    }

    #[test]
    fn range_entries_parse_in_bounds_only() {
        assert_eq!(parse_range("5"), Some((5, 5)));
        assert_eq!(parse_range("0-5460"), Some((0, 5460)));
        assert_eq!(parse_range("16384"), None);
        assert_eq!(parse_range("1-x"), None);
    }
}
