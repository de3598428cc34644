//! Hexadecimal: digits in either case read, lowercase written (uppercase inside
//! percent-escapes, see [`super::percent`]).
//!
//! ```
//! use bt_proto::encoding::hex;
//! assert_eq!(hex::decode_array::<2>(b"0aFf"), Some([0x0a, 0xff]));
//! assert_eq!(hex::Lower(&[0x0a, 0xff]).to_string(), "0aff");
//! ```

use std::fmt;

/// The uppercase digits, by value.
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The value of one hex digit (`0-9`, `a-f`, `A-F`).
pub fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The uppercase digit of the low four bits of `nibble`.
pub fn upper_digit(nibble: u8) -> char {
    UPPER
        .get(usize::from(nibble & 0x0f))
        .map_or('0', |&c| char::from(c))
}

/// Exactly `2 * N` hex digits as `N` bytes; `None` for another length or a non-digit.
pub fn decode_array<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    let (pairs, rest) = digits.as_chunks::<2>();
    if pairs.len() != N || !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, &[hi, lo]) in out.iter_mut().zip(pairs) {
        *byte = (digit_value(hi)? << 4) | digit_value(lo)?;
    }
    Some(out)
}

/// Bytes written as lowercase hex by `Display`, without building a string first.
#[derive(Clone, Copy, Debug)]
pub struct Lower<'a>(pub &'a [u8]);

impl fmt::Display for Lower<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_in_either_case_and_nothing_else() {
        let valid: Vec<u8> = (0..=255u8).filter(|&c| digit_value(c).is_some()).collect();
        assert_eq!(valid, b"0123456789ABCDEFabcdef");
        assert_eq!(digit_value(b'f'), Some(15));
        assert_eq!(digit_value(b'F'), Some(15));
        assert_eq!(upper_digit(0xab), 'B');
    }

    #[test]
    fn decode_wants_exactly_two_digits_per_byte() {
        assert_eq!(decode_array::<2>(b"abCD"), Some([0xab, 0xcd]));
        assert_eq!(decode_array::<2>(b"abc"), None);
        assert_eq!(decode_array::<2>(b"abcde"), None);
        assert_eq!(decode_array::<2>(b"abcdef"), None);
        assert_eq!(decode_array::<2>(b"abcg"), None);
        assert_eq!(decode_array::<2>(b"+1cd"), None);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in any::<[u8; 20]>()) {
            let written = Lower(&bytes).to_string();
            prop_assert_eq!(written.len(), 40);
            prop_assert_eq!(decode_array::<20>(written.as_bytes()), Some(bytes));
            prop_assert_eq!(decode_array::<20>(written.to_uppercase().as_bytes()), Some(bytes));
        }
    }
}
