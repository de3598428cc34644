//! RFC 4648 base32 of 20-byte digests (a SHA-1 info-hash in a magnet link): 160 bits are
//! exactly 32 digits, so there is no padding. Digits are read in either case and written in
//! uppercase.
//!
//! ```
//! use bt_proto::encoding::base32;
//! let bytes: [u8; 20] = core::array::from_fn(|i| i as u8);
//! assert_eq!(base32::encode(&bytes), "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT");
//! assert_eq!(base32::decode("aaaqeayeaudaocajbifqydiob4ibceqt"), Some(bytes));
//! ```

/// The digits, by value.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Digits per 20-byte digest.
pub const DIGEST_DIGITS: usize = 32;

/// The value of one base32 digit (either case), if it is one.
fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Decodes [`DIGEST_DIGITS`] base32 digits into 20 bytes; `None` for another length or a
/// character outside the alphabet.
pub fn decode(s: &str) -> Option<[u8; 20]> {
    let (groups, rest) = s.as_bytes().as_chunks::<8>();
    if groups.len() * 8 != DIGEST_DIGITS || !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 20];
    // Every 8 digits (40 bits) make exactly 5 bytes.
    for (group, bytes) in groups.iter().zip(out.chunks_exact_mut(5)) {
        let mut acc: u64 = 0;
        for &d in group {
            acc = (acc << 5) | u64::from(digit_value(d)?);
        }
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (acc >> (32 - 8 * i)) as u8;
        }
    }
    Some(out)
}

/// Encodes 20 bytes as [`DIGEST_DIGITS`] uppercase base32 digits.
pub fn encode(bytes: &[u8; 20]) -> String {
    let mut out = String::with_capacity(DIGEST_DIGITS);
    for chunk in bytes.chunks_exact(5) {
        let acc = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for i in (0..8).rev() {
            let d = ((acc >> (5 * i)) & 31) as usize;
            out.push(ALPHABET.get(d).map_or('A', |&c| char::from(c)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vector() {
        // 20 bytes 0x00..0x13 in base32, computed with Python's base64.b32encode.
        let bytes: [u8; 20] = core::array::from_fn(|i| i as u8);
        assert_eq!(encode(&bytes), "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT");
        assert_eq!(decode("AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT"), Some(bytes));
    }

    #[test]
    fn rejects_other_lengths_and_digits() {
        let good = "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT";
        assert_eq!(decode(&good[..31]), None);
        assert_eq!(decode(&format!("{good}A")), None);
        assert_eq!(decode(&good.replace('Q', "1")), None);
        assert_eq!(decode(&good.replace('Q', "=")), None);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in any::<[u8; 20]>()) {
            let s = encode(&bytes);
            prop_assert_eq!(decode(&s), Some(bytes));
            prop_assert_eq!(decode(&s.to_lowercase()), Some(bytes));
        }
    }
}
