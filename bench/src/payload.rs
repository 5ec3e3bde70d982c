//! The bytes every published message carries, so that subscribers can verify it.
//!
//! Layout (little endian), then padding up to the configured payload size:
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 4    | magic `RCB1`                                            |
//! | 4      | 4    | publisher id                                            |
//! | 8      | 4    | channel index (the channel name must agree with it)     |
//! | 12     | 4    | total payload length                                    |
//! | 16     | 8    | sequence number per (publisher, channel), from 0        |
//! | 24     | 8    | intended send time, CLOCK_MONOTONIC ns                  |
//! | 32..   |      | padding: every byte equals [`fill_byte`] of the header   |
//!
//! The padding depends on the header, so a message spliced from two others or
//! truncated and re-padded by a broken server fails the check.

/// First four bytes of every payload.
pub const MAGIC: [u8; 4] = *b"RCB1";
/// Bytes before the padding; also the smallest payload size the tool accepts.
pub const HEADER_LEN: usize = 32;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub publisher: u32,
    pub channel: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// Why a payload is not one this tool wrote (or was damaged on the way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    TooShort,
    BadMagic,
    BadLength,
    BadPadding,
}

/// The padding byte for a header: mixes publisher and sequence so neighbours differ.
#[inline]
pub fn fill_byte(publisher: u32, seq: u64) -> u8 {
    (seq as u8) ^ (publisher as u8).rotate_left(3) ^ 0xA5
}

/// Appends a payload of exactly `size` bytes (`size >= HEADER_LEN`).
#[inline]
pub fn write(out: &mut Vec<u8>, h: &Header, size: usize) {
    debug_assert!(size >= HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&h.publisher.to_le_bytes());
    out.extend_from_slice(&h.channel.to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&h.seq.to_le_bytes());
    out.extend_from_slice(&h.sent_ns.to_le_bytes());
    let new_len = out.len() + (size - HEADER_LEN);
    out.resize(new_len, fill_byte(h.publisher, h.seq));
}

#[inline]
fn u32_at(p: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&p[at..at + 4]);
    u32::from_le_bytes(b)
}

#[inline]
fn u64_at(p: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads and checks a payload. `check_padding` verifies every padding byte
/// (cheap: the comparison vectorises), otherwise only the length is checked.
#[inline]
pub fn read(p: &[u8], check_padding: bool) -> Result<Header, Corrupt> {
    if p.len() < HEADER_LEN {
        return Err(Corrupt::TooShort);
    }
    if p[0..4] != MAGIC {
        return Err(Corrupt::BadMagic);
    }
    if u32_at(p, 12) as usize != p.len() {
        return Err(Corrupt::BadLength);
    }
    let h = Header {
        publisher: u32_at(p, 4),
        channel: u32_at(p, 8),
        seq: u64_at(p, 16),
        sent_ns: u64_at(p, 24),
    };
    if check_padding {
        let f = fill_byte(h.publisher, h.seq);
        if !p[HEADER_LEN..].iter().all(|&b| b == f) {
            return Err(Corrupt::BadPadding);
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            publisher: 7,
            channel: 12345,
            seq: 987_654_321,
            sent_ns: 1_000_000_007,
        }
    }

    #[test]
    fn written_payload_reads_back_with_exact_size() {
        for size in [HEADER_LEN, 64, 4096] {
            let mut out = Vec::new();
            write(&mut out, &sample(), size);
            assert_eq!(out.len(), size);
            assert_eq!(read(&out, true), Ok(sample()));
        }
    }

    #[test]
    fn flipped_padding_byte_is_corrupt() {
        let mut out = Vec::new();
        write(&mut out, &sample(), 64);
        out[50] ^= 1;
        assert_eq!(read(&out, true), Err(Corrupt::BadPadding));
        // Without the padding check the same damage goes unseen.
        assert!(read(&out, false).is_ok());
    }

    #[test]
    fn truncated_or_foreign_payload_is_corrupt() {
        let mut out = Vec::new();
        write(&mut out, &sample(), 64);
        assert_eq!(read(&out[..63], true), Err(Corrupt::BadLength));
        assert_eq!(read(&out[..10], true), Err(Corrupt::TooShort));
        out[0] = b'X';
        assert_eq!(read(&out, true), Err(Corrupt::BadMagic));
    }
}
